//! The command line: -V, configuration errors, -v, -p, -d, sinks.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

fn write_conf(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("sockd.conf");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn verify_reports_every_error_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_conf(dir.path(), "internal: 127.0.0.1 port = 1080\nsockmethod: none\nsocks pass { from: 127.0.0.1 to: 0/0 }\nsocks pass { from: 0/0 to: 0/0 bandwidth: 10 }\n");
    let (code, out, err) = run(Command::new(BIN).arg("-V").arg("-f").arg(&p));
    assert_eq!(code, 64, "{out}{err}");
    let name = p.display();
    assert!(
        err.contains(&format!(
            "{name}:2:1: unknown keyword \"sockmethod\"; did you mean \"socksmethod\"?"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{name}:3:20: no netmask has been specified for the IPv4 address \"127.0.0.1\""
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{name}:4:32: \"bandwidth\" is not supported yet")),
        "{err}"
    );
    assert!(err.contains("configuration has errors; not started"));
    assert!(
        err.lines().all(|l| l.starts_with("ferrosocks: ")),
        "every error line names the program:\n{err}"
    );
}

#[test]
fn verify_accepts_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_conf(dir.path(), &conf("connect").replace("@LOG@", "/dev/null"));
    let (code, out, err) = run(Command::new(BIN).arg("-V").arg("-f").arg(&p));
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("configuration OK\n"), "{out}");
}

#[test]
fn a_bad_file_binds_no_port() {
    let free = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let p = write_conf(
        dir.path(),
        &format!("internal: 127.0.0.1 port = {free}\nsocksmethod: none\nlog: connect\n"),
    );
    let (code, _, err) = run(Command::new(BIN).arg("-f").arg(&p));
    assert_eq!(code, 64);
    assert!(
        err.contains(":3:1: \"log\" is only valid inside a rule"),
        "{err}"
    );
    // The port is still free: nothing was bound.
    std::net::TcpListener::bind(("127.0.0.1", free)).unwrap();
    // A missing file is an error too.
    let (code, _, err) = run(Command::new(BIN)
        .arg("-f")
        .arg(dir.path().join("nope.conf")));
    assert_eq!(code, 64);
    assert!(err.contains("No such file or directory"), "{err}");
}

#[test]
fn version_and_help() {
    for flag in ["-v", "--version"] {
        let (code, out, _) = run(Command::new(BIN).arg(flag));
        assert_eq!(
            (code, out.trim()),
            (0, concat!("ferrosocks v", env!("CARGO_PKG_VERSION"))),
            "{flag}"
        );
    }
    for flag in ["-h", "--help"] {
        let (code, out, _) = run(Command::new(BIN).arg(flag));
        assert_eq!(code, 0, "{flag}");
        for opt in ["-f <FILE>", "-d <N>", "-V", "-p <FILE>", "-D", "-N <N>"] {
            assert!(out.contains(opt), "{flag} lacks {opt}:\n{out}");
        }
    }
    // A bad command line: status 64 (EX_USAGE), every line prefixed.
    let (code, _, err) = run(Command::new(BIN).arg("--no-such-option"));
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--no-such-option"), "{err}");
    assert!(err.lines().all(|l| l.starts_with("ferrosocks: ")), "{err}");
}

#[test]
fn pidfile_debug_override_and_stderr_sink() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("ferrosocks.pid");
    // errorlog to stderr gets warnings only; -d 1 makes the default rule #0 log.
    let mut p = Proxy::start_with(
        "logoutput: @LOG@\nerrorlog: stderr\ninternal: 127.0.0.1 port = 0\nsocksmethod: none\n\
         client pass { from: 127.0.0.0/8 to: 0/0\n}\n",
        &["-d", "1", "-p", pidfile.to_str().unwrap(), "-N", "2"],
    );
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, p.child.id());
    let (_, reply) = Raw::connect_v4(p.addr, "127.0.0.1:9".parse().unwrap());
    assert_eq!(reply[1], 0x02);
    let m = p.wait_for("the default rule's block line", |m| {
        m.contains("block(0): tcp/connect ]:")
    });
    assert!(
        m.iter()
            .any(|l| l.ends_with(": no rules matched; using default block rule")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|l| l.contains("debug level 1 from the command line overrides debug: 0")),
        "{m:?}"
    );
    p.signal(libc::SIGTERM);
    assert!(p.wait_exit(Duration::from_secs(10)).success());
    assert!(!pidfile.exists(), "pid file left behind");
    assert!(
        !p.stderr().contains("info:"),
        "info went to errorlog: {}",
        p.stderr()
    );
}

#[test]
fn syslog_sink_sends_datagrams_with_facility_and_level() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let conf_path = write_conf(
        dir.path(),
        "logoutput: syslog/local3\nerrorlog: syslog/auth\ninternal: 127.0.0.1 port = 0\nsocksmethod: none\n\
         client pass { from: 127.0.0.0/8 to: 0/0\nlog: connect\n}\n",
    );
    let mut child = Command::new(BIN)
        .arg("-f")
        .arg(&conf_path)
        .env("FERROSOCKS_SYSLOG_SOCKET", &sock_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    // local3 = 19; info = 6: 19*8+6 = 158. The text is Dante's: "info: …".
    let ok = first.starts_with("<158>")
        && first.contains(&format!(" ferrosocks[{}]: info: ferrosocks v", child.id()));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    assert!(ok, "{first}");
    let date = &first[5..20];
    assert!(
        date.as_bytes()[3] == b' ' && date.as_bytes()[9] == b':',
        "{first}"
    );
}

