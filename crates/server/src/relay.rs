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

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use traffic_log::EndCause;

pub(crate) use crate::registry::Counters;
use crate::registry::Flow;
use crate::splice::Pipe;

/// The buffer of a buffered read.
const BUF_SIZE: usize = 16 * 1024;

thread_local! {
    /// One read buffer per worker thread, used between two awaits only: sessions hold no
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
    /// Called for each I/O operation (length 0 for end of file).
    pub(crate) on_io: &'a (dyn Fn(Dir, IoOp<'_>) + Sync),
    /// Called with the error that ends the session, and on which side it happened.
    pub(crate) on_error: &'a (dyn Fn(sockd_conf::ErrorSide, &io::Error) + Sync),
}

/// Relays until the session ends; returns why it ended.
pub(crate) async fn relay(client: &TcpStream, target: &TcpStream, p: RelayParams<'_>) -> EndCause {
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let touch = || {
        last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
        p.counters.touch();
    };
    let c = p.counters;
    let up = Direction {
        from: client,
        to: target,
        read: &c.client_read,
        written: &c.target_written,
        dir: Dir::Up,
    };
    let down = Direction {
        from: target,
        to: client,
        read: &c.target_read,
        written: &c.client_written,
        dir: Dir::Down,
    };
    let one_eof = AtomicBool::new(false);
    let up = up.pump(&p, &touch, &one_eof);
    let down = down.pump(&p, &touch, &one_eof);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    let mut first: Option<EndCause> = None;
    // Without `timeout.io` the timer is never polled, so never registered with the
    // runtime's timer wheel: no lock and no driver wake-up per session.
    let timer = tokio::time::sleep(p.idle.unwrap_or(Duration::from_secs(3600)));
    tokio::pin!(timer);
    loop {
        tokio::select! {
            end = &mut up, if !up_done => {
                up_done = true;
                match end {
                    PumpEnd::Eof => { first.get_or_insert(EndCause::ClientClosed); }
                    PumpEnd::ReadError(e) => return client_error(&p, &e),
                    PumpEnd::WriteError(e) => return peer_error(&p, &e),
                }
            }
            end = &mut down, if !down_done => {
                down_done = true;
                match end {
                    PumpEnd::Eof => { first.get_or_insert(EndCause::PeerClosed); }
                    PumpEnd::ReadError(e) => return peer_error(&p, &e),
                    PumpEnd::WriteError(e) => return client_error(&p, &e),
                }
            }
            () = &mut timer, if p.idle.is_some() => {
                let idle = p.idle.unwrap_or_default();
                let since = Duration::from_millis(last.load(Ordering::Relaxed));
                let idle_for = start.elapsed().saturating_sub(since);
                if idle_for >= idle {
                    return EndCause::Timeout("i/o timeout");
                }
                timer.as_mut().reset(Instant::now() + (idle - idle_for));
            }
            () = p.cut.cancelled() => return EndCause::AdminTermination,
        }
        if up_done && down_done {
            return first.unwrap_or(EndCause::ClientClosed);
        }
    }
}

fn client_error(p: &RelayParams<'_>, e: &io::Error) -> EndCause {
    (p.on_error)(sockd_conf::ErrorSide::Internal, e);
    EndCause::ClientError(Some(crate::errno_text(e)))
}

fn peer_error(p: &RelayParams<'_>, e: &io::Error) -> EndCause {
    (p.on_error)(sockd_conf::ErrorSide::External, e);
    EndCause::PeerError(Some(crate::errno_text(e)))
}

struct Direction<'a> {
    from: &'a TcpStream,
    to: &'a TcpStream,
    read: &'a Flow,
    written: &'a Flow,
    dir: Dir,
}

