//! Real-time notifications (reference §3, mapped by §6): the exact bytes of each
//! `>TYPE:` line, CRLF after every line, each multi-line block one `String` so the
//! server can send it in one write and nothing comes between its lines.
//!
//! Pure like [`crate::proto`]: times come in as arguments.
//!
//! Choices where the reference left room:
//! - `>LOG:` flags ([`log_flags`]): `crit` → `F` (ferrosocks' crit is fatal: the
//!   process ends), `error` → `N`, `warning` → `W`, `debug` → `D`, `notice`, `trace`
//!   and `info` → none (§6's mapping). OpenVPN's `I` marks only messages whose flags
//!   are exactly `M_INFO`, a class ferrosocks' levels do not have, so it never appears.
//! - `>CLIENT:` env (see [`client`]): OpenVPN's names where the meaning carries over
//!   (`n_clients`, `untrusted_ip`/`untrusted_ip6`, `untrusted_port`, `common_name`,
//!   `username`, `trusted_*`, `ifconfig_pool_remote_ip[6]`, `time_unix`,
//!   `time_duration`, `bytes_received`, `bytes_sent`), ferrosocks' own for the rest
//!   (`auth_method`, `command`, `target`, `rule`, `reason`). A name that has no value
//!   (no user, the method not chosen yet) is left out, never printed empty or `UNDEF`.
//! - Dropped notifications: `>INFO:N notification(s) dropped while you were not
//!   reading` ([`dropped`]).
//! - Every text that did not come from ferrosocks itself (user names, requested host
//!   names, log texts, reasons) goes through [`clean`]: a control character (CR, LF,
//!   …; not TAB) or a Unicode line separator becomes a visible escape (`\r`, `\n`,
//!   `\x1b`, `\u{2028}`), so no value can end a line or forge a notification.
//!
//! No line carries a password: [`SessionSnapshot`] has none, and nothing here takes
//! one.

use std::borrow::Cow;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use logsys::{Level, OperatorRecord};
use server::registry::{EventKind, SessionId, SessionSnapshot, SessionState, SessionView};
use sockd_conf::SocksCommand;

use crate::proto::{canonical, canonical_ip};

// === >LOG: ===

/// The `>LOG:` flags of a level (see the module doc).
pub fn log_flags(level: Level) -> &'static str {
    match level {
        Level::Crit => "F",
        Level::Error => "N",
        Level::Warning => "W",
        Level::Debug => "D",
        Level::Notice | Level::Trace | Level::Info => "",
    }
}

/// A live record: `>LOG:TIME,FLAGS,TEXT`.
pub fn log(rec: &OperatorRecord) -> String {
    let mut out = String::with_capacity(rec.text.len() + 21);
    log_into(&mut out, rec);
    out
}

/// [`log`], appended to `out` (a client's outgoing buffer).
pub fn log_into(out: &mut String, rec: &OperatorRecord) {
    out.push_str(">LOG:");
    log_line_into(out, rec);
}

/// A record as `log all` / `log N` list it: `TIME,FLAGS,TEXT`.
pub fn log_line(rec: &OperatorRecord) -> String {
    let mut out = String::with_capacity(rec.text.len() + 16);
    log_line_into(&mut out, rec);
    out
}

fn log_line_into(out: &mut String, rec: &OperatorRecord) {
    push_u64(out, unix(rec.time));
    out.push(',');
    out.push_str(log_flags(rec.level));
    out.push(',');
    out.push_str(&clean(&rec.text));
    out.push_str("\r\n");
}

/// `log all` / `log N`: these records (oldest first), then `END`.
pub fn log_history<'a>(records: impl IntoIterator<Item = &'a OperatorRecord>) -> String {
    let mut out: String = records.into_iter().map(log_line).collect();
    out.push_str(crate::proto::reply::END);
    out
}

/// `>FATAL:TEXT`: sent after the crit record's `>LOG:` line, just before the process
/// ends.
pub fn fatal(text: &str) -> String {
    format!(">FATAL:{}\r\n", clean(text))
}

// === >STATE: ===

/// The server's life cycle, as `>STATE:` names it (§6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateName {
    /// Starting.
    Connecting,
    /// Listening.
    Connected,
    /// Reloading its configuration.
    Reconnecting,
    /// Shutting down.
    Exiting,
}

impl StateName {
    /// OpenVPN's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "CONNECTING",
            Self::Connected => "CONNECTED",
            Self::Reconnecting => "RECONNECTING",
            Self::Exiting => "EXITING",
        }
    }
}

