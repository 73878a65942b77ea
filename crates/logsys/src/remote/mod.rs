//! `syslog.remote`: RFC 5424 records to a remote receiver, off the logging path.
//!
//! The sink's writer encodes each line (`backend/remote.rs`) and hands it to a
//! `Remote`: a bounded queue (`queue`) and a thread of its own that delivers it
//! (`sender`): octet-counted frames over TCP (RFC 6587) or TLS (RFC 5425), or one
//! datagram per message over UDP (RFC 5426), reconnecting with back-off, in order.
//! One `Remote` per receiver per process: a reload that keeps the receiver keeps its
//! queue and connection.

pub(crate) mod queue;
mod sender;
mod tls;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};

use queue::{Bounds, Queue};

/// How records travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RFC 6587 octet counting over TCP.
    Tcp,
    /// RFC 5425 over TLS.
    Tls,
    /// RFC 5426 over UDP.
    Udp,
}

/// A remote receiver and how records are made for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteTarget {
    /// An IP address or a name.
    pub host: String,
    pub port: u16,
    pub protocol: Protocol,
    /// PEM file of CAs for TLS.
    pub ca: Option<PathBuf>,
    /// Where the queue spills (`syslog-queue/` under the log directory); `None`: memory
    /// only.
    pub queue_dir: Option<PathBuf>,
    /// The facility of each subsystem's records, by [`crate::Subsystem::index`].
    pub facilities: Vec<u8>,
}

/// Messages kept in memory (bytes) before the queue spills to disk.
pub(crate) const MEMORY_QUEUE: usize = 8 << 20;
/// Bytes kept on disk before the oldest are dropped.
pub(crate) const DISK_QUEUE: u64 = 256 << 20;

pub(crate) struct Shared {
    pub(crate) queue: Mutex<Queue>,
    /// The sender waits here for messages.
    pub(crate) wake: Condvar,
    pub(crate) stop: Mutex<bool>,
    /// Reports for the error log.
    pub(crate) notes: Mutex<Vec<String>>,
    /// Wakes the sink's writer to take them.
    pub(crate) waker: Mutex<Option<crate::backend::Waker>>,
}

impl Shared {
    /// A report for the error log, taken by the sink at once.
    pub(crate) fn note(&self, text: String) {
        lock(&self.notes).push(text);
        let w = lock(&self.waker).clone();
        if let Some(w) = w {
            w();
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A receiver's queue and sender, shared by the sinks that write to it.
pub(crate) struct Remote {
    pub(crate) shared: Arc<Shared>,
    sender: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Remote {
    /// The writer to wake with reports.
    pub(crate) fn set_waker(&self, w: crate::backend::Waker) {
        *lock(&self.shared.waker) = Some(w.clone());
        // A report made before there was a writer to wake.
        if !lock(&self.shared.notes).is_empty() {
            w();
        }
    }

    /// Queues one message (RFC 5424, unframed).
    pub(crate) fn push(&self, msg: Vec<u8>) {
        lock(&self.shared.queue).push(msg);
        self.shared.wake.notify_one();
    }

    /// What to report: drops, disk trouble, connection failures and recoveries.
    pub(crate) fn take_notes(&self) -> Vec<String> {
        let mut notes = std::mem::take(&mut *lock(&self.shared.notes));
        let mut q = lock(&self.shared.queue);
        if q.dropped > 0 {
            notes.push(format!(
                "syslog.remote queue full: {} oldest record(s) dropped ({} waiting)",
                std::mem::take(&mut q.dropped),
                q.len()
            ));
        }
        if let Some(e) = q.disk_error.take() {
            notes.push(format!(
                "syslog.remote disk queue: {e}; records wait in memory"
            ));
        }
        notes
    }
}

impl Drop for Remote {
    /// Stops the sender: it delivers what it can for a moment, then what is left goes
    /// to the disk queue.
    fn drop(&mut self) {
        *lock(&self.shared.stop) = true;
        {
            // Under the queue's lock: a sender between its check of `stop` and its
            // wait cannot miss this.
            let _q = lock(&self.shared.queue);
            self.shared.wake.notify_all();
        }
        if let Some(h) = lock(&self.sender).take() {
            let _ = h.join();
        }
        let lost = lock(&self.shared.queue).persist();
        if lost > 0 {
            eprintln!("ferrosocks: syslog.remote: {lost} record(s) could not be delivered before the stop and there is no disk queue (set logdir)");
        }
    }
}

type Registry = Mutex<HashMap<RemoteTarget, Weak<Remote>>>;

fn registry() -> &'static Registry {
    static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// The process's queue and sender for `target`, started if none runs.
pub(crate) fn shared(target: &RemoteTarget) -> Arc<Remote> {
    let mut reg = lock(registry());
    reg.retain(|_, w| w.strong_count() > 0);
    if let Some(r) = reg.get(target).and_then(Weak::upgrade) {
        return r;
    }
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::new(
            Bounds {
                memory: MEMORY_QUEUE,
                disk: DISK_QUEUE,
            },
            target.queue_dir.as_deref(),
        )),
        wake: Condvar::new(),
        stop: Mutex::new(false),
        notes: Mutex::new(Vec::new()),
        waker: Mutex::new(None),
    });
    let handle = sender::start(target.clone(), Arc::clone(&shared));
    let r = Arc::new(Remote {
        shared,
        sender: Mutex::new(handle),
    });
    reg.insert(target.clone(), Arc::downgrade(&r));
    r
}
