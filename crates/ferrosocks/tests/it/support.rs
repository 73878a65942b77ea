//! Test support: start the binary, wait for its ready line, read its log, run helper
//! servers and clients. Everything started here is ended by PID on drop.
#![allow(clippy::disallowed_methods, dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ferrosocks");

/// Fails loudly when a program the tests drive is missing.
pub fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed: run ./test.sh, which installs it with apt-get"
    );
}

/// A running ferrosocks.
pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    pub conf: PathBuf,
    stderr: Arc<Mutex<String>>,
}

/// Replaces `@LOG@` and `@DIR@` in a configuration template.
fn fill(template: &str, dir: &Path, log: &Path) -> String {
    template
        .replace("@LOG@", &log.display().to_string())
        .replace("@DIR@", &dir.display().to_string())
}

impl Proxy {
    /// Starts the binary on `conf` (a template: `@LOG@` is the log file, `@DIR@` a
    /// private directory) with extra arguments.
    pub fn start_with(conf: &str, args: &[&str]) -> Self {
        Self::launch(conf, args, &[])
    }

    /// Starts the binary with extra arguments and environment variables.
    pub fn launch(conf: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(conf, args, env, None)
    }

    /// Starts the binary as the user `uid`:`gid` (not root), its private directory
    /// (configuration, log) that user's.
    pub fn launch_as(conf: &str, uid: u32, gid: u32) -> Self {
        Self::spawn(conf, &[], &[], Some((uid, gid)))
    }

    fn spawn(conf: &str, args: &[&str], env: &[(&str, &str)], user: Option<(u32, u32)>) -> Self {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("ferrosocks.log");
        let path = dir.path().join("sockd.conf");
        std::fs::write(&path, fill(conf, dir.path(), &log)).unwrap();
        let mut cmd = Command::new(BIN);
        if let Some((uid, gid)) = user {
            for p in [dir.path(), path.as_path()] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
            }
            // std drops the supplementary groups when it switches the uid.
            cmd.uid(uid).gid(gid);
        }
        let mut child = cmd
            .arg("-f")
            .arg(&path)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let addr = wait_ready(&mut child, &stderr);
        Self {
            child,
            addr,
            dir,
            log,
            conf: path,
            stderr,
        }
    }

    pub fn start(conf: &str) -> Self {
        Self::start_with(conf, &[])
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether the process still runs (not exited, not a zombie).
    pub fn child_running(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .ok()
            .and_then(|s| Some(s.rsplit_once(") ")?.1.chars().next()? != 'Z'))
            .unwrap_or(false)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's PID.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The messages of the log file (line prefix and level removed), each checked to
    /// have Dante's prefix.
    pub fn messages(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out: Vec<String> = Vec::new();
        for l in text.lines() {
            match traffic_log::Prefix::parse_line(l) {
                Ok((prefix, msg)) => {
                    assert_eq!(prefix.program, "ferrosocks");
                    assert_eq!(prefix.pid, self.child.id());
                    out.push(msg.to_owned());
                }
                // A multi-line record (TCP_INFO): continues the previous message.
                Err(_) => match out.last_mut() {
                    Some(last) => {
                        last.push('\n');
                        last.push_str(l);
                    }
                    None => panic!("line without Dante's prefix: {l:?}"),
                },
            }
        }
        out
    }

    /// Waits until a message satisfies `pred`; returns all messages then.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> Vec<String> {
        self.wait_for_dyn(what, &pred)
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "ferrosocks did not exit; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What a scenario needs of the SOCKS server it drives: ferrosocks ([`Proxy`]) or Dante
/// 1.4.2 ([`Dante`]), so one client conversation runs against both (tests/it/differential.rs).
pub trait Server {
    /// Where it listens for SOCKS clients.
    fn addr(&self) -> SocketAddr;
    /// Its log's messages, prefix removed (a TCP_INFO block joined to its record).
    fn messages(&self) -> Vec<String>;
    /// What it wrote to stderr so far.
    fn stderr(&self) -> String;
    /// Its private directory (`@DIR@` of the configuration).
    fn dir(&self) -> &Path;
    /// Its (main) process.
    fn pid(&self) -> u32;

    /// Sends it a signal.
    fn signal_dyn(&self, sig: i32) {
        // SAFETY: kill(2) on the process the test started.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, sig) }, 0);
    }

    /// Waits until a message satisfies `pred`; returns all messages then. (Called as
    /// `wait_for`, on a [`Proxy`] or a `dyn Server`.)
    fn wait_for_dyn(&self, what: &str, pred: &dyn Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let m = self.messages();
            if m.iter().any(|l| pred(l)) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}\nstderr:\n{}",
                m.join("\n"),
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The traffic records of the log, parsed, with their round-trip checked.
    fn records(&self) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|m| m.starts_with("pass(") || m.starts_with("block("))
            .inspect(|m| {
                let r = traffic_log::Record::parse(m).unwrap_or_else(|e| panic!("{m}: {e}"));
                assert_eq!(&r.to_string(), m);
            })
            .collect()
    }
}

