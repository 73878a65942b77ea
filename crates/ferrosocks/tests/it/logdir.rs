//! Log directories through the real binary, side by side with daemontools' `multilog`
//! and read back by `tai64nlocal`: layout, modes, stamps, rotation, `count`, the lock,
//! crash recovery, and a `current` that is in the way.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Mode bits of a path.
fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// The entries of a log directory, sorted, `@` names as `@TAI64N.s`/`.u` shapes.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn rotated(dir: &Path) -> Vec<PathBuf> {
    listing(dir)
        .into_iter()
        .filter(|n| n.starts_with('@'))
        .map(|n| dir.join(n))
        .collect()
}

fn is_label(s: &str) -> bool {
    s.len() == 25 && s.starts_with('@') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn echo_sessions(p: &Proxy, echo: &Helper, n: usize) {
    for i in 0..n {
        let (mut c, reply) = Raw::connect_v4(p.addr, echo.addr);
        assert_eq!(reply[1], 0);
        let payload = format!("session {i}");
        c.send(payload.as_bytes());
        assert_eq!(c.read_exact(payload.len()), payload.as_bytes());
    }
}

fn wait_until(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `multilog ARGS` over `input` in `cwd`.
fn multilog(cwd: &Path, args: &[&str], input: &[u8]) -> (i32, String) {
    let mut child = Command::new("multilog")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Small writes, as a logging process sends them.
    for chunk in input.chunks(300) {
        let _ = stdin.write_all(chunk);
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const LOGDIR_CONF: &str =
    "logdir: @DIR@/log\nlogdir.size: 4096\nlogdir.count: 3\nlogdir.stamp: on\n";

#[test]
fn a_log_dir_is_what_multilog_t_s4096_n3_writes() {
    require("multilog");
    require("tai64nlocal");
    let echo = Helper::echo();
    let mut p = Proxy::start(&format!("{LOGDIR_CONF}{}", conf("connect disconnect ioop")));
    let ours = p.dir.path().join("log");
    echo_sessions(&p, &echo, 60);
    wait_until("three rotations", || {
        rotated(&ours).len() >= 2 && {
            let log = std::fs::read_to_string(&p.log).unwrap_or_default();
            log.len() > 3 * 4096
        }
    });
    // While it runs: current is 0644 and the directory is locked, for multilog too.
    assert_eq!(mode(&ours.join("current")), 0o644);
    let (code, err) = multilog(p.dir.path(), &["t", "./log"], b"x\n");
    assert_eq!(code, 111, "{err}");
    assert!(err.contains("unable to lock directory"), "{err}");

    p.signal(libc::SIGTERM);
    assert!(p.wait_exit(Duration::from_secs(10)).success());

    // The same lines through the real multilog.
    let theirs_root = tempfile::tempdir().unwrap();
    let lines = std::fs::read(&p.log).unwrap();
    let (code, err) = multilog(theirs_root.path(), &["t", "s4096", "n3", "./log"], &lines);
    assert_eq!(code, 0, "{err}");
    let theirs = theirs_root.path().join("log");

    for dir in [&ours, &theirs] {
        let names = listing(dir);
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
        assert_eq!(
            names
                .iter()
                .filter(|n| !n.starts_with('@'))
                .collect::<Vec<_>>(),
            ["current", "lock", "state"],
            "{}: {names:?}",
            dir.display()
        );
        let old = rotated(dir);
        assert_eq!(old.len(), 2, "n3 keeps two old files: {names:?}");
        for f in &old {
            let name = f.file_name().unwrap().to_str().unwrap();
            assert!(is_label(&name[..25]) && name.ends_with(".s"), "{name}");
            assert_eq!(mode(f), 0o744, "{name}");
            let len = std::fs::metadata(f).unwrap().len();
            assert!((2096..=4096).contains(&len), "{name}: {len} bytes");
            let text = std::fs::read_to_string(f).unwrap();
            assert!(text.ends_with('\n'), "{name} ends at a line boundary");
        }
        assert_eq!(mode(&dir.join("lock")), 0o600);
        assert_eq!(mode(&dir.join("state")), 0o644);
        assert_eq!(mode(&dir.join("current")), 0o744, "cleanly finished");
        for f in old.iter().chain([&dir.join("current")]) {
            for l in std::fs::read_to_string(f).unwrap().lines() {
                let (stamp, rest) = l.split_at(25);
                assert!(is_label(stamp) && rest.starts_with(' '), "{l:?}");
            }
        }
    }

    // Our lines are the log file's last lines, stamped with the time each was logged:
    // tai64nlocal prints the time in the Dante prefix, to the microsecond.
    let mut ours_text = String::new();
    for f in rotated(&ours).iter().chain([&ours.join("current")]) {
        ours_text.push_str(&std::fs::read_to_string(f).unwrap());
    }
    let log = std::fs::read_to_string(&p.log).unwrap();
    // Two sinks may take the lines of concurrent sessions in different orders: the
    // same lines, as a multiset.
    let mut unstamped: Vec<&str> = ours_text.lines().map(|l| &l[26..]).collect();
    let all: Vec<&str> = log.lines().collect();
    let mut tail = all[all.len() - unstamped.len()..].to_vec();
    unstamped.sort_unstable();
    tail.sort_unstable();
    assert!(unstamped == tail, "the log dir holds the log's last lines");
    let mut local = Command::new("tai64nlocal")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    local
        .stdin
        .take()
        .unwrap()
        .write_all(ours_text.as_bytes())
        .unwrap();
    let out = local.wait_with_output().unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.lines().count(), ours_text.lines().count());
    for l in printed.lines() {
        // `2026-12-01 13:43:42.123456500 Dec  1 13:43:42 (1796132622.123456) ferrosocks…`
        let (date, rest) = l.split_at(29);
        let time_of_day = &date[11..19];
        let micros = &date[20..26];
        assert_eq!(&date[26..], "500", "{l}");
        let prefix = traffic_log::Prefix::parse_line(rest.trim_start())
            .unwrap_or_else(|e| panic!("{l}: {e}"))
            .0;
        let dante = format!(
            "{:02}:{:02}:{:02}",
            prefix.local.hour, prefix.local.minute, prefix.local.second
        );
        assert_eq!(time_of_day, dante, "{l}");
        assert_eq!(micros, format!("{:06}", prefix.micros), "{l}");
    }
}

#[test]
fn a_crash_leaves_current_to_be_finished_as_u_at_the_next_start() {
    let echo = Helper::echo();
    let conf_text = format!("logdir: {{DIR}}\n{}", conf("connect disconnect"));
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().join("log");
    let conf_text = conf_text.replace("{DIR}", &dir.display().to_string());
    let p = Proxy::start(&conf_text);
    echo_sessions(&p, &echo, 3);
    wait_until("the sessions in current", || {
        std::fs::read_to_string(dir.join("current"))
            .is_ok_and(|t| t.matches("tcp/accept ]").count() == 3)
    });
    let before = std::fs::read_to_string(dir.join("current")).unwrap();
    p.signal(libc::SIGKILL);
    drop(p);
    assert_eq!(mode(&dir.join("current")), 0o644, "not finished");

    let p = Proxy::start(&conf_text);
    let u: Vec<PathBuf> = rotated(&dir);
    assert_eq!(u.len(), 1, "{:?}", listing(&dir));
    assert!(u[0].to_str().unwrap().ends_with(".u"));
    assert_eq!(std::fs::read_to_string(&u[0]).unwrap(), before);
    echo_sessions(&p, &echo, 1);
    wait_until("the new session in the new current", || {
        std::fs::read_to_string(dir.join("current")).is_ok_and(|t| t.contains("tcp/accept ]"))
    });
    drop(p);
}

#[test]
fn a_current_that_is_a_directory_is_an_error_on_the_log_never_a_crash() {
    let echo = Helper::echo();
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().join("log");
    std::fs::create_dir_all(dir.join("current")).unwrap();
    let p = Proxy::start(&format!(
        "logdir: {}\n{}",
        dir.display(),
        conf("connect disconnect")
    ));
    echo_sessions(&p, &echo, 1);
    p.wait_for("the log dir's failure", |m| {
        m.contains("log directory") && m.contains("is a directory")
    });
    // The other sinks go on.
    p.wait_for("the session's end", |m| m.contains("tcp/accept ]"));
    // It recovers once the directory is out of the way.
    std::fs::remove_dir(dir.join("current")).unwrap();
    echo_sessions(&p, &echo, 1);
    p.wait_for("the recovery", |m| m.contains("works again"));
    wait_until("lines in current", || {
        std::fs::read_to_string(dir.join("current")).is_ok_and(|t| t.contains("tcp/accept ]"))
    });
}

#[test]
fn a_full_disk_under_the_log_dir_is_reported_and_recovered_from() {
    let root = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&root.path().join("small"), "64k");
    let mnt = disk.path().to_path_buf();
    // The filler leaves 16 KiB; the directory holds at most `current` and five rotated
    // files of 4 KiB (24 KiB): it fills the disk while the filler is there and can
    // never fill it alone once the filler is gone (with more files kept, a slow run's
    // sessions filled it again before `current` was checked).
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![0u8; 48 * 1024]).unwrap();
    let dir = mnt.join("log");
    let echo = Helper::echo();
    let p = Proxy::start(&format!(
        "logdir: {}\nlogdir.size: 4096\nlogdir.count: 5\n{}",
        dir.display(),
        conf("connect disconnect ioop")
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&p.log)
        .unwrap_or_default()
        .contains("No space left on device")
    {
        assert!(Instant::now() < deadline, "the disk never filled");
        echo_sessions(&p, &echo, 1);
    }
    // Still relaying while the disk is full.
    echo_sessions(&p, &echo, 10);
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        echo_sessions(&p, &echo, 1);
        let main = std::fs::read_to_string(&p.log).unwrap();
        if main.contains(&format!(
            "log directory {} works again after failing",
            dir.display()
        )) {
            assert!(
                main.contains("line(s) could not be written to it meanwhile"),
                "{main}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no recovery report:\n{main}");
    }
    // The directory is whole again: current and rotated files, each ending at a line.
    wait_until("lines in the new current", || {
        echo_sessions(&p, &echo, 1);
        std::fs::read_to_string(dir.join("current")).is_ok_and(|t| t.contains("tcp/accept ]"))
    });
    for f in rotated(&dir) {
        let name = f.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            name.ends_with(".s") && std::fs::metadata(&f).unwrap().len() <= 4096,
            "{name}"
        );
    }
}

#[test]
fn a_subsystem_or_errorlog_can_name_the_log_dir_instead_of_logoutput() {
    let echo = Helper::echo();
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().join("log");
    let p = Proxy::start(&format!(
        "logdir: {}\nlog.traffic.file: logdir\nerrorlog: logdir\n{}",
        dir.display(),
        conf("connect disconnect")
    ));
    echo_sessions(&p, &echo, 2);
    // A warning (errorlog) also lands there: a refused method.
    assert_eq!(
        Raw::connect(p.addr).send(&[5, 1, 2]).read_to_close(),
        [5, 0xff]
    );
    wait_until("the sessions in the log dir", || {
        std::fs::read_to_string(dir.join("current"))
            .is_ok_and(|t| t.matches("tcp/accept ]").count() == 2)
    });
    let text = std::fs::read_to_string(dir.join("current")).unwrap();
    let log = std::fs::read_to_string(&p.log).unwrap();
    assert!(log.contains("running, configuration"), "{log}");
    assert!(
        !text.contains("running, configuration"),
        "SYSTEM info is not the log dir's: {text}"
    );
    for l in text.lines() {
        let (prefix, msg) = traffic_log::Prefix::parse_line(l).unwrap();
        let traffic = msg.starts_with("pass(") || msg.starts_with("block(");
        let severe = matches!(
            prefix.level,
            traffic_log::Level::Warning | traffic_log::Level::Error | traffic_log::Level::Critical
        );
        assert!(traffic || severe, "{l}");
    }
}

/// ferrosocks run as an unprivileged user, `dir` made mode `mode` and owned by `owner`.
fn prepare_dir(dir: &Path, owner: (u32, u32), mode_bits: u32) {
    std::fs::create_dir_all(dir).unwrap();
    std::os::unix::fs::chown(dir, Some(owner.0), Some(owner.1)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode_bits)).unwrap();
}

