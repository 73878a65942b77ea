//! The operator interfaces measured: the status text's cost with many sessions, what the
//! operators' features cost the proxy, and the registry's memory per session.
//!
//! ```text
//! operators render [--sessions N] [--samples K]      status 3 reply and status-file rewrite times,
//!                                                    with 0, 1000, 5000 and N (default 10,000, or
//!                                                    what the descriptor limit allows) sessions held,
//!                                                    idle and then echoing; peak RSS of a render
//! operators alloc                                    allocations of the status text (this process,
//!                                                    counting allocator, synthetic sessions)
//! operators cost [--rounds R] [--rate-secs S] [--gib G] [--same | --ioop]
//!                                                    the proxy with and without a status file every
//!                                                    second and a management client on `bytecount 1`
//!                                                    and `log on`: connection rate, bulk, CPU, in
//!                                                    rounds of fresh processes, with the paired
//!                                                    median's 95% interval; `--same`: an A/A run of
//!                                                    two plain proxies (what the method tells apart);
//!                                                    `--ioop`: `log: connect disconnect ioop` against
//!                                                    no logging instead; `--floor [--floor-bytes N]`:
//!                                                    two plain proxies, the second's rate runs with
//!                                                    N bytes a session (default 1392) of notification
//!                                                    text moved between two threads beside it (the
//!                                                    operators' floor: `operators/floor.rs`)
//! operators memory [--reps R] [--baseline LABEL=PATH]...
//!                                                    PSS per idle session, this build and others
//! operators client ADDR SECONDS                      a management client on `bytecount 1` and
//!                                                    `log on` (for bench/operators-cost.sh)
//! operators all [--baseline LABEL=PATH]...           render, alloc, cost and memory
//! ```
//!
//! Run through `bench/operators.sh`, which builds the release binaries and the build
//! before the registry change for `memory`. Everything is on loopback; every load is
//! bounded in count and time; every process started is ended.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[path = "operators/floor.rs"]
mod floor;

use ferrosocks_bench::procs::{
    cap_time_wait, cpu_seconds, first_number, free_port, loadgen, median, min_max, proc_kib,
    pss_kib, sessions_within_limit, settle, sleep, start_ferrosocks_with_env, start_target, Held,
    RateResult, TIME_WAIT_CAP,
};

// === A counting allocator (for `alloc`) ===

/// The system allocator, counting: allocations, bytes asked for, bytes live and the
/// highest live mark since the last [`Counts::reset`].
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

fn grew(by: u64) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is passed on to `System` unchanged; the counters are atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        grew(layout.size() as u64);
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        let (old, new) = (layout.size() as u64, new_size as u64);
        if new >= old {
            BYTES.fetch_add(new - old, Ordering::Relaxed);
            grew(new - old);
        } else {
            LIVE.fetch_sub(old - new, Ordering::Relaxed);
        }
        // SAFETY: as `GlobalAlloc::realloc` requires, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The counters between two moments.
#[derive(Debug, Clone, Copy)]
struct Counts {
    allocs: u64,
    bytes: u64,
    /// The highest live mark above the live bytes at the start.
    peak: u64,
}

impl Counts {
    /// Resets the peak; returns the start's readings.
    fn reset() -> (u64, u64, u64) {
        let live = LIVE.load(Ordering::Relaxed);
        PEAK.store(live, Ordering::Relaxed);
        (
            ALLOCS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
            live,
        )
    }

    fn since((allocs, bytes, live): (u64, u64, u64)) -> Self {
        Self {
            allocs: ALLOCS.load(Ordering::Relaxed) - allocs,
            bytes: BYTES.load(Ordering::Relaxed) - bytes,
            peak: PEAK.load(Ordering::Relaxed).saturating_sub(live),
        }
    }
}

// === Options ===

struct Opts(Vec<String>);

