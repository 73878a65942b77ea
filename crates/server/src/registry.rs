//! The sessions registry: every session, what it is doing and its counters, for the
//! SIGUSR1 status dump (and, later, the status file, the management interface and the
//! metrics, which read the same registry).
//!
//! A session registers when it is accepted and updates its entry as it moves from
//! negotiation to request to relay; the entry goes away when the session ends. The
//! descriptors an entry names are cleared before the session closes its sockets, and the
//! dump reads them under the same lock, so it never asks the kernel about a descriptor
//! that was closed (and reused).

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use traffic_log::Side;

use crate::relay::Counters;

/// Milliseconds since the process started: the registry's clock.
pub(crate) fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
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
    pub(crate) started: Instant,
    pub(crate) phase: Mutex<Phase>,
}

impl Entry {
    pub(crate) fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase;
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
        Self {
            next: AtomicU64::new(1),
            sessions: Mutex::new(BTreeMap::new()),
            handed: AtomicU64::new(0),
            read_latency: Mutex::new(Latency::new()),
            io_latency: Mutex::new(Latency::new()),
            started: Instant::now(),
        }
    }

    /// Registers a session; it leaves the registry when the guard drops.
    pub(crate) fn register(self: &Arc<Self>, phase: Phase) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(Entry {
            started: Instant::now(),
            phase: Mutex::new(phase),
        });
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
