//! From tokens to a checked [`Config`].
//!
//! One pass over the tokens: server settings, then rules. Each statement is parsed on
//! its own; an error is recorded and the parser skips to the end of the line (or the
//! rule's closing brace), so that every error in the file is reported at once.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::error::{Diagnostic, Errors};
use crate::keywords::{self, Place, Status};
use crate::lexer::{tokenize, Pos, Tok, Token};
use crate::model::*;
use crate::services;

/// A parsed configuration and the warnings it gave.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The configuration.
    pub config: Config,
    /// Things that work but deserve a look (deprecated names, …).
    pub warnings: Vec<Diagnostic>,
}

/// Parses configuration `text`; `file` names it in diagnostics.
pub fn parse(file: &str, text: &str) -> Result<Parsed, Errors> {
    let mut p = Parser {
        file,
        toks: tokenize(text),
        i: 0,
        errors: Vec::new(),
        warnings: Vec::new(),
        cfg: Config {
            origins: Origins {
                file: file.to_owned(),
                ..Origins::default()
            },
            ..Config::default()
        },
        first_rule: None,
        operator: Operator::default(),
        logdir: Default::default(),
        remote: Default::default(),
    };
    p.run();
    p.settle_operator();
    p.settle_logdir();
    p.settle_remote();
    p.finish()
}

type Res<T> = Result<T, Diagnostic>;

struct Parser<'a> {
    file: &'a str,
    toks: Vec<Token>,
    i: usize,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    cfg: Config,
    /// Where the first rule starts: settings after it are errors.
    first_rule: Option<Pos>,
    /// `status.*` and `management.*` as read so far: they may come in any order, and
    /// are combined into `Config.status` and `Config.management` at the end.
    operator: Operator,
    /// `logdir*` as read so far.
    logdir: logdir::LogDirSettings,
    /// `syslog.remote*` as read so far.
    remote: syslog_remote::RemoteSettings,
}

mod logdir;
mod syslog_remote;

/// The operator-interface settings read so far; those that may need a warning keep
/// the position of their keyword.
#[derive(Default)]
struct Operator {
    status_file: Option<PathBuf>,
    status_interval: Option<(u64, Pos)>,
    management: Option<MgmtListen>,
    password: Option<(PathBuf, Pos)>,
    client_auth: Option<(bool, Pos)>,
    metrics: Option<SocketAddr>,
    metrics_control: Option<(bool, Pos)>,
}

/// The longest path a Unix socket address holds (`sun_path` less its final NUL).
const SUN_PATH_MAX: usize = 107;

const LOG_WORDS: &str = "connect disconnect data ioop iooperation error tcpinfo";
const DANTE_LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

