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

/// Why chaining failed, and where from.
pub(crate) struct ChainError {
    pub(crate) failure: ChainFailure,
    /// Our local address towards the upstream, if we had one.
    pub(crate) local: Option<SocketAddr>,
}

/// What went wrong with the upstream: its `Display` is the text after `serverchain
/// failed: `, [`ChainFailure::reply`] what the client is answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChainFailure {
    #[error("route has no upstream")]
    NoUpstream,
    #[error("could not resolve upstream proxyserver \"{name}\": {error}")]
    Unresolved {
        name: String,
        error: crate::resolve::ResolveError,
    },
    /// `to` and `from` as Dante prints addresses (`0.0.0.0.0` for no local address).
    #[error(
        "could not connect to upstream proxyserver: connect(2) to {to} from {from} failed: {why}"
    )]
    Connect {
        to: String,
        from: String,
        why: String,
    },
    #[error("upstream proxyserver {next} did not answer within {secs}s")]
    Timeout { next: SocketAddr, secs: u64 },
    #[error("upstream proxyserver: {}", crate::errno_text(.0))]
    Io(std::io::Error),
    #[error("upstream proxyserver answered garbage: {0}")]
    Garbage(ProtoError),
    #[error("upstream proxyserver closed the connection during negotiation")]
    Closed,
    #[error("route method username, but the client did not authenticate with a username")]
    NoUsername,
    #[error("upstream proxyserver refused the client's username/password")]
    PasswordRefused,
    #[error("upstream proxyserver accepted none of our methods (answered {0:#04x})")]
    NoMethod(u8),
    #[error("upstream proxyserver replied {:#04x}", .0.as_u8())]
    Refused(ReplyCode),
    #[error("upstream proxyserver rejected the SOCKS4 request")]
    Socks4Rejected,
    #[error("upstream HTTP proxy sent an over-long answer")]
    HttpTooLong,
    #[error("upstream HTTP proxy closed the connection before answering")]
    HttpClosed,
    /// The status line, vis-escaped.
    #[error("upstream HTTP proxy answered \"{0}\"")]
    HttpStatus(String),
    #[error("upstream HTTP proxy answered garbage")]
    HttpGarbage,
    /// The server cut the session while it was chaining.
    #[error("administrative termination")]
    Cut,
}

impl ChainFailure {
    /// What the client is answered.
    pub(crate) fn reply(&self) -> ReplyCode {
        match self {
            Self::Timeout { .. } => ReplyCode::TtlExpired,
            Self::PasswordRefused => ReplyCode::NotAllowed,
            // The upstream's own answer, passed on.
            Self::Refused(code) => *code,
            _ => ReplyCode::GeneralFailure,
        }
    }
}

