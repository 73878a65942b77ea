//! The thread that delivers a receiver's queue.
//!
//! TCP: frames are written in batches; a message leaves the queue for good only once
//! the receiver's kernel has acknowledged its last byte (the socket's unacknowledged
//! count, `TIOCOUTQ`, tells): when the connection breaks, every message not wholly
//! acknowledged is sent again, first, on the next connection — a frame the receiver got
//! only in part dies with the old connection, so nothing is duplicated. (What the
//! receiver's kernel acknowledged but the receiver never read, because it was killed, is
//! beyond a sender's sight.) A closed connection is noticed by a peek between batches.
//! Reconnects back off from 0.5 s to 30 s. At stop, a connected sender delivers for at
//! most 2 s (one that is not connected tries no more); what is left goes to the disk
//! queue, for the next run.

use std::collections::VecDeque;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::io::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{lock, Protocol, RemoteTarget, Shared};
use crate::format::framing;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const BATCH_BYTES: usize = 256 * 1024;
/// Unacknowledged bytes beyond which the sender waits for the receiver.
const MAX_INFLIGHT: u64 = 4 << 20;
const STOP_GRACE: Duration = Duration::from_secs(2);

enum Conn {
    Tcp(TcpStream),
    Udp(UdpSocket),
    Tls(Box<super::tls::Stream>),
}

/// Messages written but not yet acknowledged, with the stream offset of their end.
#[derive(Default)]
struct Inflight {
    msgs: VecDeque<(Vec<u8>, u64)>,
    written: u64,
    /// The connection's acknowledged count when it was made (the SYN may count).
    base: u64,
}

pub(super) fn start(
    target: RemoteTarget,
    shared: Arc<Shared>,
) -> Option<std::thread::JoinHandle<()>> {
    let s2 = Arc::clone(&shared);
    match std::thread::Builder::new()
        .name("log-remote".into())
        .spawn(move || run(&target, &s2))
    {
        Ok(h) => Some(h),
        Err(e) => {
            shared.note(format!("cannot start the syslog.remote thread: {e}"));
            None
        }
    }
}

fn describe(t: &RemoteTarget) -> String {
    let p = match t.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Tls => "tls",
        Protocol::Udp => "udp",
    };
    format!("syslog.remote {} port {} ({p})", t.host, t.port)
}

