//! The log router: everything ferrosocks says goes through here.
//!
//! This crate owns where messages go. Every record has a [`Subsystem`] and a [`Level`]
//! (ircu's model); each subsystem has its own threshold, optional file, syslog facility
//! and operator flag ([`SubsystemConfig`]). Dante's routing stays on top: every record
//! that passes its subsystem's threshold goes to every `logoutput` sink, warnings and
//! worse also to every `errorlog` sink. OpenVPN's `verb` sets the thresholds of every
//! subsystem not configured on its own, `mute` suppresses repeats, and a sink writes text
//! (Dante's line format) or JSON lines.
//!
//! Layout: [`Logger`] is a cheap, cloneable handle. A call checks the subsystem's
//! threshold (an atomic) and, if it passes, does the routing on the calling thread
//! (`routing.rs`): applies `mute`, formats the line once into a reused per-thread
//! buffer and appends it to each sink's buffer. Every sink (`sink.rs`) has its own
//! writer thread that takes whole batches and hands them to its backend (`backend/`:
//! a file or stdio in one write(2), local syslog, a multilog directory in `logdir/`,
//! a remote RFC 5424 receiver in `remote/`) with the failure accounting of
//! `writer.rs`, so the data path never waits on I/O and one stalled sink (a full
//! disk, a FIFO nobody reads) never holds up the others. When a sink has too many lines
//! waiting its lines are dropped *and counted*, and the stall, the count and the
//! recovery are reported on the other sinks: no line is lost silently. `format/` holds
//! the pure formats (golden-tested), `collect` the collector of shipped log files. See
//! docs/logging.md, docs/logdir.md and docs/syslog.md.

mod backend;
pub mod collect;
pub mod format;
mod level;
pub mod logdir;
pub mod remote;
mod routing;
mod sink;
pub mod stats;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use backend::open_append;
pub use level::{Level, Subsystem};
pub use routing::{OperatorRecord, OperatorSink};

/// Opens the files that sinks write to: at start-up, on every reopen (SIGHUP after
/// logrotate moved them) and for sinks a reload adds. A process that has dropped its
/// privileges installs one that asks its privileged helper ([`Logger::set_opener`]).
pub trait FileOpener: Send + Sync {
    /// Opens `path` for appending, creating it if it does not exist.
    fn open_append(&self, path: &Path) -> std::io::Result<File>;
}

/// Opens files in this process, with its own rights.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirectOpener;

impl FileOpener for DirectOpener {
    fn open_append(&self, path: &Path) -> std::io::Result<File> {
        open_append(path)
    }
}

/// The opener in force, shared by the router and every writer.
pub(crate) type Opener = Arc<ArcSwap<Box<dyn FileOpener>>>;

/// Where a sink writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// The local syslog socket, with a facility code (0–23).
    Syslog { facility: u8 },
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, opened for append.
    File(PathBuf),
    /// A multilog-style log directory.
    LogDir(LogDirTarget),
    /// A remote syslog receiver (RFC 5424).
    SyslogRemote(remote::RemoteTarget),
}

/// A log directory sink: where, and how it rotates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogDirTarget {
    /// The directory.
    pub path: PathBuf,
    /// Rotation and stamping.
    pub options: logdir::Options,
}

/// How a sink writes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Dante's line: `Mon DD HH:MM:SS (secs.usec) ferrosocks[pid]: level: text`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A sink: where and how.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SinkSpec {
    /// Where.
    pub target: Target,
    /// How (syslog sinks always write text).
    pub format: Format,
}

impl SinkSpec {
    /// A text sink.
    pub fn text(target: Target) -> Self {
        Self {
            target,
            format: Format::Text,
        }
    }
}

/// A subsystem's syslog facility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Facility {
    /// `none`: not sent to syslog on its own (the default).
    #[default]
    None,
    /// `default`: the `log.default.facility`.
    Default,
    /// A facility code.
    Code(u8),
}

/// One subsystem's routing; `None` fields take the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubsystemConfig {
    /// `log.<subsystem>.level`.
    pub level: Option<Level>,
    /// `log.<subsystem>.file`.
    pub file: Option<PathBuf>,
    /// `log.<subsystem>.file: logdir`: the log directory instead of a file.
    pub logdir: Option<LogDirTarget>,
    /// `log.<subsystem>.facility`.
    pub facility: Facility,
    /// `log.<subsystem>.operators`.
    pub operators: Option<bool>,
}

/// The whole routing configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Dante's `logoutput`: every record.
    pub logoutput: Vec<SinkSpec>,
    /// Dante's `errorlog`: warnings and worse, in addition.
    pub errorlog: Vec<SinkSpec>,
    /// Dante's `debug` (or `-d`): above 0, every subsystem not set on its own shows debug.
    pub debug: u8,
    /// Per subsystem, indexed by [`Subsystem::index`].
    pub subsystems: Vec<SubsystemConfig>,
    /// `log.default.facility` (default 3, daemon).
    pub default_facility: u8,
    /// OpenVPN's `verb`, if set.
    pub verb: Option<u8>,
    /// OpenVPN's `mute` (0: off).
    pub mute: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            logoutput: Vec::new(),
            errorlog: Vec::new(),
            debug: 0,
            subsystems: vec![SubsystemConfig::default(); Subsystem::ALL.len()],
            default_facility: 3,
            verb: None,
            mute: 0,
        }
    }
}

