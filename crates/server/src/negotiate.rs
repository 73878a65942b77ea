//! The SOCKS5 handshake on an accepted connection: method choice, authentication and
//! the request. A loop of "read more, call the decoder" around `socks-proto`; every
//! failure answers the client as RFC 1928/1929 say and comes back as a [`Refusal`]
//! that says what to log.

use std::sync::Arc;

use sockd_conf::AuthMethod;
use socks_proto::{
    decode_greeting, decode_request, decode_userpass, encode_method_choice, encode_reply,
    encode_userpass_status, Decoded, Method, ProtoError, Reply, ReplyCode, Request,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::passwd::{PasswordFile, Verdict};

/// No SOCKS5 handshake message is longer than this (a full RFC 1929 request is 513).
const MAX_HANDSHAKE: usize = 1024;

/// A finished handshake.
#[derive(Debug)]
pub(crate) struct Negotiated {
    pub(crate) method: AuthMethod,
    pub(crate) user: Option<String>,
    pub(crate) request: Request,
    /// Bytes the client sent after its request, before our reply: they go to the target.
    pub(crate) early_data: Vec<u8>,
}

/// Why a handshake ended without a request: what to log (never a password).
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) desc: String,
}

impl Refusal {
    pub(crate) fn new(desc: impl Into<String>) -> Self {
        Self { desc: desc.into() }
    }
}

struct Reader<'a> {
    stream: &'a mut TcpStream,
    buf: Vec<u8>,
    total: usize,
}

impl Reader<'_> {
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
                    return Err(Refusal::new(format!(
                        "handshake message of {at_least} bytes is too long"
                    )));
                }
                Ok(Decoded::NeedMore { .. }) => {}
            }
            let mut chunk = [0u8; 512];
            let n = self.stream.read(&mut chunk).await.map_err(|e| {
                Refusal::new(format!(
                    "local client error after reading {} bytes: {}",
                    self.total,
                    crate::errno_text(&e)
                ))
            })?;
            if n == 0 {
                return Err(Refusal::new(format!(
                    "local client closed during negotiation after sending {} bytes",
                    self.total
                )));
            }
            self.total += n;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Runs the handshake. `methods` is the server's preference order.
pub(crate) async fn negotiate(
    stream: &mut TcpStream,
    methods: &[AuthMethod],
    passwords: Option<&Arc<PasswordFile>>,
) -> Result<Negotiated, Refusal> {
    let mut rd = Reader {
        stream,
        buf: Vec::with_capacity(64),
        total: 0,
    };
    let greeting = match rd.next(decode_greeting).await? {
        Ok(g) => g,
        Err(e) => return Err(Refusal::new(format!("bad greeting: {e}"))),
    };
    let chosen = methods.iter().copied().find(|m| {
        let wire = match m {
            AuthMethod::None => Method::NONE,
            AuthMethod::Username => Method::USERNAME,
        };
        greeting.methods.contains(&wire)
    });
    let Some(method) = chosen else {
        let _ = rd
            .stream
            .write_all(&encode_method_choice(Method::NO_ACCEPTABLE))
            .await;
        let offered: Vec<String> = greeting
            .methods
            .iter()
            .map(|m| format!("{:#04x}", m.0))
            .collect();
        return Err(Refusal::new(format!(
            "no acceptable authentication method (client offered {}; server accepts {})",
            offered.join(", "),
            if methods.is_empty() {
                "none: no socksmethod configured".to_string()
            } else {
                methods
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    };
    let wire = if method == AuthMethod::Username {
        Method::USERNAME
    } else {
        Method::NONE
    };
    write(rd.stream, &encode_method_choice(wire)).await?;
    let mut user = None;
    if method == AuthMethod::Username {
        let up = match rd.next(decode_userpass).await? {
            Ok(up) => up,
            Err(e) => {
                let _ = rd.stream.write_all(&encode_userpass_status(false)).await;
                return Err(Refusal::new(format!("bad username/password request: {e}")));
            }
        };
        let name = String::from_utf8_lossy(&up.username).into_owned();
        let verdict = match passwords {
            Some(p) => {
                let p = Arc::clone(p);
                tokio::task::spawn_blocking(move || p.check(&up.username, &up.password))
                    .await
                    .unwrap_or(Verdict::WrongPassword)
            }
            None => Verdict::UnknownUser,
        };
        if verdict != Verdict::Accepted {
            let _ = rd.stream.write_all(&encode_userpass_status(false)).await;
            let why = if verdict == Verdict::UnknownUser {
                "unknown user"
            } else {
                "password mismatch"
            };
            return Err(Refusal::new(format!(
                "username/password authentication failed for user \"{}\": {why}",
                traffic_log::vis::encode(name.as_bytes())
            )));
        }
        write(rd.stream, &encode_userpass_status(true)).await?;
        user = Some(name);
    }
    let request = match rd.next(decode_request).await? {
        Ok(r) => r,
        Err(e) => {
            let mut out = Vec::with_capacity(10);
            encode_reply(&Reply::failure(e.reply_code()), &mut out);
            let _ = rd.stream.write_all(&out).await;
            return Err(Refusal::new(format!("bad request: {e}")));
        }
    };
    Ok(Negotiated {
        method,
        user,
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

/// Sends a reply with `code` and the given bound address.
pub(crate) async fn reply(
    stream: &mut TcpStream,
    code: ReplyCode,
    bound: std::net::SocketAddr,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(22);
    encode_reply(&Reply { code, bound }, &mut out);
    stream.write_all(&out).await
}
