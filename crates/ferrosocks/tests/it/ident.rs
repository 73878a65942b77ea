//! `rfc931` (ident) against a real identd: Debian's oidentd, started on 127.0.0.1:113.
//! Port 113 is fixed by RFC 1413, so every ident case runs in this one test, in order:
//! first with no identd listening, then with oidentd.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const OIDENTD: &str = "/usr/sbin/oidentd";

struct Oidentd(std::process::Child);

impl Drop for Oidentd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn socks4(proxy: std::net::SocketAddr, target: std::net::SocketAddr, user: &[u8]) -> u8 {
    let mut c = Raw::connect(proxy);
    let mut req = vec![4, 1];
    req.extend_from_slice(&target.port().to_be_bytes());
    req.extend_from_slice(&[127, 0, 0, 1]);
    req.extend_from_slice(user);
    req.push(0);
    c.send(&req);
    c.read_exact(8)[1]
}

#[test]
fn rfc931_with_and_without_an_identd() {
    assert!(
        std::path::Path::new(OIDENTD).exists(),
        "oidentd is not installed: run ./test.sh"
    );
    assert!(
        TcpStream::connect("127.0.0.1:113").is_err(),
        "something already listens on 127.0.0.1:113"
    );
    let (_, me, _) = run(Command::new("id").arg("-un"));
    let me = me.trim().to_owned();
    let echo = Helper::echo();
    let sconf = conf("connect disconnect error")
        .replace("socksmethod: none", "socksmethod: rfc931")
        .replace("    log: connect disconnect error\n}\nsocks", "    log: connect disconnect error\n}\nsocks block {\n    from: 0/0 to: 0/0\n    user: nobody-at-all\n    log: connect\n}\nsocks");
    let p = Proxy::start(&sconf.replace(
        "socks pass {\n    from: 127.0.0.0/8 to: 0/0\n",
        &format!("socks pass {{\n    from: 127.0.0.0/8 to: 0/0\n    user: {me}\n"),
    ));

    // No identd: SOCKS5 gets "no acceptable method", SOCKS4 0x5C.
    assert_eq!(
        Raw::connect(p.addr).send(&[5, 1, 0]).read_to_close(),
        [5, 0xff]
    );
    assert_eq!(socks4(p.addr, echo.addr, b""), 0x5c);
    p.wait_for("the failed lookup", |m| {
        m.contains(
            "rfc931 authentication failed: ident query to 127.0.0.1:113 failed: Connection refused",
        )
    });

    let _identd = Oidentd(
        Command::new(OIDENTD)
            .args(["-i", "-S", "-q", "-a", "127.0.0.1", "-p", "113"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect("127.0.0.1:113").is_err() {
        assert!(Instant::now() < deadline, "oidentd did not start");
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(50));
    }

    // SOCKS5: identd names us; the rule for our user passes.
    let (mut c, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0, "{}", p.messages().join("\n"));
    c.send(b"id");
    assert_eq!(c.read_exact(2), b"id");
    drop(c);
    let m = p.wait_for("the rfc931 record", |m| {
        m.contains(&format!("tcp/connect [: rfc931%{me}@127.0.0.1."))
    });
    assert!(
        m.iter().any(|l| l.starts_with("pass(2): tcp/connect")),
        "{m:?}"
    );
    // SOCKS4: a USERID that is not ours gets 0x5D; ours, or none, passes.
    assert_eq!(socks4(p.addr, echo.addr, b"someone-else"), 0x5d);
    assert_eq!(socks4(p.addr, echo.addr, me.as_bytes()), 0x5a);
    assert_eq!(socks4(p.addr, echo.addr, b""), 0x5a);

    // clientmethod rfc931 with a client rule for our user only.
    let cconf = conf("connect")
        .replace("clientmethod: none", "")
        .replace("client pass {\n    from: 127.0.0.0/8 to: 0.0.0.0/0\n", &format!("client pass {{\n    from: 127.0.0.0/8 to: 0.0.0.0/0\n    clientmethod: rfc931\n    user: {me}\n"));
    let q = Proxy::start(&cconf);
    let (_, reply) = Raw::connect_v4(q.addr, echo.addr);
    assert_eq!(reply[1], 0);
    let other = conf("connect").replace("client pass {\n    from: 127.0.0.0/8 to: 0.0.0.0/0\n", "client pass {\n    from: 127.0.0.0/8 to: 0.0.0.0/0\n    clientmethod: rfc931\n    user: nobody-at-all\n");
    let r = Proxy::start(&other);
    assert_eq!(
        Raw::connect(r.addr).send(&[5, 1, 0]).read_to_close(),
        b"",
        "no client rule matches: closed"
    );
}
