//! Malformed and refused requests: the right reply code or a clean close, a log line,
//! and the server keeps serving everyone else.

use std::io::{ErrorKind, Read};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use crate::support::*;

fn proxy() -> Proxy {
    Proxy::start(
        "logoutput: @LOG@\ninternal: 127.0.0.1 port = 0\nsocksmethod: none\ntimeout.negotiate: 1\n\
         client pass { from: 127.0.0.0/8 to: 0/0\nlog: disconnect error\n}\n\
         socks block { from: 0/0 to: 127.0.0.1/32 port = 9\nlog: connect\n}\n\
         socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8\nlog: connect disconnect error\n}\n",
    )
}

/// After each bad client, a good one still gets through.
fn still_serves(p: &Proxy, echo: &Helper) {
    let (mut c, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0x00);
    c.send(b"ok");
    assert_eq!(c.read_exact(2), b"ok");
}

fn request(p: &Proxy, bytes: &[u8]) -> Vec<u8> {
    let mut c = Raw::connect(p.addr);
    c.send(&[5, 1, 0]);
    assert_eq!(c.read_exact(2), [5, 0]);
    c.send(bytes);
    c.read_to_close()
}

#[test]
fn malformed_handshakes() {
    let p = proxy();
    let echo = Helper::echo();
    // Garbage / wrong version byte: closed without a SOCKS5 reply.
    assert_eq!(
        Raw::connect(p.addr)
            .send(b"GET / HTTP/1.0\r\n\r\n")
            .read_to_close(),
        b""
    );
    assert_eq!(
        Raw::connect(p.addr)
            .send(&[6, 1, 0, 80, 127, 0, 0, 1, 0])
            .read_to_close(),
        b""
    );
    // SOCKS4 with an unknown command, and a SOCKS4a name that is empty: 0x5B.
    assert_eq!(
        Raw::connect(p.addr)
            .send(&[4, 3, 0, 80, 127, 0, 0, 1, 0])
            .read_to_close()[..2],
        [0, 0x5b]
    );
    assert_eq!(
        Raw::connect(p.addr)
            .send(&[4, 1, 0, 80, 0, 0, 0, 1, b'u', 0, 0])
            .read_to_close()[..2],
        [0, 0x5b]
    );
    // A greeting that offers no method: none acceptable, as Dante answers it.
    assert_eq!(
        Raw::connect(p.addr).send(&[5, 0]).read_to_close(),
        [5, 0xff]
    );
    // Truncated greeting, then the client goes away.
    {
        let mut c = Raw::connect(p.addr);
        c.send(&[5]);
    }
    // No acceptable method: 0xFF.
    assert_eq!(
        Raw::connect(p.addr).send(&[5, 1, 0x02]).read_to_close(),
        [5, 0xff]
    );
    still_serves(&p, &echo);
    // Unknown command: 0x07; unknown address type: 0x08.
    assert_eq!(
        request(&p, &[5, 9, 0, 1, 127, 0, 0, 1, 0, 80])[..2],
        [5, 0x07]
    );
    assert_eq!(
        request(&p, &[5, 1, 0, 7, 1, 2, 3, 4, 0, 80])[..2],
        [5, 0x08]
    );
    // Zero-length domain name and a bad byte in one: host unreachable.
    assert_eq!(request(&p, &[5, 1, 0, 3, 0, 0, 80])[..2], [5, 0x04]);
    assert_eq!(
        request(&p, b"\x05\x01\x00\x03\x03a\x00b\x00\x50")[..2],
        [5, 0x04]
    );
    // Wrong version in the request: general failure.
    assert_eq!(
        request(&p, &[4, 1, 0, 1, 127, 0, 0, 1, 0, 80])[..2],
        [5, 0x01]
    );
    still_serves(&p, &echo);
    let m = p.wait_for("the last refusal", |m| {
        m.contains(": unknown SOCKS version 4 in client request")
    });
    let all = m.join("\n");
    for expected in [
        "error after reading 1 byte in 0 seconds: unknown SOCKS version 71 in client request",
        "error after reading 1 byte in 0 seconds: unknown SOCKS version 6 in client request",
        "request was not performed due to error: unrecognized v4 command: 3",
        "bad SOCKS4 request: empty domain name",
        "error after reading 2 bytes in 0 seconds: client offered no acceptable authentication method",
        "error after reading 1 byte in 0 seconds: eof from local client",
        "error after reading 3 bytes in 0 seconds: client offered no acceptable authentication method",
        "error after reading 5 bytes in 0 seconds: unknown socks_v5 command: 9",
        "error after reading 7 bytes in 0 seconds: unknown socks_v5 address type: 7",
        "error after reading 10 bytes in 0 seconds: bad request: empty domain name",
        "error after reading 13 bytes in 0 seconds: bad request: domain name has invalid byte 0x00",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    assert!(m.iter().all(|l| !l.contains("panicked")));
}

/// RFC 1929: a sub-negotiation with a bad VER or an empty UNAME is answered (`01 01`)
/// only once all of it has arrived; cut short by end of file or `timeout.negotiate`, it
/// is closed without an answer.
#[test]
fn a_bad_username_request_is_answered_only_when_complete() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "alice:pw\n").unwrap();
    let p = Proxy::start(&format!(
        "logoutput: @LOG@\ninternal: 127.0.0.1 port = 0\nsocksmethod: username\n\
         passwordfile: {}\ntimeout.negotiate: 1\n\
         client pass {{ from: 127.0.0.0/8 to: 0/0\n}}\n\
         socks pass {{ from: 127.0.0.0/8 to: 0/0\n}}\n",
        users.display()
    ));
    let greeted = || {
        let mut c = Raw::connect(p.addr);
        c.send(&[5, 1, 2]);
        assert_eq!(c.read_exact(2), [5, 2]);
        c
    };
    let no_answer_yet = |c: &mut Raw| {
        c.0.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut b = [0u8; 2];
        match c.0.read(&mut b) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("answered before the message was complete: {other:?} {b:?}"),
        }
        c.0.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    };
    // ULEN = 0, then PLEN = 0x73 and the first byte of the password.
    let mut c = greeted();
    c.send(&[1, 0, 0x73, b'o']);
    no_answer_yet(&mut c);
    c.send(&[b'x'; 0x72]);
    assert_eq!(c.read_to_close(), [1, 1]);
    // VER = 2: the name and the password still come first.
    let mut c = greeted();
    c.send(b"\x02\x05a");
    no_answer_yet(&mut c);
    c.send(b"lice\x02pw");
    assert_eq!(c.read_to_close(), [1, 1]);
    // Cut short by end of file, or by timeout.negotiate: closed without an answer.
    let mut c = greeted();
    c.send(b"\x02\x05a");
    c.0.shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.read_to_close(), b"");
    let mut c = greeted();
    c.send(&[1, 0, 0x73]);
    assert_eq!(c.read_to_close(), b"");
    let m = p.wait_for("the timeout", |m| {
        m.ends_with(": negotiate timeout after 1 second")
    });
    let all = m.join("\n");
    for expected in [
        "bad username/password request: ",
        "error after reading 6 bytes in 0 seconds: eof from local client",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
}

