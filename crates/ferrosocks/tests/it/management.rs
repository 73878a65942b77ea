//! The management interface through the real binary: OpenVPN's line protocol byte for
//! byte (prompt, password, CRLF), commands on held SOCKS sessions (status, client-kill,
//! kill, bytecount), live log and client notifications, client-auth, a client that
//! never reads, and bad input. socat drives the Unix socket.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A proxy with a management interface on TCP; `extra` goes in the configuration.
fn proxy_with_management(
    password: Option<&str>,
    extra: &str,
) -> (Proxy, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    // Port 0: the kernel chooses, the log says which.
    let mut mgmt = format!("management: 127.0.0.1 port = 0\n{extra}");
    if let Some(pw) = password {
        let file = dir.path().join("mgmt.pw");
        std::fs::write(&file, format!("{pw}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        mgmt.push_str(&format!("management.password: {}\n", file.display()));
    }
    let p = Proxy::start(
        &conf("connect disconnect")
            .replace("socksmethod: none", &format!("socksmethod: none\n{mgmt}")),
    );
    let addr = management_addr(&p);
    (p, addr, dir)
}

/// A management client: raw bytes in, everything it read kept.
struct Mgmt {
    s: TcpStream,
    got: Vec<u8>,
}

impl Mgmt {
    fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Self { s, got: Vec::new() }
    }

    fn send(&mut self, line: &str) {
        self.s.write_all(line.as_bytes()).unwrap();
    }

    /// Reads until what was read (since `from`) contains `what`; returns the text
    /// from `from`.
    fn until(&mut self, from: usize, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut buf = [0u8; 65536];
        loop {
            let text = String::from_utf8_lossy(&self.got[from..]).into_owned();
            if text.contains(what) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no {what:?} from the management interface; got:\n{text}"
            );
            match self.s.read(&mut buf) {
                Ok(0) => panic!("closed before {what:?}; got:\n{text}"),
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
    }

    /// Sends a command and reads until `end`; returns what came after the command.
    fn command(&mut self, line: &str, end: &str) -> String {
        let from = self.got.len();
        self.send(&format!("{line}\n"));
        self.until(from, end)
    }

    /// The CID of the first whole `>CLIENT:CONNECT` block read after `from`.
    fn next_connect(&mut self, from: usize) -> String {
        let ev = self.until(from, ">CLIENT:CONNECT,");
        let at = from + ev.find(">CLIENT:CONNECT,").unwrap();
        let block = self.until(at, ">CLIENT:ENV,END\r\n");
        let header = block.lines().next().unwrap();
        let fields = header.strip_prefix(">CLIENT:CONNECT,").unwrap();
        fields.split(',').next().unwrap().to_owned()
    }

    /// Reads until the server closes; returns everything read.
    fn until_closed(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut buf = [0u8; 4096];
        loop {
            assert!(Instant::now() < deadline, "not closed");
            match self.s.read(&mut buf) {
                Ok(0) => return String::from_utf8_lossy(&self.got).into_owned(),
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return String::from_utf8_lossy(&self.got).into_owned()
                }
                Err(_) => {}
            }
        }
    }
}

const GREETING: &str =
    ">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n";

/// Every line the daemon sends ends in CRLF (the bare prompt aside).
fn assert_crlf(text: &str) {
    let text = text.replace("ENTER PASSWORD:", "");
    for (i, chunk) in text.split('\n').enumerate() {
        if i + 1 < text.split('\n').count() {
            assert!(
                chunk.ends_with('\r'),
                "line without CR: {chunk:?} in\n{text}"
            );
        }
    }
}

#[test]
fn the_password_flow_is_openvpns_byte_for_byte() {
    let (p, addr, _dir) = proxy_with_management(Some("s3cret pw"), "");
    // Three wrong passwords: the prompt again each time, a command sent as a password
    // is never run, then the connection closes.
    let mut m = Mgmt::connect(addr);
    assert_eq!(m.until(0, "ENTER PASSWORD:"), "ENTER PASSWORD:");
    m.send("pid\n");
    m.send("wrong\n");
    m.send("s3cret\n");
    let all = m.until_closed();
    assert_eq!(all, "ENTER PASSWORD:".repeat(3), "{all:?}");
    p.wait_for("the rejection", |l| {
        l == "MAN: client connection rejected after 3 failed password attempts"
    });
    // The right one.
    let mut m = Mgmt::connect(addr);
    m.until(0, "ENTER PASSWORD:");
    m.send("s3cret pw\r\n");
    let text = m.until(0, GREETING);
    assert_eq!(
        text,
        format!("ENTER PASSWORD:SUCCESS: password is correct\r\n{GREETING}")
    );
    let pid = m.command("pid", "\r\n");
    assert_eq!(pid, format!("SUCCESS: pid={}\r\n", p.pid()));
    let log = std::fs::read_to_string(&p.log).unwrap();
    assert!(!log.contains("s3cret"), "a password reached the log");
}

#[test]
fn commands_over_a_unix_socket_with_socat() {
    require("socat");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("mgmt.sock");
    let mut p = Proxy::start(&conf("connect").replace(
        "socksmethod: none",
        &format!("socksmethod: none\nmanagement: {}", sock.display()),
    ));
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let mut child = Command::new("socat")
        .arg("-")
        .arg(format!("UNIX-CONNECT:{}", sock.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"help\nversion\npid\nstatus 9\nverb\nmute\nload-stats\nstate\nbogus\nclient-kill 12345\nkill nobody-here\nquit\n")
        .unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        child.stdout.take().unwrap().read_to_string(&mut s).unwrap();
        let _ = child.wait();
        s
    });
    let text = out.join().unwrap();
    drop(stdin);
    assert_crlf(&text);
    assert!(text.starts_with(GREETING), "{text}");
    for expected in [
        "Management Interface for ferrosocks",
        "client-kill CID [M]",
        "\r\nEND\r\n",
        "OpenVPN Version: OpenVPN 2.6.14 management-compatible; ferrosocks ",
        "Management Version: 5\r\nEND\r\n",
        &format!("SUCCESS: pid={}\r\n", p.pid()),
        "ERROR: bad status format version number\r\n",
        "SUCCESS: verb=4\r\n",
        "SUCCESS: mute=0\r\n",
        "SUCCESS: nclients=0,bytesin=0,bytesout=0\r\n",
        ",CONNECTED,SUCCESS,,,,127.0.0.1,",
        "ERROR: unknown command, enter 'help' for more options\r\n",
        "ERROR: client-kill command failed\r\n",
        "ERROR: common name 'nobody-here' not found\r\n",
    ] {
        assert!(text.contains(expected), "no {expected:?} in\n{text}");
    }
    p.signal(libc::SIGTERM);
    assert!(p.wait_exit(Duration::from_secs(15)).success());
    assert!(!sock.exists(), "the socket was left behind");
}