impl Opts {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .windows(2)
            .filter(move |w| w[0] == name)
            .map(|w| w[1].as_str())
    }

    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }

    fn num(&self, name: &str, default: f64) -> f64 {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// Every `--baseline LABEL=PATH`.
    fn baselines(&self) -> Vec<(String, PathBuf)> {
        self.0
            .windows(2)
            .filter(|w| w[0] == "--baseline")
            .filter_map(|w| {
                let (label, path) = w[1].split_once('=')?;
                Some((label.to_owned(), PathBuf::from(path)))
            })
            .collect()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = std::env::current_exe()
        .expect("our path")
        .parent()
        .expect("a directory")
        .to_path_buf();
    let opts = Opts(args.clone());
    match args.get(1).map(String::as_str) {
        Some("render") => render_phase(&bin, &opts),
        Some("alloc") => alloc_phase(),
        Some("cost") => cost_phase(&bin, &opts),
        Some("memory") => memory_phase(&bin, &opts),
        Some("client") => client_main(&args),
        Some("all") => {
            render_phase(&bin, &opts);
            alloc_phase();
            cost_phase(&bin, &opts);
            memory_phase(&bin, &opts);
        }
        _ => {
            eprintln!("usage: operators render|alloc|cost|memory|client|all …");
            std::process::exit(2);
        }
    }
}

// === Configurations ===

/// What a ferrosocks configuration for these measures holds.
#[derive(Default, Clone)]
struct Conf {
    port: u16,
    /// `management: 127.0.0.1 port = N`.
    management: Option<u16>,
    /// `status.file`, `status.interval`, `status.version`.
    status: Option<(PathBuf, u64, u8)>,
    /// `logoutput:` this file and `log: connect disconnect` in the socks rule.
    log: Option<PathBuf>,
    /// `log.traffic.operators: on`.
    traffic_to_operators: bool,
    /// `ioop` too in the rule's `log:` (with `log`).
    ioop: bool,
    /// Environment variables of the process (`--env-b`).
    env: Vec<(String, String)>,
}

impl Conf {
    fn text(&self) -> String {
        let mut t = String::new();
        if let Some(log) = &self.log {
            t += &format!("logoutput: {}\n", log.display());
        }
        t += &format!(
            "internal: 127.0.0.1 port = {}\nsocksmethod: none\n",
            self.port
        );
        if let Some(m) = self.management {
            t += &format!("management: 127.0.0.1 port = {m}\n");
        }
        if let Some((file, interval, version)) = &self.status {
            t += &format!(
                "status.file: {}\nstatus.interval: {interval}\nstatus.version: {version}\n",
                file.display()
            );
        }
        if self.traffic_to_operators {
            t += "log.traffic.operators: on\n";
        }
        t += "client pass { from: 127.0.0.0/8 to: 0/0 }\n";
        t += &format!(
            "socks pass {{ from: 127.0.0.0/8 to: 0/0{} }}\n",
            match (&self.log, self.ioop) {
                (Some(_), false) => " log: connect disconnect",
                (Some(_), true) => " log: connect disconnect ioop",
                (None, _) => "",
            }
        );
        t
    }
}

/// A running ferrosocks.
struct Proxy {
    child: Child,
    addr: SocketAddr,
    conf: Conf,
    conf_path: PathBuf,
}

impl Proxy {
    fn start(binary: &Path, conf: Conf, conf_path: PathBuf) -> Self {
        std::fs::write(&conf_path, conf.text()).expect("a config");
        let child = start_ferrosocks_with_env(binary, &conf_path, conf.port, &conf.env);
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], conf.port)),
            conf,
            conf_path,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn mgmt_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.conf.management.expect("management")))
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child, which we have not waited for.
        unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
    }

    /// A new configuration, applied with SIGHUP.
    fn reload(&mut self, conf: Conf) {
        std::fs::write(&self.conf_path, conf.text()).expect("a config");
        self.conf = conf;
        self.signal(libc::SIGHUP);
    }

    /// Ends it with SIGTERM (it writes its status file a last time), waiting at most
    /// 10 s before SIGKILL.
    fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Nothing is sent to a child already waited for.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A target server, ended when dropped.
struct Target(Child, SocketAddr);

impl Target {
    fn start(bin: &Path) -> Self {
        let (c, a) = start_target(bin);
        Self(c, a)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// === The management client ===

/// A management client (no password), blocking.
struct Mgmt {
    s: TcpStream,
    buf: Vec<u8>,
}

const END: &[u8] = b"\r\nEND\r\n";

impl Mgmt {
    /// Connects and reads the greeting.
    fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut m = Self {
            s,
            buf: vec![0; 1 << 20],
        };
        let mut got = Vec::new();
        while !got.ends_with(b"\r\n") {
            let n = m.s.read(&mut m.buf)?;
            if n == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            got.extend_from_slice(&m.buf[..n]);
        }
        if !got.starts_with(b">INFO:OpenVPN Management Interface") {
            return Err(std::io::Error::other(format!(
                "unexpected greeting {:?}",
                String::from_utf8_lossy(&got)
            )));
        }
        Ok(m)
    }

    /// Reads and discards what is waiting (notifications), for `quiet` without a byte.
    fn drain(&mut self, quiet: Duration) -> std::io::Result<usize> {
        self.s.set_read_timeout(Some(quiet))?;
        let mut total = 0;
        loop {
            match self.s.read(&mut self.buf) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => total += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => return Err(e),
            }
        }
        self.s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(total)
    }

    /// Sends `cmd` and reads until the reply ends with `\r\nEND\r\n`: the time to its
    /// first byte, to its end, and the reply.
    fn multiline(&mut self, cmd: &str) -> std::io::Result<(Duration, Duration, Vec<u8>)> {
        let t0 = Instant::now();
        self.s.write_all(cmd.as_bytes())?;
        let mut reply = Vec::new();
        let mut first = None;
        while !reply.ends_with(END) {
            let n = self.s.read(&mut self.buf)?;
            if n == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            first.get_or_insert_with(|| t0.elapsed());
            reply.extend_from_slice(&self.buf[..n]);
        }
        Ok((first.unwrap_or_default(), t0.elapsed(), reply))
    }

    /// Reads one line, without its `\r\n` (a byte at a time: only for the few lines
    /// before a client starts reading in bulk).
    fn line_raw(&mut self) -> std::io::Result<Vec<u8>> {
        let mut got = Vec::new();
        while !got.ends_with(b"\r\n") {
            let mut b = [0u8; 1];
            if self.s.read(&mut b)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            got.push(b[0]);
        }
        got.truncate(got.len() - 2);
        Ok(got)
    }
}

/// What a subscribed management client received.
#[derive(Debug, Default, Clone, Copy)]
struct Received {
    bytes: u64,
    log: u64,
    client_blocks: u64,
    bytecount: u64,
    /// Notifications the server said it dropped for us.
    dropped: u64,
    other: u64,
    /// CPU time of the client's thread (seconds).
    cpu_secs: f64,
}

impl Received {
    fn line(&mut self, l: &[u8]) {
        if l.starts_with(b">LOG:") {
            self.log += 1;
        } else if l.starts_with(b">CLIENT:ENV,END") {
            self.client_blocks += 1;
        } else if l.starts_with(b">CLIENT:") {
        } else if l.starts_with(b">BYTECOUNT_CLI:") {
            self.bytecount += 1;
        } else if let Some(rest) = l.strip_prefix(b">INFO:") {
            let text = String::from_utf8_lossy(rest);
            match text.split_once(" notification(s) dropped") {
                Some((n, _)) => self.dropped += n.trim().parse::<u64>().unwrap_or(0),
                None => self.other += 1,
            }
        } else {
            self.other += 1;
        }
    }