#[test]
fn a_stalled_handshake_times_out_and_others_are_served_meanwhile() {
    let p = proxy();
    let echo = Helper::echo();
    let start = Instant::now();
    // Announces 200 methods, sends one, then stalls.
    let mut stalled = Raw::connect(p.addr);
    stalled.send(&[5, 200, 0]);
    still_serves(&p, &echo);
    assert_eq!(stalled.read_to_close(), b"");
    assert!(start.elapsed() >= Duration::from_millis(900));
    p.wait_for("the timeout", |m| {
        m.ends_with(": negotiate timeout after 1 second")
    });
}

#[test]
fn refused_blocked_and_unreachable_targets_get_their_reply_codes() {
    let p = proxy();
    let (_, reply) = Raw::connect_v4(
        p.addr,
        format!("127.0.0.1:{}", closed_port()).parse().unwrap(),
    );
    assert_eq!(reply[1], 0x05, "connection refused");
    let (_, reply) = Raw::connect_v4(p.addr, "127.0.0.1:9".parse().unwrap());
    assert_eq!(reply[1], 0x02, "blocked by rule 1");
    let (_, reply) = Raw::connect_v4(p.addr, "192.0.2.1:80".parse().unwrap());
    assert_eq!(reply[1], 0x02, "default rule #0");
    let reply = request(&p, b"\x05\x01\x00\x03\x13nonexistent.invalid\x00\x50");
    assert_eq!(reply[1], 0x04, "name does not resolve");
    let m = p.wait_for("the default-rule block", |m| m.contains("socks-rule #0"));
    let all = m.join("\n");
    assert!(all.contains("block(1): tcp/connect ]: 127.0.0.1."), "{all}");
    assert!(
        all.contains(
            ": blocked by higher-level socks-rule #0: no rules matched; using default block rule"
        ),
        "{all}"
    );
}

