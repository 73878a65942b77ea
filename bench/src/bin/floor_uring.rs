//! The io_uring floor: the epoll floor's (`floorproxy`) twin on a ring, as a benchmark
//! subject (not a product, not a peer). It owns nothing but its own relay loop, and
//! exists to measure what io_uring itself saves a SOCKS5 CONNECT relay, everything else
//! bare.
//!
//! ```text
//! floor_uring LISTEN_ADDR [--threads N] [--bulk copy|big|splice] [--setup plain|coop|defer]
//!             [--shutdown direct|ring]
//!     (default: one thread, splice, defer, direct; prints "listening ADDR")
//! ```
//!
//! One ring per thread (`--setup defer`: `SINGLE_ISSUER | DEFER_TASKRUN`, completions run
//! only when the thread waits for them; `coop`: `SINGLE_ISSUER | COOP_TASKRUN`; `plain`:
//! none), and a `SO_REUSEPORT` listener per thread. Every operation goes through the ring:
//! a multishot accept (re-armed when the kernel ends it), recv of the greeting (method 0
//! only) and of the request (CONNECT to an IPv4 address only; otherwise reply 0x07 or
//! 0x08 and close), which may arrive together or apart, socket, `TCP_NODELAY` (a linked
//! `SOCKET_URING_OP_SETSOCKOPT`) and connect, the 10-byte reply (`BND.ADDR` from
//! getsockname, the one direct system call of a session), then the relay: recv/send
//! through two fixed 16 KiB buffers per connection; after a full 16 KiB read, with
//! `--bulk big`, recv/send through a pooled 256 KiB buffer, or with `--bulk splice`,
//! `IORING_OP_SPLICE` through a 1 MiB pipe (as ferrosocks does; the kernel hands every
//! splice to an io-wq worker thread). An end of
//! file is passed on with shutdown(2) (`--shutdown ring`: `IORING_OP_SHUTDOWN`, which the
//! kernel always hands to an io-wq worker thread), except the second one, which close
//! carries; an error shuts both sockets down (which ends their pending operations) and
//! closes them once nothing is in flight. Connections live in a slab of boxed structs
//! (the kernel holds pointers into them while operations are in flight; freed slots are
//! reused, so no allocation per connection after warm-up); pipes and big buffers are
//! pooled.
//! The loop is one `io_uring_enter` per batch: submit everything queued, wait for one
//! completion, handle all that are there.

use std::ffi::c_int;
use std::io::Write;
use std::net::SocketAddrV4;

use ferrosocks_bench::floor_sys::{exit_on_term, local_addr, set_int, sockaddr};
use std::os::fd::RawFd;

use io_uring::{cqueue, opcode, squeue, types, IoUring};

const BUF: usize = 16 * 1024;
const PIPE_SIZE: c_int = 1 << 20;
const HS: usize = 512;
const POOL_MAX: usize = 256;
const RING: u32 = 4096;

/// `TCP_NODELAY`'s value: the kernel reads it when the linked setsockopt runs.
static ONE: c_int = 1;

// Operations, the low byte of user_data (the slot is above it). `+ d` for a direction.
const ACCEPT: u8 = 1;
const HS_RECV: u8 = 2;
const HS_SEND: u8 = 3;
const ERR_SEND: u8 = 4;
const SOCKET: u8 = 5;
const NODELAY: u8 = 6;
const CONNECT: u8 = 7;
const REPLY: u8 = 8;
const RECV: u8 = 16;
const SEND: u8 = 18;
const SPLICE_IN: u8 = 20;
const SPLICE_OUT: u8 = 22;
const SHUT: u8 = 24;
const CLOSE: u8 = 30;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bulk {
    Copy,
    /// recv/send, through a pooled `BIG` buffer after a full 16 KiB read.
    Big,
    Splice,
}

