//! openvpn-monitor 2.0.4 (PyPI), a real tool written for OpenVPN, against the
//! management interface, unchanged: its `VPNDataCollector` sends `version`, `state`,
//! `load-stats` and `status 3` and parses them as it parses OpenVPN's; its
//! `VPNDisconnector` sends `client-kill CID`. A small script (written here, run with the
//! virtualenv's python that ./test.sh installs) prints what it parsed as JSON, and every
//! value is checked against what the test knows: client ports, the bytes each session
//! moved, CIDs, the rule, the server's state.
//!
//! openvpn-monitor keys its sessions by Virtual Address, which ferrosocks fills with the
//! target's address: sessions to one target host collapse into one entry (the last
//! row). So the two sessions whose every value is checked go to two hosts (127.0.0.1
//! and 127.0.0.2), and a test of its own shows the collapse.
//!
//! openvpn-monitor reads a reply until its end marker and takes everything it read for
//! the reply: `>CLIENT:` notifications in the middle of its conversation broke it on a
//! proxy whose sessions come and go (an endless wait after the password,
//! `'0>CLIENT:CONNECT'` read as `load-stats`' number). ferrosocks sends them to every
//! client, but never within 250 ms of a client's last line (unless
//! `management.client-auth` is on, when clients expect them at any moment): a tool that
//! fires its commands back to back never sees one, an operator at `nc` sees each at
//! once. Both sides of that are tested here.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::support::*;

const PASSWORD: &str = "monitor's secret";

/// What a session to [`BannerEcho`] is sent first.
const BANNER: &[u8] = b"banner from 127.0.0.2\n";

/// The virtualenv's python that has openvpn-monitor 2.0.4: `FERROSOCKS_OPENVPN_MONITOR_PYTHON`
/// (./test.sh exports it), else where ./test.sh puts it. Missing is a failure, not a skip.
fn monitor_python() -> PathBuf {
    let path = std::env::var_os("FERROSOCKS_OPENVPN_MONITOR_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py-openvpn-monitor/bin/python"),
        PathBuf::from,
    );
    let ok = Command::new(&path)
        .args(["-c", "import importlib.metadata as m, sys; sys.exit(m.version('openvpn-monitor') != '2.0.4')"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "openvpn-monitor 2.0.4 is not installed at {}: run ./test.sh, which installs it into \
         target/py-openvpn-monitor (or set FERROSOCKS_OPENVPN_MONITOR_PYTHON)",
        path.display()
    );
    path
}

/// The script: openvpn-monitor's own classes, as its web page uses them (`gi=None`: no
/// GeoIP database), on one vpn entry; prints what they parsed as JSON.
const SCRIPT: &str = r#"
import importlib.util, json, os, sys, traceback

cfg = json.loads(sys.argv[1])
# The package imports its modules by top-level names (`from util import get_date`,
# `from vpns.openvpn...`): its directory itself goes on the path, as its app.py does.
package = os.path.dirname(importlib.util.find_spec("openvpn_monitor").origin)
sys.path.insert(0, package)
from vpns.openvpn.data_collector import VPNDataCollector
from vpns.openvpn.disconnector import VPNDisconnector
import logging

# What openvpn-monitor logs at WARNING and above (a timeout waiting for a reply's end,
# a connection error): a round that logged anything did not read what it expected.
logged = []


class Keep(logging.Handler):
    def emit(self, record):
        logged.append(record.getMessage())


logging.getLogger().addHandler(Keep(logging.WARNING))


def vpn():
    return {"name": "ferrosocks", "host": "127.0.0.1", "port": cfg["port"],
            "password": cfg["password"], "show_disconnect": True}


def secs(d):
    return None if d in ("", None) else round(d.timestamp())