/// One state change, as the server keeps it for `state` and sends it live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// When.
    pub time: SystemTime,
    /// Which state.
    pub name: StateName,
    /// OpenVPN's DESC: `SUCCESS` when connected, the signal when reloading or exiting
    /// (`SIGHUP`, `SIGTERM`), else empty. No commas.
    pub desc: String,
    /// ferrosocks' first listening address, when connected: OpenVPN's LOCAL_ADDR and
    /// LOCAL_PORT.
    pub local: Option<SocketAddr>,
}

impl State {
    /// `TIME,NAME,DESC,,,,LOCAL_ADDR,LOCAL_PORT`: eight fields, the tunnel address and
    /// the remote end always empty.
    pub fn line(&self) -> String {
        let local = self
            .local
            .map(canonical)
            .map_or_else(|| ",".to_owned(), |a| format!("{},{}", a.ip(), a.port()));
        format!(
            "{},{},{},,,,{local}\r\n",
            unix(self.time),
            self.name.as_str(),
            clean(&self.desc)
        )
    }
}

/// A live state change: `>STATE:…`.
pub fn state(s: &State) -> String {
    format!(">STATE:{}", s.line())
}

/// `state`, `state all`, `state N`: these states (oldest first), then `END`.
pub fn state_history<'a>(states: impl IntoIterator<Item = &'a State>) -> String {
    let mut out: String = states.into_iter().map(State::line).collect();
    out.push_str(crate::proto::reply::END);
    out
}

// === >CLIENT: ===

/// `>CLIENT:ENV,NAME=`, the start of an env line, made at compile time.
macro_rules! key {
    ($name:literal) => {
        concat!(">CLIENT:ENV,", $name, "=")
    };
}

/// The keys of an address's env lines, `PREFIX_port`, `PREFIX_ip`, `PREFIX_ip6`.
macro_rules! address_keys {
    ($prefix:literal) => {
        (
            concat!(">CLIENT:ENV,", $prefix, "_port="),
            concat!(">CLIENT:ENV,", $prefix, "_ip="),
            concat!(">CLIENT:ENV,", $prefix, "_ip6="),
        )
    };
}

/// The block for a session event: the header, the env lines, `>CLIENT:ENV,END`.
///
/// `n_clients` is the number of sessions the server counts for the env (OpenVPN
/// counts established clients, not the one connecting); `now` dates the disconnect
/// (`time_duration`); a disconnect's `reason` is the session's (`closed` when it has
/// none).
///
/// | event | header | env, in this order |
/// |---|---|---|
/// | `Connect` | `>CLIENT:CONNECT,CID,0` | `n_clients`, `untrusted_port`, `untrusted_ip` (`untrusted_ip6` for IPv6), `common_name`, `username` (both the user, when known), `auth_method`, `command`, `target`, `rule`, `time_unix` (accept time) |
/// | `Established` | `>CLIENT:ESTABLISHED,CID` | those, `trusted_port`, `trusted_ip`/`trusted_ip6`, `ifconfig_pool_remote_ip`/`ifconfig_pool_remote_ip6` (the target's address, as the status file's Virtual Address) |
/// | `Disconnect` | `>CLIENT:DISCONNECT,CID` | those (the established ones only if it was), `time_duration`, `bytes_sent`, `bytes_received` (to / from the client), `reason` |
pub fn client(kind: EventKind, s: &SessionView<'_>, n_clients: usize, now: SystemTime) -> String {
    let mut out = String::with_capacity(ENV_CAPACITY);
    client_into(&mut out, kind, s, n_clients, now);
    out
}

/// [`client`], appended to `out` (a client's outgoing buffer: no block is allocated).
/// [`Blocks::write`] writes the same bytes for a session's events in turn, with less
/// work.
pub fn client_into(
    out: &mut String,
    kind: EventKind,
    s: &SessionView<'_>,
    n_clients: usize,
    now: SystemTime,
) {
    out.reserve(ENV_CAPACITY);
    let mut recent = Recent::default();
    let mut env = Env {
        out,
        recent: &mut recent,
    };
    env.head(kind, s.id, n_clients);
    env.fixed(s);
    let established = match kind {
        EventKind::Connect => false,
        EventKind::Established => true,
        EventKind::Disconnect => s.state == SessionState::Established,
    };
    if established {
        env.established(s);
    }
    if kind == EventKind::Disconnect {
        env.ended(s, now);
    }
    env.out.push_str(END);
}

