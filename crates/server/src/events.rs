//! The vocabulary of counted events (the model: vector's `internal_events`): each thing
//! the server counts is an event whose one `emit` updates its metric and, for the
//! traffic records, writes its log line when the rule asks — so a metric and the log line
//! of the same event cannot disagree.
//!
//! Each event is a type with one `emit(self)`. The traffic records' events are emitted
//! by [`crate::tlog::RuleLog`]'s methods: `start` ([`ClientPassed`], [`RequestDecided`]
//! pass), `blocked` ([`ClientBlocked`], [`RequestDecided`] block), `failed`
//! ([`RequestDecided`] error) and `summary` ([`Summarized`]) emit whatever the rule's
//! `log:` says, then log as it says — the one place each record is decided. The other
//! events' log lines (where they have one) stay with the code that knows the words.
//!
//! Nothing here takes a client address, user or target: labels are rule and route
//! numbers, commands, verdicts, methods and fixed class names.

use std::cell::RefCell;
use std::hash::Hash;
use std::thread::LocalKey;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use sockd_conf::SocksCommand;
use traffic_log::{Command, Proto, Summary};

use crate::metrics::{
    BytesLabels, ClassLabels, CommandLabels, MethodLabels, ReasonLabels, RequestLabels,
    RouteLabels, RuleLabels, METRICS,
};

/// A thread's handles of one family's metrics by label set.
type Handles<L, M> = RefCell<Vec<(L, M)>>;

thread_local! {
    static ACCEPTED: Handles<RuleLabels, Counter> = const { RefCell::new(Vec::new()) };
    static REQUESTS: Handles<RequestLabels, Counter> = const { RefCell::new(Vec::new()) };
    static BYTES: Handles<BytesLabels, Counter> = const { RefCell::new(Vec::new()) };
    static ACTIVE: Handles<CommandLabels, Gauge> = const { RefCell::new(Vec::new()) };
}

/// `family`'s metric for `labels` through this thread's cache (each cache serves one
/// family: `ACCEPTED` for `METRICS.accepted` and so on): a `Counter` or `Gauge`
/// clone shares its family's atomic, so the cached handle updates the same value, and a
/// session's updates (eight per CONNECT) are a short linear search instead of a SipHash
/// and a read lock of the family's map each. Families are never cleared; a cache holds at
/// most 64 label sets (labels are bounded by the configuration), past that the family
/// is asked directly.
fn cached<L: Clone + Eq + Hash, M: Clone>(
    cache: &'static LocalKey<Handles<L, M>>,
    family: &Family<L, M>,
    labels: L,
) -> M {
    cache.with(|c| {
        let mut c = c.borrow_mut();
        if let Some((_, m)) = c.iter().find(|(l, _)| *l == labels) {
            return m.clone();
        }
        let m = family.get_or_create(&labels).clone();
        if c.len() < 64 {
            c.push((labels, m.clone()));
        }
        m
    })
}

/// The traffic log's name of a command (`connect`, `bindreply`, …): the `command` label.
pub(crate) fn command_name(c: Command) -> &'static str {
    match c {
        Command::Accept => "accept",
        Command::Connect => "connect",
        Command::Bind => "bind",
        Command::BindReply => "bindreply",
        Command::UdpAssociate => "udpassociate",
        Command::UdpReply => "udpreply",
        Command::HostId => "hostid",
        Command::Unknown => "unknown",
    }
}

/// A session's command as the `sessions_active` gauge names it.
pub(crate) fn session_command(c: Option<SocksCommand>) -> &'static str {
    match c {
        None => "negotiating",
        Some(SocksCommand::Connect) => "connect",
        Some(SocksCommand::Bind) => "bind",
        Some(SocksCommand::BindReply) => "bindreply",
        Some(SocksCommand::UdpAssociate) => "udpassociate",
        Some(SocksCommand::UdpReply) => "udpreply",
    }
}

/// A client rule passed a connection (`pass(N): tcp/accept [:`).
pub(crate) struct ClientPassed {
    pub(crate) rule: u32,
}