const BIG: usize = 256 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(addr) = args.get(1).and_then(|a| a.parse::<SocketAddrV4>().ok()) else {
        eprintln!(
            "usage: floor_uring IPV4:PORT [--threads N] [--bulk copy|big|splice] [--setup plain|coop|defer] [--shutdown direct|ring]"
        );
        std::process::exit(2);
    };
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    let threads = opt("--threads")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let bulk = match opt("--bulk") {
        Some("copy") => Bulk::Copy,
        Some("big") => Bulk::Big,
        // The cheapest per GiB of the three (docs/PERFORMANCE.md, "io_uring: a bare relay on a ring").
        None | Some("splice") => Bulk::Splice,
        Some(other) => {
            eprintln!("floor_uring: --bulk copy|big|splice, not {other}");
            std::process::exit(2)
        }
    };
    let ring_shutdown = match opt("--shutdown") {
        None | Some("direct") => false,
        Some("ring") => true,
        Some(other) => {
            eprintln!("floor_uring: --shutdown direct|ring, not {other}");
            std::process::exit(2)
        }
    };
    let setup = opt("--setup").unwrap_or("defer").to_owned();
    if !matches!(setup.as_str(), "plain" | "coop" | "defer") {
        eprintln!("floor_uring: --setup plain|coop|defer, not {setup}");
        std::process::exit(2)
    }
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // Under strace or perf, a clean exit_group ends the counts.
    exit_on_term();
    let first = listener(addr).unwrap_or_else(|e| {
        eprintln!("floor_uring: listen on {addr}: {e}");
        std::process::exit(1)
    });
    let bound = local_addr(first);
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(listener(bound).unwrap_or_else(|e| {
            eprintln!("floor_uring: listen on {bound}: {e}");
            std::process::exit(1)
        }));
    }
    // Rings are made on the thread that uses them (SINGLE_ISSUER ties a ring to it).
    let mut handles = Vec::new();
    let mut listeners = listeners.into_iter();
    let mine = listeners.next().expect("one listener");
    for l in listeners {
        let setup = setup.clone();
        handles.push(std::thread::spawn(move || {
            run(l, bulk, ring_shutdown, &setup)
        }));
    }
    println!("listening {bound}");
    let _ = std::io::stdout().flush();
    run(mine, bulk, ring_shutdown, &setup);
}

fn run(listener: RawFd, bulk: Bulk, ring_shutdown: bool, setup: &str) {
    let ring = ring(setup).unwrap_or_else(|e| {
        eprintln!("floor_uring: io_uring_setup ({setup}): {e}");
        std::process::exit(1)
    });
    Worker::new(ring, listener, bulk, ring_shutdown).run()
}

fn ring(setup: &str) -> std::io::Result<IoUring> {
    let mut b = IoUring::builder();
    b.setup_cqsize(RING * 4);
    match setup {
        "defer" => {
            b.setup_single_issuer().setup_defer_taskrun();
        }
        "coop" => {
            b.setup_single_issuer()
                .setup_coop_taskrun()
                .setup_taskrun_flag();
        }
        _ => {}
    }
    b.build(RING)
}

fn listener(addr: SocketAddrV4) -> std::io::Result<c_int> {
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
        set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1);
        // Inherited by every accepted socket.
        set_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
        let sa = sockaddr(addr);
        if libc::bind(
            fd,
            &sa as *const _ as *const libc::sockaddr,
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) < 0
            || libc::listen(fd, 4096) < 0
        {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(fd)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Free,
    Greeting,
    Request,
    Connecting,
    Relay,
}

/// One direction of the relay: 0 from the client to the target, 1 back.
struct Dir {
    buf: [u8; BUF],
    len: usize,
    off: usize,
    /// After a full 16 KiB read (`--bulk splice`): splice through `pipe` from now on.
    splice: bool,
    /// After a full 16 KiB read (`--bulk big`): recv/send through this from now on.
    big: Option<Box<[u8]>>,
    pipe: Option<(RawFd, RawFd)>,
    in_pipe: usize,
    /// End of file read from the source.
    done: bool,
}

struct Conn {
    stage: Stage,
    client: RawFd,
    target: RawFd,
    /// Operations the kernel holds for this slot (it may point into this struct).
    inflight: u32,
    /// No new operations: close the sockets once `inflight` is 0.
    finish: bool,
    /// The closes are queued: free the slot once `inflight` is 0.
    closing: bool,
    hs: [u8; HS],
    hs_len: usize,
    meth: [u8; 2],
    reply: [u8; 10],
    addr: libc::sockaddr_in,
    dirs: [Dir; 2],
}

