//! The man pages and shell completions committed under `packaging/`, generated from the
//! command line ([`Cli`]) and the keyword table (`sockd_conf::keywords`, which also makes
//! docs/configuration.md). The tests fail when a committed copy is stale;
//! `FERROSOCKS_BLESS=1 cargo test -p ferrosocks --bin ferrosocks packaging` rewrites them.
//!
//! ferrosocks(8) and ferrosocks-migrate(8) are clap_mangen's sections plus ours
//! (signals, files, exit status). ferrosocks.conf(5) is written with the `roff` crate
//! that clap_mangen renders with (its re-export, so no second copy): roff's escaping has
//! traps (a line starting with `.` or `'`, backslashes, `-` that must be `\-` to be
//! copy-pasteable, apostrophes) that the crate handles and hand-written code would have
//! to get right again.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;
use sockd_conf::keywords::{self, Keyword, Source, Status, KEYWORDS, SPECIALS};

use super::Cli;

/// `packaging/` at the top of the repository.
fn packaging_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging")
}

/// Compares the committed file with `want`, rewriting it first under FERROSOCKS_BLESS.
fn check_committed(relative: &str, want: &str) {
    let path = packaging_dir().join(relative);
    if std::env::var_os("FERROSOCKS_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(have.lines().count().min(want.lines().count()));
        panic!(
            "packaging/{relative} is stale (first difference at line {}): run FERROSOCKS_BLESS=1 cargo test -p ferrosocks --bin ferrosocks packaging",
            line + 1
        );
    }
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `.TH` arguments after the section: no date, so that the page only changes when
/// its text does.
fn man(cmd: clap::Command, title: &str, section: &str) -> Man {
    Man::new(cmd)
        .title(title)
        .section(section)
        .source(format!("ferrosocks {VERSION}"))
        .manual("System Administration")
}

/// The roff apostrophe preamble every render writes; a page keeps the first.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// Paths and keywords are not to be broken across lines.
const NO_HYPHENATION: &str = ".nh\n";

/// Pages rendered in parts: each part's preamble after the first dropped.
fn join(parts: &[String]) -> String {
    let mut out = String::from(PREAMBLE);
    for p in parts {
        out.push_str(p.strip_prefix(PREAMBLE).unwrap_or(p));
    }
    out
}

fn part(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut buf = Vec::new();
    render(&mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

/// Text with `code` spans in bold, as the keyword table writes them.
fn inline(text: &str) -> Vec<Inline> {
    text.split('`')
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(i, s)| if i % 2 == 1 { bold(s) } else { roman(s) })
        .collect()
}

/// A `.TP` paragraph: `tag` then `body`.
fn item(r: &mut Roff, tag: Vec<Inline>, body: Vec<Inline>) {
    r.control("TP", []);
    r.text(tag);
    r.text(body);
}

fn section(r: &mut Roff, title: &str, paragraphs: &[&str]) {
    r.control("SH", [title]);
    for (i, p) in paragraphs.iter().enumerate() {
        if i > 0 {
            r.control("PP", []);
        }
        r.text(inline(p));
    }
}

/// A block of literal lines (a configuration), indented.
fn literal(r: &mut Roff, text: &str) {
    r.control("RS", []);
    r.control("nf", []);
    for line in text.lines() {
        r.text([roman(line)]);
    }
    r.control("fi", []);
    r.control("RE", []);
}

// === ferrosocks(8) ===

/// ferrosocks(8): clap_mangen's name, synopsis, description, options and subcommands,
/// then what the command line does not say: signals, files, environment, exit status.
pub(crate) fn ferrosocks_8() -> String {
    // clap_mangen's synopsis leaves out the values of short options: ours names them.
    let cmd = Cli::command().disable_help_subcommand(true).override_usage(
        "ferrosocks [-V] [-f FILE] [-d N] [-p FILE] [-D] [-N N] [-n] [--grace-period SECONDS]\n\
             ferrosocks migrate --from-dante FILE [-o FILE]\n\
             ferrosocks collect --listen ADDR:PORT --dir DIR [OPTIONS]\n\
             ferrosocks -v | -L | -h",
    );
    let page = man(cmd, "FERROSOCKS", "8");
    let mut r = Roff::default();
    r.text(inline(
        "Once every `internal:` address is bound, ferrosocks prints one line on standard output, `ferrosocks ready: listening on` followed by each address it listens on, and logs every session as the configuration says, in Dante's traffic log format.",
    ));
    r.control("PP", []);
    r.text(inline(
        "Started as root with `user.unprivileged:` set, it binds its ports, then runs as that user; a small privileged helper (shown as `ferrosocks-priv`) keeps root's rights for reopening the log files the configuration names, reading the configuration and password file on SIGHUP, checking system users' passwords and removing the pid file.",
    ));
    let description_more = r.render();

    let mut r = Roff::default();
    r.control("SH", ["SIGNALS"]);
    for (sig, what) in [
        ("SIGHUP", "Re-reads the configuration and reopens the log files, so logrotate works without `copytruncate`. A bad file is reported with all its errors and the running configuration stays; sessions in flight keep the rules they started under."),
        ("SIGUSR1", "Writes a status dump to the log: every session, the counters, UDP latency."),
        ("SIGUSR2", "Rewrites the status file (`status.file:`) now."),
        ("SIGTERM, SIGINT", "Stop accepting, give open sessions the grace period (`--grace-period`), then cut them and log each one as `administrative termination`; exit 0."),
    ] {
        item(&mut r, vec![bold(sig)], inline(what));
    }
    r.control("SH", ["FILES"]);
    for (file, what) in [
        ("/etc/ferrosocks/ferrosocks.conf", "The packaged configuration (loopback only); the systemd unit runs `ferrosocks -f` with it. See ferrosocks.conf(5)."),
        ("/etc/ferrosocks.conf", "Read when no `-f` is given; without it the embedded default runs (127.0.0.1 port 1080, loopback clients only, log on stderr)."),
        ("the pid file", "Only with `-p FILE`: written once the ports are bound, removed at exit (by the privileged helper after a privilege drop). Under systemd none is needed."),
        ("/run/ferrosocks/status", "The status file, when `status.file:` names it (the unit's runtime directory, writable by the server's group)."),
        ("/run/ferrosocks/mgmt.sock", "The management socket, when `management:` names it: mode 0600, bound before the privilege drop, removed at exit."),
        ("/var/log/ferrosocks/ferrosocks.log", "The packaged configuration's log; rotated by /etc/logrotate.d/ferrosocks, which sends SIGHUP."),
    ] {
        item(&mut r, vec![bold(file)], inline(what));
    }
    r.control("SH", ["ENVIRONMENT"]);
    item(
        &mut r,
        vec![bold("FERROSOCKS_WORKERS")],
        inline("Number of worker threads (default: one per CPU)."),
    );
    r.control("SH", ["EXIT STATUS"]);
    for (code, what) in [
        ("0", "A normal stop; `-V` on a good configuration; `migrate` that wrote its result."),
        ("64", "A bad command line or configuration: every error printed with file:line:column, each line starting with `ferrosocks:`, nothing bound. `migrate` on a file with errors (nothing written)."),
        ("70", "`migrate` produced a configuration that does not parse (a bug; nothing written)."),
        ("71", "The server cannot start: an address it cannot bind, a user it cannot become; the configuration line at fault is named."),
    ] {
        item(&mut r, vec![bold(code)], inline(what));
    }
    section(
        &mut r,
        "SEE ALSO",
        &["ferrosocks.conf(5), ferrosocks-migrate(8), ferrosocks-log(8), ferrosocks-collect(8), danted(8), systemd.service(5), logrotate(8)"],
    );
    let ours = r.render();

    join(&[
        part(|w| page.render_title(w)),
        NO_HYPHENATION.to_owned(),
        part(|w| page.render_name_section(w)),
        part(|w| page.render_synopsis_section(w)),
        part(|w| page.render_description_section(w)),
        description_more,
        part(|w| page.render_options_section(w)),
        part(|w| page.render_subcommands_section(w)),
        ours,
    ])
}

/// ferrosocks-collect(8), clap_mangen's rendering of the subcommand.
pub(crate) fn ferrosocks_collect_8() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let sub = cmd
        .find_subcommand("collect")
        .expect("the collect subcommand")
        .clone();
    let page = man(
        sub.override_usage("ferrosocks collect --listen ADDR:PORT --dir DIR [OPTIONS]"),
        "FERROSOCKS-COLLECT",
        "8",
    );
    let mut r = Roff::default();
    r.control("SH", ["EXAMPLES"]);
    literal(
        &mut r,
        "ferrosocks collect --listen 0.0.0.0:10116 --dir /var/log/ferrosocks/remote\n# on each sender, in ferrosocks.conf:\nlogdir: /var/log/ferrosocks/main\nlogdir.ship: 10.0.0.5 port = 10116",
    );
    section(
        &mut r,
        "FILES",
        &["DIR/all/ and DIR/IP/ for each sender: multilog directories (current, @TAI64N.s, lock, state)."],
    );
    section(
        &mut r,
        "EXIT STATUS",
        &["0 after SIGTERM or SIGINT; 64 on a bad command line; 69 when the address cannot be bound or DIR/all cannot be opened."],
    );
    section(
        &mut r,
        "SEE ALSO",
        &["ferrosocks(8), ferrosocks.conf(5), multilog(8), socklog(8)"],
    );
    join(&[
        part(|w| page.render_title(w)),
        NO_HYPHENATION.to_owned(),
        part(|w| page.render_name_section(w)),
        part(|w| page.render_synopsis_section(w)),
        part(|w| page.render_description_section(w)),
        part(|w| page.render_options_section(w)),
        r.render(),
    ])
}

/// ferrosocks-migrate(8), clap_mangen's rendering of the subcommand.
pub(crate) fn ferrosocks_migrate_8() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let sub = cmd
        .find_subcommand("migrate")
        .expect("the migrate subcommand")
        .clone();
    let page = man(
        sub.override_usage("ferrosocks migrate --from-dante FILE [-o FILE]"),
        "FERROSOCKS-MIGRATE",
        "8",
    );
    let mut r = Roff::default();
    r.control("SH", ["EXAMPLES"]);
    literal(
        &mut r,
        "ferrosocks migrate --from-dante /etc/danted.conf \\\n    -o /etc/ferrosocks/ferrosocks.conf\nferrosocks -V -f /etc/ferrosocks/ferrosocks.conf",
    );
    section(
        &mut r,
        "EXIT STATUS",
        &["0 when the result was written; 64 when the file has errors (all printed, nothing written) or cannot be read; 70 when the result does not parse (a bug; nothing written)."],
    );
    section(&mut r, "SEE ALSO", &["ferrosocks(8), ferrosocks.conf(5)"]);
    join(&[
        part(|w| page.render_title(w)),
        NO_HYPHENATION.to_owned(),
        part(|w| page.render_name_section(w)),
        part(|w| page.render_synopsis_section(w)),
        part(|w| page.render_description_section(w)),
        part(|w| page.render_options_section(w)),
        r.render(),
    ])
}

