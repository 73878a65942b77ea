//! A sink thread's writing end: files, stdio and the syslog socket, failing and
//! recovering.
//!
//! A write that fails (disk full, directory gone, no syslog socket) is reported once,
//! retried with every later batch (files are reopened, the syslog socket reconnected),
//! and its recovery is reported with the number of lines that could not be written
//! meanwhile.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::{Level, Opener, Target};

/// Where one line of a batch ends, and what syslog needs to know about it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineMeta {
    /// Offset just past the line's newline in the batch.
    pub(crate) end: usize,
    /// Length of the Dante prefix at the start of the line (syslog drops part of it).
    pub(crate) prefix_len: usize,
    pub(crate) level: Level,
}

/// How a target is named in reports.
pub(crate) fn describe(t: &Target) -> String {
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

/// A sink's failure in progress: its first error and the lines it could not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) error: String,
    pub(crate) lost: u64,
}

/// Writes batches of lines to one target.
pub(crate) struct Writer {
    target: Target,
    /// How files are opened (directly, or by a privileged helper after a drop).
    opener: Opener,
    file: Option<File>,
    sock: Option<UnixDatagram>,
    /// Set while failing: the first error, reported once.
    failing: Option<String>,
    lost: u64,
}

impl Writer {
    /// A writer for `target`; `inherited` is the failure (first error, lines lost) of the
    /// sink it replaces after a reload, so that a failure goes on being one failure,
    /// reported once, and its recovery counts every line it cost.
    pub(crate) fn new(target: Target, opener: Opener, inherited: Option<Failure>) -> Self {
        let (failing, lost) = inherited.map_or((None, 0), |f| (Some(f.error), f.lost));
        let mut w = Self {
            target,
            opener,
            file: None,
            sock: None,
            failing,
            lost,
        };
        w.reopen();
        w
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
        match &self.target {
            Target::File(p) => self.file = self.opener.load().open_append(p).ok(),
            Target::Syslog { .. } => self.sock = connect_syslog(),
            Target::Stdout | Target::Stderr => {}
        }
    }

    /// Writes whole lines from `batch`: the first starts at `start`, `meta` says where
    /// each ends. One write(2) for a file or stdio, one datagram per line for syslog.
    /// Returns what to report.
    pub(crate) fn write_batch(
        &mut self,
        batch: &[u8],
        mut start: usize,
        meta: &[LineMeta],
    ) -> Vec<String> {
        let Some(last) = meta.last() else {
            return Vec::new();
        };
        if let Target::Syslog { facility } = self.target {
            let mut reports = Vec::new();
            for m in meta {
                let line = &batch[start..m.end];
                start = m.end;
                let datagram = syslog_message(facility, m.level, line, m.prefix_len);
                reports.extend(self.counted(1, |w| w.send_syslog(&datagram)));
            }
            reports
        } else {
            let bytes = &batch[start..last.end];
            self.counted(meta.len() as u64, |w| w.write_all(bytes))
                .into_iter()
                .collect()
        }
    }

    /// Runs one write of `lines` lines; a failure counts them all as lost.
    fn counted(
        &mut self,
        lines: u64,
        write: impl FnOnce(&mut Self) -> std::io::Result<()>,
    ) -> Option<String> {
        let result = write(self);
        match (result, self.failing.take()) {
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
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &self.target {
            Target::Stdout => std::io::stdout().lock().write_all(bytes),
            Target::Stderr => std::io::stderr().lock().write_all(bytes),
            Target::File(p) => {
                if self.file.is_none() {
                    self.file = Some(self.opener.load().open_append(p)?);
                }
                let f = self.file.as_mut().expect("opened just above");
                let r = f.write_all(bytes);
                if r.is_err() {
                    // Reopen with the next batch: the file may be replaced or the disk freed.
                    self.file = None;
                }
                r
            }
            Target::Syslog { .. } => self.send_syslog(bytes),
        }
    }

    fn send_syslog(&mut self, datagram: &[u8]) -> std::io::Result<()> {
        if self.sock.is_none() {
            self.sock = connect_syslog();
        }
        let Some(s) = self.sock.as_ref() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!("cannot connect to {}", dev_log().display()),
            ));
        };
        let r = s.send(datagram).map(drop);
        if r.is_err() {
            self.sock = None;
        }
        r
    }
}

/// Opens for append (creating the file) without blocking on a FIFO that has no reader
/// (that fails at once with ENXIO and is retried), then makes writes blocking again.
/// What [`DirectOpener`](crate::DirectOpener) does, and what a privileged helper does
/// for a process that has dropped its rights.
pub fn open_append(p: &Path) -> std::io::Result<File> {
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
pub(crate) fn syslog_message(
    facility: u8,
    level: Level,
    line: &[u8],
    prefix_len: usize,
) -> Vec<u8> {
    let pri = u16::from(facility) * 8 + u16::from(level.syslog_severity());
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let prefix = line.get(..prefix_len).unwrap_or(line);
    let mut out = format!("<{pri}>").into_bytes();
    match (prefix.get(..16), prefix.windows(2).position(|w| w == b") ")) {
        (Some(date), Some(i)) => {
            out.extend_from_slice(date);
            out.extend_from_slice(&line[i + 2..]);
        }
        _ => out.extend_from_slice(line),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_datagram_shape() {
        let prefix = "Nov 21 09:16:57 (1795252617.429114) ferrosocks[13]: info: ";
        let line = format!("{prefix}pass(1): tcp/accept [: 127.0.0.1.1 127.0.0.1.2\n");
        assert_eq!(
            String::from_utf8(syslog_message(19, Level::Trace, line.as_bytes(), prefix.len()))
                .unwrap(),
            "<158>Nov 21 09:16:57 ferrosocks[13]: info: pass(1): tcp/accept [: 127.0.0.1.1 127.0.0.1.2"
        );
    }
}