def collect():
    vpns = {"ferrosocks": vpn()}
    VPNDataCollector(vpns, None)
    v = vpns["ferrosocks"]
    if "error" in v or not v.get("management_connection_successful"):
        raise RuntimeError(f"connection failed: {v.get('error')!r}")
    state = v["state"]
    out = {
        "release": v["release"],
        "version": str(v["version"]),
        "state": {
            "up_since": secs(state["up_since"]),
            "connected": state["connected"],
            "success": state["success"],
            "mode": state["mode"],
            "local_ip": str(state["local_ip"]),
            "remote_ip": str(state["remote_ip"]),
        },
        "stats": v["stats"],
        "sessions": {
            key: {
                "username": s["username"],
                "remote_ip": str(s["remote_ip"]),
                "port": s["port"],
                "location": s.get("location"),
                "local_ip": str(s["local_ip"]),
                "bytes_recv": s["bytes_recv"],
                "bytes_sent": s["bytes_sent"],
                "connected_since": secs(s["connected_since"]),
                "last_seen": secs(s.get("last_seen")),
                "client_id": s["client_id"],
                "peer_id": s["peer_id"],
            }
            for key, s in v["sessions"].items()
        },
    }
    out["logged"] = logged[:]
    del logged[:]
    return vpns, out


action = cfg["action"]
if action == "collect":
    print(json.dumps(collect()[1]))
elif action == "collect-and-kill":
    vpns, out = collect()
    # What the web page's disconnect button posts: the session's own fields, as strings.
    s = next(s for s in vpns["ferrosocks"]["sessions"].values() if s["port"] == cfg["kill_port"])
    VPNDisconnector(vpns=vpns.items(), vpn_id="ferrosocks", ip=str(s["remote_ip"]),
                    port=str(s["port"]), client_id=s["client_id"])
    out["killed"] = s["client_id"]
    out["logged"] += logged
    print(json.dumps(out))
elif action == "rounds":
    rounds = []
    for _ in range(cfg["rounds"]):
        try:
            out = collect()[1]
            rounds.append({"nclients": out["stats"]["nclients"], "logged": out["logged"]})
        except Exception:
            rounds.append({"error": traceback.format_exc(), "logged": logged[:]})
            del logged[:]
    print(json.dumps(rounds))
"#;

/// Runs the script with `cfg`; its JSON output. Ends it by PID after 60 s.
fn monitor(dir: &Path, cfg: &Value) -> Value {
    let python = monitor_python();
    let script = dir.join("monitor.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let (code, stdout, stderr) = run_within(
        Command::new(python).arg(&script).arg(cfg.to_string()),
        Duration::from_secs(60),
    );
    assert_eq!(
        code, 0,
        "openvpn-monitor failed ({cfg}):\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout:\n{stdout}\nstderr:\n{stderr}"))
}

/// Starts the proxy on [`mgmt_conf`] with the management interface on a port the kernel
/// chooses; returns it and that port (from the log).
fn start_managed(dir: &Path, extra: &str) -> (Proxy, u16) {
    let p = Proxy::start(&mgmt_conf(dir, 0, extra));
    let port = management_addr(&p).port();
    (p, port)
}