/// A SOCKS session held open to an echo helper, with what went through it.
fn held(proxy: SocketAddr, echo: SocketAddr, payload: &[u8]) -> (Raw, SocketAddr) {
    let (mut c, reply) = Raw::connect_v4(proxy, echo);
    assert_eq!(reply[1], 0);
    c.send(payload);
    assert_eq!(c.read_exact(payload.len()), payload);
    let local = c.0.local_addr().unwrap();
    (c, local)
}

/// The CID of the session from `client` in a `status 2` reply.
fn cid_of(status: &str, client: SocketAddr) -> String {
    let row = status
        .lines()
        .find(|l| l.starts_with("CLIENT_LIST,") && l.contains(&client.to_string()))
        .unwrap_or_else(|| panic!("no row for {client}:\n{status}"));
    row.split(',').nth(10).unwrap().to_owned()
}

#[test]
fn held_sessions_status_bytecount_client_kill_and_kill() {
    let (p, addr, _dir) = proxy_with_management(None, "");
    let echo = Helper::echo();
    let mut m = Mgmt::connect(addr);
    m.until(0, GREETING);
    let (mut a, a_addr) = held(p.addr, echo.addr, b"first session");
    let (mut b, b_addr) = held(p.addr, echo.addr, b"second, longer session");
    let status = m.command("status 2", "\r\nEND\r\n");
    assert_crlf(&status);
    for (client, n) in [(a_addr, 13), (b_addr, 22)] {
        let row = status
            .lines()
            .find(|l| l.contains(&client.to_string()) && l.starts_with("CLIENT_LIST"))
            .unwrap();
        let f: Vec<&str> = row.trim_end_matches('\r').split(',').collect();
        assert_eq!((f[5], f[6]), (&*n.to_string(), &*n.to_string()), "{row}");
        assert_eq!(f[13], echo.addr.to_string(), "{row}");
    }
    let (a_cid, b_cid) = (cid_of(&status, a_addr), cid_of(&status, b_addr));

    // bytecount: both sessions, growing by exactly what moves.
    m.command("bytecount 1", "SUCCESS: bytecount interval changed\r\n");
    m.until(0, &format!(">BYTECOUNT_CLI:{a_cid},13,13\r\n"));
    b.send(b"12345");
    assert_eq!(b.read_exact(5), b"12345");
    m.until(0, &format!(">BYTECOUNT_CLI:{b_cid},27,27\r\n"));
    m.command("bytecount 0", "SUCCESS: bytecount interval changed\r\n");

    // client-kill ends that session alone.
    let reply = m.command(&format!("client-kill {a_cid}"), "\r\n");
    assert!(
        reply.contains("SUCCESS: client-kill command succeeded\r\n"),
        "{reply}"
    );
    assert!(a.read_to_close().is_empty());
    b.send(b"still");
    assert_eq!(b.read_exact(5), b"still");
    let disconnect = m.until(0, &format!(">CLIENT:DISCONNECT,{a_cid}\r\n"));
    let block = &disconnect[disconnect
        .find(&format!(">CLIENT:DISCONNECT,{a_cid}"))
        .unwrap()..];
    assert!(
        block.contains(">CLIENT:ENV,reason=administrative termination\r\n"),
        "{block}"
    );
    assert!(
        block.contains(">CLIENT:ENV,bytes_received=13\r\n"),
        "{block}"
    );
    p.wait_for("the cut", |l| {
        l.starts_with("pass(1): tcp/connect ]: ")
            && l.contains(&ep(a_addr))
            && l.contains("administrative termination")
    });

    // kill IP:PORT.
    let reply = m.command(&format!("kill {b_addr}"), "\r\n");
    assert!(
        reply.contains(&format!("SUCCESS: 1 client(s) at address {b_addr} killed")),
        "{reply}"
    );
    assert!(b.read_to_close().is_empty());
    // Its DISCONNECT comes (after the client's pause) before the totals are read.
    m.until(0, &format!(">CLIENT:DISCONNECT,{b_cid}\r\n"));
    let load = m.command("load-stats", "SUCCESS: nclients=");
    assert!(
        load.contains("SUCCESS: nclients=0,bytesin=45,bytesout=45"),
        "{load}"
    );
}

