//! Server chaining: CONNECT through an upstream SOCKS5, SOCKS4 or HTTP proxy, as a
//! `route { }` says.
//!
//! The route is chosen after the socks rules passed the request: the first route whose
//! `from:`, `to:` and `command:` match. The upstream handshake runs within
//! `timeout.connect`. A SOCKS5 upstream is offered the route's methods; `username`
//! forwards the client's own name and password (as Dante does, in clear). The target is
//! passed on as the client gave it, so a name is resolved by the upstream. Records name
//! `PROXY-EXT NEXTPROXY [LASTPROXY-EXT] TARGET`, LASTPROXY-EXT being the address the
//! upstream reports (absent for HTTP); failures log `serverchain failed: …`.

use std::net::SocketAddr;
use std::time::Duration;

use sockd_conf::{AuthMethod, HostAddr, Route, SocksCommand, UpstreamProtocol, Via};
use socks_proto::{
    decode_method_choice, decode_reply, decode_reply4, decode_userpass_status, encode_greeting,
    encode_request, encode_request4, encode_userpass, Command, Decoded, Method, ProtoError,
    ReplyCode, Target,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::connect::connect;
use crate::rules::{route_matches, TargetAddrs};

/// A connection through an upstream proxy, ready to relay.
pub(crate) struct Chained {
    pub(crate) stream: TcpStream,
    /// The upstream proxy's address (NEXTPROXY).
    pub(crate) next: SocketAddr,
    /// What the upstream says it connected from (LASTPROXY-EXT), when it says.
    pub(crate) last: Option<SocketAddr>,
    /// Bytes the upstream sent after its answer: they belong to the client.
    pub(crate) leftover: Vec<u8>,
}

/// Why chaining failed.
pub(crate) struct ChainError {
    /// The text after `serverchain failed: `.
    pub(crate) desc: String,
    /// What to answer the client.
    pub(crate) reply: ReplyCode,
    /// Our local address towards the upstream, if we had one.
    pub(crate) local: Option<SocketAddr>,
}

/// The first route for a CONNECT from `client` to `target`.
pub(crate) async fn pick<'r>(
    routes: &'r [Route],
    client: SocketAddr,
    target: &Target,
    addrs: &mut TargetAddrs,
) -> Option<&'r Route> {
    for r in routes {
        let connect_ok = r
            .commands
            .as_ref()
            .is_none_or(|c| c.contains(&SocksCommand::Connect));
        if connect_ok && route_matches(&r.from, &r.to, client, target, addrs).await {
            return Some(r);
        }
    }
    None
}

/// The client's credentials, for `method: username` upstream.
pub(crate) struct Credentials<'a> {
    pub(crate) user: Option<&'a str>,
    pub(crate) password: &'a [u8],
}

/// Connects through `route` to `target`.
pub(crate) async fn via(
    route: &Route,
    target: &Target,
    creds: Credentials<'_>,
    source: impl Fn(&SocketAddr) -> Option<std::net::IpAddr>,
    limit: Option<Duration>,
) -> Result<Chained, ChainError> {
    let Via::Proxy { host, port } = &route.via else {
        return Err(ChainError {
            desc: "route has no upstream".into(),
            reply: ReplyCode::GeneralFailure,
            local: None,
        });
    };
    let addrs: Vec<SocketAddr> = match host {
        HostAddr::Ip(ip) => vec![SocketAddr::new(*ip, *port)],
        HostAddr::Name(name) => crate::resolve::socket_addrs(name, *port)
            .await
            .map_err(|e| ChainError {
                desc: format!("could not resolve upstream proxyserver \"{name}\": {e}"),
                reply: ReplyCode::GeneralFailure,
                local: None,
            })?,
    };
    let (mut stream, next) = connect(&addrs, source, limit).await.map_err(|ce| {
        let to = addrs.first().map_or_else(|| "?".into(), |a| crate::tlog::ep(*a).to_string());
        let from = ce.local.map_or_else(|| "0.0.0.0.0".into(), |a| crate::tlog::ep(a).to_string());
        let why = if ce.timed_out { "timed out".to_string() } else { crate::errno_text(&ce.error) };
        ChainError {
            desc: format!("could not connect to upstream proxyserver: connect(2) to {to} from {from} failed: {why}"),
            reply: ReplyCode::GeneralFailure,
            local: ce.local,
        }
    })?;
    let local = stream.local_addr().ok();
    let protocol = route
        .protocols
        .first()
        .copied()
        .unwrap_or(UpstreamProtocol::SocksV5);
    let handshake = handshake(&mut stream, protocol, &route.methods, target, &creds);
    let outcome = match limit {
        Some(d) => tokio::time::timeout(d, handshake)
            .await
            .unwrap_or_else(|_| {
                Err((
                    format!(
                        "upstream proxyserver {next} did not answer within {}s",
                        d.as_secs()
                    ),
                    ReplyCode::TtlExpired,
                ))
            }),
        None => handshake.await,
    };
    match outcome {
        Ok((last, leftover)) => Ok(Chained {
            stream,
            next,
            last,
            leftover,
        }),
        Err((desc, reply)) => Err(ChainError { desc, reply, local }),
    }
}

type Handshake = Result<(Option<SocketAddr>, Vec<u8>), (String, ReplyCode)>;

async fn handshake(
    s: &mut TcpStream,
    protocol: UpstreamProtocol,
    methods: &[AuthMethod],
    target: &Target,
    creds: &Credentials<'_>,
) -> Handshake {
    match protocol {
        UpstreamProtocol::SocksV5 => socks5(s, methods, target, creds).await,
        UpstreamProtocol::SocksV4 => socks4(s, target, creds).await,
        UpstreamProtocol::Http => http(s, methods, target, creds).await,
    }
}