impl Parser<'_> {
    fn run(&mut self) {
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::Eof => break,
                Tok::Newline => self.i += 1,
                Tok::Word(_) => {
                    if let Err(d) = self.statement() {
                        self.errors.push(d);
                        self.skip_line(false);
                    }
                }
                other => {
                    let d = self.diag(
                        t.pos,
                        format!("unexpected {}; expected a keyword", other.describe()),
                    );
                    self.errors.push(d);
                    self.i += 1;
                }
            }
        }
    }

    fn finish(mut self) -> Result<Parsed, Errors> {
        if self.errors.is_empty() {
            Ok(Parsed {
                config: self.cfg,
                warnings: self.warnings,
            })
        } else {
            self.errors.sort_by_key(|d| d.pos);
            Err(Errors(self.errors))
        }
    }

    // === tokens ===

    fn peek(&self) -> &Token {
        // The token list always ends with Eof, and `i` never moves past it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.i += 1;
        }
        t
    }

    fn diag(&self, pos: Pos, message: String) -> Diagnostic {
        Diagnostic {
            file: self.file.to_owned(),
            pos,
            message,
        }
    }

    fn expected(&self, what: &str, after: &str) -> Diagnostic {
        let t = self.peek();
        self.diag(
            t.pos,
            format!(
                "expected {what} after \"{after}\", found {}",
                t.tok.describe()
            ),
        )
    }

    /// Skips to the end of the line; in a rule, stops before its closing brace.
    fn skip_line(&mut self, in_rule: bool) {
        loop {
            match self.peek().tok {
                Tok::Eof => return,
                Tok::Close if in_rule => return,
                Tok::Newline => {
                    self.i += 1;
                    return;
                }
                _ => self.i += 1,
            }
        }
    }

    /// Reads `keyword:` at the current token. A value glued to the colon
    /// (`from:10.0.0.0/8`) is left in place as the next token.
    fn keyword(&mut self) -> Res<(String, Pos)> {
        let t = self.peek().clone();
        let Tok::Word(word) = &t.tok else {
            return Err(self.diag(
                t.pos,
                format!("expected a keyword, found {}", t.tok.describe()),
            ));
        };
        let key_like = |s: &str| {
            s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        if let Some((key, rest)) = word.split_once(':') {
            if key_like(key) {
                let key = key.to_owned();
                if rest.is_empty() {
                    self.i += 1;
                } else {
                    let col = t.pos.col + key.chars().count() as u32 + 1;
                    self.toks[self.i] = Token {
                        tok: Tok::Word(rest.to_owned()),
                        pos: Pos {
                            line: t.pos.line,
                            col,
                        },
                    };
                }
                return Ok((key, t.pos));
            }
        }
        // `keyword :` with a space before the colon.
        if key_like(word) {
            if let Some(Token {
                tok: Tok::Word(next),
                ..
            }) = self.toks.get(self.i + 1)
            {
                if next == ":" {
                    let key = word.clone();
                    self.i += 2;
                    return Ok((key, t.pos));
                }
            }
        }
        Err(self.diag(
            t.pos,
            match keywords::lookup(word) {
                // Dante writes some without a colon (`redirect from: …`).
                Some(k) if k.status == Status::NotYet => k.message(word),
                Some(_) => format!("expected \":\" after keyword \"{word}\""),
                None => unknown_keyword(word),
            },
        ))
    }

    fn word(&mut self, what: &str, after: &str) -> Res<(String, Pos)> {
        match self.peek().clone() {
            Token {
                tok: Tok::Word(w),
                pos,
            } => {
                self.i += 1;
                Ok((w, pos))
            }
            _ => Err(self.expected(what, after)),
        }
    }

    /// The words up to the end of the line or a closing brace (Dante's list keywords).
    fn list(&mut self, what: &str, after: &str) -> Res<Vec<(String, Pos)>> {
        let mut out = Vec::new();
        while let Tok::Word(w) = &self.peek().tok {
            out.push((w.clone(), self.peek().pos));
            self.i += 1;
        }
        if out.is_empty() {
            return Err(self.expected(what, after));
        }
        Ok(out)
    }

    fn number(&mut self, after: &str) -> Res<u64> {
        Ok(self.number_at(after)?.0)
    }

    /// A number, and where it is written.
    fn number_at(&mut self, after: &str) -> Res<(u64, Pos)> {
        let (w, pos) = self.word("a number", after)?;
        let n = parse_number(&w).ok_or_else(|| {
            self.diag(
                pos,
                format!("\"{w}\" is not a number (expected a number after \"{after}\")"),
            )
        })?;
        Ok((n, pos))
    }

    // === statements ===

    fn statement(&mut self) -> Res<()> {
        let t = self.peek().clone();
        if let Tok::Word(w) = &t.tok {
            match w.as_str() {
                "client" | "socks" | "pass" | "block" => return self.rule(),
                "route" => return self.route(),
                _ => {}
            }
        }
        let (key, pos) = self.keyword()?;
        if let Some(rule_pos) = self.first_rule {
            return Err(self.diag(
                pos,
                format!(
                    "server setting \"{key}\" after the first rule (line {}); settings must come before rules",
                    rule_pos.line
                ),
            ));
        }
        self.global(&key, pos)
    }

    fn global(&mut self, key: &str, pos: Pos) -> Res<()> {
        match key {
            "internal" => {
                let (host, hpos) = self.host_addr(key)?;
                let port = if self.at_port_word() {
                    self.port_value(key)?
                } else {
                    1080
                };
                self.cfg.internals.push(Internal { host, port });
                self.cfg.origins.internals.push(hpos);
            }
            "external" => {
                let (host, hpos) = self.host_addr(key)?;
                self.cfg.externals.push(host);
                self.cfg.origins.externals.push(hpos);
            }
            "external.rotation" => {
                let (w, wpos) = self.word("none, route or same-same", key)?;
                self.cfg.external_rotation = match w.as_str() {
                    "none" => Rotation::None,
                    "route" => Rotation::Route,
                    "same-same" => Rotation::SameSame,
                    _ => {
                        return Err(self.diag(
                            wpos,
                            format!("unknown rotation \"{w}\" (expected none, route or same-same)"),
                        ))
                    }
                };
            }
            "clientmethod" => self.cfg.clientmethods = self.methods(key, true)?,
            "socksmethod" => self.cfg.socksmethods = self.methods(key, false)?,
            "method" => {
                self.warnings
                    .push(self.diag(pos, "\"method\" is deprecated; use \"socksmethod\"".into()));
                self.cfg.socksmethods = self.methods(key, false)?;
            }
            "user.privileged" => {
                let (w, wpos) = self.word("a user name", key)?;
                self.cfg.user_privileged = Some(w);
                self.cfg.origins.user_privileged = Some(wpos);
            }
            "user.unprivileged" | "user.notprivileged" => {
                let (w, wpos) = self.word("a user name", key)?;
                self.cfg.user_unprivileged = Some(w);
                self.cfg.origins.user_unprivileged = Some(wpos);
            }
            "user.libwrap" => {
                let (w, wpos) = self.word("a user name", key)?;
                self.cfg.user_libwrap = Some(w);
                self.cfg.origins.user_libwrap = Some(wpos);
            }
            "timeout.negotiate" => self.cfg.timeouts.negotiate = self.number(key)?,
            "timeout.connect" => self.cfg.timeouts.connect = self.number(key)?,
            "timeout.io" | "timeout.io.tcp" => self.cfg.timeouts.io = self.number(key)?,
            "logoutput" => {
                (self.cfg.logoutput, self.cfg.origins.logoutput) = self.log_targets(key)?
            }
            "errorlog" => (self.cfg.errorlog, self.cfg.origins.errorlog) = self.log_targets(key)?,
            "debug" => {
                let n = self.number(key)?;
                if n > 2 {
                    return Err(self.diag(
                        pos,
                        format!("debug level {n} out of range (expected 0, 1 or 2)"),
                    ));
                }
                self.cfg.debug = n as u8;
            }
            "passwordfile" => {
                let (w, wpos) = self.word("a file path", key)?;
                self.cfg.passwordfile = Some(PathBuf::from(w));
                self.cfg.origins.passwordfile = Some(wpos);
            }
            "logformat" => {
                let (w, wpos) = self.word("text or json", key)?;
                self.cfg.logformat = match w.as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => {
                        return Err(self.diag(
                            wpos,
                            format!("unknown logformat \"{w}\" (expected text or json)"),
                        ))
                    }
                };
            }
            "verb" => {
                let n = self.number(key)?;
                if n > 11 {
                    return Err(self.diag(pos, format!("verb {n} out of range (expected 0 to 11)")));
                }
                self.cfg.verb = Some(n as u8);
            }
            "mute" => self.cfg.mute = u32::try_from(self.number(key)?).unwrap_or(u32::MAX),
            "log.interim" => self.cfg.log_interim = self.number(key)?,
            "log.default.facility" => {
                let (w, wpos) = self.word("a syslog facility", key)?;
                self.cfg.log_default_facility =
                    Some(Facility::from_name(&w).ok_or_else(|| self.bad_facility(&w, wpos))?);
            }
            k if k.starts_with("log.") => {
                let value_pos = self.peek().pos;
                let setting = self.subsystem_setting(key, pos)?;
                self.cfg.log_settings.push(setting);
                self.cfg.origins.log_settings.push(value_pos);
            }
            k if error_log_key(k).is_some() => {
                let e = self.error_log(key, pos)?;
                self.cfg.error_logs.push(e);
            }
            "status.file"
            | "status.interval"
            | "status.version"
            | "management"
            | "management.password"
            | "management.client-auth"
            | "metrics"
            | "metrics.control" => self.operator_setting(key, pos)?,
            k if logdir::is_logdir_key(k) => self.logdir_setting(key, pos)?,
            k if syslog_remote::is_remote_key(k) => self.remote_setting(key, pos)?,
            "udp.connectdst" => {
                let (w, wpos) = self.word("yes or no", key)?;
                self.cfg.udp_connectdst = match w.as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => {
                        return Err(self.diag(
                            wpos,
                            format!("expected yes or no after \"{key}\", found \"{w}\""),
                        ))
                    }
                };
            }
            "extension" => {
                for (w, wpos) in self.list("an extension", key)? {
                    if w != "bind" {
                        return Err(
                            self.diag(wpos, format!("unknown extension \"{w}\" (expected bind)"))
                        );
                    }
                }
                self.ignored(key, pos);
            }
            "compatibility" => {
                for (w, wpos) in self.list("a compatibility option", key)? {
                    let Some(s) = keywords::special_value(key, &w) else {
                        return Err(self.diag(
                            wpos,
                            format!("unknown compatibility option \"{w}\" (expected sameport or draft-5.05)"),
                        ));
                    };
                    self.special(s, key, wpos)?;
                }
            }
            _ => return Err(self.not_here(key, pos, None)),
        }
        Ok(())
    }

    /// `status.*` and `management*` (DESIGN.md §5): the status file and the management
    /// interface.
    fn operator_setting(&mut self, key: &str, pos: Pos) -> Res<()> {
        match key {
            "status.file" => {
                let (w, wpos) = self.word("a file path", key)?;
                self.operator.status_file = Some(PathBuf::from(w));
                self.cfg.origins.status_file = Some(wpos);
            }
            "status.interval" => {
                let (n, npos) = self.number_at(key)?;
                if n == 0 {
                    return Err(self.diag(
                        npos,
                        format!("status.interval {n} out of range (expected 1 or more seconds)"),
                    ));
                }
                self.operator.status_interval = Some((n, pos));
            }
            "status.version" => {
                let (n, npos) = self.number_at(key)?;
                if !(1..=3).contains(&n) {
                    return Err(self.diag(
                        npos,
                        format!("status.version {n} out of range (expected 1, 2 or 3)"),
                    ));
                }
                self.cfg.status_version = n as u8;
            }
            "management" => {
                let (listen, wpos) = self.management_listen(key)?;
                self.operator.management = Some(listen);
                self.cfg.origins.management = Some(wpos);
            }
            "management.password" => {
                let (w, wpos) = self.word("a file path", key)?;
                self.operator.password = Some((PathBuf::from(w), pos));
                self.cfg.origins.management_password = Some(wpos);
            }
            "management.client-auth" => {
                let on = self.on_off(key)?;
                self.operator.client_auth = Some((on, pos));
            }
            "metrics" => {
                let (host, hpos) = self.host_addr(key)?;
                let ip = match host {
                    HostAddr::Ip(ip) => ip,
                    HostAddr::Name(name) => return Err(self.diag(
                        hpos,
                        format!("\"{name}\" is not an IP address (expected an address such as 127.0.0.1 port = 9105)"),
                    )),
                };
                if !self.at_port_word() {
                    return Err(self.expected("\"port = N\"", key));
                }
                let port = self.port_value(key)?;
                self.operator.metrics = Some(SocketAddr::new(ip, port));
                self.cfg.origins.metrics = Some(hpos);
            }
            "metrics.control" => {
                let on = self.on_off(key)?;
                self.operator.metrics_control = Some((on, pos));
            }
            _ => return Err(self.not_here(key, pos, None)),
        }
        Ok(())
    }

    /// `management: PATH` (a word with a `/`) or `management: ADDRESS port = N`, the
    /// address a literal loopback or any address; and where it is written.
    fn management_listen(&mut self, key: &str) -> Res<(MgmtListen, Pos)> {
        let t = self.peek().clone();
        if let Tok::Word(w) = &t.tok {
            if w.contains('/') {
                self.i += 1;
                if w.len() > SUN_PATH_MAX {
                    return Err(self.diag(
                        t.pos,
                        format!(
                            "socket path \"{w}\" is {} bytes long; a Unix socket path holds at most {SUN_PATH_MAX}",
                            w.len()
                        ),
                    ));
                }
                if self.at_port_word() {
                    return Err(self.diag(
                        self.peek().pos,
                        format!("a socket path takes no port (\"{key}: {w}\")"),
                    ));
                }
                return Ok((MgmtListen::Unix(PathBuf::from(w)), t.pos));
            }
        }
        let (host, hpos) = self.host_addr(key)?;
        let ip = match host {
            HostAddr::Ip(ip) if ip.to_canonical().is_loopback() || ip.is_unspecified() => ip,
            HostAddr::Ip(ip) => {
                return Err(self.diag(
                    hpos,
                    format!("management address \"{ip}\" is neither a loopback address nor the any address (expected 127.0.0.1, ::1, 0.0.0.0 or ::, or a socket path)"),
                ))
            }
            HostAddr::Name(name) => {
                return Err(self.diag(
                    hpos,
                    format!("\"{name}\" is not a socket path or an IP address (expected a path such as /run/ferrosocks/mgmt.sock, or 127.0.0.1 port = 7505)"),
                ))
            }
        };
        if !self.at_port_word() {
            return Err(self.expected("\"port = N\"", key));
        }
        let port = self.port_value(key)?;
        Ok((MgmtListen::Tcp(SocketAddr::new(ip, port)), hpos))
    }

    /// `on` or `off` (also `yes` or `no`).
    fn on_off(&mut self, key: &str) -> Res<bool> {
        let (w, wpos) = self.word("on or off", key)?;
        match w.as_str() {
            "on" | "yes" => Ok(true),
            "off" | "no" => Ok(false),
            _ => Err(self.diag(
                wpos,
                format!("expected on or off after \"{key}\", found \"{w}\""),
            )),
        }
    }

    /// Builds `Config.status` and `Config.management` from the settings read, warning
    /// about those that do nothing without the one they refine.
    fn settle_operator(&mut self) {
        let op = std::mem::take(&mut self.operator);
        let interval = op.status_interval.map(|(n, _)| n);
        match op.status_file {
            Some(file) => {
                self.cfg.status = Some(StatusConfig {
                    file,
                    interval: interval.unwrap_or(StatusConfig::DEFAULT_INTERVAL),
                    version: self.cfg.status_version,
                })
            }
            None => {
                if let Some((_, pos)) = op.status_interval {
                    self.without(pos, "status.interval", "status.file");
                }
            }
        }
        match op.metrics {
            Some(listen) => {
                let control = op.metrics_control.is_some_and(|(on, _)| on);
                if let (Some((true, pos)), None) = (op.metrics_control, &op.password) {
                    let d = self.diag(
                        pos,
                        "\"metrics.control: on\" has no effect without \"management.password\": the dashboard cuts sessions only with that password".to_string(),
                    );
                    self.warnings.push(d);
                }
                self.cfg.metrics = Some(MetricsConfig { listen, control });
            }
            None => {
                if let Some((_, pos)) = op.metrics_control {
                    self.without(pos, "metrics.control", "metrics");
                }
            }
        }
        let Some(listen) = op.management else {
            for (key, pos) in [
                op.password.map(|(_, p)| ("management.password", p)),
                op.client_auth.map(|(_, p)| ("management.client-auth", p)),
            ]
            .into_iter()
            .flatten()
            {
                self.without(pos, key, "management");
            }
            return;
        };
        if let (MgmtListen::Tcp(addr), None) = (&listen, &op.password) {
            if addr.ip().is_unspecified() {
                let pos = self.cfg.origins.management.unwrap_or_default();
                let d = self.diag(
                    pos,
                    format!("the management interface listens on every address without \"management.password\": anyone who reaches port {} can control the server", addr.port()),
                );
                self.warnings.push(d);
            }
        }
        self.cfg.management = Some(ManagementConfig {
            listen,
            password: op.password.map(|(p, _)| p),
            client_auth: op.client_auth.is_some_and(|(on, _)| on),
        });
    }

    /// The warning for `key`, which does nothing without `needs`.
    fn without(&mut self, pos: Pos, key: &str, needs: &str) {
        let d = self.diag(pos, format!("\"{key}\" has no effect without \"{needs}\""));
        self.warnings.push(d);
    }

    /// The warning for `key`, a keyword the table marks as ignored: it names the keyword
    /// and says why ignoring it is safe.
    fn ignored(&mut self, key: &str, pos: Pos) {
        let k = keywords::lookup(key).expect("an ignored keyword of the table");
        let d = self.diag(pos, k.message(key));
        self.warnings.push(d);
    }

    /// A value the table lists as ignored (a warning; the value is skipped) or as
    /// refused (the error). `key` is the keyword as written.
    fn special(&mut self, s: &keywords::Special, key: &str, pos: Pos) -> Res<()> {
        let d = self.diag(pos, s.message(key));
        if s.status == Status::Ignored {
            self.warnings.push(d);
            Ok(())
        } else {
            Err(d)
        }
    }

    /// The error for a keyword this place does not take: refused by the keyword table,
    /// wrong place, or unknown with a suggestion.
    fn not_here(&self, key: &str, pos: Pos, rule: Option<RuleKind>) -> Diagnostic {
        let message = match keywords::lookup(key) {
            Some(k) if k.status == Status::NotYet => k.message(key),
            Some(k) if !k.allowed_in(rule) => match rule {
                None => format!("\"{key}\" is only valid inside a rule"),
                Some(RuleKind::Client) => format!("\"{key}\" is not valid in a client rule"),
                Some(RuleKind::Socks) => format!("\"{key}\" is not valid in a socks rule"),
            },
            _ => unknown_keyword(key),
        };
        self.diag(pos, message)
    }

    // === rules ===

    fn rule(&mut self) -> Res<()> {
        let start = self.peek().pos;
        let (first, _) = self.word("a rule", "")?;
        let (kind, action_word) = match first.as_str() {
            "client" => (RuleKind::Client, self.word("pass or block", "client")?),
            "socks" => (RuleKind::Socks, self.word("pass or block", "socks")?),
            _ => (RuleKind::Socks, (first.clone(), start)),
        };
        let action = match action_word.0.as_str() {
            "pass" => Action::Pass,
            "block" => Action::Block,
            w => {
                return Err(self.diag(
                    action_word.1,
                    format!("unknown rule action \"{w}\" (expected pass or block)"),
                ))
            }
        };
        while self.peek().tok == Tok::Newline {
            self.i += 1;
        }
        if self.peek().tok != Tok::Open {
            return Err(self.expected("\"{\"", &action_word.0));
        }
        self.bump();
        self.first_rule.get_or_insert(start);
        if let Some(route) = self.cfg.routes.first() {
            let d = self.diag(
                start,
                format!(
                    "rule after the first route (line {}); rules must come before routes",
                    route.line
                ),
            );
            self.errors.push(d);
        }
        let number = 1 + match kind {
            RuleKind::Client => self.cfg.client_rules.len(),
            RuleKind::Socks => self.cfg.socks_rules.len(),
        } as u32;
        let mut rule = Rule {
            kind,
            number,
            line: start.line,
            action,
            from: AddrMatch::any(),
            to: AddrMatch::any(),
            commands: None,
            protocols: None,
            proxyprotocols: None,
            udp_portrange: None,
            error_logs: Vec::new(),
            socksmethods: None,
            clientmethods: None,
            users: None,
            log: LogFlags::default(),
            timeout_negotiate: None,
            timeout_connect: None,
            timeout_io: None,
            log_interim: None,
        };
        let what = match kind {
            RuleKind::Client => "client rule",
            RuleKind::Socks => "socks rule",
        };
        self.block_body(start, what, |p| p.rule_keyword(&mut rule));
        match kind {
            RuleKind::Client => self.cfg.client_rules.push(rule),
            RuleKind::Socks => self.cfg.socks_rules.push(rule),
        }
        Ok(())
    }

    /// The keywords of a `{ … }` block up to its closing brace, one `item` call per
    /// keyword; a bad keyword is recorded and its line skipped, so every error in the
    /// block is reported. `what` names the block ("socks rule", "route") when its
    /// closing brace is missing: at the end of the file, or where the next rule or route
    /// begins (left in place, so that it is parsed and its errors reported too).
    fn block_body(&mut self, start: Pos, what: &str, mut item: impl FnMut(&mut Self) -> Res<()>) {
        loop {
            match self.peek().tok {
                Tok::Close => {
                    self.bump();
                    break;
                }
                Tok::Newline => self.i += 1,
                Tok::Eof => {
                    self.unclosed(start, what);
                    break;
                }
                _ if self.at_block_start() => {
                    self.unclosed(start, what);
                    break;
                }
                _ => {
                    if let Err(d) = item(self) {
                        self.errors.push(d);
                        self.skip_line(true);
                    }
                }
            }
        }
    }

    /// Records that the block opened at `start` has no closing brace before the
    /// current token.
    fn unclosed(&mut self, start: Pos, what: &str) {
        let t = self.peek();
        let d = self.diag(
            t.pos,
            format!(
                "the {what} opened on line {} is not closed: \"}}\" expected before {}",
                start.line,
                t.tok.describe()
            ),
        );
        self.errors.push(d);
    }

    /// Whether a rule (`client pass`, `socks block`, `pass {`, …) or a route starts at
    /// the current token. Inside a block every keyword ends with a colon, so these words
    /// can only mean that the block's closing brace is missing.
    fn at_block_start(&self) -> bool {
        let tok = |i: usize| self.toks.get(i).map(|t| &t.tok);
        let word = |i: usize| match tok(i) {
            Some(Tok::Word(w)) => Some(w.as_str()),
            _ => None,
        };
        let mut next = self.i + 1;
        match word(self.i) {
            Some("client" | "socks") => matches!(word(next), Some("pass" | "block")),
            Some("pass" | "block" | "route") => {
                while tok(next) == Some(&Tok::Newline) {
                    next += 1;
                }
                tok(next) == Some(&Tok::Open)
            }
            _ => false,
        }
    }

    fn rule_keyword(&mut self, rule: &mut Rule) -> Res<()> {
        let (key, pos) = self.keyword()?;
        let kind = rule.kind;
        match (key.as_str(), kind) {
            ("from", _) => rule.from = self.addr_match(&key)?,
            ("to", _) => rule.to = self.addr_match(&key)?,
            ("command", RuleKind::Socks) => rule.commands = Some(self.commands(&key)?),
            ("protocol", RuleKind::Socks) => {
                let mut protos = Vec::new();
                for (w, wpos) in self.list("a protocol", &key)? {
                    protos.push(match w.as_str() {
                        "tcp" => Protocol::Tcp,
                        "udp" => Protocol::Udp,
                        _ => {
                            return Err(self.diag(
                                wpos,
                                format!("unknown protocol \"{w}\" (expected tcp or udp)"),
                            ))
                        }
                    });
                }
                rule.protocols = Some(protos);
            }
            (k, _) if error_log_key(k).is_some() => {
                let e = self.error_log(&key, pos)?;
                rule.error_logs.push(e);
            }
            ("proxyprotocol", RuleKind::Socks) => {
                let mut out = Vec::new();
                for (w, wpos) in self.list("a proxy protocol", &key)? {
                    out.push(match w.as_str() {
                        "socks_v4" => ProxyProtocol::SocksV4,
                        "socks_v5" => ProxyProtocol::SocksV5,
                        "http" | "upnp" => {
                            return Err(self.diag(
                                wpos,
                                format!("proxyprotocol \"{w}\" is only valid in a route"),
                            ))
                        }
                        _ => {
                            return Err(self.diag(
                                wpos,
                                format!(
                                    "unknown proxyprotocol \"{w}\" (expected socks_v4 or socks_v5)"
                                ),
                            ))
                        }
                    });
                }
                rule.proxyprotocols = Some(out);
            }
            ("udp.portrange", RuleKind::Socks) => {
                let (w, wpos) = self.word("a port range", &key)?;
                let range = w
                    .split_once('-')
                    .and_then(|(a, b)| Some((parse_number(a)?, parse_number(b)?)))
                    .filter(|&(a, b)| a >= 1 && a <= b && b <= 65535);
                let Some((a, b)) = range else {
                    return Err(self.diag(
                        wpos,
                        format!("bad port range \"{w}\" (expected A-B, 1 <= A <= B <= 65535)"),
                    ));
                };
                rule.udp_portrange = Some((a as u16, b as u16));
            }
            ("socksmethod", RuleKind::Client) => {
                let s = keywords::special_place("socksmethod", Place::ClientRule)
                    .expect("in the table");
                return Err(self.diag(pos, s.message(&key)));
            }
            ("socksmethod", RuleKind::Socks) => {
                rule.socksmethods = Some(self.methods(&key, false)?)
            }
            ("clientmethod", _) => rule.clientmethods = Some(self.methods(&key, true)?),
            ("method", RuleKind::Client) => rule.clientmethods = Some(self.methods(&key, true)?),
            ("method", RuleKind::Socks) => {
                self.warnings
                    .push(self.diag(pos, "\"method\" is deprecated; use \"socksmethod\"".into()));
                rule.socksmethods = Some(self.methods(&key, false)?);
            }
            ("user", _) => {
                rule.users = Some(
                    self.list("a user name", &key)?
                        .into_iter()
                        .map(|(w, _)| w)
                        .collect(),
                )
            }
            ("log", _) => rule.log = self.log_flags(&key)?,
            ("timeout.negotiate", RuleKind::Client) => {
                rule.timeout_negotiate = Some(self.number(&key)?)
            }
            ("timeout.connect", RuleKind::Socks) => rule.timeout_connect = Some(self.number(&key)?),
            ("timeout.io", RuleKind::Socks) => rule.timeout_io = Some(self.number(&key)?),
            ("log.interim", RuleKind::Socks) => rule.log_interim = Some(self.number(&key)?),
            _ => return Err(self.not_here(&key, pos, Some(kind))),
        }
        Ok(())
    }

    fn route(&mut self) -> Res<()> {
        let start = self.bump().pos;
        while self.peek().tok == Tok::Newline {
            self.i += 1;
        }
        if self.peek().tok != Tok::Open {
            return Err(self.expected("\"{\"", "route"));
        }
        self.bump();
        self.first_rule.get_or_insert(start);
        let mut route = Route {
            number: self.cfg.routes.len() as u32 + 1,
            line: start.line,
            from: AddrMatch::any(),
            to: AddrMatch::any(),
            via: Via::Direct,
            protocols: vec![UpstreamProtocol::SocksV5],
            methods: vec![AuthMethod::None],
            commands: None,
        };
        let mut has_via = false;
        self.block_body(start, "route", |p| {
            has_via |= p.route_keyword(&mut route)?;
            Ok(())
        });
        if !has_via {
            return Err(self.diag(
                start,
                "route has no \"via:\" (expected \"via: ADDRESS port = N\" or \"via: direct\")"
                    .into(),
            ));
        }
        self.cfg.routes.push(route);
        Ok(())
    }

    /// One keyword of a route; returns whether it was `via:`.
    fn route_keyword(&mut self, route: &mut Route) -> Res<bool> {
        let (key, pos) = self.keyword()?;
        match key.as_str() {
            "from" => route.from = self.addr_match(&key)?,
            "to" => route.to = self.addr_match(&key)?,
            "via" => {
                let (w, wpos) = self.word("an address or \"direct\"", &key)?;
                route.via = if w == "direct" {
                    Via::Direct
                } else {
                    let host = match w.parse::<IpAddr>() {
                        Ok(ip) => HostAddr::Ip(ip),
                        Err(_) if valid_name(&w) => HostAddr::Name(w),
                        Err(_) => {
                            return Err(
                                self.diag(wpos, format!("\"{w}\" is not an address or host name"))
                            )
                        }
                    };
                    if !self.at_port_word() {
                        return Err(self.expected("\"port = N\"", "via:"));
                    }
                    Via::Proxy {
                        host,
                        port: self.port_value(&key)?,
                    }
                };
                return Ok(true);
            }
            "proxyprotocol" => {
                let mut out = Vec::new();
                for (w, wpos) in self.list("a proxy protocol", &key)? {
                    if let Some(s) = keywords::special_value("proxyprotocol", &w) {
                        self.special(s, &key, wpos)?;
                        continue;
                    }
                    out.push(match w.as_str() {
                        "socks_v4" => UpstreamProtocol::SocksV4,
                        "socks_v5" => UpstreamProtocol::SocksV5,
                        "http" | "http_v1.0" => UpstreamProtocol::Http,
                        _ => return Err(self.diag(wpos, format!("unknown proxyprotocol \"{w}\" (expected socks_v4, socks_v5 or http)"))),
                    });
                }
                route.protocols = out;
            }
            "method" | "socksmethod" => {
                let mut out = Vec::new();
                for (w, wpos) in self.list("a method", &key)? {
                    out.push(match w.as_str() {
                        "none" => AuthMethod::None,
                        "username" => AuthMethod::Username,
                        _ => return Err(self.diag(wpos, format!("method \"{w}\" is not supported in a route (expected none or username)"))),
                    });
                }
                route.methods = out;
            }
            "command" => route.commands = Some(self.commands(&key)?),
            "protocol" => {
                for (w, wpos) in self.list("a protocol", &key)? {
                    if w != "tcp" && w != "udp" {
                        return Err(self.diag(
                            wpos,
                            format!("unknown protocol \"{w}\" (expected tcp or udp)"),
                        ));
                    }
                }
            }
            _ => {
                let message = match keywords::lookup(&key) {
                    Some(k) if k.status == Status::NotYet => k.message(&key),
                    Some(_) => format!("\"{key}\" is not valid in a route"),
                    None => unknown_keyword(&key),
                };
                return Err(self.diag(pos, message));
            }
        }
        Ok(false)
    }

    fn bad_facility(&self, w: &str, pos: Pos) -> Diagnostic {
        self.diag(pos, format!("unknown syslog facility \"{w}\" (expected user, daemon, auth, authpriv or local0..local7)"))
    }

    /// `log.<subsystem>.level|file|facility|operators: VALUE`.
    fn subsystem_setting(&mut self, key: &str, pos: Pos) -> Res<SubsystemSetting> {
        let parts: Vec<&str> = key.splitn(3, '.').collect();
        let (Some(sub), Some(what)) = (parts.get(1), parts.get(2)) else {
            return Err(self.diag(
                pos,
                format!("expected log.SUBSYSTEM.level|file|facility|operators, found \"{key}\""),
            ));
        };
        let value = match *what {
            "level" => SubsystemValue::Level(self.word("a level", key)?.0),
            "file" => SubsystemValue::File(PathBuf::from(self.word("a file path", key)?.0)),
            "facility" => {
                let (w, wpos) = self.word("a syslog facility, none or default", key)?;
                SubsystemValue::Facility(match w.as_str() {
                    "none" => FacilityChoice::None,
                    "default" => FacilityChoice::Default,
                    _ => FacilityChoice::Facility(Facility::from_name(&w).ok_or_else(|| self.bad_facility(&w, wpos))?),
                })
            }
            "operators" => {
                let (w, wpos) = self.word("on or off", key)?;
                SubsystemValue::Operators(match w.as_str() {
                    "on" | "yes" => true,
                    "off" | "no" => false,
                    _ => return Err(self.diag(wpos, format!("expected on or off after \"{key}\", found \"{w}\""))),
                })
            }
            other => {
                return Err(self.diag(pos, format!("unknown setting \"{other}\" in \"{key}\" (expected level, file, facility or operators)")))
            }
        };
        Ok(SubsystemSetting {
            subsystem: (*sub).to_owned(),
            origin: Origin {
                file: self.file.to_owned(),
                pos,
            },
            value,
        })
    }

    /// `internal|external.log.<level>.error: SYMBOL ...`.
    fn error_log(&mut self, key: &str, pos: Pos) -> Res<ErrorLog> {
        let (side, level) = error_log_key(key).expect("checked by the caller");
        if !DANTE_LEVELS.contains(&level) {
            return Err(self.diag(
                pos,
                format!(
                    "unknown level \"{level}\" in \"{key}\" (expected {})",
                    DANTE_LEVELS.join(" ")
                ),
            ));
        }
        let mut e = ErrorLog {
            side,
            level: level.to_owned(),
            errnos: Vec::new(),
            eai: Vec::new(),
        };
        for (w, wpos) in self.list("errno, EAI_* or alias names", key)? {
            let Some((errnos, eai)) = crate::errors::expand(&w) else {
                return Err(self.diag(wpos, format!("unknown error symbol \"{w}\" (expected an errno name, an EAI_* name, no-route, dns-any or system-any)")));
            };
            e.errnos.extend(errnos);
            e.eai.extend(eai);
        }
        Ok(e)
    }

    /// `command:` values.
    fn commands(&mut self, key: &str) -> Res<Vec<SocksCommand>> {
        let mut cmds = Vec::new();
        for (w, wpos) in self.list("a command", key)? {
            cmds.push(match w.as_str() {
                "connect" => SocksCommand::Connect,
                "bind" => SocksCommand::Bind,
                "bindreply" => SocksCommand::BindReply,
                "udpassociate" => SocksCommand::UdpAssociate,
                "udpreply" => SocksCommand::UdpReply,
                _ => {
                    return Err(self.diag(
                        wpos,
                        format!("unknown command \"{w}\" (expected connect, bind, bindreply, udpassociate or udpreply)"),
                    ))
                }
            });
        }
        Ok(cmds)
    }

    fn log_flags(&mut self, key: &str) -> Res<LogFlags> {
        let mut f = LogFlags::default();
        for (w, pos) in self.list("log keywords", key)? {
            match w.as_str() {
                "connect" => f.connect = true,
                "disconnect" => f.disconnect = true,
                "data" => f.data = true,
                "ioop" | "iooperation" => f.ioop = true,
                "error" => f.error = true,
                "tcpinfo" => f.tcpinfo = true,
                _ => {
                    return Err(self.diag(
                        pos,
                        format!("unknown log keyword \"{w}\" (expected {LOG_WORDS})"),
                    ))
                }
            }
        }
        Ok(f)
    }

    fn methods(&mut self, key: &str, client: bool) -> Res<Vec<AuthMethod>> {
        let canonical = if client {
            "clientmethod"
        } else {
            "socksmethod"
        };
        let mut out = Vec::new();
        for (w, pos) in self.list("a method", key)? {
            if let Some(s) = keywords::special_value(canonical, &w) {
                self.special(s, key, pos)?;
                continue;
            }
            let m = match w.as_str() {
                "none" => AuthMethod::None,
                "username" if !client => AuthMethod::Username,
                "username" => return Err(self.diag(pos, format!("method \"username\" is not valid for \"{key}\" (client rules see no SOCKS bytes; use socksmethod)"))),
                "rfc931" => AuthMethod::Rfc931,
                _ if client && keywords::special_value("socksmethod", &w).is_some() => {
                    return Err(self.diag(pos, format!("method \"{w}\" is not valid for \"{key}\" (expected none, rfc931, pam.any or pam.address)")))
                }
                _ => return Err(self.diag(pos, format!("unknown method \"{w}\" (expected none, rfc931{})", if client { "" } else { " or username" }))),
            };
            if !out.contains(&m) {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// The targets of `logoutput:` or `errorlog:`, and where each is written.
    fn log_targets(&mut self, key: &str) -> Res<(Vec<LogTarget>, Vec<Pos>)> {
        let (mut out, mut at) = (Vec::new(), Vec::new());
        for (w, pos) in self.list("a log destination", key)? {
            at.push(pos);
            out.push(match w.as_str() {
                "stdout" => LogTarget::Stdout,
                "stderr" => LogTarget::Stderr,
                "json:stdout" => LogTarget::Json(JsonTarget::Stdout),
                "json:stderr" => LogTarget::Json(JsonTarget::Stderr),
                w if w.starts_with("json:") && w.len() > 5 => LogTarget::Json(JsonTarget::File(PathBuf::from(&w[5..]))),
                "syslog" => LogTarget::Syslog(Facility::Daemon),
                _ => match w.strip_prefix("syslog/") {
                    Some(name) => LogTarget::Syslog(Facility::from_name(name).ok_or_else(|| {
                        self.diag(pos, format!("unknown syslog facility \"{name}\" (expected user, daemon, auth, authpriv or local0..local7)"))
                    })?),
                    None => LogTarget::File(PathBuf::from(w)),
                },
            });
        }
        Ok((out, at))
    }

    // === addresses ===

    /// An `internal:` or `external:` address, and where it is written.
    fn host_addr(&mut self, key: &str) -> Res<(HostAddr, Pos)> {
        let (w, pos) = self.word("an address or interface name", key)?;
        if let Ok(ip) = w.parse::<IpAddr>() {
            return Ok((HostAddr::Ip(ip), pos));
        }
        if valid_name(&w) {
            Ok((HostAddr::Name(w), pos))
        } else {
            Err(self.diag(pos, format!("\"{w}\" is not an address or interface name")))
        }
    }

    fn at_port_word(&self) -> bool {
        matches!(&self.peek().tok, Tok::Word(w) if w == "port" || w.starts_with("port:"))
    }

    /// `port = N`, `port: N`, `port N`, `port eq N` after `internal:`.
    fn port_value(&mut self, key: &str) -> Res<u16> {
        match self.port_match(key)? {
            PortMatch::Op(PortOp::Eq, n) => Ok(n),
            _ => Err(self.diag(
                self.peek().pos,
                format!("expected \"port = N\" after \"{key}\""),
            )),
        }
    }

    fn addr_match(&mut self, key: &str) -> Res<AddrMatch> {
        let (w, pos) = self.word("an address", key)?;
        let host = self.host_match(&w, pos)?;
        let port = if self.at_port_word() {
            self.port_match(key)?
        } else {
            PortMatch::Any
        };
        Ok(AddrMatch { host, port })
    }

    fn host_match(&self, w: &str, pos: Pos) -> Res<HostMatch> {
        if w == "0/0" {
            return Ok(HostMatch::Any);
        }
        if let Some((addr, mask)) = w.split_once('/') {
            let ip: IpAddr = addr.parse().map_err(|_| {
                self.diag(pos, format!("\"{addr}\" in \"{w}\" is not an IP address"))
            })?;
            let prefix = parse_mask(ip, mask).ok_or_else(|| {
                self.diag(pos, format!("bad netmask \"{mask}\" in \"{w}\" (expected a prefix length or a dotted mask)"))
            })?;
            return Ok(HostMatch::Net { addr: ip, prefix });
        }
        match w.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => Err(self.diag(
                pos,
                format!("no netmask has been specified for the IPv4 address \"{w}\", but a netmask must be specified in this context (write \"{w}/32\")"),
            )),
            Ok(ip @ IpAddr::V6(_)) => Ok(HostMatch::Net { addr: ip, prefix: 128 }),
            Err(_) => match w.strip_prefix('.') {
                Some(domain) if valid_name(domain) => Ok(HostMatch::Domain(domain.to_ascii_lowercase())),
                None if valid_name(w) => Ok(HostMatch::Name(w.to_ascii_lowercase())),
                _ => Err(self.diag(pos, format!("\"{w}\" is not an address, host name, domain or interface name"))),
            },
        }
    }

    fn port_match(&mut self, key: &str) -> Res<PortMatch> {
        let (w, pos) = self.word("\"port\"", key)?;
        let glued = w.strip_prefix("port:").filter(|r| !r.is_empty());
        if let Some(rest) = glued {
            return Ok(PortMatch::Op(PortOp::Eq, self.port_number(rest, pos)?));
        }
        if w == "port:" {
            let (n, npos) = self.word("a port", "port:")?;
            return Ok(PortMatch::Op(PortOp::Eq, self.port_number(&n, npos)?));
        }
        let t = self.bump();
        let op = match &t.tok {
            Tok::Op(o) => Some(*o),
            Tok::Word(w) => match w.as_str() {
                "eq" | "ne" | "neq" | "ge" | "le" | "gt" | "lt" => Some(w.as_str()),
                _ => None,
            },
            _ => {
                return Err(self.diag(
                    t.pos,
                    format!("expected a port after \"port\", found {}", t.tok.describe()),
                ))
            }
        }
        .map(|o| match o {
            "=" | "eq" => Some(PortOp::Eq),
            "!=" | "ne" | "neq" => Some(PortOp::Ne),
            ">=" | "ge" => Some(PortOp::Ge),
            "<=" | "le" => Some(PortOp::Le),
            ">" | "gt" => Some(PortOp::Gt),
            "<" | "lt" => Some(PortOp::Lt),
            _ => None,
        });
        match op {
            Some(Some(op)) => {
                let (n, npos) = self.word("a port", "port")?;
                Ok(PortMatch::Op(op, self.port_number(&n, npos)?))
            }
            Some(None) => {
                Err(self.diag(t.pos, format!("unknown port operator {}", t.tok.describe())))
            }
            None => {
                let Tok::Word(w) = t.tok else {
                    unreachable!("checked above")
                };
                if let Some((a, b)) = w.split_once('-').filter(|(a, _)| !a.is_empty()) {
                    let (a, b) = (self.port_number(a, t.pos)?, self.port_number(b, t.pos)?);
                    if a > b {
                        return Err(self.diag(t.pos, format!("port range \"{w}\" runs backwards")));
                    }
                    return Ok(PortMatch::Range(a, b));
                }
                Ok(PortMatch::Op(PortOp::Eq, self.port_number(&w, t.pos)?))
            }
        }
    }

    fn port_number(&self, w: &str, pos: Pos) -> Res<u16> {
        if let Some(n) = parse_number(w) {
            return u16::try_from(n)
                .map_err(|_| self.diag(pos, format!("port {n} out of range (0-65535)")));
        }
        services::port_of(w).ok_or_else(|| {
            self.diag(
                pos,
                format!("\"{w}\" is not a port number or known service name"),
            )
        })
    }
}

/// `internal.log.LEVEL.error` → (Internal, LEVEL).
fn error_log_key(key: &str) -> Option<(ErrorSide, &str)> {
    let (side, rest) = if let Some(r) = key.strip_prefix("internal.log.") {
        (ErrorSide::Internal, r)
    } else {
        (ErrorSide::External, key.strip_prefix("external.log.")?)
    };
    rest.strip_suffix(".error").map(|level| (side, level))
}

fn unknown_keyword(word: &str) -> String {
    match keywords::nearest(word) {
        Some(near) => format!("unknown keyword \"{word}\"; did you mean \"{near}\"?"),
        None => format!("unknown keyword \"{word}\""),
    }
}

fn parse_number(w: &str) -> Option<u64> {
    match w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None if w.bytes().all(|b| b.is_ascii_digit()) => w.parse().ok(),
        None => None,
    }
}

fn parse_mask(ip: IpAddr, mask: &str) -> Option<u8> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if let Ok(bits) = mask.parse::<u8>() {
        return (bits <= max).then_some(bits);
    }
    let IpAddr::V4(m) = mask.parse::<IpAddr>().ok()? else {
        return None;
    };
    let m = u32::from(m);
    let bits = m.leading_ones();
    (ip.is_ipv4() && m.checked_shl(bits).unwrap_or(0) == 0).then_some(bits as u8)
}

fn valid_name(w: &str) -> bool {
    !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}