impl dyn Server + '_ {
    /// Sends it a signal.
    pub fn signal(&self, sig: i32) {
        self.signal_dyn(sig);
    }

    /// Waits until a message satisfies `pred`; returns all messages then.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> Vec<String> {
        self.wait_for_dyn(what, &pred)
    }
}

impl Server for Proxy {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn messages(&self) -> Vec<String> {
        Self::messages(self)
    }
    fn stderr(&self) -> String {
        Self::stderr(self)
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(child: &mut Child, stderr: &Arc<Mutex<String>>) -> SocketAddr {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(out).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
        let _ = child.kill();
        panic!("no ready line; stderr:\n{}", stderr.lock().unwrap());
    };
    let addrs = line
        .strip_prefix("ferrosocks ready: listening on ")
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
    addrs.split(' ').next().unwrap().parse().unwrap()
}

/// The usual test configuration: loopback, a client rule and one socks pass rule.
pub fn conf(socks_log: &str) -> String {
    format!(
        "logoutput: @LOG@\n\
         internal: 127.0.0.1 port = 0\n\
         external: 127.0.0.1\n\
         socksmethod: none\n\
         client pass {{\n    from: 127.0.0.0/8 to: 0.0.0.0/0\n    log: connect disconnect error\n}}\n\
         socks pass {{\n    from: 127.0.0.0/8 to: 0/0\n    log: {socks_log}\n}}\n"
    )
}

/// A helper server on loopback that runs `handle` for each connection, until dropped.
pub struct Helper {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    pub connections: Arc<AtomicUsize>,
    pub received: Arc<Mutex<Vec<u8>>>,
}

impl Helper {
    pub fn start(handle: fn(TcpStream, &Mutex<Vec<u8>>)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (s, c, r) = (
            Arc::clone(&stop),
            Arc::clone(&connections),
            Arc::clone(&received),
        );
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let r = Arc::clone(&r);
                thread::spawn(move || handle(conn, &r));
            }
        });
        Self {
            addr,
            stop,
            connections,
            received,
        }
    }

    /// An HTTP/1.0 server answering every request with [`HTTP_BODY`], closing after the client.
    pub fn http() -> Self {
        Self::start(|mut c, received| {
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            received.lock().unwrap().extend_from_slice(&req);
            let _ = c.write_all(http_response().as_bytes());
            // Wait for the client to close first, so the log's order is deterministic.
            let _ = c.read(&mut buf);
        })
    }

    /// Echoes every byte back.
    pub fn echo() -> Self {
        Self::start(|mut c, _| {
            let mut buf = [0u8; 16384];
            loop {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if c.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        })
    }

    /// Reads until end of file, then answers with "got N bytes" and closes:
    /// works only if the proxy passes the client's half-close on.
    pub fn after_eof() -> Self {
        Self::start(|mut c, received| {
            let mut all = Vec::new();
            let _ = c.read_to_end(&mut all);
            received.lock().unwrap().extend_from_slice(&all);
            let _ = c.write_all(format!("got {} bytes", all.len()).as_bytes());
            let _ = c.shutdown(Shutdown::Both);
        })
    }

    /// Accepts and never answers nor closes (until the peer does).
    pub fn silent() -> Self {
        Self::start(|mut c, _| {
            let mut buf = [0u8; 1024];
            while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
        })
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

pub const HTTP_BODY: &str = "hello through ferrosocks\n";

pub fn http_response() -> String {
    format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{HTTP_BODY}",
        HTTP_BODY.len()
    )
}

/// A loopback port nothing listens on, and that nothing takes by chance later: it is
/// below `ip_local_port_range`, where the kernel never picks a port for a bind to port 0
/// or an outgoing connection, and distinct within this test process. So a receiver a
/// test starts there later (or again, after stopping one) gets it, and the proxies of
/// parallel tests never reach another test's listener through it. (A port-0 bind
/// released at once could be handed to a parallel test's rsyslogd a moment later.)
pub fn closed_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    const FIRST: usize = 10_000;
    let end = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<usize>().ok())
        .unwrap_or(32_768)
        .max(FIRST + 1_000);
    let span = end - FIRST;
    let start = (std::process::id() as usize * 97) % span;
    for _ in 0..span {
        let port = (FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below {end}");
}

/// Runs a command with a time limit; returns (status code, stdout, stderr).
/// Where a proxy's management interface listens, from its log (`management: … port = 0`
/// lets the kernel choose).
pub fn management_addr(p: &Proxy) -> SocketAddr {
    let m = p.wait_for("the management listener", |l| {
        l.starts_with("MANAGEMENT: interface listening on ")
    });
    m.iter()
        .find_map(|l| l.strip_prefix("MANAGEMENT: interface listening on "))
        .unwrap()
        .parse()
        .unwrap()
}

/// The address of the metrics endpoint (`metrics: … port = 0`), from its log line.
pub fn metrics_addr(p: &Proxy) -> SocketAddr {
    const HEAD: &str = "metrics: listening on http://";
    let m = p.wait_for("the metrics listener", |l| l.starts_with(HEAD));
    m.iter()
        .find_map(|l| l.strip_prefix(HEAD))
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// Runs curl (`-sS` and `args`): exit status, stdout, stderr.
pub fn curl(args: &[&str]) -> (i32, String, String) {
    require("curl");
    run(Command::new("curl").arg("-sS").args(args))
}

pub fn run(cmd: &mut Command) -> (i32, String, String) {
    run_within(cmd, Duration::from_secs(30))
}

/// Runs `cmd` (stdin closed) for at most `limit`, then ends it by PID: exit status,
/// stdout, stderr.
pub fn run_within(cmd: &mut Command, limit: Duration) -> (i32, String, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => {
            let out = out.unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Err(_) => {
            // SAFETY: kill(2) on a child we started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("command timed out: {cmd:?}");
        }
    }
}

/// Runs `f` on a thread that has entered the network namespace of process `pid`; the
/// threads and processes it starts are in that namespace too.
pub fn in_netns_of<T: Send + 'static>(pid: u32, f: impl FnOnce() -> T + Send + 'static) -> T {
    thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
        // SAFETY: setns(2) on a descriptor we opened; it changes this thread only.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap()
}

/// A raw SOCKS client: connect, send bytes, read what comes back.
pub struct Raw(pub TcpStream);

impl Raw {
    pub fn connect(proxy: SocketAddr) -> Self {
        let s = TcpStream::connect(proxy).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self(s)
    }

    pub fn send(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.write_all(bytes).unwrap();
        self
    }

    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        self.0
            .read_exact(&mut buf)
            .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
        buf
    }

    /// Reads until the server closes; returns what came.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        let _ = self.0.read_to_end(&mut all);
        all
    }

    /// Greeting with no-auth, then CONNECT to an IPv4 target; returns the reply.
    pub fn connect_v4(proxy: SocketAddr, target: SocketAddr) -> (Self, Vec<u8>) {
        let mut r = Self::connect(proxy);
        r.send(&[5, 1, 0]);
        assert_eq!(r.read_exact(2), [5, 0]);
        let SocketAddr::V4(t) = target else {
            panic!("IPv4 only")
        };
        let mut req = vec![5, 1, 0, 1];
        req.extend_from_slice(&t.ip().octets());
        req.extend_from_slice(&t.port().to_be_bytes());
        r.send(&req);
        let reply = r.read_exact(10);
        (r, reply)
    }
}