/// One management client's `>CLIENT:` blocks, written in the order the session events
/// come ([`Blocks::write`]; the bytes of [`client_into`]). A session's three blocks
/// share most of their env: the lines from `untrusted_port` to `time_unix` are set
/// before the session's `Connect` and never change, nor do a CONNECT session's
/// established lines (a UDP association's last destination does). Those are rendered
/// once, at the session's first event, into a slot the client keeps (not the session:
/// the session pays nothing for it), and copied into its later blocks; the slot is
/// free again after the `Disconnect` and keeps its buffer, so that no block allocates.
///
/// The slots are [`SLOTS`] (picked by CID, one session each): a session whose slot was
/// taken by a later one before its next event (more than [`SLOTS`] sessions began in
/// between, e.g. a long-lived one) has its lines rendered again, with the same bytes.
/// What a client holds is bounded: [`SLOTS`] buffers of about [`SLOT_ROOM`] bytes.
///
/// The text of the last client and target IPv4 addresses written is kept too (most
/// sessions of a proxy come from a few hosts and go to a few), and that of the last
/// `n_clients` and `time_unix` (at a rate where the cost counts, many sessions begin
/// in the same second).
pub struct Blocks {
    slots: Box<[Slot]>,
    recent: Recent,
}

/// Sessions whose shared env lines a management client keeps at once.
pub const SLOTS: usize = 256;

/// Room for a slot's text: the shared env lines of an IPv4 session with a short
/// target (about 220 bytes) and its established lines (about 110, [`ESTABLISHED_ROOM`]
/// for IPv6). A slot that grew beyond four times this (a long user name or target) is
/// let go once its session ends.
const SLOT_ROOM: usize = 256 + ESTABLISHED_ROOM;

#[derive(Default)]
struct Slot {
    /// The session the text is of.
    id: Option<SessionId>,
    /// The shared env lines, then (a CONNECT session's, once rendered) the established
    /// lines.
    text: String,
    /// Where the established lines start.
    mark: usize,
}

impl Default for Blocks {
    fn default() -> Self {
        Self::new()
    }
}

impl Blocks {
    /// No session kept yet (the buffers are allocated as sessions come).
    pub fn new() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            recent: Recent::default(),
        }
    }

    /// Appends the block of session event `kind` of `s` to `out`: the bytes of
    /// [`client_into`].
    pub fn write(
        &mut self,
        out: &mut String,
        kind: EventKind,
        s: &SessionView<'_>,
        n_clients: usize,
        now: SystemTime,
    ) {
        out.reserve(ENV_CAPACITY);
        let slot = &mut self.slots[(s.id % SLOTS as u64) as usize];
        let recent = &mut self.recent;
        let mine = slot.id == Some(s.id);
        let mut env = Env { out, recent };
        env.head(kind, s.id, n_clients);
        match kind {
            EventKind::Connect => {
                slot.fill(s, env.recent);
                env.out.push_str(&slot.text);
            }
            EventKind::Established => {
                if !mine {
                    slot.fill(s, env.recent);
                }
                env.out.push_str(&slot.text[..slot.mark]);
                slot.established(&mut env, s);
            }
            EventKind::Disconnect => {
                if mine {
                    env.out.push_str(&slot.text[..slot.mark]);
                    if s.state == SessionState::Established {
                        slot.established(&mut env, s);
                    }
                    slot.free();
                } else {
                    // A session this client did not see begin (or whose slot another
                    // took): nothing is kept for its last block.
                    env.fixed(s);
                    if s.state == SessionState::Established {
                        env.established(s);
                    }
                }
                env.ended(s, now);
            }
        }
        env.out.push_str(END);
    }
}

impl Slot {
    /// Makes the slot `s`'s, with its shared env lines.
    fn fill(&mut self, s: &SessionView<'_>, recent: &mut Recent) {
        self.id = Some(s.id);
        self.text.clear();
        self.text.reserve(SLOT_ROOM);
        Env {
            out: &mut self.text,
            recent,
        }
        .fixed(s);
        self.mark = self.text.len();
    }

    /// Appends `s`'s established lines to `env`: a CONNECT session's from the slot
    /// (rendered there the first time), a UDP association's as they are now.
    fn established(&mut self, env: &mut Env<'_>, s: &SessionView<'_>) {
        if s.command != Some(SocksCommand::Connect) {
            env.established(s);
            return;
        }
        if self.text.len() == self.mark {
            Env {
                out: &mut self.text,
                recent: env.recent,
            }
            .established(s);
        }
        env.out.push_str(&self.text[self.mark..]);
    }

    /// The session ended: the slot is free (its buffer kept, unless it grew big).
    fn free(&mut self) {
        self.id = None;
        if self.text.capacity() > 4 * SLOT_ROOM {
            self.text = String::new();
        }
    }
}

/// `>CLIENT:ADDRESS,CID,ADDR,PRI`: a target address learned (`primary`: the session's
/// target; not: one more UDP destination).
pub fn client_address(cid: SessionId, addr: IpAddr, primary: bool) -> String {
    format!(
        ">CLIENT:ADDRESS,{cid},{},{}\r\n",
        canonical_ip(addr),
        u8::from(primary)
    )
}

