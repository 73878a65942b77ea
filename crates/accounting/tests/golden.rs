//! Golden tests over the real Dante 1.4.2 logs (copies in traffic-log's golden files):
//! the reports as committed (`FERROSOCKS_BLESS=1` rewrites them), totals checked by hand
//! against the logs, the same traffic behind every prefix and as JSON giving the same
//! stats, interim records, start-only logs and the time window.

use std::io::BufReader;
use std::path::Path;

use accounting::account::{Options, Report};
use accounting::decode::{decode, Context, Decoded};
use accounting::lines::{Chunk, Lines};
use accounting::render::{render, Format};
use accounting::{Accounting, Dimension};

const IOOP: &str = include_str!("../../traffic-log/tests/golden/dante-1.4.2-connect-ioop.log");
const VARIANTS: &str =
    include_str!("../../traffic-log/tests/golden/dante-1.4.2-connect-variants.log");

const CTX: Context = Context {
    year: 2026,
    now: None,
};

fn opts(by: &[Dimension]) -> Options {
    Options {
        by: by.to_vec(),
        since: None,
        until: None,
        context: CTX,
    }
}

fn run(opts: Options, inputs: &[(&str, &str)]) -> Report {
    let mut acc = Accounting::new(opts);
    for (name, text) in inputs {
        let mut lines = Lines::new(BufReader::new(text.as_bytes()));
        loop {
            let n = lines.lineno() + 1;
            match lines.next_line().unwrap() {
                None => break,
                Some(Chunk::Line { text, complete }) => acc.feed_line(name, n, text, complete),
                Some(Chunk::TooLong(len)) => acc.too_long(name, n, len),
            }
        }
    }
    acc.finish()
}

fn golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("FERROSOCKS_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(got, want, "{name} differs (FERROSOCKS_BLESS=1 to rewrite)");
}

#[test]
fn ioop_log_totals_and_reports() {
    let r = run(opts(&[]), &[("ioop", IOOP)]);
    let t = &r.total;
    assert_eq!(t.sessions, 3);
    assert_eq!(t.bytes_from_client, 79 + 32 + 86);
    assert_eq!(t.bytes_to_client, 197 + 32 + 135_281);
    assert_eq!(t.bytes_to_target, 79 + 32 + 86);
    assert_eq!(t.bytes_from_target, 197 + 32 + 135_281);
    assert_eq!((t.blocked, t.open_sessions), (0, 0));
    assert_eq!(r.malformed.count, 0);
    assert_eq!(r.counts.lines, 23);
    golden("ioop.table", &render(&r, Format::Table));
    let r = run(
        opts(&[Dimension::User, Dimension::Target, Dimension::Port]),
        &[("ioop", IOOP)],
    );
    golden("ioop-by-user-target-port.csv", &render(&r, Format::Csv));
}

/// Client and socks rules both log: each session has two summaries and each block
/// of rule #1 two lines; each is counted once.
#[test]
fn variants_log_counts_each_session_and_block_once() {
    let r = run(opts(&[]), &[("variants", VARIANTS)]);
    let t = &r.total;
    assert_eq!(t.sessions, 5);
    assert_eq!(t.blocked, 3);
    assert_eq!(t.bytes_from_client, 79 + 79 + 79 + 35);
    assert_eq!(t.bytes_to_client, 4 * 197);
    let r = run(opts(&[Dimension::Rule]), &[("variants", VARIANTS)]);
    golden("variants-by-rule.table", &render(&r, Format::Table));
    golden("variants-by-rule.json", &render(&r, Format::Json));
    let r = run(
        opts(&[Dimension::Client, Dimension::Day, Dimension::Hour]),
        &[("variants", VARIANTS)],
    );
    golden("variants-by-client-day-hour.csv", &render(&r, Format::Csv));
}

/// Rewrites every Dante-prefixed line with another prefix (or as JSON).
fn reprefix(text: &str, how: &dyn Fn(i64, u32, &str, &str) -> String) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let (p, msg) = traffic_log::Prefix::parse_line(line).unwrap();
        out.push_str(&how(p.epoch_secs, p.micros, line, msg));
        out.push('\n');
    }
    out
}