    /// Adds another client's counts (one client per round).
    fn add(&mut self, o: &Self) {
        self.bytes += o.bytes;
        self.log += o.log;
        self.client_blocks += o.client_blocks;
        self.bytecount += o.bytecount;
        self.dropped += o.dropped;
        self.other += o.other;
        self.cpu_secs += o.cpu_secs;
    }

    fn describe(&self) -> String {
        format!(
            "{} bytes: {} >LOG lines, {} >CLIENT blocks, {} >BYTECOUNT_CLI lines, {} dropped, {} other lines",
            self.bytes, self.log, self.client_blocks, self.bytecount, self.dropped, self.other
        )
    }
}

/// `bytecount 1` and `log on`, then reads until `stop` is set (or the server closes, or
/// `limit` passes), counting what came.
fn subscribed_client(
    addr: SocketAddr,
    stop: &AtomicBool,
    limit: Duration,
    ready: impl FnOnce(),
) -> std::io::Result<Received> {
    // The management listener may come up a moment after the SOCKS port.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut m = loop {
        match Mgmt::connect(addr) {
            Ok(m) => break m,
            Err(e) if Instant::now() < deadline && e.kind() == ErrorKind::ConnectionRefused => {
                sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    };
    let mut r = Received::default();
    // Notifications (`>…`, e.g. a session's BYTECOUNT_CLI) may come before the replies.
    for cmd in ["bytecount 1\n", "log on\n"] {
        m.s.write_all(cmd.as_bytes())?;
        loop {
            let line = m.line_raw()?;
            if line.starts_with(b">") {
                r.line(&line);
                continue;
            }
            if !line.starts_with(b"SUCCESS") {
                return Err(std::io::Error::other(format!(
                    "{cmd:?} refused: {:?}",
                    String::from_utf8_lossy(&line)
                )));
            }
            break;
        }
    }
    ready();
    read_lines(&mut m.s, &mut m.buf, stop, Instant::now() + limit, &mut r)?;
    Ok(r)
}

/// Reads and counts lines into `r` until `stop` is set, `deadline` passes or the peer
/// closes; then notes the calling thread's CPU time in it.
fn read_lines(
    s: &mut TcpStream,
    buf: &mut [u8],
    stop: &AtomicBool,
    deadline: Instant,
    r: &mut Received,
) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    // The bytes of a line not yet ended wait at the front of `buf`; a read appends to
    // them and lines are split where they are, with no copy but of the partial tail.
    let mut have = 0;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match s.read(&mut buf[have..]) {
            Ok(0) => break,
            Ok(n) => {
                r.bytes += n as u64;
                let end = have + n;
                // Lines end in CRLF: split at each LF with `memchr`, as a client in C
                // (getline) or Python (readline) does, so that the client costs the
                // machine little.
                let mut start = 0;
                for i in memchr::memchr_iter(b'\n', &buf[have..end]) {
                    let line = &buf[start..have + i];
                    r.line(line.strip_suffix(b"\r").unwrap_or(line));
                    start = have + i + 1;
                }
                buf.copy_within(start..end, 0);
                have = end - start;
                if have == buf.len() {
                    // A line longer than the buffer: counted, and dropped.
                    r.other += 1;
                    have = 0;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
    }
    r.cpu_secs = thread_cpu_seconds();
    Ok(())
}

/// CPU time of the calling thread, seconds.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// `operators client ADDR SECONDS`.
fn client_main(args: &[String]) {
    let addr: SocketAddr = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .expect("operators client ADDR SECONDS");
    let secs: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(60);
    let stop = AtomicBool::new(false);
    let r = subscribed_client(addr, &stop, Duration::from_secs(secs), || {
        println!("subscribed");
    });
    match r {
        Ok(r) => println!("received {}", r.describe()),
        Err(e) => {
            eprintln!("operators client: {e}");
            std::process::exit(1);
        }
    }
}

// === Status file rewrites, seen by inotify ===

/// Renames onto one name in one directory, as inotify reports them (`IN_MOVED_TO`): the
/// moment a reader can open the new status file.
struct Renames {
    fd: OwnedFd,
    name: Vec<u8>,
}

impl Renames {
    fn watch(file: &Path) -> std::io::Result<Self> {
        // SAFETY: inotify_init1 has no preconditions; the descriptor is owned below.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let dir = file.parent().unwrap_or(Path::new("."));
        let cdir = CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
        // SAFETY: a valid descriptor and a NUL-terminated path.
        let wd =
            unsafe { libc::inotify_add_watch(fd.as_raw_fd(), cdir.as_ptr(), libc::IN_MOVED_TO) };
        if wd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self {
            fd,
            name: file
                .file_name()
                .unwrap_or(OsStr::new(""))
                .as_bytes()
                .to_vec(),
        })
    }

    /// Renames onto the name among the events waiting. The kernel merges an event with
    /// the one before it while both are unread when they are the same (a rename's
    /// cookie does not count), so renames are counted by reading as they come
    /// ([`Renames::count_until`]).
    fn read(&self) -> usize {
        let mut buf = [0u8; 8192];
        let mut hits = 0;
        loop {
            // SAFETY: a valid descriptor and a buffer of that length.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast::<libc::c_void>(),
                    buf.len(),
                )
            };
            if n <= 0 {
                return hits;
            }
            let mut at = 0;
            let n = n as usize;
            // struct inotify_event: wd, mask, cookie, len (u32 each), then the name.
            while at + 16 <= n {
                let len =
                    u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap_or([0; 4])) as usize;
                let name = &buf[at + 16..(at + 16 + len).min(n)];
                let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
                if name == self.name.as_slice() {
                    hits += 1;
                }
                at += 16 + len;
            }
        }
    }

    /// Waits (at most `limit`) for a rename onto the name.
    fn wait(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.read() > 0 {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut p = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, left.as_millis().min(1000) as libc::c_int + 1) };
        }
    }
}

