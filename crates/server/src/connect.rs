//! Connecting to a target, with the source address the configuration asks for and a
//! time limit, keeping the local address even when the connect fails (Dante logs it).
//!
//! A socket bound to an `external:` address is bound with `IP_BIND_ADDRESS_NO_PORT`:
//! bind(2) then takes the address only, and connect(2) picks the port for the whole
//! 4-tuple. A bind to port 0 without it must find a port free for every destination and
//! cannot reuse one in TIME_WAIT, so under connection churn it fails with EADDRINUSE
//! long before the ports for one destination run out. A failure of socket(2) or bind(2)
//! is the proxy's own ([`Stage`]), logged as such, not as the remote peer's.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use nix::sys::socket::setsockopt;
use nix::sys::socket::sockopt::IpBindAddressNoPort;
use socket2::{Domain, Socket, Type};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Which step of an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// socket(2) or a socket option: a local failure.
    Socket,
    /// bind(2) to the external address: a local failure.
    Bind,
    /// connect(2) or the wait for it: the remote side's (or the network's) answer.
    Connect,
}

/// A failed connect.
#[derive(Debug)]
pub(crate) struct ConnectError {
    /// The error of the last address tried (`TimedOut` for our own time limit).
    pub(crate) error: io::Error,
    /// Where the last attempt failed.
    pub(crate) stage: Stage,
    /// Whether our `timeout.connect` expired.
    pub(crate) timed_out: bool,
    /// The local address of the last attempt, if the kernel had given one.
    pub(crate) local: Option<SocketAddr>,
    /// The address of the last attempt.
    pub(crate) addr: Option<SocketAddr>,
}

impl ConnectError {}

/// Connects to the first address of `addrs` that answers, each attempt within `limit`;
/// returns the connection and the address it reached.
pub(crate) async fn connect(
    addrs: &[SocketAddr],
    source: impl Fn(&SocketAddr) -> Option<IpAddr>,
    limit: Option<Duration>,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    // The error is built only when an attempt fails (an `io::Error` with a message is
    // three allocations: not paid by every session that connects at once).
    let mut last: Option<ConnectError> = None;
    let started = std::time::Instant::now();
    for addr in addrs {
        match connect_one(*addr, source(addr), limit).await {
            Ok(s) => {
                crate::events::Connected(started.elapsed()).emit();
                return Ok((s, *addr));
            }
            Err(e) => {
                last = Some(ConnectError {
                    addr: Some(*addr),
                    ..e
                })
            }
        }
    }
    crate::events::Connected(started.elapsed()).emit();
    Err(last.unwrap_or_else(|| ConnectError {
        error: io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to connect to"),
        stage: Stage::Connect,
        timed_out: false,
        local: None,
        addr: None,
    }))
}

async fn connect_one(
    addr: SocketAddr,
    source: Option<IpAddr>,
    limit: Option<Duration>,
) -> Result<TcpStream, ConnectError> {
    let failed = |stage, error: io::Error, local| ConnectError {
        error,
        stage,
        timed_out: false,
        local,
        addr: Some(addr),
    };
    let fail = |error: io::Error, local| failed(Stage::Connect, error, local);
    // Non-blocking (and close-on-exec) from creation: one system call, not three.
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), None)
        .map_err(|e| failed(Stage::Socket, e, None))?;
    sock.set_nodelay(true)
        .map_err(|e| failed(Stage::Socket, e, None))?;
    if let Some(ip) = source {
        // The port comes at connect(2), for this destination (see the module doc). A
        // kernel without the option (before Linux 4.2) binds a port here, as before.
        let _ = setsockopt(&sock, IpBindAddressNoPort, &true);
        sock.bind(&SocketAddr::new(ip, 0).into())
            .map_err(|e| failed(Stage::Bind, e, None))?;
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
                    stage: Stage::Connect,
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

    /// A socket bound to an external address leaves the port to connect(2)
    /// (IP_BIND_ADDRESS_NO_PORT), so that TIME_WAIT ports stay usable under churn.
    #[tokio::test]
    async fn an_external_address_is_bound_without_a_port() {
        use nix::sys::socket::getsockopt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let limit = Some(Duration::from_secs(5));
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let (s, _) = connect(&[open], |_| Some(loopback), limit).await.unwrap();
        assert!(getsockopt(&s, IpBindAddressNoPort).unwrap());
        assert_eq!(s.local_addr().unwrap().ip(), loopback);
        // Without an external address nothing is bound, and the option is not needed.
        let (s, _) = connect(&[open], |_| None, limit).await.unwrap();
        assert!(!getsockopt(&s, IpBindAddressNoPort).unwrap());
    }

    /// A bind(2) that fails is the proxy's own failure, described in Dante's words, not
    /// the remote peer's.
    #[tokio::test]
    async fn a_failed_bind_is_a_local_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        // TEST-NET-1: not an address of this host.
        let elsewhere = IpAddr::from([192, 0, 2, 1]);
        let err = connect(&[open], |_| Some(elsewhere), Some(Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert_eq!(err.stage, Stage::Bind);
        assert_eq!(err.error.raw_os_error(), Some(libc::EADDRNOTAVAIL));
        assert_eq!(
            crate::session::RequestError::local(err)
                .map(|e| e.to_string())
                .ok()
                .as_deref(),
            Some(
                "could not bind address to use on external side: failed to bind address on \
                 external side: Cannot assign requested address"
            )
        );
        // A refused connect is the remote side's.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let err = connect(&[closed], |_| None, Some(Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert_eq!(err.stage, Stage::Connect);
        assert!(crate::session::RequestError::local(err).is_err());
    }
}
