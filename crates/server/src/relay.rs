//! Moving bytes between client and target, both directions at once.
//!
//! Each direction waits for its source to be readable, then reads into its worker
//! thread's buffer and writes it on at once: an idle session holds no buffer at all. Only a write that cannot finish keeps the rest on the heap until it can. A
//! direction that fills a whole buffer in one read is carrying bulk data: it switches to
//! splice(2) through a pipe of its own (unless `log: data` needs the bytes), so the
//! kernel moves the data without copying it through ferrosocks.
//!
//! An end of file from one side is passed on as a FIN (`shutdown(SHUT_WR)`) while the
//! other direction keeps flowing (the second end of file needs no shutdown when the
//! session closes both sockets next: close sends that FIN); the session ends when both
//! directions are done, on
//! the first error, when it has been idle for `timeout.io`, or when the server cuts it.
//! The first side to close or fail names the cause in the summary, as Dante's "local
//! client closed" / "remote peer error (…)".
//!
//! The relay is one poll function over a [`Relay`] that holds both directions' state
//! (a [`Pump`] each: what a write that could not finish still has to move) and waits
//! through the sockets' own readiness slots (`poll_read_ready`, `poll_write_ready`), not
//! through readiness futures: an idle relay is a few hundred bytes of its session's task
//! (ARCHITECTURE.md, "Session size"). The idle timer is allocated only with `timeout.io`.

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use traffic_log::EndCause;

pub(crate) use crate::registry::Counters;
use crate::registry::{now_ms, Flow};
use crate::splice::Pipe;

/// The buffer of a buffered read.
const BUF_SIZE: usize = 16 * 1024;

thread_local! {
    /// One read buffer per worker thread, used within one poll only: sessions hold no
    /// buffer, and nothing is zeroed per read.
    static READ_BUF: std::cell::RefCell<Box<[u8; BUF_SIZE]>> = std::cell::RefCell::new(Box::new([0; BUF_SIZE]));
}

/// Which way bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Client to target.
    Up,
    /// Target to client.
    Down,
}

/// One I/O operation, as the log sees it: its size, and the bytes when they passed
/// through ferrosocks (not when spliced).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoOp<'a> {
    pub(crate) len: usize,
    pub(crate) data: Option<&'a [u8]>,
}

enum PumpEnd {
    Eof,
    ReadError(io::Error),
    WriteError(io::Error),
}

/// What the relay needs besides the two sockets.
pub(crate) struct RelayParams<'a> {
    pub(crate) counters: &'a Counters,
    /// Idle limit; `None` for none.
    pub(crate) idle: Option<Duration>,
    pub(crate) cut: &'a CancellationToken,
    /// Whether bulk directions may switch to splice(2).
    pub(crate) splice: bool,
    /// The sockets are closed as soon as the relay returns (nothing reads their state
    /// first), so the second end of file is passed on by close(2) alone.
    pub(crate) closed_after: bool,
    /// Told each I/O operation and the error that ends the session.
    pub(crate) hooks: &'a dyn Hooks,
}

/// What the relay tells as it goes (one object, not two closures: every idle session
/// holds it).
pub(crate) trait Hooks: Sync {
    /// An I/O operation (length 0 for end of file).
    fn io(&self, dir: Dir, op: IoOp<'_>);
    /// The error that ends the session, and on which side it happened.
    fn error(&self, side: sockd_conf::ErrorSide, e: &io::Error);
}

/// Relays until the session ends; the future's output is why it ended.
///
/// A plain function returning the future (not an `async fn`, which would hold its
/// arguments twice: as arguments and moved into the [`Relay`]).
pub(crate) fn relay<'a>(
    client: &'a TcpStream,
    target: &'a TcpStream,
    p: RelayParams<'a>,
) -> impl Future<Output = EndCause> + Send + 'a {
    // Without `timeout.io` there is no timer at all: no allocation, and no registration
    // with the runtime's timer wheel.
    let timer = p.idle.map(|idle| Box::pin(tokio::time::sleep(idle)));
    let mut r = Relay {
        client,
        target,
        p,
        up: Pump::default(),
        down: Pump::default(),
        timer,
        start_ms: now_ms(),
        first: None,
        one_eof: false,
        up_first: false,
    };
    async move {
        let cut = r.p.cut.cancelled();
        tokio::pin!(cut);
        std::future::poll_fn(|cx| {
            if cut.as_mut().poll(cx).is_ready() {
                return Poll::Ready(EndCause::AdminTermination);
            }
            r.poll(cx)
        })
        .await
    }
}

/// Both directions of one relay.
struct Relay<'a> {
    client: &'a TcpStream,
    target: &'a TcpStream,
    p: RelayParams<'a>,
    up: Pump,
    down: Pump,
    /// The idle timer (`timeout.io`).
    timer: Option<Pin<Box<Sleep>>>,
    /// When the relay started, in `now_ms` time (activity before it is not counted).
    start_ms: u64,
    /// The first direction to reach end of file.
    first: Option<Dir>,
    /// Whether one direction has reached end of file.
    one_eof: bool,
    /// Which direction this poll serves first (they take turns, so that a bulk
    /// direction that uses up the task's budget cannot starve the other one).
    up_first: bool,
}