// === ferrosocks.conf(5) ===

/// ferrosocks.conf(5), from the keyword table.
pub(crate) fn ferrosocks_conf_5() -> String {
    let mut r = Roff::default();
    r.control(
        "TH",
        [
            "FERROSOCKS.CONF",
            "5",
            "",
            &format!("ferrosocks {VERSION}"),
            "File Formats",
        ],
    );
    r.control("nh", []);
    r.control("SH", ["NAME"]);
    r.text([roman(
        "ferrosocks.conf - configuration of ferrosocks(8), in Dante's sockd.conf language",
    )]);
    r.control("SH", ["SYNOPSIS"]);
    r.text([bold("/etc/ferrosocks/ferrosocks.conf")]);
    r.control("br", []);
    r.text([bold("/etc/ferrosocks.conf")]);
    section(
        &mut r,
        "DESCRIPTION",
        &[
            "ferrosocks reads Dante's `sockd.conf` language: `keyword: value` lines, `#` comments, server settings first, then `client` rules, then `socks` rules (first match wins; no match is the default block rule #0), then `route` entries. List keywords (`log:`, `command:`, `socksmethod:`, ...) end at the end of the line or at `}`. Errors name file:line:column and quote the token; every error is reported, and `ferrosocks -V -f FILE` checks a file without starting.",
            "A Dante file runs unchanged when it uses only the keywords below; `ferrosocks migrate --from-dante` rewrites one that does not. Keywords marked ferrosocks only are ferrosocks' own: Dante does not know them. In a keyword, `*` stands for any suffix. This page is generated from the same table as the parser's messages and docs/configuration.md.",
        ],
    );
    keyword_section(&mut r, "KEYWORDS", Status::Supported, None);
    keyword_section(
        &mut r,
        "ACCEPTED AND IGNORED",
        Status::Ignored,
        Some("Using one of these gives a warning that names it and says why ignoring it is safe: it lets in nobody that Dante would refuse."),
    );
    keyword_section(
        &mut r,
        "NOT SUPPORTED YET",
        Status::NotYet,
        Some("Using one of these is a configuration error that says \"not supported yet\" and why, so that nothing in a Dante file that matters is ignored silently."),
    );
    r.control("SH", ["EMBEDDED DEFAULT"]);
    r.text(inline(
        "With no `-f` and no /etc/ferrosocks.conf, ferrosocks runs on:",
    ));
    literal(&mut r, sockd_conf::EMBEDDED_DEFAULT);
    section(
        &mut r,
        "FILES",
        &["/etc/ferrosocks/ferrosocks.conf: the packaged configuration, run by the systemd unit ferrosocks.service. /etc/ferrosocks.conf: read when ferrosocks is given no `-f`."],
    );
    section(
        &mut r,
        "SEE ALSO",
        &["ferrosocks(8), ferrosocks-migrate(8), danted.conf(5)"],
    );
    r.render()
}

