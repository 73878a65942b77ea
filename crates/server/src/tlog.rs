//! Building and emitting Dante traffic records for one rule.
//!
//! [`RuleLog`] binds a rule's verdict, number and `log:` keywords; each method emits
//! one kind of record if the keywords ask for it, following Dante 1.4:
//! `connect` → start lines, `ioop`/`data` → one line per I/O operation,
//! `disconnect` → end-of-session summaries, `error` (or `disconnect`) → failures,
//! and blocks are logged under any of connect, disconnect, data or ioop. The default
//! rule #0 logs only when debug is on.
//!
//! Subsystems: starts, blocks and failures of `accept` go to CLIENT and of the other TCP
//! commands to REQUEST, at INFO; I/O lines and summaries to TRAFFIC at TRACE; every UDP
//! record to UDP at TRACE. Handshake refusals go to CLIENT (AUTH for failed logins) and
//! are subject to `mute`.
//!
//! Each record method is also the `emit` of its counted event (`crate::events`): it
//! counts whatever the rule's `log:` says, then writes the record if the rule asks, so
//! the metrics and the log cannot disagree.

use std::net::SocketAddr;

use logsys::{Level, Logger, Subsystem};
use sockd_conf::{Action, LogFlags, Rule};
use socks_proto::{Host, Target};
use traffic_log::{
    Auth, Command, Count, EndCause, Endpoint, EndpointHost, Ends, Event, Leg, Proto, Record, Side,
    Summary, Verdict,
};

use crate::events::{ClientBlocked, ClientPassed, Decision, RequestDecided, Summarized};

/// The logging context of one rule for one session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleLog {
    pub(crate) verdict: Verdict,
    pub(crate) number: u32,
    pub(crate) flags: LogFlags,
    pub(crate) command: Command,
    /// The rule's `log.interim:` (`None`: the global value).
    pub(crate) interim: Option<u64>,
}

/// The protocol Dante prints for a command.
fn proto_of(command: Command) -> Proto {
    match command {
        Command::UdpAssociate | Command::UdpReply => Proto::Udp,
        _ => Proto::Tcp,
    }
}

impl RuleLog {
    /// The context for `rule`, or for the default block rule #0 when `None`.
    pub(crate) fn new(rule: Option<&Rule>, command: Command, debug: bool) -> Self {
        match rule {
            Some(r) => Self {
                verdict: match r.action {
                    Action::Pass => Verdict::Pass,
                    Action::Block => Verdict::Block,
                },
                number: r.number,
                flags: r.log,
                command,
                interim: r.log_interim,
            },
            None => Self {
                verdict: Verdict::Block,
                number: 0,
                flags: if debug {
                    LogFlags {
                        connect: true,
                        disconnect: true,
                        data: false,
                        ioop: true,
                        error: true,
                        tcpinfo: false,
                    }
                } else {
                    LogFlags::default()
                },
                command,
                interim: None,
            },
        }
    }

    pub(crate) fn logs_blocks(&self) -> bool {
        let f = self.flags;
        f.connect || f.disconnect || f.data || f.ioop
    }

    pub(crate) fn logs_errors(&self) -> bool {
        self.flags.error || self.flags.disconnect
    }

    pub(crate) fn logs_io(&self) -> bool {
        self.flags.ioop || self.flags.data
    }

    /// Where this rule's operation records go: CLIENT/REQUEST at INFO, UDP at TRACE.
    fn op_sub(&self) -> (Subsystem, Level) {
        match self.command {
            Command::Accept => (Subsystem::CLIENT, Level::Info),
            Command::UdpAssociate | Command::UdpReply => (Subsystem::UDP, Level::Trace),
            _ => (Subsystem::REQUEST, Level::Info),
        }
    }

    /// Where I/O lines and summaries go: TRAFFIC, or UDP, at TRACE.
    fn traffic_sub(&self) -> Subsystem {
        match self.command {
            Command::UdpAssociate | Command::UdpReply => Subsystem::UDP,
            _ => Subsystem::TRAFFIC,
        }
    }