/// Room for a CONNECT session's established lines (`trusted_port`, `trusted_ip`,
/// `ifconfig_pool_remote_ip`: about 110 bytes for IPv4, at most about 190 for IPv6).
const ESTABLISHED_ROOM: usize = 192;

/// Room for a whole `>CLIENT:` block (a DISCONNECT of an established IPv4 session with
/// a short target is about 450 bytes), so that it is built without reallocating.
const ENV_CAPACITY: usize = 640;

/// The last line of every `>CLIENT:` block.
const END: &str = ">CLIENT:ENV,END\r\n";

/// The lines of one `>CLIENT:` block. Built without `core::fmt` for what every block
/// holds (names, numbers, IPv4 addresses): with a management client connected, three
/// blocks are written per session, and formatting them was most of what the client
/// cost the proxy (docs/PERFORMANCE.md, "Operators"). Only the texts that did not come
/// from ferrosocks (user names, targets as requested, reasons) go through [`clean`];
/// numbers, addresses and fixed names are written as they are.
struct Env<'a> {
    out: &'a mut String,
    recent: &'a mut Recent,
}

/// The text of the last value written of some env lines (the client's and the
/// target's IPv4 addresses, `n_clients`, `time_unix`): a value written again is
/// compared and copied, not rendered.
#[derive(Default)]
struct Recent {
    client: Ipv4Text,
    target: Ipv4Text,
    n_clients: NumberText,
    time_unix: NumberText,
}

#[derive(Default)]
struct NumberText {
    n: Option<u64>,
    text: String,
}

impl NumberText {
    /// Appends `n` in decimal.
    fn push(&mut self, out: &mut String, n: u64) {
        if self.n != Some(n) {
            self.text.clear();
            push_u64(&mut self.text, n);
            self.n = Some(n);
        }
        out.push_str(&self.text);
    }
}

#[derive(Default)]
struct Ipv4Text {
    ip: Option<std::net::Ipv4Addr>,
    text: String,
}

impl Ipv4Text {
    /// Appends `ip` as its `Display` writes it.
    fn push(&mut self, out: &mut String, ip: std::net::Ipv4Addr) {
        if self.ip != Some(ip) {
            self.text.clear();
            push_ipv4(&mut self.text, ip);
            self.ip = Some(ip);
        }
        out.push_str(&self.text);
    }
}

/// Which address an env line holds.
#[derive(Clone, Copy)]
enum Role {
    Client,
    Target,
}

/// A value of an env line, appended as its `Display` would write it.
trait EnvValue {
    fn push_to(&self, out: &mut String);
}

impl EnvValue for &str {
    fn push_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl EnvValue for Cow<'_, str> {
    fn push_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl EnvValue for u64 {
    fn push_to(&self, out: &mut String) {
        push_u64(out, *self);
    }
}

impl EnvValue for u32 {
    fn push_to(&self, out: &mut String) {
        push_u64(out, u64::from(*self));
    }
}

impl EnvValue for u16 {
    fn push_to(&self, out: &mut String) {
        push_u64(out, u64::from(*self));
    }
}

impl EnvValue for std::net::Ipv6Addr {
    fn push_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

/// `ip` as its `Display` writes it: a char at a time (ASCII: one byte each), without
/// `core::fmt` and without checking a buffer as UTF-8.
fn push_ipv4(out: &mut String, ip: std::net::Ipv4Addr) {
    out.reserve(15);
    for (i, o) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if o >= 100 {
            out.push(char::from(b'0' + o / 100));
        }
        if o >= 10 {
            out.push(char::from(b'0' + o / 10 % 10));
        }
        out.push(char::from(b'0' + o % 10));
    }
}

/// `n` in decimal, as `Display` writes it.
fn push_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

impl Env<'_> {
    /// The header line and `n_clients`.
    fn head(&mut self, kind: EventKind, cid: SessionId, n_clients: usize) {
        // Each piece a constant where it is copied (no call to copy it).
        match kind {
            EventKind::Connect => self.head_with(">CLIENT:CONNECT,", cid, ",0\r\n"),
            EventKind::Established => self.head_with(">CLIENT:ESTABLISHED,", cid, "\r\n"),
            EventKind::Disconnect => self.head_with(">CLIENT:DISCONNECT,", cid, "\r\n"),
        }
        self.out.push_str(key!("n_clients"));
        self.recent.n_clients.push(self.out, n_clients as u64);
        self.out.push_str("\r\n");
    }

    #[inline(always)]
    fn head_with(&mut self, what: &'static str, cid: SessionId, tail: &'static str) {
        self.out.push_str(what);
        push_u64(self.out, cid);
        self.out.push_str(tail);
    }