#[test]
fn same_traffic_behind_any_prefix_and_as_json_gives_the_same_stats() {
    let by = [
        Dimension::User,
        Dimension::Client,
        Dimension::Target,
        Dimension::Rule,
        Dimension::Hour,
    ];
    let both = format!("{IOOP}{VARIANTS}");
    let want = run(opts(&by), &[("dante", &both)]);
    let rfc3164 = reprefix(&both, &|_, _, line, msg| {
        format!("{} gw1 danted[7]: info: {msg}", &line[..15])
    });
    let rfc5424 = reprefix(&both, &|secs, us, _, msg| {
        let t = accounting::time::format_utc(secs);
        format!(
            "<30>1 {}.{us:06}Z gw1 danted 7 - - info: {msg}",
            t.trim_end_matches('Z')
        )
    });
    let tai = reprefix(&both, &|secs, us, _, msg| {
        format!(
            "@{:016x}{:08x} {msg}",
            (1u64 << 62) + 10 + secs as u64,
            us * 1000
        )
    });
    let tai_dante = reprefix(&both, &|secs, us, line, _| {
        format!(
            "@{:016x}{:08x} {line}",
            (1u64 << 62) + 10 + secs as u64,
            us * 1000
        )
    });
    let json = {
        let mut out = String::new();
        for line in both.lines() {
            let l = decode(line.as_bytes(), &CTX);
            let rec = match &l.decoded {
                Decoded::Record(r) => Some(r),
                _ => None,
            };
            out.push_str(&accounting::convert::json_line(&l, rec));
            out.push('\n');
        }
        out
    };
    for (name, text) in [
        ("rfc3164", &rfc3164),
        ("rfc5424", &rfc5424),
        ("tai64n", &tai),
        ("tai64n+dante", &tai_dante),
        ("json", &json),
    ] {
        let got = run(opts(&by), &[(name, text)]);
        assert_eq!(got.groups, want.groups, "{name}");
        assert_eq!(got.malformed.count, 0, "{name}: {}", got.malformed.report());
        assert_eq!(got.counts.lines, want.counts.lines, "{name}");
    }
    // And mixed: half the files one way, half the other.
    let mixed = run(opts(&by), &[("a", &tai), ("b", &json)]);
    let doubled = run(opts(&by), &[("a", &both), ("b", &both)]);
    assert_eq!(mixed.groups, doubled.groups);
}

const START: &str = "Nov 21 10:00:00 (1795255200.000001) ferrosocks[9]: info: pass(2): tcp/connect [: username%bob@10.0.0.5.40000 127.0.0.1.1080 -> 127.0.0.1.50000 192.0.2.7.443";
const INTERIM1: &str = "Nov 21 10:01:00 (1795255260.000001) ferrosocks[9]: info: pass(2): tcp/connect -: username%bob@10.0.0.5.40000 127.0.0.1.1080 -> 127.0.0.1.50000 192.0.2.7.443: interim: 1000 -> client -> 100, 100 -> target -> 1000.  Session duration: 60s";
const INTERIM2: &str = "Nov 21 10:02:00 (1795255320.000001) ferrosocks[9]: info: pass(2): tcp/connect -: username%bob@10.0.0.5.40000 127.0.0.1.1080 -> 127.0.0.1.50000 192.0.2.7.443: interim: 5000 -> client -> 200, 200 -> target -> 5000.  Session duration: 120s";
const SUMMARY: &str = "Nov 21 10:02:30 (1795255350.000001) ferrosocks[9]: info: pass(2): tcp/connect ]: 6000 -> username%bob@10.0.0.5.40000 127.0.0.1.1080 -> 300, 300 -> 127.0.0.1.50000 192.0.2.7.443 -> 6000: local client closed.  Session duration: 150s";

#[test]
fn a_session_cut_mid_way_counts_once_with_its_interim_bytes() {
    let cut = [START, INTERIM1, INTERIM2].join("\n");
    let r = run(opts(&[Dimension::User]), &[("cut", &cut)]);
    assert_eq!(r.groups.len(), 1);
    let (key, s) = &r.groups[0];
    assert_eq!(key, &["bob"]);
    assert_eq!((s.sessions, s.open_sessions), (1, 1));
    assert_eq!((s.bytes_to_client, s.bytes_from_client), (5000, 200));
    assert_eq!((s.bytes_to_target, s.bytes_from_target), (200, 5000));
    assert_eq!(s.duration_secs, 120);
    // The rest of the log, in the next (rotated) file: the summary replaces the interims.
    let r = run(
        opts(&[Dimension::User]),
        &[("cut", &cut), ("next", SUMMARY)],
    );
    let s = &r.groups[0].1;
    assert_eq!((s.sessions, s.open_sessions), (1, 0));
    assert_eq!(
        (s.bytes_to_client, s.bytes_from_client, s.duration_secs),
        (6000, 300, 150)
    );
    // Interim records are skipped by readers of Dante's summaries: the same line as a
    // Dante parser sees it is not a summary.
    let (_, msg) = traffic_log::stamp::split(INTERIM1);
    assert!(!msg.contains(" ]: "));
}

