//! Finishing rotated files off the writer's thread, in multilog's order.
//!
//! A rotation on the writer's thread is only a rename of `current` to `previous`
//! (multilog's name for a file being finished) and a new `current`: the writer goes on
//! at once. This module's thread then does what makes `previous` a rotated file:
//! fsync it, mark it complete (0744), rename it to `@<TAI64N>.s` (the name appears only
//! once its bytes are on disk, multilog's guarantee), fsync the directory, remove the
//! oldest files beyond `logdir.count` and wake the shipper. At most one file is being
//! finished: a rotation waits only while the previous `previous` is not done yet
//! ([`Finisher::ready`]), which is also where a finish that failed is tried again (on
//! the writer's thread, so that the failure reaches the writer as an error).
//!
//! After a crash a `previous` may be left: [`super::LogDir::open`] finishes it as `.u`
//! before the `current` of that time, as multilog's start does.
//!
//! The thread starts with the first rotation and ends after [`IDLE`] without one (a
//! collector holds many directories that rotate seldom).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::ship::{self, Shipper};
use super::{io, Error};
use crate::format::multilog::Plan;
use crate::format::tai64n;

/// A finisher thread with nothing to do for this long ends (the next rotation starts
/// another).
pub(crate) const IDLE: Duration = Duration::from_secs(10);

/// One `previous` to finish.
pub(crate) struct Job {
    /// `previous`, open (the descriptor `current` was written through).
    pub(crate) file: File,
    /// The limits in force when it was rotated.
    pub(crate) plan: Plan,
    /// The shipping thread to keep unshipped files for and to wake.
    pub(crate) ship: Option<Arc<ship::Shared>>,
}

struct State {
    /// Handed over, not yet taken by the thread.
    job: Option<Job>,
    /// A `previous` exists and is queued or being finished.
    busy: bool,
    /// The last finish failed: `previous` is still there, with its job.
    failed: Option<Job>,
    /// A thread serves this directory.
    running: bool,
    stop: bool,
    /// The last label given, so that two files finished in one microsecond differ.
    last_label: [u8; tai64n::LEN],
    /// Reports for the error log.
    notes: Vec<String>,
    waker: Option<crate::backend::Waker>,
}

struct Inner {
    dir: PathBuf,
    dirfd: File,
    state: Mutex<State>,
    /// Signals a new job (to the thread) and a finished one (to the writer).
    changed: Condvar,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A log directory's finisher.
pub(crate) struct Finisher {
    inner: Arc<Inner>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Finisher {
    /// For the directory `dir` (open as `dirfd`); no thread yet.
    pub(crate) fn new(dir: &Path, dirfd: File) -> Self {
        Self {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                dirfd,
                state: Mutex::new(State {
                    job: None,
                    busy: false,
                    failed: None,
                    running: false,
                    stop: false,
                    last_label: [0; tai64n::LEN],
                    notes: Vec::new(),
                    waker: None,
                }),
                changed: Condvar::new(),
            }),
            thread: Mutex::new(None),
        }
    }

    /// Gives `file` its `@<TAI64N>.code` name now, on the caller's thread (start-up
    /// recovery); returns the name.
    pub(crate) fn rename_now(&self, file: &Path, code: &str) -> Result<String, Error> {
        self.inner.rename(file, code)
    }

    /// Fsyncs the directory.
    pub(crate) fn sync_dir(&self) -> Result<(), Error> {
        self.inner.sync_dir()
    }