impl Renames {
    /// Counts renames onto the name, each read as it comes, until `stop` is set.
    fn count_until(&self, stop: &AtomicBool) -> usize {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            if self.wait(Duration::from_millis(200)) {
                n += 1;
            }
        }
        n + self.read()
    }
}

/// SIGUSR2 to `proxy`, then the time until its status file is renamed into place.
fn rewrite(proxy: &Proxy, renames: &Renames) -> Option<Duration> {
    renames.read();
    let t0 = Instant::now();
    proxy.signal(libc::SIGUSR2);
    renames.wait(Duration::from_secs(10)).then(|| t0.elapsed())
}

// === Statistics ===

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `median [min–max]` with `digits` decimals.
fn spread(v: &[f64], digits: usize) -> String {
    if v.is_empty() {
        return "–".into();
    }
    let (lo, hi) = min_max(v);
    let mut s = v.to_vec();
    let md = median(&mut s);
    format!("{md:.digits$} [{lo:.digits$}–{hi:.digits$}]")
}

/// A 95% bootstrap interval of the median of `v` (2,000 resamples with replacement, a
/// fixed seed so that a run's table is reproducible from its figures).
fn median_interval(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut medians: Vec<f64> = (0..2000)
        .map(|_| {
            let mut sample: Vec<f64> = (0..v.len())
                .map(|_| v[(next() % v.len() as u64) as usize])
                .collect();
            median(&mut sample)
        })
        .collect();
    medians.sort_by(|a, b| a.total_cmp(b));
    (medians[50], medians[1949])
}

/// The share of values above `limit`.
fn above(v: &[f64], limit: f64) -> usize {
    v.iter().filter(|x| **x > limit).count()
}

fn rows_in(text: &[u8], prefix: &[u8]) -> usize {
    text.split(|b| *b == b'\n')
        .filter(|l| l.starts_with(prefix))
        .count()
}

// === render: the status text with many sessions ===

/// Samples of one condition.
#[derive(Default)]
struct RenderSamples {
    ttfb: Vec<f64>,
    reply: Vec<f64>,
    rewrite: Vec<f64>,
    bytes: usize,
    rows: usize,
    file_rows: usize,
}

impl RenderSamples {
    fn print(&self, label: &str) {
        println!(
            "| {label} | {} | {} | {} | {} | {:.0} | {} / {} |",
            spread(&self.reply, 1),
            spread(&self.ttfb, 1),
            spread(&self.rewrite, 1),
            above(&self.reply, 100.0) + above(&self.rewrite, 100.0),
            self.bytes as f64 / 1024.0,
            self.rows,
            self.file_rows,
        );
    }
}

/// `k` `status 3` replies and `k` SIGUSR2 rewrites, alternating, `gap` apart.
fn sample_renders(
    proxy: &Proxy,
    mgmt: &mut Mgmt,
    renames: &Renames,
    k: usize,
    gap: Duration,
) -> RenderSamples {
    let mut s = RenderSamples::default();
    for _ in 0..k {
        match mgmt.multiline("status 3\n") {
            Ok((first, all, reply)) => {
                s.ttfb.push(ms(first));
                s.reply.push(ms(all));
                s.bytes = reply.len();
                s.rows = rows_in(&reply, b"CLIENT_LIST\t");
            }
            Err(e) => eprintln!("status 3: {e}"),
        }
        sleep(gap);
        match rewrite(proxy, renames) {
            Some(d) => s.rewrite.push(ms(d)),
            None => eprintln!("no status file rewrite within 10 s"),
        }
        sleep(gap);
    }
    if let Some((file, ..)) = &proxy.conf.status {
        if let Ok(text) = std::fs::read(file) {
            s.file_rows = rows_in(&text, b"CLIENT_LIST,");
        }
    }
    s
}

/// Peak RSS of one `status 3` above the RSS before it, and what stayed: KiB.
fn render_rss(proxy: &Proxy, mgmt: &mut Mgmt) -> Option<(u64, i64)> {
    let pid = proxy.pid();
    // "5" resets the peak (VmHWM) to the RSS now.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").ok()?;
    let before = proc_kib(pid, "status", "VmRSS")?;
    mgmt.multiline("status 3\n").ok()?;
    let peak = proc_kib(pid, "status", "VmHWM")?;
    let after = proc_kib(pid, "status", "VmRSS")?;
    Some((peak.saturating_sub(before), after as i64 - before as i64))
}

