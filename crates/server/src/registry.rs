//! The sessions registry: the one read API of live state.
//!
//! Every session (TCP CONNECT, BIND, UDP association) registers when it is accepted and
//! gets a [`SessionId`] (the management interface's CID: decimal, from 0, never reused in
//! the process's life) and a cancel handle that ends that session alone. As the session
//! moves on it fills in who and what it is (user, method, rule, command, target as
//! requested and as resolved, endpoints) and the [`Counters`] its bytes move through —
//! one counter type for TCP relays and UDP associations, updated with atomics only.
//! Readers take [`SessionSnapshot`]s (plain values) and [`Totals`] (ended sessions'
//! sums), and may subscribe to [`SessionEvent`]s; the SIGUSR1 dump, the status file, the
//! management interface and the metrics all render from these with pure functions.
//!
//! The descriptors an entry names for the dump are cleared before the session closes its
//! sockets, and the dump reads them under the same lock, so it never asks the kernel about
//! a descriptor that was closed (and reused).
//!
//! Times are milliseconds on one clock ([`now_ms`]): when a session was accepted and when
//! its bytes last moved. A session's activity time starts at its accept, so its idle time
//! never exceeds its age.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use sockd_conf::{AuthMethod, SocksCommand};
use tokio_util::sync::CancellationToken;
use traffic_log::Side;

mod fanout;

pub use fanout::Subscription;

/// A session's id: the management interface's CID.
pub type SessionId = u64;

/// The registry clock's zero: the first registry's creation (the server's start), or the
/// first reading if that comes earlier.
static EPOCH: OnceLock<(Instant, SystemTime)> = OnceLock::new();

fn epoch() -> &'static (Instant, SystemTime) {
    EPOCH.get_or_init(|| (Instant::now(), SystemTime::now()))
}

/// Milliseconds since [`EPOCH`]: the registry's clock, also used by the relays and the
/// UDP associations to say when bytes last moved.
pub(crate) fn now_ms() -> u64 {
    epoch().0.elapsed().as_millis() as u64
}

/// The wall-clock time of a [`now_ms`] reading.
fn wall(ms: u64) -> SystemTime {
    epoch().1 + Duration::from_millis(ms)
}

/// Whole seconds from `then` to `now`, both in [`now_ms`] time; 0 when `then` is later
/// (a session registered, or bytes moved, after `now` was read).
pub(crate) fn secs_since(then: u64, now: u64) -> u64 {
    now.saturating_sub(then) / 1000
}

/// One direction of one leg: bytes and packets (datagrams for UDP, I/O operations for
/// TCP), as atomics.
#[derive(Debug, Default)]
pub struct Flow {
    bytes: AtomicU64,
    packets: AtomicU64,
}

impl Flow {
    /// Counts one packet of `bytes` bytes.
    pub(crate) fn add(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.packets.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The counts so far.
    pub fn count(&self) -> Count {
        Count {
            bytes: self.bytes(),
            packets: self.packets.load(Ordering::Relaxed),
        }
    }
}

/// The counters bytes move through: the same type for a TCP relay and for each external
/// socket of a UDP association.
#[derive(Debug, Default)]
pub struct Counters {
    /// Read from the client.
    pub client_read: Flow,
    /// Written to the client.
    pub client_written: Flow,
    /// Read from the target.
    pub target_read: Flow,
    /// Written to the target.
    pub target_written: Flow,
    /// When bytes last moved, in [`now_ms`] time (0 until they do; readers bound it
    /// below by the session's accept).
    pub(crate) last_ms: AtomicU64,
}

impl Counters {
    /// Notes that bytes moved now.
    pub(crate) fn touch(&self) {
        self.last_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            from_client: self.client_read.count(),
            to_client: self.client_written.count(),
            from_target: self.target_read.count(),
            to_target: self.target_written.count(),
        }
    }
}

/// Bytes and packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Bytes.
    pub bytes: u64,
    /// Packets (datagrams; I/O operations for TCP).
    pub packets: u64,
}

impl std::ops::AddAssign for Count {
    fn add_assign(&mut self, o: Self) {
        self.bytes += o.bytes;
        self.packets += o.packets;
    }
}