    /// An env line: `key` (`>CLIENT:ENV,NAME=`, see [`key!`]), the value, CRLF.
    /// Inlined, so that each key's length is known where it is copied.
    #[inline(always)]
    fn var(&mut self, key: &'static str, value: impl EnvValue) {
        self.out.push_str(key);
        value.push_to(self.out);
        self.out.push_str("\r\n");
    }

    /// `PREFIX_port` and `PREFIX_ip` (or `PREFIX_ip6`), as OpenVPN's
    /// `setenv_sockaddr` writes them; `keys` from [`address_keys!`].
    fn address(
        &mut self,
        keys: (&'static str, &'static str, &'static str),
        a: SocketAddr,
        role: Role,
    ) {
        let a = canonical(a);
        if a.port() != 0 {
            self.var(keys.0, a.port());
        }
        match a.ip() {
            IpAddr::V4(ip) => self.ipv4(keys.1, ip, role),
            IpAddr::V6(ip) => self.var(keys.2, ip),
        }
    }

    /// An env line of an IPv4 address in `role`.
    fn ipv4(&mut self, key: &'static str, ip: std::net::Ipv4Addr, role: Role) {
        self.out.push_str(key);
        let text = match role {
            Role::Client => &mut self.recent.client,
            Role::Target => &mut self.recent.target,
        };
        text.push(self.out, ip);
        self.out.push_str("\r\n");
    }

    /// The env lines every block of a session has, after `n_clients`, the same in each.
    fn fixed(&mut self, s: &SessionView<'_>) {
        self.address(address_keys!("untrusted"), s.client, Role::Client);
        if let Some(user) = s.user {
            let user = clean(user);
            self.var(key!("common_name"), &*user);
            self.var(key!("username"), &*user);
        }
        if let Some(m) = s.method {
            self.var(key!("auth_method"), m.as_str());
        }
        if let Some(c) = s.command {
            self.var(key!("command"), command_name(c));
        }
        if let Some(t) = s.target {
            self.var(key!("target"), clean(t));
        }
        if let Some(r) = s.rule {
            self.var(key!("rule"), r);
        }
        self.out.push_str(key!("time_unix"));
        self.recent.time_unix.push(self.out, unix(s.started));
        self.out.push_str("\r\n");
    }

    /// The lines an established session's blocks add.
    fn established(&mut self, s: &SessionView<'_>) {
        self.address(address_keys!("trusted"), s.client, Role::Client);
        match s.resolved.map(|a| canonical_ip(a.ip())) {
            Some(IpAddr::V4(ip)) => self.ipv4(key!("ifconfig_pool_remote_ip"), ip, Role::Target),
            Some(IpAddr::V6(ip)) => self.var(key!("ifconfig_pool_remote_ip6"), ip),
            None => {}
        }
    }

    /// The lines a `Disconnect` adds at the end.
    fn ended(&mut self, s: &SessionView<'_>, now: SystemTime) {
        let secs = now.duration_since(s.started).map_or(0, |d| d.as_secs());
        self.var(key!("time_duration"), secs);
        self.var(key!("bytes_sent"), s.traffic.to_client.bytes);
        self.var(key!("bytes_received"), s.traffic.from_client.bytes);
        self.var(key!("reason"), clean(s.reason.unwrap_or("closed")));
    }
}

/// A command as the configuration writes it (`connect`, `bind`, `udpassociate`).
fn command_name(c: SocksCommand) -> &'static str {
    match c {
        SocksCommand::Connect => "connect",
        SocksCommand::Bind => "bind",
        SocksCommand::BindReply => "bindreply",
        SocksCommand::UdpAssociate => "udpassociate",
        SocksCommand::UdpReply => "udpreply",
    }
}

// === >BYTECOUNT: ===

/// `>BYTECOUNT_CLI:CID,IN,OUT`: bytes read from the client, written to it, since the
/// session began.
pub fn bytecount_cli(s: &SessionSnapshot) -> String {
    let mut out = String::with_capacity(48);
    bytecount_cli_into(&mut out, s);
    out
}

/// [`bytecount_cli`], appended to `out` (a client's outgoing buffer).
pub fn bytecount_cli_into(out: &mut String, s: &SessionSnapshot) {
    out.push_str(">BYTECOUNT_CLI:");
    push_u64(out, s.id);
    out.push(',');
    push_u64(out, s.traffic.from_client.bytes);
    out.push(',');
    push_u64(out, s.traffic.to_client.bytes);
    out.push_str("\r\n");
}

/// `>BYTECOUNT:IN,OUT`: server-wide totals, from and to clients.
pub fn bytecount(bytes_in: u64, bytes_out: u64) -> String {
    format!(">BYTECOUNT:{bytes_in},{bytes_out}\r\n")
}

