//! What the metrics endpoint reads from logging: records logged by subsystem and level,
//! and per sink the lines dropped while it was stalled and how often it stalled. Plain
//! atomics, counted where the routing and the sinks already decide (no lock added to
//! the logging path); a sink's counts are kept by its name across reloads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::{Level, Subsystem};

const LEVELS: usize = Level::ALL.len();
const SUBSYSTEMS: usize = Subsystem::ALL.len();

static RECORDS: [[AtomicU64; LEVELS]; SUBSYSTEMS] =
    [const { [const { AtomicU64::new(0) }; LEVELS] }; SUBSYSTEMS];

/// One sink's counts.
#[derive(Debug, Default)]
pub(crate) struct SinkCounts {
    dropped: AtomicU64,
    stalls: AtomicU64,
    failures: AtomicU64,
    lost: AtomicU64,
}

impl SinkCounts {
    /// A line dropped; `first` when it starts a stall.
    pub(crate) fn dropped(&self, first: bool) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if first {
            self.stalls.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes failed: `started` when they start failing (a failure), `lines` not written.
    pub(crate) fn failed(&self, started: bool, lines: u64) {
        if started {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.lost.fetch_add(lines, Ordering::Relaxed);
    }
}

static SINKS: Mutex<BTreeMap<String, Arc<SinkCounts>>> = Mutex::new(BTreeMap::new());

/// The counts of the sink named `name` (shared with an earlier sink of that name).
pub(crate) fn sink(name: String) -> Arc<SinkCounts> {
    let mut sinks = SINKS.lock().unwrap_or_else(PoisonError::into_inner);
    Arc::clone(sinks.entry(name).or_default())
}

/// A record was logged (it passed its threshold and `mute`).
pub(crate) fn record(sub: Subsystem, level: Level) {
    if let Some(row) = RECORDS.get(sub.index()) {
        row[level as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Records logged so far, by subsystem and level (only those with any).
pub fn records() -> Vec<(Subsystem, Level, u64)> {
    let mut out = Vec::new();
    for sub in Subsystem::ALL {
        for level in Level::ALL {
            let n = RECORDS[sub.index()][level as usize].load(Ordering::Relaxed);
            if n > 0 {
                out.push((sub, level, n));
            }
        }
    }
    out
}

/// A sink's counts: its name, lines dropped while stalled, stalls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStats {
    /// How reports name the sink (`file /var/log/x`, `stderr`, …).
    pub name: String,
    /// Lines dropped for it while it was stalled.
    pub dropped: u64,
    /// Times it stalled.
    pub stalls: u64,
    /// Times its writes started failing (a disk full, a socket gone, …).
    pub failures: u64,
    /// Lines that could not be written to it.
    pub lost: u64,
}

/// Every sink's counts since the start.
pub fn sinks() -> Vec<SinkStats> {
    let sinks = SINKS.lock().unwrap_or_else(PoisonError::into_inner);
    sinks
        .iter()
        .map(|(name, c)| SinkStats {
            name: name.clone(),
            dropped: c.dropped.load(Ordering::Relaxed),
            stalls: c.stalls.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
        })
        .collect()
}
