//! The privileged helper process: forked before the server drops its rights, it serves
//! one request at a time over a SOCK_SEQPACKET socket pair until the server exits.
#![allow(unsafe_code)]

use std::collections::HashSet;
use std::fs::File;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::unistd::{ForkResult, Pid};

use super::wire::{decode_reply, decode_request, Reply, Request, MAX_MESSAGE};
use super::Privileged;
use crate::passwd::Verdict;

/// What the helper is told when it starts.
#[derive(Debug, Clone, Default)]
pub struct HelperSpec {
    /// The configuration file (`None`: the embedded default); the helper reads it to
    /// learn which files it may open, again on every reload.
    pub config: Option<PathBuf>,
    /// The pid file, removed by the helper when the server exits.
    pub pidfile: Option<PathBuf>,
    /// Files the server made before dropping privileges (the management socket), removed
    /// by the helper when the server exits.
    pub remove: Vec<PathBuf>,
    /// `user.privileged`: the helper runs as this user (default: stays root).
    pub user: Option<String>,
    /// Descriptors the helper must not keep (the listening sockets).
    pub close: Vec<RawFd>,
}

/// Forks the helper. Call it while the process has one thread (before the log writers
/// and the runtime start), after binding, detaching and writing the pid file, and
/// before dropping privileges.
pub fn spawn(spec: HelperSpec) -> Result<Privileged, String> {
    let threads = std::fs::read_dir("/proc/self/task").map_or(1, Iterator::count);
    if threads != 1 {
        return Err(format!(
            "cannot start the privileged helper: {threads} threads are running (it must be forked first)"
        ));
    }
    let (mine, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| format!("cannot create the privileged helper's socket pair: {e}"))?;
    // Whatever stdio holds would be written twice, once by each process.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let server_pid = std::process::id();
    // SAFETY: the process has one thread (checked above), so the child may do anything
    // the parent could; it never returns from `serve`.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(format!("cannot fork the privileged helper: {e}")),
        Ok(ForkResult::Child) => {
            drop(mine);
            for fd in &spec.close {
                // SAFETY: closing descriptors this child inherited and will not use.
                unsafe { libc::close(*fd) };
            }
            let code = serve(&theirs, &spec, server_pid);
            // SAFETY: _exit(2) ends the child without running the parent's exit handlers
            // or flushing its copies of stdio buffers.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(theirs);
            Ok(Privileged {
                helper: Some(std::sync::Arc::new(Client {
                    sock: Mutex::new(Some(mine)),
                    pid: child,
                })),
            })
        }
    }
}

/// The server's end of the socket pair. One request at a time.
pub(crate) struct Client {
    /// `None` once the helper has been told to exit.
    sock: Mutex<Option<OwnedFd>>,
    pid: Pid,
}

fn gone() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "the privileged helper has exited",
    )
}

impl Client {
    pub(crate) fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Sends `req`, returns the reply and the descriptor that came with it.
    fn call(&self, req: &Request<'_>) -> std::io::Result<(Reply, Option<OwnedFd>)> {
        let guard = self.sock.lock().unwrap_or_else(PoisonError::into_inner);
        let sock = guard.as_ref().ok_or_else(gone)?;
        let msg = req.encode();
        sendmsg::<()>(
            sock.as_raw_fd(),
            &[IoSlice::new(&msg)],
            &[],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| match e {
            nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET => gone(),
            e => std::io::Error::from(e),
        })?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        let (len, fd) = receive(sock.as_raw_fd(), &mut buf)?;
        if len == 0 {
            return Err(gone());
        }
        let reply = decode_reply(&buf[..len])
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok((reply, fd))
    }

    /// Asks for a descriptor (`Read` or `Append`).
    pub(crate) fn open(&self, req: &Request<'_>) -> std::io::Result<File> {
        match self.call(req)? {
            (Reply::Done, Some(fd)) => Ok(File::from(fd)),
            (Reply::Failed { errno, message }, _) => Err(std::io::Error::new(
                std::io::Error::from_raw_os_error(errno).kind(),
                message,
            )),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the privileged helper answered without a descriptor",
            )),
        }
    }

    pub(crate) fn check_user(&self, user: &[u8], password: &[u8]) -> Verdict {
        match self.call(&Request::CheckUser { user, password }) {
            Ok((Reply::Verdict(v), _)) => v,
            _ => Verdict::Unavailable,
        }
    }

    pub(crate) fn refresh(&self) -> std::io::Result<()> {
        match self.call(&Request::Refresh)? {
            (Reply::Done, _) => Ok(()),
            (Reply::Failed { message, .. }, _) => Err(std::io::Error::other(message)),
            _ => Err(std::io::Error::other("unexpected reply")),
        }
    }

    /// Tells the helper to remove the pid file and end, and waits for it.
    pub(crate) fn finish(&self) -> Result<(), String> {
        let answer = self.call(&Request::Exit);
        drop(
            self.sock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let _ = nix::sys::wait::waitpid(self.pid, None);
        match answer {
            Ok((Reply::Done, _)) => Ok(()),
            Ok((Reply::Failed { message, .. }, _)) => Err(message),
            Ok(_) => Err("the privileged helper answered oddly at exit".into()),
            Err(e) => Err(format!("the privileged helper could not finish: {e}")),
        }
    }
}

