//! The sessions registry: every session, what it is doing and its counters, for the
//! SIGUSR1 status dump (and, later, the status file, the management interface and the
//! metrics, which read the same registry).
//!
//! A session registers when it is accepted and updates its entry as it moves from
//! negotiation to request to relay; the entry goes away when the session ends. The
//! descriptors an entry names are cleared before the session closes its sockets, and the
//! dump reads them under the same lock, so it never asks the kernel about a descriptor
//! that was closed (and reused).
//!
//! Times are milliseconds on one clock ([`now_ms`]): when a session was accepted and when
//! its bytes last moved. A session's activity time starts at its accept, so its idle time
//! never exceeds its age, and both are read at the same `now`.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use traffic_log::Side;

use crate::relay::Counters;

/// The registry clock's zero: the first registry's creation (the server's start), or the
/// first reading if that comes earlier.
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since [`EPOCH`]: the registry's clock, also used by the relays and the
/// UDP associations to say when bytes last moved.
pub(crate) fn now_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Whole seconds from `then` to `now`, both in [`now_ms`] time; 0 when `then` is later
/// (a session registered, or bytes moved, after `now` was read).
pub(crate) fn secs_since(then: u64, now: u64) -> u64 {
    now.saturating_sub(then) / 1000
}

/// What a session is doing.
pub(crate) enum Phase {
    /// Reading the handshake: `CLIENT PROXY-INT`.
    Negotiating(Side),
    /// Working on a request: the client's address and what (`tcp connect-request`).
    Requesting(String, &'static str),
    /// Relaying TCP.
    Tcp(TcpState),
    /// A UDP association.
    Udp(UdpState),
}

impl Phase {
    /// When bytes last moved, in [`now_ms`] time, for the phases that move them.
    pub(crate) fn last_activity_ms(&self) -> Option<u64> {
        match self {
            Self::Tcp(t) => Some(t.counters.last_ms.load(Ordering::Relaxed)),
            Self::Udp(u) => Some(u.last_ms),
            Self::Negotiating(_) | Self::Requesting(..) => None,
        }
    }
}

pub(crate) struct TcpState {
    pub(crate) src: Side,
    pub(crate) dst: Side,
    pub(crate) counters: Arc<Counters>,
    /// Client and target descriptors while both sockets are open.
    pub(crate) fds: Option<(RawFd, RawFd)>,
    /// Whether `log: tcpinfo` asks for TCP_INFO in the dump too.
    pub(crate) tcpinfo: bool,
}

#[derive(Clone, Default)]
pub(crate) struct UdpState {
    pub(crate) src: Option<Side>,
    pub(crate) dst: Option<Side>,
    pub(crate) to_target: (u64, u64),
    pub(crate) to_client: (u64, u64),
    pub(crate) last_ms: u64,
}

pub(crate) struct Entry {
    /// When the session was accepted, in [`now_ms`] time.
    pub(crate) started_ms: u64,
    pub(crate) phase: Mutex<Phase>,
}

impl Entry {
    fn new(started_ms: u64, phase: Phase) -> Self {
        Self {
            started_ms,
            phase: Mutex::new(phase),
        }
    }

    /// Moves the session to `phase`. A phase that moves bytes enters with its activity
    /// time no earlier than the session's accept: a relay's counters are made before any
    /// byte moves, at 0 (the clock's epoch), which would show a session that has not
    /// moved a byte yet as idle since the server started.
    pub(crate) fn set(&self, mut phase: Phase) {
        match &mut phase {
            Phase::Tcp(t) => {
                t.counters
                    .last_ms
                    .fetch_max(self.started_ms, Ordering::Relaxed);
            }
            Phase::Udp(u) => u.last_ms = u.last_ms.max(self.started_ms),
            Phase::Negotiating(_) | Phase::Requesting(..) => {}
        }
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase;
    }

    /// Whole seconds since the session was accepted, at `now` ([`now_ms`] time).
    pub(crate) fn age_secs(&self, now: u64) -> u64 {
        secs_since(self.started_ms, now)
    }

    /// Runs `f` on the TCP state, if the session is relaying.
    pub(crate) fn with_tcp(&self, f: impl FnOnce(&mut TcpState)) {
        if let Phase::Tcp(t) = &mut *self.phase.lock().unwrap_or_else(|p| p.into_inner()) {
            f(t);
        }
    }

