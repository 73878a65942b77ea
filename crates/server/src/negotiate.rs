//! The SOCKS5 handshake on an accepted connection: method choice, authentication and
//! the request. A loop of "read more, call the decoder" around `socks-proto`; every
//! failure answers the client as RFC 1928/1929 say and comes back as a [`Refusal`]:
//! its `Display` is the description the log line carries (Dante 1.4.2's words, never a
//! password) and [`Refusal::is_auth`] whether it is logged under AUTH or CLIENT.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};

use sockd_conf::{AuthMethod, ProxyProtocol};
use socks_proto::{
    decode_greeting, decode_request, decode_request4, decode_userpass, encode_method_choice,
    encode_reply, encode_reply4, encode_userpass_status, Command, Command4, Decoded, Method,
    ProtoError, Reply, Reply4, ReplyCode, Request, SOCKS4, SOCKS5,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::passwd::Verdict;
use crate::Users;

/// No SOCKS5 handshake message is longer than this (a full RFC 1929 request is 513).
const MAX_HANDSHAKE: usize = 1024;

/// A finished handshake.
#[derive(Debug)]
pub(crate) struct Negotiated {
    /// SOCKS4(a) or SOCKS5.
    pub(crate) version: ProxyProtocol,
    pub(crate) method: AuthMethod,
    pub(crate) user: Option<String>,
    /// The client's password, kept only to forward it upstream (`route … method:
    /// username`); never logged.
    pub(crate) password: Secret,
    pub(crate) request: Request,
    /// Bytes the client sent after its request, before our reply: they go to the target.
    pub(crate) early_data: Vec<u8>,
}

/// The client's identity from its identd, asked at most once per connection.
pub(crate) struct Ident {
    pub(crate) client: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) limit: std::time::Duration,
    pub(crate) answer: Option<Result<String, String>>,
}

impl Ident {
    pub(crate) async fn get(&mut self) -> &Result<String, String> {
        if self.answer.is_none() {
            // Boxed: only rfc931 sessions pay for this future's size.
            self.answer =
                Some(Box::pin(crate::ident::query(self.client, self.local, self.limit)).await);
        }
        self.answer.get_or_insert_with(|| Err("no answer".into()))
    }
}

/// Bytes that must not be printed.
#[derive(Default)]
pub(crate) struct Secret(pub(crate) Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// Why a handshake ended without a request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// A message that failed or never came, in Dante 1.4.2's words (`sockd_negotiate.c`):
    /// `read` counts up to the byte that failed, as Dante, which reads a message field by
    /// field, counts.
    #[error(
        "error after reading {read} byte{} in {secs} second{}: {why}",
        plural(*.read as u64),
        plural(*.secs)
    )]
    AfterReading {
        read: usize,
        secs: u64,
        why: Failure,
    },
    /// A SOCKS4 request that does not decode.
    #[error("bad SOCKS4 request: {0}")]
    BadSocks4Request(ProtoError),
    /// A SOCKS4 USERID other than the name the client's identd reports (both vis-encoded).
    #[error("SOCKS4 USERID \"{claimed}\" differs from the user identd reports, \"{ident}\"")]
    IdentMismatch { claimed: String, ident: String },
    /// `socksmethod: rfc931` and the client's identd gave no name.
    #[error("rfc931 authentication failed: {0}")]
    IdentFailed(String),
    /// SOCKS4 (no method negotiation) and no configured method it can use.
    #[error("SOCKS4 cannot use any of the configured socksmethods")]
    Socks4NoMethod,
    /// Writing to the client failed.
    #[error("local client error: {0}")]
    ClientWrite(String),
    /// `timeout.negotiate` ran out.
    #[error("negotiate timeout after {secs} second{}", plural(*.secs))]
    Timeout { secs: u64 },
    /// The server cut the session (`client-kill`, shutdown).
    #[error("administrative termination")]
    Cut,
}

