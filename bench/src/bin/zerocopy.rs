//! Does `MSG_ZEROCOPY` pay for a relay's bulk direction here? A lever of issue 16
//! measured on its own: one stream pushed through a bare relay thread on loopback, the
//! relay's outgoing side written four ways, side by side.
//!
//! ```text
//! zerocopy [--mib N] [--rounds R] [--sink-netns PATH --sink-ip IP] [MODE...]
//!     MODE: direct | splice | copy | zerocopy   (default: all four; N = 2048, R = 5)
//! ```
//!
//! With `--sink-netns`, the sink thread enters that network namespace (`setns`) and
//! listens on `IP` there: the relay's outgoing side then crosses a veth pair instead of
//! loopback (`bench/zerocopy.sh veth` sets one up), which tells whether the kernel's copy
//! is loopback's alone.
//!
//! * `direct`: the source writes to the sink itself (no relay), the reference;
//! * `splice`: socket → pipe (1 MiB, `F_SETPIPE_SZ`) → socket, what ferrosocks does once a
//!   direction is bulk;
//! * `copy`: `read` into a 256 KiB buffer, `write` it out;
//! * `zerocopy`: `read` into one of 16 buffers of 256 KiB, `send(MSG_ZEROCOPY)` on a socket
//!   with `SO_ZEROCOPY`; a buffer is reused only after the kernel's completion for its
//!   send has been read from the socket's error queue (`recvmsg(MSG_ERRQUEUE)`), and each
//!   completion says whether the kernel had to copy after all
//!   (`SO_EE_CODE_ZEROCOPY_COPIED`).
//!
//! Every transfer is a source thread writing N MiB (256 KiB writes) → the relay thread
//! (blocking sockets, `TCP_NODELAY` not set) → a sink thread reading and discarding, all
//! on 127.0.0.1. Printed per mode, median [min–max] over the rounds (the modes' order
//! rotates by one each round): MB/s from the source's first write to the sink's end of
//! file, the relay thread's CPU seconds per GiB (`CLOCK_THREAD_CPUTIME_ID`; on loopback it
//! includes the receiving side's TCP work, which runs in the sender's context), the whole
//! process's CPU seconds per GiB (`getrusage`), and for `zerocopy` the share of sends the
//! kernel reported as copied.

use std::ffi::c_int;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use ferrosocks_bench::procs::{median, min_max};

const CHUNK: usize = 256 * 1024;
const POOL: usize = 16;
const PIPE_SIZE: c_int = 1 << 20;
// Not (all) in the libc crate: linux/socket.h and linux/errqueue.h.
const SO_ZEROCOPY: c_int = 60;
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Direct,
    Splice,
    Copy,
    Zerocopy,
}

impl Mode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "direct" => Self::Direct,
            "splice" => Self::Splice,
            "copy" => Self::Copy,
            "zerocopy" => Self::Zerocopy,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Splice => "splice",
            Self::Copy => "copy",
            Self::Zerocopy => "zerocopy",
        }
    }
}

/// What one transfer measured.
struct Sample {
    mb_per_s: f64,
    relay_cpu_per_gib: f64,
    process_cpu_per_gib: f64,
    sends: u64,
    copied: u64,
}

/// What the relay thread reports: its CPU time and, for `zerocopy`, the sends and how
/// many of them the kernel copied.
#[derive(Default)]
struct RelayStats {
    cpu: Duration,
    sends: u64,
    copied: u64,
}

/// Where the sink listens: 127.0.0.1 here, or an address in another network namespace.
#[derive(Clone)]
struct SinkAt {
    netns: Option<String>,
    ip: std::net::IpAddr,
}

