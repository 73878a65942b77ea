//! The collector (`ferrosocks collect`): receives shipments — from ferrosocks'
//! `logdir.ship` or from a plain `tcpclient … sh -c 'cat >&7'` — and writes them as
//! socklog's receiver does (`tcpserver … socklog ucspi TCPREMOTEIP | multilog t …`):
//! every line converted as `socklog ucspi` converts it (`format::ucspi`: `IP: ` first, a
//! leading `<PRI>` as `facility.priority: `), into one multilog directory per sender IP
//! and into `all/`.
//!
//! One thread per connection (at most [`Limits::connections`] at once; more are refused
//! and reported). Memory per connection is bounded: a read buffer and at most
//! [`Limits::line`] bytes of an unfinished line; a longer line is cut there and goes on
//! as a new line with the `IP: ` prefix again (socklog itself passes any length through,
//! which a bounded collector cannot). Only whole lines are written to a directory, so
//! lines of concurrent senders never mix. At most 256 sender directories stay open; beyond,
//! those no connection is using are finished and closed, to be opened again with the
//! sender's next shipment.

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::format::ucspi::Converter;
use crate::logdir::{self, LogDir, Options};
use crate::{Level, Logger, Subsystem};

/// The collector's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub connections: usize,
    /// Longest line kept whole (bytes, after conversion).
    pub line: usize,
    /// A sender silent this long is disconnected.
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections: 1024,
            line: 64 * 1024,
            idle: Duration::from_secs(600),
        }
    }
}

/// Sender directories kept open at most (beyond, idle ones are closed).
const MAX_OPEN_DIRS: usize = 256;

/// The directories written, by name (`all` or a sender's IP).
struct Dirs {
    root: PathBuf,
    options: Options,
    open: Mutex<HashMap<String, Arc<Mutex<LogDir>>>>,
}

impl Dirs {
    fn get(&self, name: &str) -> Result<Arc<Mutex<LogDir>>, logdir::Error> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = open.get(name) {
            return Ok(Arc::clone(d));
        }
        if open.len() >= MAX_OPEN_DIRS {
            // Directories no connection uses are finished and closed (three descriptors
            // each); the next shipment from that sender opens its directory again.
            open.retain(|n, d| n == "all" || Arc::strong_count(d) > 1);
        }
        let d = Arc::new(Mutex::new(LogDir::open(
            &self.root.join(name),
            &self.options,
        )?));
        open.insert(name.to_owned(), Arc::clone(&d));
        Ok(d)
    }

    /// Finishes every directory cleanly (`current` 0744).
    fn close_all(&self) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        for d in open.values() {
            let _ = d.lock().unwrap_or_else(PoisonError::into_inner).close();
        }
    }
}

/// A running collector.
pub struct Collector {
    dirs: Arc<Dirs>,
    stop: Arc<AtomicBool>,
    /// Connections being served.
    active: Arc<AtomicUsize>,
}

/// How long a stop waits for the shipments under way to end.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The name of a sender's directory: its IP as socklog prints `TCPREMOTEIP` (an IPv4
/// address mapped into IPv6 as plain IPv4).
pub fn sender_name(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

impl Collector {
    /// Opens `root/all` now (so that a directory that cannot be used is an error at
    /// start) and serves `listener` on a thread of its own until [`Collector::stop`].
    pub fn start(
        listener: TcpListener,
        root: &Path,
        options: Options,
        limits: Limits,
        log: Logger,
    ) -> Result<Self, logdir::Error> {
        std::fs::create_dir_all(root).map_err(|source| logdir::Error::Io {
            what: "cannot create collector directory",
            path: root.to_path_buf(),
            source,
        })?;
        let dirs = Arc::new(Dirs {
            root: root.to_path_buf(),
            options,
            open: Mutex::new(HashMap::new()),
        });
        dirs.get("all")?;
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let (d, s, a) = (Arc::clone(&dirs), Arc::clone(&stop), Arc::clone(&active));
        std::thread::Builder::new()
            .name("collect-accept".into())
            .spawn(move || accept_loop(&listener, &d, &s, &a, limits, &log))
            .map_err(|source| logdir::Error::Io {
                what: "cannot start the collector in",
                path: root.to_path_buf(),
                source,
            })?;
        Ok(Self { dirs, stop, active })
    }

    /// Takes no new connection, lets the shipments under way end (for at most 5 s: a
    /// sender only counts a shipment done once the collector has written it and
    /// closed), and finishes every directory cleanly. A connection cut here makes its
    /// sender ship the file again.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + STOP_GRACE;
        while self.active.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            #[allow(clippy::disallowed_methods)] // the collector's own thread, no runtime
            std::thread::sleep(Duration::from_millis(10));
        }
        self.dirs.close_all();
    }
}