impl From<ChainFailure> for ChainError {
    fn from(failure: ChainFailure) -> Self {
        Self {
            failure,
            local: None,
        }
    }
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
        return Err(ChainFailure::NoUpstream.into());
    };
    let addrs: Vec<SocketAddr> = match host {
        HostAddr::Ip(ip) => vec![SocketAddr::new(*ip, *port)],
        HostAddr::Name(name) => {
            crate::resolve::socket_addrs(name, *port)
                .await
                .map_err(|error| ChainFailure::Unresolved {
                    name: name.clone(),
                    error,
                })?
        }
    };
    let (mut stream, next) = connect(&addrs, source, limit).await.map_err(|ce| {
        let to = addrs
            .first()
            .map_or_else(|| "?".into(), |a| crate::tlog::ep(*a).to_string());
        let from = ce
            .local
            .map_or_else(|| "0.0.0.0.0".into(), |a| crate::tlog::ep(a).to_string());
        let why = if ce.timed_out {
            "timed out".to_string()
        } else {
            crate::errno_text(&ce.error)
        };
        ChainError {
            failure: ChainFailure::Connect { to, from, why },
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
            .unwrap_or(Err(ChainFailure::Timeout {
                next,
                secs: d.as_secs(),
            })),
        None => handshake.await,
    };
    match outcome {
        Ok((last, leftover)) => Ok(Chained {
            stream,
            next,
            last,
            leftover,
        }),
        Err(failure) => Err(ChainError { failure, local }),
    }
}

type Handshake = Result<(Option<SocketAddr>, Vec<u8>), ChainFailure>;

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

fn io_err(e: std::io::Error) -> ChainFailure {
    ChainFailure::Io(e)
}

/// Reads until `decode` yields; returns the message and what came after it.
async fn read_msg<T>(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<Decoded<T>, ProtoError>,
) -> Result<T, ChainFailure> {
    loop {
        match decode(buf) {
            Ok(Decoded::Done { msg, used }) => {
                buf.drain(..used);
                return Ok(msg);
            }
            Err(e) => return Err(ChainFailure::Garbage(e)),
            Ok(Decoded::NeedMore { .. }) => {}
        }
        let mut chunk = [0u8; 512];
        let n = s.read(&mut chunk).await.map_err(io_err)?;
        if n == 0 {
            return Err(ChainFailure::Closed);
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
        return Err(ChainFailure::NoUsername);
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
            return Err(ChainFailure::PasswordRefused);
        }
    } else if chosen != Method::NONE || !offered.contains(&chosen) {
        return Err(ChainFailure::NoMethod(chosen.0));
    }
    out.clear();
    encode_request(Command::Connect, target, &mut out);
    s.write_all(&out).await.map_err(io_err)?;
    let reply = read_msg(s, &mut buf, decode_reply).await?;
    if reply.code != ReplyCode::Succeeded {
        return Err(ChainFailure::Refused(reply.code));
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
        return Err(ChainFailure::Socks4Rejected);
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
            return Err(ChainFailure::HttpTooLong);
        }
        let mut chunk = [0u8; 1024];
        let n = s.read(&mut chunk).await.map_err(io_err)?;
        if n == 0 {
            return Err(ChainFailure::HttpClosed);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_owned();
    let code = status.split(' ').nth(1).and_then(|c| c.parse::<u16>().ok());
    match (status.starts_with("HTTP/1."), code) {
        (true, Some(200..=299)) => Ok((None, buf[end..].to_vec())),
        (true, Some(_)) => Err(ChainFailure::HttpStatus(traffic_log::vis::encode(
            status.as_bytes(),
        ))),
        _ => Err(ChainFailure::HttpGarbage),
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
    use super::{ChainFailure, ReplyCode};

    /// Each failure's words (after `serverchain failed: `) and the reply it gets.
    #[test]
    fn failures_have_their_words_and_replies() {
        let next = "127.0.0.1:1080".parse().unwrap();
        for (f, text, reply) in [
            (
                ChainFailure::Timeout { next, secs: 5 },
                "upstream proxyserver 127.0.0.1:1080 did not answer within 5s",
                ReplyCode::TtlExpired,
            ),
            (
                ChainFailure::Refused(ReplyCode::HostUnreachable),
                "upstream proxyserver replied 0x04",
                ReplyCode::HostUnreachable,
            ),
            (
                ChainFailure::NoMethod(0xff),
                "upstream proxyserver accepted none of our methods (answered 0xff)",
                ReplyCode::GeneralFailure,
            ),
            (
                ChainFailure::PasswordRefused,
                "upstream proxyserver refused the client's username/password",
                ReplyCode::NotAllowed,
            ),
            (
                ChainFailure::HttpStatus("HTTP/1.1 403 Forbidden".into()),
                "upstream HTTP proxy answered \"HTTP/1.1 403 Forbidden\"",
                ReplyCode::GeneralFailure,
            ),
        ] {
            assert_eq!((f.to_string().as_str(), f.reply()), (text, reply));
        }
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64(b"alice:s3cret"), "YWxpY2U6czNjcmV0");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
    }
}