impl Relay<'_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<EndCause> {
        self.up_first = !self.up_first;
        let order = if self.up_first {
            [Dir::Up, Dir::Down]
        } else {
            [Dir::Down, Dir::Up]
        };
        for dir in order {
            let c = self.p.counters;
            let (pump, io) = match dir {
                Dir::Up => (
                    &mut self.up,
                    Io {
                        from: self.client,
                        to: self.target,
                        read: &c.client_read,
                        written: &c.target_written,
                        dir,
                    },
                ),
                Dir::Down => (
                    &mut self.down,
                    Io {
                        from: self.target,
                        to: self.client,
                        read: &c.target_read,
                        written: &c.client_written,
                        dir,
                    },
                ),
            };
            if pump.done {
                continue;
            }
            let Poll::Ready(end) = pump.poll(&io, &self.p, &mut self.one_eof, cx) else {
                continue;
            };
            pump.done = true;
            // Up reads the client and writes the target; down the other way round.
            let client_side = match (dir, &end) {
                (_, PumpEnd::Eof) => {
                    self.first.get_or_insert(dir);
                    continue;
                }
                (Dir::Up, PumpEnd::ReadError(_)) | (Dir::Down, PumpEnd::WriteError(_)) => true,
                _ => false,
            };
            let (PumpEnd::ReadError(e) | PumpEnd::WriteError(e)) = &end else {
                continue;
            };
            return Poll::Ready(if client_side {
                client_error(&self.p, e)
            } else {
                peer_error(&self.p, e)
            });
        }
        if self.up.done && self.down.done {
            return Poll::Ready(match self.first {
                Some(Dir::Down) => EndCause::PeerClosed,
                _ => EndCause::ClientClosed,
            });
        }
        if let (Some(timer), Some(idle)) = (&mut self.timer, self.p.idle) {
            while timer.as_mut().poll(cx).is_ready() {
                let since = self
                    .p
                    .counters
                    .last_ms
                    .load(Ordering::Relaxed)
                    .max(self.start_ms);
                let idle_for = Duration::from_millis(now_ms().saturating_sub(since));
                if idle_for >= idle {
                    return Poll::Ready(EndCause::Timeout("i/o timeout"));
                }
                timer.as_mut().reset(Instant::now() + (idle - idle_for));
            }
        }
        Poll::Pending
    }
}

fn client_error(p: &RelayParams<'_>, e: &io::Error) -> EndCause {
    p.hooks.error(sockd_conf::ErrorSide::Internal, e);
    EndCause::ClientError(Some(crate::errno_text(e)))
}

fn peer_error(p: &RelayParams<'_>, e: &io::Error) -> EndCause {
    p.hooks.error(sockd_conf::ErrorSide::External, e);
    EndCause::PeerError(Some(crate::errno_text(e)))
}

/// One direction's sockets and counters, for one poll.
struct Io<'a> {
    from: &'a TcpStream,
    to: &'a TcpStream,
    read: &'a Flow,
    written: &'a Flow,
    dir: Dir,
}

/// One direction's state between polls: what it still has to write.
#[derive(Default)]
struct Pump {
    /// Its pipe, once it carries bulk data (splice).
    pipe: Option<Pipe>,
    /// The tail of a buffered read that could not be written yet (empty: none; a
    /// boxed slice, not a `Vec`, and 32-bit counts below: every idle session has two).
    rest: Box<[u8]>,
    /// How much of `rest` is written (at most a read buffer).
    off: u32,
    /// Bytes of the last splice still in the pipe (at most the pipe's size).
    in_pipe: u32,
    /// The length of the last splice (its I/O line comes when it is all written).
    spliced: u32,
    /// Reached its end (end of file or error).
    done: bool,
}

/// One read. A read that returns less than the buffer emptied the socket's receive
/// queue, so readiness is cleared at once, as tokio's own `poll_read` does: the next
/// wait is for new data, without a read that only returns EAGAIN (two system calls
/// fewer per request/response exchange). New data raises a new edge-triggered event.
fn read_draining(from: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    let cap = buf.len();
    match from.try_io(Interest::READABLE, || {
        let n = io::Read::read(&mut &*socket2::SockRef::from(from), buf)?;
        got = n;
        if n > 0 && n < cap {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(n)
        }
    }) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        r => r,
    }
}

/// What one buffered read did.
enum Read {
    /// Bytes in the stack buffer, all written on.
    Done(usize),
    /// Bytes read; the tail that could not be written yet is here.
    Pending(Vec<u8>),
    Eof,
}

