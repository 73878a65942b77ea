//! Log directories with multilog's layout, so that daemontools and socklog users
//! recognise every file and `tai64nlocal` reads them.
//!
//! A directory (created 0700) holds `lock` (0600, locked exclusively while a process
//! writes), `state` (0644; the shipping state, see `ship.rs`), `current` (0644 while
//! written, 0744 once cleanly finished) and rotated files `@<TAI64N>.s` (0744; `.u` for
//! a `current` found unfinished at start, after a crash). Rotation follows
//! [`multilog::Plan`]: at a line boundary once `current` holds `size − 2000` bytes, never
//! past `size`; at most `count − 1` rotated files are kept (the oldest go first; with
//! shipping on, files not yet shipped are never removed). A rotation renames `current`
//! to `previous` and creates a new `current` on the writer's thread; a finisher thread
//! (`finish.rs`) then fsyncs `previous`, marks it 0744, renames it to its `@` name and
//! fsyncs the directory, as multilog's `fullcurrent` does, while the writer goes on. At
//! most one file is being finished: a rotation waits for the previous one.
//!
//! One [`LogDir`] per directory per process ([`shared`]): a reload that keeps the
//! directory keeps its lock and its open `current`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::SystemTime;

mod finish;
mod ship;
#[cfg(test)]
mod tests;

use finish::Finisher;
pub use ship::Ship;
use ship::Shipper;

use crate::format::multilog::{self, Plan, Step};
use crate::format::tai64n;

/// What a log directory is asked to be.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Options {
    /// `logdir.size` (multilog's `s`, clamped to 4096…16777215).
    pub size: u64,
    /// `logdir.count` (multilog's `n`, at least 2; `current` counts).
    pub count: u32,
    /// `logdir.stamp`: `@<TAI64N> ` before each line, as `multilog t`.
    pub stamp: bool,
    /// `logdir.ship` and `logdir.ship.timeout`.
    pub ship: Option<Ship>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            size: multilog::DEFAULT_SIZE,
            count: multilog::DEFAULT_COUNT,
            stamp: false,
            ship: None,
        }
    }
}

/// Why a log directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed on a file of the directory.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another process writes to it.
    #[error("log directory {0} is locked by another process (its lock file is held)")]
    Locked(PathBuf),
    /// Something in the way is not what it must be.
    #[error("{0}")]
    Shape(String),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// An open log directory.
pub struct LogDir {
    dir: PathBuf,
    /// Finishes rotated files; holds the directory's descriptor.
    finisher: Finisher,
    /// Held for the flock.
    _lock: File,
    current: File,
    /// Bytes in `current`.
    bytes: u64,
    plan: Plan,
    stamp: bool,
    /// The next byte written starts a line.
    at_line_start: bool,
    /// `current` was renamed but no new one could be created (a full disk): the next
    /// write creates it first, never appending to the renamed file.
    missing_current: bool,
    /// Stamped copy of what is being written.
    scratch: Vec<u8>,
    /// Owner to give files created as root in a directory owned by someone else.
    chown_to: Option<(u32, u32)>,
    /// Ships rotated files (`logdir.ship`).
    shipper: Option<Shipper>,
    /// Given to a shipper started later.
    waker: Option<crate::backend::Waker>,
}

