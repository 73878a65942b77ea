//! End-to-end tests of README ✅ features that had none of their own: `-L`/`-n`, the
//! `stdout` sink, `logformat: json`, `internal.log.LEVEL.error`, `external.rotation` for
//! TCP, `udp.connectdst`, reply 0x03 in a network namespace without routes, and the
//! default `/dev/log` syslog socket (a private one bind-mounted over it in a mount
//! namespace of the test's own; the real /dev/log is never touched).
// Plain threads: no tokio runtime here.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::commands::{all_commands, header};
use crate::support::*;

/// A SOCKS5 CONNECT to `echo` through `proxy`, one round trip of `payload`.
fn echo_round_trip(proxy: SocketAddr, echo: SocketAddr, payload: &[u8]) -> Raw {
    let (mut c, reply) = Raw::connect_v4(proxy, echo);
    assert_eq!(reply[1], 0, "CONNECT refused");
    c.send(payload);
    assert_eq!(c.read_exact(payload.len()), payload);
    c
}

/// A child whose stdout lines arrive on a channel; killed by PID on drop.
struct Spawned {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Spawned {
    fn new(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// The next stdout line within 20 s.
    fn line(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => l,
            Err(_) => {
                let _ = self.child.kill();
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("no line on stdout; stderr:\n{err}");
            }
        }
    }