/// The entries of one status: keywords, then the values and places of [`SPECIALS`].
fn keyword_section(r: &mut Roff, title: &str, status: Status, intro: Option<&str>) {
    r.control("SH", [title]);
    if let Some(intro) = intro {
        r.text(inline(intro));
    }
    for k in KEYWORDS.iter().filter(|k| k.status == status) {
        keyword_item(r, k);
    }
    let specials: Vec<_> = SPECIALS.iter().filter(|s| s.status == status).collect();
    if specials.is_empty() {
        return;
    }
    r.control("SS", ["Values and places"]);
    for s in specials {
        let mut body = inline(&format!("Where: {}.", keywords::place_name(s.place)));
        if !s.why.is_empty() {
            body.push(roman(" "));
            body.extend(inline(&capitalized(s.why)));
            body.push(roman("."));
        }
        item(r, inline(&s.label()), body);
    }
}

fn keyword_item(r: &mut Roff, k: &Keyword) {
    let mut tag = vec![bold(format!("{}:", k.name)), roman(" ")];
    tag.push(italic(k.syntax));
    let mut body = inline(k.doc);
    body.push(Inline::LineBreak);
    let whose = match k.source {
        Source::Dante => "Dante's",
        Source::Ferrosocks => "ferrosocks only",
    };
    body.extend(inline(&format!(
        "Where: {}; {whose}.",
        keywords::place_name(k.place)
    )));
    if !k.why.is_empty() {
        let label = match k.status {
            Status::Ignored => "Why it is ignored",
            _ => "Why it is not ignored",
        };
        body.extend(inline(&format!(" {label}: {}.", k.why)));
    }
    item(r, tag, body);
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

// === completions ===

/// The completion script for `shell`, and where packaging/ keeps it.
fn completion(shell: Shell) -> (&'static str, String) {
    let name = match shell {
        Shell::Bash => "completions/ferrosocks.bash",
        Shell::Zsh => "completions/_ferrosocks",
        Shell::Fish => "completions/ferrosocks.fish",
        _ => unreachable!("only bash, zsh and fish are packaged"),
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ferrosocks", &mut buf);
    (name, String::from_utf8(buf).unwrap())
}

/// ferrosocks-log(8): the `log` subcommand, then each of its commands with its options.
pub(crate) fn ferrosocks_log_8() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let log = cmd
        .find_subcommand("log")
        .expect("the log subcommand")
        .clone();
    let page = man(
        log.clone().override_usage(
            "ferrosocks log stats [--by WHAT]... [--format table|csv|json] [OPTIONS] [FILE]...\n\
             ferrosocks log convert --to json|csv [--strict] [OPTIONS] [FILE]...\n\
             ferrosocks log grep [--user NAME] [--client CIDR] [--target HOST] [...] [FILE]...",
        ),
        "FERROSOCKS-LOG",
        "8",
    );
    let mut parts = vec![
        part(|w| page.render_title(w)),
        NO_HYPHENATION.to_owned(),
        part(|w| page.render_name_section(w)),
        part(|w| page.render_synopsis_section(w)),
        part(|w| page.render_description_section(w)),
    ];
    for name in ["stats", "convert", "grep"] {
        let sub = log.find_subcommand(name).expect("a log command").clone();
        let mut r = Roff::default();
        r.control("SH", [format!("LOG {}", name.to_uppercase()).as_str()]);
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            for (i, p) in about.to_string().split("\n\n").enumerate() {
                if i > 0 {
                    r.control("PP", []);
                }
                r.text([roman(p.replace('\n', " "))]);
            }
        }
        parts.push(r.render());
        let sub_page = Man::new(sub);
        let options = part(|w| sub_page.render_options_section(w));
        parts.push(options.replacen(".SH OPTIONS", ".SS Options", 1));
    }
    let mut r = Roff::default();
    r.control("SH", ["EXAMPLES"]);
    literal(
        &mut r,
        "ferrosocks log stats --by user /var/log/sockd.log*\n\
         ferrosocks log stats --by target --sort bytes --top 20 --format csv /var/log/sockd.log*\n\
         ferrosocks log convert --to json /var/log/sockd.log.1 > sockd.jsonl\n\
         ferrosocks log grep --user bob --phase summary /var/log/sockd.log",
    );
    section(
        &mut r,
        "EXIT STATUS",
        &["0 when every input was read; 1 when an input could not be read wholly (the report is still written, the problem named with file:line on standard error); 64 for a bad command line."],
    );
    section(
        &mut r,
        "SEE ALSO",
        &["ferrosocks(8), ferrosocks.conf(5) (log.interim), /usr/share/doc/ferrosocks/accounting.md"],
    );
    parts.push(r.render());
    join(&parts)
}