#[test]
fn log_on_streams_traffic_records_and_log_all_replays_them() {
    let (p, addr, _dir) = proxy_with_management(None, "log.traffic.operators: on\n");
    let echo = Helper::echo();
    let mut m = Mgmt::connect(addr);
    m.until(0, GREETING);
    m.command(
        "log on",
        "SUCCESS: real-time log notification set to ON\r\n",
    );
    let (c, client) = held(p.addr, echo.addr, b"x");
    drop(c);
    let text = m.until(0, "tcp/connect ]: ");
    let line = text
        .lines()
        .find(|l| l.contains("tcp/connect ]: "))
        .unwrap();
    assert!(
        line.starts_with(">LOG:") && line.contains(",,pass(1): "),
        "{line}"
    );
    assert!(line.contains(&ep(client)), "{line}");
    let history = m.command("log all", "\r\nEND\r\n");
    let replayed = history.lines().filter(|l| l.contains(&ep(client))).count();
    assert!(replayed >= 2, "{history}");
    m.command(
        "log off",
        "SUCCESS: real-time log notification set to OFF\r\n",
    );
    // `log on all`: the ON line, the history and END, no live line in between; and a
    // second subscription after `log off` does not double the lines.
    let on_all = m.command("log on all", "\r\nEND\r\n");
    let body = &on_all[..on_all.find("\r\nEND\r\n").unwrap()];
    assert!(
        body.starts_with("SUCCESS: real-time log notification set to ON\r\n"),
        "{on_all}"
    );
    assert!(
        !body.contains(">LOG:"),
        "a live line inside the history:\n{on_all}"
    );
    let from = m.got.len();
    let (c, client2) = held(p.addr, echo.addr, b"y");
    drop(c);
    let live = m.until(from, &format!("tcp/connect ]: 1 -> {}", ep(client2)));
    let summaries = live
        .lines()
        .filter(|l| l.contains("tcp/connect ]: ") && l.contains(&ep(client2)))
        .count();
    assert_eq!(summaries, 1, "{live}");
    // Verbosity: verb 1 leaves traffic records (trace) out for this client and the log.
    m.command("verb 1", "SUCCESS: verb level changed\r\n");
    assert_eq!(m.command("verb", "\r\n").trim_end(), "SUCCESS: verb=1");
}