impl LogConfig {
    /// The threshold of a subsystem (`None`: off): its own level, else debug, else verb,
    /// else the subsystem's default.
    pub fn threshold(&self, sub: Subsystem) -> Option<Level> {
        if let Some(l) = self.subsystems.get(sub.index()).and_then(|c| c.level) {
            return Some(l);
        }
        if self.debug > 0 {
            return Some(Level::Debug);
        }
        if let Some(v) = self.verb {
            return Some(Level::for_verb(v));
        }
        sub.default_level()
    }

    /// [`Self::threshold`] as one byte: a [`Level`] index, or [`OFF`] (checked on every
    /// log call, so kept in atomics by the [`Logger`]).
    fn threshold_code(&self, sub: Subsystem) -> u8 {
        self.threshold(sub).map_or(OFF, |l| l as u8)
    }

    /// Whether a subsystem's records go to subscribed operators.
    pub fn operators(&self, sub: Subsystem) -> bool {
        self.subsystems
            .get(sub.index())
            .and_then(|c| c.operators)
            .unwrap_or_else(|| sub.default_operators())
    }
}

/// What a record carries.
#[derive(Debug, Clone)]
pub enum Payload {
    /// A message.
    Text(String),
    /// A Dante traffic record (its text is the record's line).
    Traffic(traffic_log::Record),
}

/// A handle to the log router. Clone it freely.
#[derive(Clone)]
pub struct Logger {
    inner: Arc<Inner>,
}

const OFF: u8 = u8::MAX;

struct Inner {
    /// The routing in force, with its configuration.
    core: Arc<routing::Core>,
    /// The routing's thresholds, one atomic per subsystem: the check every log call
    /// makes before building its message.
    thresholds: [AtomicU8; 14],
}

impl Logger {
    /// Opens every sink (privileges may be dropped next) and starts their writers.
    /// `program` and `pid` go in every line.
    pub fn start(program: &str, pid: u32, config: LogConfig) -> Self {
        let inner = Arc::new(Inner {
            core: routing::Core::start(
                program,
                pid,
                config.clone(),
                Arc::new(ArcSwap::from_pointee(Box::new(DirectOpener))),
            ),
            thresholds: std::array::from_fn(|_| AtomicU8::new(OFF)),
        });
        let logger = Self { inner };
        logger.store_thresholds(&config);
        logger
    }

    fn store_thresholds(&self, c: &LogConfig) {
        for s in Subsystem::ALL {
            self.inner.thresholds[s.index()].store(c.threshold_code(s), Ordering::Relaxed);
        }
    }

    /// Whether a record of `level` in `sub` would be written: check before building an
    /// expensive message.
    pub fn enabled(&self, sub: Subsystem, level: Level) -> bool {
        let t = self.inner.thresholds[sub.index()].load(Ordering::Relaxed);
        t != OFF && (level as u8) <= t
    }

    /// Logs a message.
    pub fn at(&self, sub: Subsystem, level: Level, msg: impl Into<String>) {
        self.categorized(sub, level, 0, msg);
    }

    /// Logs a message whose repeats `mute` may suppress (`category` ≠ 0 names the kind).
    pub fn categorized(&self, sub: Subsystem, level: Level, category: u32, msg: impl Into<String>) {
        if self.enabled(sub, level) {
            self.emit(sub, level, category, Payload::Text(msg.into()));
        }
    }

    /// Logs a traffic record (never muted).
    pub fn traffic(&self, sub: Subsystem, level: Level, record: traffic_log::Record) {
        if self.enabled(sub, level) {
            self.emit(sub, level, 0, Payload::Traffic(record));
        }
    }

    /// Logs one I/O operation of a traffic record: the line is `head (BYTES)[: DATA]`,
    /// where `head` is [`traffic_log::Record::write_io_head`]'s, written once per
    /// direction of a session. `record` builds the whole record, for JSON sinks and
    /// operators only. Never muted.
    pub fn traffic_io(
        &self,
        sub: Subsystem,
        level: Level,
        head: &[u8],
        bytes: u64,
        data: Option<&str>,
        record: &dyn Fn() -> traffic_log::Record,
    ) {
        if self.enabled(sub, level) {
            let io = routing::Message::Io {
                head,
                bytes,
                data,
                record,
            };
            self.inner.core.emit(sub, level, 0, &io);
        }
    }