fn main() {
    let mut sink_at = SinkAt {
        netns: None,
        ip: [127, 0, 0, 1].into(),
    };
    let mut mib: u64 = 2048;
    let mut rounds = 5;
    let mut modes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mib" => mib = number(args.next(), "--mib"),
            "--rounds" => rounds = number(args.next(), "--rounds") as usize,
            "--sink-netns" => sink_at.netns = args.next(),
            "--sink-ip" => {
                sink_at.ip = args
                    .next()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| die("--sink-ip needs an IP address"))
            }
            m => match Mode::parse(m) {
                Some(m) => modes.push(m),
                None => die(&format!(
                    "unknown argument {m:?}; usage: zerocopy [--mib N] [--rounds R] [direct|splice|copy|zerocopy...]"
                )),
            },
        }
    }
    if modes.is_empty() {
        modes = vec![Mode::Direct, Mode::Splice, Mode::Copy, Mode::Zerocopy];
    }
    let bytes = mib * 1024 * 1024;
    let mut samples: Vec<Vec<Sample>> = modes.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..modes.len() {
            let i = (k + round) % modes.len();
            let s = transfer(modes[i], bytes, &sink_at).unwrap_or_else(|e| die(&e));
            eprintln!(
                "round {} {:<8} {:>7.0} MB/s  relay {:.3} s/GiB  process {:.3} s/GiB{}",
                round + 1,
                modes[i].name(),
                s.mb_per_s,
                s.relay_cpu_per_gib,
                s.process_cpu_per_gib,
                if modes[i] == Mode::Zerocopy {
                    format!("  {} of {} sends copied", s.copied, s.sends)
                } else {
                    String::new()
                }
            );
            samples[i].push(s);
        }
    }
    println!(
        "| relay's outgoing side ({} MiB, {} rounds) | MB/s | relay thread CPU, s per GiB | process CPU, s per GiB | sends the kernel copied |",
        mib, rounds
    );
    println!("|---|---|---|---|---|");
    for (m, s) in modes.iter().zip(&samples) {
        let copied = if *m == Mode::Zerocopy {
            let sends: u64 = s.iter().map(|x| x.sends).sum();
            let copied: u64 = s.iter().map(|x| x.copied).sum();
            format!(
                "{copied} of {sends} ({:.1}%)",
                100.0 * copied as f64 / sends.max(1) as f64
            )
        } else {
            "—".to_string()
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            m.name(),
            spread(s.iter().map(|x| x.mb_per_s), 0),
            spread(s.iter().map(|x| x.relay_cpu_per_gib), 3),
            spread(s.iter().map(|x| x.process_cpu_per_gib), 3),
            copied
        );
    }
}

/// One transfer of `bytes` through `mode`.
fn transfer(mode: Mode, bytes: u64, at: &SinkAt) -> Result<Sample, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let at = at.clone();
    let sink = thread::spawn(move || -> Result<(u64, Instant), String> {
        let listener = (|| {
            if let Some(path) = &at.netns {
                enter_netns(path)?;
            }
            TcpListener::bind((at.ip, 0)).map_err(|e| format!("bind {}: {e}", at.ip))
        })();
        let sink_l = match listener {
            Ok(l) => {
                let _ = tx.send(l.local_addr().map_err(|e| e.to_string()));
                l
            }
            Err(e) => {
                let _ = tx.send(Err(e.clone()));
                return Err(e);
            }
        };
        let (mut s, _) = sink_l.accept().map_err(|e| format!("sink accept: {e}"))?;
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0u64;
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Ok((got, Instant::now())),
                Ok(n) => got += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("sink read: {e}")),
            }
        }
    });
    let sink_addr = rx
        .recv()
        .map_err(|_| "the sink thread ended".to_string())??;
    let (to, relay) = if mode == Mode::Direct {
        (sink_addr, None)
    } else {
        let relay_l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        let addr = relay_l.local_addr().map_err(|e| e.to_string())?;
        let h = thread::spawn(move || -> Result<RelayStats, String> {
            let (inp, _) = relay_l.accept().map_err(|e| format!("relay accept: {e}"))?;
            let out = TcpStream::connect(sink_addr).map_err(|e| format!("relay connect: {e}"))?;
            let start = thread_cpu();
            let mut stats = match mode {
                Mode::Splice => relay_splice(&inp, &out)?,
                Mode::Copy => relay_copy(&inp, &out)?,
                Mode::Zerocopy => relay_zerocopy(&inp, &out)?,
                Mode::Direct => unreachable!(),
            };
            let _ = out.shutdown(Shutdown::Write);
            stats.cpu = thread_cpu().saturating_sub(start);
            Ok(stats)
        });
        (addr, Some(h))
    };
    let cpu0 = process_cpu();
    let mut src = TcpStream::connect(to).map_err(|e| format!("connect: {e}"))?;
    let data = vec![0x5au8; CHUNK];
    let t0 = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        src.write_all(&data[..n])
            .map_err(|e| format!("source write: {e}"))?;
        left -= n as u64;
    }
    src.shutdown(Shutdown::Write)
        .map_err(|e| format!("source shutdown: {e}"))?;
    let stats = match relay {
        Some(h) => h.join().map_err(|_| "relay thread panicked")??,
        None => RelayStats::default(),
    };
    let (got, end) = sink.join().map_err(|_| "sink thread panicked")??;
    let process = process_cpu().saturating_sub(cpu0);
    if got != bytes {
        return Err(format!(
            "{}: the sink received {got} bytes of {bytes}",
            mode.name()
        ));
    }
    let gib = bytes as f64 / (1u64 << 30) as f64;
    Ok(Sample {
        mb_per_s: bytes as f64 / 1e6 / end.duration_since(t0).as_secs_f64(),
        relay_cpu_per_gib: stats.cpu.as_secs_f64() / gib,
        process_cpu_per_gib: process.as_secs_f64() / gib,
        sends: stats.sends,
        copied: stats.copied,
    })
}