#[test]
fn start_lines_only_count_sessions_with_bytes_unknown() {
    let starts: String = VARIANTS
        .lines()
        .filter(|l| l.contains(" [: ") || !l.contains("pass("))
        .map(|l| format!("{l}\n"))
        .collect();
    let r = run(opts(&[]), &[("starts", &starts)]);
    assert!(!r.bytes_known);
    // The socks-level starts: four CONNECTs (the refused one and the blocked ones
    // have no start line).
    assert_eq!(r.total.sessions, 4);
    let table = render(&r, Format::Table);
    assert!(table.contains("unknown"), "{table}");
    let csv = render(&r, Format::Csv);
    assert!(csv.lines().nth(1).unwrap().contains(",,"), "{csv}");
}

#[test]
fn since_is_inclusive_and_until_exclusive() {
    // The summary of the second session is at 1795254239.209247.
    let mut o = opts(&[]);
    o.since = Some(1_795_254_239);
    o.until = Some(1_795_254_240);
    let r = run(o, &[("variants", VARIANTS)]);
    // Sessions ended at :39 (two), the block at :39; the ones at :38 and :40 are out.
    assert_eq!(r.total.sessions, 2);
    assert_eq!(r.total.blocked, 1);
    assert!(r.counts.outside_window > 0);
}

#[test]
fn bad_input_is_counted_with_its_place_and_the_rest_still_counts() {
    let mut bad = String::from(IOOP);
    bad.insert_str(0, "\u{1}\u{2}garbage without prefix\n");
    let long = format!(
        "Nov 21 09:43:56 (1795254236.760944) danted[1]: info: {}\n",
        "x".repeat(2 << 20)
    );
    let truncated = "Nov 21 09:43:57 (1795254237.375387) danted[29852]: info: pass(1): tcp/connect ]: 135281 -> 127.0";
    let input = format!("{bad}{long}{truncated}");
    let mut acc = Accounting::new(opts(&[]));
    acc.feed_line("bin", 1, b"\xff\xfe\x00\x01", true);
    let mut lines = Lines::new(BufReader::new(input.as_bytes()));
    loop {
        let n = lines.lineno() + 1;
        match lines.next_line().unwrap() {
            None => break,
            Some(Chunk::Line { text, complete }) => acc.feed_line("f", n, text, complete),
            Some(Chunk::TooLong(len)) => acc.too_long("f", n, len),
        }
    }
    let r = acc.finish();
    assert_eq!(r.total.sessions, 3);
    assert_eq!(r.malformed.count, 4, "{}", r.malformed.report());
    let report = r.malformed.report();
    assert!(report.contains("bin:1: not UTF-8"), "{report}");
    assert!(report.contains("f:1: unknown prefix"), "{report}");
    assert!(report.contains("f:25: line of"), "{report}");
    assert!(
        report.contains("f:26: ") && report.contains("truncated?"),
        "{report}"
    );
}

#[test]
fn an_empty_input_is_one_row_of_zeros_without_grouping_and_none_with() {
    let r = run(opts(&[]), &[("empty", "")]);
    assert_eq!(r.groups.len(), 1);
    assert_eq!(
        render(&r, Format::Csv).lines().nth(1),
        Some("0,0,0,0,0,0,0,true,0,,")
    );
    let r = run(opts(&[Dimension::User]), &[("empty", "")]);
    assert!(r.groups.is_empty());
    assert_eq!(render(&r, Format::Json), "");
}

