//! Shipping rotated files to a collector (`logdir.ship`), socklog's way, kept across
//! restarts.
//!
//! One thread per log directory, off the logging path: a rotation only wakes it. It
//! sends each rotated file not yet shipped, oldest first, as raw bytes over TCP (what
//! `tcpclient HOST PORT sh -c 'cat >&7'` sends), then half-closes and waits for the
//! receiver to close: a shipment counts once the receiver has read it all. Each attempt,
//! connect included, ends within `logdir.ship.timeout`. A failure stops the round (order
//! is kept), is written to `state` and retried on the next rotation or after a back-off
//! (5 s doubling to 1 min); the failure lines of `state` go first in the next successful
//! shipment, as tryto sends its state, and are then cleared.
//!
//! `state` (replaced atomically: `newstate`, fsync, rename, fsync of the directory):
//! ```text
//! ferrosocks: shipped through @400000006b0162de33e6a8c4.s
//! ferrosocks: shipment of @400000006b0162df0a1b2c3d.s to 10.0.0.5 port 10116 failed at 2026-12-01T14:50:00.123456Z: connection refused
//! ```
//! The first line says how far shipping got; files after it are still to be shipped
//! and are never removed by `logdir.count`. The other lines (at most [`MAX_FAILURES`],
//! the latest kept) are the failures not yet told.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::format::multilog::is_rotated;

/// Failure lines kept in `state`.
pub(crate) const MAX_FAILURES: usize = 100;
const PROGRESS: &str = "ferrosocks: shipped through ";
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Where and how long.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ship {
    /// An IP address or a name (resolved at each attempt).
    pub host: String,
    pub port: u16,
    /// `logdir.ship.timeout`.
    pub timeout: Duration,
}

/// What the shipping thread and the log directory share.
pub(crate) struct Shared {
    state: Mutex<Control>,
    wake: Condvar,
    /// The last file shipped (empty: none): newer ones must stay.
    shipped_through: Mutex<String>,
    /// Reports for the error log, taken by the sink with its next batch.
    notes: Mutex<Vec<String>>,
    /// Wakes the sink's writer to take them at once.
    waker: Mutex<Option<crate::backend::Waker>>,
}

impl Shared {
    /// A file was rotated: try now.
    pub(crate) fn kick(&self) {
        lock(&self.state).kicked = true;
        self.wake.notify_one();
    }

    fn note(&self, text: String) {
        lock(&self.notes).push(text);
        let w = lock(&self.waker).clone();
        if let Some(w) = w {
            w();
        }
    }
}

struct Control {
    ship: Option<Ship>,
    /// A rotation happened (or the settings changed): try now.
    kicked: bool,
    stop: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The handle a log directory holds; dropping it ends the thread after its attempt.
pub(crate) struct Shipper {
    shared: Arc<Shared>,
}

impl Shipper {
    /// Starts shipping `dir`'s rotated files.
    pub(crate) fn start(dir: &Path, ship: Ship) -> Self {
        let (through, _) = read_state(&dir.join("state"));
        let shared = Arc::new(Shared {
            state: Mutex::new(Control {
                ship: Some(ship),
                kicked: true,
                stop: false,
            }),
            wake: Condvar::new(),
            shipped_through: Mutex::new(through),
            notes: Mutex::new(Vec::new()),
            waker: Mutex::new(None),
        });
        let mine = Arc::clone(&shared);
        let dir = dir.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("log-ship".into())
            .spawn(move || run(&dir, &mine));
        if let Err(e) = spawned {
            shared.note(format!("cannot start the log shipping thread: {e}"));
        }
        Self { shared }
    }

    /// New settings; tries at once.
    pub(crate) fn set(&self, ship: Ship) {
        let mut c = lock(&self.shared.state);
        if c.ship.as_ref() != Some(&ship) {
            c.ship = Some(ship);
            c.kicked = true;
            self.shared.wake.notify_one();
        }
    }

    /// Whether `name` must stay (not shipped yet).
    pub(crate) fn keeps(shared: &Shared, name: &str) -> bool {
        name > lock(&shared.shipped_through).as_str()
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// The writer to wake with reports.
    pub(crate) fn set_waker(&self, w: crate::backend::Waker) {
        *lock(&self.shared.waker) = Some(w.clone());
        // A report made before there was a writer to wake.
        if !lock(&self.shared.notes).is_empty() {
            w();
        }
    }

    /// Reports waiting for the error log.
    pub(crate) fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.shared.notes))
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.wake.notify_one();
    }
}

