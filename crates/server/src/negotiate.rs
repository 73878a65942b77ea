//! The SOCKS5 handshake on an accepted connection: method choice, authentication and
//! the request. A loop of "read more, call the decoder" around `socks-proto`; every
//! failure answers the client as RFC 1928/1929 say and comes back as a [`Refusal`]
//! that says what to log.

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

/// Dante 1.4.2's words for a greeting without a method the server accepts.
const NO_METHOD: &str = "client offered no acceptable authentication method";

/// Dante 1.4.2's words for a user name the system does not know.
fn unknown_system_user(shown: &str) -> String {
    format!(
        "could not access user \"{shown}\"'s records in the system password file: no system error"
    )
}

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

/// Why a handshake ended without a request: what to log (never a password).
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) desc: String,
    /// An authentication failure (logged in AUTH) rather than a protocol one (CLIENT).
    pub(crate) auth: bool,
}

impl Refusal {
    pub(crate) fn new(desc: impl Into<String>) -> Self {
        Self {
            desc: desc.into(),
            auth: false,
        }
    }

    fn auth(desc: impl Into<String>) -> Self {
        Self {
            desc: desc.into(),
            auth: true,
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

/// Dante 1.4.2's words for a negotiation timed out after `limit` seconds.
pub(crate) fn negotiate_timeout(limit: u64) -> String {
    format!("negotiate timeout after {limit} second{}", plural(limit))
}

impl Reader<'_> {
    /// Bytes of the messages decoded so far.
    fn used(&self) -> usize {
        self.total - self.buf.len()
    }

    /// A failed negotiation in Dante 1.4.2's words (`sockd_negotiate.c`): `error after
    /// reading N bytes in S seconds: WHY`, N counting up to the byte that failed, as
    /// Dante, which reads a message field by field, counts.
    fn error(&self, read: usize, why: impl std::fmt::Display) -> Refusal {
        let secs = self.started.elapsed().as_secs();
        Refusal::new(format!(
            "error after reading {read} byte{} in {secs} second{}: {why}",
            plural(read as u64),
            plural(secs)
        ))
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
                    return Err(self.error(
                        self.total,
                        format!("handshake message of {at_least} bytes is too long"),
                    ));
                }
                Ok(Decoded::NeedMore { .. }) => {}
            }
            let mut chunk = [0u8; 512];
            let n = match self.stream.read(&mut chunk).await {
                Ok(n) => n,
                Err(e) => {
                    let why = format!("local client error ({})", crate::errno_text(&e));
                    return Err(self.error(self.total, why));
                }
            };
            if n == 0 {
                return Err(self.error(self.total, "eof from local client"));
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
        other => Err(rd.error(
            1,
            format!("unknown SOCKS version {other} in client request"),
        )),
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
            return Err(Refusal::new(format!("bad SOCKS4 request: {e}")));
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
                return Err(Refusal::auth(format!(
                    "SOCKS4 USERID \"{}\" differs from the user identd reports, \"{}\"",
                    traffic_log::vis::encode(&req.user_id),
                    traffic_log::vis::encode(u.as_bytes())
                )));
            }
            Err(e) => {
                let _ = rd
                    .stream
                    .write_all(&encode_reply4(Reply4::NoIdentd, zero4()))
                    .await;
                crate::events::AuthFailed { method: "rfc931" }.emit();
                return Err(Refusal::auth(format!("rfc931 authentication failed: {e}")));
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
        return Err(Refusal::auth(
            "SOCKS4 cannot use any of the configured socksmethods".to_string(),
        ));
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
        let mut r = rd.error(rd.used() + 2, NO_METHOD);
        r.auth = true;
        return Err(r);
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
        // Dante 1.4.2's words; an identd that did not answer is said after them.
        let why_ident = match &ident.answer {
            Some(Err(e)) => format!(" (rfc931: {e})"),
            _ => String::new(),
        };
        crate::events::AuthFailed {
            method: "none_acceptable",
        }
        .emit();
        let mut r = rd.error(rd.used(), format!("{NO_METHOD}{why_ident}"));
        r.auth = true;
        return Err(r);
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
                    ProtoError::BadAuthVersion(v) => rd.error(
                        used + 1,
                        format!(
                            "recv_unamever(): unknown socks_v5 version on username packet from client: {v}"
                        ),
                    ),
                    ProtoError::EmptyUsername if system => {
                        let plen = rd.buf.get(2).map_or(0, |&p| usize::from(p));
                        rd.error(used + 3 + plen, unknown_system_user(""))
                    }
                    other => rd.error(
                        rd.total,
                        format!("bad username/password request: {other}"),
                    ),
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
            let desc = match verdict {
                Verdict::UnknownUser if system => unknown_system_user(&shown),
                Verdict::WrongPassword | Verdict::Locked if system => {
                    format!("system password authentication failed for user \"{shown}\"")
                }
                _ => format!("username/password authentication failed for user \"{shown}\": {why}"),
            };
            let mut r = rd.error(rd.used(), desc);
            r.auth = true;
            return Err(r);
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
                ProtoError::BadVersion { got, .. } => rd.error(
                    before + 1,
                    format!("unknown SOCKS version {got} in client request"),
                ),
                ProtoError::BadAddressType(t) => {
                    rd.error(before + 4, format!("unknown socks_v5 address type: {t}"))
                }
                other => rd.error(rd.total, format!("bad request: {other}")),
            });
        }
    };
    if let Command::Other(b) = request.command {
        let mut out = Vec::with_capacity(10);
        encode_reply(&Reply::failure(ReplyCode::CommandNotSupported), &mut out);
        let _ = rd.stream.write_all(&out).await;
        return Err(rd.error(before + 2, format!("unknown socks_v5 command: {b}")));
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
        .map_err(|e| Refusal::new(format!("local client error: {}", crate::errno_text(&e))))
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