/// A session's traffic, both legs, both ways.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Read from the client.
    pub from_client: Count,
    /// Written to the client.
    pub to_client: Count,
    /// Read from the target.
    pub from_target: Count,
    /// Written to the target.
    pub to_target: Count,
}

impl std::ops::AddAssign for Traffic {
    fn add_assign(&mut self, o: Self) {
        self.from_client += o.from_client;
        self.to_client += o.to_client;
        self.from_target += o.from_target;
        self.to_target += o.to_target;
    }
}

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Reading the handshake (method, authentication, request).
    Negotiating,
    /// Working on a request (rules, resolving, connecting, waiting for BIND's peer).
    Requesting,
    /// Relaying (TCP), or associated (UDP).
    Established,
}

/// A session as readers see it: plain values, taken at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSnapshot {
    /// The CID.
    pub id: SessionId,
    /// The client's address.
    pub client: SocketAddr,
    /// The proxy's address the client reached.
    pub internal: SocketAddr,
    /// The proxy's outgoing address, once there is one.
    pub external: Option<SocketAddr>,
    /// The authenticated user (RFC 1929 or ident), if any.
    pub user: Option<String>,
    /// The method negotiated, once it is.
    pub method: Option<AuthMethod>,
    /// The number of the socks rule that passed the request.
    pub rule: Option<u32>,
    /// The command, once the request is read.
    pub command: Option<SocksCommand>,
    /// The target as requested: `HOST:PORT` (`[IPv6]:PORT`).
    pub target: Option<String>,
    /// The target's address as connected to (for UDP, the last destination).
    pub resolved: Option<SocketAddr>,
    /// Where it is.
    pub state: SessionState,
    /// When it was accepted.
    pub started: SystemTime,
    /// When bytes last moved (the accept while none has).
    pub last_activity: SystemTime,
    /// Its traffic so far.
    pub traffic: Traffic,
}

/// What ended sessions add up to, and how many sessions there have been.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Sessions accepted since the start.
    pub accepted: u64,
    /// Sessions that got past negotiation (Dante's "handed").
    pub handed: u64,
    /// Sessions refused by a rule or failed authentication.
    pub blocked: u64,
    /// Sessions that have ended.
    pub ended: u64,
    /// The traffic of ended sessions.
    pub traffic: Traffic,
}

/// What happened to a session: what management clients are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Its request was read and passed the rules.
    Connect,
    /// Its relay started (target connected, UDP associated, BIND's second reply).
    Established,
    /// It ended (the reason is the entry's: Dante's words, e.g. `local client closed`).
    Disconnect,
}

/// A session came, was established, or went. The event carries the session's entry,
/// shared with the registry, not a copy of it: sending one costs the session an
/// `Arc` clone and a push into the channel, and the readers (on their own tasks) read
/// the session from the entry with [`SessionEvent::with_session`] when they format it.
/// What they read is the session as it is then: for the fields a `>CLIENT:` block
/// shows that is what it was at the event (they are set before the `Connect` and do not
/// change), except the traffic and the state, which a `Disconnect` reads at the end.
#[derive(Clone)]
pub struct SessionEvent {
    /// What happened.
    pub kind: EventKind,
    entry: Arc<Entry>,
}

impl std::fmt::Debug for SessionEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionEvent")
            .field("kind", &self.kind)
            .field("id", &self.entry.id)
            .finish()
    }
}

impl SessionEvent {
    /// The session's CID.
    pub fn id(&self) -> SessionId {
        self.entry.id
    }