/// An outgoing socket that cannot be bound to the `external:` address is the proxy's
/// own failure, not the remote peer's: "network unreachable", and Dante 1.4.2's words
/// for it under the client rule, with no summary. The address is taken away after
/// start-up, in a network namespace of the test's own.
#[test]
fn a_failed_bind_to_the_external_address_is_a_local_error() {
    // SAFETY: geteuid(2) has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "this test makes a network namespace and needs root: run ./test.sh as root (CI does)"
    );
    require("unshare");
    require("ip");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let conf = dir.path().join("sockd.conf");
    std::fs::write(
        &conf,
        format!(
            "logoutput: {}\ninternal: 127.0.0.1 port = 0\nexternal: 10.9.9.9\nsocksmethod: none\n\
             client pass {{ from: 127.0.0.0/8 to: 0/0\nlog: connect disconnect error\n}}\n\
             socks pass {{ from: 127.0.0.0/8 to: 0/0\nlog: connect disconnect error\n}}\n",
            log.display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && ip addr add 10.9.9.9/32 dev lo && exec \"$0\" -f \"$1\"",
            BIN,
        ])
        .arg(&conf)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let result = std::panic::catch_unwind(|| {
        let addr: std::net::SocketAddr = line
            .trim()
            .strip_prefix("ferrosocks ready: listening on ")
            .unwrap_or_else(|| panic!("no ready line: {line:?}"))
            .parse()
            .unwrap();
        in_netns_of(pid, move || {
            let (code, _, err) = run(std::process::Command::new("ip").args([
                "addr",
                "del",
                "10.9.9.9/32",
                "dev",
                "lo",
            ]));
            assert_eq!(code, 0, "{err}");
            let mut c = Raw::connect(addr);
            c.send(&[5, 1, 0]);
            assert_eq!(c.read_exact(2), [5, 0]);
            c.send(b"\x05\x01\x00\x03\x09localhost\x00\x09");
            assert_eq!(c.read_to_close()[..2], [5, 0x03], "network unreachable");
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let text = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("tcp/accept ]:") || Instant::now() > deadline {
                break text;
            }
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(20));
        };
        let records: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once("info: ").map(|(_, r)| r))
            .filter(|r| r.starts_with("pass(") || r.starts_with("block("))
            .collect();
        let why = "could not bind address to use on external side: \
                   failed to bind address on external side: Cannot assign requested address";
        assert_eq!(records.len(), 3, "{text}");
        assert!(
            records[0].starts_with("pass(1): tcp/accept [: 127.0.0.1."),
            "{text}"
        );
        assert!(
            records[1].starts_with("block(1): tcp/connect ]: 127.0.0.1.")
                && records[1].ends_with(&format!(" -> 0.0.0.0.0 localhost.9: {why}")),
            "{text}"
        );
        assert!(
            records[2].starts_with("block(1): tcp/accept ]: 127.0.0.1.")
                && records[2]
                    .ends_with(&format!(": request was not performed due to error: {why}")),
            "{text}"
        );
        assert!(!text.contains("remote peer"), "{text}");
    });
    // SAFETY: kill(2) on our own child (unshare and sh exec the server: same PID).
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    if let Err(e) = result {
        eprintln!("server's stderr:\n{}", String::from_utf8_lossy(&out.stderr));
        std::panic::resume_unwind(e);
    }
}