fn render_phase(bin: &Path, opts: &Opts) {
    let want = opts.num("--sessions", 10_000.0) as usize;
    let k = opts.num("--samples", 15.0) as usize;
    let work = tempfile::tempdir().expect("a work directory");
    let shm = tempfile::tempdir_in("/dev/shm").ok();
    let disk_status = work.path().join("status");
    let conf = Conf {
        port: free_port(),
        management: Some(free_port()),
        status: Some((disk_status.clone(), 3600, 2)),
        ..Conf::default()
    };
    let mut proxy = Proxy::start(
        &bin.join("ferrosocks"),
        conf.clone(),
        work.path().join("ferrosocks.conf"),
    );
    let max = sessions_within_limit(proxy.pid(), want);
    println!("\n## render: status 3 and the status file (version 2) with sessions held\n");
    println!(
        "proxy pid {}, descriptor limit {}: {max} sessions at most (asked {want}); {k} samples of each",
        proxy.pid(),
        ferrosocks_bench::procs::nofile_limit(proxy.pid()),
    );
    let renames = Renames::watch(&disk_status).expect("inotify");
    let gap = Duration::from_millis(20);
    println!("\n| sessions held | status 3 reply, ms | first byte, ms | status file rewrite (SIGUSR2 → rename), ms | > 100 ms | reply KiB | rows (reply / file) |");
    println!("|---|---|---|---|---|---|---|");
    let mut rss = Vec::new();
    let mut sizes: Vec<usize> = [0, 1000, 5000].into_iter().filter(|n| *n < max).collect();
    sizes.push(max);
    for &n in &sizes {
        if n >= 5000 {
            settle();
        }
        let held = if n > 0 {
            match Held::start(bin, proxy.addr, n, 600, &[]) {
                Some(h) => Some(h),
                None => {
                    eprintln!("could not hold {n} sessions");
                    continue;
                }
            }
        } else {
            None
        };
        sleep(Duration::from_millis(500));
        let mut mgmt = Mgmt::connect(proxy.mgmt_addr()).expect("a management client");
        let _ = mgmt.drain(Duration::from_millis(200));
        if let Some(r) = render_rss(&proxy, &mut mgmt) {
            rss.push((n, r));
        }
        let s = sample_renders(&proxy, &mut mgmt, &renames, k, gap);
        s.print(&format!("{n}, idle"));
        drop(mgmt);
        if let Some(h) = held {
            h.end();
        }
    }
    // The largest count again, every session echoing 32 bytes every 10 s (≈ n/10
    // echoes a second through the relays), with renders every 250 ms and without.
    let mut echoes = Vec::new();
    for with_renders in [true, false] {
        settle();
        let secs = 20u64;
        let Some(mut held) = Held::start(
            bin,
            proxy.addr,
            max,
            secs,
            &["--echo-every", "10000", "--linger", "60"],
        ) else {
            eprintln!("could not hold {max} echoing sessions");
            continue;
        };
        let t0 = Instant::now();
        if with_renders {
            let mut mgmt = Mgmt::connect(proxy.mgmt_addr()).expect("a management client");
            let _ = mgmt.drain(Duration::from_millis(200));
            let rounds = ((secs as f64 - 4.0) / 0.5) as usize;
            let s = sample_renders(
                &proxy,
                &mut mgmt,
                &renames,
                rounds,
                Duration::from_millis(200),
            );
            s.print(&format!("{max}, echoing (≈{} echoes/s)", max / 10));
        }
        echoes.push((with_renders, held.hold.next_line(), t0.elapsed()));
        held.end();
    }
    // The same on tmpfs: what the disk's fsync adds.
    if let Some(shm) = &shm {
        let file = shm.path().join("status");
        let Ok(renames) = Renames::watch(&file) else {
            return;
        };
        let mut c = proxy.conf.clone();
        c.status = Some((file, 3600, 2));
        proxy.reload(c);
        // The status loop reads the new path at its next write: SIGUSR2 asks for it.
        sleep(Duration::from_secs(1));
        if rewrite(&proxy, &renames).is_none() {
            eprintln!("no status file on /dev/shm after the reload");
        }
        settle();
        if let Some(held) = Held::start(bin, proxy.addr, max, 600, &[]) {
            sleep(Duration::from_millis(500));
            let mut mgmt = Mgmt::connect(proxy.mgmt_addr()).expect("a management client");
            let _ = mgmt.drain(Duration::from_millis(200));
            let s = sample_renders(&proxy, &mut mgmt, &renames, k, gap);
            s.print(&format!("{max}, idle, status file on tmpfs"));
            held.end();
        }
    }
    println!("\nEchoes through the held sessions (32 bytes each, every 10 s per session):");
    for (with, line, took) in &echoes {
        println!(
            "  {}: {line} ({:.0} s)",
            if *with {
                "a render every ~0.25 s"
            } else {
                "no renders            "
            },
            took.as_secs_f64()
        );
    }
    println!("\nPeak RSS of one `status 3` above the RSS before it (VmHWM after clear_refs), and what stayed:");
    for (n, (peak, kept)) in &rss {
        let per = if *n > 0 {
            format!(
                " ({:.0} bytes per session)",
                *peak as f64 * 1024.0 / *n as f64
            )
        } else {
            String::new()
        };
        println!("  {n:>6} sessions: peak +{peak} KiB{per}, kept {kept:+} KiB");
    }
    proxy.stop();
}

// === alloc: what rendering allocates, counted ===

/// `n` sessions as the held ones look: CONNECT relays from 127.0.0.1 to one target,
/// no user, a few bytes each way.
fn synthetic(n: usize) -> Vec<server::registry::SessionSnapshot> {
    use server::registry::{Count, SessionSnapshot, SessionState, Traffic};
    let now = SystemTime::now();
    (0..n)
        .map(|i| SessionSnapshot {
            id: 100_000 + i as u64,
            client: SocketAddr::from(([127, 0, 0, 1], 30_000 + (i % 30_000) as u16)),
            internal: SocketAddr::from(([127, 0, 0, 1], 1080)),
            external: Some(SocketAddr::from((
                [127, 0, 0, 1],
                40_000 + (i % 20_000) as u16,
            ))),
            user: None,
            method: Some(sockd_conf::AuthMethod::None),
            rule: Some(1),
            command: Some(sockd_conf::SocksCommand::Connect),
            target: Some("127.0.0.1:21090".into()),
            resolved: Some(SocketAddr::from(([127, 0, 0, 1], 21090))),
            state: SessionState::Established,
            started: now - Duration::from_secs(60),
            last_activity: now - Duration::from_secs(30),
            traffic: Traffic {
                from_client: Count {
                    bytes: 10,
                    packets: 1,
                },
                to_client: Count {
                    bytes: 1,
                    packets: 1,
                },
                from_target: Count {
                    bytes: 1,
                    packets: 1,
                },
                to_target: Count {
                    bytes: 10,
                    packets: 1,
                },
            },
        })
        .collect()
}