/// A BIND as ferrosocks and Dante log it (crates/ferrosocks/tests/golden/bind.golden):
/// one session, seen from the SOCKS client (the bindreply summary is turned round, the
/// accept summary after it is the same session).
#[test]
fn a_bind_is_one_session_seen_from_the_client() {
    let log = "\
pass(1): tcp/accept [: 10.0.0.5.3000 127.0.0.1.1080
pass(1): tcp/bind [: 10.0.0.5.3000 127.0.0.1.1080 -> 127.0.0.1.5000 0.0.0.0.0
pass(1): tcp/bindreply [: 192.0.2.9.4000 127.0.0.1.5000 -> 127.0.0.1.1080 10.0.0.5.3000
pass(1): tcp/bindreply -: 192.0.2.9.4000 127.0.0.1.5000 -> 127.0.0.1.1080 10.0.0.5.3000 (4)
pass(1): tcp/bindreply -: 10.0.0.5.3000 127.0.0.1.1080 -> 127.0.0.1.5000 192.0.2.9.4000 (8)
pass(1): tcp/bindreply ]: 8 -> 192.0.2.9.4000 127.0.0.1.5000 -> 4, 4 -> 127.0.0.1.1080 10.0.0.5.3000 -> 8: local client closed.  Session duration: 0s
pass(1): tcp/bind ]: 10.0.0.5.3000 127.0.0.1.1080 -> 127.0.0.1.5000 0.0.0.0.0
pass(1): tcp/accept ]: 4 -> 10.0.0.5.3000 127.0.0.1.1080 -> 8: local client closed.  Session duration: 0s
";
    let r = run(
        opts(&[Dimension::Client, Dimension::Target]),
        &[("bind", log)],
    );
    assert_eq!(r.groups.len(), 1, "{:?}", r.groups);
    let (key, s) = &r.groups[0];
    assert_eq!(key, &["10.0.0.5", "192.0.2.9"]);
    assert_eq!(s.sessions, 1);
    assert_eq!((s.bytes_to_client, s.bytes_from_client), (4, 8));
    assert_eq!((s.bytes_to_target, s.bytes_from_target), (8, 4));
    let f = accounting::filter::Filter {
        client: Some(accounting::filter::Cidr::parse("10.0.0.5").unwrap()),
        phase: Some("summary"),
        ..Default::default()
    };
    let hits = log
        .lines()
        .filter(|l| f.matches(&traffic_log::Record::parse(l).unwrap()))
        .count();
    assert_eq!(hits, 2, "the bindreply and the accept summary");
}

/// A UDP association: its `udpassociate` summaries name the UDP ports, the accept summary
/// after them the TCP control connection; one session. Two external sockets (IPv4 and
/// IPv6 targets) give two `udpassociate` summaries with the same client side: still one.
#[test]
fn a_udp_association_is_one_session() {
    let one = "\
pass(1): udp/udpassociate ]: 34/2 -> 10.0.0.5.52499 127.0.0.1.49013 -> 34/2, 14/2 -> 127.0.0.1.50456 192.0.2.53.53 -> 14/2: local client closed.  Session duration: 6s
pass(1): tcp/accept ]: 34 -> 10.0.0.5.40000 127.0.0.1.1080 -> 14: local client closed.  Session duration: 6s
";
    let r = run(opts(&[]), &[("udp", one)]);
    assert_eq!(r.total.sessions, 1);
    assert_eq!(
        (r.total.bytes_to_client, r.total.bytes_from_client),
        (34, 34)
    );
    assert_eq!(
        (r.total.bytes_to_target, r.total.bytes_from_target),
        (14, 14)
    );
    let two = "\
pass(1): udp/udpassociate ]: 34/2 -> 10.0.0.5.52499 127.0.0.1.49013 -> 34/2, 14/2 -> 127.0.0.1.50456 192.0.2.53.53 -> 14/2: local client closed.  Session duration: 6s
pass(1): udp/udpassociate ]: 10/1 -> 10.0.0.5.52499 127.0.0.1.49013 -> 20/1, 20/1 -> ::1.50457 2001:db8::53.53 -> 10/1: local client closed.  Session duration: 6s
pass(1): tcp/accept ]: 44 -> 10.0.0.5.40000 127.0.0.1.1080 -> 34: local client closed.  Session duration: 6s
";
    let r = run(opts(&[]), &[("udp", two)]);
    assert_eq!(r.total.sessions, 1);
    assert_eq!(r.total.bytes_to_client, 44);
    assert_eq!(r.total.duration_secs, 6, "one session's duration");
}