#[test]
fn client_auth_holds_new_sessions_for_a_verdict() {
    let (p, addr, _dir) = proxy_with_management(None, "management.client-auth: on\n");
    let echo = Helper::echo();
    let mut m = Mgmt::connect(addr);
    m.until(0, GREETING);
    // A denial: the SOCKS client is refused (0x02), the log says why.
    let denied = {
        let (proxy, target) = (p.addr, echo.addr);
        std::thread::spawn(move || Raw::connect_v4(proxy, target).1)
    };
    let cid = m.next_connect(0);
    let reply = m.command(&format!("client-deny {cid} 0 \"not today\""), "\r\n");
    assert!(
        reply.contains("SUCCESS: client-deny command succeeded"),
        "{reply}"
    );
    assert_eq!(denied.join().unwrap()[1], 0x02);
    p.wait_for("the denial", |l| {
        l.contains("denied by the management interface: not today")
    });
    // Let through with client-auth-nt.
    let from = m.got.len();
    let allowed = {
        let (proxy, target) = (p.addr, echo.addr);
        std::thread::spawn(move || {
            let (mut c, reply) = Raw::connect_v4(proxy, target);
            c.send(b"ok");
            (reply[1], c.read_exact(2))
        })
    };
    let cid = m.next_connect(from);
    m.command(
        &format!("client-auth-nt {cid} 0"),
        "SUCCESS: client-auth command succeeded\r\n",
    );
    assert_eq!(allowed.join().unwrap(), (0, b"ok".to_vec()));
}

#[test]
fn a_client_that_reads_gets_every_block_of_a_burst_that_starts_right_after_its_command() {
    let (p, addr, _dir) = proxy_with_management(None, "");
    let echo = Helper::echo();
    let mut m = Mgmt::connect(addr);
    m.until(0, GREETING);
    // Blocks that come within 250 ms of a client's last line wait for it to pause (see
    // docs/management.md): 400 sessions right after a command are 1,200 blocks waiting.
    assert!(m.command("pid", "\r\n").starts_with("SUCCESS: pid="));
    for i in 0..400u32 {
        drop(held(p.addr, echo.addr, format!("burst {i}").as_bytes()));
    }
    let text = m.until(0, ">CLIENT:DISCONNECT,399\r\n");
    let last = text.find(">CLIENT:DISCONNECT,399\r\n").unwrap();
    m.until(last, ">CLIENT:ENV,END\r\n");
    let all = String::from_utf8_lossy(&m.got).into_owned();
    assert!(!all.contains("dropped"), "{all}");
    assert_eq!(all.matches(">CLIENT:CONNECT,").count(), 400);
    assert_eq!(all.matches(">CLIENT:ESTABLISHED,").count(), 400);
    assert_eq!(all.matches(">CLIENT:DISCONNECT,").count(), 400);
    assert_eq!(all.matches(">CLIENT:ENV,END\r\n").count(), 1200);
}

