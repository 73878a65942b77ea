//! systemd integration through the real binary: the notify protocol read from a real
//! `NOTIFY_SOCKET` (READY after bind, RELOADING and READY around SIGHUP, WATCHDOG pings,
//! STATUS, STOPPING), a bad socket, and socket activation by systemd-socket-activate.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Reads notifications until one contains `what`; returns every one read.
fn until(sock: &UnixDatagram, seen: &mut Vec<String>, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 4096];
    loop {
        if let Some(m) = seen.iter().find(|m| m.contains(what)) {
            return m.clone();
        }
        assert!(Instant::now() < deadline, "no {what:?} in {seen:?}");
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

#[test]
fn the_notify_protocol_on_a_real_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let path_s = path.display().to_string();
    let mut p = Proxy::launch(
        &conf("connect"),
        &[],
        &[("NOTIFY_SOCKET", &path_s), ("WATCHDOG_USEC", "400000")],
    );
    let mut seen = Vec::new();
    let ready = until(&sock, &mut seen, "READY=1");
    assert!(ready.contains("STATUS=serving"), "{ready}");
    // Watchdog pings at half the interval, each after the liveness checks.
    let start = seen.len();
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    while t.elapsed() < Duration::from_secs(2) {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    let pings = seen[start..]
        .iter()
        .filter(|m| m.contains("WATCHDOG=1"))
        .count();
    assert!(pings >= 3, "{pings} pings in 2 s: {seen:?}");
    let status = until(&sock, &mut seen, "session(s) open");
    assert!(
        status.contains("STATUS=0 session(s) open, 0 accepted"),
        "{status}"
    );
    // A reload: RELOADING with the monotonic time, then READY.
    let from = seen.len();
    p.signal(libc::SIGHUP);
    let reloading = until(&sock, &mut seen, "RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    let after: Vec<String> = seen[from..].to_vec();
    let mut rest = after;
    let ready_again = until(&sock, &mut rest, "READY=1");
    assert!(
        ready_again.contains("configuration reloaded"),
        "{ready_again}"
    );
    // The stop.
    p.signal(libc::SIGTERM);
    until(&sock, &mut rest, "STOPPING=1");
    assert!(p.wait_exit(Duration::from_secs(15)).success());
}

#[test]
fn a_bad_notify_socket_is_reported_once_and_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("no-such-socket").display().to_string();
    let p = Proxy::launch(
        &conf("connect"),
        &[],
        &[("NOTIFY_SOCKET", &gone), ("WATCHDOG_USEC", "200000")],
    );
    let echo = Helper::echo();
    let (mut c, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0);
    c.send(b"ok");
    assert_eq!(c.read_exact(2), b"ok");
    let m = p.wait_for("the report", |l| l.starts_with("systemd: cannot notify"));
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(Duration::from_millis(600));
    let m2 = p.messages();
    assert_eq!(
        m2.iter()
            .filter(|l| l.starts_with("systemd: cannot notify"))
            .count(),
        1,
        "{m:?}"
    );
}

/// A port nobody listens on now (systemd-socket-activate binds it).
fn free_port() -> u16 {
    closed_port()
}

fn socket_activated(conf_text: &str, port: u16) -> (std::process::Child, tempfile::TempDir) {
    require("systemd-socket-activate");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sockd.conf");
    std::fs::write(&conf, conf_text).unwrap();
    let child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg(BIN)
        .arg("-f")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, dir)
}

#[test]
fn socket_activation_serves_on_the_sockets_systemd_passes() {
    let port = free_port();
    let echo = Helper::echo();
    let text = conf("connect")
        .replace("logoutput: @LOG@\n", "logoutput: stderr\n")
        .replace("port = 0", &format!("port = {port}"));
    let (mut child, _dir) = socket_activated(&text, port);
    let pid = child.id() as i32;
    let result = std::panic::catch_unwind(|| {
        // systemd-socket-activate starts the service at the first connection.
        let deadline = Instant::now() + Duration::from_secs(15);
        let proxy = loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break std::net::SocketAddr::from(([127, 0, 0, 1], port));
            }
            assert!(
                Instant::now() < deadline,
                "systemd-socket-activate never listened"
            );
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(50));
        };
        let (mut c, reply) = Raw::connect_v4(proxy, echo.addr);
        assert_eq!(reply[1], 0);
        c.send(b"activated");
        assert_eq!(c.read_exact(9), b"activated");
    });
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let _ = out.read_line(&mut line);
    // SAFETY: kill(2) on our own child (systemd-socket-activate execs the server).
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let _ = child.wait();
    result.unwrap();
    assert_eq!(
        line.trim(),
        format!("ferrosocks ready: listening on 127.0.0.1:{port}")
    );
}

#[test]
fn socket_activation_that_does_not_match_internal_is_an_error() {
    let port = free_port();
    let text = conf("connect")
        .replace("logoutput: @LOG@\n", "logoutput: stderr\n")
        .replace("port = 0", "port = 1");
    let (mut child, _dir) = socket_activated(&text, port);
    let pid = child.id() as i32;
    let _ = std::net::TcpStream::connect(("127.0.0.1", port));
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the server kept running on a socket internal: does not name");
        }
        let _ = std::net::TcpStream::connect(("127.0.0.1", port));
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(71), "{err}");
    assert!(
        err.contains(&format!(
            "socket activation: systemd passed a socket on 127.0.0.1:{port}, which no internal: entry names"
        )),
        "{err}"
    );
}