    fn emit_op(&self, log: &Logger, verdict: Verdict, event: Event) {
        let (sub, level) = self.op_sub();
        log.traffic(sub, level, self.record(verdict, event));
    }

    fn record(&self, verdict: Verdict, event: Event) -> Record {
        Record {
            verdict,
            rule: self.number,
            proto: proto_of(self.command),
            command: self.command,
            event,
        }
    }

    /// `[:` when `connect` is on.
    pub(crate) fn start(&self, log: &Logger, ends: Ends) {
        self.start_with(log, || ends);
    }

    /// [`RuleLog::start`] with the endpoints built only when the record is written
    /// (a session's lists are cloned for nothing when the rule does not log `connect`).
    pub(crate) fn start_with(&self, log: &Logger, ends: impl FnOnce() -> Ends) {
        self.count_start();
        if self.flags.connect {
            let ends = ends();
            self.emit_op(log, self.verdict, Event::Start { ends, desc: None });
        }
    }

    /// The start's event for the metrics: a client passed, or a request.
    fn count_start(&self) {
        match self.command {
            Command::Accept => ClientPassed { rule: self.number }.emit(),
            command => RequestDecided {
                command,
                decision: Decision::Pass,
                rule: self.number,
            }
            .emit(),
        }
    }

    /// `block(N): … ]: ENDS[: DESC]` when blocks are logged.
    /// Counted as the client rule's block (`desc` is `None`: this rule decided) or as a
    /// blocked request.
    pub(crate) fn blocked(&self, log: &Logger, ends: Ends, desc: Option<String>) {
        match self.command {
            Command::Accept if desc.is_none() => ClientBlocked { rule: self.number }.emit(),
            Command::Accept => {}
            command => RequestDecided {
                command,
                decision: Decision::Block,
                rule: self.number,
            }
            .emit(),
        }
        if self.logs_blocks() {
            self.emit_op(log, Verdict::Block, Event::Stop { ends, desc });
        }
    }

    /// `pass(N): … ]: ENDS[: DESC]` when disconnect is on: an operation ended, no counts.
    pub(crate) fn stopped(&self, log: &Logger, ends: Ends, desc: Option<String>) {
        if self.flags.disconnect {
            self.emit_op(log, self.verdict, Event::Stop { ends, desc });
        }
    }

    /// `VERDICT(N): … -: ENDS: DESC`: one datagram or attempt refused or failed. These
    /// repeat, so they share one `mute` category.
    pub(crate) fn transient(&self, log: &Logger, verdict: Verdict, ends: Ends, desc: String) {
        let (sub, level) = self.op_sub();
        if (self.logs_errors() || self.logs_blocks()) && log.enabled(sub, level) {
            let line = self
                .record(
                    verdict,
                    Event::Transient {
                        ends,
                        desc: Some(desc),
                    },
                )
                .to_string();
            log.categorized(sub, level, 2, line);
        }
    }

    /// `pass(N): … -: ENDS (N)` for a datagram relayed, when ioop is on (packets: one op
    /// each); `block(N): … -: ENDS` for one a rule blocks, as Dante 1.4.2 writes it.
    pub(crate) fn datagram(&self, log: &Logger, verdict: Verdict, ends: Ends, bytes: &[u8]) {
        if verdict == Verdict::Block {
            if self.logs_blocks() {
                let event = Event::Transient { ends, desc: None };
                log.traffic(Subsystem::UDP, Level::Trace, self.record(verdict, event));
            }
            return;
        }
        if verdict == Verdict::Pass && !self.logs_io() {
            return;
        }
        let data = (self.flags.data && !bytes.is_empty()).then(|| traffic_log::vis::encode(bytes));
        let event = Event::Io {
            ends,
            bytes: bytes.len() as u64,
            data,
        };
        log.traffic(Subsystem::UDP, Level::Trace, self.record(verdict, event));
    }