fn alloc_phase() {
    use server::registry::Totals;
    println!("\n## alloc: the status text's allocations (counting allocator, this process)\n");
    println!(
        "SessionSnapshot is {} bytes; rows of synthetic CONNECT sessions (no user, target 127.0.0.1:21090).\n",
        size_of::<server::registry::SessionSnapshot>()
    );
    println!("| sessions | snapshot copy: allocations / bytes per session | render v3 `\\r\\n`: allocations per session | bytes asked per session | peak live bytes per session | text bytes per session | render ms (median of 7) |");
    println!("|---|---|---|---|---|---|---|");
    let totals = Totals::default();
    for n in [1000usize, 2000, 5000, 10_000, 20_000] {
        let snaps = synthetic(n);
        let c0 = Counts::reset();
        let copy = snaps.clone();
        let copied = Counts::since(c0);
        drop(copy);
        let mut times = Vec::new();
        let mut counted = None;
        let mut len = 0;
        for _ in 0..7 {
            let c0 = Counts::reset();
            let t0 = Instant::now();
            let text = mgmt::status::render(3, &snaps, &totals, SystemTime::now(), "\r\n");
            times.push(ms(t0.elapsed()));
            counted.get_or_insert(Counts::since(c0));
            len = text.len();
            drop(text);
        }
        let r = counted.expect("a render");
        let per = |x: u64| x as f64 / n as f64;
        println!(
            "| {n} | {:.1} / {:.0} | {:.1} | {:.0} | {:.0} | {:.0} | {:.2} |",
            per(copied.allocs),
            per(copied.bytes),
            per(r.allocs),
            per(r.bytes),
            per(r.peak),
            per(len as u64),
            median(&mut times)
        );
    }
}

// === cost: the proxy with and without its operators ===

/// A subscribed management client running in a thread.
struct Operator {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<std::io::Result<Received>>,
}

impl Operator {
    fn start(addr: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                subscribed_client(addr, &stop, Duration::from_secs(3600), || {
                    let _ = tx.send(());
                })
            })
        };
        // Without its client the measure would be of something else.
        assert!(
            rx.recv_timeout(Duration::from_secs(20)).is_ok(),
            "the management client did not subscribe"
        );
        // A client's `>CLIENT:` blocks are held for 250 ms after its last command (so that
        // they do not cut into its conversation), at most 1 MiB of them: load that starts
        // at once would have some dropped by design (docs/management.md). Wait that out.
        sleep(Duration::from_millis(400));
        Self { stop, thread }
    }

    fn finish(self) -> Option<Received> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(Ok(r)) => Some(r),
            Ok(Err(e)) => {
                eprintln!("management client: {e}");
                None
            }
            Err(_) => None,
        }
    }
}

