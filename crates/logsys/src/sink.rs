//! Sinks: one thread and one bounded queue each, and what happens when one fails.
//!
//! The router never blocks on a sink: it `try_send`s. A full queue means the sink is
//! stalled (a FIFO nobody reads, a hung NFS mount); its lines are dropped and counted,
//! and the router reports the stall at once and the count when the sink takes lines
//! again. A write that fails (disk full, directory gone, no syslog socket) is reported
//! once by the sink thread, retried with every later line (files are reopened, the
//! syslog socket reconnected), and its recovery is reported with the number of lines
//! that could not be written meanwhile.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use crate::router::{Msg, SINK_QUEUE};
use crate::{Level, SinkSpec, Target};

/// Most lines written with one write(2).
const MAX_BATCH: usize = 512;

/// One formatted line for a sink.
pub(crate) struct SinkLine {
    pub(crate) line: Arc<str>,
    /// Length of the Dante prefix at the start of `line` (for syslog, which drops part of it).
    pub(crate) prefix_len: usize,
    pub(crate) level: Level,
}

enum SinkMsg {
    Line(SinkLine),
    Reopen,
    Flush(mpsc::Sender<()>),
}

/// The router's end of a sink.
pub(crate) struct SinkHandle {
    pub(crate) spec: SinkSpec,
    tx: SyncSender<SinkMsg>,
    dropped: u64,
    stalled: bool,
    healthy: Arc<AtomicBool>,
}

impl SinkHandle {
    pub(crate) fn open(
        spec: SinkSpec,
        index: usize,
        generation: u64,
        router: mpsc::Sender<Msg>,
    ) -> Self {
        let (tx, rx) = mpsc::sync_channel(SINK_QUEUE);
        let healthy = Arc::new(AtomicBool::new(true));
        let mut writer = Writer::new(spec.target.clone(), Arc::clone(&healthy));
        let name = format!("log-sink-{index}");
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            // Lines that are already queued are written together: one write(2) for a
            // batch of whole lines (syslog: one datagram each, as syslog wants).
            let mut batch: Vec<SinkLine> = Vec::new();
            let mut next = rx.recv().ok();
            while let Some(msg) = next.take() {
                match msg {
                    SinkMsg::Line(l) => batch.push(l),
                    SinkMsg::Reopen => {
                        writer.write_batch(&mut batch, index, generation, &router);
                        writer.reopen();
                    }
                    SinkMsg::Flush(done) => {
                        writer.write_batch(&mut batch, index, generation, &router);
                        let _ = done.send(());
                    }
                }
                next = match rx.try_recv() {
                    Ok(m) if batch.len() < MAX_BATCH => Some(m),
                    Ok(m) => {
                        writer.write_batch(&mut batch, index, generation, &router);
                        Some(m)
                    }
                    Err(mpsc::TryRecvError::Disconnected) => None,
                    Err(mpsc::TryRecvError::Empty) => {
                        writer.write_batch(&mut batch, index, generation, &router);
                        #[allow(clippy::disallowed_methods)] // a dedicated thread, not async code
                        std::thread::sleep(crate::router::BATCH_PAUSE);
                        rx.recv().ok()
                    }
                };
            }
            writer.write_batch(&mut batch, index, generation, &router);
        });
        if let Err(e) = spawned {
            eprintln!("ferrosocks: cannot start a log sink thread: {e}");
        }
        Self {
            spec,
            tx,
            dropped: 0,
            stalled: false,
            healthy,
        }
    }

    pub(crate) fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed) && !self.stalled
    }

    pub(crate) fn name(&self) -> String {
        describe(&self.spec.target)
    }

    /// Queues a line; returns a report when the sink stalls or resumes.
    pub(crate) fn send(&mut self, line: SinkLine) -> Option<String> {
        match self.tx.try_send(SinkMsg::Line(line)) {
            Ok(()) if self.stalled => {
                self.stalled = false;
                let n = std::mem::take(&mut self.dropped);
                Some(format!(
                    "{} takes lines again; {n} line(s) were dropped for it while it was stalled",
                    self.name()
                ))
            }
            Ok(()) => None,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped += 1;
                (!std::mem::replace(&mut self.stalled, true)).then(|| {
                    format!("{} is stalled ({SINK_QUEUE} lines waiting): lines for it are dropped and counted until it catches up", self.name())
                })
            }
        }
    }

    pub(crate) fn reopen(&mut self) {
        let _ = self.tx.try_send(SinkMsg::Reopen);
    }

    /// Waits until the sink has written what it was given, for at most `limit`.
    pub(crate) fn flush(&mut self, limit: Duration) {
        let (tx, rx) = mpsc::channel();
        if self.tx.try_send(SinkMsg::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(limit);
        }
    }
}

fn describe(t: &Target) -> String {
    match t {
        Target::Stdout => "stdout".into(),
        Target::Stderr => "stderr".into(),
        Target::File(p) => format!("log file {}", p.display()),
        Target::Syslog { facility } => format!(
            "syslog socket {} (facility {facility})",
            dev_log().display()
        ),
    }
}

/// The local syslog socket; `FERROSOCKS_SYSLOG_SOCKET` names another one (chroots, tests).
fn dev_log() -> PathBuf {
    std::env::var_os("FERROSOCKS_SYSLOG_SOCKET")
        .map_or_else(|| PathBuf::from("/dev/log"), PathBuf::from)
}

/// The sink thread's side: writing, failing, recovering.
struct Writer {
    target: Target,
    file: Option<File>,
    sock: Option<UnixDatagram>,
    /// Set while failing: the first error, reported once.
    failing: Option<String>,
    lost: u64,
    healthy: Arc<AtomicBool>,
}