fn accept_loop(
    listener: &TcpListener,
    dirs: &Arc<Dirs>,
    stop: &Arc<AtomicBool>,
    active: &Arc<AtomicUsize>,
    limits: Limits,
    log: &Logger,
) {
    let mut refused = 0u64;
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                log.at(
                    Subsystem::SYSTEM,
                    Level::Error,
                    format!("collector: accept failed: {e}"),
                );
                // EMFILE and the like: give the system a moment.
                #[allow(clippy::disallowed_methods)] // a thread of its own, not a tokio worker
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        if active.load(Ordering::SeqCst) >= limits.connections {
            refused += 1;
            log.at(
                Subsystem::SYSTEM,
                Level::Warning,
                format!(
                    "collector: refused {peer}: {} connections are being served ({refused} refused so far); it should ship again later",
                    limits.connections
                ),
            );
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (dirs, active2, log2) = (Arc::clone(dirs), Arc::clone(active), log.clone());
        let spawned = std::thread::Builder::new()
            .name("collect-conn".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                serve(stream, peer.ip(), &dirs, limits, &log2);
                active2.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            active.fetch_sub(1, Ordering::SeqCst);
            log.at(
                Subsystem::SYSTEM,
                Level::Error,
                format!("collector: cannot serve {peer}: {e}"),
            );
        }
    }
}

/// One sender's connection, to its end.
fn serve(mut stream: TcpStream, ip: IpAddr, dirs: &Dirs, limits: Limits, log: &Logger) {
    let name = sender_name(ip);
    let (own, all) = match (dirs.get(&name), dirs.get("all")) {
        (Ok(o), Ok(a)) => (o, a),
        (Err(e), _) | (_, Err(e)) => {
            log.at(
                Subsystem::SYSTEM,
                Level::Error,
                format!("collector: lines from {name} cannot be written, the connection is closed unread: {e}"),
            );
            return;
        }
    };
    let _ = stream.set_read_timeout(Some(limits.idle));
    let mut conv = Converter::new(&name);
    let mut prefix = name.clone().into_bytes();
    prefix.extend_from_slice(b": ");
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(128 * 1024);
    // Converted bytes not yet ending a line.
    let mut pending: Vec<u8> = Vec::new();
    let (mut lines, mut bytes, mut cut) = (0u64, 0u64, 0u64);
    let mut failed = None;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => 0,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log.at(
                    Subsystem::SYSTEM,
                    Level::Warning,
                    format!("collector: reading from {name} failed: {e}"),
                );
                0
            }
        };
        bytes += n as u64;
        out.clear();
        if n == 0 {
            conv.finish(&mut out);
        } else {
            conv.feed(&buf[..n], &mut out);
        }
        // Whole lines go out; an unfinished one waits, up to the limit.
        let mut whole = Vec::new();
        let mut rest = &out[..];
        while !rest.is_empty() {
            let newline = rest.iter().position(|&b| b == b'\n');
            let content = newline.unwrap_or(rest.len());
            let room = limits.line.saturating_sub(pending.len()).max(1);
            if content > room || (newline.is_none() && content == room) {
                // Cut here; the rest goes on as a new line with the prefix again.
                pending.extend_from_slice(&rest[..room]);
                pending.push(b'\n');
                whole.extend_from_slice(&pending);
                lines += 1;
                cut += 1;
                pending.clear();
                pending.extend_from_slice(&prefix);
                rest = &rest[room..];
            } else if let Some(i) = newline {
                pending.extend_from_slice(&rest[..=i]);
                rest = &rest[i + 1..];
                // A cut just before a newline leaves nothing to say.
                if pending != [&prefix[..], b"\n"].concat() {
                    whole.extend_from_slice(&pending);
                    lines += 1;
                }
                pending.clear();
            } else {
                pending.extend_from_slice(rest);
                rest = &[];
            }
            if whole.len() >= 64 * 1024 {
                failed = failed.or(write(&own, &all, &whole).err());
                whole.clear();
            }
        }
        if !whole.is_empty() {
            failed = failed.or(write(&own, &all, &whole).err());
        }
        if let Some(e) = failed.take() {
            log.at(
                Subsystem::SYSTEM,
                Level::Error,
                format!("collector: lines from {name} could not be written: {e}"),
            );
        }
        if n == 0 {
            break;
        }
    }
    let note = if cut > 0 {
        format!(" ({cut} over-long line(s) cut at {} bytes)", limits.line)
    } else {
        String::new()
    };
    log.at(
        Subsystem::SYSTEM,
        Level::Info,
        format!("collector: {name} sent {bytes} byte(s), {lines} line(s){note}"),
    );
}

fn write(own: &Mutex<LogDir>, all: &Mutex<LogDir>, lines: &[u8]) -> Result<(), logdir::Error> {
    let now = SystemTime::now();
    let a = own
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .write(lines, now);
    let b = all
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .write(lines, now);
    a.and(b)
}