    /// `block(N): … ]: ENDS: DESC` for a request that failed before it started.
    /// Counted as a request `error` (the client rule's line for the same session is not
    /// counted again).
    pub(crate) fn failed(&self, log: &Logger, ends: Ends, desc: String) {
        if self.command != Command::Accept {
            RequestDecided {
                command: self.command,
                decision: Decision::Error,
                rule: self.number,
            }
            .emit();
        }
        if self.logs_errors() || self.logs_blocks() {
            self.emit_op(
                log,
                Verdict::Block,
                Event::Stop {
                    ends,
                    desc: Some(desc),
                },
            );
        }
    }

    /// Always logged: a client that broke the protocol (CLIENT) or failed authentication
    /// (AUTH). These repeat, so they share one `mute` category.
    pub(crate) fn refused(&self, log: &Logger, sub: Subsystem, ends: Ends, desc: String) {
        if log.enabled(sub, Level::Info) {
            let line = self
                .record(
                    Verdict::Block,
                    Event::Stop {
                        ends,
                        desc: Some(desc),
                    },
                )
                .to_string();
            log.categorized(sub, Level::Info, 1, line);
        }
    }

    /// Whether I/O records would be written (check before building their endpoints).
    pub(crate) fn io_wanted(&self, log: &Logger) -> bool {
        self.logs_io() && log.enabled(self.traffic_sub(), Level::Trace)
    }

    /// `-: ENDS (N)[: DATA]` when `ioop` or `data` is on; `data` is there unless spliced.
    pub(crate) fn io(&self, log: &Logger, ends: Ends, len: usize, data: Option<&[u8]>) {
        if !self.io_wanted(log) {
            return;
        }
        let data = data
            .filter(|d| self.flags.data && !d.is_empty())
            .map(traffic_log::vis::encode);
        let event = Event::Io {
            ends,
            bytes: len as u64,
            data,
        };
        log.traffic(
            self.traffic_sub(),
            Level::Trace,
            self.record(self.verdict, event),
        );
    }

    /// The text of a session's lines, its endpoints written once from its sides
    /// (`None` when none of its start line, I/O lines and summary is wanted). Boxed:
    /// every session's task has room for it, logged or not.
    pub(crate) fn session_text(
        &self,
        log: &Logger,
        src: &Side,
        dst: &Side,
    ) -> Option<Box<SessionText>> {
        let (op_sub, op_level) = self.op_sub();
        let wanted = self.io_wanted(log)
            || (self.flags.connect && log.enabled(op_sub, op_level))
            || ((self.flags.disconnect || self.flags.error)
                && log.enabled(self.traffic_sub(), Level::Trace));
        if !wanted {
            return None;
        }
        Some(Box::new(SessionText::new(self, src, dst)))
    }

    /// `[: SRC -> DST` from the session's text, when `connect` is on; `ends` builds the
    /// record's endpoints for JSON sinks and operators. Counted as [`Self::start`] is.
    pub(crate) fn start_from(&self, log: &Logger, text: &SessionText, ends: &dyn Fn() -> Ends) {
        self.count_start();
        if self.flags.connect {
            let (sub, level) = self.op_sub();
            let write = |out: &mut Vec<u8>| text.write_start(out);
            let record = || {
                self.record(
                    self.verdict,
                    Event::Start {
                        ends: ends(),
                        desc: None,
                    },
                )
            };
            log.traffic_written(sub, level, &write, &record);
        }
    }

    /// `-: ENDS (N)[: DATA]` for one I/O operation whose line starts with `head` (one of
    /// [`SessionText`]); `data` is there unless spliced. `ends` builds the record's
    /// endpoints, for JSON sinks and operators only.
    pub(crate) fn io_line(
        &self,
        log: &Logger,
        head: &[u8],
        len: usize,
        data: Option<&[u8]>,
        ends: &dyn Fn() -> Ends,
    ) {
        let data = data
            .filter(|d| self.flags.data && !d.is_empty())
            .map(traffic_log::vis::encode);
        let record = || {
            self.record(
                self.verdict,
                Event::Io {
                    ends: ends(),
                    bytes: len as u64,
                    data: data.clone(),
                },
            )
        };
        log.traffic_io(
            self.traffic_sub(),
            Level::Trace,
            head,
            len as u64,
            data.as_deref(),
            &record,
        );
    }