/// Replaces concrete endpoints with symbolic names, longest first.
pub fn symbolize(lines: &[String], names: &[(String, &str)]) -> String {
    let mut names: Vec<_> = names.to_vec();
    names.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    lines
        .iter()
        .map(|l| {
            let mut l = l.clone();
            for (k, v) in &names {
                l = l.replace(k.as_str(), v);
            }
            l + "\n"
        })
        .collect()
}

/// Compares with a golden file; `FERROSOCKS_BLESS=1` rewrites it. Shows the first difference.
pub fn assert_golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("FERROSOCKS_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines = |t: &str| t.lines().count();
    if want != got
        && (lines(&want) != lines(got)
            || want
                .lines()
                .zip(got.lines())
                .any(|(w, g)| !same_but_a_second(w, g)))
    {
        let (i, (w, g)) = want
            .lines()
            .chain(std::iter::repeat("<end>"))
            .zip(got.lines().chain(std::iter::repeat("<end>")))
            .enumerate()
            .find(|(_, (w, g))| !same_but_a_second(w, g))
            .unwrap();
        panic!(
            "{name}: line {} differs\n want: {w}\n  got: {g}\n\nwhole output:\n{got}",
            i + 1
        );
    }
}

/// Two transcript lines the same, but for a `Session duration: Ns` that may differ by one
/// second (a session that crossed a second boundary on one run and not the other).
pub fn same_but_a_second(want: &str, got: &str) -> bool {
    const D: &str = "Session duration: ";
    if want == got {
        return true;
    }
    let split = |l: &str| {
        let (head, tail) = l.split_once(D)?;
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = tail[..digits].parse().ok()?;
        Some((head.to_owned(), n, tail[digits..].to_owned()))
    };
    match (split(want), split(got)) {
        (Some((wh, wn, wt)), Some((gh, gn, gt))) => wh == gh && wt == gt && wn.abs_diff(gn) <= 1,
        _ => false,
    }
}

