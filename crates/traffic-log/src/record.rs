//! Record types and how Dante prints them.
//!
//! Grammar (Dante 1.4.x, `lib/log.c iolog()`):
//!
//! ```text
//! LINE  = VERDICT "(" RULE "): " PROTO "/" CMD " " BODY
//! BODY  = "[: " ENDS [": " DESC]          start of an operation
//!       | "-: " ENDS " (" N ")" [": " DATA]   one I/O operation
//!       | "-: " ENDS ": " DESC            temporary block or error
//!       | "]: " ENDS [": " DESC]          blocked, or failed
//!       | "]: " SUMMARY ": " DESC         end of session
//!       | "-: " ENDS ": interim: " COUNTS ".  Session duration: " N "s"
//!                                          a session still open (ferrosocks' `log.interim`)
//! ENDS  = SIDE [" -> " SIDE]
//! COUNTS = W " -> client -> " R [", " W " -> target -> " R]
//! ```
//!
//! The interim record is ferrosocks' own (Dante has none). It is a `-:` line with a
//! description, the shape Dante uses for temporary errors, so Dante-format readers that
//! add up `]:` summaries (sockd-stat.awk) or `-: … (N)` I/O lines skip it, and none
//! counts its bytes twice; its ENDS are the two sides of the summary that will close
//! the session, which is how a reader matches them (docs/accounting.md).

use std::fmt;
use std::net::IpAddr;

/// Whether a rule let the operation through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `pass`
    Pass,
    /// `block` (also used for errors under a pass rule, as Dante does)
    Block,
}

/// Transport protocol of the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// `tcp`
    Tcp,
    /// `udp`
    Udp,
}

/// The operation the record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `accept`: a TCP connection from a client, before any SOCKS processing.
    Accept,
    /// `connect`: a SOCKS CONNECT request.
    Connect,
    /// `bind`: a SOCKS BIND request.
    Bind,
    /// `bindreply`: a connection received on a bound port.
    BindReply,
    /// `udpassociate`: a UDP association.
    UdpAssociate,
    /// `udpreply`: a reply datagram to a UDP association.
    UdpReply,
    /// `hostid`: a hostid rule.
    HostId,
    /// `unknown`: a request whose command is not known (Dante 1.4.2 writes
    /// `udp/unknown` for a SOCKS4 request with command 3).
    Unknown,
}

impl Command {
    /// The word Dante prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Connect => "connect",
            Self::Bind => "bind",
            Self::BindReply => "bindreply",
            Self::UdpAssociate => "udpassociate",
            Self::UdpReply => "udpreply",
            Self::HostId => "hostid",
            Self::Unknown => "unknown",
        }
    }

    pub(crate) fn from_word(word: &str) -> Option<Self> {
        Some(match word {
            "accept" => Self::Accept,
            "connect" => Self::Connect,
            "bind" => Self::Bind,
            "bindreply" => Self::BindReply,
            "udpassociate" => Self::UdpAssociate,
            "udpreply" => Self::UdpReply,
            "hostid" => Self::HostId,
            "unknown" => Self::Unknown,
            _ => return None,
        })
    }
}

/// One traffic log line, without the line prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `pass` or `block`.
    pub verdict: Verdict,
    /// The number of the rule that decided (0 is the default block rule).
    pub rule: u32,
    /// `tcp` or `udp`.
    pub proto: Proto,
    /// The operation.
    pub command: Command,
    /// What happened.
    pub event: Event,
}

/// The phase of an operation a record reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `[:` — the operation starts (`log: connect`).
    Start { ends: Ends, desc: Option<String> },
    /// `-: … (N)` — one I/O operation of N bytes (`log: ioop`, `log: data`); EOF is `(0)`.
    /// `data` is the vis-encoded payload when `log: data` is on.
    Io {
        ends: Ends,
        bytes: u64,
        data: Option<String>,
    },
    /// `-: …[: DESC]` — a temporary block or error (Dante 1.4.2 writes a blocked
    /// datagram without a description).
    Transient { ends: Ends, desc: Option<String> },
    /// `]: ENDS[: DESC]` — the operation was blocked or failed before it started.
    Stop { ends: Ends, desc: Option<String> },
    /// `]: W -> … -> R[, …]: DESC` — end of a session with its byte counts.
    Summary { summary: Summary, desc: String },
    /// `-: CLIENT-SIDE[ -> TARGET-SIDE]: interim: W -> client -> R[, W -> target -> R].
    /// Session duration: Ns` — the counts so far of a session still open (`log.interim`);
    /// the legs' sides are the ones its final summary will carry.
    Interim {
        summary: Summary,
        duration_secs: u64,
    },
}

/// The endpoints of an event: the source side and, for most commands, the destination side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ends {
    /// Where the event comes from (for client → target: `CLIENT PROXY-INT`).
    pub src: Side,
    /// Where it goes (for client → target: `PROXY-EXT TARGET`); absent for `accept`.
    pub dst: Option<Side>,
}

