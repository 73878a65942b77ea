//! The rights a daemon keeps after it drops them: what Dante does with
//! `user.privileged`.
//!
//! A server started as root binds its ports, then runs as `user.unprivileged`. Some of
//! its chores still need the rights it had: reopening a log file that logrotate
//! recreated in a directory only root may write, reading a configuration or password
//! file only root may read on SIGHUP, checking a system user's password in
//! `/etc/shadow`, and removing the pid file at exit. Before it drops them, the process
//! forks a small helper ([`spawn`]) that keeps them (as `user.privileged` when that is
//! set) and does exactly those operations when asked over a socket pair, handing back
//! the opened descriptor. The helper opens only the files the configuration names (it
//! reads the configuration itself), so a compromised server gains nothing beyond them.
//!
//! [`Privileged`] is the one handle the rest of the server uses for these operations:
//! direct (the process does them itself, with its own rights) when it never dropped
//! them, through the helper when it did.

mod helper;
mod wire;

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

pub use helper::{spawn, HelperSpec};

use crate::passwd::Verdict;

/// Does the privileged operations: directly, or through the helper.
#[derive(Clone)]
pub struct Privileged {
    helper: Option<Arc<helper::Client>>,
}

impl std::fmt::Debug for Privileged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.helper {
            None => f.write_str("Privileged(direct)"),
            Some(c) => write!(f, "Privileged(helper pid {})", c.pid()),
        }
    }
}

impl Privileged {
    /// The process does the operations itself, with its own rights.
    pub fn direct() -> Self {
        Self { helper: None }
    }

    /// Whether a helper does them.
    pub fn has_helper(&self) -> bool {
        self.helper.is_some()
    }

    /// Reads a file the configuration names (the configuration, the password file).
    pub fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let mut file = match &self.helper {
            None => File::open(path)?,
            Some(c) => c.open(&wire::Request::Read(path))?,
        };
        let mut out = Vec::new();
        file.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Opens a log file for appending, creating it.
    pub fn open_append(&self, path: &Path) -> std::io::Result<File> {
        match &self.helper {
            None => logsys::open_append(path),
            Some(c) => c.open(&wire::Request::Append(path)),
        }
    }

    /// Checks a system user's password. Slow on purpose (crypt): call it off the async
    /// workers.
    pub fn check_system_user(&self, user: &[u8], password: &[u8]) -> Verdict {
        match &self.helper {
            None => crate::sysusers::check(user, password),
            Some(c) => c.check_user(user, password),
        }
    }

    /// Whether system users' passwords can be checked (shadow entries readable).
    pub fn can_check_system_users(&self) -> bool {
        self.has_helper() || crate::sysusers::can_read_shadow()
    }

    /// Tells the helper to read the configuration again, to learn the files a reload
    /// will name.
    pub fn refresh(&self) -> std::io::Result<()> {
        match &self.helper {
            None => Ok(()),
            Some(c) => c.refresh(),
        }
    }

    /// At exit: the helper removes the pid file and the files it was told of
    /// ([`HelperSpec::remove`]) and ends, and this waits for it (so they are gone when
    /// the process is). Without a helper, removes `pidfile` and `remove` itself.
    pub fn finish(&self, pidfile: Option<&Path>, remove: &[&Path]) -> Result<(), String> {
        if let Some(c) = &self.helper {
            return c.finish();
        }
        let mut errors = Vec::new();
        for p in remove.iter().chain(pidfile.as_slice()) {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    errors.push(format!("cannot remove {}: {e}", p.display()));
                }
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

impl logsys::FileOpener for Privileged {
    fn open_append(&self, path: &Path) -> std::io::Result<File> {
        Self::open_append(self, path)
    }
}
