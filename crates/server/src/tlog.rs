//! Building and emitting Dante traffic records for one rule.
//!
//! [`RuleLog`] binds a rule's verdict, number and `log:` keywords; each method emits
//! one kind of record if the keywords ask for it, following Dante 1.4:
//! `connect` → start lines, `ioop`/`data` → one line per I/O operation,
//! `disconnect` → end-of-session summaries, `error` (or `disconnect`) → failures,
//! and blocks are logged under any of connect, disconnect, data or ioop. The default
//! rule #0 logs only when debug is on.

use std::net::SocketAddr;

use logsys::Logger;
use sockd_conf::{Action, LogFlags, Rule};
use socks_proto::{Host, Target};
use traffic_log::{
    Auth, Command, Count, EndCause, Endpoint, EndpointHost, Ends, Event, Leg, Proto, Record, Side,
    Summary, Verdict,
};

/// The logging context of one rule for one session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleLog {
    pub(crate) verdict: Verdict,
    pub(crate) number: u32,
    pub(crate) flags: LogFlags,
    pub(crate) command: Command,
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
                    }
                } else {
                    LogFlags::default()
                },
                command,
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
        if self.flags.connect {
            log.info(
                self.record(self.verdict, Event::Start { ends, desc: None })
                    .to_string(),
            );
        }
    }

    /// `block(N): … ]: ENDS[: DESC]` when blocks are logged.
    pub(crate) fn blocked(&self, log: &Logger, ends: Ends, desc: Option<String>) {
        if self.logs_blocks() {
            log.info(
                self.record(Verdict::Block, Event::Stop { ends, desc })
                    .to_string(),
            );
        }
    }

    /// `pass(N): … ]: ENDS` when disconnect is on: an operation ended, no counts.
    pub(crate) fn stopped(&self, log: &Logger, ends: Ends) {
        if self.flags.disconnect {
            log.info(
                self.record(self.verdict, Event::Stop { ends, desc: None })
                    .to_string(),
            );
        }
    }

    /// `VERDICT(N): … -: ENDS: DESC`: one datagram or attempt refused or failed.
    pub(crate) fn transient(&self, log: &Logger, verdict: Verdict, ends: Ends, desc: String) {
        if self.logs_errors() || self.logs_blocks() {
            log.info(
                self.record(verdict, Event::Transient { ends, desc })
                    .to_string(),
            );
        }
    }

    /// `VERDICT(N): … -: ENDS (N)` for a datagram, when ioop is on (packets: one op each).
    pub(crate) fn datagram(&self, log: &Logger, verdict: Verdict, ends: Ends, bytes: &[u8]) {
        if verdict == Verdict::Block && !self.logs_blocks() {
            return;
        }
        if verdict == Verdict::Pass && !self.logs_io() {
            return;
        }
        let data = (self.flags.data && !bytes.is_empty()).then(|| traffic_log::vis::encode(bytes));
        log.info(
            self.record(
                verdict,
                Event::Io {
                    ends,
                    bytes: bytes.len() as u64,
                    data,
                },
            )
            .to_string(),
        );
    }

    /// `block(N): … ]: ENDS: DESC` for a request that failed before it started.
    pub(crate) fn failed(&self, log: &Logger, ends: Ends, desc: String) {
        if self.logs_errors() || self.logs_blocks() {
            log.info(
                self.record(
                    Verdict::Block,
                    Event::Stop {
                        ends,
                        desc: Some(desc),
                    },
                )
                .to_string(),
            );
        }
    }

    /// Always logged: a client that broke the protocol or failed authentication.
    pub(crate) fn refused(&self, log: &Logger, ends: Ends, desc: String) {
        log.info(
            self.record(
                Verdict::Block,
                Event::Stop {
                    ends,
                    desc: Some(desc),
                },
            )
            .to_string(),
        );
    }

    /// `-: ENDS (N)[: DATA]` when `ioop` or `data` is on.
    pub(crate) fn io(&self, log: &Logger, ends: Ends, bytes: &[u8]) {
        if !self.logs_io() {
            return;
        }
        let data = (self.flags.data && !bytes.is_empty()).then(|| traffic_log::vis::encode(bytes));
        let event = Event::Io {
            ends,
            bytes: bytes.len() as u64,
            data,
        };
        log.info(self.record(self.verdict, event).to_string());
    }

    /// The end-of-session summary, when `disconnect` is on (or `error` and it ended in error).
    pub(crate) fn summary(&self, log: &Logger, summary: Summary, cause: &EndCause, secs: u64) {
        let is_error = matches!(
            cause,
            EndCause::ClientError(_) | EndCause::PeerError(_) | EndCause::Timeout(_)
        );
        if self.flags.disconnect || (self.flags.error && is_error) {
            let desc = cause.describe(secs);
            log.info(
                self.record(self.verdict, Event::Summary { summary, desc })
                    .to_string(),
            );
        }
    }
}

/// An endpoint for a socket address.
pub(crate) fn ep(addr: SocketAddr) -> Endpoint {
    Endpoint::ip(addr.ip().to_canonical(), addr.port())
}

/// The endpoint of a requested target, printed as requested (name or address).
pub(crate) fn target_ep(t: &Target) -> Endpoint {
    match &t.host {
        Host::Ip(ip) => Endpoint::ip(ip.to_canonical(), t.port),
        Host::Domain(name) => Endpoint {
            auth: None,
            host: EndpointHost::Name(name.clone()),
            port: t.port,
            bracketed: false,
        },
    }
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
