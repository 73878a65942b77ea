//! The management interface's line protocol: OpenVPN 2.6.14's, byte for byte, with
//! ferrosocks' SOCKS sessions as its "clients" (`shared/reference/openvpn-management.md`,
//! the authority on every byte; §n below are its sections).
//!
//! Everything here is pure: no I/O, no clock, no tokio. The network server around it
//! reads bytes into [`Lines`], feeds each line to a [`Conn`] and does what the [`Step`]
//! says: send bytes, run a [`Command`] (and send the reply built by [`reply`]), or close.
//! Notifications (`>LOG:`, `>CLIENT:`, …) are in [`crate::notify`].
//!
//! # Framing (§1)
//!
//! Every line the server sends ends in CRLF, except the password prompt
//! (`ENTER PASSWORD:`, no line end). Lines from the client end in LF or CRLF. [`Lines`]
//! splits the byte stream: like OpenVPN it drops control characters (CR anywhere, NUL,
//! …), but it keeps TAB (a space to the lexer) and bytes ≥ 0x80 (as UTF-8, lossy),
//! which OpenVPN drops, so that a user name in UTF-8 can be killed. A line over
//! [`MAX_LINE`] bytes is not a panic nor a growing buffer: it is discarded up to its LF
//! and reported once as [`LineTooLong`] ([`reply::LINE_TOO_LONG`] to an authenticated
//! client, a failed attempt to an unauthenticated one). OpenVPN silently empties its
//! 1024-byte buffer instead; an unterminated last line is ignored, as there.
//!
//! # Words (§1, OpenVPN's `parse_line`)
//!
//! [`split_words`] is OpenVPN's configuration lexer as the management interface calls
//! it: whitespace separates words; `"…"` and `'…'` quote (a quote starts a word only at
//! its beginning: `ab"c"` is one word `ab"c"`, and `"ab"cd` two words); outside single
//! quotes `\\` → `\`, `\"` → `"`, `\ ` → space, and any other backslash is an error; a
//! word starting with `#` or `;` starts a comment; at most [`MAX_WORDS`] words are read
//! (the rest of the line is ignored) and a word is at most [`MAX_WORD`] bytes. Its
//! errors are OpenVPN's own texts, down to the `TCP:0` where a file name and line
//! number would be (`ERROR: Options error: No closing quotation (") in TCP:0`).
//!
//! # Commands (§2)
//!
//! [`parse`] turns a line into a [`Command`] or into the exact `ERROR:` reply. Names are
//! case-sensitive; missing parameters get `ERROR: the 'X' command requires [at least ]N
//! parameter[s]` (OpenVPN's `man_need`); extra parameters are ignored, as there.
//! Numbers are read the way OpenVPN reads each one: `atoi` (leading digits, else 0,
//! saturating here) for `status`, `bytecount`, `env-filter`, `version N`, `log`/`state`/
//! `echo N` and the port of `kill IP:PORT`; `sscanf("%lu")`/`("%u")` for CID and KID
//! (`ERROR: cannot parse CID` / `KID`). One deliberate exception: `verb N` and `mute N`
//! need a whole number (else the out-of-range error), because OpenVPN's `atoi` turns a
//! typo into `verb 0` and silently quietens the log. `verb` takes 0–11 (ferrosocks'
//! range, `logsys::Level::for_verb`), not OpenVPN's 0–15.
//!
//! | line | command | reply (see [`reply`]) |
//! |---|---|---|
//! | `help` | [`Command::Help`] | [`reply::help`] |
//! | `version` / `version N` | [`Command::Version`] / [`Command::ClientVersion`] | [`reply::version`] / [`reply::client_version`] |
//! | `pid` | [`Command::Pid`] | [`reply::pid`] |
//! | `status [N]` | [`Command::Status`] | `status::render(N, …, "\r\n")` verbatim |
//! | `state [on\|off\|all\|N] [all\|N]` | [`Command::State`] | [`reply::realtime`], [`crate::notify::state_history`] |
//! | `log on\|off\|all\|N [all\|N]` | [`Command::Log`] | [`reply::realtime`], [`crate::notify::log_history`] |
//! | `echo on\|off\|all\|N [all\|N]` | [`Command::Echo`] | [`reply::echo`] (the history is always empty) |
//! | `bytecount N` | [`Command::Bytecount`] | [`reply::BYTECOUNT_CHANGED`] |
//! | `kill USER` / `kill IP:PORT` | [`Command::Kill`] | [`reply::killed`] |
//! | `client-kill CID [MSG]` | [`Command::ClientKill`] | [`reply::client_kill`] |
//! | `client-auth CID KID` + lines + `END` | [`Command::ClientAuth`] | [`reply::client_auth`] |
//! | `client-auth-nt CID KID` | [`Command::ClientAuthNt`] | [`reply::client_auth`] |
//! | `client-deny CID KID R [CR]` | [`Command::ClientDeny`] | [`reply::client_deny`] |
//! | `signal SIGHUP\|SIGINT\|SIGTERM\|SIGUSR1\|SIGUSR2` | [`Command::Signal`] | [`reply::signal_thrown`] / [`reply::signal_ignored`] |
//! | `verb [N]` | [`Command::Verb`] | [`reply::verb`] / [`reply::VERB_CHANGED`] |
//! | `mute [N]` | [`Command::Mute`] | [`reply::mute`] / [`reply::MUTE_CHANGED`] |
//! | `load-stats` | [`Command::LoadStats`] | [`reply::load_stats`] |
//! | `hold [on\|off\|release]` | [`Command::Hold`] | [`reply::hold`] |
//! | `env-filter [N]` | [`Command::EnvFilter`] | [`reply::env_filter`] |
//! | `exit` / `quit` | [`Command::Quit`] | none: the connection closes |
//!
//! `kill` takes OpenVPN 2.6.14's forms (`USER`, `IP:PORT`), HEAD's `tcp:IP:PORT` /
//! `udp:IP:PORT`, and, beyond both, `[IPv6]:PORT` (also after `tcp:`/`udp:`); see
//! [`KillTarget`]. OpenVPN's other commands, which a server daemon knows but ferrosocks
//! has no use for (`username`, `password`, `remote`, `proxy`, `needok`, …, see
//! [`NOT_IN_THIS_MODE`]), answer `ERROR: The 'X' command is not supported by the current
//! daemon mode`; anything else `ERROR: unknown command, enter 'help' for more options`
//! (2.6.14's text, without HEAD's `[WORD]`).
//!
//! Where OpenVPN runs the first parameter of `log`, `state` and `echo` before it finds
//! the second one bad, [`parse`] refuses the whole line with the same `ERROR:` text, so
//! a command is either run entirely or not at all.
//!
//! # `client-auth` blocks
//!
//! `client-auth CID KID` is followed by lines up to one that is exactly `END` (OpenVPN
//! passes them to the client as configuration; ferrosocks keeps at most
//! [`MAX_BLOCK_LINES`] and has no use for them yet). [`parse`] returns the command with
//! no lines and [`Command::awaits_block`] true: the caller collects. [`Conn`] does it
//! for the server and hands the command over, lines included, at `END`.
//!
//! # Password (§1.1)
//!
//! With a password configured, a new client gets only `ENTER PASSWORD:`; each line it
//! sends is a password attempt, compared in constant time and never parsed, logged or
//! echoed. A wrong one gets a new prompt (OpenVPN's `ERROR: bad password` is never sent
//! to an unauthenticated client); the third closes the connection (the server logs
//! [`REJECTED_LOG`]). The right one gets `SUCCESS: password is correct` and the greeting.
//! See [`Auth`].
//!
//! # What is left to the server
//!
//! - Nothing but [`Conn::feed`]'s answers goes to a client until
//!   [`Conn::authenticated`]: no notification either.
//! - `status` with no version uses the configured one; `log on all` / `state on all`
//!   take the history and start the live feed atomically; a multi-line reply or
//!   notification block (one `String` here) goes out in one piece, though a
//!   notification may come between two replies (§1).
//! - `>LOG:` lines are the records that pass the management verbosity; `>CLIENT:`
//!   blocks come from [`server::registry::SessionEvent`]s (the registry also reports
//!   the end of sessions that never reached CONNECT: whether to show those is the
//!   server's choice) through [`crate::notify::client`], and are sent only with
//!   `management.client-auth: on`, as OpenVPN 2.6.14 sends them only with
//!   `--management-client-auth`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use server::registry::{SessionId, SessionSnapshot};
use sockd_conf::SocksCommand;