/// The endpoint text Dante prints for an address.
pub fn ep(a: SocketAddr) -> String {
    format!("{}.{}", a.ip(), a.port())
}

/// Replaces the port of every `127.0.0.1.PORT` and `localhost.PORT` endpoint: known
/// ports by name, others by `$1`, `$2`, … in order of first appearance, so transcripts
/// compare across runs.
pub fn normalize(lines: &[String], known: &[(u16, &str)]) -> String {
    let mut seen: Vec<u16> = Vec::new();
    let mut out = String::new();
    for line in lines {
        let mut rest = line.as_str();
        while let Some((i, host)) = ["127.0.0.1.", "localhost."]
            .iter()
            .filter_map(|h| rest.find(h).map(|i| (i, *h)))
            .min()
        {
            out.push_str(&rest[..i + host.len()]);
            rest = &rest[i + host.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let Ok(port) = rest[..digits].parse::<u16>() else {
                continue;
            };
            rest = &rest[digits..];
            match known.iter().find(|(p, _)| *p == port) {
                Some((_, name)) => out.push_str(name),
                None => {
                    let n = seen.iter().position(|&p| p == port).unwrap_or_else(|| {
                        seen.push(port);
                        seen.len() - 1
                    });
                    out.push_str(&format!("${}", n + 1));
                }
            }
        }
        out.push_str(rest);
        out.push('\n');
    }
    out
}

/// A loopback listener whose accept queue is full: connects to it hang (for connect
/// time-outs). Dropping it closes everything.
pub struct Blackhole {
    pub addr: SocketAddr,
    _listener: socket2::Socket,
    _fillers: Vec<socket2::Socket>,
}

impl Blackhole {
    pub fn new() -> Self {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let fillers = (0..8)
            .map(|_| {
                let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
                s.set_nonblocking(true).unwrap();
                let _ = s.connect(&addr.into());
                s
            })
            .collect();
        // Give the kernel a moment to queue the fillers.
        thread::sleep(Duration::from_millis(200));
        Self {
            addr,
            _listener: listener,
            _fillers: fillers,
        }
    }
}

/// A UDP ASSOCIATE by hand, declaring `declared`: the control stream and the raw reply.
pub fn associate(proxy: SocketAddr, declared: SocketAddr) -> (Raw, Vec<u8>) {
    let mut c = Raw::connect(proxy);
    c.send(&[5, 1, 0]);
    assert_eq!(c.read_exact(2), [5, 0]);
    let SocketAddr::V4(d) = declared else {
        panic!("IPv4 only")
    };
    let mut req = vec![5, 3, 0, 1];
    req.extend_from_slice(&d.ip().octets());
    req.extend_from_slice(&d.port().to_be_bytes());
    c.send(&req);
    let r = c.read_exact(10);
    (c, r)
}

/// The relay address of a successful IPv4 UDP ASSOCIATE reply.
pub fn relay_of(reply: &[u8]) -> SocketAddr {
    assert_eq!(reply[1], 0, "UDP ASSOCIATE refused");
    SocketAddr::from((
        [reply[4], reply[5], reply[6], reply[7]],
        u16::from_be_bytes([reply[8], reply[9]]),
    ))
}

/// Debian's Dante 1.4.2 server, which test.sh installs (package dante-server).
pub const DANTED: &str = "/usr/sbin/danted";

/// A private Dante 1.4.2 (`danted`) on a ferrosocks configuration template: the same
/// file, with `internal: … port = 0` given a port the kernel chose (Dante cannot listen on
/// port 0) and `user.privileged: root` / `user.unprivileged: nobody` added. Its whole
/// process group is ended on drop.
pub struct Dante {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    pub log: PathBuf,
    stderr: Arc<Mutex<String>>,
}

impl Dante {
    pub fn start(template: &str) -> Self {
        assert!(
            Path::new(DANTED).is_file(),
            "{DANTED} is not installed: run ./test.sh, which installs dante-server with apt-get"
        );
        // The port is free when chosen but another test may take it before danted binds
        // it: then danted exits, and another port is tried.
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(template, free_low_port()) {
                Ok(d) => return d,
                Err(why) => last = why,
            }
        }
        panic!("danted did not start: {last}");
    }

    fn try_start(template: &str, port: u16) -> Result<Self, String> {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("danted.log");
        let path = dir.path().join("danted.conf");
        let mut text = String::from("user.privileged: root\nuser.unprivileged: nobody\n");
        for line in fill(template, dir.path(), &log).lines() {
            if line.starts_with("internal:") {
                text.push_str(&line.replace("port = 0", &format!("port = {port}")));
            } else {
                text.push_str(line);
            }
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        let mut child = Command::new(DANTED)
            .arg("-f")
            .arg(&path)
            .arg("-p")
            .arg(dir.path().join("danted.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut d = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            log,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !d.messages().iter().any(|m| m.ends_with(" v1.4.2 running")) {
            let exited = d.child.try_wait().unwrap();
            if exited.is_some() || Instant::now() >= deadline {
                // Dropping `d` ends whatever is left of its process group.
                return Err(format!(
                    "port {port}, exit {exited:?}; stderr:\n{}\nlog:\n{}",
                    d.stderr(),
                    std::fs::read_to_string(&d.log).unwrap_or_default()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(d)
    }
}

/// A loopback TCP port below the ephemeral range (which outgoing connections use, so a
/// port chosen there can be taken at any moment) that is free now.
fn free_low_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let base = std::process::id() as usize * 7919;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20000 + ((base + n * 104_729) % 12000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Server for Dante {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn messages(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out: Vec<String> = Vec::new();
        for l in text.lines() {
            match traffic_log::Prefix::parse_line(l) {
                Ok((prefix, msg)) => {
                    assert_eq!(prefix.program, "danted", "{l}");
                    out.push(msg.to_owned());
                }
                Err(_) => match out.last_mut() {
                    Some(last) => {
                        last.push('\n');
                        last.push_str(l);
                    }
                    None => panic!("line without Dante's prefix: {l:?}"),
                },
            }
        }
        out
    }
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Dante {
    fn drop(&mut self) {
        // FERROSOCKS_DANTE_LOGS=DIR keeps every danted's log there (to study or quote).
        if let Some(keep) = std::env::var_os("FERROSOCKS_DANTE_LOGS") {
            let name = format!("danted-{}.log", self.child.id());
            let _ = std::fs::copy(&self.log, Path::new(&keep).join(name));
        }
        if thread::panicking() {
            eprintln!(
                "danted's log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        let group = self.child.id() as i32;
        // SAFETY: kill(2) on the process group of the danted we started (its children).
        unsafe { libc::kill(-group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: as above; whatever of the group is still there.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Which server a scenario drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    Ferrosocks,
    Dante,
}

impl Impl {
    /// Starts this server on a configuration template (see [`Proxy::start`]).
    pub fn start(self, conf: &str) -> Box<dyn Server> {
        match self {
            Self::Ferrosocks => Box::new(Proxy::start(conf)),
            Self::Dante => Box::new(Dante::start(conf)),
        }
    }
}

#[test]
fn golden_durations_compare_within_a_second() {
    let l = |n: u32| {
        format!("pass(1): tcp/accept ]: 2 -> A -> 7: local client closed.  Session duration: {n}s")
    };
    assert!(same_but_a_second(&l(0), &l(1)));
    assert!(same_but_a_second(&l(3), &l(2)));
    assert!(!same_but_a_second(&l(0), &l(2)));
    assert!(!same_but_a_second(
        &l(0),
        &l(0).replace("local client", "remote peer")
    ));
    assert!(!same_but_a_second("a", "b"));
}

/// A small tmpfs the test mounts at `dir` (created), unmounted on drop: a disk that
/// fills. Root only (CI runs as root); the tests run in a private network namespace,
/// and the mount is under the test's own temporary directory.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `"64k"`) at `dir`.
    pub fn mount(dir: &Path, size: &str) -> Self {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test mounts a tmpfs and must run as root (CI does)"
        );
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs failed");
        Self(dir.to_path_buf())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

// ---- system users (useradd/userdel), for the tests that need real accounts ----

static NEXT_USER: AtomicUsize = AtomicUsize::new(0);

/// A system user made with useradd, removed with userdel when dropped.
pub struct SystemUser {
    pub name: String,
}

impl SystemUser {
    pub fn new() -> Self {
        // SAFETY: geteuid(2) has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "this test creates system users with useradd and needs root \
             (./test.sh runs as root in CI)"
        );
        let n = NEXT_USER.fetch_add(1, Ordering::Relaxed);
        // The guard exists before useradd runs: whatever useradd did is undone.
        let u = Self {
            name: format!("fsk-test-{}-it{n}", std::process::id()),
        };
        u.tool(
            Command::new("useradd")
                .args(["-M", "-N", "-s", "/usr/sbin/nologin"])
                .arg(&u.name),
            None,
        );
        u
    }

    /// chpasswd with its default method (PAM: yescrypt on Debian 12).
    pub fn set_password(&self, password: &str) {
        self.tool(
            &mut Command::new("chpasswd"),
            Some(&format!("{}:{password}\n", self.name)),
        );
    }

    /// Runs `program ARGS… NAME`.
    pub fn admin(&self, program: &str, args: &[&str]) {
        self.tool(Command::new(program).args(args).arg(&self.name), None);
    }

    /// Its uid and gid.
    pub fn ids(&self) -> (u32, u32) {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let line = passwd
            .lines()
            .find(|l| l.split(':').next() == Some(self.name.as_str()))
            .unwrap_or_else(|| panic!("{} is not in /etc/passwd", self.name));
        let f: Vec<&str> = line.split(':').collect();
        (f[2].parse().unwrap(), f[3].parse().unwrap())
    }

    fn tool(&self, cmd: &mut Command, input: Option<&str>) {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        let mut stdin = child.stdin.take().unwrap();
        if let Some(text) = input {
            stdin.write_all(text.as_bytes()).unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SystemUser {
    fn drop(&mut self) {
        match Command::new("userdel").arg(&self.name).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "userdel {}: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("userdel {}: {e}", self.name),
        }
    }
}
