//! Connecting to a target, with the source address the configuration asks for and a
//! time limit, keeping the local address even when the connect fails (Dante logs it).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::io::Interest;
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

/// Connects to the first address of `addrs` that answers, each attempt within `limit`;
/// returns the connection and the address it reached.
pub(crate) async fn connect(
    addrs: &[SocketAddr],
    source: impl Fn(&SocketAddr) -> Option<IpAddr>,
    limit: Option<Duration>,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let mut last = ConnectError {
        error: io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to connect to"),
        timed_out: false,
        local: None,
        addr: None,
    };
    for addr in addrs {
        match connect_one(*addr, source(addr), limit).await {
            Ok(s) => return Ok((s, *addr)),
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
    // Writable means connected; a failed connect raises EPOLLERR (and EPOLLHUP).
    let wait = stream.ready(Interest::WRITABLE | Interest::ERROR);
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
    // Only a connect that failed asks SO_ERROR why (and looks up the local address for
    // the log): a successful one costs no system call after the wait.
    let failed = match ready {
        Err(e) => Some(e),
        Ok(r) if r.is_error() || r.is_write_closed() || !r.is_writable() => {
            match stream.take_error() {
                Ok(Some(e)) | Err(e) => Some(e),
                // No error recorded: connected after all if it has a peer.
                Ok(None) => stream.peer_addr().err(),
            }
        }
        Ok(_) => None,
    };
    match failed {
        Some(e) => Err(fail(e, stream.local_addr().ok())),
        None => Ok(stream),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused connect is told apart from a successful one by readiness alone, and still
    /// reports the kernel's error and the local address; a connect that succeeds is
    /// connected.
    #[tokio::test]
    async fn refused_and_accepted_connects() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let limit = Some(Duration::from_secs(5));
        let err = connect(&[closed], |_| None, limit).await.unwrap_err();
        assert_eq!(err.error.kind(), io::ErrorKind::ConnectionRefused);
        assert!(!err.timed_out);
        assert_eq!(err.addr, Some(closed));
        assert!(err.local.is_some_and(|l| l.ip().is_loopback()));
        // The first address refuses, the second answers.
        let (s, reached) = connect(&[closed, open], |_| None, limit).await.unwrap();
        assert_eq!(reached, open);
        assert_eq!(s.peer_addr().unwrap(), open);
        let (_accepted, from) = listener.accept().unwrap();
        assert_eq!(from, s.local_addr().unwrap());
    }
}
