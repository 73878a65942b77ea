//! Connecting to a target, with the source address the configuration asks for and a
//! time limit, keeping the local address even when the connect fails (Dante logs it).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::net::TcpStream;

/// A failed connect.
#[derive(Debug)]
pub(crate) struct ConnectError {
    /// The error of the last address tried (`TimedOut` for our own time limit).
    pub(crate) error: io::Error,
    /// Whether our `timeout.connect` expired.
    pub(crate) timed_out: bool,
    /// The local address of the last attempt, if the kernel had given one.
    pub(crate) local: Option<SocketAddr>,
    /// The address of the last attempt.
    pub(crate) addr: Option<SocketAddr>,
}

/// Connects to the first address of `addrs` that answers, each attempt within `limit`.
pub(crate) async fn connect(
    addrs: &[SocketAddr],
    source: impl Fn(&SocketAddr) -> Option<IpAddr>,
    limit: Option<Duration>,
) -> Result<TcpStream, ConnectError> {
    let mut last = ConnectError {
        error: io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to connect to"),
        timed_out: false,
        local: None,
        addr: None,
    };
    for addr in addrs {
        match connect_one(*addr, source(addr), limit).await {
            Ok(s) => return Ok(s),
            Err(e) => {
                last = ConnectError {
                    addr: Some(*addr),
                    ..e
                }
            }
        }
    }
    Err(last)
}

async fn connect_one(
    addr: SocketAddr,
    source: Option<IpAddr>,
    limit: Option<Duration>,
) -> Result<TcpStream, ConnectError> {
    let fail = |error: io::Error, local| ConnectError {
        error,
        timed_out: false,
        local,
        addr: Some(addr),
    };
    // Non-blocking (and close-on-exec) from creation: one system call, not three.
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), None)
        .map_err(|e| fail(e, None))?;
    sock.set_nodelay(true).map_err(|e| fail(e, None))?;
    if let Some(ip) = source {
        sock.bind(&SocketAddr::new(ip, 0).into())
            .map_err(|e| fail(e, None))?;
    }
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => {
            let local = sock.local_addr().ok().and_then(|a| a.as_socket());
            return Err(fail(e, local));
        }
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(sock)).map_err(|e| fail(e, None))?;
    let wait = stream.writable();
    let ready = match limit {
        Some(d) => match tokio::time::timeout(d, wait).await {
            Ok(r) => r,
            Err(_) => {
                return Err(ConnectError {
                    error: io::Error::from_raw_os_error(libc::ETIMEDOUT),
                    timed_out: true,
                    local: stream.local_addr().ok(),
                    addr: Some(addr),
                })
            }
        },
        None => wait.await,
    };
    // SO_ERROR says whether the connect succeeded; the local address is only looked up
    // for the log when it failed.
    let failed = match ready {
        Err(e) => Some(e),
        Ok(()) => stream.take_error().unwrap_or_else(Some),
    };
    match failed {
        Some(e) => Err(fail(e, stream.local_addr().ok())),
        None => Ok(stream),
    }
}