/// One message and the descriptor that came with it, if any.
fn receive(sock: RawFd, buf: &mut [u8]) -> std::io::Result<(usize, Option<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fd = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for raw in fds {
                // SAFETY: the kernel just installed this descriptor for us; we own it.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                if fd.is_none() {
                    fd = Some(owned);
                }
            }
        }
    }
    Ok((msg.bytes, fd))
}

/// The files the helper may open: those the configuration names, learnt from every
/// version of it read since start-up.
#[derive(Debug, Default)]
struct Policy {
    read: HashSet<PathBuf>,
    append: HashSet<PathBuf>,
    system_users: bool,
}

impl Policy {
    /// Reads the configuration and adds what it names. A file that does not parse adds
    /// only itself (the server will report its errors and keep what runs).
    fn learn(&mut self, config: Option<&Path>) {
        if let Some(p) = config {
            self.read.insert(p.to_path_buf());
        }
        let Ok(parsed) = crate::load_config(config, &Privileged::direct()) else {
            return;
        };
        let cfg = parsed.config;
        if let Some(p) = &cfg.passwordfile {
            self.read.insert(p.clone());
        }
        self.system_users |= cfg.passwordfile.is_none() && crate::uses_username(&cfg);
        if let Ok(log) = crate::logging::log_config(&cfg) {
            let subsystem_files = log.subsystems.iter().filter_map(|s| s.file.clone());
            let sink_files =
                log.logoutput
                    .iter()
                    .chain(&log.errorlog)
                    .filter_map(|s| match &s.target {
                        logsys::Target::File(p) => Some(p.clone()),
                        _ => None,
                    });
            self.append.extend(sink_files.chain(subsystem_files));
        }
    }
}

fn refused(path: &Path) -> Reply {
    Reply::Failed {
        errno: libc::EACCES,
        message: format!(
            "{}: the privileged helper opens only the files the configuration names",
            path.display()
        ),
    }
}

fn failed(path: &Path, e: &std::io::Error) -> Reply {
    Reply::Failed {
        errno: e.raw_os_error().unwrap_or(libc::EIO),
        message: format!("{}: {e}", path.display()),
    }
}

/// The helper's life: serve until told to exit or until the server's end closes.
fn serve(sock: &OwnedFd, spec: &HelperSpec, server_pid: u32) -> i32 {
    // The signals an operator sends the server (or a terminal sends the process group)
    // are the server's business: the helper ends when the server does.
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPIPE,
    ] {
        // SAFETY: setting a signal's disposition to "ignore" in a single-threaded child.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    // SAFETY: PR_SET_NAME with a NUL-terminated name of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"ferrosocks-priv".as_ptr(), 0, 0, 0) };
    if let Some(user) = &spec.user {
        if let Err(e) = become_user(user) {
            eprintln!("ferrosocks: privileged helper: {e}");
            return 1;
        }
    }
    let mut policy = Policy::default();
    policy.learn(spec.config.as_deref());
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let (len, _) = match receive(sock.as_raw_fd(), &mut buf) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if len == 0 {
            break;
        }
        let (reply, fd) = match decode_request(&buf[..len]) {
            Err(e) => (
                Reply::Failed {
                    errno: libc::EINVAL,
                    message: e.to_string(),
                },
                None,
            ),
            Ok(Request::Read(p)) if policy.read.contains(p) => match File::open(p) {
                Ok(f) => (Reply::Done, Some(OwnedFd::from(f))),
                Err(e) => (failed(p, &e), None),
            },
            Ok(Request::Append(p)) if policy.append.contains(p) => match logsys::open_append(p) {
                Ok(f) => (Reply::Done, Some(OwnedFd::from(f))),
                Err(e) => (failed(p, &e), None),
            },
            Ok(Request::Read(p) | Request::Append(p)) => (refused(p), None),
            Ok(Request::CheckUser { user, password }) if policy.system_users => {
                (Reply::Verdict(crate::sysusers::check(user, password)), None)
            }
            Ok(Request::CheckUser { .. }) => (Reply::Verdict(Verdict::Unavailable), None),
            Ok(Request::Refresh) => {
                policy.learn(spec.config.as_deref());
                (Reply::Done, None)
            }
            Ok(Request::Exit) => {
                remove_all(&spec.remove);
                let reply = remove_pidfile(spec.pidfile.as_deref(), server_pid);
                let _ = send(sock, &reply, None);
                return 0;
            }
        };
        if send(sock, &reply, fd.as_ref()).is_err() {
            break;
        }
    }
    // The server ended without saying so (killed): clean up after it all the same.
    remove_all(&spec.remove);
    let _ = remove_pidfile(spec.pidfile.as_deref(), server_pid);
    0
}

