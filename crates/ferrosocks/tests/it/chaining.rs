//! Server chaining (`route`), with a real Dante (Debian's dante-server) on either side
//! of ferrosocks, ferrosocks behind itself (SOCKS4, username forwarding), an HTTP
//! CONNECT upstream, and upstreams that misbehave.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const DANTED: &str = "/usr/sbin/danted";

/// A real Dante server on loopback, ended by PID on drop.
struct Dante {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Dante {
    fn start(extra: &str) -> Self {
        assert!(
            std::path::Path::new(DANTED).exists(),
            "dante-server is not installed: run ./test.sh"
        );
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("dante.log");
        let port = closed_port();
        let conf = format!(
            "logoutput: {}\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\nclientmethod: none\nsocksmethod: none\n\
             user.privileged: root\nuser.unprivileged: nobody\n\
             client pass {{\n    from: 127.0.0.0/8 to: 0.0.0.0/0\n    log: connect disconnect error\n}}\n\
             socks pass {{\n    from: 127.0.0.0/8 to: 0.0.0.0/0\n    log: connect disconnect error\n}}\n{extra}",
            log.display()
        );
        let path = dir.path().join("danted.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(DANTED)
            .arg("-f")
            .arg(&path)
            .arg("-N")
            .arg("1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Self {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "danted did not start; log:\n{}",
                d.log_text()
            );
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let t = self.log_text();
            if t.contains(what) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "Dante's log lacks {what:?}:\n{t}"
            );
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dante {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl(proxy: SocketAddr, flag: &str, url: &str) -> (i32, String, String) {
    require("curl");
    run(Command::new("curl").args(["-sS", "--max-time", "20", flag, &proxy.to_string(), url]))
}

fn route_conf(via_port: u16, protocol: &str, method: &str) -> String {
    format!(
        "{}route {{\n    from: 0/0 to: 0/0 via: 127.0.0.1 port = {via_port}\n    proxyprotocol: {protocol}\n    method: {method}\n}}\n",
        conf("connect disconnect error")
    )
}

#[test]
fn client_to_ferrosocks_to_dante_to_target() {
    let http = Helper::http();
    let dante = Dante::start("");
    let p = Proxy::start(&route_conf(dante.port, "socks_v5", "none"));
    let (code, out, err) = curl(
        p.addr,
        "--socks5-hostname",
        &format!("http://localhost:{}/", http.addr.port()),
    );
    assert_eq!(
        (code, out.as_str()),
        (0, HTTP_BODY),
        "{err}\nDante:\n{}",
        dante.log_text()
    );
    let m = p.wait_for("the chained summary", |m| m.contains("tcp/connect ]:"));
    let start = m.iter().find(|l| l.contains("tcp/connect [:")).unwrap();
    // PROXY-EXT NEXTPROXY [LASTPROXY-EXT] TARGET
    let dst = start.split(" -> ").nth(1).unwrap();
    let parts: Vec<&str> = dst.split(' ').collect();
    assert_eq!(parts.len(), 4, "{start}");
    assert_eq!(parts[1], format!("127.0.0.1.{}", dante.port));
    assert!(
        parts[2].starts_with("[127.0.0.1.") && parts[2].ends_with(']'),
        "{start}"
    );
    assert_eq!(parts[3], format!("localhost.{}", http.addr.port()));
    let d = dante.wait_log("tcp/connect ]:");
    assert!(
        d.contains(&format!(
            "pass(1): tcp/connect [: {} 127.0.0.1.{} -> ",
            parts[0], dante.port
        )),
        "{d}"
    );
}

#[test]
fn client_to_dante_to_ferrosocks_to_target() {
    let http = Helper::http();
    let p = Proxy::start(&conf("connect disconnect error"));
    let dante = Dante::start(&format!(
        "route {{\n    from: 0.0.0.0/0 to: 0.0.0.0/0 via: 127.0.0.1 port = {}\n    proxyprotocol: socks_v5\n    method: none\n}}\n",
        p.addr.port()
    ));
    let dante_addr: SocketAddr = format!("127.0.0.1:{}", dante.port).parse().unwrap();
    let (code, out, err) = curl(
        dante_addr,
        "--socks5",
        &format!("http://127.0.0.1:{}/", http.addr.port()),
    );
    assert_eq!(
        (code, out.as_str()),
        (0, HTTP_BODY),
        "{err}\nDante:\n{}",
        dante.log_text()
    );
    let m = p.wait_for("the summary", |m| m.contains("tcp/connect ]:"));
    let ours = m
        .iter()
        .find(|l| l.contains("tcp/connect [:"))
        .unwrap()
        .clone();
    let d = dante.wait_log("tcp/connect ]:");
    // Dante names us as NEXTPROXY and our external address in brackets.
    let our_ext = ours
        .split(" -> ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(
        d.contains(&format!(
            "127.0.0.1.{} [{our_ext}] 127.0.0.1.{}",
            p.addr.port(),
            http.addr.port()
        )),
        "ours: {ours}\nDante:\n{d}"
    );
}

#[test]
fn socks4_upstream_and_username_forwarding() {
    require("htpasswd");
    let http = Helper::http();
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let (code, _, _) = run(Command::new("htpasswd")
        .args(["-B", "-b", "-c"])
        .arg(&users)
        .args(["alice", "pw-alice"]));
    assert_eq!(code, 0);
    let auth = |extra: &str| {
        conf("connect disconnect error").replace(
            "socksmethod: none",
            &format!("socksmethod: username\npasswordfile: {}", users.display()),
        ) + extra
    };
    // The upstream demands a username; the front forwards the client's.
    let upstream = Proxy::start(&auth(""));
    let front = Proxy::start(&auth(&format!(
        "route {{\n    from: 0/0 to: 0/0 via: 127.0.0.1 port = {}\n    proxyprotocol: socks_v5\n    method: username\n}}\n",
        upstream.addr.port()
    )));
    let url = format!("http://127.0.0.1:{}/", http.addr.port());
    let (code, out, err) = run(Command::new("curl").args([
        "-sS",
        "--socks5",
        &front.addr.to_string(),
        "--proxy-user",
        "alice:pw-alice",
        &url,
    ]));
    assert_eq!((code, out.as_str()), (0, HTTP_BODY), "{err}");
    upstream.wait_for("alice upstream", |m| {
        m.contains("tcp/connect [: username%alice@127.0.0.1.")
    });
    // SOCKS4 upstream (a plain ferrosocks).
    let plain = Proxy::start(
        &conf("connect disconnect")
            .replace("logoutput: @LOG@", "logoutput: @LOG@ json:@DIR@/log.json"),
    );
    let front4 = Proxy::start(&route_conf(plain.addr.port(), "socks_v4", "none"));
    let (code, out, err) = curl(
        front4.addr,
        "--socks5-hostname",
        &format!("http://localhost:{}/", http.addr.port()),
    );
    assert_eq!((code, out.as_str()), (0, HTTP_BODY), "{err}");
    // The upstream got the name (SOCKS4a): its line shows the address it connected to,
    // its JSON record the name.
    plain.wait_for("the request upstream", |m| m.contains("tcp/connect [:"));
    let json = plain.dir.path().join("log.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&json)
        .unwrap_or_default()
        .contains(r#""target_name":"localhost""#)
    {
        assert!(
            Instant::now() < deadline,
            "no SOCKS4a name upstream: {}",
            std::fs::read_to_string(&json).unwrap_or_default()
        );
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(20));
    }
    let all = front.messages().join("\n") + &upstream.messages().join("\n");
    assert!(!all.contains("pw-alice"), "a password reached a log");
}

/// A minimal HTTP CONNECT proxy: answers 200 and splices, or 403 for port 9.
fn http_connect_proxy() -> Helper {
    Helper::start(|mut c, _| {
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if c.read(&mut b).unwrap_or(0) == 0 {
                return;
            }
            head.push(b[0]);
        }
        let line = String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let authority = line.split(' ').nth(1).unwrap_or_default().to_owned();
        if authority.ends_with(":9") {
            let _ = c.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        let Ok(mut up) = TcpStream::connect(authority.replace("localhost", "127.0.0.1")) else {
            let _ = c.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
            return;
        };
        let _ = c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
        let (mut c2, mut up2) = (c.try_clone().unwrap(), up.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut up2, &mut c2);
            let _ = c2.shutdown(std::net::Shutdown::Write);
        });
        let _ = std::io::copy(&mut c, &mut up);
        let _ = up.shutdown(std::net::Shutdown::Write);
    })
}

#[test]
fn http_connect_upstream() {
    let http = Helper::http();
    let upstream = http_connect_proxy();
    let p = Proxy::start(&route_conf(upstream.addr.port(), "http", "none"));
    let (code, out, err) = curl(
        p.addr,
        "--socks5-hostname",
        &format!("http://localhost:{}/", http.addr.port()),
    );
    assert_eq!((code, out.as_str()), (0, HTTP_BODY), "{err}");
    let m = p.wait_for("the summary", |m| m.contains("tcp/connect ]:"));
    // No LASTPROXY-EXT from an HTTP proxy: PROXY-EXT NEXTPROXY TARGET.
    assert!(
        m.iter().any(|l| l.contains(&format!(
            " 127.0.0.1.{} localhost.{}",
            upstream.addr.port(),
            http.addr.port()
        ))),
        "{m:?}"
    );
    let (code, _, _) = curl(p.addr, "--socks5", "http://127.0.0.1:9/");
    assert_ne!(code, 0);
    p.wait_for("the refusal", |m| {
        m.contains(
            "serverchain failed: upstream HTTP proxy answered \"HTTP/1.1\\s403\\sForbidden\"",
        )
    });
}

#[test]
fn misbehaving_upstreams_fail_cleanly() {
    let echo = Helper::echo();
    // Garbage, silence, and nobody listening.
    let garbage = Helper::start(|mut c, _| {
        let _ = c.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
    });
    let silent = Helper::silent();
    let closed = closed_port();
    for (port, expect) in [
        (garbage.addr.port(), "serverchain failed: upstream proxyserver answered garbage: unsupported SOCKS version 0x48"),
        (silent.addr.port(), "serverchain failed: upstream proxyserver 127.0.0.1:"),
        (closed, "serverchain failed: could not connect to upstream proxyserver: connect(2) to 127.0.0.1."),
    ] {
        let p = Proxy::start(&route_conf(port, "socks_v5", "none").replace("socksmethod: none", "socksmethod: none\ntimeout.connect: 1"));
        let (_, reply) = Raw::connect_v4(p.addr, echo.addr);
        assert_ne!(reply[1], 0, "upstream on {port}");
        p.wait_for(expect, |m| m.contains(expect));
        // Still serving: a whole SOCKS greeting answered, not only a connect the
        // backlog would accept from a wedged server.
        let mut c = Raw::connect(p.addr);
        assert_eq!(c.send(&[5, 1, 0]).read_exact(2), [5, 0], "upstream on {port}");
    }
}