    /// Logs a traffic record whose line `write` appends (without prefix or newline),
    /// from text rendered once for a session: its start line and summary. `record`
    /// builds the same record, for JSON sinks and operators only.
    pub fn traffic_written(
        &self,
        sub: Subsystem,
        level: Level,
        write: &dyn Fn(&mut Vec<u8>),
        record: &dyn Fn() -> traffic_log::Record,
    ) {
        if self.enabled(sub, level) {
            let m = routing::Message::Written { write, record };
            self.inner.core.emit(sub, level, 0, &m);
        }
    }

    fn emit(&self, subsystem: Subsystem, level: Level, category: u32, payload: Payload) {
        let message = routing::Message::Payload(&payload);
        self.inner.core.emit(subsystem, level, category, &message);
    }

    /// SYSTEM at info.
    pub fn info(&self, msg: impl Into<String>) {
        self.at(Subsystem::SYSTEM, Level::Info, msg);
    }

    /// SYSTEM at warning.
    pub fn warning(&self, msg: impl Into<String>) {
        self.at(Subsystem::SYSTEM, Level::Warning, msg);
    }

    /// SYSTEM at error.
    pub fn error(&self, msg: impl Into<String>) {
        self.at(Subsystem::SYSTEM, Level::Error, msg);
    }

    /// DEBUG at debug.
    pub fn debug(&self, msg: impl Into<String>) {
        self.at(Subsystem::DEBUG, Level::Debug, msg);
    }

    /// Whether the DEBUG subsystem is on.
    pub fn debug_enabled(&self) -> bool {
        self.enabled(Subsystem::DEBUG, Level::Debug)
    }

    /// Dante's debug level (0–2).
    pub fn debug_level(&self) -> u8 {
        self.inner.core.with_config(|c| c.debug)
    }

    /// Replaces the routing (configuration reload): the old sinks write what they
    /// hold (each for at most 3 s) and close, the new ones are opened. Blocks: call it
    /// off the async workers.
    pub fn set_config(&self, config: LogConfig) {
        self.store_thresholds(&config);
        self.inner.core.apply(config);
    }

    /// The routing in force.
    pub fn config(&self) -> LogConfig {
        self.inner.core.with_config(LogConfig::clone)
    }

    /// The verbosity in force, if set.
    pub fn verb(&self) -> Option<u8> {
        self.inner.core.with_config(|c| c.verb)
    }

    /// Changes the verbosity at run time (the management `verb N`): takes effect at once,
    /// without reopening sinks or waiting on their writers. A reload (SIGHUP) applies
    /// the file's `verb` again.
    pub fn set_verb(&self, verb: Option<u8>) {
        let c = self.inner.core.retune(Some(verb), None);
        self.store_thresholds(&c);
    }

    /// The mute setting in force.
    pub fn mute(&self) -> u32 {
        self.inner.core.with_config(|c| c.mute)
    }

    /// Changes `mute` at run time, at once (as [`Logger::set_verb`]).
    pub fn set_mute(&self, mute: u32) {
        self.inner.core.retune(None, Some(mute));
    }

    /// Subscribes an operator to the subsystems in `mask` (bit = [`Subsystem::index`]) at
    /// `level` and worse: records of subsystems whose `operators` flag is on go to
    /// `sink`, on the logging thread (it must not block). Returns the history kept so
    /// far (the last 1000 such records), taken at the same moment.
    pub fn subscribe(&self, mask: u32, level: Level, sink: OperatorSink) -> Vec<OperatorRecord> {
        self.inner.core.subscribe(mask, level, sink)
    }

    /// The last records (at most 1000) of subsystems whose `operators` flag is on, in
    /// `mask`, at `level` and worse, oldest first: kept whether or not anyone is
    /// subscribed.
    pub fn history(&self, mask: u32, level: Level) -> Vec<OperatorRecord> {
        self.inner.core.history(mask, level)
    }

    /// From now on every file sink opens its files with `opener` (a process that drops
    /// its privileges after start-up sets one that asks its privileged helper).
    pub fn set_opener(&self, opener: Box<dyn FileOpener>) {
        self.inner.core.opener.store(Arc::new(opener));
    }

    /// Closes and reopens every file sink (after logrotate moved the files); lines
    /// logged before this call go to the old file, later ones to the new.
    pub fn reopen(&self) {
        self.inner.core.reopen();
    }

    /// Waits until every record logged before this call has been written (each sink
    /// at most 3 s: a stalled one is not waited for longer).
    pub fn flush(&self) {
        self.inner.core.flush();
    }

    /// Writes what every sink holds and closes them all (at exit): a log directory's
    /// `current` is left complete (mode 0744). Records logged later go nowhere.
    pub fn close(&self) {
        self.inner.core.close();
    }

    /// Whether every sink in force has its writer thread running (the systemd watchdog
    /// asks).
    pub fn writers_alive(&self) -> bool {
        self.inner.core.writers_alive()
    }

    /// Lines waiting in the sinks to be written.
    pub fn queued(&self) -> usize {
        self.inner.core.pending()
    }
}