fn relay_copy(inp: &TcpStream, out: &TcpStream) -> Result<RelayStats, String> {
    let (mut inp, mut out) = (inp, out);
    let mut buf = vec![0u8; CHUNK];
    loop {
        match inp.read(&mut buf) {
            Ok(0) => return Ok(RelayStats::default()),
            Ok(n) => out
                .write_all(&buf[..n])
                .map_err(|e| format!("relay write: {e}"))?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("relay read: {e}")),
        }
    }
}

fn relay_splice(inp: &TcpStream, out: &TcpStream) -> Result<RelayStats, String> {
    let mut p = [0 as c_int; 2];
    // SAFETY: `p` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: plain fcntl on the pipe just made; a failure leaves the default size.
    unsafe { libc::fcntl(p[1], libc::F_SETPIPE_SZ, PIPE_SIZE) };
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE;
    let result = (|| loop {
        // SAFETY: splice between descriptors this function owns or borrows; null offsets.
        let n = unsafe {
            libc::splice(
                inp.as_raw_fd(),
                std::ptr::null_mut(),
                p[1],
                std::ptr::null_mut(),
                PIPE_SIZE as usize,
                flags,
            )
        };
        if n < 0 {
            return Err(format!("splice in: {}", std::io::Error::last_os_error()));
        }
        if n == 0 {
            return Ok(RelayStats::default());
        }
        let mut left = n as usize;
        while left > 0 {
            // SAFETY: as above.
            let m = unsafe {
                libc::splice(
                    p[0],
                    std::ptr::null_mut(),
                    out.as_raw_fd(),
                    std::ptr::null_mut(),
                    left,
                    flags,
                )
            };
            if m <= 0 {
                return Err(format!("splice out: {}", std::io::Error::last_os_error()));
            }
            left -= m as usize;
        }
    })();
    // SAFETY: the pipe's descriptors are closed once, here.
    unsafe {
        libc::close(p[0]);
        libc::close(p[1]);
    }
    result
}

/// The zero-copy sender's bookkeeping: which send numbers the kernel has completed.
struct Completions {
    done: Vec<bool>,
    /// Every send below this number is complete.
    done_upto: u32,
    copied: u64,
}

impl Completions {
    fn mark(&mut self, lo: u32, hi: u32, copied: bool) {
        for s in lo..=hi {
            let s = s as usize;
            if self.done.len() <= s {
                self.done.resize(s + 1, false);
            }
            if !self.done[s] {
                self.done[s] = true;
                self.copied += copied as u64;
            }
        }
        while self
            .done
            .get(self.done_upto as usize)
            .copied()
            .unwrap_or(false)
        {
            self.done_upto += 1;
        }
    }