/// Handshakes that fail, one client at a time, as Dante 1.4.2 would see them: the reply
/// bytes each got and the records: negotiation-failures.golden.
pub fn negotiation_failures(imp: Impl) -> String {
    let p = imp.start(
        "logoutput: @LOG@\ninternal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\n\
         socksmethod: none\ntimeout.negotiate: 1\n\
         client pass {\n    from: 127.0.0.0/8 to: 0/0\n    log: connect disconnect error\n}\n\
         socks pass {\n    from: 127.0.0.0/8 to: 127.0.0.0/8\n    log: connect disconnect error\n}\n",
    );
    let p = &*p;
    let ended = |m: &[String]| m.iter().filter(|l| l.contains("tcp/accept ]:")).count();
    let mut out = String::new();
    let conversations: [(&str, &[u8], bool); 13] = [
        ("HTTP instead of SOCKS", b"GET / HTTP/1.0\r\n\r\n", false),
        ("version 6", &[6, 1, 0, 80, 127, 0, 0, 1, 0], false),
        ("version 0", &[0], false),
        ("no method offered", &[5, 0], false),
        ("truncated greeting, then EOF", &[5], true),
        ("no acceptable method", &[5, 1, 2], false),
        ("SOCKS4 command 3", &[4, 3, 0, 80, 127, 0, 0, 1, 0], false),
        (
            "SOCKS4a, empty name",
            &[4, 1, 0, 80, 0, 0, 0, 1, b'u', 0, 0],
            false,
        ),
        (
            "command 9",
            &[5, 1, 0, 5, 9, 0, 1, 127, 0, 0, 1, 0, 80],
            false,
        ),
        (
            "address type 7",
            &[5, 1, 0, 5, 1, 0, 7, 1, 2, 3, 4, 0, 80],
            false,
        ),
        (
            "request version 4",
            &[5, 1, 0, 4, 1, 0, 1, 127, 0, 0, 1, 0, 80],
            false,
        ),
        (
            "half a request, then EOF",
            &[5, 1, 0, 5, 1, 0, 1, 127],
            true,
        ),
        ("stalled greeting", &[5, 200, 0], false),
    ];
    for (what, bytes, eof) in conversations {
        let before = ended(&p.messages());
        let mut c = Raw::connect(p.addr());
        c.send(bytes);
        if eof {
            c.0.shutdown(Shutdown::Write).unwrap();
        }
        let reply = c.read_to_close();
        let hex: Vec<String> = reply.iter().map(|b| format!("{b:02x}")).collect();
        out.push_str(&format!("{what}: reply [{}]\n", hex.join(" ")));
        // Every failure ends with the client rule's line; wait for it (at most 5 s).
        let deadline = Instant::now() + Duration::from_secs(5);
        while ended(&p.messages()) == before && Instant::now() < deadline {
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(20));
        }
        let records = p.records();
        let mut k = vec![(p.addr().port(), "PROXY")];
        let port = c.0.local_addr().unwrap().port();
        k.push((port, "CLIENT"));
        let lines: Vec<String> = records
            .into_iter()
            .filter(|l| l.contains(&format!("127.0.0.1.{port} ")))
            .collect();
        out.push_str(&normalize(&lines, &k));
    }
    out
}

#[test]
fn negotiation_failures_are_logged_as_dante_logs_them() {
    assert_golden(
        "negotiation-failures.golden",
        &negotiation_failures(Impl::Ferrosocks),
    );
}

/// RFC 1929 failures against the system's users (`socksmethod: username`, as Dante
/// checks them): the reply bytes each got and the records: auth-failures.golden.
pub fn auth_failures(imp: Impl) -> String {
    let p = imp.start(
        "logoutput: @LOG@\ninternal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\n\
         socksmethod: username\ntimeout.negotiate: 5\n\
         client pass {\n    from: 127.0.0.0/8 to: 0/0\n    log: connect disconnect error\n}\n\
         socks pass {\n    from: 127.0.0.0/8 to: 127.0.0.0/8\n    log: connect disconnect error\n}\n",
    );
    let p = &*p;
    let ended = |m: &[String]| m.iter().filter(|l| l.contains("tcp/accept ]:")).count();
    let mut out = String::new();
    let conversations: [(&str, &[u8]); 4] = [
        ("no such user", b"\x05\x01\x02\x01\x0bno-such-usr\x02pw"),
        (
            "root, wrong password",
            b"\x05\x01\x02\x01\x04root\x0cnot-the-pass",
        ),
        (
            "sub-negotiation version 2",
            b"\x05\x01\x02\x02\x04root\x02pw",
        ),
        ("empty user name", b"\x05\x01\x02\x01\x00\x02pw"),
    ];
    for (what, bytes) in conversations {
        let before = ended(&p.messages());
        let mut c = Raw::connect(p.addr());
        c.send(bytes);
        c.0.shutdown(Shutdown::Write).unwrap();
        let reply = c.read_to_close();
        let hex: Vec<String> = reply.iter().map(|b| format!("{b:02x}")).collect();
        out.push_str(&format!("{what}: reply [{}]\n", hex.join(" ")));
        let deadline = Instant::now() + Duration::from_secs(5);
        while ended(&p.messages()) == before && Instant::now() < deadline {
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(20));
        }
        let port = c.0.local_addr().unwrap().port();
        let lines: Vec<String> = p
            .records()
            .into_iter()
            .filter(|l| l.contains(&format!("127.0.0.1.{port} ")))
            .collect();
        out.push_str(&normalize(
            &lines,
            &[(p.addr().port(), "PROXY"), (port, "CLIENT")],
        ));
    }
    out
}

#[test]
fn auth_failures_are_logged_as_dante_logs_them() {
    assert_golden("auth-failures.golden", &auth_failures(Impl::Ferrosocks));
}
