//! Real clients through the real binary: curl, ncat, htpasswd-made password files.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::process::{Command, Stdio};

use crate::support::*;

#[test]
fn curl_socks5_and_socks5_hostname_fetch_the_page() {
    let http = Helper::http();
    let proxy = Proxy::start(&conf("connect disconnect error"));
    let p = proxy.addr.to_string();
    let port = http.addr.port();
    for (flag, host) in [
        ("--socks5", "127.0.0.1"),
        ("--socks5-hostname", "localhost"),
        ("--socks5-hostname", "127.0.0.1"),
    ] {
        let (code, out, err) = curl(&[flag, &p, &format!("http://{host}:{port}/")]);
        assert_eq!((code, out.as_str()), (0, HTTP_BODY), "{flag} {host}: {err}");
    }
    proxy.wait_for("three summaries", |_| false_after_three(&proxy));
    // Dante logs the address it connected to, also for a target asked for by name.
    let m = proxy.records();
    let connects: Vec<&String> = m.iter().filter(|l| l.contains("tcp/connect")).collect();
    assert_eq!(connects.len(), 6, "{m:?}");
    assert!(
        connects
            .iter()
            .all(|l| l.contains(&format!(" 127.0.0.1.{port}")) && !l.contains("localhost")),
        "{m:?}"
    );
}

fn false_after_three(proxy: &Proxy) -> bool {
    proxy
        .records()
        .iter()
        .filter(|r| r.contains("tcp/accept ]:"))
        .count()
        == 3
}

#[test]
fn username_authentication_with_an_htpasswd_bcrypt_file() {
    require("htpasswd");
    let http = Helper::http();
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let (code, _, err) = run(Command::new("htpasswd")
        .args(["-B", "-b", "-c"])
        .arg(&users)
        .args(["alice", "s3cret-pw"]));
    assert_eq!(code, 0, "htpasswd: {err}");
    // A plain line is accepted with a warning naming the line.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&users)
        .unwrap();
    writeln!(f, "bob:plain-pw").unwrap();
    let conf = format!(
        "logoutput: @LOG@\ninternal: 127.0.0.1 port = 0\nsocksmethod: username\npasswordfile: {}\n\
         client pass {{ from: 127.0.0.0/8 to: 0/0\nlog: error\n}}\n\
         socks pass {{ from: 127.0.0.0/8 to: 0/0\nlog: connect disconnect error\n}}\n",
        users.display()
    );
    let proxy = Proxy::start(&conf);
    let p = proxy.addr.to_string();
    let url = format!("http://127.0.0.1:{}/", http.addr.port());
    let (code, out, err) = curl(&["--socks5", &p, "--proxy-user", "alice:s3cret-pw", &url]);
    assert_eq!((code, out.as_str()), (0, HTTP_BODY), "{err}");
    let (code, out, _) = curl(&["--socks5", &p, "--proxy-user", "bob:plain-pw", &url]);
    assert_eq!((code, out.as_str()), (0, HTTP_BODY));
    let (code, _, _) = curl(&["--socks5", &p, "--proxy-user", "alice:wrong-pw", &url]);
    assert_ne!(code, 0);
    let (code, _, _) = curl(&["--socks5", &p, &url]);
    assert_ne!(code, 0, "no credentials must be refused");
    proxy.wait_for("the failed login", |m| m.contains("password mismatch"));
    let m = proxy.wait_for("the refused method", |m| {
        m.contains("no acceptable authentication method")
    });
    let all = m.join("\n");
    assert!(
        all.contains(&format!(
            "{}:2: user \"bob\" has a plain-text password",
            users.display()
        )),
        "{all}"
    );
    assert!(
        all.contains("pass(1): tcp/connect [: username%alice@127.0.0.1."),
        "{all}"
    );
    assert!(all
        .contains("username/password authentication failed for user \"alice\": password mismatch"));
    assert!(all.contains("no acceptable authentication method"));
    for secret in ["s3cret-pw", "plain-pw", "wrong-pw"] {
        assert!(!all.contains(secret), "a password reached the log:\n{all}");
    }
}

