//! Sinks: a buffer the logging threads append formatted lines to, and one writer
//! thread each.
//!
//! A logging thread appends a line under the sink's lock (a copy into a reused buffer:
//! no allocation, no system call) and wakes the writer only when it sleeps with nothing
//! to do. The writer pauses briefly so that a burst gathers, swaps the buffer for its
//! own empty one and writes the batch with one write(2), outside the lock: a sink that
//! blocks (a FIFO nobody reads, a hung NFS mount) never holds up a logging thread.
//! When [`SINK_QUEUE`] lines wait, further lines for that sink are dropped *and
//! counted*: the first drop returns a stall report, the first line taken again returns
//! the count, and the caller puts both on the other sinks. No line is lost silently.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use std::time::SystemTime;

use crate::backend::{describe, LineMeta};
use crate::writer::{Failure, Writer};
use crate::{Level, Opener, SinkSpec, Subsystem};

/// Lines a sink may have waiting before further lines for it are dropped (and counted).
pub(crate) const SINK_QUEUE: usize = 16 * 1024;
/// How long a writer waits for more lines after being woken: bounds its wake-ups to
/// about 2000 a second under load, at the cost of this much latency.
const BATCH_PAUSE: Duration = Duration::from_millis(5);
/// Lines waiting that end a writer's pause at once (a burst faster than the pause).
const HIGH_WATER: usize = SINK_QUEUE / 4;
/// A writer keeps at most this much buffer capacity between bursts.
const KEEP_CAPACITY: usize = 1 << 20;

/// What a writer thread calls with a failure or recovery of its sink; `true` when the
/// sink has been closed (a reload) and the report is its last word.
pub(crate) type Reporter = Box<dyn Fn(&Arc<Sink>, String, bool) + Send>;

/// One sink, shared by the logging threads and its writer.
pub(crate) struct Sink {
    pub(crate) spec: SinkSpec,
    state: Mutex<State>,
    /// The writer waits here for lines.
    wake: Condvar,
    /// Flushes wait here for the writer.
    written: Condvar,
    /// The last write succeeded.
    writes_ok: AtomicBool,
    /// The writer's failure in progress, for the sink that replaces this one.
    failure: Mutex<Option<Failure>>,
    /// The writer thread runs (false if it could not start, or ended).
    alive: AtomicBool,
    /// Lines dropped and stalls, for the metrics (`stats`).
    counts: Arc<crate::stats::SinkCounts>,
}

#[derive(Default)]
struct State {
    /// Lines waiting, back to back, and where each ends.
    buf: Vec<u8>,
    meta: Vec<LineMeta>,
    /// Lines ever appended, and ever handed to the target (written or counted lost).
    appended: u64,
    written: u64,
    /// Lines dropped since the sink stalled.
    dropped: u64,
    stalled: bool,
    /// The writer sleeps until woken.
    idle: bool,
    /// The writer lets a burst gather: wake it only at [`HIGH_WATER`].
    pausing: bool,
    /// A flush waits: write without pausing.
    urgent: bool,
    /// Reopen the target after the line with this sequence number (`appended` when
    /// asked): earlier lines go to the old file, later ones to the new.
    reopen_after: Option<u64>,
    /// The backend has reports of its own (its waker was called).
    poll: bool,
    closing: bool,
}

/// The routing's owning handle on a sink: dropping it closes the sink (its writer
/// writes what is left and ends).
pub(crate) struct SinkHandle(Arc<Sink>);

impl Deref for SinkHandle {
    type Target = Arc<Sink>;

    fn deref(&self) -> &Arc<Sink> {
        &self.0
    }
}