impl ClientPassed {
    pub(crate) fn emit(self) {
        cached(&ACCEPTED, &METRICS.accepted, RuleLabels { rule: self.rule }).inc();
    }
}

/// A client rule blocked a connection (`block(N): tcp/accept ]:` of that rule).
pub(crate) struct ClientBlocked {
    pub(crate) rule: u32,
}

impl ClientBlocked {
    pub(crate) fn emit(self) {
        METRICS
            .blocked
            .get_or_create(&RuleLabels { rule: self.rule })
            .inc();
    }
}

/// How a socks request was decided.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Decision {
    /// Its start record: the rule passed it and it started.
    Pass,
    /// A rule (or the management interface) refused it.
    Block,
    /// Passed, but it failed before it started (connect, chaining, BIND's listen).
    Error,
}

/// A socks request was decided.
pub(crate) struct RequestDecided {
    pub(crate) command: Command,
    pub(crate) decision: Decision,
    pub(crate) rule: u32,
}

impl RequestDecided {
    pub(crate) fn emit(self) {
        let verdict = match self.decision {
            Decision::Pass => "pass",
            Decision::Block => "block",
            Decision::Error => "error",
        };
        let labels = RequestLabels {
            command: command_name(self.command),
            verdict,
            rule: self.rule,
        };
        cached(&REQUESTS, &METRICS.requests, labels).inc();
    }
}

/// A socks rule's end-of-session summary: its bytes, from the summary itself (built
/// from the session's `Counters`), so the metric equals the log's sum.
pub(crate) struct Summarized {
    pub(crate) proto: Proto,
    /// Bytes written to the client.
    pub(crate) to_client: u64,
    /// Bytes written to the target.
    pub(crate) to_target: u64,
}

impl Summarized {
    /// The counts of `summary`.
    pub(crate) fn of(proto: Proto, summary: &Summary) -> Self {
        Self {
            proto,
            to_client: summary.client.written.bytes,
            to_target: summary.target.as_ref().map_or(0, |t| t.written.bytes),
        }
    }

    pub(crate) fn emit(self) {
        let protocol = match self.proto {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        };
        let (to_client, to_target) = (self.to_client, self.to_target);
        let add = |direction, n| {
            if n > 0 {
                let labels = BytesLabels {
                    direction,
                    protocol,
                };
                cached(&BYTES, &METRICS.bytes, labels).inc_by(n);
            }
        };
        add("client_to_target", to_target);
        add("target_to_client", to_client);
    }
}

fn active(command: Option<SocksCommand>, delta: i64) {
    let labels = CommandLabels {
        command: session_command(command),
    };
    cached(&ACTIVE, &METRICS.active, labels).inc_by(delta);
}

/// A session was accepted (it negotiates).
pub(crate) struct SessionAccepted;

impl SessionAccepted {
    pub(crate) fn emit(self) {
        active(None, 1);
    }
}

/// A session's request was read: it is live with `command` now.
pub(crate) struct SessionRequested {
    pub(crate) before: Option<SocksCommand>,
    pub(crate) command: SocksCommand,
}

impl SessionRequested {
    pub(crate) fn emit(self) {
        active(self.before, -1);
        active(Some(self.command), 1);
    }
}

/// A session ended after `life`.
pub(crate) struct SessionEnded {
    pub(crate) command: Option<SocksCommand>,
    pub(crate) life: Duration,
}

impl SessionEnded {
    pub(crate) fn emit(self) {
        active(self.command, -1);
        METRICS.duration.observe(self.life.as_secs_f64());
    }
}

/// The negotiation (method, authentication, request) took this long, whatever its end.
pub(crate) struct Negotiated(pub(crate) Duration);

impl Negotiated {
    pub(crate) fn emit(self) {
        METRICS.negotiate.observe(self.0.as_secs_f64());
    }
}

/// Connecting to a target took this long (successful or not).
pub(crate) struct Connected(pub(crate) Duration);