impl LogDir {
    /// Opens (creating if needed) and locks `dir`, recovering from a crash as multilog
    /// does: a `previous` left mid-rotation, then a `current` without its execute bit,
    /// become `@<now>.u`.
    pub fn open(dir: &Path, options: &Options) -> Result<Self, Error> {
        match std::fs::symlink_metadata(dir) {
            Ok(m) if !m.is_dir() && !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) => {
                return Err(Error::Shape(format!(
                    "log directory {} is not a directory",
                    dir.display()
                )))
            }
            Ok(_) => {}
            Err(_) => {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(dir)
                    .map_err(io("cannot create log directory", dir))?;
            }
        }
        let meta = std::fs::metadata(dir).map_err(io("cannot read log directory", dir))?;
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 && meta.uid() != euid {
            return Err(Error::Shape(format!(
                "log directory {} is owned by {}, not by the user ferrosocks runs as ({}): make it that user's, as multilog's under setuidgid",
                dir.display(),
                user(meta.uid()),
                user(euid)
            )));
        }
        let chown_to = (euid == 0 && meta.uid() != 0).then(|| (meta.uid(), meta.gid()));
        let dirfd = File::open(dir).map_err(io("cannot open log directory", dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io("cannot open", &lock_path))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(Error::Locked(dir.to_path_buf()));
            }
            return Err(io("cannot lock", &lock_path)(e));
        }
        own(&lock, chown_to);
        let mut me = Self {
            dir: dir.to_path_buf(),
            current: lock.try_clone().map_err(io("cannot open", &lock_path))?,
            finisher: Finisher::new(dir, dirfd),
            _lock: lock,
            bytes: 0,
            plan: Plan::new(options.size, options.count),
            stamp: options.stamp,
            at_line_start: true,
            missing_current: false,
            scratch: Vec::new(),
            chown_to,
            shipper: None,
            waker: None,
        };
        me.recover()?;
        me.set_options(options);
        Ok(me)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Whether lines get a TAI64N stamp.
    pub fn stamps(&self) -> bool {
        self.stamp
    }

    /// Applies new limits and stamping from now on.
    pub fn set_options(&mut self, options: &Options) {
        self.plan = Plan::new(options.size, options.count);
        self.stamp = options.stamp;
        match (&options.ship, &self.shipper) {
            (None, _) => self.shipper = None,
            (Some(ship), Some(s)) => s.set(ship.clone()),
            (Some(ship), None) => {
                let s = Shipper::start(&self.dir, ship.clone());
                if let Some(w) = &self.waker {
                    s.set_waker(w.clone());
                }
                self.shipper = Some(s);
            }
        }
    }

    /// Wakes `w` when the shipping thread has something to report.
    pub(crate) fn set_waker(&mut self, w: crate::backend::Waker) {
        self.waker = Some(w.clone());
        self.finisher.set_waker(w.clone());
        if let Some(s) = &self.shipper {
            s.set_waker(w);
        }
    }

    /// Reports of the finishing and shipping threads for the error log (failures,
    /// recoveries).
    pub fn take_notes(&mut self) -> Vec<String> {
        let mut notes = self.finisher.take_notes();
        if let Some(s) = &self.shipper {
            notes.extend(s.take_notes());
        }
        notes
    }

    /// multilog's start: a `previous` left by a crash mid-rotation (renamed from
    /// `current`, maybe not yet on disk) is finished as `.u`, first (it is older); then
    /// a cleanly finished `current` (mode 0744) is continued, an unfinished one is
    /// finished as `.u`.
    fn recover(&mut self) -> Result<(), Error> {
        let current = self.dir.join("current");
        let previous = self.dir.join("previous");
        if std::fs::symlink_metadata(&previous).is_ok_and(|m| m.is_file()) {
            if let Ok(f) = File::open(&previous) {
                let _ = f.sync_all();
            }
            let _ = std::fs::set_permissions(&previous, std::fs::Permissions::from_mode(0o744));
            self.finisher.rename_now(&previous, "u")?;
        }
        match std::fs::symlink_metadata(&current) {
            Ok(m) if m.is_dir() => {
                return Err(Error::Shape(format!(
                    "{} is a directory, not a log file",
                    current.display()
                )))
            }
            Ok(m) if !m.is_file() => {
                return Err(Error::Shape(format!(
                    "{} is not a regular file",
                    current.display()
                )))
            }
            Ok(m) if m.permissions().mode() & 0o100 != 0 => {
                let f = OpenOptions::new()
                    .append(true)
                    .open(&current)
                    .map_err(io("cannot open", &current))?;
                f.set_permissions(std::fs::Permissions::from_mode(0o644))
                    .map_err(io("cannot chmod", &current))?;
                self.bytes = m.len();
                self.at_line_start = !matches!(last_byte(&f, m.len()), Some(b) if b != b'\n');
                self.current = f;
            }
            Ok(_) => {
                if let Ok(f) = File::open(&current) {
                    let _ = f.sync_all();
                }
                let _ = std::fs::set_permissions(&current, std::fs::Permissions::from_mode(0o744));
                self.finisher.rename_now(&current, "u")?;
                self.create_current()?;
            }
            Err(_) => self.create_current()?,
        }
        let state = self.dir.join("state");
        if !state.exists() {
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(&state)
                .map_err(io("cannot create", &state))?;
            own(&f, self.chown_to);
        }
        self.sync_dir()
    }

    fn create_current(&mut self) -> Result<(), Error> {
        let path = self.dir.join("current");
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(&path)
            .map_err(io("cannot create", &path))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io("cannot chmod", &path))?;
        own(&f, self.chown_to);
        self.current = f;
        self.bytes = 0;
        self.at_line_start = true;
        self.missing_current = false;
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), Error> {
        self.finisher.sync_dir()
    }

    /// Rotates `current` now (if it holds anything), multilog's `fullcurrent` with its
    /// slow half on the finisher's thread: once the previous rotated file is finished,
    /// `current` is renamed `previous` and a new `current` created; the finisher then
    /// fsyncs `previous`, marks it 0744, renames it `@<TAI64N>.s`, fsyncs the directory,
    /// removes the oldest files and wakes the shipper.
    pub fn rotate(&mut self) -> Result<(), Error> {
        if self.bytes == 0 || self.missing_current {
            return Ok(());
        }
        self.finisher.ready()?;
        let current = self.dir.join("current");
        let file = self
            .current
            .try_clone()
            .map_err(io("cannot dup", &current))?;
        std::fs::rename(&current, self.dir.join("previous"))
            .map_err(io("cannot rename to previous", &current))?;
        self.missing_current = true;
        self.finisher.hand_over(finish::Job {
            file,
            plan: self.plan,
            ship: self.shipper.as_ref().map(Shipper::shared),
        });
        self.create_current()
    }

    /// Appends `data` (lines, the last possibly unfinished: the next write continues
    /// it), stamping each line that starts here with `time` when stamping is on, and
    /// rotating as multilog would.
    pub fn write(&mut self, data: &[u8], time: SystemTime) -> Result<(), Error> {
        if !self.stamp {
            return self.write_raw(data);
        }
        let label = tai64n::label(time);
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let mut at_start = self.at_line_start;
        for piece in data.split_inclusive(|&b| b == b'\n') {
            if at_start {
                scratch.extend_from_slice(&label);
                scratch.push(b' ');
            }
            scratch.extend_from_slice(piece);
            at_start = piece.ends_with(b"\n");
        }
        let r = self.write_raw(&scratch);
        self.scratch = scratch;
        r
    }

    /// Appends whole lines, each stamped (when stamping is on) with its own time: one
    /// buffer, written in as few writes as rotation allows.
    pub fn write_lines<'a>(
        &mut self,
        lines: impl Iterator<Item = (&'a [u8], SystemTime)>,
    ) -> Result<(), Error> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let mut at_start = self.at_line_start;
        for (line, time) in lines {
            if self.stamp && at_start {
                scratch.extend_from_slice(&tai64n::label(time));
                scratch.push(b' ');
            }
            scratch.extend_from_slice(line);
            at_start = line.ends_with(b"\n");
        }
        let r = self.write_raw(&scratch);
        self.scratch = scratch;
        r
    }

    /// Appends bytes that are already stamped: whole runs of lines in one write each,
    /// rotating at the line boundaries multilog's rule picks.
    fn write_raw(&mut self, data: &[u8]) -> Result<(), Error> {
        let mut run_start = 0;
        let mut pos = 0;
        while pos < data.len() {
            let line_end = data[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |i| pos + i + 1);
            let mut at = pos;
            while at < line_end {
                let held = self.bytes + (at - run_start) as u64;
                match self.plan.step(held, line_end - at) {
                    Step::Rotate => {
                        self.put(&data[run_start..at])?;
                        run_start = at;
                        self.rotate()?;
                    }
                    Step::Write(n) => at += n,
                }
            }
            pos = line_end;
            let ended = data[line_end - 1] == b'\n';
            if ended && self.plan.full(self.bytes + (pos - run_start) as u64) {
                self.put(&data[run_start..pos])?;
                run_start = pos;
                self.rotate()?;
            }
        }
        self.put(&data[run_start..])?;
        if let Some(&b) = data.last() {
            self.at_line_start = b == b'\n';
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.missing_current {
            self.create_current()?;
            self.sync_dir()?;
        }
        let r = self.current.write_all(bytes);
        if let Err(e) = r {
            // What was written counts; a partial write leaves the size unknown.
            self.bytes = self.current.metadata().map_or(self.bytes, |m| m.len());
            return Err(io("cannot write to", &self.dir.join("current"))(e));
        }
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Ends cleanly: `current` fsynced and marked complete (0744), as multilog at EOF.
    pub fn close(&mut self) -> Result<(), Error> {
        // The file being finished is done first (a clean stop leaves no `previous`).
        let finished = self.finisher.ready();
        if self.missing_current {
            return finished;
        }
        let current = self.dir.join("current");
        if !self.at_line_start {
            // multilog ends a partial last line with a newline.
            self.put(b"\n")?;
            self.at_line_start = true;
        }
        self.current
            .sync_all()
            .map_err(io("cannot fsync", &current))?;
        self.current
            .set_permissions(std::fs::Permissions::from_mode(0o744))
            .map_err(io("cannot chmod", &current))?;
        finished
    }
}

/// `uid 998 (log)`: a uid and, if it has one, its user's name.
fn user(uid: u32) -> String {
    // SAFETY: passwd is plain C data, for which all zeroes is a valid value.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into `pw` and `buf`, both ours and as long as told.
    let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
    if r != 0 || found.is_null() || pw.pw_name.is_null() {
        return format!("uid {uid}");
    }
    // SAFETY: getpwuid_r succeeded: pw_name points at a NUL-terminated name in `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
    format!("uid {uid} ({})", name.to_string_lossy())
}

/// The last byte of an open file of length `len`.
fn last_byte(f: &File, len: u64) -> Option<u8> {
    use std::os::unix::fs::FileExt;
    let mut b = [0u8; 1];
    (len > 0 && f.read_at(&mut b, len - 1).ok()? == 1).then_some(b[0])
}

/// Gives a file created as root the directory owner's ids.
fn own(f: &File, to: Option<(u32, u32)>) {
    if let Some((uid, gid)) = to {
        // SAFETY: fchown on a descriptor we own.
        unsafe {
            libc::fchown(f.as_raw_fd(), uid, gid);
        }
    }
}

/// A log directory shared by every sink of the process that writes to it.
pub type Shared = Arc<Mutex<LogDir>>;

type Registry = Mutex<HashMap<PathBuf, Weak<Mutex<LogDir>>>>;

fn registry() -> &'static Registry {
    static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// The process's log directory at `dir`, opened if no sink holds it yet; the options
/// apply from now on.
pub fn shared(dir: &Path, options: &Options) -> Result<Shared, Error> {
    let mut reg = registry().lock().unwrap_or_else(PoisonError::into_inner);
    reg.retain(|_, w| w.strong_count() > 0);
    if let Some(d) = reg.get(dir).and_then(Weak::upgrade) {
        d.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_options(options);
        return Ok(d);
    }
    let d = Arc::new(Mutex::new(LogDir::open(dir, options)?));
    reg.insert(dir.to_path_buf(), Arc::downgrade(&d));
    Ok(d)
}

impl Drop for LogDir {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
