//! Moving bytes between client and target, both directions at once.
//!
//! Each direction is a loop of read, write, count. An end of file from one side is
//! passed on as a FIN (`shutdown(SHUT_WR)`) while the other direction keeps flowing;
//! the session ends when both directions are done, on the first error, when it has
//! been idle for `timeout.io`, or when the server cuts it. The first side to close or
//! fail names the cause in the summary, as Dante's "local client closed" / "remote peer
//! error (…)".

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use traffic_log::EndCause;

const BUF_SIZE: usize = 16 * 1024;

/// Byte counters of a session, updated as bytes move.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Read from the client.
    pub(crate) client_read: AtomicU64,
    /// Written to the client.
    pub(crate) client_written: AtomicU64,
    /// Read from the target.
    pub(crate) target_read: AtomicU64,
    /// Written to the target.
    pub(crate) target_written: AtomicU64,
    /// When bytes last moved, in [`crate::registry::now_ms`] time.
    pub(crate) last_ms: AtomicU64,
}

impl Counters {
    pub(crate) fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Which way bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Client to target.
    Up,
    /// Target to client.
    Down,
}

enum PumpEnd {
    Eof,
    ReadError(std::io::Error),
    WriteError(std::io::Error),
}

/// What the relay needs besides the two sockets.
pub(crate) struct RelayParams<'a> {
    pub(crate) counters: &'a Counters,
    /// Idle limit; `None` for none.
    pub(crate) idle: Option<Duration>,
    pub(crate) cut: &'a CancellationToken,
    /// Called for each I/O operation (empty slice for end of file).
    pub(crate) on_io: &'a (dyn Fn(Dir, &[u8]) + Sync),
    /// Called with the error that ends the session, and on which side it happened.
    pub(crate) on_error: &'a (dyn Fn(sockd_conf::ErrorSide, &std::io::Error) + Sync),
}

/// Relays until the session ends; returns why it ended.
pub(crate) async fn relay(
    client: &mut TcpStream,
    target: &mut TcpStream,
    p: RelayParams<'_>,
) -> EndCause {
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let touch = || {
        last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
        p.counters
            .last_ms
            .store(crate::registry::now_ms(), Ordering::Relaxed);
    };
    let (mut cr, mut cw) = client.split();
    let (mut tr, mut tw) = target.split();
    let c = p.counters;
    let up = pump(
        &mut cr,
        &mut tw,
        &c.client_read,
        &c.target_written,
        &touch,
        |b| (p.on_io)(Dir::Up, b),
    );
    let down = pump(
        &mut tr,
        &mut cw,
        &c.target_read,
        &c.client_written,
        &touch,
        |b| (p.on_io)(Dir::Down, b),
    );
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    let mut first: Option<EndCause> = None;
    let idle_check = p.idle.unwrap_or(Duration::from_secs(3600));
    let timer = tokio::time::sleep(idle_check);
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
            () = &mut timer => {
                if let Some(idle) = p.idle {
                    let since = Duration::from_millis(last.load(Ordering::Relaxed));
                    let idle_for = start.elapsed().saturating_sub(since);
                    if idle_for >= idle {
                        return EndCause::Timeout("i/o timeout");
                    }
                    timer.as_mut().reset(Instant::now() + (idle - idle_for));
                } else {
                    timer.as_mut().reset(Instant::now() + idle_check);
                }
            }
            () = p.cut.cancelled() => return EndCause::AdminTermination,
        }
        if up_done && down_done {
            return first.unwrap_or(EndCause::ClientClosed);
        }
    }
}

fn client_error(p: &RelayParams<'_>, e: &std::io::Error) -> EndCause {
    (p.on_error)(sockd_conf::ErrorSide::Internal, e);
    EndCause::ClientError(Some(crate::errno_text(e)))
}

fn peer_error(p: &RelayParams<'_>, e: &std::io::Error) -> EndCause {
    (p.on_error)(sockd_conf::ErrorSide::External, e);
    EndCause::PeerError(Some(crate::errno_text(e)))
}

async fn pump<R, W>(
    r: &mut R,
    w: &mut W,
    read: &AtomicU64,
    written: &AtomicU64,
    touch: &impl Fn(),
    on_io: impl Fn(&[u8]),
) -> PumpEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => {
                on_io(&[]);
                let _ = w.shutdown().await;
                return PumpEnd::Eof;
            }
            Ok(n) => n,
            Err(e) => return PumpEnd::ReadError(e),
        };
        read.fetch_add(n as u64, Ordering::Relaxed);
        touch();
        let mut off = 0;
        while off < n {
            match w.write(&buf[off..n]).await {
                Ok(0) => return PumpEnd::WriteError(std::io::ErrorKind::WriteZero.into()),
                Ok(k) => {
                    off += k;
                    written.fetch_add(k as u64, Ordering::Relaxed);
                }
                Err(e) => return PumpEnd::WriteError(e),
            }
        }
        on_io(&buf[..n]);
    }
}
