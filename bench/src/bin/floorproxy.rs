//! The floor: the least a SOCKS5 CONNECT proxy can do on this machine, as a benchmark
//! subject (not a product, not a peer). It owns nothing but its own relay loop.
//!
//! ```text
//! floorproxy LISTEN_ADDR [--threads N]    (default: one thread; prints "listening ADDR")
//! ```
//!
//! libc and epoll directly, no runtime: each thread has a `SO_REUSEPORT` listener of its
//! own on the address and an edge-triggered epoll set; every socket is registered once
//! (readable | writable, edge-triggered) and never modified. Connections live in a slab of
//! fixed structs (freed slots are reused; no allocation per connection after warm-up:
//! partial writes park their rest in pooled 16 KiB buffers and bulk directions take
//! pooled pipes). Per session: accept4 (non-blocking, until `EAGAIN`), the greeting
//! (method 0 only) and the request (CONNECT to an IPv4 address only; anything else gets
//! an error reply and a close), which may arrive together or apart, a non-blocking
//! connect with `TCP_NODELAY` (the accepted socket inherits it from the listener), the
//! 10-byte reply with `BND.ADDR` from getsockname, then the relay: recv/send through one
//! 16 KiB buffer per thread, and after a full 16 KiB read, splice through a 1 MiB pipe
//! (as ferrosocks does). A short read clears readability (no read that returns
//! `EAGAIN`); an end of file is passed on with shutdown(2) once its direction is drained,
//! except the second one, which close(2) carries; an error closes both sides.

use std::ffi::c_int;
use std::io::Write;
use std::net::SocketAddrV4;

use ferrosocks_bench::floor_sys::{exit_on_term, local_addr, set_int, sockaddr};

const BUF: usize = 16 * 1024;
const PIPE_SIZE: c_int = 1 << 20;
const HS: usize = 512;
const LISTENER: u64 = u64::MAX;
const POOL_MAX: usize = 256;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(addr) = args.get(1).and_then(|a| a.parse::<SocketAddrV4>().ok()) else {
        eprintln!("usage: floorproxy IPV4:PORT [--threads N]");
        std::process::exit(2);
    };
    let threads = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    unsafe {
        // Two descriptors a session: as many as the hard limit allows.
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // Under callgrind or strace, a clean exit_group writes their output.
    exit_on_term();
    let first = listener(addr).unwrap_or_else(|e| {
        eprintln!("floorproxy: listen on {addr}: {e}");
        std::process::exit(1)
    });
    let bound = local_addr(first);
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(listener(bound).unwrap_or_else(|e| {
            eprintln!("floorproxy: listen on {bound}: {e}");
            std::process::exit(1)
        }));
    }
    println!("listening {bound}");
    let _ = std::io::stdout().flush();
    let mut handles = Vec::new();
    let mut listeners = listeners.into_iter();
    let mine = listeners.next().expect("one listener");
    for l in listeners {
        handles.push(std::thread::spawn(move || Worker::new(l).run()));
    }
    Worker::new(mine).run();
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn listener(addr: SocketAddrV4) -> std::io::Result<c_int> {
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
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
enum State {
    Free,
    Greeting,
    Request,
    Connecting,
    Relay,
}

/// Bytes a send could not take, parked until the destination is writable.
struct Pending {
    buf: Box<[u8; BUF]>,
    off: usize,
    len: usize,
}

/// One direction of the relay: from `src` to `dst`.
#[derive(Default)]
struct Dir {
    pending: Option<Pending>,
    /// After a full 16 KiB read: splice through `pipe` once `pending` is drained.
    splice: bool,
    pipe: Option<(c_int, c_int)>,
    in_pipe: usize,
    pipe_cap: usize,
    /// End of file read from the source.
    eof: bool,
    /// The end of file passed on (or to be carried by close).
    done: bool,
}

#[derive(Default)]
struct Flags {
    readable: bool,
    writable: bool,
    /// The peer's end of file has arrived (`EPOLLRDHUP`): a short read no longer means
    /// the queue is empty, since no later edge will announce it.
    rdhup: bool,
}

struct Conn {
    gen: u32,
    state: State,
    client: c_int,
    target: c_int,
    hs: [u8; HS],
    hs_len: usize,
    c2t: Dir,
    t2c: Dir,
    cf: Flags,
    tf: Flags,
}

impl Conn {
    fn empty() -> Self {
        Self {
            gen: 0,
            state: State::Free,
            client: -1,
            target: -1,
            hs: [0; HS],
            hs_len: 0,
            c2t: Dir::default(),
            t2c: Dir::default(),
            cf: Flags::default(),
            tf: Flags::default(),
        }
    }
}

/// What a thread reuses across connections.
struct Pools {
    buf: Box<[u8; BUF]>,
    buffers: Vec<Box<[u8; BUF]>>,
    pipes: Vec<(c_int, c_int, usize)>,
}

impl Pools {
    fn buffer(&mut self) -> Box<[u8; BUF]> {
        self.buffers.pop().unwrap_or_else(|| Box::new([0; BUF]))
    }

    /// A pipe and its capacity.
    fn pipe(&mut self) -> Option<(c_int, c_int, usize)> {
        if let Some(p) = self.pipes.pop() {
            return Some(p);
        }
        let mut fds = [0 as c_int; 2];
        unsafe {
            if libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) < 0 {
                return None;
            }
            // Above fs.pipe-max-size the call fails and the pipe keeps its 64 KiB.
            libc::fcntl(fds[1], libc::F_SETPIPE_SZ, PIPE_SIZE);
            let cap = libc::fcntl(fds[1], libc::F_GETPIPE_SZ);
            Some((fds[0], fds[1], cap.max(4096) as usize))
        }
    }

    fn release(&mut self, d: &mut Dir) {
        if let Some(p) = d.pending.take() {
            if self.buffers.len() < POOL_MAX {
                self.buffers.push(p.buf);
            }
        }
        if let Some((r, w)) = d.pipe.take() {
            if d.in_pipe == 0 && self.pipes.len() < POOL_MAX {
                self.pipes.push((r, w, d.pipe_cap));
            } else {
                unsafe {
                    libc::close(r);
                    libc::close(w);
                }
            }
        }
        *d = Dir::default();
    }
}