/// What went wrong in a message, after [`Refusal::AfterReading`]'s count.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("handshake message of {0} bytes is too long")]
    TooLong(usize),
    #[error("local client error ({0})")]
    ClientRead(String),
    #[error("eof from local client")]
    Eof,
    #[error("unknown SOCKS version {0} in client request")]
    UnknownVersion(u8),
    /// No offered method is one the server accepts; `ident` says why an identd did not
    /// answer when `rfc931` was among them.
    #[error(
        "client offered no acceptable authentication method{}",
        match .ident { Some(e) => format!(" (rfc931: {e})"), None => String::new() }
    )]
    NoAcceptableMethod { ident: Option<String> },
    #[error("recv_unamever(): unknown socks_v5 version on username packet from client: {0}")]
    BadUserpassVersion(u8),
    /// An empty user name with system users: looked up and not found, as Dante does (a
    /// protocol refusal; [`Failure::UnknownSystemUser`] is the failed login).
    #[error("could not access user \"\"'s records in the system password file: no system error")]
    EmptySystemUser,
    /// The name shown vis-encoded.
    #[error(
        "could not access user \"{0}\"'s records in the system password file: no system error"
    )]
    UnknownSystemUser(String),
    #[error("system password authentication failed for user \"{0}\"")]
    SystemPasswordMismatch(String),
    /// A `passwordfile:` login that failed, in our words (Dante has none).
    #[error("username/password authentication failed for user \"{user}\": {why}")]
    PasswordFile { user: String, why: &'static str },
    #[error("bad username/password request: {0}")]
    BadUserpass(ProtoError),
    #[error("unknown socks_v5 address type: {0}")]
    UnknownAddressType(u8),
    #[error("bad request: {0}")]
    BadRequest(ProtoError),
    #[error("unknown socks_v5 command: {0}")]
    UnknownCommand(u8),
}

impl Refusal {
    /// A failed login (logged under AUTH) rather than a protocol error (CLIENT).
    pub(crate) fn is_auth(&self) -> bool {
        match self {
            Self::IdentMismatch { .. } | Self::IdentFailed(_) | Self::Socks4NoMethod => true,
            Self::AfterReading { why, .. } => matches!(
                why,
                Failure::NoAcceptableMethod { .. }
                    | Failure::UnknownSystemUser(_)
                    | Failure::SystemPasswordMismatch(_)
                    | Failure::PasswordFile { .. }
            ),
            _ => false,
        }
    }
}

struct Reader<'a> {
    stream: &'a mut TcpStream,
    buf: Vec<u8>,
    total: usize,
    started: std::time::Instant,
}

/// `s` after a count other than one.
fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