#[test]
fn detach_writes_the_pidfile_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let log = dir.path().join("log");
    let p = write_conf(
        dir.path(),
        &conf("connect").replace("@LOG@", &log.display().to_string()),
    );
    let (code, out, err) = run(Command::new(BIN)
        .arg("-D")
        .arg("-p")
        .arg(&pidfile)
        .arg("-f")
        .arg(&p));
    assert_eq!(code, 0, "{err}");
    let addr: std::net::SocketAddr = out.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            break pid;
        }
        assert!(std::time::Instant::now() < deadline, "no pid file");
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(20));
    };
    let echo = Helper::echo();
    let served = std::panic::catch_unwind(|| {
        let (mut c, reply) = Raw::connect_v4(addr, echo.addr);
        assert_eq!(reply[1], 0);
        c.send(b"x");
        assert_eq!(c.read_exact(1), b"x");
    });
    // SAFETY: kill(2) on the daemon we started, by the PID it wrote.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    served.unwrap();
}

#[test]
fn drops_to_the_unprivileged_user_when_root() {
    let p = Proxy::start(&conf("connect").replace(
        "socksmethod: none",
        "socksmethod: none\nuser.unprivileged: nobody",
    ));
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.pid())).unwrap();
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_owned();
    // SAFETY: geteuid(2) has no preconditions.
    let me = unsafe { libc::geteuid() };
    if me == 0 {
        assert!(
            uid_line.split_whitespace().skip(1).all(|u| u == "65534"),
            "{uid_line}"
        );
        p.wait_for("the drop", |m| m == "Running as user nobody");
    } else {
        assert!(uid_line.contains(&me.to_string()), "{uid_line}");
    }
    let echo = Helper::echo();
    let (_, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0);
}

#[test]
fn debug_level_adds_debug_lines_and_internal_takes_an_interface_name() {
    let echo = Helper::echo();
    let p = Proxy::start(
        &conf("connect")
            .replace("internal: 127.0.0.1 port = 0", "internal: lo port = 0")
            .replace("socksmethod: none", "socksmethod: none\ndebug: 1"),
    );
    let (_, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0);
    let m = p.wait_for("the debug line", |m| m.contains("connected to 127.0.0.1:"));
    assert!(
        m.iter()
            .any(|l| l.contains(": SocksV5, method none, request Connect for 127.0.0.1.")),
        "{m:?}"
    );
}

#[test]
fn verify_rejects_a_file_without_internal() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_conf(dir.path(), "socksmethod: none\n");
    let (code, _, err) = run(Command::new(BIN).arg("-V").arg("-f").arg(&p));
    assert_eq!(code, 64);
    assert!(err.contains("no internal address configured"), "{err}");
}

#[test]
fn verify_checks_what_start_up_would_fail_on_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let p = write_conf(
        dir.path(),
        &format!(
            "internal: eth7 port = 1080\n\
             internal: 192.0.2.1 port = 1080\n\
             logoutput: {d}/no-such-dir/sockd.log\n\
             socksmethod: username\n\
             passwordfile: {d}/no-such-users\n\
             user.unprivileged: no-such-user-fsk\n\
             client pass {{ from: 127.0.0.0/8 to: 0/0 }}\n"
        ),
    );
    let name = p.display().to_string();
    for args in [&["-V"][..], &[]] {
        let (code, out, err) = run(Command::new(BIN).args(args).arg("-f").arg(&p));
        assert_eq!(code, 64, "{args:?}: {out}{err}");
        for expected in [
            format!("{name}:1:11: internal: no interface or local address \"eth7\""),
            format!("{name}:2:11: internal: \"192.0.2.1\" is not a local address"),
            format!("{name}:3:12: logoutput: directory \"{d}/no-such-dir\""),
            format!("{name}:5:15: passwordfile: cannot read \"{d}/no-such-users\""),
            format!("{name}:6:20: user.unprivileged: no such user \"no-such-user-fsk\""),
        ] {
            assert!(
                err.lines()
                    .any(|l| l.starts_with(&format!("ferrosocks: {expected}"))),
                "{args:?} lacks {expected:?}:\n{err}"
            );
        }
        assert!(err.lines().all(|l| l.starts_with("ferrosocks: ")), "{err}");
        assert!(!out.contains("ready"), "{out}");
    }
}

#[test]
fn a_start_up_failure_names_the_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let p = write_conf(
        dir.path(),
        &format!("socksmethod: none\ninternal: 127.0.0.1 port = {port}\n"),
    );
    let (code, _, err) = run(Command::new(BIN).arg("-f").arg(&p));
    assert_eq!(code, 71, "{err}");
    let expected = format!(
        "ferrosocks: {}:2:11: internal: cannot listen on 127.0.0.1:{port}: Address already in use",
        p.display()
    );
    assert!(err.lines().any(|l| l.starts_with(&expected)), "{err}");
}