impl Connected {
    pub(crate) fn emit(self) {
        METRICS.connect.observe(self.0.as_secs_f64());
    }
}

/// One name lookup took `took`; `failure` is getaddrinfo's code when it failed.
pub(crate) struct Resolved {
    pub(crate) took: Duration,
    pub(crate) failure: Option<i32>,
}

impl Resolved {
    pub(crate) fn emit(self) {
        METRICS.resolve.observe(self.took.as_secs_f64());
        if let Some(code) = self.failure {
            METRICS
                .dns_failures
                .get_or_create(&ClassLabels {
                    class: eai_name(code),
                })
                .inc();
        }
    }
}

/// An authentication failed: `method` is the method's Dante name (`username`,
/// `rfc931`), or `none_acceptable` when no method could be agreed. Logged by the
/// session (AUTH), always.
pub(crate) struct AuthFailed {
    pub(crate) method: &'static str,
}

impl AuthFailed {
    pub(crate) fn emit(self) {
        METRICS
            .auth_failures
            .get_or_create(&MethodLabels {
                method: self.method,
            })
            .inc();
    }
}

/// Chaining through route `route` failed (logged by the session's failure records).
pub(crate) struct UpstreamFailed {
    pub(crate) route: u32,
}

impl UpstreamFailed {
    pub(crate) fn emit(self) {
        METRICS
            .upstream_failures
            .get_or_create(&RouteLabels { route: self.route })
            .inc();
    }
}

/// Why a UDP datagram was dropped.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UdpDrop {
    /// From an address other than the association's client.
    Foreign,
    /// Its SOCKS UDP header did not parse.
    Malformed,
    /// A fragment (FRAG ≠ 0; fragmentation is not supported).
    Fragment,
    /// Its target name could not be resolved.
    Unresolved,
    /// No external address or socket for its family.
    NoExternal,
    /// A socks or `udpreply` rule blocked it.
    Blocked,
    /// A reply before the client sent anything.
    NoClient,
    /// A reply from a host the client has not sent to (`udp.connectdst`).
    ConnectDst,
    /// Sending it on failed.
    SendFailed,
}

impl UdpDrop {
    /// The `reason` label.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Foreign => "foreign",
            Self::Malformed => "malformed",
            Self::Fragment => "fragment",
            Self::Unresolved => "unresolved",
            Self::NoExternal => "no_external",
            Self::Blocked => "blocked",
            Self::NoClient => "no_client",
            Self::ConnectDst => "connectdst",
            Self::SendFailed => "send_failed",
        }
    }

    /// Counts one dropped datagram.
    pub(crate) fn emit(self) {
        METRICS
            .udp_dropped
            .get_or_create(&ReasonLabels {
                reason: self.name(),
            })
            .inc();
    }
}

/// getaddrinfo's return value as its `EAI_*` name (the `class` label).
pub(crate) fn eai_name(code: i32) -> &'static str {
    match code {
        libc::EAI_AGAIN => "EAI_AGAIN",
        libc::EAI_BADFLAGS => "EAI_BADFLAGS",
        libc::EAI_FAIL => "EAI_FAIL",
        libc::EAI_FAMILY => "EAI_FAMILY",
        libc::EAI_MEMORY => "EAI_MEMORY",
        libc::EAI_NONAME => "EAI_NONAME",
        libc::EAI_SERVICE => "EAI_SERVICE",
        libc::EAI_SOCKTYPE => "EAI_SOCKTYPE",
        libc::EAI_SYSTEM => "EAI_SYSTEM",
        libc::EAI_NODATA => "EAI_NODATA",
        _ => "other",
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    /// A cached handle updates the family's own value, from the first use on.
    #[test]
    fn cached_handles_count_into_the_family() {
        let labels = RuleLabels { rule: 4_000_000 };
        for _ in 0..3 {
            cached(&ACCEPTED, &METRICS.accepted, labels.clone()).inc();
        }
        assert_eq!(METRICS.accepted.get_or_create(&labels).get(), 3);
    }
}