    /// Waits until no `previous` is being finished, so that `current` may be renamed to
    /// it; a finish that failed is tried again here, and its error returned if it fails
    /// again (`previous` then stays, and so does `current`).
    pub(crate) fn ready(&self) -> Result<(), Error> {
        let mut s = lock(&self.inner.state);
        while s.busy {
            s = self
                .inner
                .changed
                .wait(s)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let Some(job) = s.failed.take() else {
            return Ok(());
        };
        drop(s);
        match self.inner.finish(&job) {
            Ok(()) => {
                self.inner.after(&job);
                Ok(())
            }
            Err(e) => {
                lock(&self.inner.state).failed = Some(job);
                Err(e)
            }
        }
    }

    /// Hands `previous` over; the writer goes on. Call [`Self::ready`] first.
    pub(crate) fn hand_over(&self, job: Job) {
        let mut s = lock(&self.inner.state);
        s.busy = true;
        s.job = Some(job);
        if !s.running {
            let inner = Arc::clone(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("logdir-finish".into())
                .spawn(move || inner.run());
            match spawned {
                Ok(t) => {
                    s.running = true;
                    let old = self
                        .thread
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .replace(t);
                    drop(s);
                    // One that had ended for idleness.
                    if let Some(old) = old {
                        let _ = old.join();
                    }
                    return;
                }
                Err(e) => {
                    // No thread: finished here, as before.
                    let job = s.job.take().expect("just set");
                    s.busy = false;
                    drop(s);
                    self.inner.note(format!(
                        "log directory {}: cannot start the thread that finishes rotated files ({e}); finishing them on the writer's thread",
                        self.inner.dir.display()
                    ));
                    match self.inner.finish(&job) {
                        Ok(()) => self.inner.after(&job),
                        Err(e) => {
                            self.inner.note(e.to_string());
                            lock(&self.inner.state).failed = Some(job);
                        }
                    }
                    return;
                }
            }
        }
        self.inner.changed.notify_all();
    }

    /// Wakes `w` when there are reports.
    pub(crate) fn set_waker(&self, w: crate::backend::Waker) {
        let mut s = lock(&self.inner.state);
        if !s.notes.is_empty() {
            w();
        }
        s.waker = Some(w);
    }

    /// Reports for the error log.
    pub(crate) fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.inner.state).notes)
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        // A job still queued is finished before the thread ends.
        lock(&self.inner.state).stop = true;
        self.inner.changed.notify_all();
        let t = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

impl Inner {
    fn note(&self, text: String) {
        let mut s = lock(&self.state);
        s.notes.push(text);
        if let Some(w) = s.waker.clone() {
            drop(s);
            w();
        }
    }

    fn sync_dir(&self) -> Result<(), Error> {
        self.dirfd
            .sync_all()
            .map_err(io("cannot fsync log directory", &self.dir))
    }

    /// The thread: finishes what is handed over; ends when stopped or idle.
    fn run(&self) {
        loop {
            let mut s = lock(&self.state);
            while s.job.is_none() && !s.stop {
                let (next, waited) = self
                    .changed
                    .wait_timeout(s, IDLE)
                    .unwrap_or_else(PoisonError::into_inner);
                s = next;
                if waited.timed_out() && s.job.is_none() {
                    s.running = false;
                    return;
                }
            }
            let Some(job) = s.job.take() else {
                s.running = false;
                return;
            };
            drop(s);
            let r = self.finish(&job);
            let failed = match r {
                Ok(()) => {
                    self.after(&job);
                    None
                }
                Err(e) => {
                    self.note(format!(
                        "log directory {}: cannot finish the rotated file: {e}; it stays as previous and is tried again at the next rotation",
                        self.dir.display()
                    ));
                    Some(job)
                }
            };
            let mut s = lock(&self.state);
            s.failed = failed;
            s.busy = false;
            drop(s);
            self.changed.notify_all();
        }
    }

    /// `previous` → `@<TAI64N>.s`: fsync, 0744, rename, fsync of the directory.
    fn finish(&self, job: &Job) -> Result<(), Error> {
        use std::os::unix::fs::PermissionsExt;
        let previous = self.dir.join("previous");
        job.file.sync_all().map_err(io("cannot fsync", &previous))?;
        job.file
            .set_permissions(std::fs::Permissions::from_mode(0o744))
            .map_err(io("cannot chmod", &previous))?;
        self.rename(&previous, "s")?;
        self.sync_dir()
    }

    /// What follows a finish: `logdir.count` applied, the shipper woken.
    fn after(&self, job: &Job) {
        expire(&self.dir, &job.plan, job.ship.as_deref());
        if let Some(s) = &job.ship {
            s.kick();
        }
    }

    /// Gives `file` its `@<TAI64N>.code` name (a rename: the name appears only once the
    /// file is complete).
    fn rename(&self, file: &Path, code: &str) -> Result<String, Error> {
        let label = {
            let mut s = lock(&self.state);
            let mut label = tai64n::label(SystemTime::now());
            if label <= s.last_label {
                label = tai64n::label(
                    tai64n::parse(&s.last_label).unwrap_or(SystemTime::UNIX_EPOCH)
                        + Duration::from_micros(1),
                );
            }
            s.last_label = label;
            label
        };
        let name = format!("{}.{code}", String::from_utf8_lossy(&label));
        std::fs::rename(file, self.dir.join(&name)).map_err(io("cannot rename", file))?;
        Ok(name)
    }
}

/// Removes the oldest rotated files of `dir` beyond `count − 1`, keeping those the
/// shipper has not shipped.
pub(crate) fn expire(dir: &Path, plan: &Plan, ship: Option<&ship::Shared>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let keep = |n: &str| ship.is_some_and(|s| Shipper::keeps(s, n));
    for n in plan.expired(&refs, keep) {
        let _ = std::fs::remove_file(dir.join(n));
    }
}