impl Writer {
    fn new(target: Target, healthy: Arc<AtomicBool>) -> Self {
        let mut w = Self {
            target,
            file: None,
            sock: None,
            failing: None,
            lost: 0,
            healthy,
        };
        w.reopen();
        w
    }

    fn reopen(&mut self) {
        match &self.target {
            Target::File(p) => self.file = open_append(p).ok(),
            Target::Syslog { .. } => self.sock = connect_syslog(),
            Target::Stdout | Target::Stderr => {}
        }
    }

    /// Writes and empties `batch`, reporting a failure or recovery to the router.
    fn write_batch(
        &mut self,
        batch: &mut Vec<SinkLine>,
        index: usize,
        generation: u64,
        router: &mpsc::Sender<Msg>,
    ) {
        if batch.is_empty() {
            return;
        }
        let reports: Vec<String> =
            if matches!(self.target, Target::Syslog { .. }) || batch.len() == 1 {
                batch.iter().filter_map(|l| self.write(l)).collect()
            } else {
                let joined: String = batch.iter().map(|l| &*l.line).collect();
                let level = batch[0].level;
                let report = self.write_counted(
                    &SinkLine {
                        line: joined.into(),
                        prefix_len: 0,
                        level,
                    },
                    batch.len() as u64,
                );
                report.into_iter().collect()
            };
        for r in reports {
            let _ = router.send(Msg::SinkReport(index, generation, r));
        }
        batch.clear();
    }

    fn write(&mut self, l: &SinkLine) -> Option<String> {
        self.write_counted(l, 1)
    }

    /// Writes `l`, which holds `lines` lines; a failure counts them all as lost.
    fn write_counted(&mut self, l: &SinkLine, lines: u64) -> Option<String> {
        let result = self.try_write(l);
        let report = match (result, self.failing.take()) {
            (Ok(()), None) => None,
            (Ok(()), Some(err)) => {
                let lost = std::mem::take(&mut self.lost);
                Some(format!(
                    "{} works again after failing ({err}); {lost} line(s) could not be written to it meanwhile",
                    describe(&self.target)
                ))
            }
            (Err(e), was) => {
                self.lost += lines;
                let first = was.is_none();
                self.failing = Some(was.unwrap_or_else(|| e.to_string()));
                first.then(|| {
                    format!(
                        "cannot write to {}: {e}; will retry with each line",
                        describe(&self.target)
                    )
                })
            }
        };
        self.healthy
            .store(self.failing.is_none(), Ordering::Relaxed);
        report
    }

    fn try_write(&mut self, l: &SinkLine) -> std::io::Result<()> {
        match &self.target {
            Target::Stdout => std::io::stdout().lock().write_all(l.line.as_bytes()),
            Target::Stderr => std::io::stderr().lock().write_all(l.line.as_bytes()),
            Target::File(p) => {
                if self.file.is_none() {
                    self.file = Some(open_append(p)?);
                }
                let f = self.file.as_mut().expect("opened just above");
                let r = f.write_all(l.line.as_bytes());
                if r.is_err() {
                    // Reopen with the next line: the file may be replaced or the disk freed.
                    self.file = None;
                }
                r
            }
            Target::Syslog { facility } => {
                if self.sock.is_none() {
                    self.sock = connect_syslog();
                }
                let Some(s) = self.sock.as_ref() else {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotConnected,
                        format!("cannot connect to {}", dev_log().display()),
                    ));
                };
                let r = s.send(syslog_message(*facility, l).as_bytes()).map(drop);
                if r.is_err() {
                    self.sock = None;
                }
                r
            }
        }
    }
}

/// Opens for append without blocking on a FIFO that has no reader (that fails at once
/// with ENXIO and is retried), then makes writes blocking again.
fn open_append(p: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(p)?;
    // SAFETY: fcntl on a descriptor we own; only the O_NONBLOCK flag is changed.
    unsafe {
        let fd = f.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(f)
}

fn connect_syslog() -> Option<UnixDatagram> {
    let sock = UnixDatagram::unbound().ok()?;
    sock.connect(dev_log()).ok()?;
    Some(sock)
}

/// A local syslog datagram as syslog(3) writes it: `<PRI>Mon DD HH:MM:SS program[pid]:
/// level: message`: the file prefix without its `(secs.usec) ` part.
pub(crate) fn syslog_message(facility: u8, l: &SinkLine) -> String {
    let pri = u16::from(facility) * 8 + u16::from(l.level.syslog_severity());
    let line = l.line.strip_suffix('\n').unwrap_or(&l.line);
    let prefix = line.get(..l.prefix_len).unwrap_or(line);
    match (prefix.get(..16), prefix.find(") ")) {
        (Some(date), Some(i)) => format!("<{pri}>{date}{}", &line[i + 2..]),
        _ => format!("<{pri}>{line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_datagram_shape() {
        let prefix = "Nov 21 09:16:57 (1795252617.429114) ferrosocks[13]: info: ";
        let line = format!("{prefix}pass(1): tcp/accept [: 127.0.0.1.1 127.0.0.1.2\n");
        let l = SinkLine {
            line: line.into(),
            prefix_len: prefix.len(),
            level: Level::Trace,
        };
        assert_eq!(
            syslog_message(19, &l),
            "<158>Nov 21 09:16:57 ferrosocks[13]: info: pass(1): tcp/accept [: 127.0.0.1.1 127.0.0.1.2"
        );
    }
}