/// The thread: a round whenever kicked or the back-off ends.
fn run(dir: &Path, shared: &Shared) {
    let mut backoff: Option<Duration> = None;
    let mut failing_since: Option<String> = None;
    loop {
        let ship = {
            let mut c = lock(&shared.state);
            let deadline = backoff.map(|b| Instant::now() + b);
            while !c.kicked && !c.stop {
                match deadline {
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        c = shared
                            .wake
                            .wait_timeout(c, left)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                    None => c = shared.wake.wait(c).unwrap_or_else(PoisonError::into_inner),
                }
            }
            if c.stop {
                return;
            }
            c.kicked = false;
            c.ship.clone()
        };
        let Some(ship) = ship else { continue };
        match round(dir, &ship, shared) {
            Ok(shipped) => {
                if let (Some(since), true) = (failing_since.take(), shipped > 0) {
                    shared.note(format!(
                        "log directory {}: shipping to {} port {} works again (failing since {since}); {shipped} file(s) shipped, oldest first",
                        dir.display(),
                        ship.host,
                        ship.port
                    ));
                }
                backoff = None;
            }
            Err(e) => {
                if failing_since.is_none() {
                    failing_since = Some(rfc3339(SystemTime::now()));
                    shared.note(format!(
                        "log directory {}: {e}; the file stays and is retried, in order",
                        dir.display()
                    ));
                }
                backoff = Some(backoff.map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF)));
            }
        }
    }
}

/// Ships every pending file, oldest first; stops at the first failure (recorded in
/// `state`). Returns how many were shipped.
fn round(dir: &Path, ship: &Ship, shared: &Shared) -> Result<usize, String> {
    let state_path = dir.join("state");
    let mut shipped = 0;
    loop {
        let (through, failures) = read_state(&state_path);
        let Some(next) = pending(dir, &through).into_iter().next() else {
            return Ok(shipped);
        };
        match send(&dir.join(&next), &failures, ship) {
            Ok(()) => {
                write_state(dir, &next, &[]).map_err(|e| {
                    format!(
                        "shipped {next} but cannot record it in {}: {e} (it may be shipped again)",
                        state_path.display()
                    )
                })?;
                *lock(&shared.shipped_through) = next;
                shipped += 1;
            }
            Err(e) => {
                let line = format!(
                    "ferrosocks: shipment of {next} to {} port {} failed at {}: {e}",
                    ship.host,
                    ship.port,
                    rfc3339(SystemTime::now())
                );
                let mut failures = failures;
                failures.push(line.clone());
                let drop = failures.len().saturating_sub(MAX_FAILURES);
                failures.drain(..drop);
                let recorded = write_state(dir, &through, &failures)
                    .map_err(|w| format!("{line} (and cannot record it in state: {w})"));
                recorded?;
                return Err(line.trim_start_matches("ferrosocks: ").to_owned());
            }
        }
    }
}

/// The rotated files after `through`, oldest first.
fn pending(dir: &Path, through: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_rotated(n) && n.as_str() > through)
        .collect();
    names.sort();
    names
}

/// `state`: how far shipping got, and the failures not yet told.
fn read_state(path: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut through = String::new();
    let mut failures = Vec::new();
    for l in text.lines() {
        match l.strip_prefix(PROGRESS) {
            Some(n) => through = n.to_owned(),
            None if !l.is_empty() => failures.push(l.to_owned()),
            None => {}
        }
    }
    (through, failures)
}

/// Replaces `state` (multilog's way: `newstate`, fsync, rename, fsync the directory).
fn write_state(dir: &Path, through: &str, failures: &[String]) -> std::io::Result<()> {
    let mut text = String::new();
    if !through.is_empty() {
        text.push_str(PROGRESS);
        text.push_str(through);
        text.push('\n');
    }
    for f in failures {
        text.push_str(f);
        text.push('\n');
    }
    let new = dir.join("newstate");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&new)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&new, dir.join("state"))?;
    File::open(dir)?.sync_all()
}

/// One attempt: connect, the failure lines, the file, half-close, the receiver's close;
/// all within the timeout.
fn send(file: &Path, failures: &[String], ship: &Ship) -> Result<(), String> {
    let deadline = Instant::now() + ship.timeout;
    let left = || {
        let l = deadline.saturating_duration_since(Instant::now());
        if l.is_zero() {
            Err(format!("timed out after {} s", ship.timeout.as_secs_f64()))
        } else {
            Ok(l)
        }
    };
    let data = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let addrs: Vec<_> = (ship.host.as_str(), ship.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", ship.host))?
        .collect();
    let mut last = String::from("no address");
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, left()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    let mut s = stream.ok_or(last)?;
    let mut head = Vec::new();
    for f in failures {
        head.extend_from_slice(f.as_bytes());
        head.push(b'\n');
    }
    for part in [&head[..], &data[..]] {
        let mut rest = part;
        while !rest.is_empty() {
            s.set_write_timeout(Some(left()?))
                .map_err(|e| e.to_string())?;
            match s.write(rest) {
                Ok(0) => return Err("the receiver closed the connection".into()),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    left()?;
                }
                Err(e) => return Err(format!("cannot send: {e}")),
            }
        }
    }
    s.shutdown(Shutdown::Write)
        .map_err(|e| format!("cannot send: {e}"))?;
    // The receiver closes once it has read everything.
    let mut sink = [0u8; 4096];
    loop {
        s.set_read_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        match s.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                left()?;
            }
            Err(e) => return Err(format!("the receiver did not confirm: {e}")),
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    let utc: DateTime<Utc> = t.into();
    utc.to_rfc3339_opts(SecondsFormat::Micros, true)
}