    /// Runs `f` on the session as it is now, borrowed from its entry (under the entry's
    /// lock: `f` must be short and do no I/O or waiting).
    pub fn with_session<T>(&self, f: impl FnOnce(&SessionView<'_>) -> T) -> T {
        self.entry.with_view(f)
    }

    /// The session as it is now, as plain values.
    pub fn snapshot(&self) -> SessionSnapshot {
        self.entry.snapshot()
    }

    /// Why the session ended, once it has (`closed` when no reason was given).
    pub fn reason(&self) -> Option<String> {
        self.with_session(|v| v.reason.map(str::to_owned))
    }
}

/// A session borrowed from its entry (see [`SessionEvent::with_session`]), or from a
/// [`SessionSnapshot`] ([`SessionSnapshot::view`]): the same fields, nothing copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionView<'a> {
    /// The CID.
    pub id: SessionId,
    /// The client's address.
    pub client: SocketAddr,
    /// The authenticated user (RFC 1929 or ident), if any.
    pub user: Option<&'a str>,
    /// The method negotiated, once it is.
    pub method: Option<AuthMethod>,
    /// The number of the socks rule that passed the request.
    pub rule: Option<u32>,
    /// The command, once the request is read.
    pub command: Option<SocksCommand>,
    /// The target as requested: `HOST:PORT` (`[IPv6]:PORT`).
    pub target: Option<&'a str>,
    /// The target's address as connected to (for UDP, the last destination).
    pub resolved: Option<SocketAddr>,
    /// Where it is.
    pub state: SessionState,
    /// When it was accepted.
    pub started: SystemTime,
    /// Its traffic so far.
    pub traffic: Traffic,
    /// Why it ended, once it has: `closed` when it ended without a reason given, `None`
    /// while it lives (and in a snapshot's view).
    pub reason: Option<&'a str>,
}

impl SessionSnapshot {
    /// The snapshot as a [`SessionView`] (without a reason).
    pub fn view(&self) -> SessionView<'_> {
        SessionView {
            id: self.id,
            client: self.client,
            user: self.user.as_deref(),
            method: self.method,
            rule: self.rule,
            command: self.command,
            target: self.target.as_deref(),
            resolved: self.resolved,
            state: self.state,
            started: self.started,
            traffic: self.traffic,
            reason: None,
        }
    }
}

/// What a session is doing, for the dump's Dante-shaped lines.
pub(crate) enum Phase {
    /// Reading the handshake.
    Negotiating,
    /// Working on a request (`tcp connect-request`).
    Requesting(&'static str),
    /// Relaying TCP.
    Tcp(TcpState),
    /// A UDP association: `CLIENT-UDP PROXY-INTUDP` and `PROXY-EXT TARGET` as last seen.
    Udp {
        src: Option<Side>,
        dst: Option<Side>,
    },
}

pub(crate) struct TcpState {
    /// Shared with the session, not copied: a `Side` is two endpoints of about 100 bytes.
    pub(crate) src: Arc<Side>,
    pub(crate) dst: Arc<Side>,
    /// Client and target descriptors while both sockets are open.
    pub(crate) fds: Option<(RawFd, RawFd)>,
    /// Whether `log: tcpinfo` asks for TCP_INFO in the dump too.
    pub(crate) tcpinfo: bool,
}

/// What a session fills in as it goes.
struct Info {
    internal: SocketAddr,
    external: Option<SocketAddr>,
    user: Option<String>,
    method: Option<AuthMethod>,
    rule: Option<u32>,
    command: Option<SocksCommand>,
    target: Option<String>,
    resolved: Option<SocketAddr>,
    counters: Vec<Arc<Counters>>,
    phase: Phase,
    blocked: bool,
    reason: Option<String>,
    /// The session has left the registry (its `Disconnect` is sent).
    gone: bool,
    /// Once it has left: its state, traffic and last activity at the end. The counters
    /// and the phase (the relay's endpoints) are let go then, on the session's own
    /// thread, so that the reader that drops the entry last (a management client, on
    /// its own task, after the `Disconnect`) frees little of what the session allocated
    /// (docs/PERFORMANCE.md, "Operators").
    end: Option<End>,
}

/// What an entry keeps of its session once the session has left the registry.
#[derive(Clone, Copy)]
struct End {
    state: SessionState,
    traffic: Traffic,
    last_ms: u64,
}

/// A management client's verdict on a session that waits for one
/// (`management.client-auth: on`): `Err` carries the reason of a `client-deny`.
pub type ClientVerdict = Result<(), String>;

/// One session's entry.
pub(crate) struct Entry {
    pub(crate) id: SessionId,
    pub(crate) client: SocketAddr,
    /// When the session was accepted, in [`now_ms`] time.
    pub(crate) started_ms: u64,
    /// Ends this session alone (a child of the server's cut: a shutdown ends it too).
    pub(crate) cancel: CancellationToken,
    info: Mutex<Info>,
    /// Set while the session waits for a management client's verdict.
    verdict: Mutex<Option<tokio::sync::oneshot::Sender<ClientVerdict>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Entry {
    fn info(&self) -> MutexGuard<'_, Info> {
        lock(&self.info)
    }