/// A run of endpoints printed with spaces between them, e.g. `CLIENT PROXY-INT` or, for
/// server chaining, `PROXY-EXT NEXTPROXY [LASTPROXY-EXT] TARGET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side(pub Vec<Endpoint>);

/// One address and port as Dante prints it: `[METHOD%NAME@]HOST.PORT`, optionally in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The authenticated user at this endpoint, if any.
    pub auth: Option<Auth>,
    /// Address or name.
    pub host: EndpointHost,
    /// Port.
    pub port: u16,
    /// Printed in brackets (the last proxy's external address when chaining).
    pub bracketed: bool,
    /// The host name the client asked for, when `host` is the address it resolved to and
    /// the proxy reached. Dante prints the address; the name is not in the text line, only
    /// in the JSON record (`target_name`).
    pub target_name: Option<String>,
}

impl Endpoint {
    /// An endpoint for an IP address and port.
    pub fn ip(ip: IpAddr, port: u16) -> Self {
        Self {
            auth: None,
            host: EndpointHost::Ip(ip),
            port,
            bracketed: false,
            target_name: None,
        }
    }

    /// The unknown endpoint, printed `0.0.0.0.0`.
    pub fn unknown() -> Self {
        Self::ip(IpAddr::from([0, 0, 0, 0]), 0)
    }

    /// The same endpoint with a user.
    pub fn with_auth(mut self, auth: Option<Auth>) -> Self {
        self.auth = auth;
        self
    }
}

/// An endpoint's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointHost {
    /// IPv4 or IPv6 address (IPv6 printed without brackets).
    Ip(IpAddr),
    /// A host name as requested, vis-encoded.
    Name(String),
}

/// `METHOD%NAME@`: who the user is and how it was established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// The method name (`username`, `rfc931`, `gssapi/integrity`, …).
    pub method: String,
    /// The user name, vis-encoded (see [`crate::vis`]).
    pub name: String,
}

/// The byte (and for UDP, packet) counts at the end of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `W_c -> CLIENT PROXY-INT -> R_c` (for `accept`: `W_c -> CLIENT PROXY-INT -> W_t`).
    pub client: Leg,
    /// `W_t -> PROXY-EXT TARGET -> R_t`; absent for `accept`.
    pub target: Option<Leg>,
}

/// `WRITTEN -> SIDE -> READ`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    /// Left-hand count.
    pub written: Count,
    /// The endpoints of this leg.
    pub side: Side,
    /// Right-hand count.
    pub read: Count,
}

/// A byte count, with a packet count for UDP (`34/2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Bytes.
    pub bytes: u64,
    /// Packets, printed after a slash when present.
    pub packets: Option<u64>,
}

impl Count {
    /// A TCP byte count.
    pub fn bytes(bytes: u64) -> Self {
        Self {
            bytes,
            packets: None,
        }
    }
}

/// Why a session ended: the first part of a summary's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndCause {
    /// `local client closed`
    ClientClosed,
    /// `remote peer closed`
    PeerClosed,
    /// `local client error[ (TEXT)]`
    ClientError(Option<String>),
    /// `remote peer error[ (TEXT)]`
    PeerError(Option<String>),
    /// `negotiate timeout`, `connect timeout`, `i/o timeout`, …
    Timeout(&'static str),
    /// `administrative termination`
    AdminTermination,
    /// `blocked`
    Blocked,
}

impl EndCause {
    /// The summary description: cause, two spaces, and the session duration.
    pub fn describe(&self, duration_secs: u64) -> String {
        let mut out = Vec::new();
        self.push_description(&mut out, duration_secs);
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Appends [`Self::describe`]'s text.
    pub fn push_description(&self, out: &mut Vec<u8>, duration_secs: u64) {
        let (word, detail) = self.words();
        out.extend_from_slice(word.as_bytes());
        if let Some(d) = detail {
            out.extend_from_slice(b" (");
            out.extend_from_slice(d.as_bytes());
            out.push(b')');
        }
        out.extend_from_slice(b".  Session duration: ");
        crate::text::push_decimal(out, duration_secs);
        out.push(b's');
    }

    /// The cause's words and its detail, if any.
    fn words(&self) -> (&str, Option<&str>) {
        match self {
            Self::ClientClosed => ("local client closed", None),
            Self::PeerClosed => ("remote peer closed", None),
            Self::ClientError(d) => ("local client error", d.as_deref()),
            Self::PeerError(d) => ("remote peer error", d.as_deref()),
            Self::Timeout(which) => (which, None),
            Self::AdminTermination => ("administrative termination", None),
            Self::Blocked => ("blocked", None),
        }
    }
}

impl fmt::Display for EndCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (word, detail) = self.words();
        f.write_str(word)?;
        if let Some(d) = detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}