#[test]
fn a_client_that_never_reads_slows_no_session_and_is_told_what_it_missed() {
    let (p, addr, _dir) = proxy_with_management(None, "log.traffic.operators: on\n");
    let echo = Helper::echo();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut slow = Mgmt {
        s: sock.into(),
        got: Vec::new(),
    };
    slow.s
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    slow.until(0, GREETING);
    slow.send("log on\nbytecount 1\n");
    // 100 sessions held while the slow client reads nothing, and 1,400 more come and go
    // meanwhile (about 2.1 MB of notifications, twice what its outbox and socket hold):
    // every one is served and echoes in full.
    let mut sessions = Vec::new();
    for i in 0..100u32 {
        let payload = format!("session {i}");
        sessions.push(held(p.addr, echo.addr, payload.as_bytes()).0);
    }
    for i in 0..1400u32 {
        let payload = format!("short {i}");
        drop(held(p.addr, echo.addr, payload.as_bytes()));
    }
    for (i, s) in sessions.iter_mut().enumerate() {
        let payload = format!("again {i}");
        s.send(payload.as_bytes());
        assert_eq!(s.read_exact(payload.len()), payload.as_bytes());
    }
    drop(sessions);
    p.wait_for("the last summaries", |_| {
        p.messages()
            .iter()
            .filter(|l| l.starts_with("pass(1): tcp/connect ]: "))
            .count()
            == 1500
    });
    // Reading again: the count of what was dropped comes.
    let text = slow.until(0, "notification(s) dropped while you were not reading");
    let line = text
        .lines()
        .find(|l| l.contains("notification(s) dropped"))
        .unwrap();
    let n: u64 = line
        .trim_start_matches(">INFO:")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 0, "{line}");
    // And the interface still answers it and others.
    let mut other = Mgmt::connect(addr);
    other.until(0, GREETING);
    assert!(other.command("pid", "\r\n").starts_with("SUCCESS: pid="));
}

#[test]
fn bad_input_gets_an_error_or_a_clean_close_and_the_proxy_serves_on() {
    let (p, addr, _dir) = proxy_with_management(Some("pw"), "");
    let echo = Helper::echo();
    // Commands before the password never run.
    let mut m = Mgmt::connect(addr);
    m.until(0, "ENTER PASSWORD:");
    m.send("signal SIGTERM\n");
    m.until(15, "ENTER PASSWORD:");
    // A megabyte without a newline, then garbage.
    let mut m = Mgmt::connect(addr);
    m.until(0, "ENTER PASSWORD:");
    m.send("pw\n");
    m.until(0, GREETING);
    let long = "x".repeat(1 << 20);
    let _ = m.s.write_all(long.as_bytes());
    let _ = m.s.write_all(b"\n\xff\xfe\x00garbage\x01\n");
    m.until(0, "ERROR: command line is too long");
    m.command(
        "client-kill 424242",
        "ERROR: client-kill command failed\r\n",
    );
    // Hundreds of connections at once.
    let many: Vec<TcpStream> = (0..270)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    let (_c, _) = held(p.addr, echo.addr, b"served meanwhile");
    p.wait_for("the refusals past 256 clients", |l| {
        l.contains("clients already")
    });
    drop(many);
    m.command("pid", &format!("SUCCESS: pid={}\r\n", p.pid()));
    // Still serving SOCKS, and still running after all that.
    let (_c, _) = held(p.addr, echo.addr, b"served after");
}