// === tests ===

#[test]
fn man_pages_are_up_to_date() {
    check_committed("man/ferrosocks.8", &ferrosocks_8());
    check_committed("man/ferrosocks-migrate.8", &ferrosocks_migrate_8());
    check_committed("man/ferrosocks-log.8", &ferrosocks_log_8());
    check_committed("man/ferrosocks-collect.8", &ferrosocks_collect_8());
    check_committed("man/ferrosocks.conf.5", &ferrosocks_conf_5());
}

#[test]
fn completions_are_up_to_date() {
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let (name, text) = completion(shell);
        check_committed(name, &text);
    }
}

#[test]
fn the_man_page_says_every_option_signal_file_and_exit_status() {
    let page = ferrosocks_8();
    let cmd = Cli::command();
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        if let Some(s) = arg.get_short() {
            assert!(page.contains(&format!("\\fB\\-{s}\\fR")), "-{s}");
        }
        if let Some(l) = arg.get_long() {
            assert!(
                page.contains(&format!("\\-\\-{}", l.replace('-', "\\-"))),
                "--{l}"
            );
        }
    }
    for needed in [
        "SIGHUP",
        "SIGUSR1",
        "SIGUSR2",
        "SIGTERM, SIGINT",
        "/etc/ferrosocks/ferrosocks.conf",
        "/etc/ferrosocks.conf",
        "the pid file",
        "/run/ferrosocks/status",
        "/run/ferrosocks/mgmt.sock",
        ".SH \"EXIT STATUS\"\n.TP\n\\fB0\\fR",
        "\\fB64\\fR",
        "\\fB71\\fR",
        "ferrosocks\\-migrate(8)",
    ] {
        assert!(page.contains(needed), "{needed:?} missing");
    }
    // One preamble, at the top.
    assert_eq!(page.matches(PREAMBLE).count(), 1);
    let migrate = ferrosocks_migrate_8();
    assert!(migrate.contains("\\-\\-from\\-dante"));
    let log = ferrosocks_log_8();
    for needed in [
        "LOG STATS",
        "LOG CONVERT",
        "LOG GREP",
        "\\-\\-since",
        "\\-\\-strict",
        "\\-\\-client",
    ] {
        assert!(log.contains(needed), "ferrosocks-log(8) lacks {needed:?}");
    }
    let collect = ferrosocks_collect_8();
    for o in [
        "\\-\\-listen",
        "\\-\\-dir",
        "\\-\\-no\\-stamp",
        "\\-\\-max\\-line",
    ] {
        assert!(collect.contains(o), "{o}");
    }
}

#[test]
fn the_conf_page_has_every_keyword_and_special() {
    let page = ferrosocks_conf_5();
    let escaped = |s: &str| s.replace('\\', "\\\\").replace('-', "\\-");
    for k in KEYWORDS {
        assert!(
            page.contains(&format!("\\fB{}:\\fR", escaped(k.name))),
            "{}",
            k.name
        );
        if !k.why.is_empty() {
            assert!(
                page.contains(&escaped(k.why).replace('\'', "\\*(Aq")),
                "{}",
                k.name
            );
        }
    }
    for s in SPECIALS {
        let label = s.label().replace('`', "");
        let tag = match s.value {
            Some(v) => format!("\\fB{}: {}\\fR", s.keyword, escaped(v)),
            None => format!("\\fB{}\\fR", s.keyword),
        };
        assert!(page.contains(&tag), "{label}: {tag}");
    }
}