impl Conn {
    fn boxed() -> Box<Self> {
        let dir = || Dir {
            buf: [0; BUF],
            len: 0,
            off: 0,
            splice: false,
            big: None,
            pipe: None,
            in_pipe: 0,
            done: false,
        };
        Box::new(Self {
            stage: Stage::Free,
            client: -1,
            target: -1,
            inflight: 0,
            finish: false,
            closing: false,
            hs: [0; HS],
            hs_len: 0,
            meth: [0; 2],
            reply: [0; 10],
            addr: sockaddr(SocketAddrV4::new(0.into(), 0)),
            dirs: [dir(), dir()],
        })
    }

    fn fds(&self, d: usize) -> (RawFd, RawFd) {
        if d == 0 {
            (self.client, self.target)
        } else {
            (self.target, self.client)
        }
    }
}

/// The ring and the per-thread pools, apart from the slab so that a handler can hold
/// one connection and queue operations at once.
struct Io {
    ring: IoUring,
    bulk: Bulk,
    ring_shutdown: bool,
    pipes: Vec<(RawFd, RawFd)>,
    bigs: Vec<Box<[u8]>>,
}

impl Io {
    /// Queue `e` for `slot` as operation `op`; the kernel sees it at the next enter.
    fn op(&mut self, c: &mut Conn, slot: u32, op: u8, e: squeue::Entry) {
        c.inflight += 1;
        self.push(e.user_data((u64::from(slot) << 8) | u64::from(op)));
    }

    fn push(&mut self, e: squeue::Entry) {
        // Safety: every pointer in an entry is into a boxed connection (or a static),
        // which lives until its operations have completed.
        while unsafe { self.ring.submission().push(&e) }.is_err() {
            if let Err(err) = self.ring.submit() {
                if err.raw_os_error() != Some(libc::EBUSY) {
                    eprintln!("floor_uring: submit: {err}");
                    std::process::exit(1);
                }
            }
        }
    }

    fn recv(&mut self, c: &mut Conn, slot: u32, d: usize) {
        let (from, _) = c.fds(d);
        let dir = &mut c.dirs[d];
        let (buf, len) = match &mut dir.big {
            Some(b) => (b.as_mut_ptr(), b.len()),
            None => (dir.buf.as_mut_ptr(), BUF),
        };
        let e = opcode::Recv::new(types::Fd(from), buf, len as u32).build();
        self.op(c, slot, RECV + d as u8, e);
    }

    fn send(&mut self, c: &mut Conn, slot: u32, d: usize) {
        let (_, to) = c.fds(d);
        let dir = &c.dirs[d];
        let ptr = match &dir.big {
            Some(b) => b[dir.off..].as_ptr(),
            None => dir.buf[dir.off..].as_ptr(),
        };
        let e = opcode::Send::new(types::Fd(to), ptr, (dir.len - dir.off) as u32).build();
        self.op(c, slot, SEND + d as u8, e);
    }

    fn splice_in(&mut self, c: &mut Conn, slot: u32, d: usize) {
        let (from, _) = c.fds(d);
        let Some((_, w)) = c.dirs[d].pipe else {
            return;
        };
        let e = opcode::Splice::new(types::Fd(from), -1, types::Fd(w), -1, PIPE_SIZE as u32)
            .flags(libc::SPLICE_F_MOVE)
            .build();
        self.op(c, slot, SPLICE_IN + d as u8, e);
    }

    fn splice_out(&mut self, c: &mut Conn, slot: u32, d: usize) {
        let (_, to) = c.fds(d);
        let Some((r, _)) = c.dirs[d].pipe else {
            return;
        };
        let n = c.dirs[d].in_pipe as u32;
        let e = opcode::Splice::new(types::Fd(r), -1, types::Fd(to), -1, n)
            .flags(libc::SPLICE_F_MOVE)
            .build();
        self.op(c, slot, SPLICE_OUT + d as u8, e);
    }