    /// Lines until one that is the ready line; returns (address, the lines before it).
    fn ready(&mut self) -> (SocketAddr, Vec<String>) {
        let mut before = Vec::new();
        loop {
            let l = self.line();
            if let Some(a) = l.strip_prefix("ferrosocks ready: listening on ") {
                return (a.split(' ').next().unwrap().parse().unwrap(), before);
            }
            before.push(l);
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the child this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn root() {
    // SAFETY: geteuid(2) has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "this test makes namespaces and needs root: run ./test.sh as root (CI does)"
    );
    require("unshare");
}

#[test]
fn license_flag_and_n_is_accepted() {
    for flag in ["-L", "--license"] {
        let (code, out, err) = run(Command::new(BIN).arg(flag));
        assert_eq!(code, 0, "{flag}: {err}");
        assert!(
            out.contains("MIT license") && out.contains("Apache License 2.0"),
            "{flag}: {out}"
        );
    }
    // -n (Dante's "no fork") changes nothing: the proxy serves.
    let echo = Helper::echo();
    let p = Proxy::start_with(&conf("connect disconnect"), &["-n"]);
    drop(echo_round_trip(p.addr, echo.addr, b"with -n"));
    p.wait_for("the summary", |m| m.contains("tcp/connect ]: 7 -> "));
}

/// `logoutput: stdout`: every record after the ready line, each with Dante's prefix.
#[test]
fn stdout_sink_carries_the_records() {
    let echo = Helper::echo();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sockd.conf");
    std::fs::write(
        &path,
        conf("connect disconnect").replace("logoutput: @LOG@", "logoutput: stdout"),
    )
    .unwrap();
    let mut s = Spawned::new(Command::new(BIN).arg("-f").arg(&path));
    let pid = s.child.id();
    let (addr, before) = s.ready();
    drop(echo_round_trip(addr, echo.addr, b"to stdout"));
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = before;
    while !got.iter().any(|l| l.contains("tcp/accept ]:")) {
        assert!(Instant::now() < deadline, "no summary on stdout: {got:?}");
        got.push(s.line());
    }
    for l in &got {
        let (prefix, msg) =
            traffic_log::Prefix::parse_line(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
        assert_eq!((prefix.program.as_str(), prefix.pid), ("ferrosocks", pid));
        if msg.starts_with("pass(") || msg.starts_with("block(") {
            assert_eq!(traffic_log::Record::parse(msg).unwrap().to_string(), msg);
        }
    }
    assert!(
        got.iter()
            .any(|l| l.contains("pass(1): tcp/connect ]: 9 -> ")),
        "{got:?}"
    );
}

/// `logformat: json` makes the file sink write JSON lines, each rebuilding its text.
#[test]
fn logformat_json_keyword_writes_json_lines() {
    let echo = Helper::echo();
    let p = Proxy::start(
        &conf("connect disconnect")
            .replace("logoutput: @LOG@\n", "logoutput: @LOG@\nlogformat: json\n"),
    );
    drop(echo_round_trip(p.addr, echo.addr, b"json"));
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let t = std::fs::read_to_string(&p.log).unwrap_or_default();
        if t.contains("tcp/accept ]:") {
            break t;
        }
        assert!(Instant::now() < deadline, "no summary: {t}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut traffic = 0;
    for l in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"));
        let msg = v["msg"].as_str().unwrap_or_else(|| panic!("no msg: {l}"));
        assert_eq!(v["pid"], p.child.id());
        if msg.starts_with("pass(") || msg.starts_with("block(") {
            traffic += 1;
            assert_eq!(traffic_log::Record::from_json(&v).unwrap().to_string(), msg);
        }
    }
    // accept [:, connect [:, connect ]:, accept ]:
    assert_eq!(traffic, 4, "{text}");
}

/// A client's reset during the relay is an internal-side ECONNRESET: logged as a
/// warning with `internal.log.warning.error: ECONNRESET`, at debug only without it.
#[test]
fn internal_log_error_raises_a_client_reset_to_a_warning() {
    let echo = Helper::echo();
    for (extra, warned) in [
        ("internal.log.warning.error: ECONNRESET\n", true),
        ("", false),
    ] {
        let p = Proxy::start(&conf("connect disconnect error").replace(
            "socksmethod: none\n",
            &format!("socksmethod: none\n{extra}"),
        ));
        let c = echo_round_trip(p.addr, echo.addr, b"reset");
        let client = ep(c.0.local_addr().unwrap());
        socket2::SockRef::from(&c.0)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c);
        p.wait_for("the summary", |m| m.contains("tcp/accept ]:"));
        let text = std::fs::read_to_string(&p.log).unwrap();
        let warning = format!("warning: i/o error with client {client}: Connection reset by peer");
        assert_eq!(text.contains(&warning), warned, "{extra:?}:\n{text}");
        assert!(
            text.contains("local client error (Connection reset by peer)"),
            "{text}"
        );
    }
}

/// `external.rotation` for TCP: the target sees the first `external:` address (`none`),
/// the address the client reached (`same-same`), or the kernel's source (`route`).
#[test]
fn external_rotation_picks_the_source_address() {
    let peer = Helper::start(|c, got| {
        let ip = c.peer_addr().unwrap().ip().to_string();
        got.lock().unwrap().extend_from_slice(ip.as_bytes());
    });
    for (rotation, seen) in [
        ("none", "127.0.0.2"),
        ("same-same", "127.0.0.3"),
        ("route", "127.0.0.1"),
    ] {
        peer.received.lock().unwrap().clear();
        let p = Proxy::start(
            &conf("connect disconnect")
                .replace("internal: 127.0.0.1", "internal: 127.0.0.3")
                .replace(
                    "external: 127.0.0.1\n",
                    &format!("external: 127.0.0.2\nexternal.rotation: {rotation}\n"),
                ),
        );
        assert_eq!(p.addr.ip().to_string(), "127.0.0.3");
        let (_c, reply) = Raw::connect_v4(p.addr, peer.addr);
        assert_eq!(reply[1], 0, "{rotation}: refused");
        let deadline = Instant::now() + Duration::from_secs(10);
        while peer.received.lock().unwrap().is_empty() {
            assert!(
                Instant::now() < deadline,
                "{rotation}: the target saw nobody"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let got = String::from_utf8(peer.received.lock().unwrap().clone()).unwrap();
        assert_eq!(got, seen, "{rotation}");
    }
}

/// `udp.connectdst: yes` (the default) drops a reply from a host the client has not
/// sent to; with `no` it is relayed.
#[test]
fn udp_connectdst_drops_replies_from_strangers() {
    for (setting, relayed) in [("", false), ("udp.connectdst: no\n", true)] {
        let p = Proxy::start(&all_commands("connect disconnect").replace(
            "socksmethod: none\n",
            &format!("socksmethod: none\n{setting}"),
        ));
        let me = UdpSocket::bind("127.0.0.1:0").unwrap();
        me.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (ctl, reply) = associate(p.addr, me.local_addr().unwrap());
        let relay = relay_of(&reply);
        let target = UdpSocket::bind("127.0.0.1:0").unwrap();
        target
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to_target = target.local_addr().unwrap();
        me.send_to(&[header(to_target, 0), b"hello".to_vec()].concat(), relay)
            .unwrap();
        let mut buf = [0u8; 256];
        let (n, pext) = target.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        stranger.send_to(b"stranger", pext).unwrap();
        // Sent after the stranger's: the first one the client gets when that is dropped.
        target.send_to(b"target", pext).unwrap();
        let (n, _) = me.recv_from(&mut buf).unwrap();
        let first = buf[..n].to_vec();
        let from = |a: SocketAddr, d: &[u8]| [header(a, 0), d.to_vec()].concat();
        if relayed {
            assert_eq!(first, from(stranger.local_addr().unwrap(), b"stranger"));
            let (n, _) = me.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], from(to_target, b"target"));
        } else {
            assert_eq!(first, from(to_target, b"target"), "{setting:?}");
        }
        drop(ctl);
        // The summary counts what the client got: one reply, or two.
        let m = p.wait_for("the summary", |m| m.contains("udp/udpassociate ]:"));
        let summary = m
            .iter()
            .find(|l| l.contains("udp/udpassociate ]:"))
            .unwrap();
        let packets = if relayed { 2 } else { 1 };
        assert!(
            summary.contains(&format!(
                "udp/udpassociate ]: {}/{packets} -> ",
                if relayed { 34 } else { 16 }
            )),
            "{summary}"
        );
    }
}

/// A CONNECT to an address there is no route to: reply 0x03 (network unreachable), in
/// a network namespace with only a loopback interface.
#[test]
fn no_route_is_reply_0x03() {
    root();
    require("ip");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let conf = dir.path().join("sockd.conf");
    std::fs::write(
        &conf,
        format!(
            "logoutput: {}\ninternal: 127.0.0.1 port = 0\nsocksmethod: none\n\
             client pass {{ from: 127.0.0.0/8 to: 0/0\nlog: connect disconnect error\n}}\n\
             socks pass {{ from: 127.0.0.0/8 to: 0/0\nlog: connect disconnect error\n}}\n",
            log.display()
        ),
    )
    .unwrap();
    let mut s = Spawned::new(
        Command::new("unshare")
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec \"$0\" -f \"$1\"",
                BIN,
            ])
            .arg(&conf)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    );
    let (addr, _) = s.ready();
    in_netns_of(s.child.id(), move || {
        let mut c = Raw::connect(addr);
        c.send(&[5, 1, 0]);
        assert_eq!(c.read_exact(2), [5, 0]);
        c.send(&[5, 1, 0, 1, 10, 1, 2, 3, 0, 80]);
        assert_eq!(c.read_to_close()[..2], [5, 0x03], "network unreachable");
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        if t.contains("tcp/accept ]:") {
            break t;
        }
        assert!(Instant::now() < deadline, "no summary:\n{t}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        text.lines().any(|l| l.contains("tcp/connect ]:")
            && l.contains(" 10.1.2.3.80")
            && l.contains("Network is unreachable")),
        "{text}"
    );
}

/// `logoutput: syslog` without `FERROSOCKS_SYSLOG_SOCKET` writes to /dev/log: here a
/// socket of the test's, bind-mounted over /dev/log (where /dev/log is a link to a socket
/// that does not exist, over that path on a tmpfs; where there is no /dev/log at all, over
/// one on a tmpfs /dev of the namespace's own) in a private mount namespace.
#[test]
fn syslog_default_socket_is_dev_log() {
    root();
    require("mount");
    require("readlink");
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let conf = dir.path().join("sockd.conf");
    std::fs::write(
        &conf,
        "logoutput: syslog/local3\ninternal: 127.0.0.1 port = 0\nsocksmethod: none\n\
         client pass { from: 127.0.0.0/8 to: 0/0\nlog: connect\n}\n",
    )
    .unwrap();
    // Everything mounted here is in the new namespace only and goes with it.
    let script = r#"set -e
mount --make-rprivate /
t=$(readlink -m /dev/log)
if [ "$t" = /dev/log ]; then
  if [ ! -e /dev/log ]; then
    # No syslog daemon here: a /dev of the namespace's own, with /dev/null kept.
    : > "$3/null"
    mount --bind /dev/null "$3/null"
    mount -t tmpfs ferrosocks-test /dev
    : > /dev/null
    mount --bind "$3/null" /dev/null
    : > /dev/log
  fi
else
  d=$(dirname "$t"); a="$d"
  while [ ! -d "$a" ]; do a=$(dirname "$a"); done
  [ "$a" != / ] && [ "$a" != /dev ] || { echo "will not mount over $a" >&2; exit 70; }
  mount -t tmpfs ferrosocks-test "$a"
  mkdir -p "$d"
  : > "$t"
fi
mount --bind "$1" "$t"
exec "$0" -f "$2"
"#;
    let mut s = Spawned::new(
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                script,
                BIN,
            ])
            .arg(&sock_path)
            .arg(&conf)
            .arg(dir.path())
            .env_remove("FERROSOCKS_SYSLOG_SOCKET")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    );
    let pid = s.child.id();
    let (addr, _) = s.ready();
    drop(Raw::connect(addr).send(&[5, 1, 0]).read_exact(2));
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while !got.iter().any(|l: &String| l.contains("tcp/accept [:")) {
        assert!(Instant::now() < deadline, "{got:?}");
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{e}: {got:?}"));
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    // local3.info = <158>, Dante's text after the tag.
    assert!(
        got.iter().any(|l| l.starts_with("<158>")
            && l.contains(&format!(
                " ferrosocks[{pid}]: info: pass(1): tcp/accept [: 127.0.0.1."
            ))),
        "{got:?}"
    );
}
