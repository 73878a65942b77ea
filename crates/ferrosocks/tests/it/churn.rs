//! The churn soak: hundreds of clients with no think time, every way a session can end
//! (the client first, the target first, a half-close, a reset) and stalled handshakes
//! mixed in. Passes with 0 errors, 0 corrupted bytes, the proxy's descriptors back to
//! their baseline, memory flat, `tcp/accept [:` = `tcp/accept ]:` = the connections made,
//! and one `tcp/connect ]:` per granted CONNECT.
//!
//! In the suite it runs 8 s with 200 clients (at most 10,000 sessions, so that it leaves
//! the parallel tests some CPU); `bench/churn.sh` runs it longer (a
//! release build, `FERROSOCKS_CHURN_CLIENTS`, `FERROSOCKS_CHURN_SECS`,
//! `FERROSOCKS_CHURN_MAX` for a bound on the sessions).
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?}: not a number"))
        })
        .unwrap_or(default)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .count()
}

fn anon_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no RssAnon:\n{status}"))
}

/// How a session ends.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// The client reads the echo and closes.
    ClientFirst,
    /// The target echoes and closes; the client reads to the end.
    TargetFirst,
    /// The client half-closes; the target answers after the EOF, then closes.
    HalfClose,
    /// The client reads the echo and resets the connection.
    Reset,
    /// A handshake left unfinished: the client goes away after a while.
    StallClose,
    /// A handshake left unfinished until `timeout.negotiate` ends it.
    StallTimeout,
}

impl Ending {
    fn of(n: u64) -> Self {
        match n % 50 {
            49 => Self::StallTimeout,
            k => [
                Self::ClientFirst,
                Self::TargetFirst,
                Self::HalfClose,
                Self::Reset,
                Self::ClientFirst,
                Self::TargetFirst,
                Self::HalfClose,
                Self::Reset,
                Self::StallClose,
            ][k as usize % 9],
        }
    }
}

/// The target: the first byte says how to end (`e` echo until EOF, `t` echo the
/// announced length then close, `h` read to EOF then send it all back).
fn target() -> (SocketAddr, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    thread::spawn(move || {
        for c in l.incoming() {
            if s.load(Ordering::SeqCst) {
                return;
            }
            let Ok(c) = c else { continue };
            thread::spawn(move || serve_target(c));
        }
    });
    (addr, stop)
}

fn serve_target(mut c: TcpStream) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
    let mut head = [0u8; 5];
    if c.read_exact(&mut head).is_err() {
        return;
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut buf = vec![0u8; 16384];
    match head[0] {
        b't' => {
            let mut all = vec![0u8; len];
            if c.read_exact(&mut all).is_ok() {
                let _ = c.write_all(&all);
            }
        }
        b'h' => {
            let mut all = Vec::new();
            if c.read_to_end(&mut all).is_ok() {
                let _ = c.write_all(&all);
            }
        }
        _ => loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        },
    }
}

/// A payload that differs per session, 1 B to 16 KiB (xorshift on the session number).
fn payload(n: u64) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let len = 1 + (next() % 16384) as usize;
    (0..len).map(|_| next() as u8).collect()
}

#[derive(Default)]
struct Tally {
    sessions: AtomicU64,
    connected: AtomicU64,
    granted: AtomicU64,
    bytes: AtomicU64,
    corrupted: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn error(&self, what: String) {
        let mut e = self.errors.lock().unwrap();
        if e.len() < 20 {
            e.push(what);
        } else if e.len() == 20 {
            e.push("…".into());
        }
    }
}

/// One session; an `Err` is an error of the proxy's.
fn session(proxy: SocketAddr, target: SocketAddr, n: u64, t: &Tally) -> Result<(), String> {
    let close = Ending::of(n);
    let mut c = TcpStream::connect(proxy).map_err(|e| format!("connect to the proxy: {e}"))?;
    t.connected.fetch_add(1, Ordering::Relaxed);
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let ctx = |what: &str, e: std::io::Error| format!("{close:?} #{n}: {what}: {e}");
    match close {
        Ending::StallClose => {
            c.write_all(&[5, 1][..(n % 3) as usize])
                .map_err(|e| ctx("greeting", e))?;
            thread::sleep(Duration::from_millis(n % 200));
            return Ok(());
        }
        Ending::StallTimeout => {
            c.write_all(&[5]).map_err(|e| ctx("greeting", e))?;
            let mut b = [0u8; 16];
            return match c.read(&mut b) {
                Ok(0) => Ok(()),
                Ok(k) => Err(format!("{close:?} #{n}: {k} bytes to half a greeting")),
                Err(e) => Err(ctx("waiting for the negotiate timeout", e)),
            };
        }
        _ => {}
    }
    let SocketAddr::V4(ta) = target else { panic!() };
    // Greeting and request in one write, as a client with no think time.
    let mut req = vec![5, 1, 0, 5, 1, 0, 1];
    req.extend_from_slice(&ta.ip().octets());
    req.extend_from_slice(&ta.port().to_be_bytes());
    c.write_all(&req).map_err(|e| ctx("request", e))?;
    let mut reply = [0u8; 12];
    c.read_exact(&mut reply).map_err(|e| ctx("reply", e))?;
    if reply[..4] != [5, 0, 5, 0] {
        return Err(format!("{close:?} #{n}: replies {reply:?}"));
    }
    t.granted.fetch_add(1, Ordering::Relaxed);
    let data = payload(n);
    let mode = match close {
        Ending::TargetFirst => b't',
        Ending::HalfClose => b'h',
        _ => b'e',
    };
    let mut msg = vec![mode];
    msg.extend_from_slice(&(data.len() as u32).to_be_bytes());
    msg.extend_from_slice(&data);
    c.write_all(&msg).map_err(|e| ctx("payload", e))?;
    let mut got = vec![0u8; data.len()];
    if let Ending::HalfClose = close {
        c.shutdown(Shutdown::Write)
            .map_err(|e| ctx("half-close", e))?;
    }
    c.read_exact(&mut got).map_err(|e| ctx("echo", e))?;
    if got != data {
        t.corrupted.fetch_add(1, Ordering::Relaxed);
        return Err(format!(
            "{close:?} #{n}: {} bytes echoed corrupted",
            data.len()
        ));
    }
    t.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
    match close {
        Ending::TargetFirst | Ending::HalfClose => {
            let mut b = [0u8; 16];
            match c.read(&mut b) {
                Ok(0) => {}
                Ok(k) => return Err(format!("{close:?} #{n}: {k} bytes after the echo")),
                Err(e) => return Err(ctx("waiting for the target's close", e)),
            }
        }
        Ending::Reset => socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .map_err(|e| ctx("linger", e))?,
        _ => {}
    }
    Ok(())
}

