//! Backends: the one interface every sink writes through.
//!
//! A sink's writer thread hands its backend a batch of whole lines ([`Lines`]); the
//! backend writes them its own way (one write(2) for a file, a datagram per line for
//! syslog, rotation for a log directory, frames for a remote receiver) and tells a
//! [`Tally`] how each write went, so that failures, recoveries and lost lines are
//! counted and reported the same way for all (`writer.rs`). [`open`] is the one place
//! that turns a [`Target`] into its backend.

mod file;
mod logdir;
mod remote;

pub use file::open_append;
mod stdio;
mod syslog;

use std::time::SystemTime;

use crate::{Level, Opener, Subsystem, Target};

/// Where one line of a batch ends, and what backends other than files need to know
/// about it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineMeta {
    /// Offset just past the line's newline in the batch.
    pub(crate) end: usize,
    /// Length of the Dante prefix at the start of the line (syslog drops part of it).
    pub(crate) prefix_len: usize,
    pub(crate) level: Level,
    pub(crate) subsystem: Subsystem,
    /// When it was logged.
    pub(crate) time: SystemTime,
}

/// A run of whole lines of a batch.
#[derive(Clone, Copy)]
pub(crate) struct Lines<'a> {
    batch: &'a [u8],
    start: usize,
    meta: &'a [LineMeta],
}

impl<'a> Lines<'a> {
    /// The lines of `batch` from `start` that `meta` describes.
    pub(crate) fn new(batch: &'a [u8], start: usize, meta: &'a [LineMeta]) -> Self {
        Self { batch, start, meta }
    }

    /// How many.
    pub(crate) fn len(&self) -> usize {
        self.meta.len()
    }

    /// All their bytes, back to back.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        let end = self.meta.last().map_or(self.start, |m| m.end);
        &self.batch[self.start..end]
    }

    /// Each line (with its newline) and what is known about it.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a LineMeta)> + 'a {
        let batch = self.batch;
        let mut start = self.start;
        self.meta.iter().map(move |m| {
            let line = &batch[start..m.end];
            start = m.end;
            (line, m)
        })
    }
}

/// How the writes of one batch went: a backend calls [`Tally::wrote`] once per write it
/// makes (or gives up on).
pub(crate) trait Tally {
    /// `lines` lines were written (`Ok`) or could not be (`Err`: they are lost).
    fn wrote(&mut self, lines: u64, result: std::io::Result<()>);
    /// A problem that lost nothing (a rotation or shipment failed, and will be
    /// retried): reported once on the other sinks.
    fn note(&mut self, text: String);
}

/// Wakes a sink's writer to ask its backend for reports ([`Backend::poll`]): a
/// backend's own thread (shipping, a remote receiver) calls it when it has something to
/// say and no line may come to carry it.
pub(crate) type Waker = std::sync::Arc<dyn Fn() + Send + Sync>;

/// A place lines go.
pub(crate) trait Backend: Send {
    /// How reports name it.
    fn describe(&self) -> String;
    /// Writes the lines, telling `tally` how each write went.
    fn write(&mut self, lines: Lines<'_>, tally: &mut dyn Tally);
    /// Closes and reopens what it writes to (SIGHUP after logrotate).
    fn reopen(&mut self) {}
    /// Reports of its own threads, when its waker was called.
    fn poll(&mut self, _tally: &mut dyn Tally) {}
}

/// The backend of a target, opened now (the process may drop its privileges next);
/// what cannot be opened yet is retried on the first write.
pub(crate) fn open(target: &Target, opener: &Opener, waker: Waker) -> Box<dyn Backend> {
    match target {
        Target::Stdout => Box::new(stdio::Stdio::Out),
        Target::Stderr => Box::new(stdio::Stdio::Err),
        Target::File(p) => Box::new(file::FileBackend::open(p.clone(), opener.clone())),
        Target::Syslog { facility } => Box::new(syslog::LocalSyslog::open(*facility)),
        Target::LogDir(d) => Box::new(logdir::LogDirBackend::open(d.clone(), waker)),
        Target::SyslogRemote(r) => Box::new(remote::RemoteBackend::open(r.clone(), waker)),
    }
}

/// How a target is named in reports, without opening it.
pub(crate) fn describe(target: &Target) -> String {
    match target {
        Target::Stdout => "stdout".into(),
        Target::Stderr => "stderr".into(),
        Target::File(p) => format!("log file {}", p.display()),
        Target::Syslog { facility } => syslog::describe(*facility),
        Target::LogDir(d) => format!("log directory {}", d.path.display()),
        Target::SyslogRemote(r) => format!("syslog.remote {} port {}", r.host, r.port),
    }
}