impl Drop for SinkHandle {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Sink {
    /// Opens the target now (the process may drop privileges next) and starts the writer.
    pub(crate) fn open(
        spec: SinkSpec,
        index: usize,
        report: Reporter,
        opener: &Opener,
        inherited: Option<Failure>,
    ) -> SinkHandle {
        let counts = crate::stats::sink(describe(&spec.target));
        let sink = Arc::new(Self {
            counts,
            spec,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            written: Condvar::new(),
            writes_ok: AtomicBool::new(inherited.is_none()),
            failure: Mutex::new(inherited.clone()),
            alive: AtomicBool::new(true),
        });
        let weak = Arc::downgrade(&sink);
        let waker: crate::backend::Waker = Arc::new(move || {
            if let Some(s) = weak.upgrade() {
                s.lock().poll = true;
                s.wake.notify_one();
            }
        });
        let writer = Writer::new(
            &sink.spec.target,
            opener,
            inherited,
            waker,
            Arc::clone(&sink.counts),
        );
        let mine = Arc::clone(&sink);
        let spawned = std::thread::Builder::new()
            .name(format!("log-sink-{index}"))
            .spawn(move || {
                // Marked dead however the writer ends (closed, or a panic).
                struct Alive<'a>(&'a Sink);
                impl Drop for Alive<'_> {
                    fn drop(&mut self) {
                        self.0.alive.store(false, Ordering::Relaxed);
                    }
                }
                let _alive = Alive(&mine);
                write_loop(&mine, writer, &report);
            });
        if let Err(e) = spawned {
            sink.alive.store(false, Ordering::Relaxed);
            // Its lines will be counted as dropped and reported on the other sinks.
            eprintln!("ferrosocks: cannot start a log sink thread: {e}");
        }
        SinkHandle(sink)
    }

    /// Asks the writer to write what is left, close the target and end.
    pub(crate) fn close(&self) {
        self.lock().closing = true;
        self.wake.notify_one();
    }

    /// Waits until the writer has ended, for at most `limit`.
    pub(crate) fn wait_closed(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.writer_alive() && Instant::now() < deadline {
            #[allow(clippy::disallowed_methods)] // at exit, off the async workers
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How reports name this sink.
    pub(crate) fn name(&self) -> String {
        describe(&self.spec.target)
    }

    /// The failure in progress (first error, lines lost), if the last write failed.
    pub(crate) fn failure(&self) -> Option<Failure> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether its writer thread runs.
    pub(crate) fn writer_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Whether the sink writes and takes lines.
    pub(crate) fn healthy(&self) -> bool {
        self.writes_ok.load(Ordering::Relaxed) && !self.lock().stalled
    }

    /// Lines waiting to be written.
    pub(crate) fn pending(&self) -> usize {
        self.lock().meta.len()
    }

    /// Queues one line (ending in a newline) logged at `time`; returns a report when the
    /// sink stalls or takes lines again.
    pub(crate) fn append(
        &self,
        line: &[u8],
        prefix_len: usize,
        level: Level,
        subsystem: Subsystem,
        time: SystemTime,
    ) -> Option<String> {
        self.append_with(level, subsystem, time, |buf| {
            buf.extend_from_slice(line);
            prefix_len
        })
    }

    /// Queues the line `write` appends (ending in a newline) straight into the buffer
    /// waiting for the writer, under the sink's lock: no copy of the line. `write`
    /// returns the length of the line's prefix. Returns what [`Sink::append`] does.
    pub(crate) fn append_with(
        &self,
        level: Level,
        subsystem: Subsystem,
        time: SystemTime,
        write: impl FnOnce(&mut Vec<u8>) -> usize,
    ) -> Option<String> {
        let mut st = self.lock();
        if st.meta.len() >= SINK_QUEUE {
            st.dropped += 1;
            let first = !std::mem::replace(&mut st.stalled, true);
            drop(st);
            self.counts.dropped(first);
            return first.then(|| {
                format!("{} is stalled ({SINK_QUEUE} lines waiting): lines for it are dropped and counted until it catches up", self.name())
            });
        }
        let start = st.buf.len();
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(&mut st.buf)));
        let prefix_len = match written {
            Ok(n) => n,
            Err(panic) => {
                // No part of a line that failed to format stays for the writer.
                st.buf.truncate(start);
                drop(st);
                std::panic::resume_unwind(panic);
            }
        };
        let end = st.buf.len();
        st.meta.push(LineMeta {
            end,
            prefix_len,
            level,
            subsystem,
            time,
        });
        st.appended += 1;
        let wake = std::mem::take(&mut st.idle)
            || (st.pausing && st.meta.len() >= HIGH_WATER && std::mem::take(&mut st.pausing));
        let resumed = st.stalled.then(|| {
            st.stalled = false;
            std::mem::take(&mut st.dropped)
        });
        drop(st);
        if wake {
            self.wake.notify_one();
        }
        resumed.map(|n| {
            format!(
                "{} takes lines again; {n} line(s) were dropped for it while it was stalled",
                self.name()
            )
        })
    }

    /// Closes and reopens the target once the lines queued so far are written.
    pub(crate) fn reopen(&self) {
        let mut st = self.lock();
        st.reopen_after = Some(st.appended);
        st.idle = false;
        drop(st);
        self.wake.notify_one();
    }

    /// Waits until the lines queued so far are written, for at most `limit`.
    pub(crate) fn flush(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut st = self.lock();
        let target = st.appended;
        if st.written >= target {
            return;
        }
        st.urgent = true;
        st.idle = false;
        st.pausing = false;
        self.wake.notify_one();
        while st.written < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            st = self
                .written
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The writer thread: waits for lines, takes them all, writes them outside the lock.
fn write_loop(sink: &Arc<Sink>, mut writer: Writer, report: &Reporter) {
    let mut buf: Vec<u8> = Vec::new();
    let mut meta: Vec<LineMeta> = Vec::new();
    loop {
        let mut st = sink.lock();
        while st.meta.is_empty()
            && st.reopen_after.is_none()
            && !st.closing
            && !st.urgent
            && !st.poll
        {
            st.idle = true;
            st = sink.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        st.idle = false;
        if !st.urgent && !st.closing && !st.poll && st.reopen_after.is_none() {
            // Lines come in bursts: let this one gather, so that its logging threads
            // need not wake this thread again (unless it grows large or a flush waits).
            st.pausing = true;
            st = sink
                .wake
                .wait_timeout_while(st, BATCH_PAUSE, |s| s.pausing && !s.closing)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            st.pausing = false;
        }
        st.urgent = false;
        std::mem::swap(&mut st.buf, &mut buf);
        std::mem::swap(&mut st.meta, &mut meta);
        let first = st.written;
        let reopen_after = st.reopen_after.take();
        let poll = std::mem::take(&mut st.poll);
        let closing = st.closing;
        drop(st);

        // Lines up to the reopen request go to the old file, the rest to the new one.
        let split = reopen_after.map_or(meta.len(), |after| {
            (after.saturating_sub(first) as usize).min(meta.len())
        });
        let (old, new) = meta.split_at(split);
        let mut reports = writer.write_batch(&buf, 0, old);
        if reopen_after.is_some() {
            writer.reopen();
            let start = old.last().map_or(0, |m| m.end);
            reports.extend(writer.write_batch(&buf, start, new));
        }
        if poll {
            reports.extend(writer.poll());
        }
        let healthy = writer.healthy();
        if healthy != sink.writes_ok.swap(healthy, Ordering::Relaxed) || !healthy {
            *sink.failure.lock().unwrap_or_else(PoisonError::into_inner) = writer.failure();
        }
        for r in reports {
            report(sink, r, false);
        }

        let n = meta.len() as u64;
        buf.clear();
        meta.clear();
        if buf.capacity() > KEEP_CAPACITY {
            buf = Vec::new();
            meta = Vec::new();
        }
        let mut st = sink.lock();
        st.written = first + n;
        let done = closing && st.meta.is_empty();
        let dropped = if done {
            std::mem::take(&mut st.dropped)
        } else {
            0
        };
        drop(st);
        sink.written.notify_all();
        if done {
            if dropped > 0 {
                let text = format!(
                    "{} closed while stalled; {dropped} line(s) were dropped for it",
                    sink.name()
                );
                report(sink, text, true);
            }
            return;
        }
    }
}