    /// Moves the session to `phase` (for the dump).
    pub(crate) fn set(&self, phase: Phase) {
        self.info().phase = phase;
    }

    /// The method and user the negotiation settled on.
    pub(crate) fn negotiated(&self, method: AuthMethod, user: Option<&str>) {
        let mut i = self.info();
        i.method = Some(method);
        i.user = user.map(str::to_owned);
    }

    /// The request read: its command and target as requested.
    pub(crate) fn requested(&self, command: SocksCommand, target: String) {
        let mut i = self.info();
        crate::events::SessionRequested {
            before: i.command,
            command,
        }
        .emit();
        i.command = Some(command);
        i.target = Some(target);
    }

    /// The socks rule that passed the request.
    pub(crate) fn passed(&self, rule: u32) {
        self.info().rule = Some(rule);
    }

    /// The outgoing endpoints, as they become known.
    pub(crate) fn endpoints(&self, external: Option<SocketAddr>, resolved: Option<SocketAddr>) {
        let mut i = self.info();
        if external.is_some() {
            i.external = external;
        }
        if resolved.is_some() {
            i.resolved = resolved;
        }
    }

    /// Counters this session's bytes move through (a relay's, or one per external
    /// socket of a UDP association).
    pub(crate) fn add_counters(&self, counters: &Arc<Counters>) {
        self.info().counters.push(Arc::clone(counters));
    }

    /// A datagram went from `src` (`CLIENT-UDP PROXY-INTUDP`) out to `dst`
    /// (`PROXY-EXT TARGET`): the association's last destination.
    pub(crate) fn udp_sent(&self, src: Side, dst: Side, external: SocketAddr, target: SocketAddr) {
        let mut i = self.info();
        i.phase = Phase::Udp {
            src: Some(src),
            dst: Some(dst),
        };
        i.external = Some(external);
        i.resolved = Some(target);
    }

    /// A rule refused the session (or its authentication failed).
    pub(crate) fn blocked(&self) {
        self.info().blocked = true;
    }

    /// Why the session ended (the first reason given stays).
    pub(crate) fn ended(&self, reason: impl Into<String>) {
        let mut i = self.info();
        if i.reason.is_none() {
            i.reason = Some(reason.into());
        }
    }

    /// Runs `f` on the TCP state, if the session is relaying.
    pub(crate) fn with_tcp(&self, f: impl FnOnce(&mut TcpState)) {
        if let Phase::Tcp(t) = &mut self.info().phase {
            f(t);
        }
    }

    /// Whole seconds since the session was accepted, at `now` ([`now_ms`] time).
    pub(crate) fn age_secs(&self, now: u64) -> u64 {
        secs_since(self.started_ms, now)
    }

    /// When bytes last moved, in [`now_ms`] time: the accept while none has.
    fn last_ms(&self, i: &Info) -> u64 {
        if let Some(end) = &i.end {
            return end.last_ms;
        }
        i.counters
            .iter()
            .map(|c| c.last_ms.load(Ordering::Relaxed))
            .fold(self.started_ms, u64::max)
    }

    fn traffic(i: &Info) -> Traffic {
        if let Some(end) = &i.end {
            return end.traffic;
        }
        let mut t = Traffic::default();
        for c in &i.counters {
            t += c.traffic();
        }
        t
    }

    fn state(i: &Info) -> SessionState {
        if let Some(end) = &i.end {
            return end.state;
        }
        match i.phase {
            Phase::Negotiating => SessionState::Negotiating,
            Phase::Requesting(_) => SessionState::Requesting,
            Phase::Tcp(_) | Phase::Udp { .. } => SessionState::Established,
        }
    }

