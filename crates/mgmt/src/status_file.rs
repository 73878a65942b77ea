//! Writing the status file: whole, or not at all.
//!
//! OpenVPN rewrites its status file in place (seek to 0, write, `ftruncate`), so a
//! reader can catch it half written. [`write_atomically`] writes a temporary file in the
//! same directory, fsyncs it, renames it over the old one and fsyncs the directory: a
//! reader opens either the old file or the new one, each whole. The price is that the
//! directory, not only the file, must be writable by the user the server runs as.
//!
//! [`StatusWriter`] remembers whether the last write failed, so that a failing status
//! file is reported once when it starts failing and once when it works again, not
//! every interval. Synchronous and std only: the caller runs it where blocking is
//! fine (a blocking thread, or the timer's own thread).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces the file at `path` with `contents`, atomically: on any error the previous
/// file (if any) is left as it was and the temporary file is removed.
///
/// The new file keeps the permission bits of the one it replaces; a first file is
/// created 0600 (less the umask), as OpenVPN creates its status file. A symbolic link
/// at `path` is replaced by the file, not followed.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_with(path, |f| f.write_all(contents))
}

/// Writes `path`'s status files and says when writing starts or stops failing.
#[derive(Debug, Clone)]
pub struct StatusWriter {
    /// Seconds between attempts, for the failure report.
    interval: u64,
    /// Attempts that have failed since the last success.
    failed: u64,
}

impl StatusWriter {
    /// A writer that will be called every `interval` seconds (`status.interval`).
    pub fn new(interval: u64) -> Self {
        Self {
            interval,
            failed: 0,
        }
    }

    /// A new interval (after a reload); the failure state stays.
    pub fn set_interval(&mut self, interval: u64) {
        self.interval = interval;
    }

    /// Whether the last write failed.
    pub fn failing(&self) -> bool {
        self.failed > 0
    }

    /// Writes `contents` to `path` with [`write_atomically`]. Returns a report only
    /// when the state changes: the first failure (`cannot write status file PATH: ERR;
    /// the previous file stays; will retry every N s`) and the first success after
    /// failures (`status file PATH written again after N failed attempt(s)`).
    pub fn write(&mut self, path: &Path, contents: &[u8]) -> Option<String> {
        self.outcome(path, write_atomically(path, contents))
    }

    fn outcome(&mut self, path: &Path, result: io::Result<()>) -> Option<String> {
        match result {
            Ok(()) => {
                let failed = std::mem::take(&mut self.failed);
                (failed > 0).then(|| {
                    format!(
                        "status file {} written again after {failed} failed attempt(s)",
                        path.display()
                    )
                })
            }
            Err(e) => {
                self.failed += 1;
                (self.failed == 1).then(|| {
                    format!(
                        "cannot write status file {}: {e}; the previous file stays; will retry every {} s",
                        path.display(),
                        self.interval
                    )
                })
            }
        }
    }
}

/// [`write_atomically`], the writing itself done by `write` (tests make it fail).
fn write_with(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the status file path names no file",
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (tmp, mut file) = create_temp(dir, name)?;
    let written = (|| {
        if let Ok(old) = fs::metadata(path) {
            file.set_permissions(old.permissions())?;
        }
        write(&mut file)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // The new file is in place; the directory's fsync only makes the rename survive a
    // crash, so its failure (some file systems refuse it) is no failure of the write.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates `.NAME.PID.N.tmp` in `dir`, a name no other writer uses: the process id, and
/// a counter for writers within the process; a name left by a crash is skipped.
fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::thread;

    use super::*;

    /// A status text with `rows` lines between its first line (which says how many) and
    /// `END`.
    fn text(rows: usize) -> String {
        let mut t = format!("ROWS,{rows}\n");
        for i in 0..rows {
            t.push_str(&format!("CLIENT_LIST,user{i},192.0.2.1:{i}\n"));
        }
        t.push_str("END\n");
        t
    }

    /// The names in `dir`.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_reader_always_sees_a_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status");
        write_atomically(&path, text(0).as_bytes()).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let (path, done) = (path.clone(), Arc::clone(&done));
            thread::spawn(move || {
                for i in 0..300 {
                    // Lengths go up and down, so that a torn or truncated read would show.
                    write_atomically(&path, text((i * 37) % 101).as_bytes()).unwrap();
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let mut reads = 0;
        while !done.load(Ordering::SeqCst) || reads < 300 {
            let t = fs::read_to_string(&path).unwrap();
            assert!(t.ends_with("END\n"), "read {reads}: {t:?}");
            let rows: usize = t.lines().next().unwrap()[5..].parse().unwrap();
            assert_eq!(t, text(rows), "read {reads}");
            reads += 1;
        }
        writer.join().unwrap();
        // Only the file: every temporary file was renamed.
        assert_eq!(names(dir.path()), ["status"]);
    }

    #[test]
    fn a_failed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status");
        write_atomically(&path, text(3).as_bytes()).unwrap();
        // The disk fills up half way through the new file.
        let full = write_with(&path, |f| {
            f.write_all(&text(50).as_bytes()[..100])?;
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        });
        assert_eq!(full.unwrap_err().raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(fs::read_to_string(&path).unwrap(), text(3));
        assert_eq!(names(dir.path()), ["status"]);
        // The rename fails (a directory stands at the path): nothing is left behind.
        let taken = dir.path().join("taken");
        fs::create_dir(&taken).unwrap();
        assert!(write_atomically(&taken, b"END\n").is_err());
        assert_eq!(names(dir.path()), ["status", "taken"]);
    }

    #[test]
    fn a_parent_that_is_a_file_is_an_error_even_for_root() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, "x").unwrap();
        let e = write_atomically(&file.join("status"), b"END\n").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
        assert_eq!(fs::read_to_string(&file).unwrap(), "x");
    }

    #[test]
    fn the_mode_of_the_replaced_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status");
        write_atomically(&path, b"END\n").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path) & 0o077, 0, "a first file is private");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, text(1).as_bytes()).unwrap();
        assert_eq!(mode(&path), 0o640);
        assert_eq!(fs::read_to_string(&path).unwrap(), text(1));
    }

    #[test]
    fn a_vanished_directory_is_reported_once_and_its_return_once() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("run");
        fs::create_dir(&dir).unwrap();
        let path = dir.join("status");
        let mut w = StatusWriter::new(10);
        assert_eq!(w.write(&path, b"END\n"), None);
        fs::remove_dir_all(&dir).unwrap();
        let first = w
            .write(&path, b"END\n")
            .expect("the first failure is reported");
        assert_eq!(
            first,
            format!(
                "cannot write status file {}: No such file or directory (os error 2); the previous file stays; will retry every 10 s",
                path.display()
            )
        );
        assert!(w.failing());
        assert_eq!(w.write(&path, b"END\n"), None, "the second failure is not");
        w.set_interval(5);
        assert_eq!(w.write(&path, b"END\n"), None);
        fs::create_dir(&dir).unwrap();
        assert_eq!(
            w.write(&path, text(2).as_bytes()),
            Some(format!(
                "status file {} written again after 3 failed attempt(s)",
                path.display()
            ))
        );
        assert!(!w.failing());
        assert_eq!(w.write(&path, b"END\n"), None);
        assert_eq!(fs::read_to_string(&path).unwrap(), "END\n");
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        let e = write_atomically(Path::new("/"), b"END\n").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let mut w = StatusWriter::new(10);
        let report = w.write(Path::new("/"), b"END\n").unwrap();
        assert!(report.contains("names no file"), "{report}");
    }
}