fn send(sock: &OwnedFd, reply: &Reply, fd: Option<&OwnedFd>) -> nix::Result<usize> {
    let msg = reply.encode();
    let raw: Vec<RawFd> = fd.map(AsRawFd::as_raw_fd).into_iter().collect();
    let cmsgs: Vec<ControlMessage<'_>> = if raw.is_empty() {
        Vec::new()
    } else {
        vec![ControlMessage::ScmRights(&raw)]
    };
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&msg)],
        &cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
}

/// Removes what the server made before its drop (already gone is fine).
fn remove_all(paths: &[PathBuf]) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

/// Removes the pid file if it still names the server (a newer instance may have
/// written its own since).
fn remove_pidfile(path: Option<&Path>, server_pid: u32) -> Reply {
    let Some(path) = path else {
        return Reply::Done;
    };
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim() == server_pid.to_string() => match std::fs::remove_file(path) {
            Ok(()) => Reply::Done,
            Err(e) => Reply::Failed {
                errno: e.raw_os_error().unwrap_or(libc::EIO),
                message: format!("cannot remove the pid file {}: {e}", path.display()),
            },
        },
        Ok(_) => Reply::Done,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Reply::Done,
        Err(e) => Reply::Failed {
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            message: format!("cannot read the pid file {}: {e}", path.display()),
        },
    }
}

/// Runs the helper as `user.privileged` (when that is not root).
fn become_user(user: &str) -> Result<(), String> {
    use nix::unistd::{initgroups, setgid, setuid, User};
    let u = User::from_name(user)
        .map_err(|e| format!("user.privileged: cannot look up \"{user}\": {e}"))?
        .ok_or_else(|| format!("user.privileged: no user \"{user}\""))?;
    if u.uid.is_root() {
        return Ok(());
    }
    // Its supplementary groups too: group shadow is what lets it check passwords.
    let name = std::ffi::CString::new(user).map_err(|e| format!("user.privileged: {e}"))?;
    initgroups(&name, u.gid).map_err(|e| format!("initgroups({user}): {e}"))?;
    setgid(u.gid).map_err(|e| format!("setgid({}): {e}", u.gid))?;
    setuid(u.uid).map_err(|e| format!("setuid({}): {e}", u.uid))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_is_what_every_version_of_the_configuration_names() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("sockd.conf");
        let write = |logs: &str| {
            std::fs::write(
                &conf,
                format!(
                    "internal: 127.0.0.1 port = 1080\nlogoutput: {logs}\nerrorlog: /var/log/err.log\n\
                     log.auth.file: /var/log/auth.log\nsocksmethod: username\n\
                     passwordfile: /etc/ferrosocks/users\n"
                ),
            )
            .unwrap();
        };
        write("/var/log/a.log stderr");
        let mut policy = Policy::default();
        policy.learn(Some(&conf));
        let paths = |s: &HashSet<PathBuf>| {
            let mut v: Vec<String> = s.iter().map(|p| p.display().to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(
            paths(&policy.append),
            ["/var/log/a.log", "/var/log/auth.log", "/var/log/err.log"]
        );
        assert_eq!(
            paths(&policy.read),
            [
                "/etc/ferrosocks/users".to_string(),
                conf.display().to_string()
            ]
        );
        assert!(!policy.system_users);
        // A reload names another file: it is added, the old ones stay (sinks being
        // replaced may still reopen them).
        write("/var/log/b.log");
        policy.learn(Some(&conf));
        assert!(policy.append.contains(Path::new("/var/log/b.log")));
        assert!(policy.append.contains(Path::new("/var/log/a.log")));
        // A file that does not parse adds nothing but itself.
        std::fs::write(&conf, "logoutput: /var/log/c.log\nbogus\n").unwrap();
        policy.learn(Some(&conf));
        assert!(!policy.append.contains(Path::new("/var/log/c.log")));
        // The embedded default names no file.
        let mut default = Policy::default();
        default.learn(None);
        assert!(default.read.is_empty() && default.append.is_empty());
    }

    #[test]
    fn the_pid_file_is_removed_only_while_it_names_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("pid");
        std::fs::write(&pid, "4242\n").unwrap();
        assert_eq!(remove_pidfile(Some(&pid), 4343), Reply::Done);
        assert!(pid.exists(), "another instance's pid file stays");
        assert_eq!(remove_pidfile(Some(&pid), 4242), Reply::Done);
        assert!(!pid.exists());
        assert_eq!(remove_pidfile(Some(&pid), 4242), Reply::Done);
    }
}