    /// Runs `f` on the session as it is now, borrowed (under the lock).
    fn with_view<T>(&self, f: impl FnOnce(&SessionView<'_>) -> T) -> T {
        let i = self.info();
        let state = Self::state(&i);
        let traffic = Self::traffic(&i);
        let view = SessionView {
            id: self.id,
            client: self.client,
            user: i.user.as_deref(),
            method: i.method,
            rule: i.rule,
            command: i.command,
            target: i.target.as_deref(),
            resolved: i.resolved,
            state,
            started: wall(self.started_ms),
            traffic,
            reason: if i.gone {
                Some(i.reason.as_deref().unwrap_or("closed"))
            } else {
                None
            },
        };
        f(&view)
    }

    /// The session as readers see it now.
    pub(crate) fn snapshot(&self) -> SessionSnapshot {
        let i = self.info();
        let state = Self::state(&i);
        SessionSnapshot {
            id: self.id,
            client: self.client,
            internal: i.internal,
            external: i.external,
            user: i.user.clone(),
            method: i.method,
            rule: i.rule,
            command: i.command,
            target: i.target.clone(),
            resolved: i.resolved,
            state,
            started: wall(self.started_ms),
            last_activity: wall(self.last_ms(&i)),
            traffic: Self::traffic(&i),
        }
    }

    /// What the dump needs: the phase (under the lock, so descriptors stay open while
    /// `f` runs), the proxy's internal address, the idle seconds at `now` and the
    /// traffic.
    pub(crate) fn with_phase<T>(
        &self,
        now: u64,
        f: impl FnOnce(&Phase, SocketAddr, u64, Traffic) -> T,
    ) -> T {
        let i = self.info();
        let idle = secs_since(self.last_ms(&i), now);
        f(&i.phase, i.internal, idle, Self::traffic(&i))
    }
}

/// Samples of UDP latency, in microseconds.
pub(crate) struct Latency {
    samples: VecDeque<u64>,
}

/// How many recent datagrams the latency statistics cover.
pub(crate) const LATENCY_SAMPLES: usize = 100;

impl Latency {
    const fn new() -> Self {
        Self {
            samples: VecDeque::new(),
        }
    }

    pub(crate) fn add(&mut self, d: Duration) {
        if self.samples.len() == LATENCY_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(d.as_micros() as u64);
    }

    /// `min/max/median/average/last/stddev`, or `None` without samples.
    pub(crate) fn stats(&self) -> Option<(usize, [u64; 6])> {
        let last = *self.samples.back()?;
        let mut v: Vec<u64> = self.samples.iter().copied().collect();
        v.sort_unstable();
        let n = v.len();
        let sum: u64 = v.iter().sum();
        let mean = sum as f64 / n as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        Some((
            n,
            [
                v[0],
                v[n - 1],
                v[n / 2],
                mean.round() as u64,
                last,
                var.sqrt() as u64,
            ],
        ))
    }
}

/// Events waiting for a slow subscriber before it is told how many it missed.
const EVENT_QUEUE: usize = 4096;

/// All sessions.
pub struct Registry {
    next: AtomicU64,
    sessions: Mutex<BTreeMap<SessionId, Arc<Entry>>>,
    /// Cancelling it ends every session (graceful stop's cut).
    cut: CancellationToken,
    accepted: AtomicU64,
    handed: AtomicU64,
    /// Ended sessions: how many, how many blocked, their traffic.
    ended: Mutex<(u64, u64, Traffic)>,
    /// Every subscriber gets a clone of each event (an `Arc` clone).
    events: Arc<fanout::Fanout<SessionEvent>>,
    pub(crate) read_latency: Mutex<Latency>,
    pub(crate) io_latency: Mutex<Latency>,
    pub(crate) started: Instant,
}

impl Registry {
    pub(crate) fn new(cut: CancellationToken) -> Self {
        let started = epoch().0;
        Self {
            next: AtomicU64::new(0),
            sessions: Mutex::new(BTreeMap::new()),
            cut,
            accepted: AtomicU64::new(0),
            handed: AtomicU64::new(0),
            ended: Mutex::new((0, 0, Traffic::default())),
            events: fanout::Fanout::new(EVENT_QUEUE),
            read_latency: Mutex::new(Latency::new()),
            io_latency: Mutex::new(Latency::new()),
            started,
        }
    }