enum Read {
    /// Bytes in the stack buffer, all written on.
    Done(usize),
    /// Bytes read; the tail that could not be written yet is here.
    Pending(usize, Vec<u8>),
    Eof,
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

impl Direction<'_> {
    async fn pump(self, p: &RelayParams<'_>, touch: &impl Fn(), one_eof: &AtomicBool) -> PumpEnd {
        let mut pipe: Option<Pipe> = None;
        loop {
            if let Err(e) = self.from.readable().await {
                return PumpEnd::ReadError(e);
            }
            let n = match &pipe {
                Some(pipe) => match self.spliced(pipe).await {
                    Ok(Some(n)) => {
                        if n > 0 {
                            (p.on_io)(self.dir, IoOp { len: n, data: None });
                        }
                        n
                    }
                    Ok(None) => continue,
                    Err(end) => return end,
                },
                None => match self.buffered(p) {
                    Ok(None) => continue,
                    Ok(Some(Read::Eof)) => 0,
                    Ok(Some(Read::Done(n))) => {
                        if n == BUF_SIZE && p.splice {
                            pipe = Pipe::new().ok();
                        }
                        n
                    }
                    Ok(Some(Read::Pending(n, rest))) => {
                        if let Err(e) = self.write_rest(rest).await {
                            return PumpEnd::WriteError(e);
                        }
                        n
                    }
                    Err(end) => return end,
                },
            };
            if n == 0 {
                let last = one_eof.swap(true, Ordering::Relaxed);
                // Dante 1.4.2 logs the first end of file as a `(0)` line; the second ends
                // the session, which its summary reports.
                if !last {
                    (p.on_io)(self.dir, IoOp { len: 0, data: None });
                }
                // Both sockets' receive queues are empty once both ends of file are read,
                // so close(2) sends FIN, not RST.
                if !(last && p.closed_after) {
                    let _ = socket2::SockRef::from(self.to).shutdown(std::net::Shutdown::Write);
                }
                return PumpEnd::Eof;
            }
            touch();
        }
    }

    /// One read into the worker thread's buffer and as much of its write as goes at
    /// once. `Ok(None)`: nothing to read after all.
    fn buffered(&self, p: &RelayParams<'_>) -> Result<Option<Read>, PumpEnd> {
        READ_BUF.with_borrow_mut(|buf| self.buffered_with(p, &mut buf[..]))
    }

    fn buffered_with(&self, p: &RelayParams<'_>, buf: &mut [u8]) -> Result<Option<Read>, PumpEnd> {
        let n = match read_draining(self.from, buf) {
            Ok(0) => return Ok(Some(Read::Eof)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(PumpEnd::ReadError(e)),
        };
        self.read.add(n as u64);
        (p.on_io)(
            self.dir,
            IoOp {
                len: n,
                data: Some(&buf[..n]),
            },
        );
        let mut off = 0;
        while off < n {
            match self.to.try_write(&buf[off..n]) {
                Ok(k) => {
                    off += k;
                    self.written.add(k as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Some(Read::Pending(n, buf[off..n].to_vec())))
                }
                Err(e) => return Err(PumpEnd::WriteError(e)),
            }
        }
        Ok(Some(Read::Done(n)))
    }

    async fn write_rest(&self, rest: Vec<u8>) -> io::Result<()> {
        let mut off = 0;
        while off < rest.len() {
            self.to.writable().await?;
            match self.to.try_write(&rest[off..]) {
                Ok(k) => {
                    off += k;
                    self.written.add(k as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Socket → pipe → socket. `Ok(None)`: nothing to read after all.
    async fn spliced(&self, pipe: &Pipe) -> Result<Option<usize>, PumpEnd> {
        let n = match self
            .from
            .try_io(Interest::READABLE, || pipe.fill(self.from.as_raw_fd()))
        {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(PumpEnd::ReadError(e)),
        };
        if n == 0 {
            return Ok(Some(0));
        }
        self.read.add(n as u64);
        let mut left = n;
        while left > 0 {
            match self
                .to
                .try_io(Interest::WRITABLE, || pipe.drain(self.to.as_raw_fd(), left))
            {
                Ok(k) => {
                    left -= k;
                    self.written.add(k as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = self.to.writable().await {
                        return Err(PumpEnd::WriteError(e));
                    }
                }
                Err(e) => return Err(PumpEnd::WriteError(e)),
            }
        }
        Ok(Some(n))
    }
}