    /// The end-of-session summary, when `disconnect` is on (or `error` and it ended in
    /// error). `tcpinfo` is the TCP_INFO block to append (`log: tcpinfo`).
    pub(crate) fn summary(&self, log: &Logger, summary: Summary, cause: &EndCause, secs: u64) {
        self.summary_with(log, summary, cause, secs, None);
    }

    /// The interim record of a session still open (`log.interim`), when `disconnect`
    /// is on: the counts so far, with the sides its summary will have.
    pub(crate) fn interim(&self, log: &Logger, summary: Summary, secs: u64) {
        if self.flags.disconnect {
            log.traffic(
                self.traffic_sub(),
                Level::Trace,
                self.record(
                    self.verdict,
                    Event::Interim {
                        summary,
                        duration_secs: secs,
                    },
                ),
            );
        }
    }

    /// Whether a summary ending with `cause` is written (`disconnect`, or `error` for an
    /// error): a client rule's summary, which counts nothing, is built only then.
    pub(crate) fn logs_summary(&self, cause: &EndCause) -> bool {
        let is_error = matches!(
            cause,
            EndCause::ClientError(_) | EndCause::PeerError(_) | EndCause::Timeout(_)
        );
        self.flags.disconnect || (self.flags.error && is_error)
    }

    /// [`Self::summary_with`] for a TCP session whose lines' text is `text` (`None`:
    /// not logged): `]: WC -> SRC -> RC, WT -> DST -> RT: DESC` written from it, the
    /// record built (by `summary`) only for JSON sinks and operators. `counts` are
    /// (WC, RC, WT, RT).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn summary_from(
        &self,
        log: &Logger,
        text: Option<&SessionText>,
        counts: [u64; 4],
        summary: &dyn Fn() -> Summary,
        cause: &EndCause,
        secs: u64,
        tcpinfo: Option<&str>,
    ) {
        let [wc, _, wt, _] = counts;
        if self.command != Command::Accept {
            Summarized {
                proto: proto_of(self.command),
                to_client: wc,
                to_target: wt,
            }
            .emit();
        }
        if !self.logs_summary(cause) {
            return;
        }
        let record = || {
            let mut desc = cause.describe(secs);
            if let Some(block) = tcpinfo {
                desc.push_str(block);
            }
            self.record(
                self.verdict,
                Event::Summary {
                    summary: summary(),
                    desc,
                },
            )
        };
        let Some(text) = text else {
            // Not wanted when the session started; the levels may have changed since
            // (`verb`, a reload).
            if log.enabled(self.traffic_sub(), Level::Trace) {
                log.traffic(self.traffic_sub(), Level::Trace, record());
            }
            return;
        };
        let write = |out: &mut Vec<u8>| text.write_summary(out, counts, cause, secs, tcpinfo);
        log.traffic_written(self.traffic_sub(), Level::Trace, &write, &record);
    }

    pub(crate) fn summary_with(
        &self,
        log: &Logger,
        summary: Summary,
        cause: &EndCause,
        secs: u64,
        tcpinfo: Option<&str>,
    ) {
        // The socks rule's summary counts the bytes; the client rule's repeats them.
        if self.command != Command::Accept {
            Summarized::of(proto_of(self.command), &summary).emit();
        }
        if self.logs_summary(cause) {
            let mut desc = cause.describe(secs);
            if let Some(block) = tcpinfo {
                desc.push_str(block);
            }
            log.traffic(
                self.traffic_sub(),
                Level::Trace,
                self.record(self.verdict, Event::Summary { summary, desc }),
            );
        }
    }
}

/// The text of a session's lines with its endpoints written once:
/// `VERDICT(N): PROTO/CMD -: SRC -> DST`, the head of I/O lines from the client, then
/// the head of those to it, each side reversed. The start line and the summary take
/// the rule and the sides from the first.
pub(crate) struct SessionText {
    text: Vec<u8>,
    /// Where in the first head `VERDICT(N): PROTO/CMD`, `SRC` and `DST` are; the second
    /// head follows `DST`.
    rule: (u32, u32),
    src: (u32, u32),
    dst: (u32, u32),
}