    /// Registers a session accepted from `client` on `internal`; it leaves the registry
    /// when the guard drops.
    pub(crate) fn register(
        self: &Arc<Self>,
        client: SocketAddr,
        internal: SocketAddr,
    ) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(Entry {
            id,
            client,
            started_ms: now_ms(),
            cancel: self.cut.child_token(),
            info: Mutex::new(Info {
                internal,
                external: None,
                user: None,
                method: None,
                rule: None,
                command: None,
                target: None,
                resolved: None,
                counters: Vec::new(),
                phase: Phase::Negotiating,
                blocked: false,
                reason: None,
                gone: false,
                end: None,
            }),
            verdict: Mutex::new(None),
        });
        lock(&self.sessions).insert(id, Arc::clone(&entry));
        crate::events::SessionAccepted.emit();
        Registration {
            registry: Arc::clone(self),
            entry,
        }
    }

    /// The entries, oldest first.
    pub(crate) fn entries(&self) -> Vec<Arc<Entry>> {
        lock(&self.sessions).values().cloned().collect()
    }

    /// Every live session, oldest first.
    pub fn snapshot(&self) -> Vec<SessionSnapshot> {
        self.entries().iter().map(|e| e.snapshot()).collect()
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts since the start, and the traffic of ended sessions.
    pub fn totals(&self) -> Totals {
        let (ended, blocked, traffic) = *lock(&self.ended);
        Totals {
            accepted: self.accepted.load(Ordering::Relaxed),
            handed: self.handed.load(Ordering::Relaxed),
            blocked,
            ended,
            traffic,
        }
    }

    /// A session got past negotiation.
    pub(crate) fn handed(&self) {
        self.handed.fetch_add(1, Ordering::Relaxed);
    }

    /// Tells the subscribers that session `entry` asks to be let through and waits for a
    /// management client's verdict, for at most `limit`; no verdict in time is a denial.
    pub(crate) async fn await_verdict(&self, entry: &Arc<Entry>, limit: Duration) -> ClientVerdict {
        let (tx, rx) = tokio::sync::oneshot::channel();
        *lock(&entry.verdict) = Some(tx);
        self.notify(EventKind::Connect, entry);
        let verdict = tokio::select! {
            v = tokio::time::timeout(limit, rx) => match v {
                Ok(Ok(v)) => v,
                Ok(Err(_)) | Err(_) => Err("no verdict from a management client in time".into()),
            },
            () = entry.cancel.cancelled() => Err("administrative termination".into()),
        };
        lock(&entry.verdict).take();
        verdict
    }

    /// A management client's verdict on session `id` (`client-auth`, `client-deny`);
    /// false when that session is not waiting for one.
    pub fn decide(&self, id: SessionId, verdict: ClientVerdict) -> bool {
        let entry = lock(&self.sessions).get(&id).cloned();
        let waiting = entry.and_then(|e| lock(&e.verdict).take());
        waiting.is_some_and(|tx| tx.send(verdict).is_ok())
    }

    /// Ends session `id` (`administrative termination`); false when there is none.
    pub fn kill(&self, id: SessionId) -> bool {
        let entry = lock(&self.sessions).get(&id).cloned();
        entry.is_some_and(|e| {
            e.cancel.cancel();
            true
        })
    }

    /// Ends every session `pick` chooses; returns how many.
    pub fn kill_where(&self, pick: impl Fn(&SessionSnapshot) -> bool) -> usize {
        let mut n = 0;
        for e in self.entries() {
            if pick(&e.snapshot()) {
                e.cancel.cancel();
                n += 1;
            }
        }
        n
    }

    /// Session events from now on, taken in batches ([`Subscription::take`]). A
    /// subscriber that falls behind by more than [`EVENT_QUEUE`] events misses the next
    /// ones and is told how many.
    pub fn subscribe(&self) -> Subscription<SessionEvent> {
        self.events.subscribe()
    }

    /// Tells subscribers, if there are any, that `kind` happened to `entry`'s session: an
    /// `Arc` clone and a push per subscriber (without subscribers, one atomic load).
    pub(crate) fn notify(&self, kind: EventKind, entry: &Arc<Entry>) {
        self.events.send(|| SessionEvent {
            kind,
            entry: Arc::clone(entry),
        });
    }
}

/// A session's place in the registry.
pub(crate) struct Registration {
    registry: Arc<Registry>,
    pub(crate) entry: Arc<Entry>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let e = &self.entry;
        lock(&self.registry.sessions).remove(&e.id);
        let (traffic, blocked, released) = {
            let mut i = e.info();
            i.gone = true;
            let life = Duration::from_millis(now_ms().saturating_sub(e.started_ms));
            crate::events::SessionEnded {
                command: i.command,
                life,
            }
            .emit();
            let traffic = Entry::traffic(&i);
            i.end = Some(End {
                state: Entry::state(&i),
                traffic,
                last_ms: e.last_ms(&i),
            });
            let released = (
                std::mem::take(&mut i.counters),
                std::mem::replace(&mut i.phase, Phase::Negotiating),
            );
            (traffic, i.blocked, released)
        };
        // Freed here, on the session's thread, after the lock.
        drop(released);
        {
            let mut ended = lock(&self.registry.ended);
            ended.0 += 1;
            ended.1 += u64::from(blocked);
            ended.2 += traffic;
        }
        self.registry.notify(EventKind::Disconnect, e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn registry() -> Arc<Registry> {
        Arc::new(Registry::new(CancellationToken::new()))
    }

    /// The dump's age and idle, in seconds, of `e` at `now`.
    fn age_idle(e: &Entry, now: u64) -> (u64, u64) {
        e.with_phase(now, |_, _, idle, _| (e.age_secs(now), idle))
    }

    #[test]
    fn a_session_without_io_yet_is_idle_since_its_accept() {
        let r = registry();
        let reg = r.register(addr("127.0.0.1:40000"), addr("127.0.0.1:1080"));
        let e = &reg.entry;
        let counters = Arc::new(Counters::default());
        e.add_counters(&counters);
        let t0 = e.started_ms;
        assert_eq!(age_idle(e, t0 + 9_000), (9, 9));
        // Bytes move 5.5 s after the accept: idle counts from there.
        counters.last_ms.store(t0 + 5_500, Ordering::Relaxed);
        assert_eq!(age_idle(e, t0 + 9_000), (9, 3));
        for now in (t0..=t0 + 15_000).step_by(250) {
            let (age, idle) = age_idle(e, now);
            assert!(idle <= age, "at {now} ms: age {age}s, idle {idle}s");
        }
    }

    #[test]
    fn ids_count_from_zero_and_are_never_reused() {
        let r = registry();
        let a = r.register(addr("127.0.0.1:1"), addr("127.0.0.1:1080"));
        let b = r.register(addr("127.0.0.1:2"), addr("127.0.0.1:1080"));
        assert_eq!((a.entry.id, b.entry.id), (0, 1));
        drop(a);
        let c = r.register(addr("127.0.0.1:3"), addr("127.0.0.1:1080"));
        assert_eq!(c.entry.id, 2);
        let ids: Vec<SessionId> = r.snapshot().iter().map(|s| s.id).collect();
        assert_eq!(ids, [1, 2]);
    }

    #[test]
    fn snapshots_sum_every_counter_of_a_session_once() {
        let r = registry();
        let reg = r.register(addr("127.0.0.1:40000"), addr("127.0.0.1:1080"));
        let e = &reg.entry;
        e.negotiated(AuthMethod::Username, Some("alice"));
        e.requested(SocksCommand::UdpAssociate, "0.0.0.0:0".into());
        e.passed(3);
        // Two external sockets of a UDP association.
        let (v4, v6) = (Arc::new(Counters::default()), Arc::new(Counters::default()));
        e.add_counters(&v4);
        e.add_counters(&v6);
        e.set(Phase::Udp {
            src: None,
            dst: None,
        });
        v4.client_read.add(10);
        v4.target_written.add(0);
        v6.client_read.add(32);
        v6.client_written.add(54);
        let s = e.snapshot();
        assert_eq!(s.state, SessionState::Established);
        assert_eq!((s.user.as_deref(), s.rule), (Some("alice"), Some(3)));
        assert_eq!(
            s.traffic.from_client,
            Count {
                bytes: 42,
                packets: 2
            }
        );
        assert_eq!(s.traffic.to_client.bytes, 54);
        assert_eq!(s.traffic.to_target.packets, 1);
        drop(reg);
        let t = r.totals();
        assert_eq!((t.accepted, t.ended, t.blocked), (1, 1, 0));
        assert_eq!(t.traffic.from_client.bytes, 42);
        assert!(r.is_empty());
    }

    #[test]
    fn a_kill_ends_one_session_and_the_cut_ends_all() {
        let cut = CancellationToken::new();
        let r = Arc::new(Registry::new(cut.clone()));
        let a = r.register(addr("127.0.0.1:1"), addr("127.0.0.1:1080"));
        let b = r.register(addr("127.0.0.1:2"), addr("127.0.0.1:1080"));
        assert!(r.kill(a.entry.id));
        assert!(a.entry.cancel.is_cancelled() && !b.entry.cancel.is_cancelled());
        assert!(!r.kill(99));
        assert_eq!(r.kill_where(|s| s.client.port() == 2), 1);
        let c = r.register(addr("127.0.0.1:3"), addr("127.0.0.1:1080"));
        cut.cancel();
        assert!(c.entry.cancel.is_cancelled());
    }

    #[test]
    fn subscribers_hear_the_disconnect_with_its_reason_and_traffic() {
        let r = registry();
        let events = r.subscribe();
        let reg = r.register(addr("127.0.0.1:1"), addr("127.0.0.1:1080"));
        let counters = Arc::new(Counters::default());
        reg.entry.add_counters(&counters);
        counters.client_written.add(197);
        reg.entry.blocked();
        reg.entry.ended("local client closed");
        reg.entry.ended("a later reason is not kept");
        drop(reg);
        let mut got = Vec::new();
        assert_eq!(events.take(&mut got), 0);
        let [ev] = &got[..] else { panic!("{got:?}") };
        assert_eq!(ev.kind, EventKind::Disconnect);
        ev.with_session(|s| {
            assert_eq!(s.reason, Some("local client closed"));
            assert_eq!(s.traffic.to_client.bytes, 197);
        });
        assert_eq!(r.totals().blocked, 1);
    }

    #[tokio::test]
    async fn a_waiting_session_gets_the_verdict_or_a_denial_in_time() {
        let r = registry();
        let a = r.register(addr("127.0.0.1:1"), addr("127.0.0.1:1080"));
        let events = r.subscribe();
        assert!(!r.decide(a.entry.id, Ok(())), "not waiting yet");
        let waiting = r.await_verdict(&a.entry, Duration::from_secs(5));
        let decide = async {
            events.ready().await;
            let mut got = Vec::new();
            events.take(&mut got);
            let [ev] = &got[..] else { panic!("{got:?}") };
            assert_eq!(ev.kind, EventKind::Connect, "{ev:?}");
            let id = ev.id();
            assert!(r.decide(id, Err("not today".into())));
        };
        let (verdict, ()) = tokio::join!(waiting, decide);
        assert_eq!(verdict, Err("not today".to_string()));
        let timed_out = r.await_verdict(&a.entry, Duration::from_millis(10)).await;
        assert!(timed_out.unwrap_err().contains("no verdict"));
    }

    #[test]
    fn latency_statistics_as_dante_prints_them() {
        let mut l = Latency::new();
        assert!(l.stats().is_none());
        for us in [15, 412, 26, 21] {
            l.add(Duration::from_micros(us));
        }
        // Dante's sample line: 15/412/26/119/21/169.
        assert_eq!(l.stats(), Some((4, [15, 412, 26, 119, 21, 169])));
    }
}