    /// Reads every completion waiting on `fd`'s error queue; waits for one first if
    /// `wait`. Returns how many notifications were read.
    fn read(&mut self, fd: c_int, wait: bool) -> Result<usize, String> {
        let mut read = 0;
        loop {
            let mut control = [0u64; 16];
            // SAFETY: an all-zero msghdr is valid; it points at `control`, which outlives
            // the call, with its length.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = size_of_val(&control) as _;
            // SAFETY: as above; MSG_ERRQUEUE never blocks.
            let r = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EAGAIN) {
                    return Err(format!("recvmsg(MSG_ERRQUEUE): {e}"));
                }
                if read > 0 || !wait {
                    return Ok(read);
                }
                let mut pfd = libc::pollfd {
                    fd,
                    events: 0,
                    revents: 0,
                };
                // SAFETY: one pollfd; POLLERR is reported without being asked for.
                unsafe { libc::poll(&mut pfd, 1, 1000) };
                continue;
            }
            // SAFETY: the kernel filled `msg`; the CMSG macros walk within msg_controllen.
            let mut c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
            while !c.is_null() {
                // SAFETY: `c` points at a header inside `control`.
                let h = unsafe { &*c };
                if h.cmsg_level == libc::SOL_IP && h.cmsg_type == libc::IP_RECVERR {
                    // SAFETY: an IP_RECVERR message carries a sock_extended_err.
                    let ee: libc::sock_extended_err =
                        unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
                    if ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY {
                        self.mark(
                            ee.ee_info,
                            ee.ee_data,
                            ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
                        );
                        read += 1;
                    }
                }
                // SAFETY: as above.
                c = unsafe { libc::CMSG_NXTHDR(&msg, c) };
            }
        }
    }
}

fn relay_zerocopy(inp: &TcpStream, out: &TcpStream) -> Result<RelayStats, String> {
    let fd = out.as_raw_fd();
    let one: c_int = 1;
    // SAFETY: `one` outlives the call and its size is passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_ZEROCOPY,
            &one as *const c_int as *const libc::c_void,
            size_of::<c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(format!(
            "setsockopt(SO_ZEROCOPY): {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut inp = inp;
    let mut pool: Vec<Vec<u8>> = (0..POOL).map(|_| vec![0u8; CHUNK]).collect();
    // The last send number of each buffer's contents, if it is in flight.
    let mut last_send: Vec<Option<u32>> = vec![None; POOL];
    let mut c = Completions {
        done: Vec::new(),
        done_upto: 0,
        copied: 0,
    };
    let mut next_send: u32 = 0;
    let mut k = 0;
    loop {
        // The buffer to fill must be free: its sends complete.
        while let Some(s) = last_send[k] {
            if c.done_upto > s {
                last_send[k] = None;
            } else {
                c.read(fd, true)?;
            }
        }
        let n = loop {
            match inp.read(&mut pool[k]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("relay read: {e}")),
            }
        };
        if n == 0 {
            break;
        }
        let mut off = 0;
        while off < n {
            // SAFETY: the slice outlives the kernel's use of it: the buffer is not written
            // again before its completion is read.
            let m = unsafe {
                libc::send(
                    fd,
                    pool[k][off..n].as_ptr().cast(),
                    n - off,
                    libc::MSG_ZEROCOPY,
                )
            };
            if m < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                if e.raw_os_error() == Some(libc::ENOBUFS) {
                    // The socket's optmem for notifications is full: take some.
                    c.read(fd, true)?;
                    continue;
                }
                return Err(format!("send(MSG_ZEROCOPY): {e}"));
            }
            off += m as usize;
            last_send[k] = Some(next_send);
            next_send += 1;
        }
        c.read(fd, false)?;
        k = (k + 1) % POOL;
    }
    while c.done_upto < next_send {
        c.read(fd, true)?;
    }
    Ok(RelayStats {
        cpu: Duration::ZERO,
        sends: next_send as u64,
        copied: c.copied,
    })
}

/// Moves the calling thread into the network namespace at `path` (`setns`).
fn enter_netns(path: &str) -> Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: setns on a descriptor this function holds open; it changes this thread only.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

fn thread_cpu() -> Duration {
    // SAFETY: clock_gettime writes one timespec.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn process_cpu() -> Duration {
    // SAFETY: getrusage writes one rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// "median [min–max]" of `v` with `digits` decimals.
fn spread(v: impl Iterator<Item = f64>, digits: usize) -> String {
    let mut v: Vec<f64> = v.collect();
    if v.is_empty() {
        return "—".into();
    }
    let (lo, hi) = min_max(&v);
    format!("{:.digits$} [{lo:.digits$}–{hi:.digits$}]", median(&mut v))
}

fn number(v: Option<String>, flag: &str) -> u64 {
    v.and_then(|v| v.parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or_else(|| die(&format!("{flag} needs a positive number")))
}

fn die(msg: &str) -> ! {
    eprintln!("zerocopy: {msg}");
    std::process::exit(2)
}
