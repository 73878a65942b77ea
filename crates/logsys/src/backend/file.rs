//! A file opened for append (or a FIFO): one write(2) per batch; a failed write
//! reopens the file with the next batch (it may have been replaced, or the disk freed).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::{Backend, Lines, Tally};
use crate::Opener;

pub(crate) struct FileBackend {
    path: PathBuf,
    /// How files are opened (directly, or by a privileged helper after a drop).
    opener: Opener,
    file: Option<File>,
}

impl FileBackend {
    pub(crate) fn open(path: PathBuf, opener: Opener) -> Self {
        let file = opener.load().open_append(&path).ok();
        Self { path, opener, file }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(self.opener.load().open_append(&self.path)?);
        }
        let f = self.file.as_mut().expect("opened just above");
        let r = f.write_all(bytes);
        if r.is_err() {
            self.file = None;
        }
        r
    }
}

impl Backend for FileBackend {
    fn describe(&self) -> String {
        format!("log file {}", self.path.display())
    }

    fn write(&mut self, lines: Lines<'_>, tally: &mut dyn Tally) {
        let r = self.write_all(lines.bytes());
        tally.wrote(lines.len() as u64, r);
    }

    fn reopen(&mut self) {
        self.file = self.opener.load().open_append(&self.path).ok();
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