use crate::mgmt_lexer::is_space;

pub use crate::mgmt_conn::{
    Auth, AuthStep, Conn, Step, MAX_BLOCK_LINES, PASSWORD_TRIES, REJECTED_LOG,
};
pub use crate::mgmt_lexer::{split_words, LineTooLong, Lines, MAX_LINE, MAX_WORD, MAX_WORDS};

/// The replies to commands, exact bytes (see their module doc for the choices made).
pub mod reply {
    pub use crate::mgmt_reply::*;
}

/// The management protocol version OpenVPN 2.6.14 announces.
pub const MANAGEMENT_VERSION: u32 = 5;
/// The OpenVPN release whose protocol this is.
pub const OPENVPN_VERSION: &str = "2.6.14";

/// OpenVPN commands a server daemon has that ferrosocks does not do: they answer
/// `ERROR: The 'X' command is not supported by the current daemon mode` (whatever
/// their parameters), not "unknown command".
pub const NOT_IN_THIS_MODE: [&str; 20] = [
    "auth-retry",
    "certificate",
    "client-pending-auth",
    "cr-response",
    "forget-passwords",
    "needok",
    "needstr",
    "net",
    "nclients",
    "password",
    "pk-sig",
    "pkcs11-id-count",
    "pkcs11-id-get",
    "proxy",
    "remote",
    "remote-entry-count",
    "remote-entry-get",
    "rsa-sig",
    "test",
    "username",
];

// === Commands ===