fn cost_phase(bin: &Path, opts: &Opts) {
    let rounds = opts.num("--rounds", 6.0) as usize;
    let rate_secs = opts.num("--rate-secs", 5.0);
    let gib = opts.num("--gib", 1.0);
    let bytes = (gib * 1024.0 * 1024.0 * 1024.0) as u64;
    let work = tempfile::tempdir().expect("a work directory");
    let ferrosocks = bin.join("ferrosocks");
    // `--ioop`: the same method for `log: connect disconnect ioop` to a file against no
    // logging at all (issue 16's logging goal) instead of the operators.
    let ioop = opts.flag("--ioop");
    let plain = Conf {
        port: free_port(),
        log: (!ioop).then(|| work.path().join("plain.log")),
        ..Conf::default()
    };
    let status_file = work.path().join("status");
    // `--same`: an A/A run, the second proxy as plain as the first, to show what the
    // method itself tells apart between two identical proxies.
    let same = opts.flag("--same");
    // `--floor`: the second proxy plain too, its rate runs with the notifications' bytes
    // moved beside it (what sending them costs with no proxy work: `floor.rs`).
    let floor_bytes = opts
        .flag("--floor")
        .then(|| opts.num("--floor-bytes", 1392.0) as usize);
    let same = same || floor_bytes.is_some();
    let ops = if ioop {
        Conf {
            port: free_port(),
            log: Some(work.path().join("ioop.log")),
            ioop: true,
            ..Conf::default()
        }
    } else if same {
        Conf {
            port: free_port(),
            log: Some(work.path().join("operators.log")),
            ..Conf::default()
        }
    } else {
        Conf {
            port: free_port(),
            log: Some(work.path().join("operators.log")),
            management: Some(free_port()),
            status: Some((status_file.clone(), 1, 2)),
            traffic_to_operators: true,
            ioop: false,
            env: Vec::new(),
        }
    };
    // `--env-b VAR=VALUE` (repeatable): the second proxy's environment, e.g. with
    // `--same`, `FERROSOCKS_WORKERS=1` against the default.
    let env_b: Vec<(String, String)> = opts
        .values("--env-b")
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    let ops = Conf {
        env: env_b.clone(),
        ..ops
    };

    // `--bin-b PATH`: the second proxy is another build (with `--same`, an A/B of two
    // builds, e.g. of an allocator).
    let bin_b = opts.values("--bin-b").next().map(PathBuf::from);
    let with_operators = !ioop && !same;
    let names = if ioop {
        ["no log", "ioop log"]
    } else if floor_bytes.is_some() {
        ["plain", "plain + bytes"]
    } else if same && (!env_b.is_empty() || bin_b.is_some()) {
        ["A", "B"]
    } else {
        ["plain", "operators"]
    };
    if ioop {
        println!("\n## cost: `log: connect disconnect ioop` to a file against no logging\n");
    } else {
        println!("\n## cost: the proxy without and with its operators\n");
        if let Some(n) = floor_bytes {
            println!("`--floor`: both proxies plain; during the second's rate runs, {n} bytes a session of `>CLIENT:` and `>LOG:` text (at the rate measured so far) go from a writer thread to a reader thread of the runner over loopback TCP, one write per 20 ms, the reader counting lines as the management client does.");
        } else if same {
            println!("`--same`: an A/A run — the \"operators\" proxy is a second plain one, without a management client.");
        }
        if floor_bytes.is_some() {
            println!("plain: `log: connect disconnect` to a file (both proxies).");
        } else {
            println!("plain: `log: connect disconnect` to a file. operators: the same, and `status.file` (version 2) every second, `management: 127.0.0.1 port = N`, `log.traffic.operators: on`, one client on `bytecount 1` and `log on`.");
        }
    }
    if !env_b.is_empty() {
        println!("The second proxy runs with {env_b:?}.");
    }
    if let Some(b) = &bin_b {
        println!("The second proxy is {}.", b.display());
    }
    println!("{rounds} rounds, the two in turn (AB, BA, AB, …); rate runs {rate_secs} s at 50 concurrent; bulk {gib} GiB.");
    if cap_time_wait() {
        println!("In a private network namespace with TIME_WAIT capped at {TIME_WAIT_CAP} entries: no round waits for the table to drain.");
    }
    println!();
    println!("Every round starts both proxies and their targets afresh (new processes, new ports), so that no proxy instance's luck (measured with `--same`: two identical long-lived proxies differed by 19%) decides the comparison.");
    println!();
    let subjects = [(names[0], plain), (names[1], ops)];
    let renames = Renames::watch(&status_file).expect("inotify");
    let watching = Arc::new(AtomicBool::new(false));
    let rewrites = {
        let stop = Arc::clone(&watching);
        std::thread::spawn(move || renames.count_until(&stop))
    };
    let start = Instant::now();
    let mut sessions = [0.0f64; 2];
    let mut received: Option<Received> = None;
    let mut pumped: Vec<floor::Pumped> = Vec::new();
    let mut results: BTreeMap<(usize, &'static str), Vec<f64>> = BTreeMap::new();
    let mut failures = Vec::new();
    let measures: [(&str, &str, u32); 3] = [
        ("up x1 MB/s", "up", 1),
        ("down x1 MB/s", "down", 1),
        ("up x4 MB/s", "up", 4),
    ];
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        let order: Vec<usize> = if round % 2 == 0 {
            vec![0, 1]
        } else {
            vec![1, 0]
        };
        settle();
        let targets: Vec<Target> = subjects.iter().map(|_| Target::start(bin)).collect();
        let proxies: Vec<Proxy> = subjects
            .iter()
            .enumerate()
            .map(|(i, (name, c))| {
                let conf = Conf {
                    port: free_port(),
                    management: c.management.map(|_| free_port()),
                    ..c.clone()
                };
                let proxy_bin = match (&bin_b, i) {
                    (Some(b), 1) => b,
                    _ => &ferrosocks,
                };
                Proxy::start(proxy_bin, conf, work.path().join(format!("{name}.conf")))
            })
            .collect();
        let operator = with_operators.then(|| Operator::start(proxies[1].mgmt_addr()));
        let pump = floor_bytes.map(|n| floor::Pump::start(n).expect("the notification pump"));
        for &i in &order {
            let (p, t) = (&proxies[i], &targets[i]);
            if let (Some(pump), 1) = (&pump, i) {
                let mut so_far = results.get(&(0, "conn/s")).cloned().unwrap_or_default();
                so_far.extend(results.get(&(1, "conn/s")).cloned().unwrap_or_default());
                let rate = if so_far.is_empty() {
                    10_000.0
                } else {
                    median(&mut so_far)
                };
                pump.on(rate);
            }
            let cpu0 = cpu_seconds(p.pid());
            let args: Vec<String> = vec![
                "rate".into(),
                t.1.to_string(),
                "50".into(),
                rate_secs.to_string(),
                "200000".into(),
                p.addr.to_string(),
            ];
            match loadgen(bin, &args) {
                Ok(out) => {
                    let r = RateResult::parse(&out);
                    if r.errors > 0 {
                        failures.push(format!("{} round {}: {out}", subjects[i].0, round + 1));
                    }
                    if let (Some(rate), Some(ok)) = (r.rate, r.ok) {
                        if ok > 0.0 {
                            let cpu = cpu_seconds(p.pid()) - cpu0;
                            eprintln!("  {}: {rate:.0} conn/s", subjects[i].0);
                            results.entry((i, "conn/s")).or_default().push(rate);
                            results
                                .entry((i, "CPU us/conn"))
                                .or_default()
                                .push(cpu / ok * 1e6);
                            if let Some(p50) = r.p50 {
                                results.entry((i, "p50 ms")).or_default().push(p50);
                            }
                            sessions[i] += ok;
                        }
                    }
                }
                Err(why) => failures.push(format!("{} round {}: {why}", subjects[i].0, round + 1)),
            }
            if let Some(pump) = &pump {
                pump.off();
            }
        }
        if let Some(pump) = pump {
            match pump.finish() {
                Ok(p) => pumped.push(p),
                Err(e) => failures.push(format!("the notification pump, round {}: {e}", round + 1)),
            }
        }
        for (measure, dir, streams) in measures {
            for &i in &order {
                let (p, t) = (&proxies[i], &targets[i]);
                let cpu0 = cpu_seconds(p.pid());
                let args: Vec<String> = vec![
                    "bulk".into(),
                    t.1.to_string(),
                    dir.into(),
                    streams.to_string(),
                    bytes.to_string(),
                    p.addr.to_string(),
                ];
                match loadgen(bin, &args).map(|o| first_number(&o)) {
                    Ok(Some(v)) => {
                        results.entry((i, measure)).or_default().push(v);
                        let cpu = cpu_seconds(p.pid()) - cpu0;
                        results.entry((i, "CPU s/GiB")).or_default().push(cpu / gib);
                    }
                    _ => failures.push(format!("{} {measure} round {}", subjects[i].0, round + 1)),
                }
            }
        }
        if let Some(r) = operator.and_then(Operator::finish) {
            received.get_or_insert_with(Received::default).add(&r);
        }
        for p in proxies {
            p.stop();
        }
        drop(targets);
    }
    let elapsed = start.elapsed();
    watching.store(true, Ordering::Relaxed);
    let rewrites = rewrites.join().unwrap_or(0);
    let [a_name, b_name] = names;
    println!("| measure | {a_name} | {b_name} | {b_name} / {a_name}, medians | paired (round by round) {b_name} / {a_name} | median of the paired, 95% interval |");
    println!("|---|---|---|---|---|---|");
    for m in [
        "conn/s",
        "p50 ms",
        "CPU us/conn",
        "up x1 MB/s",
        "down x1 MB/s",
        "up x4 MB/s",
        "CPU s/GiB",
    ] {
        let a = results.get(&(0, m)).cloned().unwrap_or_default();
        let b = results.get(&(1, m)).cloned().unwrap_or_default();
        let ratio = median(&mut b.clone()) / median(&mut a.clone());
        let paired: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (y / x - 1.0) * 100.0)
            .collect();
        let (lo, hi) = median_interval(&paired);
        println!(
            "| {m} | {} | {} | {:+.1}% | {}% | {lo:+.1}% … {hi:+.1}% |",
            spread(&a, 1),
            spread(&b, 1),
            (ratio - 1.0) * 100.0,
            spread(&paired, 1)
        );
    }
    println!(
        "\nStatus file rewrites seen (inotify) during the {:.0} s: {rewrites}.",
        elapsed.as_secs_f64()
    );
    if let Some(r) = received {
        let n = sessions[1].max(1.0);
        println!(
            "The management client received {} — per rate-run session {:.1} >LOG lines, {:.1} >CLIENT blocks, {:.0} bytes.",
            r.describe(),
            r.log as f64 / n,
            r.client_blocks as f64 / n,
            r.bytes as f64 / n
        );
        println!(
            "The management client's thread used {:.1} s of CPU in the {:.0} s: {:.1} µs per rate-run session (the proxy's CPU per connection is in the table).",
            r.cpu_secs,
            elapsed.as_secs_f64(),
            r.cpu_secs / n * 1e6
        );
    }
    if !pumped.is_empty() {
        let sent: u64 = pumped.iter().map(|p| p.sessions).sum();
        let mut got = Received::default();
        for p in &pumped {
            got.add(&p.received);
        }
        let writer_cpu: f64 = pumped.iter().map(|p| p.writer_cpu_secs).sum();
        println!(
            "The pump sent the text of {sent} sessions ({:.2} per rate-run session of the second proxy); its reader received {}. CPU per session sent: writer {:.1} µs, reader {:.1} µs.",
            sent as f64 / sessions[1].max(1.0),
            got.describe(),
            writer_cpu / sent.max(1) as f64 * 1e6,
            got.cpu_secs / sent.max(1) as f64 * 1e6
        );
    }
    for f in &failures {
        println!("left out or with errors: {f}");
    }
}