// === >INFO: ===

/// `n` notifications were not sent because the client did not read them in time.
pub fn dropped(n: u64) -> String {
    format!(">INFO:{n} notification(s) dropped while you were not reading\r\n")
}

// === Helpers ===

/// Seconds since the Unix epoch (0 before it).
fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether every byte is printable ASCII or TAB — nearly every text. A `>LOG:` line is
/// about 200 bytes, and a byte-by-byte test was a tenth of what a session's
/// notifications cost: 32 bytes at a time, with a test the compiler does with vector
/// instructions (no branch per byte), then what is left a word at a time
/// ([`printable_words`]).
fn printable_ascii(bytes: &[u8]) -> bool {
    // Below 0x20 and not TAB, or 0x7f and above.
    let bad = |b: u8| u8::from(b.wrapping_sub(0x20) >= 0x5f) & u8::from(b != b'\t');
    let mut chunks = bytes.chunks_exact(32);
    for chunk in &mut chunks {
        if chunk.iter().fold(0, |any, &b| any | bad(b)) != 0 {
            return false;
        }
    }
    printable_words(chunks.remainder())
}

/// [`printable_ascii`] eight bytes at a time as one `u64`: a word with no byte below
/// 0x20 and none at 0x7f or above is printable; a word with such a byte (a TAB, or a
/// text to escape) is looked at byte by byte. The last bytes of a text of eight or more
/// are checked as the word that ends it (overlapping bytes already checked), not one by
/// one.
#[inline]
fn printable_words(bytes: &[u8]) -> bool {
    let byte_ok = |b: u8| b.wrapping_sub(0x20) < 0x5f || b == b'\t';
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        if !printable_word(word) {
            return false;
        }
    }
    match words.remainder() {
        [] => true,
        _ if bytes.len() >= 8 => printable_word(&bytes[bytes.len() - 8..]),
        tail => tail.iter().all(|&b| byte_ok(b)),
    }
}

/// Whether the 8 bytes of `word` are printable ASCII or TAB.
#[inline(always)]
fn printable_word(word: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let byte_ok = |b: u8| b.wrapping_sub(0x20) < 0x5f || b == b'\t';
    let mut w = [0u8; 8];
    w.copy_from_slice(word);
    let x = u64::from_ne_bytes(w);
    // Some byte is below 0x20 (exact for "any byte", as bit tricks go for n <= 128).
    let low = x.wrapping_sub(0x20 * ONES) & !x & HIGH;
    // Some byte is 0x7f or above: 0x7f plus one sets its high bit, without a carry
    // into the next byte once each byte's high bit is cleared first.
    let high = (((x & !HIGH) + ONES) | x) & HIGH;
    (low | high) == 0 || word.iter().all(|&b| byte_ok(b))
}