    fn hs_recv(&mut self, c: &mut Conn, slot: u32) {
        if c.hs_len == HS {
            c.finish = true;
            return;
        }
        let buf = c.hs[c.hs_len..].as_mut_ptr();
        let e = opcode::Recv::new(types::Fd(c.client), buf, (HS - c.hs_len) as u32).build();
        self.op(c, slot, HS_RECV, e);
    }

    /// The method refusal (`code` 0xff, 2 bytes) or a SOCKS5 error reply (10 bytes),
    /// then close.
    fn refuse(&mut self, c: &mut Conn, slot: u32, code: u8) {
        c.reply = [5, code, 0, 1, 0, 0, 0, 0, 0, 0];
        let len = if code == 0xff { 2 } else { 10 };
        let e = opcode::Send::new(types::Fd(c.client), c.reply.as_ptr(), len).build();
        self.op(c, slot, ERR_SEND, e);
        c.finish = true;
    }

    /// Shut both sockets down, which ends their pending operations; close follows.
    fn abort(&mut self, c: &mut Conn) {
        if c.finish {
            return;
        }
        c.finish = true;
        unsafe {
            libc::shutdown(c.client, libc::SHUT_RDWR);
            if c.target >= 0 {
                libc::shutdown(c.target, libc::SHUT_RDWR);
            }
        }
    }

    fn pipe(&mut self) -> Option<(RawFd, RawFd)> {
        if let Some(p) = self.pipes.pop() {
            return Some(p);
        }
        let mut fds = [0 as c_int; 2];
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return None;
        }
        unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, PIPE_SIZE) };
        Some((fds[0], fds[1]))
    }
}

struct Worker {
    io: Io,
    listener: RawFd,
    conns: Vec<Box<Conn>>,
    free: Vec<u32>,
    cqes: Vec<(u64, i32, u32)>,
}

impl Worker {
    fn new(ring: IoUring, listener: RawFd, bulk: Bulk, ring_shutdown: bool) -> Self {
        Self {
            io: Io {
                ring,
                bulk,
                ring_shutdown,
                pipes: Vec::new(),
                bigs: Vec::new(),
            },
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            cqes: Vec::with_capacity((RING * 4) as usize),
        }
    }

    fn arm_accept(&mut self) {
        let e = opcode::AcceptMulti::new(types::Fd(self.listener))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data((u64::from(u32::MAX) << 8) | u64::from(ACCEPT));
        self.io.push(e);
    }

    fn run(mut self) {
        self.arm_accept();
        loop {
            match self.io.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) => {
                    eprintln!("floor_uring: io_uring_enter: {e}");
                    std::process::exit(1);
                }
            }
            let mut cqes = std::mem::take(&mut self.cqes);
            cqes.extend(
                self.io
                    .ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for &(ud, res, flags) in &cqes {
                self.complete(ud, res, flags);
            }
            cqes.clear();
            self.cqes = cqes;
        }
    }

    fn complete(&mut self, ud: u64, res: i32, flags: u32) {
        let op = (ud & 0xff) as u8;
        let slot = (ud >> 8) as u32;
        if op == ACCEPT {
            if res >= 0 {
                self.accepted(res);
            } else if res != -libc::EAGAIN && res != -libc::EINTR {
                eprintln!(
                    "floor_uring: accept: {}",
                    std::io::Error::from_raw_os_error(-res)
                );
            }
            if !cqueue::more(flags) {
                self.arm_accept();
            }
            return;
        }
        let io = &mut self.io;
        let c = &mut *self.conns[slot as usize];
        c.inflight -= 1;
        if !c.finish {
            match op {
                HS_RECV => handshake(io, c, slot, res),
                HS_SEND | REPLY if res < 0 => io.abort(c),
                HS_SEND => {}
                REPLY if res != 10 => io.abort(c),
                // The relay's second direction starts once the reply is out.
                REPLY => io.recv(c, slot, 1),
                SOCKET => socket_made(io, c, slot, res),
                NODELAY => {}
                CONNECT => connected(io, c, slot, res),
                ERR_SEND | SHUT | CLOSE => {}
                _ => relay(io, c, slot, op, res),
            }
        }
        if c.finish && c.inflight == 0 {
            if !c.closing {
                c.closing = true;
                for fd in [c.client, c.target] {
                    if fd >= 0 {
                        io.op(c, slot, CLOSE, opcode::Close::new(types::Fd(fd)).build());
                    }
                }
            }
            if c.inflight == 0 {
                self.release(slot);
            }
        }
    }

    fn accepted(&mut self, fd: RawFd) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(Conn::boxed());
            (self.conns.len() - 1) as u32
        });
        let c = &mut *self.conns[slot as usize];
        c.stage = Stage::Greeting;
        c.client = fd;
        c.target = -1;
        c.inflight = 0;
        c.finish = false;
        c.closing = false;
        c.hs_len = 0;
        for d in &mut c.dirs {
            d.len = 0;
            d.off = 0;
            d.splice = false;
            d.in_pipe = 0;
            d.done = false;
        }
        self.io.hs_recv(c, slot);
    }

    fn release(&mut self, slot: u32) {
        let c = &mut *self.conns[slot as usize];
        c.stage = Stage::Free;
        // After both ends of file the pipes are empty; after an error they may not be.
        let clean = c.dirs.iter().all(|d| d.done && d.in_pipe == 0);
        for d in &mut c.dirs {
            if let Some(b) = d.big.take() {
                if self.io.bigs.len() < POOL_MAX {
                    self.io.bigs.push(b);
                }
            }
            if let Some((r, w)) = d.pipe.take() {
                if clean && self.io.pipes.len() < POOL_MAX {
                    self.io.pipes.push((r, w));
                } else {
                    unsafe {
                        libc::close(r);
                        libc::close(w);
                    }
                }
            }
        }
        self.free.push(slot);
    }
}