// === memory: PSS per idle session ===

fn memory_phase(bin: &Path, opts: &Opts) {
    let reps = opts.num("--reps", 3.0) as usize;
    let mut builds = vec![("this build".to_owned(), bin.join("ferrosocks"))];
    builds.extend(opts.baselines());
    let work = tempfile::tempdir().expect("a work directory");
    println!("\n## memory: PSS per idle session (held with `loadgen hold`, after a warm-up)\n");
    // A new process for every measure: memory a process got once it keeps (the
    // allocator reuses it), so a second measure in the same process sees nothing grow.
    let warm = Target::start(bin);
    let mut kib: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    for rep in 0..reps {
        for n in [1000usize, 5000] {
            // Each repetition starts with the next build, so none is always first.
            for j in 0..builds.len() {
                let i = (j + rep) % builds.len();
                let conf = Conf {
                    port: free_port(),
                    ..Conf::default()
                };
                let p = Proxy::start(&builds[i].1, conf, work.path().join(format!("{i}.conf")));
                // A warm-up, so that the runtime's workers, buffers and the log are set
                // up before the measure: 300 short sessions, 10 at a time.
                let _ = loadgen(
                    bin,
                    &[
                        "rate".into(),
                        warm.1.to_string(),
                        "10".into(),
                        "1".into(),
                        "300".into(),
                        p.addr.to_string(),
                    ],
                );
                if let Some(v) = idle_pss(bin, &p, n) {
                    kib.entry((i, n)).or_default().push(v);
                }
                p.stop();
            }
        }
    }
    drop(warm);
    println!("| build | 1000 held, KiB per session | 5000 held, KiB per session |");
    println!("|---|---|---|");
    for (i, (label, path)) in builds.iter().enumerate() {
        println!(
            "| {label} (`{}`) | {} | {} |",
            path.display(),
            spread(kib.get(&(i, 1000)).map_or(&[][..], |v| v), 2),
            spread(kib.get(&(i, 5000)).map_or(&[][..], |v| v), 2),
        );
    }
    if builds.len() > 1 {
        for n in [1000usize, 5000] {
            let ours = median(&mut kib.get(&(0, n)).cloned().unwrap_or_default());
            for (i, (label, _)) in builds.iter().enumerate().skip(1) {
                let theirs = median(&mut kib.get(&(i, n)).cloned().unwrap_or_default());
                println!(
                    "{n} held: this build − {label} = {:+.0} bytes per session",
                    (ours - theirs) * 1024.0
                );
            }
        }
    }
}

/// PSS growth of `proxy` per session, KiB, with `n` idle sessions held (to a target
/// server of their own, ended target first).
fn idle_pss(bin: &Path, proxy: &Proxy, n: usize) -> Option<f64> {
    let before = pss_kib(proxy.pid());
    let held = Held::start(bin, proxy.addr, n, 120, &[])?;
    sleep(Duration::from_millis(500));
    let per = (pss_kib(proxy.pid()).saturating_sub(before)) as f64 / n as f64;
    held.end();
    sleep(Duration::from_millis(500));
    Some(per)
}