/// A parent every user may pass through.
fn open_parent() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    t
}

fn require_root() {
    // SAFETY: geteuid(2) has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test creates users with useradd and needs root (./test.sh runs as root in CI)"
    );
}

#[test]
fn a_log_dir_owned_by_someone_else_is_an_error_on_the_log_and_recovers_once_it_is_ours() {
    require_root();
    let runner = SystemUser::new();
    let owner = SystemUser::new();
    let parent = open_parent();
    let dir = parent.path().join("log");
    // Another user's multilog directory, as `setuidgid log multilog` leaves it.
    prepare_dir(&dir, owner.ids(), 0o700);
    let echo = Helper::echo();
    let (uid, gid) = runner.ids();
    let p = Proxy::launch_as(
        &format!("logdir: {}\n{}", dir.display(), conf("connect disconnect")),
        uid,
        gid,
    );
    echo_sessions(&p, &echo, 1);
    let (owner_uid, _) = owner.ids();
    let messages = p.wait_for("the log dir's failure", |m| {
        m.contains(&format!(
            "log directory {} is owned by uid {owner_uid} ({}), not by the user ferrosocks runs as (uid {uid} ({}))",
            dir.display(),
            owner.name,
            runner.name
        ))
    });
    // The other sinks go on, and the server runs.
    p.wait_for("the session's end", |m| m.contains("tcp/accept ]"));
    assert!(p.child_running(), "{messages:?}");
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "nothing written into someone else's directory"
    );
    // Handed over to the user ferrosocks runs as: it recovers, as from a full disk.
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    echo_sessions(&p, &echo, 1);
    p.wait_for("the recovery", |m| {
        m.contains(&format!("log directory {} works again", dir.display()))
    });
    wait_until("lines in current", || {
        std::fs::read_to_string(dir.join("current")).is_ok_and(|t| t.contains("tcp/accept ]"))
    });
    assert_eq!(mode(&dir.join("current")), 0o644);
}