impl SessionText {
    fn new(slog: &RuleLog, src: &Side, dst: &Side) -> Self {
        let mut text = Vec::with_capacity(256);
        let marks = traffic_log::text::IoHead {
            verdict: slog.verdict,
            rule: slog.number,
            proto: proto_of(slog.command),
            command: slog.command,
            from: &src.0,
            to: &dst.0,
            reversed: false,
        }
        .write_both(&mut text);
        let span = |r: std::ops::Range<usize>| (r.start as u32, r.end as u32);
        Self {
            text,
            rule: span(marks.rule),
            src: span(marks.from),
            dst: span(marks.to),
        }
    }

    fn piece(&self, (start, end): (u32, u32)) -> &[u8] {
        &self.text[start as usize..end as usize]
    }

    /// For bytes from the client: `VERDICT(N): PROTO/CMD -: SRC -> DST`.
    pub(crate) fn up(&self) -> &[u8] {
        &self.text[..self.dst.1 as usize]
    }

    /// For bytes to it, each side reversed.
    pub(crate) fn down(&self) -> &[u8] {
        &self.text[self.dst.1 as usize..]
    }

    /// `VERDICT(N): PROTO/CMD`.
    fn rule(&self) -> &[u8] {
        self.piece(self.rule)
    }

    /// `SRC`.
    fn src(&self) -> &[u8] {
        self.piece(self.src)
    }

    /// `DST`.
    fn dst(&self) -> &[u8] {
        self.piece(self.dst)
    }

    /// The start line: `VERDICT(N): PROTO/CMD [: SRC -> DST`.
    fn write_start(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.rule());
        out.extend_from_slice(b" [: ");
        out.extend_from_slice(self.src());
        out.extend_from_slice(b" -> ");
        out.extend_from_slice(self.dst());
    }

    /// The summary: `VERDICT(N): PROTO/CMD ]: WC -> SRC -> RC, WT -> DST -> RT: DESC`,
    /// `counts` being (WC, RC, WT, RT).
    fn write_summary(
        &self,
        out: &mut Vec<u8>,
        counts: [u64; 4],
        cause: &EndCause,
        secs: u64,
        tcpinfo: Option<&str>,
    ) {
        use traffic_log::text::push_decimal;
        let [wc, rc, wt, rt] = counts;
        out.extend_from_slice(self.rule());
        out.extend_from_slice(b" ]: ");
        push_decimal(out, wc);
        out.extend_from_slice(b" -> ");
        out.extend_from_slice(self.src());
        out.extend_from_slice(b" -> ");
        push_decimal(out, rc);
        out.extend_from_slice(b", ");
        push_decimal(out, wt);
        out.extend_from_slice(b" -> ");
        out.extend_from_slice(self.dst());
        out.extend_from_slice(b" -> ");
        push_decimal(out, rt);
        out.extend_from_slice(b": ");
        cause.push_description(out, secs);
        if let Some(block) = tcpinfo {
            out.extend_from_slice(block.as_bytes());
        }
    }
}

/// An endpoint for a socket address.
pub(crate) fn ep(addr: SocketAddr) -> Endpoint {
    Endpoint::ip(addr.ip().to_canonical(), addr.port())
}

/// The endpoint of a requested target, printed as requested (name or address): for
/// what has not been resolved (a block, a BIND's expected host, a target an upstream
/// proxy resolves).
pub(crate) fn target_ep(t: &Target) -> Endpoint {
    match &t.host {
        Host::Ip(ip) => Endpoint::ip(ip.to_canonical(), t.port),
        Host::Domain(name) => Endpoint {
            auth: None,
            host: EndpointHost::Name(name.clone()),
            port: t.port,
            bracketed: false,
            target_name: None,
        },
    }
}