/// The test configuration with a management interface on `port` asking for
/// [`PASSWORD`] (its file, mode 0600, is written into `dir`), and `extra` lines.
fn mgmt_conf(dir: &Path, port: u16, extra: &str) -> String {
    let pw = dir.join("mgmt.pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    conf("connect disconnect").replace(
        "socksmethod: none",
        &format!(
            "socksmethod: none\nmanagement: 127.0.0.1 port = {port}\nmanagement.password: {}\n{extra}",
            pw.display()
        ),
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A management client of our own, for what the test checks beside openvpn-monitor.
struct Mgmt {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Mgmt {
    /// Connects and gives the password; everything up to the greeting is consumed.
    fn connect(port: u16) -> Self {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut m = Self { s, buf: Vec::new() };
        assert_eq!(m.read_until("ENTER PASSWORD:"), "ENTER PASSWORD:");
        m.send(PASSWORD);
        assert_eq!(
            m.read_until("type 'help' for more info\r\n"),
            "SUCCESS: password is correct\r\n\
             >INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n"
        );
        m
    }

    fn send(&mut self, line: &str) {
        self.s.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    /// Everything up to and including the first `end`.
    fn read_until(&mut self, end: &str) -> String {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(i) = self
                .buf
                .windows(end.len())
                .position(|w| w == end.as_bytes())
            {
                let text: Vec<u8> = self.buf.drain(..i + end.len()).collect();
                return String::from_utf8(text).unwrap();
            }
            match self.s.read(&mut chunk) {
                Ok(0) => panic!(
                    "management closed before {end:?}; read:\n{}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!(
                    "reading up to {end:?}: {e}; read:\n{}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// `status 3`'s CLIENT_LIST rows, by the HEADER's column names.
    fn clients(&mut self) -> Vec<std::collections::HashMap<String, String>> {
        self.send("status 3");
        let text = self.read_until("\r\nEND\r\n");
        let mut names: Vec<String> = Vec::new();
        let mut rows = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() > 1 && f[..2] == ["HEADER", "CLIENT_LIST"] {
                names = f[2..].iter().map(|s| (*s).to_owned()).collect();
            } else if f[0] == "CLIENT_LIST" {
                assert_eq!(f.len() - 1, names.len(), "{line:?}");
                rows.push(
                    names
                        .iter()
                        .cloned()
                        .zip(f[1..].iter().map(|s| (*s).to_owned()))
                        .collect(),
                );
            }
        }
        rows
    }

    /// Waits until `status 3` counts `want` (client port → bytes received from it,
    /// bytes sent to it) for every session: the relay may update its counters a moment
    /// after the client read the bytes.
    fn wait_counted(&mut self, want: &[(u16, u64, u64)]) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let rows = self.clients();
            let counted = |&(port, recv, sent): &(u16, u64, u64)| {
                rows.iter().any(|r| {
                    r["Real Address"] == format!("127.0.0.1:{port}")
                        && r["Bytes Received"] == recv.to_string()
                        && r["Bytes Sent"] == sent.to_string()
                })
            };
            if want.iter().all(counted) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "status 3 never counted {want:?}: {rows:?}"
            );
            #[allow(clippy::disallowed_methods)]
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A server on 127.0.0.2 that sends [`BANNER`] to each connection, then echoes.
struct BannerEcho {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl BannerEcho {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.2:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut c) = conn else { continue };
                thread::spawn(move || {
                    if c.write_all(BANNER).is_err() {
                        return;
                    }
                    let mut buf = [0u8; 16384];
                    while let Ok(n @ 1..) = c.read(&mut buf) {
                        if c.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { addr, stop }
    }
}

impl Drop for BannerEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Sends `msg` and reads the echo.
fn echo(c: &mut Raw, msg: &[u8]) {
    c.send(msg);
    assert_eq!(c.read_exact(msg.len()), msg);
}

fn port_of(c: &Raw) -> u16 {
    c.0.local_addr().unwrap().port()
}

/// Whether the server closed `c` (end of file), within its read timeout.
fn closed(c: &mut Raw) -> bool {
    let mut b = [0u8; 64];
    match c.0.read(&mut b) {
        Ok(0) => true,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

#[test]
fn openvpn_monitor_parses_every_value_and_disconnects_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let (echo1, echo2) = (Helper::echo(), BannerEcho::start());
    let started = unix_now();
    let (p, port) = start_managed(dir.path(), "");
    let up = unix_now();

    // Session 0 to 127.0.0.1: 17 + 9 bytes each way. Session 1 to 127.0.0.2: the
    // banner to the client, then 11 bytes each way.
    let (mut a, reply) = Raw::connect_v4(p.addr, echo1.addr);
    assert_eq!(reply[1], 0);
    echo(&mut a, b"first, 17 bytes..");
    echo(&mut a, b"9 more..!");
    let (mut b, reply) = Raw::connect_v4(p.addr, echo2.addr);
    assert_eq!(reply[1], 0);
    assert_eq!(b.read_exact(BANNER.len()), BANNER);
    echo(&mut b, b"second: 11!");
    let opened = unix_now();
    let (pa, pb) = (port_of(&a), port_of(&b));
    let banner = BANNER.len() as u64;
    let mut m = Mgmt::connect(port);
    m.wait_counted(&[(pa, 26, 26), (pb, 11, banner + 11)]);

    let got = monitor(
        dir.path(),
        &json!({"action": "collect-and-kill", "port": port, "password": PASSWORD, "kill_port": pa}),
    );
    let now = unix_now();

    assert_eq!(
        got["release"],
        format!(
            "OpenVPN 2.6.14 management-compatible; ferrosocks {} {}-{}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            std::env::consts::OS
        )
    );
    assert_eq!(
        got["logged"],
        json!([]),
        "openvpn-monitor complained: {got}"
    );
    assert_eq!(got["version"], "2.6.14");
    let state = &got["state"];
    assert_eq!(state["connected"], "CONNECTED", "{got}");
    assert_eq!(state["success"], "SUCCESS");
    assert_eq!(state["mode"], "Server");
    assert_eq!(state["local_ip"], "");
    assert_eq!(state["remote_ip"], "");
    let up_since = state["up_since"].as_u64().unwrap();
    assert!(
        (started..=up).contains(&up_since),
        "{up_since} {started} {up}"
    );
    assert_eq!(
        got["stats"],
        json!({"nclients": 2, "bytesin": 26 + 11, "bytesout": 26 + banner + 11})
    );

    let sessions = got["sessions"].as_object().unwrap();
    let keys: Vec<&String> = sessions.keys().collect();
    assert_eq!(keys, ["127.0.0.1", "127.0.0.2"], "{got}");
    for (key, port, recv, sent, cid) in [
        ("127.0.0.1", pa, 26, 26, "0"),
        ("127.0.0.2", pb, 11, banner + 11, "1"),
    ] {
        let s = &sessions[key];
        let times = (
            s["connected_since"].as_u64().unwrap(),
            s["last_seen"].as_u64().unwrap(),
        );
        assert!(
            started <= times.0 && times.0 <= opened && times.0 <= times.1 && times.1 <= now,
            "{key}: {times:?} started {started} opened {opened} now {now}"
        );
        assert_eq!(
            *s,
            json!({
                "username": "UNDEF",
                "remote_ip": "127.0.0.1",
                "port": port,
                "location": "RFC1918",
                "local_ip": key,
                "bytes_recv": recv,
                "bytes_sent": sent,
                "connected_since": times.0,
                "last_seen": times.1,
                "client_id": cid,
                "peer_id": "1",
            }),
            "{key}"
        );
    }

    // The disconnect: session 0 is cut, session 1 goes on.
    assert_eq!(got["killed"], "0");
    assert!(
        closed(&mut a),
        "the killed session's client saw no end of file"
    );
    echo(&mut b, b"still here");
    let log = p.wait_for("the killed session's summary", |l| {
        l.starts_with("pass(1): tcp/connect ]: ")
            && l.contains(&format!(" {} ", ep(a.0.local_addr().unwrap())))
            && l.contains(": administrative termination.  Session duration: ")
    });
    let b_ep = format!(" {} ", ep(b.0.local_addr().unwrap()));
    assert!(
        !log.iter().any(|l| l.contains("]: ") && l.contains(&b_ep)),
        "{log:#?}"
    );
    let rows = m.clients();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["Client ID"], "1");
}

#[test]
fn openvpn_monitor_keeps_one_session_per_virtual_address() {
    // Two sessions to two servers on one host: both Virtual Addresses are 127.0.0.1,
    // and openvpn-monitor, which keys sessions by it, keeps the last row of the two.
    let dir = tempfile::tempdir().unwrap();
    let (echo1, echo2) = (Helper::echo(), Helper::echo());
    let (p, port) = start_managed(dir.path(), "");
    let (mut a, reply) = Raw::connect_v4(p.addr, echo1.addr);
    assert_eq!(reply[1], 0);
    echo(&mut a, b"five!");
    let (mut b, reply) = Raw::connect_v4(p.addr, echo2.addr);
    assert_eq!(reply[1], 0);
    echo(&mut b, b"nine byte");
    let (pa, pb) = (port_of(&a), port_of(&b));
    let mut m = Mgmt::connect(port);
    m.wait_counted(&[(pa, 5, 5), (pb, 9, 9)]);
    let rows = m.clients();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["Virtual Address"] == "127.0.0.1"));

    let got = monitor(
        dir.path(),
        &json!({"action": "collect", "port": port, "password": PASSWORD}),
    );
    assert_eq!(
        got["logged"],
        json!([]),
        "openvpn-monitor complained: {got}"
    );
    assert_eq!(got["stats"]["nclients"], 2, "{got}");
    let sessions = got["sessions"].as_object().unwrap();
    assert_eq!(sessions.len(), 1, "{got}");
    let s = &sessions["127.0.0.1"];
    assert_eq!(s["client_id"], "1", "{got}");
    assert_eq!(s["port"], pb);
    assert_eq!((&s["bytes_recv"], &s["bytes_sent"]), (&json!(9), &json!(9)));
}

/// Sessions opened, used and closed one after another (one every 2 ms, at most 5000,
/// so the loopback ports last), until dropped.
struct Churn {
    stop: Arc<AtomicBool>,
    made: Arc<AtomicUsize>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Churn {
    fn start(proxy: SocketAddr, target: SocketAddr) -> Self {
        let (stop, made) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (s, n) = (Arc::clone(&stop), Arc::clone(&made));
        let thread = thread::spawn(move || {
            while !s.load(Ordering::SeqCst) && n.load(Ordering::SeqCst) < 5000 {
                let (mut c, reply) = Raw::connect_v4(proxy, target);
                assert_eq!(reply[1], 0, "a churning session was refused");
                echo(&mut c, b"x");
                n.fetch_add(1, Ordering::SeqCst);
                #[allow(clippy::disallowed_methods)]
                thread::sleep(Duration::from_millis(2));
            }
        });
        Self {
            stop,
            made,
            thread: Some(thread),
        }
    }

    fn made(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }

    /// Stops; whether every session worked.
    fn stop(&mut self) -> bool {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(t) => t.join().is_ok(),
            None => true,
        }
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn openvpn_monitor_reads_while_sessions_come_and_go() {
    // Sessions open and close all the time; the collector's replies must hold nothing
    // but the replies (no >CLIENT: block arrives in the middle of a conversation).
    let dir = tempfile::tempdir().unwrap();
    let target = Helper::echo();
    let (p, port) = start_managed(dir.path(), "");
    let mut m = Mgmt::connect(port);
    let mut churn = Churn::start(p.addr, target.addr);
    let deadline = Instant::now() + Duration::from_secs(15);
    while churn.made() < 10 {
        assert!(Instant::now() < deadline, "no sessions churning");
        thread::yield_now();
    }
    let before = churn.made();
    let got = monitor(
        dir.path(),
        &json!({"action": "rounds", "rounds": 30, "port": port, "password": PASSWORD}),
    );
    let during = churn.made() - before;
    let churned = churn.stop();
    let rounds = got.as_array().unwrap();
    assert_eq!(rounds.len(), 30);
    for r in rounds {
        assert!(
            r.get("error").is_none(),
            "{}\n{r}",
            r["error"].as_str().unwrap()
        );
        assert_eq!(r["logged"], json!([]), "openvpn-monitor complained: {r}");
        assert!(r["nclients"].is_u64(), "{r}");
    }
    assert!(churned, "a churning session failed");
    assert!(
        during >= 20,
        "only {during} sessions while openvpn-monitor read"
    );
    // Our own client, connected all along, still answers (its >CLIENT: notifications
    // for an idle client are tested in management.rs).
    m.send("pid");
    m.read_until(&format!("SUCCESS: pid={}\r\n", p.pid()));
}

#[test]
fn client_notifications_still_come_with_client_auth() {
    // With management.client-auth: on, as with OpenVPN's --management-client-auth,
    // every client gets >CLIENT: and the session waits for a verdict.
    let dir = tempfile::tempdir().unwrap();
    let target = Helper::echo();
    let (p, port) = start_managed(dir.path(), "management.client-auth: on\n");
    let mut m = Mgmt::connect(port);
    let proxy = p.addr;
    let session = thread::spawn(move || {
        let (mut c, reply) = Raw::connect_v4(proxy, target.addr);
        assert_eq!(reply[1], 0);
        echo(&mut c, b"let in");
    });
    let connect = m.read_until(">CLIENT:ENV,END\r\n");
    assert!(connect.starts_with(">CLIENT:CONNECT,0,0\r\n"), "{connect}");
    m.send("client-auth-nt 0 0");
    let established = m.read_until(">CLIENT:ENV,END\r\n");
    assert!(
        established
            .starts_with("SUCCESS: client-auth command succeeded\r\n>CLIENT:ESTABLISHED,0\r\n"),
        "{established}"
    );
    session.join().unwrap();
}