/// A text that cannot break a line: control characters other than TAB, and Unicode's
/// line and paragraph separators, become escapes (`\r`, `\n`, `\x07`, `\u{85}`,
/// `\u{2028}`). Borrowed when there is nothing to escape.
pub fn clean(s: &str) -> Cow<'_, str> {
    if printable_ascii(s.as_bytes()) {
        return Cow::Borrowed(s);
    }
    let bad = |c: char| (c.is_control() && c != '\t') || c == '\u{2028}' || c == '\u{2029}';
    if !s.contains(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if bad(c) && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if bad(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use logsys::Subsystem;
    use server::registry::{Count, Traffic};
    use sockd_conf::AuthMethod;

    use super::*;

    #[test]
    fn the_fast_printable_check_agrees_with_the_byte_by_byte_one() {
        let naive = |b: &[u8]| b.iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\t');
        // Every byte value at every place of a 75-byte text (two chunks of 32, a
        // word and a tail).
        for at in 0..75 {
            for v in 0..=255u8 {
                let mut t = vec![b'a'; 75];
                t[at] = v;
                assert_eq!(printable_ascii(&t), naive(&t), "byte {v:#x} at {at}");
            }
        }
        assert!(printable_ascii(b""));
        // Every length, with the bad byte last (the tail's overlapping word).
        for len in 1..80 {
            let mut t = vec![b'a'; len];
            assert!(printable_ascii(&t));
            t[len - 1] = b'\n';
            assert!(!printable_ascii(&t), "{len}");
            t[len - 1] = b'\t';
            assert!(printable_ascii(&t), "{len}");
        }
    }

    #[test]
    fn ipv4_addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "127.0.0.1",
            "255.255.255.255",
            "1.20.255.3",
        ] {
            let ip: std::net::Ipv4Addr = ip.parse().unwrap();
            let mut out = String::new();
            push_ipv4(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }

    pub(crate) fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn record(level: Level, text: &str) -> OperatorRecord {
        OperatorRecord {
            time: at(1_795_252_781),
            level,
            subsystem: Subsystem::CLIENT,
            text: text.into(),
        }
    }

    #[test]
    fn log_flags_follow_the_level() {
        let flags: Vec<&str> = Level::ALL.into_iter().map(log_flags).collect();
        assert_eq!(flags, ["F", "N", "W", "", "", "", "D"]);
        assert_eq!(
            log(&record(Level::Error, "Connect failed")),
            ">LOG:1795252781,N,Connect failed\r\n"
        );
        assert_eq!(
            log(&record(Level::Notice, "a,b")),
            ">LOG:1795252781,,a,b\r\n"
        );
    }

    #[test]
    fn no_text_can_end_a_line_or_start_a_notification() {
        let evil = "bob\r\n>CLIENT:KILL,1\u{2028}\u{85}\x1b[31m\tok";
        assert_eq!(
            clean(evil),
            "bob\\r\\n>CLIENT:KILL,1\\u{2028}\\u{85}\\x1b[31m\tok"
        );
        assert!(matches!(clean("plain ütf-8"), Cow::Borrowed(_)));
        let line = log(&record(Level::Info, evil));
        assert_eq!(line.matches("\r\n").count(), 1);
        assert!(line.ends_with("\r\n"));
    }

    #[test]
    fn state_lines_have_eight_fields() {
        let s = State {
            time: at(1_795_252_752),
            name: StateName::Connected,
            desc: "SUCCESS".into(),
            local: Some("127.0.0.1:1080".parse().unwrap()),
        };
        assert_eq!(
            s.line(),
            "1795252752,CONNECTED,SUCCESS,,,,127.0.0.1,1080\r\n"
        );
        let e = State {
            name: StateName::Exiting,
            desc: "SIGTERM".into(),
            local: None,
            ..s.clone()
        };
        assert_eq!(state(&e), ">STATE:1795252752,EXITING,SIGTERM,,,,,\r\n");
        let v6 = State {
            local: Some("[::]:1080".parse().unwrap()),
            ..s
        };
        assert_eq!(v6.line(), "1795252752,CONNECTED,SUCCESS,,,,::,1080\r\n");
    }

    pub(crate) fn snapshot() -> SessionSnapshot {
        SessionSnapshot {
            id: 7,
            client: "192.0.2.10:49017".parse().unwrap(),
            internal: "192.0.2.1:1080".parse().unwrap(),
            external: Some("198.51.100.1:40001".parse().unwrap()),
            user: Some("alice".into()),
            method: Some(AuthMethod::Username),
            rule: Some(3),
            command: Some(SocksCommand::Connect),
            target: Some("example.com:443".into()),
            resolved: Some("93.184.216.34:443".parse().unwrap()),
            state: SessionState::Established,
            started: at(1_795_252_822),
            last_activity: at(1_795_252_840),
            traffic: Traffic {
                from_client: Count {
                    bytes: 4872,
                    packets: 9,
                },
                to_client: Count {
                    bytes: 5023,
                    packets: 8,
                },
                from_target: Count {
                    bytes: 5023,
                    packets: 8,
                },
                to_target: Count {
                    bytes: 4872,
                    packets: 9,
                },
            },
        }
    }

    #[test]
    fn client_blocks_are_crlf_lines_ending_in_env_end() {
        let s = snapshot();
        let ended = SessionView {
            reason: Some("local client closed"),
            ..s.view()
        };
        for (kind, view) in [
            (EventKind::Connect, s.view()),
            (EventKind::Established, s.view()),
            (EventKind::Disconnect, ended),
        ] {
            let b = client(kind, &view, 1, at(1_795_252_846));
            assert!(b.ends_with(">CLIENT:ENV,END\r\n"));
            assert_eq!(b.matches('\n').count(), b.matches("\r\n").count());
            assert!(b
                .split_terminator("\r\n")
                .all(|l| l.starts_with(">CLIENT:")));
        }
    }

    #[test]
    fn a_clients_blocks_are_the_blocks_made_alone() {
        let now = at(1_795_252_846);
        let mut blocks = Blocks::new();
        // n_clients and the start time change from some sessions to the next.
        let mut check = |kind, v: &SessionView<'_>| {
            let n = (v.id / 2 % 3) as usize;
            let mut out = String::from("before\r\n");
            blocks.write(&mut out, kind, v, n, now);
            assert_eq!(
                out.strip_prefix("before\r\n"),
                Some(&*client(kind, v, n, now))
            );
        };
        let s = snapshot();
        let targets = ["93.184.216.34:443", "93.184.216.35:80", "[2001:db8::80]:80"];
        let clients = [
            "192.0.2.10:49017",
            "192.0.2.11:49018",
            "[2001:db8::5]:40000",
        ];
        // Sessions of each command and address family, their events interleaved as
        // they come from many sessions at once; some end before they are established,
        // and a UDP association's last destination changes after its Established.
        let mut sessions = Vec::new();
        for id in 0..24u64 {
            let command = [SocksCommand::Connect, SocksCommand::UdpAssociate][id as usize % 2];
            sessions.push(SessionSnapshot {
                id,
                client: clients[id as usize % 3].parse().unwrap(),
                resolved: Some(targets[id as usize / 2 % 3].parse().unwrap()),
                command: Some(command),
                user: (id % 4 == 0).then(|| "bob\r\n".into()),
                started: at(1_795_252_822 + id / 5),
                ..s.clone()
            });
        }
        for round in sessions.chunks(6) {
            for s in round {
                check(EventKind::Connect, &s.view());
            }
            for s in round.iter().filter(|s| s.id % 5 != 0) {
                check(EventKind::Established, &s.view());
            }
            for s in round {
                let state = if s.id % 5 == 0 {
                    SessionState::Requesting
                } else {
                    SessionState::Established
                };
                let moved = SessionSnapshot {
                    resolved: Some(targets[(s.id as usize + 1) % 3].parse().unwrap()),
                    ..s.clone()
                };
                let last = if s.command == Some(SocksCommand::UdpAssociate) {
                    &moved
                } else {
                    s
                };
                let ended = SessionView {
                    state,
                    reason: Some("local client closed"),
                    ..last.view()
                };
                check(EventKind::Disconnect, &ended);
            }
        }
        // A session whose slot a later one took, and one seen only from its
        // Established (a client that connected in the middle of it).
        let old = SessionSnapshot {
            id: 100,
            ..s.clone()
        };
        let new = SessionSnapshot {
            id: 100 + SLOTS as u64,
            ..s.clone()
        };
        check(EventKind::Connect, &old.view());
        check(EventKind::Connect, &new.view());
        check(EventKind::Established, &old.view());
        check(EventKind::Established, &new.view());
        fn gone(s: &SessionSnapshot) -> SessionView<'_> {
            SessionView {
                reason: Some("closed"),
                ..s.view()
            }
        }
        check(EventKind::Disconnect, &gone(&new));
        check(EventKind::Disconnect, &gone(&old));
        let late = SessionSnapshot {
            id: 7_000,
            ..s.clone()
        };
        check(EventKind::Established, &late.view());
        check(EventKind::Disconnect, &gone(&late));
    }

    #[test]
    fn an_anonymous_ipv6_session_has_no_user_lines_and_ip6_names() {
        let s = SessionSnapshot {
            client: "[2001:db8::5]:40000".parse().unwrap(),
            user: None,
            method: Some(AuthMethod::None),
            resolved: Some("[2001:db8::80]:80".parse().unwrap()),
            ..snapshot()
        };
        let b = client(EventKind::Established, &s.view(), 0, at(0));
        assert!(!b.contains("username") && !b.contains("common_name"));
        assert!(b.contains(">CLIENT:ENV,untrusted_ip6=2001:db8::5\r\n"));
        assert!(b.contains(">CLIENT:ENV,trusted_ip6=2001:db8::5\r\n"));
        assert!(b.contains(">CLIENT:ENV,ifconfig_pool_remote_ip6=2001:db8::80\r\n"));
    }

    #[test]
    fn a_disconnect_before_the_relay_has_no_trusted_lines() {
        let s = SessionSnapshot {
            state: SessionState::Requesting,
            resolved: None,
            ..snapshot()
        };
        let b = client(
            EventKind::Disconnect,
            &SessionView {
                reason: Some("no route\r\nto host"),
                ..s.view()
            },
            0,
            at(1_795_252_800),
        );
        assert!(!b.contains(",trusted_"));
        // Before the start: 0 s, not a panic.
        assert!(b.contains(">CLIENT:ENV,time_duration=0\r\n"));
        assert!(b.contains(">CLIENT:ENV,reason=no route\\r\\nto host\r\n"));
    }

    #[test]
    fn bytecounts_are_client_side() {
        assert_eq!(bytecount_cli(&snapshot()), ">BYTECOUNT_CLI:7,4872,5023\r\n");
        assert_eq!(bytecount(9572, 9651), ">BYTECOUNT:9572,9651\r\n");
    }

    #[test]
    fn mapped_addresses_print_as_ipv4() {
        let ip: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(
            client_address(2, ip, false),
            ">CLIENT:ADDRESS,2,10.1.2.3,0\r\n"
        );
    }
}