/// A UDP association with interim records (`log.interim`): one record before it had an
/// external socket (`0.0.0.0.0`), then one per socket. They are one open session keyed
/// by its own `PROXY-INTUDP` (the client's port and the last target change), counted
/// once with the last interim bytes of each socket; each summary replaces its socket's.
#[test]
fn a_udp_association_cut_mid_way_counts_once_with_its_interim_bytes() {
    let early = "pass(1): udp/udpassociate -: 0.0.0.0.0 127.0.0.1.49013 -> 0.0.0.0.0 0.0.0.0.0: interim: 0/0 -> client -> 0/0, 0/0 -> target -> 0/0.  Session duration: 5s";
    let v4 = "pass(1): udp/udpassociate -: 10.0.0.5.52499 127.0.0.1.49013 -> 127.0.0.1.50456 192.0.2.53.53: interim: 17/1 -> client -> 17/1, 7/1 -> target -> 7/1.  Session duration: 10s";
    let v4_later = "pass(1): udp/udpassociate -: 10.0.0.5.52499 127.0.0.1.49013 -> 127.0.0.1.50456 192.0.2.54.53: interim: 34/2 -> client -> 34/2, 14/2 -> target -> 14/2.  Session duration: 15s";
    let v6 = "pass(1): udp/udpassociate -: 10.0.0.5.52499 127.0.0.1.49013 -> ::1.50457 2001:db8::53.53: interim: 10/1 -> client -> 20/1, 20/1 -> target -> 10/1.  Session duration: 15s";
    let sum4 = "pass(1): udp/udpassociate ]: 34/2 -> 10.0.0.5.52499 127.0.0.1.49013 -> 34/2, 14/2 -> 127.0.0.1.50456 192.0.2.54.53 -> 14/2: local client closed.  Session duration: 16s";
    let sum6 = "pass(1): udp/udpassociate ]: 10/1 -> 10.0.0.5.52499 127.0.0.1.49013 -> 20/1, 20/1 -> ::1.50457 2001:db8::53.53 -> 10/1: local client closed.  Session duration: 16s";
    let accept = "pass(1): tcp/accept ]: 44 -> 10.0.0.5.40000 127.0.0.1.1080 -> 34: local client closed.  Session duration: 16s";

    let only_early = run(opts(&[]), &[("udp", early)]).total;
    assert_eq!((only_early.sessions, only_early.open_sessions), (1, 1));
    assert_eq!(only_early.bytes_total(), 0);

    let cut = [early, v4, v4_later, v6].join("\n");
    let t = run(opts(&[]), &[("udp", &cut)]).total;
    assert_eq!((t.sessions, t.open_sessions), (1, 1), "{t:?}");
    assert_eq!((t.bytes_to_client, t.bytes_from_client), (44, 54));
    assert_eq!((t.bytes_to_target, t.bytes_from_target), (34, 24));
    assert_eq!(t.duration_secs, 15, "one session's duration");

    // Cut between the two summaries: the session is the summary's, the other socket
    // adds its interim bytes.
    let t = run(opts(&[]), &[("udp", &[cut.as_str(), sum4].join("\n"))]).total;
    assert_eq!((t.sessions, t.open_sessions), (1, 0), "{t:?}");
    assert_eq!(t.bytes_to_client, 44);

    let whole = [cut.as_str(), sum4, sum6, accept].join("\n");
    let r = run(opts(&[Dimension::Target]), &[("udp", &whole)]);
    let t = &r.total;
    assert_eq!((t.sessions, t.open_sessions), (1, 0), "{:?}", r.groups);
    assert_eq!((t.bytes_to_client, t.bytes_from_client), (44, 54));
    assert_eq!(t.duration_secs, 16);
    // By target, the second socket's bytes are a group of their own with no session.
    let v6_group = r.groups.iter().find(|(k, _)| k[0] == "2001:db8::53");
    assert_eq!(
        v6_group.map(|(_, s)| (s.sessions, s.bytes_to_client)),
        Some((0, 10))
    );
}

/// A BIND cut mid-way: the bindreply rule's interim record is turned round as its
/// summary is, and counted once, seen from the SOCKS client.
#[test]
fn a_bind_cut_mid_way_counts_once_with_its_interim_bytes() {
    let interim = "pass(1): tcp/bindreply -: 192.0.2.9.4000 127.0.0.1.5000 -> 127.0.0.1.1080 10.0.0.5.3000: interim: 8 -> client -> 4, 4 -> target -> 8.  Session duration: 2s";
    let summary = "pass(1): tcp/bindreply ]: 8 -> 192.0.2.9.4000 127.0.0.1.5000 -> 4, 4 -> 127.0.0.1.1080 10.0.0.5.3000 -> 8: local client closed.  Session duration: 3s";
    let accept = "pass(1): tcp/accept ]: 4 -> 10.0.0.5.3000 127.0.0.1.1080 -> 8: local client closed.  Session duration: 3s";
    let by = [Dimension::Client, Dimension::Target];
    let r = run(opts(&by), &[("bind", interim)]);
    assert_eq!(r.groups.len(), 1, "{:?}", r.groups);
    let (key, s) = &r.groups[0];
    assert_eq!(key, &["10.0.0.5", "192.0.2.9"]);
    assert_eq!((s.sessions, s.open_sessions), (1, 1));
    assert_eq!((s.bytes_to_client, s.bytes_from_client), (4, 8));
    assert_eq!((s.bytes_to_target, s.bytes_from_target), (8, 4));
    let r = run(
        opts(&by),
        &[("bind", &[interim, summary, accept].join("\n"))],
    );
    let s = &r.groups[0].1;
    assert_eq!((r.groups.len(), s.sessions, s.open_sessions), (1, 1, 0));
    assert_eq!(s.duration_secs, 3);
}