/// The greeting and the request, from `hs`; they may arrive together or apart.
fn handshake(io: &mut Io, c: &mut Conn, slot: u32, res: i32) {
    if res <= 0 {
        c.finish = true;
        return;
    }
    c.hs_len += res as usize;
    if c.stage == Stage::Greeting {
        if c.hs_len < 2 || c.hs_len < 2 + usize::from(c.hs[1]) {
            return io.hs_recv(c, slot);
        }
        let n = 2 + usize::from(c.hs[1]);
        if c.hs[0] != 5 {
            c.finish = true;
            return;
        }
        if !c.hs[2..n].contains(&0) {
            return io.refuse(c, slot, 0xff);
        }
        c.meth = [5, 0];
        let e = opcode::Send::new(types::Fd(c.client), c.meth.as_ptr(), 2).build();
        io.op(c, slot, HS_SEND, e);
        c.hs.copy_within(n..c.hs_len, 0);
        c.hs_len -= n;
        c.stage = Stage::Request;
    }
    if c.hs_len < 4 {
        return io.hs_recv(c, slot);
    }
    if c.hs[0] != 5 {
        c.finish = true;
        return;
    }
    if c.hs[1] != 1 {
        return io.refuse(c, slot, 0x07);
    }
    if c.hs[3] != 1 {
        return io.refuse(c, slot, 0x08);
    }
    if c.hs_len < 10 {
        return io.hs_recv(c, slot);
    }
    let ip = [c.hs[4], c.hs[5], c.hs[6], c.hs[7]];
    let port = u16::from_be_bytes([c.hs[8], c.hs[9]]);
    c.addr = sockaddr(SocketAddrV4::new(ip.into(), port));
    // Bytes the client sent after the request go first, once connected.
    let extra = c.hs_len - 10;
    c.dirs[0].buf[..extra].copy_from_slice(&c.hs[10..c.hs_len]);
    c.dirs[0].len = extra;
    c.stage = Stage::Connecting;
    let e = opcode::Socket::new(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0).build();
    io.op(c, slot, SOCKET, e);
}

fn socket_made(io: &mut Io, c: &mut Conn, slot: u32, res: i32) {
    if res < 0 {
        return io.refuse(c, slot, 0x01);
    }
    c.target = res;
    let nodelay = opcode::SetSockOpt::new(
        types::Fd(c.target),
        libc::IPPROTO_TCP as u32,
        libc::TCP_NODELAY as u32,
        &ONE as *const c_int as *const libc::c_void,
        size_of::<c_int>() as u32,
    )
    .build()
    // A failed setsockopt cancels the connect: the reply says so.
    .flags(squeue::Flags::IO_LINK);
    io.op(c, slot, NODELAY, nodelay);
    let e = opcode::Connect::new(
        types::Fd(c.target),
        &c.addr as *const libc::sockaddr_in as *const libc::sockaddr,
        size_of::<libc::sockaddr_in>() as libc::socklen_t,
    )
    .build();
    io.op(c, slot, CONNECT, e);
}