/// The endpoint of a target reached at `addr`: the address, as Dante prints it once it
/// has resolved a name, with the requested name kept for the JSON record.
pub(crate) fn reached_ep(t: &Target, addr: SocketAddr) -> Endpoint {
    let mut e = ep(addr);
    if let Host::Domain(name) = &t.host {
        e.target_name = Some(name.clone());
    }
    e
}

/// `METHOD%NAME@` for a known user (`username%alice@`, `rfc931%root@`).
pub(crate) fn user_auth(method: sockd_conf::AuthMethod, user: Option<&str>) -> Option<Auth> {
    user.map(|u| Auth {
        method: method.as_str().into(),
        name: traffic_log::vis::encode(u.as_bytes()),
    })
}

/// `CLIENT PROXY-INT`.
pub(crate) fn client_side(client: &Endpoint, internal: SocketAddr) -> Side {
    Side(vec![client.clone(), ep(internal)])
}

/// Ends with only a source side (client-rule lines).
pub(crate) fn only(src: Side) -> Ends {
    Ends { src, dst: None }
}

/// `W/P -> SIDE -> R/P` for UDP counts.
pub(crate) fn udp_leg(written: (u64, u64), side: Side, read: (u64, u64)) -> Leg {
    Leg {
        written: Count {
            bytes: written.0,
            packets: Some(written.1),
        },
        side,
        read: Count {
            bytes: read.0,
            packets: Some(read.1),
        },
    }
}

/// `W -> SIDE -> R` for TCP byte counts.
pub(crate) fn leg(written: u64, side: Side, read: u64) -> Leg {
    Leg {
        written: Count::bytes(written),
        side,
        read: Count::bytes(read),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use traffic_log::Verdict;

    fn rule_log() -> RuleLog {
        RuleLog {
            verdict: Verdict::Pass,
            number: 7,
            flags: LogFlags::default(),
            command: Command::Connect,
            interim: None,
        }
    }

    /// The lines written from a session's text are the records' lines, byte for byte:
    /// a user, a bracketed chained hop, a name, IPv6.
    #[test]
    fn session_text_lines_are_the_records_lines() {
        let up = "pass(7): tcp/connect -: username%bob@127.0.0.1.40000 [::1].1080 -> 10.0.0.2.50000 [192.0.2.1.1080] www.example.com.443 (1)";
        let Event::Io { ends, .. } = Record::parse(up).unwrap().event else {
            panic!("an I/O record")
        };
        let (src, dst) = (ends.src, ends.dst.unwrap());
        let slog = rule_log();
        let t = &SessionText::new(&slog, &src, &dst);
        let ends = Ends {
            src: src.clone(),
            dst: Some(dst.clone()),
        };
        let line = |r: Record| r.to_string().into_bytes();
        let mut got = Vec::new();
        t.write_start(&mut got);
        assert_eq!(
            got,
            line(slog.record(Verdict::Pass, Event::Start { ends, desc: None }))
        );
        for (cause, tcpinfo) in [
            (EndCause::ClientClosed, None),
            (
                EndCause::PeerError(Some("Connection reset by peer".into())),
                Some("\nTCP_INFO"),
            ),
        ] {
            let mut got = Vec::new();
            t.write_summary(&mut got, [1, 2, 3, 4], &cause, 59, tcpinfo);
            let mut desc = cause.describe(59);
            desc.extend(tcpinfo);
            let summary = Summary {
                client: leg(1, src.clone(), 2),
                target: Some(leg(3, dst.clone(), 4)),
            };
            let want = line(slog.record(Verdict::Pass, Event::Summary { summary, desc }));
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
        let mut want_down = Vec::new();
        slog.record(
            Verdict::Pass,
            Event::Io {
                ends: Ends {
                    src: crate::session::reversed(&dst),
                    dst: Some(crate::session::reversed(&src)),
                },
                bytes: 0,
                data: None,
            },
        )
        .write_io_head(&mut want_down);
        assert_eq!(t.down(), &want_down[..]);
        assert_eq!(t.up(), up.strip_suffix(" (1)").unwrap().as_bytes());
    }
}