fn io_err(e: std::io::Error) -> (String, ReplyCode) {
    (
        format!("upstream proxyserver: {}", crate::errno_text(&e)),
        ReplyCode::GeneralFailure,
    )
}

/// Reads until `decode` yields; returns the message and what came after it.
async fn read_msg<T>(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<Decoded<T>, ProtoError>,
) -> Result<T, (String, ReplyCode)> {
    loop {
        match decode(buf) {
            Ok(Decoded::Done { msg, used }) => {
                buf.drain(..used);
                return Ok(msg);
            }
            Err(e) => {
                return Err((
                    format!("upstream proxyserver answered garbage: {e}"),
                    ReplyCode::GeneralFailure,
                ))
            }
            Ok(Decoded::NeedMore { .. }) => {}
        }
        let mut chunk = [0u8; 512];
        let n = s.read(&mut chunk).await.map_err(io_err)?;
        if n == 0 {
            return Err((
                "upstream proxyserver closed the connection during negotiation".into(),
                ReplyCode::GeneralFailure,
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn socks5(
    s: &mut TcpStream,
    methods: &[AuthMethod],
    target: &Target,
    creds: &Credentials<'_>,
) -> Handshake {
    let offered: Vec<Method> = methods
        .iter()
        .filter(|m| **m == AuthMethod::None || creds.user.is_some())
        .map(|m| {
            if *m == AuthMethod::Username {
                Method::USERNAME
            } else {
                Method::NONE
            }
        })
        .collect();
    if offered.is_empty() {
        return Err((
            "route method username, but the client did not authenticate with a username".into(),
            ReplyCode::GeneralFailure,
        ));
    }
    let mut out = Vec::new();
    encode_greeting(&offered, &mut out);
    s.write_all(&out).await.map_err(io_err)?;
    let mut buf = Vec::new();
    let chosen = read_msg(s, &mut buf, decode_method_choice).await?;
    if chosen == Method::USERNAME {
        out.clear();
        encode_userpass(
            creds.user.unwrap_or_default().as_bytes(),
            creds.password,
            &mut out,
        );
        s.write_all(&out).await.map_err(io_err)?;
        if !read_msg(s, &mut buf, decode_userpass_status).await? {
            return Err((
                "upstream proxyserver refused the client's username/password".into(),
                ReplyCode::NotAllowed,
            ));
        }
    } else if chosen != Method::NONE || !offered.contains(&chosen) {
        return Err((
            format!(
                "upstream proxyserver accepted none of our methods (answered {:#04x})",
                chosen.0
            ),
            ReplyCode::GeneralFailure,
        ));
    }
    out.clear();
    encode_request(Command::Connect, target, &mut out);
    s.write_all(&out).await.map_err(io_err)?;
    let reply = read_msg(s, &mut buf, decode_reply).await?;
    if reply.code != ReplyCode::Succeeded {
        return Err((
            format!("upstream proxyserver replied {:#04x}", reply.code.as_u8()),
            reply.code,
        ));
    }
    Ok((Some(reply.bound), buf))
}

async fn socks4(s: &mut TcpStream, target: &Target, creds: &Credentials<'_>) -> Handshake {
    let mut out = Vec::new();
    encode_request4(target, creds.user.unwrap_or_default().as_bytes(), &mut out);
    s.write_all(&out).await.map_err(io_err)?;
    let mut buf = Vec::new();
    let (granted, bound) = read_msg(s, &mut buf, decode_reply4).await?;
    if !granted {
        return Err((
            "upstream proxyserver rejected the SOCKS4 request".into(),
            ReplyCode::GeneralFailure,
        ));
    }
    Ok((Some(bound), buf))
}

/// HTTP CONNECT. `method: username` sends Basic credentials.
async fn http(
    s: &mut TcpStream,
    methods: &[AuthMethod],
    target: &Target,
    creds: &Credentials<'_>,
) -> Handshake {
    let authority = match &target.host {
        socks_proto::Host::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{}", target.port),
        h => format!("{h}:{}", target.port),
    };
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let (true, Some(user)) = (methods.contains(&AuthMethod::Username), creds.user) {
        let mut pair = user.as_bytes().to_vec();
        pair.push(b':');
        pair.extend_from_slice(creds.password);
        req.push_str(&format!("Proxy-Authorization: Basic {}\r\n", base64(&pair)));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.map_err(io_err)?;
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 * 1024 {
            return Err((
                "upstream HTTP proxy sent an over-long answer".into(),
                ReplyCode::GeneralFailure,
            ));
        }
        let mut chunk = [0u8; 1024];
        let n = s.read(&mut chunk).await.map_err(io_err)?;
        if n == 0 {
            return Err((
                "upstream HTTP proxy closed the connection before answering".into(),
                ReplyCode::GeneralFailure,
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_owned();
    let code = status.split(' ').nth(1).and_then(|c| c.parse::<u16>().ok());
    match (status.starts_with("HTTP/1."), code) {
        (true, Some(200..=299)) => Ok((None, buf[end..].to_vec())),
        (true, Some(_)) => Err((
            format!(
                "upstream HTTP proxy answered \"{}\"",
                traffic_log::vis::encode(status.as_bytes())
            ),
            ReplyCode::GeneralFailure,
        )),
        _ => Err((
            "upstream HTTP proxy answered garbage".into(),
            ReplyCode::GeneralFailure,
        )),
    }
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64(b"alice:s3cret"), "YWxpY2U6czNjcmV0");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
    }
}