impl Pump {
    /// Moves bytes until the source has nothing more to read (`Pending`), or to this
    /// direction's end.
    fn poll(
        &mut self,
        io: &Io<'_>,
        p: &RelayParams<'_>,
        one_eof: &mut bool,
        cx: &mut Context<'_>,
    ) -> Poll<PumpEnd> {
        loop {
            // A write that could not finish comes first.
            if self.in_pipe > 0 {
                if let Err(end) = ready!(self.poll_drain(io, cx)) {
                    return Poll::Ready(end);
                }
                p.hooks.io(
                    io.dir,
                    IoOp {
                        len: self.spliced as usize,
                        data: None,
                    },
                );
                p.counters.touch();
            }
            if !self.rest.is_empty() {
                if let Err(e) = ready!(self.poll_write_rest(io, cx)) {
                    return Poll::Ready(PumpEnd::WriteError(e));
                }
                p.counters.touch();
            }
            if let Err(e) = ready!(io.from.poll_read_ready(cx)) {
                return Poll::Ready(PumpEnd::ReadError(e));
            }
            let n = match &self.pipe {
                Some(pipe) => match io
                    .from
                    .try_io(Interest::READABLE, || pipe.fill(io.from.as_raw_fd()))
                {
                    Ok(0) => 0,
                    Ok(n) => {
                        io.read.add(n as u64);
                        // A splice moves at most the pipe's size.
                        let n = n.min(crate::splice::PIPE_SIZE) as u32;
                        (self.in_pipe, self.spliced) = (n, n);
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Poll::Ready(PumpEnd::ReadError(e)),
                },
                None => match buffered(io, p) {
                    Ok(None) => continue,
                    Ok(Some(Read::Eof)) => 0,
                    Ok(Some(Read::Done(n))) => {
                        if n == BUF_SIZE && p.splice {
                            self.pipe = Pipe::new().ok();
                        }
                        n
                    }
                    Ok(Some(Read::Pending(rest))) => {
                        (self.rest, self.off) = (rest.into_boxed_slice(), 0);
                        continue;
                    }
                    Err(end) => return Poll::Ready(end),
                },
            };
            if n == 0 {
                let last = std::mem::replace(one_eof, true);
                // Dante 1.4.2 logs the first end of file as a `(0)` line; the second ends
                // the session, which its summary reports.
                if !last {
                    p.hooks.io(io.dir, IoOp { len: 0, data: None });
                }
                // Both sockets' receive queues are empty once both ends of file are read,
                // so close(2) sends FIN, not RST.
                if !(last && p.closed_after) {
                    let _ = socket2::SockRef::from(io.to).shutdown(std::net::Shutdown::Write);
                }
                return Poll::Ready(PumpEnd::Eof);
            }
            p.counters.touch();
        }
    }

    /// The rest of a buffered read, written on as the target takes it.
    fn poll_write_rest(&mut self, io: &Io<'_>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while (self.off as usize) < self.rest.len() {
            ready!(io.to.poll_write_ready(cx))?;
            match io.to.try_write(&self.rest[self.off as usize..]) {
                Ok(k) => {
                    // At most what is left of a read buffer.
                    self.off += k as u32;
                    io.written.add(k as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        (self.rest, self.off) = (Box::default(), 0);
        Poll::Ready(Ok(()))
    }

    /// Pipe → socket, until the last splice is all written on.
    fn poll_drain(&mut self, io: &Io<'_>, cx: &mut Context<'_>) -> Poll<Result<(), PumpEnd>> {
        let Some(pipe) = &self.pipe else {
            self.in_pipe = 0;
            return Poll::Ready(Ok(()));
        };
        while self.in_pipe > 0 {
            let left = self.in_pipe;
            match io.to.try_io(Interest::WRITABLE, || {
                pipe.drain(io.to.as_raw_fd(), left as usize)
            }) {
                Ok(k) => {
                    // At most `left`.
                    self.in_pipe = left.saturating_sub(k as u32);
                    io.written.add(k as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = ready!(io.to.poll_write_ready(cx)) {
                        return Poll::Ready(Err(PumpEnd::WriteError(e)));
                    }
                }
                Err(e) => return Poll::Ready(Err(PumpEnd::WriteError(e))),
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// One read into the worker thread's buffer and as much of its write as goes at once.
/// `Ok(None)`: nothing to read after all.
fn buffered(io: &Io<'_>, p: &RelayParams<'_>) -> Result<Option<Read>, PumpEnd> {
    READ_BUF.with_borrow_mut(|buf| buffered_with(io, p, &mut buf[..]))
}

fn buffered_with(
    io: &Io<'_>,
    p: &RelayParams<'_>,
    buf: &mut [u8],
) -> Result<Option<Read>, PumpEnd> {
    let n = match read_draining(io.from, buf) {
        Ok(0) => return Ok(Some(Read::Eof)),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(PumpEnd::ReadError(e)),
    };
    io.read.add(n as u64);
    p.hooks.io(
        io.dir,
        IoOp {
            len: n,
            data: Some(&buf[..n]),
        },
    );
    let mut off = 0;
    while off < n {
        match io.to.try_write(&buf[off..n]) {
            Ok(k) => {
                off += k;
                io.written.add(k as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(Some(Read::Pending(buf[off..n].to_vec())))
            }
            Err(e) => return Err(PumpEnd::WriteError(e)),
        }
    }
    Ok(Some(Read::Done(n)))
}