/// A command line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// An empty line or a comment: nothing is run and nothing is sent.
    Blank,
    /// `help`.
    Help,
    /// `version`: the daemon's version.
    Version,
    /// `version N`: the client announces its version (`atoi`).
    ClientVersion(i32),
    /// `pid`.
    Pid,
    /// `status [N]`: the status text in version N (1, 2, 3), `None` for the configured
    /// one (no N, or 0).
    Status(Option<u8>),
    /// `state …`: at least one argument (`state` alone is `state 1`), run in order.
    State(Vec<HistoryArg>),
    /// `log …`, run in order. `log on all` answers the ON line, the history and `END`
    /// with no live line in between: subscribe and take the history atomically.
    Log(Vec<HistoryArg>),
    /// `echo …` (ferrosocks has no echo buffer: see [`reply::echo`]).
    Echo(Vec<HistoryArg>),
    /// `bytecount N`: `>BYTECOUNT_CLI:` every N seconds, 0 for never.
    Bytecount(u32),
    /// `kill USER` / `kill IP:PORT`.
    Kill(KillTarget),
    /// `client-kill CID [MSG]`.
    ClientKill {
        /// The session.
        cid: SessionId,
        /// OpenVPN's message to the client (`RESTART` when absent, `HALT`, …).
        message: Option<String>,
    },
    /// `client-auth CID KID`, then lines up to `END`: [`parse`] returns it with no
    /// lines ([`Command::awaits_block`]); [`Conn`] hands it over with them.
    ClientAuth {
        /// The session.
        cid: SessionId,
        /// The key id (ferrosocks' CONNECT notifications say 0).
        kid: u32,
        /// The block's lines (OpenVPN: configuration pushed to the client).
        config: Vec<String>,
    },
    /// `client-auth-nt CID KID`.
    ClientAuthNt {
        /// The session.
        cid: SessionId,
        /// The key id.
        kid: u32,
    },
    /// `client-deny CID KID REASON [CLIENT-REASON]`.
    ClientDeny {
        /// The session.
        cid: SessionId,
        /// The key id.
        kid: u32,
        /// Why, for the log.
        reason: String,
        /// Why, for the client.
        client_reason: Option<String>,
    },
    /// `signal SIG…`.
    Signal(Signal),
    /// `verb` (show) / `verb N` (0–11).
    Verb(Option<u8>),
    /// `mute` (show) / `mute N`.
    Mute(Option<u32>),
    /// `load-stats`.
    LoadStats,
    /// `hold [on|off|release]`.
    Hold(Hold),
    /// `env-filter [N]` (`atoi`, 0 when absent).
    EnvFilter(i32),
    /// `exit` / `quit`: close, no reply.
    Quit,
}

impl Command {
    /// Whether lines up to `END` belong to this command (`client-auth`).
    pub fn awaits_block(&self) -> bool {
        matches!(self, Self::ClientAuth { .. })
    }
}

/// One argument of `log`, `state` or `echo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryArg {
    /// `on`: real-time notifications on.
    On,
    /// `off`: real-time notifications off.
    Off,
    /// `all`: the whole history, then `END`.
    All,
    /// `N` (N > 0): the last N entries, then `END`.
    Last(usize),
}

impl HistoryArg {
    /// The entries this argument shows, oldest first (none for `on`/`off`).
    pub fn tail<'a, T>(&self, history: &'a [T]) -> &'a [T] {
        match *self {
            Self::On | Self::Off => &[],
            Self::All => history,
            Self::Last(n) => &history[history.len().saturating_sub(n)..],
        }
    }
}

/// Which real-time notifications `on`/`off` switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `>LOG:`.
    Log,
    /// `>STATE:`.
    State,
    /// `>ECHO:`.
    Echo,
}

impl Stream {
    /// The command's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::State => "state",
            Self::Echo => "echo",
        }
    }
}

/// Whom `kill` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillTarget {
    /// `kill USER`: every session of that user (OpenVPN's common name); `UNDEF`
    /// means the sessions without one, as the status file prints them.
    Name(String),
    /// `kill IP:PORT`: the sessions from that client address.
    Addr {
        /// `tcp:` / `udp:` (OpenVPN HEAD's form), if given.
        proto: Option<Transport>,
        /// The client address (an IPv4-mapped IPv6 address is held as IPv4).
        addr: SocketAddr,
    },
}

impl KillTarget {
    /// Whether `kill` ends this session. `tcp:` changes nothing (every SOCKS client
    /// comes over TCP); `udp:` picks the UDP associations among them.
    pub fn matches(&self, s: &SessionSnapshot) -> bool {
        match self {
            Self::Name(name) => s.user.as_deref().unwrap_or("UNDEF") == name,
            Self::Addr { proto, addr } => {
                let udp_only = *proto == Some(Transport::Udp);
                canonical(s.client) == *addr
                    && (!udp_only || s.command == Some(SocksCommand::UdpAssociate))
            }
        }
    }
}

impl fmt::Display for KillTarget {
    /// The name, or the address as replies print it (`tcp:[::1]:1080`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Addr { proto, addr } => {
                if let Some(p) = proto {
                    write!(f, "{}:", p.as_str())?;
                }
                write!(f, "{addr}")
            }
        }
    }
}

/// The transport named in `kill PROTO:IP:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `tcp`.
    Tcp,
    /// `udp`.
    Udp,
}

impl Transport {
    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A signal `signal` may throw (OpenVPN's list: its help omits SIGINT, its parser takes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `SIGHUP`: reload.
    Hup,
    /// `SIGINT`: stop.
    Int,
    /// `SIGTERM`: stop.
    Term,
    /// `SIGUSR1`: the status dump to the log.
    Usr1,
    /// `SIGUSR2`: the status file, now.
    Usr2,
}

impl Signal {
    /// All of them.
    pub const ALL: [Self; 5] = [Self::Hup, Self::Int, Self::Term, Self::Usr1, Self::Usr2];

    /// Its name (`SIGHUP`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Hup => "SIGHUP",
            Self::Int => "SIGINT",
            Self::Term => "SIGTERM",
            Self::Usr1 => "SIGUSR1",
            Self::Usr2 => "SIGUSR2",
        }
    }

    /// The signal named exactly `name` (upper case, as OpenVPN wants it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// `hold`'s argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// `hold`: show the flag.
    Show,
    /// `hold on`.
    On,
    /// `hold off`.
    Off,
    /// `hold release`.
    Release,
}