#[test]
fn an_unwritable_log_dir_is_an_error_on_the_log_at_start_and_while_rotating_and_recovers() {
    require_root();
    let runner = SystemUser::new();
    let parent = open_parent();
    let dir = parent.path().join("log");
    let (uid, gid) = runner.ids();
    // Its own directory, but read-only.
    prepare_dir(&dir, (uid, gid), 0o500);
    let echo = Helper::echo();
    let mut p = Proxy::launch_as(
        &format!(
            "logdir: {}\nlogdir.size: 4096\nlogdir.count: 100\n{}",
            dir.display(),
            conf("connect disconnect ioop")
        ),
        uid,
        gid,
    );
    echo_sessions(&p, &echo, 1);
    p.wait_for("the failure to open it", |m| {
        m.contains(&format!("{}/lock", dir.display())) && m.contains("Permission denied")
    });
    assert!(p.child_running());
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    echo_sessions(&p, &echo, 1);
    p.wait_for("the recovery", |m| {
        m.contains(&format!("log directory {} works again", dir.display()))
    });
    // Unwritable again while written: `current` is still appended to, the next
    // rotation cannot rename it.
    wait_until("lines in current", || {
        std::fs::read_to_string(dir.join("current")).is_ok_and(|t| t.contains("tcp/accept ]"))
    });
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !p
        .messages()
        .iter()
        .any(|m| m.contains("cannot rename") && m.contains("Permission denied"))
    {
        assert!(Instant::now() < deadline, "no rotation failure reported");
        echo_sessions(&p, &echo, 1);
    }
    assert!(p.child_running());
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while p
        .messages()
        .iter()
        .filter(|m| m.contains(&format!("log directory {} works again", dir.display())))
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "no second recovery");
        echo_sessions(&p, &echo, 1);
    }
    // Rotated files whole again, no `previous` left by a clean stop.
    p.signal(libc::SIGTERM);
    assert!(p.wait_exit(Duration::from_secs(10)).success());
    assert!(!dir.join("previous").exists(), "{:?}", listing(&dir));
    for f in rotated(&dir) {
        let name = f.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.ends_with(".s"), "{name}");
        assert!(
            std::fs::read_to_string(&f).unwrap().ends_with('\n'),
            "{name}"
        );
    }
}