fn connected(io: &mut Io, c: &mut Conn, slot: u32, res: i32) {
    if res < 0 {
        let code = match -res {
            libc::ECONNREFUSED => 0x05,
            libc::ENETUNREACH => 0x03,
            libc::EHOSTUNREACH => 0x04,
            libc::ETIMEDOUT => 0x06,
            _ => 0x01,
        };
        return io.refuse(c, slot, code);
    }
    let bound = local_addr(c.target);
    c.reply = [5, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    c.reply[4..8].copy_from_slice(&bound.ip().octets());
    c.reply[8..10].copy_from_slice(&bound.port().to_be_bytes());
    let e = opcode::Send::new(types::Fd(c.client), c.reply.as_ptr(), 10).build();
    io.op(c, slot, REPLY, e);
    c.stage = Stage::Relay;
    if c.dirs[0].len > 0 {
        io.send(c, slot, 0);
    } else {
        io.recv(c, slot, 0);
    }
}

/// A relay operation of direction `d` ended with `res`.
fn relay(io: &mut Io, c: &mut Conn, slot: u32, op: u8, res: i32) {
    let (base, d) = match op {
        RECV | 17 => (RECV, usize::from(op - RECV)),
        SEND | 19 => (SEND, usize::from(op - SEND)),
        SPLICE_IN | 21 => (SPLICE_IN, usize::from(op - SPLICE_IN)),
        SPLICE_OUT | 23 => (SPLICE_OUT, usize::from(op - SPLICE_OUT)),
        _ => return,
    };
    if res < 0 {
        return io.abort(c);
    }
    let n = res as usize;
    match base {
        RECV | SPLICE_IN if n == 0 => end_of_file(io, c, slot, d),
        RECV => {
            let dir = &mut c.dirs[d];
            dir.len = n;
            dir.off = 0;
            dir.splice = n == BUF && io.bulk != Bulk::Copy;
            io.send(c, slot, d);
        }
        SEND => {
            let dir = &mut c.dirs[d];
            dir.off += n;
            if dir.off < dir.len {
                return io.send(c, slot, d);
            }
            dir.len = 0;
            dir.off = 0;
            if dir.splice && io.bulk == Bulk::Big {
                // `buf` is sent: the next recv lands in `big`.
                if dir.big.is_none() {
                    dir.big = Some(io.bigs.pop().unwrap_or_else(|| vec![0; BIG].into()));
                }
            } else if dir.splice {
                if dir.pipe.is_none() {
                    dir.pipe = io.pipe();
                }
                if c.dirs[d].pipe.is_some() {
                    return io.splice_in(c, slot, d);
                }
                c.dirs[d].splice = false;
            }
            io.recv(c, slot, d);
        }
        SPLICE_IN => {
            c.dirs[d].in_pipe = n;
            io.splice_out(c, slot, d);
        }
        _ => {
            let dir = &mut c.dirs[d];
            dir.in_pipe -= n.min(dir.in_pipe);
            if dir.in_pipe > 0 {
                io.splice_out(c, slot, d);
            } else {
                io.splice_in(c, slot, d);
            }
        }
    }
}

/// The source of direction `d` ended: pass it on with shutdown, or, when the other
/// direction has ended too, close both.
fn end_of_file(io: &mut Io, c: &mut Conn, slot: u32, d: usize) {
    c.dirs[d].done = true;
    if c.dirs[1 - d].done {
        c.finish = true;
        return;
    }
    let (_, to) = c.fds(d);
    if io.ring_shutdown {
        let e = opcode::Shutdown::new(types::Fd(to), libc::SHUT_WR).build();
        io.op(c, slot, SHUT + d as u8, e);
    } else {
        unsafe { libc::shutdown(to, libc::SHUT_WR) };
    }
}