/// Parses one command line (already split off by [`Lines`]). `Err` is the reply to
/// send, CRLF included: OpenVPN 2.6.14's exact `ERROR:` text.
pub fn parse(line: &str) -> Result<Command, String> {
    let words = split_words(line)?;
    let Some((name, args)) = words.split_first() else {
        return Ok(Command::Blank);
    };
    let name = name.as_str();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let exactly = |n: usize| need(name, args, n, false);
    let at_least = |n: usize| need(name, args, n, true);
    Ok(match name {
        "exit" | "quit" => Command::Quit,
        "help" => Command::Help,
        "version" => arg(0).map_or(Command::Version, |n| Command::ClientVersion(atoi(n))),
        "pid" => Command::Pid,
        "env-filter" => Command::EnvFilter(arg(0).map_or(0, atoi)),
        "signal" => {
            exactly(1)?;
            let s = &args[0];
            Command::Signal(Signal::from_name(s).ok_or_else(|| {
                format!(
                    "ERROR: signal '{}' is not a known signal type\r\n",
                    shown(s)
                )
            })?)
        }
        "load-stats" => Command::LoadStats,
        "status" => Command::Status(match arg(0).map_or(0, atoi) {
            0 => None,
            v @ 1..=3 => Some(v as u8),
            _ => return Err("ERROR: bad status format version number\r\n".into()),
        }),
        "kill" => {
            exactly(1)?;
            Command::Kill(parse_kill(&args[0])?)
        }
        "verb" => Command::Verb(match arg(0) {
            None => None,
            Some(v) => Some(
                whole_number(v)
                    .filter(|v| (0..=11).contains(v))
                    .map(|v| v as u8)
                    .ok_or("ERROR: verb level is out of range\r\n")?,
            ),
        }),
        "mute" => Command::Mute(match arg(0) {
            None => None,
            Some(v) => Some(
                whole_number(v)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or("ERROR: mute level is out of range\r\n")?,
            ),
        }),
        "state" if args.is_empty() => Command::State(vec![HistoryArg::Last(1)]),
        "state" => Command::State(history(Stream::State, args)?),
        "log" => {
            at_least(1)?;
            Command::Log(history(Stream::Log, args)?)
        }
        "echo" => {
            at_least(1)?;
            Command::Echo(history(Stream::Echo, args)?)
        }
        "hold" => Command::Hold(match arg(0) {
            None => Hold::Show,
            Some("on") => Hold::On,
            Some("off") => Hold::Off,
            Some("release") => Hold::Release,
            Some(_) => return Err("ERROR: bad hold command parameter\r\n".into()),
        }),
        "bytecount" => {
            exactly(1)?;
            Command::Bytecount(atoi(&args[0]).max(0) as u32)
        }
        "client-kill" => {
            at_least(1)?;
            Command::ClientKill {
                cid: parse_cid(&args[0])?,
                message: arg(1).map(str::to_owned),
            }
        }
        "client-deny" => {
            at_least(3)?;
            let (cid, kid) = (parse_cid(&args[0])?, parse_kid(&args[1])?);
            Command::ClientDeny {
                cid,
                kid,
                reason: args[2].clone(),
                client_reason: arg(3).map(str::to_owned),
            }
        }
        "client-auth-nt" => {
            exactly(2)?;
            let (cid, kid) = (parse_cid(&args[0])?, parse_kid(&args[1])?);
            Command::ClientAuthNt { cid, kid }
        }
        "client-auth" => {
            exactly(2)?;
            let (cid, kid) = (parse_cid(&args[0])?, parse_kid(&args[1])?);
            Command::ClientAuth {
                cid,
                kid,
                config: Vec::new(),
            }
        }
        n if NOT_IN_THIS_MODE.contains(&n) => {
            return Err(format!(
                "ERROR: The '{n}' command is not supported by the current daemon mode\r\n"
            ))
        }
        _ => return Err("ERROR: unknown command, enter 'help' for more options\r\n".into()),
    })
}

/// OpenVPN's `man_need`: `ERROR: the 'X' command requires [at least ]N parameter[s]`.
fn need(name: &str, args: &[String], n: usize, at_least: bool) -> Result<(), String> {
    if args.len() >= n {
        return Ok(());
    }
    Err(format!(
        "ERROR: the '{}' command requires {}{n} parameter{}\r\n",
        shown(name),
        if at_least { "at least " } else { "" },
        if n > 1 { "s" } else { "" },
    ))
}

/// The first two arguments of `log`, `state`, `echo` (OpenVPN ignores the rest).
fn history(stream: Stream, args: &[String]) -> Result<Vec<HistoryArg>, String> {
    args.iter()
        .take(2)
        .map(|a| match a.as_str() {
            "on" => Ok(HistoryArg::On),
            "off" => Ok(HistoryArg::Off),
            "all" => Ok(HistoryArg::All),
            n => match atoi(n) {
                n @ 1.. => Ok(HistoryArg::Last(n as usize)),
                _ => Err(format!(
                    "ERROR: {} parameter must be 'on' or 'off' or some number n or 'all'\r\n",
                    stream.as_str()
                )),
            },
        })
        .collect()
}