    /// Runs `f` on the UDP state, if the session is an association.
    pub(crate) fn with_udp(&self, f: impl FnOnce(&mut UdpState)) {
        if let Phase::Udp(u) = &mut *self.phase.lock().unwrap_or_else(|p| p.into_inner()) {
            f(u);
        }
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

/// All sessions.
pub(crate) struct Registry {
    next: AtomicU64,
    sessions: Mutex<BTreeMap<u64, Arc<Entry>>>,
    /// Sessions that got past negotiation (Dante's "handed").
    pub(crate) handed: AtomicU64,
    pub(crate) read_latency: Mutex<Latency>,
    pub(crate) io_latency: Mutex<Latency>,
    pub(crate) started: Instant,
}

impl Registry {
    pub(crate) fn new() -> Self {
        let started = Instant::now();
        EPOCH.get_or_init(|| started);
        Self {
            next: AtomicU64::new(1),
            sessions: Mutex::new(BTreeMap::new()),
            handed: AtomicU64::new(0),
            read_latency: Mutex::new(Latency::new()),
            io_latency: Mutex::new(Latency::new()),
            started,
        }
    }

    /// Registers a session; it leaves the registry when the guard drops.
    pub(crate) fn register(self: &Arc<Self>, phase: Phase) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(Entry::new(now_ms(), phase));
        self.lock().insert(id, Arc::clone(&entry));
        Registration {
            registry: Arc::clone(self),
            id,
            entry,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Entry>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A snapshot of the entries, oldest first.
    pub(crate) fn entries(&self) -> Vec<Arc<Entry>> {
        self.lock().values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A session's place in the registry.
pub(crate) struct Registration {
    registry: Arc<Registry>,
    id: u64,
    pub(crate) entry: Arc<Entry>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCP relay state whose counters are fresh, as a session makes them.
    fn tcp(counters: &Arc<Counters>) -> Phase {
        Phase::Tcp(TcpState {
            src: Side(Vec::new()),
            dst: Side(Vec::new()),
            counters: Arc::clone(counters),
            fds: None,
            tcpinfo: false,
        })
    }

    /// The dump's age and idle, in seconds, of `e` at `now`.
    fn age_idle(e: &Entry, now: u64) -> (u64, u64) {
        let phase = e.phase.lock().unwrap();
        let last = phase.last_activity_ms().expect("a phase that moves bytes");
        (e.age_secs(now), secs_since(last, now))
    }

    #[test]
    fn a_relay_without_io_yet_is_idle_since_its_accept() {
        // Accepted 60 s after the clock's epoch, relaying, no byte moved, dumped at
        // 69 s: age 9 s, and idle 9 s too (not 69 s, the time since the epoch).
        let e = Entry::new(60_000, Phase::Negotiating(Side(Vec::new())));
        let counters = Arc::new(Counters::default());
        e.set(tcp(&counters));
        assert_eq!(age_idle(&e, 69_000), (9, 9));
        // Bytes move at 65.5 s: idle counts from there.
        counters.last_ms.store(65_500, Ordering::Relaxed);
        assert_eq!(age_idle(&e, 69_000), (9, 3));
        for now in (60_000..=75_000).step_by(250) {
            let (age, idle) = age_idle(&e, now);
            assert!(idle <= age, "at {now} ms: age {age}s, idle {idle}s");
        }
    }

    #[test]
    fn an_association_is_never_idle_longer_than_its_age() {
        let e = Entry::new(60_000, Phase::Negotiating(Side(Vec::new())));
        e.set(Phase::Udp(UdpState::default()));
        assert_eq!(age_idle(&e, 64_000), (4, 4));
        e.with_udp(|u| u.last_ms = 63_000);
        assert_eq!(age_idle(&e, 64_000), (4, 1));
    }

    #[test]
    fn registered_sessions_start_on_the_registry_clock() {
        let r = Arc::new(Registry::new());
        let before = now_ms();
        let reg = r.register(Phase::Negotiating(Side(Vec::new())));
        let counters = Arc::new(Counters::default());
        reg.entry.set(tcp(&counters));
        let now = now_ms();
        assert!((before..=now).contains(&reg.entry.started_ms));
        let (age, idle) = age_idle(&reg.entry, now + 5_000);
        assert!(idle <= age, "age {age}s, idle {idle}s");
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
