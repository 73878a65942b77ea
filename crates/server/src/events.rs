//! The vocabulary of counted events (the model: vector's `internal_events`): each thing
//! the server counts is an event whose one `emit` updates its metric and, for the
//! traffic records, writes its log line when the rule asks — so a metric and the log line
//! of the same event cannot disagree.
//!
//! The traffic records' events are [`crate::tlog::RuleLog`]'s methods: `start`
//! (a passed client rule or request), `blocked`, `failed` and `summary` each count here
//! whatever the rule's `log:` says, then log as it says. The other events are the types
//! below; their log lines (where they have one) stay with the code that knows the words.
//!
//! Nothing here takes a client address, user or target: labels are rule and route
//! numbers, commands, verdicts, methods and fixed class names.

use std::time::Duration;

use sockd_conf::SocksCommand;
use traffic_log::{Command, Proto, Summary};

use crate::metrics::{
    BytesLabels, ClassLabels, CommandLabels, MethodLabels, ReasonLabels, RequestLabels,
    RouteLabels, RuleLabels, METRICS,
};

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
pub(crate) fn count_accepted(rule: u32) {
    METRICS.accepted.get_or_create(&RuleLabels { rule }).inc();
}

/// A client rule blocked a connection (`block(N): tcp/accept ]:` of that rule).
pub(crate) fn count_blocked(rule: u32) {
    METRICS.blocked.get_or_create(&RuleLabels { rule }).inc();
}

/// A socks request was decided: `pass` (its start record), `block` (a rule, or the
/// management interface, refused it), `error` (passed, but failed before it started).
pub(crate) fn count_request(command: &'static str, verdict: &'static str, rule: u32) {
    METRICS
        .requests
        .get_or_create(&RequestLabels {
            command,
            verdict,
            rule,
        })
        .inc();
}

/// A socks rule's end-of-session summary: its bytes, from the summary itself (built
/// from the session's `Counters`), so the metric equals the log's sum.
pub(crate) fn count_summary(proto: Proto, summary: &Summary) {
    let protocol = match proto {
        Proto::Udp => "udp",
        Proto::Tcp => "tcp",
    };
    let to_client = summary.client.written.bytes;
    let to_target = summary.target.as_ref().map_or(0, |t| t.written.bytes);
    let add = |direction, n| {
        if n > 0 {
            METRICS
                .bytes
                .get_or_create(&BytesLabels {
                    direction,
                    protocol,
                })
                .inc_by(n);
        }
    };
    add("client_to_target", to_target);
    add("target_to_client", to_client);
}

/// A session is live with `command` (or left it: `delta` -1).
pub(crate) fn session_active(command: Option<SocksCommand>, delta: i64) {
    METRICS
        .active
        .get_or_create(&CommandLabels {
            command: session_command(command),
        })
        .inc_by(delta);
}

/// A session ended after `life`.
pub(crate) fn session_ended(command: Option<SocksCommand>, life: Duration) {
    session_active(command, -1);
    METRICS.duration.observe(life.as_secs_f64());
}

/// The negotiation (method, authentication, request) took `d`.
pub(crate) fn negotiated(d: Duration) {
    METRICS.negotiate.observe(d.as_secs_f64());
}

/// Connecting to a target took `d` (successful or not).
pub(crate) fn connected(d: Duration) {
    METRICS.connect.observe(d.as_secs_f64());
}

/// One name lookup took `d`; `Err(code)` is its getaddrinfo failure.
pub(crate) fn resolved(d: Duration, result: Result<(), i32>) {
    METRICS.resolve.observe(d.as_secs_f64());
    if let Err(code) = result {
        METRICS
            .dns_failures
            .get_or_create(&ClassLabels {
                class: eai_name(code),
            })
            .inc();
    }
}

/// An authentication failed: `method` is the method's Dante name (`username`,
/// `rfc931`), or `none_acceptable` when no method could be agreed.
pub(crate) fn auth_failed(method: &'static str) {
    METRICS
        .auth_failures
        .get_or_create(&MethodLabels { method })
        .inc();
}

/// Chaining through route `route` failed.
pub(crate) fn upstream_failed(route: u32) {
    METRICS
        .upstream_failures
        .get_or_create(&RouteLabels { route })
        .inc();
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