/// `kill`'s argument, split on `:` as OpenVPN's `buf_parse` does (but not inside
/// `[…]`): `P1:P2:P3` all non-empty is HEAD's `PROTO:IP:PORT`, `P1:P2` 2.6.14's
/// `IP:PORT`, else `P1` is a name.
fn parse_kill(v: &str) -> Result<KillTarget, String> {
    let parts = split_colons(v);
    let part = |i: usize| parts.get(i).copied().unwrap_or("");
    let (p1, p2, p3) = (part(0), part(1), part(2));
    if !p1.is_empty() && !p2.is_empty() && !p3.is_empty() {
        let ip = parse_ip(p2)
            .ok_or_else(|| format!("ERROR: error parsing IP address: {}\r\n", shown(p2)))?;
        let proto = match p1 {
            "tcp" => Some(Transport::Tcp),
            "udp" => Some(Transport::Udp),
            _ => None,
        };
        return match (port(p3), proto) {
            (Some(port), Some(proto)) => Ok(KillTarget::Addr {
                proto: Some(proto),
                addr: SocketAddr::new(ip, port),
            }),
            _ => Err(format!(
                "ERROR: port number or protocol out of range: {} {}\r\n",
                shown(p3),
                shown(p1)
            )),
        };
    }
    if !p1.is_empty() && !p2.is_empty() {
        let ip = parse_ip(p1)
            .ok_or_else(|| format!("ERROR: error parsing IP address: {}\r\n", shown(p1)))?;
        let port = port(p2)
            .ok_or_else(|| format!("ERROR: port number is out of range: {}\r\n", shown(p2)))?;
        return Ok(KillTarget::Addr {
            proto: None,
            addr: SocketAddr::new(ip, port),
        });
    }
    if !p1.is_empty() {
        return Ok(KillTarget::Name(p1.to_owned()));
    }
    Err("ERROR: kill parse\r\n".into())
}

/// Splits on `:` outside brackets.
fn split_colons(v: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut depth) = (0, 0u32);
    for (i, c) in v.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => {
                parts.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&v[start..]);
    parts
}

/// A dotted IPv4 address, or an IPv6 one in brackets; IPv4-mapped IPv6 becomes IPv4.
fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let v6: Ipv6Addr = inner.parse().ok()?;
        return Some(canonical_ip(IpAddr::V6(v6)));
    }
    s.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A port as OpenVPN reads it (`atoi`, 1–65535).
fn port(s: &str) -> Option<u16> {
    u16::try_from(atoi(s)).ok().filter(|&p| p > 0)
}

/// An address as OpenVPN compares and prints it: IPv4-mapped IPv6 as IPv4, no flow
/// label or scope.
pub(crate) fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical_ip(a.ip()), a.port())
}

pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn parse_cid(s: &str) -> Result<SessionId, String> {
    scan_unsigned(s, u64::MAX).ok_or_else(|| "ERROR: cannot parse CID\r\n".into())
}

fn parse_kid(s: &str) -> Result<u32, String> {
    scan_unsigned(s, u64::from(u32::MAX))
        .map(|k| k as u32)
        .ok_or_else(|| "ERROR: cannot parse KID\r\n".into())
}

/// C's `sscanf("%lu")`: spaces, a sign, at least one digit (a minus wraps, as
/// `strtoul` does); saturates at `max`.
fn scan_unsigned(s: &str, max: u64) -> Option<u64> {
    let s = s.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
    let (negative, digits) = sign(s);
    let run = leading_digits(digits);
    if run.is_empty() {
        return None;
    }
    let n = run.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10)
            .saturating_add(u64::from(d - b'0'))
            .min(max)
    });
    Some(if negative { n.wrapping_neg() & max } else { n })
}

