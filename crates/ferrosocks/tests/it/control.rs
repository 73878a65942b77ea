//! Signals and time limits: SIGHUP reload and log reopening, SIGTERM's graceful stop,
//! timeout.io, timeout.connect.

use std::time::Duration;

use crate::support::*;

#[test]
fn sighup_reloads_rules_keeps_sessions_and_reopens_logs() {
    let echo = Helper::echo();
    let p = Proxy::start(&conf("connect disconnect"));
    // A session opened under the first configuration.
    let (mut old, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0);
    // Logging is asynchronous: the line must be in the file before it is rotated.
    p.wait_for("the start line", |m| m.contains("tcp/connect [:"));

    // New rules block everything; the old log file is moved away (logrotate).
    let blocking = conf("connect disconnect").replace("socks pass", "socks block");
    std::fs::write(
        &p.conf,
        blocking.replace("@LOG@", &p.log.display().to_string()),
    )
    .unwrap();
    let rotated = p.dir.path().join("ferrosocks.log.1");
    std::fs::rename(&p.log, &rotated).unwrap();
    p.signal(libc::SIGHUP);
    p.wait_for("the reload", |m| m == "Configuration reloaded");

    let (_, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0x02, "new sessions see the new rules");
    old.send(b"still");
    assert_eq!(
        old.read_exact(5),
        b"still",
        "the running session keeps its rules"
    );

    // A broken file is reported in full and the running configuration stays.
    std::fs::write(&p.conf, "socksmethod: bogus\ndebug: 9\n").unwrap();
    p.signal(libc::SIGHUP);
    let m = p.wait_for("the rejected reload", |m| {
        m.contains("keeping the running configuration")
    });
    assert!(
        m.iter()
            .any(|l| l.contains("sockd.conf:1:14: unknown method \"bogus\"")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|l| l.contains("sockd.conf:2:1: debug level 9 out of range")),
        "{m:?}"
    );
    let (_, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0x02, "still the second configuration");
    let old_log = std::fs::read_to_string(&rotated).unwrap();
    assert!(
        old_log.contains("tcp/connect [:") && !old_log.contains("Configuration reloaded"),
        "{old_log}"
    );
}

#[test]
fn sigterm_lets_sessions_finish_then_cuts_and_logs_them() {
    let echo = Helper::echo();
    let mut p = Proxy::start_with(&conf("connect disconnect"), &["--grace-period", "1"]);
    let (mut c, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0);
    c.send(b"abc");
    assert_eq!(c.read_exact(3), b"abc");
    p.signal(libc::SIGTERM);
    p.wait_for("the shutdown notice", |m| {
        m.contains("Shutting down: 1 session(s) open")
    });
    // Still relaying during the grace period.
    c.send(b"de");
    assert_eq!(c.read_exact(2), b"de");
    assert!(
        std::net::TcpStream::connect(p.addr).is_err(),
        "still accepting after SIGTERM"
    );
    let status = p.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    assert_eq!(c.read_to_close(), b"");
    let m = p.messages();
    assert!(
        m.iter().any(|l| l.contains("tcp/connect ]: 5 -> ")
            && l.contains("administrative termination.  Session duration:")),
        "{m:?}"
    );
}

#[test]
fn idle_sessions_end_with_io_timeout() {
    let echo = Helper::echo();
    let p = Proxy::start(
        &conf("disconnect").replace("socksmethod: none", "socksmethod: none\ntimeout.io: 1"),
    );
    let (mut c, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0);
    assert_eq!(c.read_to_close(), b"");
    p.wait_for("the i/o timeout", |m| {
        m.ends_with("i/o timeout.  Session duration: 1s")
    });
}

#[test]
fn connect_timeout_replies_ttl_expired() {
    // A listener whose accept queue is full drops further SYNs: a connect to it hangs.
    let hole = Blackhole::new();
    let target = hole.addr;
    let p = Proxy::start(
        &conf("connect disconnect error")
            .replace("socksmethod: none", "socksmethod: none\ntimeout.connect: 1"),
    );
    let (_, reply) = Raw::connect_v4(p.addr, target);
    assert_eq!(reply[1], 0x06, "TTL expired / timeout");
    p.wait_for("the connect timeout", |m| {
        m.ends_with("connect timeout.  Session duration: 1s")
    });
}