struct Worker {
    epfd: c_int,
    listener: c_int,
    conns: Vec<Conn>,
    free: Vec<u32>,
    pools: Pools,
}

/// Why a connection ends early.
struct Close;

impl Worker {
    fn new(listener: c_int) -> Self {
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(
            epfd >= 0,
            "epoll_create1: {}",
            std::io::Error::last_os_error()
        );
        let w = Self {
            epfd,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            pools: Pools {
                buf: Box::new([0; BUF]),
                buffers: Vec::new(),
                pipes: Vec::new(),
            },
        };
        w.add(listener, LISTENER);
        w
    }

    fn add(&self, fd: c_int, token: u64) -> bool {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token,
        };
        unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) == 0 }
    }

    fn run(mut self) {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        loop {
            let n = unsafe {
                libc::epoll_wait(self.epfd, events.as_mut_ptr(), events.len() as c_int, -1)
            };
            if n < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                panic!("epoll_wait: {}", std::io::Error::last_os_error());
            }
            for ev in &events[..n as usize] {
                let (bits, token) = (ev.events, ev.u64);
                if token == LISTENER {
                    self.accept();
                } else {
                    self.event(token, bits);
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            let fd = unsafe {
                libc::accept4(
                    self.listener,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                match errno() {
                    libc::EINTR | libc::ECONNABORTED => continue,
                    // EAGAIN, or out of descriptors: the next readiness tries again.
                    _ => return,
                }
            }
            let idx = match self.free.pop() {
                Some(i) => i,
                None => {
                    self.conns.push(Conn::empty());
                    (self.conns.len() - 1) as u32
                }
            };
            let c = &mut self.conns[idx as usize];
            c.state = State::Greeting;
            c.client = fd;
            c.target = -1;
            c.hs_len = 0;
            c.cf = Flags::default();
            c.tf = Flags::default();
            let tok = token(c.gen, idx, 0);
            if !self.add(fd, tok) {
                self.close(idx);
            }
        }
    }

    fn event(&mut self, tok: u64, bits: u32) {
        let (gen, idx, side) = (
            (tok >> 33) as u32,
            ((tok >> 1) & 0xffff_ffff) as u32,
            tok & 1,
        );
        let Some(c) = self.conns.get_mut(idx as usize) else {
            return;
        };
        if c.gen != gen || c.state == State::Free {
            return;
        }
        let bad = bits & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0;
        let f = if side == 0 { &mut c.cf } else { &mut c.tf };
        if bits & libc::EPOLLIN as u32 != 0 || bad {
            f.readable = true;
        }
        if bits & libc::EPOLLOUT as u32 != 0 || bad {
            f.writable = true;
        }
        if bits & libc::EPOLLRDHUP as u32 != 0 || bad {
            f.rdhup = true;
        }
        let r = match c.state {
            State::Greeting | State::Request if side == 0 => self.handshake(idx),
            State::Connecting if side == 1 && bad => Err(self.refuse_connect(idx)),
            State::Connecting if side == 1 && c.tf.writable => self.connected(idx),
            State::Relay => self.relay(idx),
            _ => Ok(()),
        };
        if r.is_err() {
            self.close(idx);
        }
    }

    /// Reads the greeting and the request, as far as they came.
    fn handshake(&mut self, idx: u32) -> Result<(), Close> {
        let c = &mut self.conns[idx as usize];
        // Reads until the buffer is full at most: what does not fit stays in the socket
        // (readable stays set) and is relayed after the reply.
        while c.cf.readable && c.hs_len < HS && !c.c2t.eof {
            let n = unsafe {
                libc::recv(
                    c.client,
                    c.hs[c.hs_len..].as_mut_ptr() as *mut libc::c_void,
                    HS - c.hs_len,
                    0,
                )
            };
            if n < 0 {
                match errno() {
                    libc::EAGAIN => c.cf.readable = false,
                    libc::EINTR => continue,
                    _ => return Err(Close),
                }
                break;
            }
            if n == 0 {
                // A client may send its request and half-close: the end of file is
                // passed on after the connect.
                c.c2t.eof = true;
                break;
            }
            let n = n as usize;
            if c.hs_len + n < HS && !c.cf.rdhup {
                c.cf.readable = false;
            }
            c.hs_len += n;
        }
        let r = self.parse(idx);
        let c = &self.conns[idx as usize];
        if r.is_ok()
            && matches!(c.state, State::Greeting | State::Request)
            && (c.c2t.eof || c.hs_len == HS)
        {
            // The end came, or the buffer is full, before a whole greeting and request.
            return Err(Close);
        }
        r
    }

    /// Answers the greeting and starts the connect, as far as the bytes read allow.
    fn parse(&mut self, idx: u32) -> Result<(), Close> {
        let c = &mut self.conns[idx as usize];
        if c.state == State::Greeting {
            if c.hs_len < 2 || c.hs_len < 2 + c.hs[1] as usize {
                return Ok(());
            }
            let len = 2 + c.hs[1] as usize;
            let ok = c.hs[0] == 5 && c.hs[2..len].contains(&0);
            send_all(c.client, if ok { &[5, 0] } else { &[5, 0xff] })?;
            if !ok {
                return Err(Close);
            }
            c.hs.copy_within(len..c.hs_len, 0);
            c.hs_len -= len;
            c.state = State::Request;
        }
        if c.hs_len < 4 {
            return Ok(());
        }
        let h = &c.hs;
        if h[0] != 5 {
            return Err(Close);
        }
        if h[1] != 1 || h[3] != 1 {
            // Command not supported, or address type not supported.
            let code = if h[1] != 1 { 7 } else { 8 };
            let _ = send_all(c.client, &[5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
            return Err(Close);
        }
        if c.hs_len < 10 {
            return Ok(());
        }
        let to = SocketAddrV4::new(
            [h[4], h[5], h[6], h[7]].into(),
            u16::from_be_bytes([h[8], h[9]]),
        );
        c.hs.copy_within(10..c.hs_len, 0);
        c.hs_len -= 10;
        let fd = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            let _ = send_all(c.client, &[5, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
            return Err(Close);
        }
        c.target = fd;
        c.state = State::Connecting;
        set_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
        let sa = sockaddr(to);
        let r = unsafe {
            libc::connect(
                fd,
                &sa as *const _ as *const libc::sockaddr,
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if r < 0 && errno() != libc::EINPROGRESS {
            let code = reply_code(errno());
            let _ = send_all(c.client, &[5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
            return Err(Close);
        }
        let tok = token(c.gen, idx, 1);
        if !self.add(fd, tok) {
            return Err(Close);
        }
        Ok(())
    }

    fn refuse_connect(&mut self, idx: u32) -> Close {
        let c = &self.conns[idx as usize];
        let mut e: c_int = 0;
        let mut len = size_of::<c_int>() as libc::socklen_t;
        unsafe {
            libc::getsockopt(
                c.target,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                &mut e as *mut c_int as *mut libc::c_void,
                &mut len,
            )
        };
        let _ = send_all(c.client, &[5, reply_code(e), 0, 1, 0, 0, 0, 0, 0, 0]);
        Close
    }

    fn connected(&mut self, idx: u32) -> Result<(), Close> {
        let c = &mut self.conns[idx as usize];
        let bnd = local_addr(c.target);
        let mut reply = [5, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        reply[4..8].copy_from_slice(&bnd.ip().octets());
        reply[8..].copy_from_slice(&bnd.port().to_be_bytes());
        send_all(c.client, &reply)?;
        // Bytes the client sent after its request, before the reply.
        if c.hs_len > 0 {
            let n = c.hs_len;
            let mut buf = self.pools.buffer();
            buf[..n].copy_from_slice(&c.hs[..n]);
            c.c2t.pending = Some(Pending {
                buf,
                off: 0,
                len: n,
            });
            c.hs_len = 0;
        }
        c.state = State::Relay;
        self.relay(idx)
    }

    fn relay(&mut self, idx: u32) -> Result<(), Close> {
        let c = &mut self.conns[idx as usize];
        let p = &mut self.pools;
        let t2c_done = c.t2c.done;
        pump(
            &mut c.c2t,
            (c.client, &mut c.cf.readable, c.cf.rdhup),
            (c.target, &mut c.tf.writable),
            t2c_done,
            p,
        )?;
        let c2t_done = c.c2t.done;
        pump(
            &mut c.t2c,
            (c.target, &mut c.tf.readable, c.tf.rdhup),
            (c.client, &mut c.cf.writable),
            c2t_done,
            p,
        )?;
        if c.c2t.done && c.t2c.done {
            return Err(Close);
        }
        Ok(())
    }

    fn close(&mut self, idx: u32) {
        let c = &mut self.conns[idx as usize];
        unsafe {
            if c.client >= 0 {
                libc::close(c.client);
            }
            if c.target >= 0 {
                libc::close(c.target);
            }
        }
        self.pools.release(&mut c.c2t);
        self.pools.release(&mut c.t2c);
        c.client = -1;
        c.target = -1;
        c.state = State::Free;
        c.gen = c.gen.wrapping_add(1) & 0x7fff_ffff;
        self.free.push(idx);
    }
}

fn token(gen: u32, idx: u32, side: u64) -> u64 {
    (u64::from(gen) << 33) | (u64::from(idx) << 1) | side
}

fn reply_code(e: c_int) -> u8 {
    match e {
        libc::ENETUNREACH => 3,
        libc::EHOSTUNREACH => 4,
        libc::ECONNREFUSED => 5,
        libc::ETIMEDOUT => 6,
        _ => 1,
    }
}

/// A short write to a fresh socket (greeting answer, reply): all of it or the end.
fn send_all(fd: c_int, b: &[u8]) -> Result<(), Close> {
    let n = unsafe {
        libc::send(
            fd,
            b.as_ptr() as *const libc::c_void,
            b.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    if n == b.len() as isize {
        Ok(())
    } else {
        Err(Close)
    }
}

/// Moves what it can from `src` to `dst` without blocking. `other_done`: the opposite
/// direction has passed its end of file on, so this one's end is carried by close.
fn pump(
    d: &mut Dir,
    (src, readable, rdhup): (c_int, &mut bool, bool),
    (dst, writable): (c_int, &mut bool),
    other_done: bool,
    p: &mut Pools,
) -> Result<(), Close> {
    if d.done {
        return Ok(());
    }
    loop {
        if let Some(pd) = &mut d.pending {
            if !*writable {
                return Ok(());
            }
            let n = unsafe {
                libc::send(
                    dst,
                    pd.buf[pd.off..pd.len].as_ptr() as *const libc::c_void,
                    pd.len - pd.off,
                    libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                match errno() {
                    libc::EAGAIN => {
                        *writable = false;
                        return Ok(());
                    }
                    libc::EINTR => continue,
                    _ => return Err(Close),
                }
            }
            pd.off += n as usize;
            if pd.off < pd.len {
                *writable = false;
                return Ok(());
            }
            let pd = d.pending.take().expect("pending");
            if p.buffers.len() < POOL_MAX {
                p.buffers.push(pd.buf);
            }
        }
        if d.splice {
            return splice_pump(d, (src, readable), (dst, writable), other_done, p);
        }
        if d.eof {
            return finish(d, dst, other_done);
        }
        if !*readable {
            return Ok(());
        }
        let n = unsafe { libc::recv(src, p.buf.as_mut_ptr() as *mut libc::c_void, BUF, 0) };
        if n < 0 {
            match errno() {
                libc::EAGAIN => {
                    *readable = false;
                    return Ok(());
                }
                libc::EINTR => continue,
                _ => return Err(Close),
            }
        }
        if n == 0 {
            d.eof = true;
            continue;
        }
        let n = n as usize;
        if n == BUF {
            d.splice = true;
        } else if !rdhup {
            *readable = false;
        }
        let mut off = 0;
        if *writable {
            let w = unsafe {
                libc::send(
                    dst,
                    p.buf.as_ptr() as *const libc::c_void,
                    n,
                    libc::MSG_NOSIGNAL,
                )
            };
            if w < 0 {
                match errno() {
                    libc::EAGAIN | libc::EINTR => *writable = false,
                    _ => return Err(Close),
                }
            } else {
                off = w as usize;
                if off < n {
                    *writable = false;
                }
            }
        }
        if off < n {
            let mut buf = p.buffer();
            buf[..n - off].copy_from_slice(&p.buf[off..n]);
            d.pending = Some(Pending {
                buf,
                off: 0,
                len: n - off,
            });
        }
    }
}

/// The source's end of file, passed on once nothing of this direction is left.
fn finish(d: &mut Dir, dst: c_int, other_done: bool) -> Result<(), Close> {
    if d.pending.is_some() || d.in_pipe > 0 {
        return Ok(());
    }
    d.done = true;
    if !other_done && unsafe { libc::shutdown(dst, libc::SHUT_WR) } < 0 {
        return Err(Close);
    }
    Ok(())
}

fn splice_pump(
    d: &mut Dir,
    (src, readable): (c_int, &mut bool),
    (dst, writable): (c_int, &mut bool),
    other_done: bool,
    p: &mut Pools,
) -> Result<(), Close> {
    let (pr, pw) = match d.pipe {
        Some(pipe) => pipe,
        None if d.eof => return finish(d, dst, other_done),
        None => {
            let Some((r, w, cap)) = p.pipe() else {
                return Err(Close);
            };
            d.pipe = Some((r, w));
            d.pipe_cap = cap;
            (r, w)
        }
    };
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    loop {
        if d.in_pipe > 0 && *writable {
            let n = unsafe {
                libc::splice(
                    pr,
                    std::ptr::null_mut(),
                    dst,
                    std::ptr::null_mut(),
                    d.in_pipe,
                    flags,
                )
            };
            if n < 0 {
                match errno() {
                    libc::EAGAIN => *writable = false,
                    libc::EINTR => {}
                    _ => return Err(Close),
                }
            } else {
                d.in_pipe -= n as usize;
            }
            continue;
        }
        if d.eof {
            return finish(d, dst, other_done);
        }
        if *readable && d.in_pipe < d.pipe_cap {
            let n = unsafe {
                libc::splice(
                    src,
                    std::ptr::null_mut(),
                    pw,
                    std::ptr::null_mut(),
                    d.pipe_cap - d.in_pipe,
                    flags,
                )
            };
            if n < 0 {
                match errno() {
                    // With bytes in the pipe, EAGAIN may mean a full pipe (its slots
                    // are pages, partly filled): readable stays set, and the source is
                    // tried again once the destination has taken the pipe's bytes.
                    libc::EAGAIN if d.in_pipe > 0 => return Ok(()),
                    libc::EAGAIN => *readable = false,
                    libc::EINTR => {}
                    _ => return Err(Close),
                }
            } else if n == 0 {
                d.eof = true;
            } else {
                d.in_pipe += n as usize;
            }
            continue;
        }
        return Ok(());
    }
}