/// C's `atoi`: spaces, a sign, the leading digits (none: 0); saturating.
pub(crate) fn atoi(s: &str) -> i32 {
    let s = s.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
    let (negative, digits) = sign(s);
    let limit = i64::from(i32::MAX) + 1;
    let n = leading_digits(digits)
        .bytes()
        .fold(0i64, |n, d| (n * 10 + i64::from(d - b'0')).min(limit));
    let n = if negative { -n } else { n };
    n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// A whole decimal number with an optional sign, nothing else.
fn whole_number(s: &str) -> Option<i64> {
    let (negative, digits) = sign(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    Some(if negative { -n } else { n })
}

fn sign(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

fn leading_digits(s: &str) -> &str {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    &s[..n]
}

/// Client input echoed in a reply: no control characters (they cannot come through
/// [`Lines`], but [`parse`] may be called on anything).
fn shown(s: &str) -> std::borrow::Cow<'_, str> {
    crate::notify::clean(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> String {
        parse(line).unwrap_err()
    }

    fn ok(line: &str) -> Command {
        parse(line).unwrap()
    }

    #[test]
    fn simple_commands() {
        assert_eq!(ok("help"), Command::Help);
        assert_eq!(ok("pid"), Command::Pid);
        assert_eq!(ok("load-stats"), Command::LoadStats);
        assert_eq!(ok("quit"), Command::Quit);
        assert_eq!(ok("exit"), Command::Quit);
        assert_eq!(ok("   "), Command::Blank);
        assert_eq!(ok("# comment"), Command::Blank);
        assert_eq!(ok("help me please"), Command::Help);
    }

    #[test]
    fn version_shows_or_takes_the_clients_version() {
        assert_eq!(ok("version"), Command::Version);
        assert_eq!(ok("version 4"), Command::ClientVersion(4));
        assert_eq!(ok("version x"), Command::ClientVersion(0));
    }

    #[test]
    fn status_takes_versions_1_to_3_or_the_configured_one() {
        assert_eq!(ok("status"), Command::Status(None));
        assert_eq!(ok("status 0"), Command::Status(None));
        assert_eq!(ok("status 1"), Command::Status(Some(1)));
        assert_eq!(ok("status 2"), Command::Status(Some(2)));
        assert_eq!(ok("status 3"), Command::Status(Some(3)));
        // atoi: trailing junk ignored, no digits is 0.
        assert_eq!(ok("status 3x"), Command::Status(Some(3)));
        assert_eq!(ok("status x"), Command::Status(None));
        for bad in ["status 4", "status -1", "status 99999999999"] {
            assert_eq!(
                err(bad),
                "ERROR: bad status format version number\r\n",
                "{bad}"
            );
        }
    }

    #[test]
    fn state_log_and_echo_take_on_off_all_and_counts() {
        use HistoryArg::*;
        assert_eq!(ok("state"), Command::State(vec![Last(1)]));
        assert_eq!(ok("state all"), Command::State(vec![All]));
        assert_eq!(ok("state 5"), Command::State(vec![Last(5)]));
        assert_eq!(ok("state on"), Command::State(vec![On]));
        assert_eq!(ok("state off"), Command::State(vec![Off]));
        assert_eq!(ok("state on all"), Command::State(vec![On, All]));
        assert_eq!(ok("log on all"), Command::Log(vec![On, All]));
        assert_eq!(ok("log 20"), Command::Log(vec![Last(20)]));
        assert_eq!(ok("log off"), Command::Log(vec![Off]));
        assert_eq!(ok("log on all ignored"), Command::Log(vec![On, All]));
        assert_eq!(ok("echo on all"), Command::Echo(vec![On, All]));
        assert_eq!(ok("echo 3"), Command::Echo(vec![Last(3)]));
    }

    #[test]
    fn bad_history_arguments_name_their_command() {
        for (line, stream) in [
            ("state 0", "state"),
            ("state on bogus", "state"),
            ("log yes", "log"),
            ("log on -3", "log"),
            ("echo maybe", "echo"),
        ] {
            assert_eq!(
                err(line),
                format!(
                    "ERROR: {stream} parameter must be 'on' or 'off' or some number n or 'all'\r\n"
                ),
                "{line}"
            );
        }
        assert_eq!(
            err("log"),
            "ERROR: the 'log' command requires at least 1 parameter\r\n"
        );
        assert_eq!(
            err("echo"),
            "ERROR: the 'echo' command requires at least 1 parameter\r\n"
        );
    }

    #[test]
    fn history_args_pick_the_last_entries() {
        let h = [1, 2, 3, 4];
        assert_eq!(HistoryArg::All.tail(&h), [1, 2, 3, 4]);
        assert_eq!(HistoryArg::Last(2).tail(&h), [3, 4]);
        assert_eq!(HistoryArg::Last(9).tail(&h), [1, 2, 3, 4]);
        assert!(HistoryArg::On.tail(&h).is_empty());
    }

    #[test]
    fn bytecount_takes_seconds() {
        assert_eq!(ok("bytecount 5"), Command::Bytecount(5));
        assert_eq!(ok("bytecount 0"), Command::Bytecount(0));
        assert_eq!(ok("bytecount -5"), Command::Bytecount(0));
        assert_eq!(ok("bytecount x"), Command::Bytecount(0));
        assert_eq!(
            err("bytecount"),
            "ERROR: the 'bytecount' command requires 1 parameter\r\n"
        );
    }

    #[test]
    fn kill_takes_a_user_name() {
        assert_eq!(
            ok("kill alice"),
            Command::Kill(KillTarget::Name("alice".into()))
        );
        assert_eq!(
            ok("kill 'Alice Smith'"),
            Command::Kill(KillTarget::Name("Alice Smith".into()))
        );
        // As OpenVPN: an empty second part leaves a name.
        assert_eq!(
            ok("kill alice:"),
            Command::Kill(KillTarget::Name("alice".into()))
        );
        assert_eq!(
            err("kill"),
            "ERROR: the 'kill' command requires 1 parameter\r\n"
        );
        assert_eq!(err("kill :80"), "ERROR: kill parse\r\n");
        assert_eq!(err("kill ''"), "ERROR: kill parse\r\n");
    }

    fn addr(proto: Option<Transport>, a: &str) -> Command {
        Command::Kill(KillTarget::Addr {
            proto,
            addr: a.parse().unwrap(),
        })
    }

    #[test]
    fn kill_takes_client_addresses_in_every_form() {
        use Transport::*;
        assert_eq!(ok("kill 127.0.0.1:40000"), addr(None, "127.0.0.1:40000"));
        assert_eq!(
            ok("kill [2001:db8::1]:443"),
            addr(None, "[2001:db8::1]:443")
        );
        assert_eq!(ok("kill [::ffff:10.0.0.1]:5"), addr(None, "10.0.0.1:5"));
        assert_eq!(ok("kill tcp:10.0.0.1:5"), addr(Some(Tcp), "10.0.0.1:5"));
        assert_eq!(ok("kill udp:[::1]:5"), addr(Some(Udp), "[::1]:5"));
        // atoi reads the port.
        assert_eq!(ok("kill 10.0.0.1:80x"), addr(None, "10.0.0.1:80"));
    }

    #[test]
    fn kill_address_errors() {
        assert_eq!(
            err("kill bob:80"),
            "ERROR: error parsing IP address: bob\r\n"
        );
        assert_eq!(
            err("kill [nope]:80"),
            "ERROR: error parsing IP address: [nope]\r\n"
        );
        assert_eq!(
            err("kill 1.2.3.4:0"),
            "ERROR: port number is out of range: 0\r\n"
        );
        assert_eq!(
            err("kill 1.2.3.4:65536"),
            "ERROR: port number is out of range: 65536\r\n"
        );
        assert_eq!(
            err("kill sctp:1.2.3.4:80"),
            "ERROR: port number or protocol out of range: 80 sctp\r\n"
        );
        assert_eq!(
            err("kill tcp:1.2.3.4:0"),
            "ERROR: port number or protocol out of range: 0 tcp\r\n"
        );
        assert_eq!(
            err("kill tcp:host:80"),
            "ERROR: error parsing IP address: host\r\n"
        );
    }

    #[test]
    fn kill_targets_print_as_replies_show_them() {
        let t = |s: &str| match ok(&format!("kill {s}")) {
            Command::Kill(t) => t.to_string(),
            c => panic!("{c:?}"),
        };
        assert_eq!(t("alice"), "alice");
        assert_eq!(t("127.0.0.1:1"), "127.0.0.1:1");
        assert_eq!(t("[::1]:1"), "[::1]:1");
        assert_eq!(t("tcp:[::1]:1"), "tcp:[::1]:1");
    }

    #[test]
    fn client_kill_takes_a_cid_and_a_message() {
        assert_eq!(
            ok("client-kill 7"),
            Command::ClientKill {
                cid: 7,
                message: None
            }
        );
        assert_eq!(
            ok("client-kill 7 HALT"),
            Command::ClientKill {
                cid: 7,
                message: Some("HALT".into())
            }
        );
        // sscanf("%lu"): leading digits, a minus wraps.
        assert_eq!(
            ok("client-kill 12abc"),
            Command::ClientKill {
                cid: 12,
                message: None
            }
        );
        assert_eq!(
            ok("client-kill -1"),
            Command::ClientKill {
                cid: u64::MAX,
                message: None
            }
        );
        assert_eq!(err("client-kill x"), "ERROR: cannot parse CID\r\n");
        assert_eq!(
            err("client-kill"),
            "ERROR: the 'client-kill' command requires at least 1 parameter\r\n"
        );
    }

    #[test]
    fn client_auth_deny_take_cid_kid_and_reasons() {
        assert_eq!(
            ok("client-auth-nt 3 0"),
            Command::ClientAuthNt { cid: 3, kid: 0 }
        );
        let auth = ok("client-auth 3 1");
        assert_eq!(
            auth,
            Command::ClientAuth {
                cid: 3,
                kid: 1,
                config: vec![]
            }
        );
        assert!(auth.awaits_block());
        assert!(!ok("client-auth-nt 3 0").awaits_block());
        assert_eq!(
            ok(r#"client-deny 3 0 "not today" "try tomorrow""#),
            Command::ClientDeny {
                cid: 3,
                kid: 0,
                reason: "not today".into(),
                client_reason: Some("try tomorrow".into())
            }
        );
        assert_eq!(
            ok("client-deny 3 0 no"),
            Command::ClientDeny {
                cid: 3,
                kid: 0,
                reason: "no".into(),
                client_reason: None
            }
        );
        assert_eq!(
            err("client-auth 3"),
            "ERROR: the 'client-auth' command requires 2 parameters\r\n"
        );
        assert_eq!(
            err("client-auth-nt"),
            "ERROR: the 'client-auth-nt' command requires 2 parameters\r\n"
        );
        assert_eq!(
            err("client-deny 3 0"),
            "ERROR: the 'client-deny' command requires at least 3 parameters\r\n"
        );
        assert_eq!(err("client-auth x 0"), "ERROR: cannot parse CID\r\n");
        assert_eq!(err("client-auth-nt 1 x"), "ERROR: cannot parse KID\r\n");
        assert_eq!(err("client-deny 1 k r"), "ERROR: cannot parse KID\r\n");
        // The CID is checked first.
        assert_eq!(err("client-deny c k r"), "ERROR: cannot parse CID\r\n");
    }

    #[test]
    fn signal_takes_openvpns_names() {
        for s in Signal::ALL {
            assert_eq!(ok(&format!("signal {}", s.name())), Command::Signal(s));
        }
        assert_eq!(
            err("signal sighup"),
            "ERROR: signal 'sighup' is not a known signal type\r\n"
        );
        assert_eq!(
            err("signal SIGKILL"),
            "ERROR: signal 'SIGKILL' is not a known signal type\r\n"
        );
        assert_eq!(
            err("signal"),
            "ERROR: the 'signal' command requires 1 parameter\r\n"
        );
    }

    #[test]
    fn verb_and_mute_show_or_set() {
        assert_eq!(ok("verb"), Command::Verb(None));
        assert_eq!(ok("verb 0"), Command::Verb(Some(0)));
        assert_eq!(ok("verb 11"), Command::Verb(Some(11)));
        assert_eq!(ok("verb +4"), Command::Verb(Some(4)));
        for bad in [
            "verb 12",
            "verb -1",
            "verb x",
            "verb 3x",
            "verb ''",
            "verb 99999999999999999999",
        ] {
            assert_eq!(err(bad), "ERROR: verb level is out of range\r\n", "{bad}");
        }
        assert_eq!(ok("mute"), Command::Mute(None));
        assert_eq!(ok("mute 0"), Command::Mute(Some(0)));
        assert_eq!(ok("mute 40"), Command::Mute(Some(40)));
        for bad in ["mute -1", "mute x", "mute 4294967296"] {
            assert_eq!(err(bad), "ERROR: mute level is out of range\r\n", "{bad}");
        }
    }

    #[test]
    fn hold_and_env_filter() {
        assert_eq!(ok("hold"), Command::Hold(Hold::Show));
        assert_eq!(ok("hold on"), Command::Hold(Hold::On));
        assert_eq!(ok("hold off"), Command::Hold(Hold::Off));
        assert_eq!(ok("hold release"), Command::Hold(Hold::Release));
        assert_eq!(err("hold tight"), "ERROR: bad hold command parameter\r\n");
        assert_eq!(ok("env-filter"), Command::EnvFilter(0));
        assert_eq!(ok("env-filter 2"), Command::EnvFilter(2));
    }

    #[test]
    fn unknown_and_inapplicable_commands() {
        for line in ["frobnicate", "KILL alice", "Help", "status2"] {
            assert_eq!(
                err(line),
                "ERROR: unknown command, enter 'help' for more options\r\n",
                "{line}"
            );
        }
        for name in NOT_IN_THIS_MODE {
            assert_eq!(
                err(&format!("{name} a b")),
                format!(
                    "ERROR: The '{name}' command is not supported by the current daemon mode\r\n"
                )
            );
        }
        // Lexer errors come first.
        assert_eq!(
            err("frobnicate \"x"),
            "ERROR: Options error: No closing quotation (\") in TCP:0\r\n"
        );
    }

    #[test]
    fn numbers_read_as_c_reads_them() {
        assert_eq!(atoi("  42abc"), 42);
        assert_eq!(atoi("-7"), -7);
        assert_eq!(atoi("+7"), 7);
        assert_eq!(atoi("x"), 0);
        assert_eq!(atoi("99999999999999999999"), i32::MAX);
        assert_eq!(atoi("-99999999999999999999"), i32::MIN);
        assert_eq!(scan_unsigned(" 5", u64::MAX), Some(5));
        assert_eq!(
            scan_unsigned("99999999999999999999999", u64::MAX),
            Some(u64::MAX)
        );
        assert_eq!(
            scan_unsigned("-1", u64::from(u32::MAX)),
            Some(u64::from(u32::MAX))
        );
        assert_eq!(scan_unsigned("-", u64::MAX), None);
    }

    // --- kill matching ---

    fn session(client: &str, user: Option<&str>, command: SocksCommand) -> SessionSnapshot {
        let t = std::time::SystemTime::UNIX_EPOCH;
        SessionSnapshot {
            id: 0,
            client: client.parse().unwrap(),
            internal: "127.0.0.1:1080".parse().unwrap(),
            external: None,
            user: user.map(str::to_owned),
            method: None,
            rule: None,
            command: Some(command),
            target: None,
            resolved: None,
            state: server::registry::SessionState::Established,
            started: t,
            last_activity: t,
            traffic: Default::default(),
        }
    }

    #[test]
    fn kill_matches_users_and_client_addresses() {
        let kill = |s: &str| match ok(&format!("kill {s}")) {
            Command::Kill(t) => t,
            c => panic!("{c:?}"),
        };
        let alice = session("10.0.0.1:5000", Some("alice"), SocksCommand::Connect);
        let anon = session("[::ffff:10.0.0.2]:5001", None, SocksCommand::UdpAssociate);
        let v6 = session("[2001:db8::1]:5002", None, SocksCommand::Bind);
        assert!(kill("alice").matches(&alice));
        assert!(!kill("Alice").matches(&alice));
        assert!(kill("UNDEF").matches(&anon) && !kill("UNDEF").matches(&alice));
        assert!(kill("10.0.0.1:5000").matches(&alice));
        assert!(!kill("10.0.0.1:5001").matches(&alice));
        assert!(kill("10.0.0.2:5001").matches(&anon));
        assert!(kill("[::ffff:10.0.0.2]:5001").matches(&anon));
        assert!(kill("[2001:db8::1]:5002").matches(&v6));
        assert!(kill("tcp:10.0.0.1:5000").matches(&alice));
        assert!(!kill("udp:10.0.0.1:5000").matches(&alice));
        assert!(kill("udp:10.0.0.2:5001").matches(&anon));
    }

    // --- never a panic ---

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn random_bytes_never_panic_the_framing_lexer_parser_or_connection() {
        // Bytes that matter to the grammar come up more often than others.
        const ALPHABET: &[u8] = b" \t\r\n\\\"'#;:[]0123456789-+.abcdefkilnostuvxENDSIGHUP";
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut conn = Conn::new(Some("pw"));
        let mut open = Conn::new(None);
        let mut lines = Lines::with_max(300);
        for _ in 0..20_000 {
            let len = (rng.next() % 80) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    if r & 3 == 0 {
                        (r >> 8) as u8
                    } else {
                        ALPHABET[(r >> 8) as usize % ALPHABET.len()]
                    }
                })
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = split_words(&text);
            let _ = parse(&text);
            lines.push(&bytes);
            while let Some(line) = lines.next_line() {
                if let Step::Close = conn.feed(line.clone()) {
                    conn = Conn::new(Some("pw"));
                }
                if let Step::Close = open.feed(line) {
                    open = Conn::new(None);
                }
            }
        }
    }
}
