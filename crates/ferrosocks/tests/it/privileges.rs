//! A daemon's privileges: started as root with `user.unprivileged`, the server runs as
//! that user while its privileged helper reopens the log files logrotate recreated in a
//! directory only root may write, reads root-only files on SIGHUP and removes the pid
//! file at exit. These tests need root, as CI runs them.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;

fn require_root() {
    // SAFETY: geteuid(2) has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "this test drops privileges and needs root: run ./test.sh as root (CI does)"
    );
}

/// The uids of a process: real, effective, saved, filesystem.
fn uids(pid: u32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace()
        .skip(1)
        .map(|u| u.parse().unwrap())
        .collect()
}

/// The children of a process.
fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

const NOBODY: u32 = 65534;

fn dropping_conf() -> String {
    conf("connect disconnect").replace(
        "socksmethod: none",
        "socksmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\n\
         management: @DIR@/mgmt.sock",
    )
}

#[test]
fn rotations_under_a_dropped_user_lose_no_line_and_the_pid_file_goes() {
    require_root();
    let scratch = tempfile::tempdir().unwrap();
    let pidfile = scratch.path().join("ferrosocks.pid");
    let mut p = Proxy::start_with(&dropping_conf(), &["-p", pidfile.to_str().unwrap()]);
    // Only root may enter the log's directory, and write in it.
    std::fs::set_permissions(p.dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(p.dir.path().join("mgmt.sock").exists());
    assert!(uids(p.child.id()).iter().all(|&u| u == NOBODY));
    let helpers = children(p.child.id());
    assert_eq!(helpers.len(), 1, "one privileged helper: {helpers:?}");
    assert!(uids(helpers[0]).iter().all(|&u| u == 0));
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        p.child.id().to_string()
    );

    // Sessions go on while the log is rotated three times, logrotate-style.
    let echo = Helper::echo();
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, target, flag) = (p.addr, echo.addr, Arc::clone(&stop));
    let traffic = std::thread::spawn(move || {
        let mut sessions = 0u32;
        while !flag.load(Ordering::SeqCst) && sessions < 2000 {
            let (mut c, reply) = Raw::connect_v4(addr, target);
            assert_eq!(reply[1], 0);
            c.send(b"ping");
            assert_eq!(c.read_exact(4), b"ping");
            drop(c);
            sessions += 1;
        }
        sessions
    });
    let mut rotated = Vec::new();
    for i in 1..=3 {
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(300));
        let old = p.dir.path().join(format!("ferrosocks.log.{i}"));
        std::fs::rename(&p.log, &old).unwrap();
        p.signal(libc::SIGHUP);
        p.wait_for("the reload", |m| m == "Configuration reloaded");
        rotated.push(old);
    }
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let sessions = traffic.join().unwrap();
    p.wait_for("the last summary", |_| {
        summaries(&p, &rotated) == 2 * sessions as usize
    });
    p.signal(libc::SIGTERM);
    assert!(p.wait_exit(Duration::from_secs(15)).success());

    // Every session's two summaries (socks and client rule) are in one of the files, the
    // new file was created by the helper (root) and no write failed.
    assert_eq!(summaries(&p, &rotated), 2 * sessions as usize);
    assert_eq!(std::fs::metadata(&p.log).unwrap().uid(), 0);
    let all = all_text(&p, &rotated);
    assert!(!all.contains("cannot write"), "{all}");
    assert!(!all.contains("Permission denied"), "{all}");
    for f in &rotated {
        assert!(std::fs::metadata(f).unwrap().len() > 0, "{}", f.display());
    }
    assert!(!pidfile.exists(), "the pid file was left behind");
    // The management socket, made by root before the drop in a directory only root may
    // write, is removed by the helper.
    assert!(
        !p.dir.path().join("mgmt.sock").exists(),
        "the management socket was left behind"
    );
    assert!(children(p.child.id()).is_empty());
}

fn all_text(p: &Proxy, rotated: &[std::path::PathBuf]) -> String {
    rotated
        .iter()
        .chain(std::iter::once(&p.log))
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect()
}

fn summaries(p: &Proxy, rotated: &[std::path::PathBuf]) -> usize {
    all_text(p, rotated)
        .lines()
        .filter(|l| {
            l.contains(": pass(1): tcp/connect ]: ") || l.contains(": pass(1): tcp/accept ]: ")
        })
        .count()
}

#[test]
fn a_reload_after_the_drop_reads_root_only_files() {
    require_root();
    require("htpasswd");
    require("curl");
    let http = Helper::http();
    let conf = dropping_conf().replace(
        "socksmethod: none",
        "socksmethod: username\npasswordfile: @DIR@/users",
    );
    // The password file must exist before the start: write the template's directory
    // ourselves by starting once the file is in place.
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let made = Command::new("htpasswd")
        .args(["-B", "-b", "-c", "-C", "4"])
        .arg(&users)
        .args(["alice", "first"])
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600)).unwrap();
    let conf = conf.replace("@DIR@/users", users.to_str().unwrap());
    let p = Proxy::start(&conf);
    std::fs::set_permissions(&p.conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(p.dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(uids(p.child.id()).iter().all(|&u| u == NOBODY));
    let url = format!("http://127.0.0.1:{}/", http.addr.port());
    let fetch = |user: &str| {
        curl(&[
            "--socks5-hostname",
            &p.addr.to_string(),
            "--proxy-user",
            user,
            &url,
        ])
    };
    assert_eq!(fetch("alice:first").1, HTTP_BODY);
    assert_ne!(fetch("bob:second").0, 0);

    // A user added to the root-only file counts after SIGHUP.
    let added = Command::new("htpasswd")
        .args(["-B", "-b", "-C", "4"])
        .arg(&users)
        .args(["bob", "second"])
        .status()
        .unwrap();
    assert!(added.success());
    p.signal(libc::SIGHUP);
    let m = p.wait_for("the reload", |m| {
        m == "Configuration reloaded" || m.starts_with("Configuration not reloaded")
    });
    assert!(m.iter().any(|l| l == "Configuration reloaded"), "{m:?}");
    let (code, out, err) = fetch("bob:second");
    assert_eq!((code, out.as_str()), (0, HTTP_BODY), "{err}");
}

#[test]
fn a_status_file_the_dropped_user_cannot_replace_is_refused_at_start() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf_path = dir.path().join("sockd.conf");
    std::fs::write(
        &conf_path,
        format!(
            "internal: 127.0.0.1 port = 0\nsocksmethod: none\nuser.unprivileged: nobody\nstatus.file: {}/status\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let (code, _, err) = run(Command::new(BIN).arg("-V").arg("-f").arg(&conf_path));
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains(":4:14: status.file: ") && err.contains("cannot write its directory"),
        "{err}"
    );
}
