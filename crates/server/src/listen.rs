//! Binding the `internal:` addresses, before the runtime starts and before privileges
//! are dropped.

use std::net::{IpAddr, SocketAddr};

use sockd_conf::{Config, HostAddr};
use socket2::{Domain, Socket, Type};

use crate::resolve;

/// Binds every internal address; an interface name binds each of its addresses (IPv6
/// link-local ones aside), a host name each address it resolves to. An error names the
/// `internal:` entry's file:line:column.
pub fn bind_all(config: &Config) -> Result<Vec<std::net::TcpListener>, String> {
    if config.internals.is_empty() {
        return Err(
            "no internal address configured (add e.g. \"internal: 127.0.0.1 port = 1080\")".into(),
        );
    }
    let o = &config.origins;
    let mut out = Vec::new();
    for (i, internal) in config.internals.iter().enumerate() {
        let at = |message: String| {
            let pos = o.internals.get(i).copied().unwrap_or_default();
            o.diagnostic(pos, message).to_string()
        };
        for ip in addresses(&internal.host).map_err(at)? {
            let addr = SocketAddr::new(ip, internal.port);
            out.push(
                bind(addr).map_err(|e| at(format!("internal: cannot listen on {addr}: {e}")))?,
            );
        }
    }
    Ok(out)
}

fn addresses(host: &HostAddr) -> Result<Vec<IpAddr>, String> {
    match host {
        HostAddr::Ip(ip) => Ok(vec![*ip]),
        HostAddr::Name(name) => {
            let addrs = match resolve::interface_addrs(name) {
                Some(a) => a,
                None => resolve::resolve_blocking(name).map_err(|e| {
                    format!(
                        "internal: \"{name}\" is neither an interface nor a resolvable host: {e}"
                    )
                })?,
            };
            let addrs: Vec<IpAddr> = addrs
                .into_iter()
                .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
                .collect();
            if addrs.is_empty() {
                return Err(format!(
                    "internal: interface \"{name}\" has no usable address"
                ));
            }
            Ok(addrs)
        }
    }
}

/// Takes the listening sockets systemd passed (socket activation, `LISTEN_FDS`) instead
/// of binding: each must be a listening TCP socket on an address `internal:` names (any
/// port when that entry says port 0), and every `internal:` entry must have one.
pub fn adopt_all(
    config: &Config,
    fds: Vec<std::os::fd::OwnedFd>,
) -> Result<Vec<std::net::TcpListener>, String> {
    let o = &config.origins;
    let mut wanted: Vec<(usize, Vec<IpAddr>, u16)> = Vec::new();
    for (i, internal) in config.internals.iter().enumerate() {
        let at = |message: String| {
            let pos = o.internals.get(i).copied().unwrap_or_default();
            o.diagnostic(pos, message).to_string()
        };
        wanted.push((i, addresses(&internal.host).map_err(at)?, internal.port));
    }
    let mut covered = vec![false; wanted.len()];
    let mut out = Vec::new();
    for fd in fds {
        let sock = Socket::from(fd);
        let listening = sock.r#type().ok() == Some(Type::STREAM)
            && nix::sys::socket::getsockopt(&sock, nix::sys::socket::sockopt::AcceptConn)
                .unwrap_or(false);
        let local = sock.local_addr().ok().and_then(|a| a.as_socket());
        let Some(local) = local.filter(|_| listening) else {
            return Err(
                "socket activation: a descriptor systemd passed is not a listening TCP socket"
                    .into(),
            );
        };
        let ip = local.ip().to_canonical();
        let Some(&(i, ..)) = wanted
            .iter()
            .find(|(_, ips, port)| ips.contains(&ip) && (*port == 0 || *port == local.port()))
        else {
            return Err(format!(
                "socket activation: systemd passed a socket on {local}, which no internal: entry names"
            ));
        };
        covered[i] = true;
        sock.set_nodelay(true)
            .map_err(|e| format!("{local}: {e}"))?;
        sock.set_nonblocking(true)
            .map_err(|e| format!("{local}: {e}"))?;
        out.push(sock.into());
    }
    if let Some(i) = covered.iter().position(|c| !c) {
        let pos = o.internals.get(i).copied().unwrap_or_default();
        return Err(o
            .diagnostic(
                pos,
                "internal: socket activation passed no socket for this address".into(),
            )
            .to_string());
    }
    Ok(out)
}

fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux, which spares a
    // setsockopt per connection; the relay forwards small writes at once.
    sock.set_nodelay(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// The ready line: one line naming every listening address, printed once all are bound.
pub fn ready_line(listeners: &[std::net::TcpListener]) -> String {
    let addrs: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    format!("ferrosocks ready: listening on {}", addrs.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relay relies on accepted sockets inheriting TCP_NODELAY from the listener.
    #[test]
    fn accepted_sockets_inherit_nodelay() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        listener.set_nonblocking(false).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}