fn count(text: &str, what: &str) -> usize {
    text.lines().filter(|l| l.contains(what)).count()
}

#[test]
fn churn_soak() {
    let clients = env_or("FERROSOCKS_CHURN_CLIENTS", 200);
    let secs = env_or("FERROSOCKS_CHURN_SECS", 8);
    let max = env_or("FERROSOCKS_CHURN_MAX", 10_000);
    let (taddr, tstop) = target();
    let p = Proxy::start(&conf("connect disconnect").replace(
        "socksmethod: none\n",
        "socksmethod: none\nmute: 0\ntimeout.negotiate: 2\n",
    ));
    let pid = p.child.id();
    // The runtime's own descriptors are there once it has served a session.
    drop(Raw::connect_v4(p.addr, taddr));
    let baseline_deadline = Instant::now() + Duration::from_secs(10);
    let accepted = |n: usize| {
        let text = std::fs::read_to_string(&p.log).unwrap_or_default();
        count(&text, "tcp/accept ]:") >= n
    };
    while !accepted(1) {
        assert!(
            Instant::now() < baseline_deadline,
            "the first session did not end"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let baseline = fds(pid);
    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let mem = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let mem = Arc::clone(&mem);
        thread::spawn(move || {
            while Instant::now() < end {
                mem.lock().unwrap().push(anon_kib(pid));
                thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (t, next) = (Arc::clone(&tally), Arc::clone(&next));
            let proxy = p.addr;
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    while Instant::now() < end {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= max {
                            return;
                        }
                        t.sessions.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = session(proxy, taddr, n, &t) {
                            t.error(e);
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    sampler.join().unwrap();
    let sessions = tally.sessions.load(Ordering::Relaxed);
    let connected = tally.connected.load(Ordering::Relaxed) as usize + 1;
    let granted = tally.granted.load(Ordering::Relaxed) as usize + 1;
    let errors = tally.errors.lock().unwrap().clone();
    // Every session's summary is written and its descriptors closed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&p.log).unwrap_or_default();
        let done = count(&text, "tcp/accept ]:") >= connected && fds(pid) <= baseline;
        if done || Instant::now() > deadline {
            break text;
        }
        thread::sleep(Duration::from_millis(100));
    };
    tstop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect(taddr);
    let mem = mem.lock().unwrap().clone();
    let rate = sessions as f64 / secs as f64;
    eprintln!(
        "churn: {clients} clients, {secs} s: {sessions} sessions ({rate:.0}/s), {granted} CONNECTs, \
         {} MiB echoed, {} errors; RssAnon KiB {:?} … {:?}; descriptors {baseline} → {}",
        tally.bytes.load(Ordering::Relaxed) >> 20,
        errors.len(),
        mem.get(mem.len() / 3),
        mem.last(),
        fds(pid),
    );
    assert!(errors.is_empty(), "errors:\n{}", errors.join("\n"));
    assert_eq!(tally.corrupted.load(Ordering::Relaxed), 0);
    assert!(
        sessions >= clients,
        "{sessions} sessions from {clients} clients"
    );
    assert_eq!(fds(pid), baseline, "descriptors not back to the baseline");
    let (opened, closed) = (count(&text, "tcp/accept [:"), count(&text, "tcp/accept ]:"));
    assert_eq!(
        (opened, closed),
        (connected, connected),
        "tcp/accept [: and ]: lines"
    );
    assert_eq!(
        count(&text, "tcp/connect ]:"),
        granted,
        "one tcp/connect ]: per granted CONNECT"
    );
    assert!(
        !text.contains("0.0.0.0.0") && !text.contains("Address already in use"),
        "a CONNECT failed under churn"
    );
    // Memory flat: from a third of the run to its end, less than 32 MiB more.
    if let (Some(&a), Some(&b)) = (mem.get(mem.len() / 3), mem.last()) {
        assert!(b < a + 32 * 1024, "RssAnon grew from {a} KiB to {b} KiB");
    }
    assert!(p.child_running());
}