fn run(target: &RemoteTarget, shared: &Shared) {
    let name = describe(target);
    let mut conn: Option<Conn> = None;
    let mut inflight = Inflight::default();
    let mut backoff = FIRST_BACKOFF;
    let mut failing: Option<String> = None;
    let mut stop_at: Option<Instant> = None;
    loop {
        if stop_at.is_none() && *lock(&shared.stop) {
            stop_at = Some(Instant::now() + STOP_GRACE);
        }
        if let Some(at) = stop_at {
            let done = lock(&shared.queue).is_empty() && inflight.msgs.is_empty();
            // Not connected at stop: no new connection is tried (it could outlast the
            // process); what waits goes to the disk queue at once.
            if done || conn.is_none() || Instant::now() >= at {
                lock(&shared.queue).unget(inflight.msgs.drain(..).map(|(m, _)| m));
                return;
            }
        }
        // Connected?
        if conn.is_none() {
            match connect(target) {
                Ok(c) => {
                    inflight.written = 0;
                    inflight.base = bytes_acked(&c).unwrap_or(0);
                    conn = Some(c);
                    if let Some(since) = failing.take() {
                        let waiting = lock(&shared.queue).len();
                        shared.note(format!(
                            "{name} is reachable again (unreachable since {since}); {waiting} queued record(s) are being delivered, in order"
                        ));
                    }
                    backoff = FIRST_BACKOFF;
                }
                Err(e) => {
                    if failing.is_none() {
                        failing = Some(rfc3339(SystemTime::now()));
                        let waiting = lock(&shared.queue).len();
                        shared.note(format!(
                            "{name}: {e}; records queue ({waiting} waiting) and are delivered in order once it is back"
                        ));
                    }
                    if stop_at.is_some() {
                        pause(shared, backoff, true);
                    } else {
                        back_off(shared, backoff);
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        // The kernel's count of acknowledged bytes outlives a reset connection.
        acknowledge(c, &mut inflight);
        if !alive(c) {
            acknowledge(c, &mut inflight);
            conn = None;
            requeue(shared, &mut inflight);
            continue;
        }
        if inflight.written.saturating_sub(acked(c, &inflight)) > MAX_INFLIGHT {
            pause(shared, Duration::from_millis(5), true);
            continue;
        }
        // A batch.
        let batch: Vec<Vec<u8>> = {
            let mut q = lock(&shared.queue);
            let mut b = Vec::new();
            let mut bytes = 0;
            while bytes < BATCH_BYTES {
                let Some(m) = q.pop() else { break };
                bytes += m.len();
                b.push(m);
            }
            b
        };
        if batch.is_empty() {
            pause(
                shared,
                Duration::from_millis(100),
                !inflight.msgs.is_empty(),
            );
            continue;
        }
        match write_batch(c, &batch, &mut inflight) {
            Ok(()) => {}
            Err(e) => {
                acknowledge(c, &mut inflight);
                lock(&shared.queue).unget(batch.into_iter());
                if failing.is_none() {
                    failing = Some(rfc3339(SystemTime::now()));
                    shared.note(format!(
                        "{name}: sending failed: {e}; reconnecting, nothing is lost"
                    ));
                }
                conn = None;
                requeue(shared, &mut inflight);
            }
        }
    }
}

/// Waits for `d` or until woken (new messages, stop); `short` waits at most 5 ms.
fn pause(shared: &Shared, d: Duration, short: bool) {
    let d = if short {
        d.min(Duration::from_millis(5))
    } else {
        d
    };
    let q = lock(&shared.queue);
    let _ = shared.wake.wait_timeout(q, d);
}

/// Waits out a back-off: new messages do not shorten it (they would turn it into a
/// reconnect per message), a stop does.
fn back_off(shared: &Shared, d: Duration) {
    let end = Instant::now() + d;
    let mut q = lock(&shared.queue);
    loop {
        if *lock(&shared.stop) {
            return;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        q = shared
            .wake
            .wait_timeout(q, left)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
}

fn requeue(shared: &Shared, inflight: &mut Inflight) {
    lock(&shared.queue).unget(inflight.msgs.drain(..).map(|(m, _)| m));
    inflight.written = 0;
}

fn connect(t: &RemoteTarget) -> Result<Conn, String> {
    let addrs: Vec<SocketAddr> = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", t.host))?
        .collect();
    let mut last = format!("{} has no address", t.host);
    for a in addrs {
        let r = match t.protocol {
            Protocol::Udp => UdpSocket::bind(if a.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })
                .and_then(|s| s.connect(a).map(|()| Conn::Udp(s)))
                .map_err(|e| format!("cannot use {a}: {e}")),
            Protocol::Tcp | Protocol::Tls => TcpStream::connect_timeout(&a, CONNECT_TIMEOUT)
                .map_err(|e| format!("cannot connect to {a}: {e}"))
                .and_then(|s| {
                    let _ = s.set_nodelay(true);
                    s.set_write_timeout(Some(WRITE_TIMEOUT))
                        .map_err(|e| e.to_string())?;
                    if t.protocol == Protocol::Tls {
                        super::tls::connect(s, &t.host, t.ca.as_deref())
                            .map(|s| Conn::Tls(Box::new(s)))
                    } else {
                        Ok(Conn::Tcp(s))
                    }
                }),
        };
        match r {
            Ok(c) => return Ok(c),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn write_batch(c: &mut Conn, batch: &[Vec<u8>], inflight: &mut Inflight) -> std::io::Result<()> {
    match c {
        Conn::Udp(s) => {
            for m in batch {
                s.send(m)?;
            }
            Ok(())
        }
        Conn::Tcp(s) => {
            let mut buf = Vec::with_capacity(BATCH_BYTES + 1024);
            for m in batch {
                framing::encode(&mut buf, m);
            }
            s.write_all(&buf)?;
            let mut end = inflight.written;
            for m in batch {
                end += (m.len().to_string().len() + 1 + m.len()) as u64;
                inflight.msgs.push_back((m.clone(), end));
            }
            inflight.written = end;
            Ok(())
        }
        Conn::Tls(s) => {
            let mut buf = Vec::with_capacity(BATCH_BYTES + 1024);
            for m in batch {
                framing::encode(&mut buf, m);
            }
            s.write_all(&buf)?;
            s.flush()
        }
    }
}

/// The kernel's count of bytes the receiver acknowledged on a TCP connection
/// (`tcpi_bytes_acked`).
fn bytes_acked(c: &Conn) -> Option<u64> {
    let Conn::Tcp(s) = c else { return None };
    // SAFETY: tcp_info is plain data; getsockopt fills at most `len` bytes of it.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
        let r = libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        );
        (r == 0).then_some(info.tcpi_bytes_acked)
    }
}

/// Bytes written on this connection that the receiver's kernel has acknowledged.
fn acked(c: &Conn, inflight: &Inflight) -> u64 {
    match bytes_acked(c) {
        Some(n) => n.saturating_sub(inflight.base).min(inflight.written),
        None => inflight.written,
    }
}

fn acknowledge(c: &Conn, inflight: &mut Inflight) {
    let done = acked(c, inflight);
    while inflight.msgs.front().is_some_and(|(_, end)| *end <= done) {
        inflight.msgs.pop_front();
    }
}

/// Whether the receiver still has the connection open (a peek: receivers send nothing;
/// what they do send is read and dropped).
fn alive(c: &mut Conn) -> bool {
    match c {
        Conn::Udp(_) => true,
        Conn::Tls(s) => s.alive(),
        Conn::Tcp(s) => {
            let mut b = [0u8; 512];
            // SAFETY: recv into our buffer on a socket we own.
            let n = unsafe {
                libc::recv(
                    s.as_raw_fd(),
                    b.as_mut_ptr().cast(),
                    b.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n == 0 {
                return false;
            }
            if n < 0 {
                let e = std::io::Error::last_os_error();
                return e.kind() == std::io::ErrorKind::WouldBlock;
            }
            true
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    let utc: chrono::DateTime<chrono::Utc> = t.into();
    utc.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
