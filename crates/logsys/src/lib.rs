//! The log router: everything ferrosocks says goes through here.
//!
//! This crate owns where messages go. A [`Logger`] is a cheap, cloneable handle; calling
//! it stamps the message with the time and hands it to one writer thread over an
//! unbounded channel, so the data path never waits on a disk, a pipe or syslog, and no
//! message is ever dropped to make room (the queue grows instead; its depth is visible
//! in [`Logger::queued`]). The writer applies Dante's routing rules:
//!
//! - every message goes to every `logoutput` sink;
//! - messages of level warning or worse also go to every `errorlog` sink;
//! - debug messages are dropped unless the debug level is above 0;
//! - before any sink is configured, warnings and worse go to stderr.
//!
//! Sinks are files (opened for append, one `write(2)` per line, reopened on
//! [`Logger::reopen`] so logrotate works), stdout, stderr and the local syslog socket
//! `/dev/log`. A sink that fails is reported once on the other sinks (or stderr), retried
//! with each later message, and its recovery is reported too.

mod sink;
mod writer;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::SystemTime;

pub use traffic_log::Level;

/// Where messages can be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The local syslog socket, with a facility code (0–23).
    Syslog { facility: u8 },
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, opened for append.
    File(std::path::PathBuf),
}

/// The routing: Dante's `logoutput`, `errorlog` and `debug`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// Every message.
    pub logoutput: Vec<Target>,
    /// Warnings and worse, in addition.
    pub errorlog: Vec<Target>,
    /// 0 drops debug messages; 1 and 2 keep them.
    pub debug: u8,
}

/// A handle to the log router. Clone it freely.
#[derive(Clone)]
pub struct Logger {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<writer::Msg>,
    debug: AtomicU8,
    queued: AtomicUsize,
}

impl Logger {
    /// Starts the writer thread. `program` and `pid` go in every line prefix.
    pub fn start(program: &str, pid: u32, routes: Routes) -> Self {
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            tx,
            debug: AtomicU8::new(routes.debug),
            queued: AtomicUsize::new(0),
        });
        let queue_depth = Arc::clone(&inner);
        let program = program.to_owned();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer::run(program, pid, routes, rx, &queue_depth.queued))
            .map_or_else(
                |e| eprintln!("ferrosocks: cannot start the log writer: {e}"),
                drop,
            );
        Self { inner }
    }

    /// Logs `msg` at `level`.
    pub fn log(&self, level: Level, msg: impl Into<String>) {
        if level == Level::Debug && !self.debug_enabled() {
            return;
        }
        self.send(writer::Msg::Line {
            time: SystemTime::now(),
            level,
            text: msg.into(),
        });
    }

    /// Whether debug messages are kept (debug level above 0).
    pub fn debug_enabled(&self) -> bool {
        self.inner.debug.load(Ordering::Relaxed) > 0
    }

    /// The debug level.
    pub fn debug_level(&self) -> u8 {
        self.inner.debug.load(Ordering::Relaxed)
    }

    /// Logs at info.
    pub fn info(&self, msg: impl Into<String>) {
        self.log(Level::Info, msg);
    }

    /// Logs at warning.
    pub fn warning(&self, msg: impl Into<String>) {
        self.log(Level::Warning, msg);
    }

    /// Logs at error.
    pub fn error(&self, msg: impl Into<String>) {
        self.log(Level::Error, msg);
    }

    /// Logs at debug (dropped unless debug is on).
    pub fn debug(&self, msg: impl Into<String>) {
        self.log(Level::Debug, msg);
    }

    /// Replaces the routing (configuration reload); files are opened anew.
    pub fn set_routes(&self, routes: Routes) {
        self.inner.debug.store(routes.debug, Ordering::Relaxed);
        self.send(writer::Msg::Routes(routes));
    }

    /// Closes and reopens every file sink (after logrotate moved the files).
    pub fn reopen(&self) {
        self.send(writer::Msg::Reopen);
    }

    /// Waits until every message logged before this call has been written.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        self.send(writer::Msg::Flush(tx));
        let _ = rx.recv_timeout(std::time::Duration::from_secs(10));
    }

    /// How many messages wait to be written.
    pub fn queued(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }

    fn send(&self, msg: writer::Msg) {
        self.inner.queued.fetch_add(1, Ordering::Relaxed);
        // If the writer thread is gone (it could not start), write here instead.
        if let Err(mpsc::SendError(writer::Msg::Line { level, text, .. })) = self.inner.tx.send(msg)
        {
            eprintln!("{}: {text}", level.as_str());
        }
    }
}