#[test]
fn ncat_through_socks5_and_half_close() {
    require("ncat");
    let echo = Helper::echo();
    let proxy = Proxy::start(&conf("connect disconnect"));
    let mut child = Command::new("ncat")
        .args(["--proxy", &proxy.addr.to_string(), "--proxy-type", "socks5"])
        .args(["127.0.0.1", &echo.addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = {
        let payload = payload.clone();
        std::thread::spawn(move || {
            stdin.write_all(&payload).unwrap();
        })
    };
    let mut got = Vec::new();
    let mut stdout = child.stdout.take().unwrap();
    while got.len() < payload.len() {
        let mut buf = [0u8; 65536];
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "ncat output ended after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    writer.join().unwrap();
    assert_eq!(got, payload);
    let _ = child.kill();
    let _ = child.wait();
    proxy.wait_for("the summary", |m| {
        m.contains(&format!("-> {} ", payload.len()))
            || m.contains(&format!("-> {}:", payload.len()))
    });

    // Half-close: the target answers only after the client's FIN reached it.
    let after = Helper::after_eof();
    let (mut c, reply) = Raw::connect_v4(proxy.addr, after.addr);
    assert_eq!(reply[1], 0);
    c.send(b"0123456789");
    c.0.shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.read_to_close(), b"got 10 bytes");
}

#[test]
fn ipv6_listener_and_target() {
    let echo6 = std::net::TcpListener::bind("[::1]:0").unwrap();
    let target = echo6.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = echo6.accept() {
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).unwrap();
            c.write_all(&buf).unwrap();
        }
    });
    let proxy = Proxy::start(
        "logoutput: @LOG@\ninternal: ::1 port = 0\nsocksmethod: none\n\
         client pass { from: ::1/128 to: ::/0\nlog: connect\n}\n\
         socks pass { from: 0/0 to: ::1/128\nlog: connect disconnect\n}\n",
    );
    assert!(proxy.addr.is_ipv6());
    let mut c = Raw::connect(proxy.addr);
    c.send(&[5, 1, 0]);
    assert_eq!(c.read_exact(2), [5, 0]);
    let mut req = vec![5, 1, 0, 4];
    req.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    req.extend_from_slice(&target.port().to_be_bytes());
    c.send(&req);
    let reply = c.read_exact(22);
    assert_eq!(&reply[..4], [5, 0, 0, 4]);
    c.send(b"hello");
    assert_eq!(c.read_exact(5), b"hello");
    drop(c);
    let m = proxy.wait_for("the IPv6 summary", |m| m.contains("tcp/connect ]:"));
    assert!(
        m.iter().any(|l| l.contains(&format!(
            "-> ::1.{} ::1.{}",
            reply_port(&reply),
            target.port()
        ))),
        "{m:?}"
    );
}

fn reply_port(reply: &[u8]) -> u16 {
    u16::from_be_bytes([reply[20], reply[21]])
}

/// Starts the binary with no arguments (the README's first command runs exactly this)
/// in a network namespace of its own, so that port 1080 there is free even while the
/// README's server runs on this machine. Returns `None` when no namespace can be made
/// (not root): the caller then needs port 1080 of this machine.
fn spawn_in_private_netns() -> Option<std::process::Child> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    require("unshare");
    let child = Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\"",
            BIN,
        ])
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Some(child)
}

#[test]
fn embedded_default_serves_loopback_on_1080() {
    require("curl");
    let private = spawn_in_private_netns();
    let in_netns = private.is_some();
    let mut child = private.unwrap_or_else(|| {
        Command::new(BIN)
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    });
    let pid = child.id();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let fetch = move || {
        let http = Helper::http();
        curl(&[
            "--socks5-hostname",
            "127.0.0.1:1080",
            &format!("http://localhost:{}/", http.addr.port()),
        ])
    };
    let result = std::panic::catch_unwind(|| {
        assert_eq!(
            line.trim(),
            "ferrosocks ready: listening on 127.0.0.1:1080",
            "without root the test needs port 1080 of this machine: stop the server that \
             holds it (e.g. the README's `cargo run --release`), or run ./test.sh as root"
        );
        let (code, out, err) = if in_netns {
            in_netns_of(pid, fetch)
        } else {
            fetch()
        };
        assert_eq!((code, out.as_str()), (0, HTTP_BODY), "{err}");
    });
    // SAFETY: kill(2) on our own child (unshare and sh exec the server: same PID).
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if let Err(e) = result {
        eprintln!("server's stderr:\n{err}");
        std::panic::resume_unwind(e);
    }
    assert!(
        err.contains("info: pass(1): tcp/connect [: 127.0.0.1."),
        "{err}"
    );
    assert!(err.contains("info: Exiting on signal 15"), "{err}");
    assert!(out.status.success());
}
