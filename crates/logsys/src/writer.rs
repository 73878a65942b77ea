//! A sink's writer: its backend, and the failure accounting every backend shares.
//!
//! The backend says how each of its writes went ([`Tally`]); the writer turns that into
//! at most one report when writes start failing (the first error), one when they work
//! again (with the count of lines lost meanwhile), and carries a failure across a reload
//! so that it stays one failure, reported once.

use crate::backend::{self, Backend, LineMeta, Lines, Tally, Waker};
use crate::stats::SinkCounts;
use crate::{Opener, Target};
use std::sync::Arc;

/// A sink's failure in progress: its first error and the lines it could not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) error: String,
    pub(crate) lost: u64,
}

/// Writes batches of lines to one backend.
pub(crate) struct Writer {
    backend: Box<dyn Backend>,
    /// How reports name the backend (its description does not change; kept so that a
    /// batch does not format it).
    name: String,
    /// Set while failing: the first error, reported once.
    failing: Option<String>,
    lost: u64,
    /// The sink's counts for metrics (failures, lines not written).
    counts: Arc<SinkCounts>,
}

impl Writer {
    /// A writer for `target`; `inherited` is the failure (first error, lines lost) of the
    /// sink it replaces after a reload, so that a failure goes on being one failure,
    /// reported once, and its recovery counts every line it cost.
    pub(crate) fn new(
        target: &Target,
        opener: &Opener,
        inherited: Option<Failure>,
        waker: Waker,
        counts: Arc<SinkCounts>,
    ) -> Self {
        let (failing, lost) = inherited.map_or((None, 0), |f| (Some(f.error), f.lost));
        let backend = backend::open(target, opener, waker);
        Self {
            name: backend.describe(),
            backend,
            failing,
            lost,
            counts,
        }
    }

    pub(crate) fn healthy(&self) -> bool {
        self.failing.is_none()
    }

    /// The failure in progress, if any.
    pub(crate) fn failure(&self) -> Option<Failure> {
        self.failing.as_ref().map(|error| Failure {
            error: error.clone(),
            lost: self.lost,
        })
    }

    pub(crate) fn reopen(&mut self) {
        self.backend.reopen();
    }

    /// The backend's own reports (its waker was called).
    pub(crate) fn poll(&mut self) -> Vec<String> {
        let mut counter = Counter {
            name: &self.name,
            failing: self.failing.take(),
            lost: self.lost,
            reports: Vec::new(),
            failures: 0,
            lines_failed: 0,
        };
        self.backend.poll(&mut counter);
        self.failing = counter.failing;
        self.lost = counter.lost;
        if counter.lines_failed > 0 {
            self.counts
                .failed(counter.failures > 0, counter.lines_failed);
        }
        counter.reports
    }

    /// Writes whole lines from `batch`: the first starts at `start`, `meta` says where
    /// each ends. Returns what to report.
    pub(crate) fn write_batch(
        &mut self,
        batch: &[u8],
        start: usize,
        meta: &[LineMeta],
    ) -> Vec<String> {
        if meta.is_empty() {
            return Vec::new();
        }
        let mut counter = Counter {
            name: &self.name,
            failing: self.failing.take(),
            lost: self.lost,
            reports: Vec::new(),
            failures: 0,
            lines_failed: 0,
        };
        self.backend
            .write(Lines::new(batch, start, meta), &mut counter);
        self.failing = counter.failing;
        self.lost = counter.lost;
        if counter.lines_failed > 0 {
            self.counts
                .failed(counter.failures > 0, counter.lines_failed);
        }
        counter.reports
    }
}

/// The [`Tally`] of one batch.
struct Counter<'a> {
    name: &'a str,
    failing: Option<String>,
    lost: u64,
    reports: Vec<String>,
    /// Failures that started in this batch, and lines it could not write (for metrics).
    failures: u64,
    lines_failed: u64,
}

impl Tally for Counter<'_> {
    fn wrote(&mut self, lines: u64, result: std::io::Result<()>) {
        match (result, self.failing.take()) {
            (Ok(()), None) => {}
            (Ok(()), Some(err)) => {
                let lost = std::mem::take(&mut self.lost);
                self.reports.push(format!(
                    "{} works again after failing ({err}); {lost} line(s) could not be written to it meanwhile",
                    self.name
                ));
            }
            (Err(e), was) => {
                self.lost += lines;
                self.lines_failed += lines;
                if was.is_none() {
                    self.failures += 1;
                    self.reports.push(format!(
                        "cannot write to {}: {e}; will retry with each line",
                        self.name
                    ));
                }
                self.failing = Some(was.unwrap_or_else(|| e.to_string()));
            }
        }
    }

    fn note(&mut self, text: String) {
        self.reports.push(text);
    }
}
