//! Shared pieces of the benchmarks: the SOCKS5 client handshake and the target server
//! protocol. Everything runs on loopback.
//!
//! Target protocol (after the SOCKS5 CONNECT, or directly): the client sends one command
//! byte and a big-endian u64: `U n` — the client sends n bytes, the server reads them and
//! answers one byte; `D n` — the server sends n bytes and closes; `E n` — the server
//! echoes n bytes back.
//!
//! [`procs`] holds what the runners (`bench`, `operators`) share: ports, processes and
//! what /proc says about them, `loadgen` runs, medians.

pub mod floor_sys;
pub mod fsync_rate;
pub mod procs;

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connects to `target`, through the SOCKS5 proxy `proxy` if given (no authentication).
pub async fn connect(proxy: Option<SocketAddr>, target: SocketAddr) -> std::io::Result<TcpStream> {
    let Some(proxy) = proxy else {
        let s = TcpStream::connect(target).await?;
        s.set_nodelay(true)?;
        return Ok(s);
    };
    let mut s = TcpStream::connect(proxy).await?;
    s.set_nodelay(true)?;
    let SocketAddr::V4(t) = target else {
        return Err(std::io::Error::other("IPv4 targets only"));
    };
    let mut req = vec![5, 1, 0, 5, 1, 0, 1];
    req.extend_from_slice(&t.ip().octets());
    req.extend_from_slice(&t.port().to_be_bytes());
    // Greeting and request in one write: both are small and every server here takes it.
    s.write_all(&req[..3]).await?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await?;
    if choice != [5, 0] {
        return Err(std::io::Error::other(format!("method refused: {choice:?}")));
    }
    s.write_all(&req[3..]).await?;
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).await?;
    if reply[1] != 0 {
        return Err(std::io::Error::other(format!(
            "CONNECT refused: {:#04x}",
            reply[1]
        )));
    }
    Ok(s)
}

/// Sends a target command.
pub async fn command(s: &mut TcpStream, cmd: u8, n: u64) -> std::io::Result<()> {
    let mut b = [0u8; 9];
    b[0] = cmd;
    b[1..].copy_from_slice(&n.to_be_bytes());
    s.write_all(&b).await
}

/// The target server: serves `U`, `D` and `E` until the process ends.
pub async fn serve_target(listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = s.set_nodelay(true);
            let mut head = [0u8; 9];
            if s.read_exact(&mut head).await.is_err() {
                return;
            }
            let n = u64::from_be_bytes(head[1..].try_into().unwrap_or_default());
            let mut buf = vec![0u8; 256 * 1024];
            match head[0] {
                b'U' => {
                    let mut left = n;
                    while left > 0 {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => left = left.saturating_sub(k as u64),
                        }
                    }
                    let _ = s.write_all(b"k").await;
                }
                b'D' => {
                    let mut left = n;
                    while left > 0 {
                        let k = left.min(buf.len() as u64) as usize;
                        if s.write_all(&buf[..k]).await.is_err() {
                            return;
                        }
                        left -= k as u64;
                    }
                    let _ = s.shutdown().await;
                }
                b'E' => {
                    let mut left = n as usize;
                    while left > 0 {
                        let k = match s.read(&mut buf[..left.min(65536)]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => k,
                        };
                        if s.write_all(&buf[..k]).await.is_err() {
                            return;
                        }
                        left -= k;
                    }
                    // Wait for the client to close first.
                    let _ = s.read(&mut buf[..1]).await;
                }
                _ => {}
            }
        });
    }
}