impl Reader<'_> {
    /// Bytes of the messages decoded so far.
    fn used(&self) -> usize {
        self.total - self.buf.len()
    }

    /// A failed message after `read` bytes, timed from the handshake's start.
    fn error(&self, read: usize, why: Failure) -> Refusal {
        Refusal::AfterReading {
            read,
            secs: self.started.elapsed().as_secs(),
            why,
        }
    }

    /// Reads until `decode` yields a message, then drops the bytes it used.
    async fn next<T>(
        &mut self,
        decode: impl Fn(&[u8]) -> Result<Decoded<T>, ProtoError>,
    ) -> Result<Result<T, ProtoError>, Refusal> {
        loop {
            match decode(&self.buf) {
                Ok(Decoded::Done { msg, used }) => {
                    self.buf.drain(..used);
                    return Ok(Ok(msg));
                }
                Err(e) => return Ok(Err(e)),
                Ok(Decoded::NeedMore { at_least }) if at_least > MAX_HANDSHAKE => {
                    return Err(self.error(self.total, Failure::TooLong(at_least)));
                }
                Ok(Decoded::NeedMore { .. }) => {}
            }
            let mut chunk = [0u8; 512];
            let n = match self.stream.read(&mut chunk).await {
                Ok(n) => n,
                Err(e) => {
                    let why = Failure::ClientRead(crate::errno_text(&e));
                    return Err(self.error(self.total, why));
                }
            };
            if n == 0 {
                return Err(self.error(self.total, Failure::Eof));
            }
            self.total += n;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Runs the handshake of whichever version the client speaks. `methods` is the
/// server's preference order for SOCKS5.
pub(crate) async fn negotiate(
    stream: &mut TcpStream,
    methods: &[AuthMethod],
    users: &Users,
    ident: &mut Ident,
) -> Result<Negotiated, Refusal> {
    let mut rd = Reader {
        stream,
        buf: Vec::with_capacity(64),
        total: 0,
        started: std::time::Instant::now(),
    };
    let first = rd
        .next(|b: &[u8]| {
            Ok(match b.first() {
                Some(&v) => Decoded::Done { msg: v, used: 0 },
                None => Decoded::NeedMore { at_least: 1 },
            })
        })
        .await?
        .unwrap_or(0);
    match first {
        SOCKS4 => negotiate4(rd, methods, ident).await,
        SOCKS5 => negotiate5(rd, methods, users, ident).await,
        other => Err(rd.error(1, Failure::UnknownVersion(other))),
    }
}

/// SOCKS4 and 4a: no method negotiation; the request comes at once. The client is
/// accepted only if `socksmethod` allows `none`, or `rfc931` and its identd answers.
async fn negotiate4(
    mut rd: Reader<'_>,
    methods: &[AuthMethod],
    ident: &mut Ident,
) -> Result<Negotiated, Refusal> {
    let req = match rd.next(decode_request4).await? {
        Ok(r) => r,
        Err(e) => {
            let _ = rd
                .stream
                .write_all(&encode_reply4(Reply4::Rejected, zero4()))
                .await;
            return Err(Refusal::BadSocks4Request(e));
        }
    };
    let command = match req.command {
        Command4::Connect => Command::Connect,
        Command4::Bind => Command::Bind,
        Command4::Other(b) => Command::Other(b),
    };
    let none_ok = methods.contains(&AuthMethod::None);
    let (method, user) = if methods.contains(&AuthMethod::Rfc931) {
        match ident.get().await.clone() {
            Ok(u) if req.user_id.is_empty() || req.user_id == u.as_bytes() => {
                (AuthMethod::Rfc931, Some(u))
            }
            _ if none_ok => (AuthMethod::None, None),
            Ok(u) => {
                let _ = rd
                    .stream
                    .write_all(&encode_reply4(Reply4::IdentMismatch, zero4()))
                    .await;
                crate::events::AuthFailed { method: "rfc931" }.emit();
                return Err(Refusal::IdentMismatch {
                    claimed: traffic_log::vis::encode(&req.user_id),
                    ident: traffic_log::vis::encode(u.as_bytes()),
                });
            }
            Err(e) => {
                let _ = rd
                    .stream
                    .write_all(&encode_reply4(Reply4::NoIdentd, zero4()))
                    .await;
                crate::events::AuthFailed { method: "rfc931" }.emit();
                return Err(Refusal::IdentFailed(e));
            }
        }
    } else if none_ok {
        (AuthMethod::None, None)
    } else {
        let _ = rd
            .stream
            .write_all(&encode_reply4(Reply4::Rejected, zero4()))
            .await;
        crate::events::AuthFailed {
            method: "none_acceptable",
        }
        .emit();
        return Err(Refusal::Socks4NoMethod);
    };
    Ok(Negotiated {
        version: ProxyProtocol::SocksV4,
        method,
        user,
        password: Secret::default(),
        request: Request {
            command,
            target: req.target,
        },
        early_data: std::mem::take(&mut rd.buf),
    })
}

fn zero4() -> SocketAddrV4 {
    SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0)
}

async fn negotiate5(
    mut rd: Reader<'_>,
    methods: &[AuthMethod],
    users: &Users,
    ident: &mut Ident,
) -> Result<Negotiated, Refusal> {
    // An error is only "no method at all" (the version byte is already checked):
    // answered as a greeting none of whose methods is acceptable, as Dante 1.4.2 does.
    let Ok(greeting) = rd.next(decode_greeting).await? else {
        let _ = rd
            .stream
            .write_all(&encode_method_choice(Method::NO_ACCEPTABLE))
            .await;
        return Err(rd.error(rd.used() + 2, Failure::NoAcceptableMethod { ident: None }));
    };
    // The first of the server's methods the client offers; rfc931 rides on "no
    // authentication" and needs an answer from the client's identd.
    let mut chosen = None;
    let mut ident_user = None;
    for m in methods {
        let wire = if *m == AuthMethod::Username {
            Method::USERNAME
        } else {
            Method::NONE
        };
        if !greeting.methods.contains(&wire) {
            continue;
        }
        if *m == AuthMethod::Rfc931 {
            match ident.get().await {
                Ok(u) => ident_user = Some(u.clone()),
                Err(_) => continue,
            }
        }
        chosen = Some(*m);
        break;
    }
    let Some(method) = chosen else {
        let _ = rd
            .stream
            .write_all(&encode_method_choice(Method::NO_ACCEPTABLE))
            .await;
        // An identd that did not answer is said after Dante 1.4.2's words.
        let why_ident = match &ident.answer {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        };
        crate::events::AuthFailed {
            method: "none_acceptable",
        }
        .emit();
        return Err(rd.error(rd.used(), Failure::NoAcceptableMethod { ident: why_ident }));
    };
    let wire = if method == AuthMethod::Username {
        Method::USERNAME
    } else {
        Method::NONE
    };
    write(rd.stream, &encode_method_choice(wire)).await?;
    let mut user = ident_user.filter(|_| method == AuthMethod::Rfc931);
    let mut password = Secret::default();
    if method == AuthMethod::Username {
        let system = matches!(users, Users::System(_));
        let up = match rd.next(decode_userpass).await? {
            Ok(up) => up,
            Err(e) => {
                let _ = rd.stream.write_all(&encode_userpass_status(false)).await;
                // In Dante 1.4.2's words, counted as it counts (to the VER byte; an
                // empty name is looked up and not found).
                let used = rd.used();
                return Err(match e {
                    ProtoError::BadAuthVersion(v) => {
                        rd.error(used + 1, Failure::BadUserpassVersion(v))
                    }
                    ProtoError::EmptyUsername if system => {
                        let plen = rd.buf.get(2).map_or(0, |&p| usize::from(p));
                        rd.error(used + 3 + plen, Failure::EmptySystemUser)
                    }
                    other => rd.error(rd.total, Failure::BadUserpass(other)),
                });
            }
        };
        let name = String::from_utf8_lossy(&up.username).into_owned();
        password = Secret(up.password.clone());
        let users = users.clone();
        let verdict = tokio::task::spawn_blocking(move || users.check(&up.username, &up.password))
            .await
            .unwrap_or(Verdict::Unavailable);
        if let Some(why) = verdict.failure_reason() {
            let _ = rd.stream.write_all(&encode_userpass_status(false)).await;
            crate::events::AuthFailed { method: "username" }.emit();
            let shown = traffic_log::vis::encode(name.as_bytes());
            // System users fail in Dante 1.4.2's words; a passwordfile: in ours.
            let why = match verdict {
                Verdict::UnknownUser if system => Failure::UnknownSystemUser(shown),
                Verdict::WrongPassword | Verdict::Locked if system => {
                    Failure::SystemPasswordMismatch(shown)
                }
                _ => Failure::PasswordFile { user: shown, why },
            };
            return Err(rd.error(rd.used(), why));
        }
        write(rd.stream, &encode_userpass_status(true)).await?;
        user = Some(name);
    }
    let before = rd.used();
    let request = match rd.next(decode_request).await? {
        Ok(r) => r,
        Err(e) => {
            let mut out = Vec::with_capacity(10);
            encode_reply(&Reply::failure(e.reply_code()), &mut out);
            let _ = rd.stream.write_all(&out).await;
            // Counted to the field that failed where it is one byte, as Dante does.
            return Err(match e {
                ProtoError::BadVersion { got, .. } => {
                    rd.error(before + 1, Failure::UnknownVersion(got))
                }
                ProtoError::BadAddressType(t) => {
                    rd.error(before + 4, Failure::UnknownAddressType(t))
                }
                other => rd.error(rd.total, Failure::BadRequest(other)),
            });
        }
    };
    if let Command::Other(b) = request.command {
        let mut out = Vec::with_capacity(10);
        encode_reply(&Reply::failure(ReplyCode::CommandNotSupported), &mut out);
        let _ = rd.stream.write_all(&out).await;
        return Err(rd.error(before + 2, Failure::UnknownCommand(b)));
    }
    Ok(Negotiated {
        version: ProxyProtocol::SocksV5,
        method,
        user,
        password,
        request,
        early_data: std::mem::take(&mut rd.buf),
    })
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), Refusal> {
    stream
        .write_all(bytes)
        .await
        .map_err(|e| Refusal::ClientWrite(crate::errno_text(&e)))
}

/// Sends a reply in the client's SOCKS version: the SOCKS5 `code`, or for SOCKS4
/// 0x5A on success and 0x5B for every failure (SOCKS4 replies carry IPv4 only).
pub(crate) async fn reply(
    stream: &mut TcpStream,
    version: ProxyProtocol,
    code: ReplyCode,
    bound: SocketAddr,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(22);
    match version {
        ProxyProtocol::SocksV5 => encode_reply(&Reply { code, bound }, &mut out),
        ProxyProtocol::SocksV4 => {
            let cd = if code == ReplyCode::Succeeded {
                Reply4::Granted
            } else {
                Reply4::Rejected
            };
            let v4 = match bound.ip().to_canonical() {
                IpAddr::V4(ip) => SocketAddrV4::new(ip, bound.port()),
                IpAddr::V6(_) => SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, bound.port()),
            };
            out.extend_from_slice(&encode_reply4(cd, v4));
        }
    }
    stream.write_all(&out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(read: usize, secs: u64, why: Failure) -> Refusal {
        Refusal::AfterReading { read, secs, why }
    }

    #[test]
    fn refusals_read_as_dante_writes_them() {
        let cases = [
            (
                after(1, 0, Failure::UnknownVersion(0)),
                "error after reading 1 byte in 0 seconds: unknown SOCKS version 0 in client request",
            ),
            (
                after(18, 1, Failure::Eof),
                "error after reading 18 bytes in 1 second: eof from local client",
            ),
            (
                after(3, 0, Failure::NoAcceptableMethod { ident: None }),
                "error after reading 3 bytes in 0 seconds: client offered no acceptable authentication method",
            ),
            (
                after(3, 0, Failure::NoAcceptableMethod { ident: Some("no answer".into()) }),
                "error after reading 3 bytes in 0 seconds: client offered no acceptable authentication method (rfc931: no answer)",
            ),
            (
                after(7, 0, Failure::UnknownCommand(9)),
                "error after reading 7 bytes in 0 seconds: unknown socks_v5 command: 9",
            ),
            (
                after(4, 2, Failure::EmptySystemUser),
                "error after reading 4 bytes in 2 seconds: could not access user \"\"'s records in the system password file: no system error",
            ),
            (Refusal::Timeout { secs: 1 }, "negotiate timeout after 1 second"),
            (Refusal::Timeout { secs: 30 }, "negotiate timeout after 30 seconds"),
            (Refusal::Cut, "administrative termination"),
        ];
        for (refusal, text) in cases {
            assert_eq!(refusal.to_string(), text);
        }
    }

    #[test]
    fn failed_logins_are_auth_and_protocol_errors_are_not() {
        let auth = [
            after(3, 0, Failure::NoAcceptableMethod { ident: None }),
            after(9, 0, Failure::UnknownSystemUser("x".into())),
            after(9, 0, Failure::SystemPasswordMismatch("x".into())),
            after(
                9,
                0,
                Failure::PasswordFile {
                    user: "x".into(),
                    why: "password mismatch",
                },
            ),
            Refusal::IdentFailed("no answer".into()),
            Refusal::Socks4NoMethod,
        ];
        assert!(auth.iter().all(Refusal::is_auth));
        let protocol = [
            after(4, 0, Failure::EmptySystemUser),
            after(2, 0, Failure::BadUserpassVersion(5)),
            after(1, 0, Failure::Eof),
            Refusal::Timeout { secs: 3 },
            Refusal::Cut,
            Refusal::ClientWrite("Broken pipe".into()),
        ];
        assert!(!protocol.iter().any(Refusal::is_auth));
    }
}
