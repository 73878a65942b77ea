//! Method negotiation (RFC 1928 §3) and username/password authentication (RFC 1929).

use crate::{Decoded, ProtoError, SOCKS5};

/// An authentication method number, as offered by a client or chosen by a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u8);

impl Method {
    /// X'00' NO AUTHENTICATION REQUIRED.
    pub const NONE: Self = Self(0x00);
    /// X'01' GSSAPI.
    pub const GSSAPI: Self = Self(0x01);
    /// X'02' USERNAME/PASSWORD.
    pub const USERNAME: Self = Self(0x02);
    /// X'FF' NO ACCEPTABLE METHODS.
    pub const NO_ACCEPTABLE: Self = Self(0xff);
}

/// The client's first message.
///
/// ```text
/// +----+----------+----------+
/// |VER | NMETHODS | METHODS  |
/// +----+----------+----------+
/// | 1  |    1     | 1 to 255 |
/// +----+----------+----------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The methods the client offers, in the order it sent them.
    pub methods: Vec<Method>,
}

/// Decodes a SOCKS5 greeting.
pub fn decode_greeting(buf: &[u8]) -> Result<Decoded<Greeting>, ProtoError> {
    let Some(&ver) = buf.first() else {
        return Ok(Decoded::NeedMore { at_least: 2 });
    };
    if ver != SOCKS5 {
        return Err(ProtoError::BadVersion {
            got: ver,
            expected: SOCKS5,
        });
    }
    let Some(&n) = buf.get(1) else {
        return Ok(Decoded::NeedMore { at_least: 2 });
    };
    if n == 0 {
        return Err(ProtoError::NoMethods);
    }
    let used = 2 + usize::from(n);
    let Some(methods) = buf.get(2..used) else {
        return Ok(Decoded::NeedMore { at_least: used });
    };
    let methods = methods.iter().map(|&m| Method(m)).collect();
    Ok(Decoded::Done {
        msg: Greeting { methods },
        used,
    })
}

/// Encodes the server's method choice (`VER METHOD`).
pub fn encode_method_choice(method: Method) -> [u8; 2] {
    [SOCKS5, method.0]
}

/// The RFC 1929 username/password request.
///
/// ```text
/// +----+------+----------+------+----------+
/// |VER | ULEN |  UNAME   | PLEN |  PASSWD  |
/// +----+------+----------+------+----------+
/// | 1  |  1   | 1 to 255 |  1   | 1 to 255 |
/// +----+------+----------+------+----------+
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct UserPass {
    /// The user name, as raw bytes.
    pub username: Vec<u8>,
    /// The password, as raw bytes. Never printed: `Debug` hides it.
    pub password: Vec<u8>,
}

impl std::fmt::Debug for UserPass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPass")
            .field("username", &String::from_utf8_lossy(&self.username))
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Decodes an RFC 1929 username/password request. A zero-length password is accepted
/// (some clients send one); a zero-length username is not.
///
/// The whole message is read before it is judged: a wrong VER or an empty UNAME is an
/// error only once ULEN, UNAME, PLEN and PASSWD have all arrived, so that the server
/// answers a complete message (and a client cut short gets no answer), as at every
/// other stage of the handshake.
pub fn decode_userpass(buf: &[u8]) -> Result<Decoded<UserPass>, ProtoError> {
    let Some(&ulen) = buf.get(1) else {
        return Ok(Decoded::NeedMore { at_least: 2 });
    };
    let uend = 2 + usize::from(ulen);
    let Some(&plen) = buf.get(uend) else {
        return Ok(Decoded::NeedMore { at_least: uend + 1 });
    };
    let used = uend + 1 + usize::from(plen);
    let Some(password) = buf.get(uend + 1..used) else {
        return Ok(Decoded::NeedMore { at_least: used });
    };
    if buf[0] != 0x01 {
        return Err(ProtoError::BadAuthVersion(buf[0]));
    }
    if ulen == 0 {
        return Err(ProtoError::EmptyUsername);
    }
    Ok(Decoded::Done {
        msg: UserPass {
            username: buf[2..uend].to_vec(),
            password: password.to_vec(),
        },
        used,
    })
}

/// Encodes the RFC 1929 status reply: 0x00 success, 0x01 failure.
pub fn encode_userpass_status(ok: bool) -> [u8; 2] {
    [0x01, if ok { 0x00 } else { 0x01 }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_with_two_methods() {
        let d = decode_greeting(&[5, 2, 0, 2, 0xaa]).unwrap();
        assert_eq!(
            d,
            Decoded::Done {
                msg: Greeting {
                    methods: vec![Method::NONE, Method::USERNAME]
                },
                used: 4
            }
        );
    }

    #[test]
    fn greeting_errors() {
        assert_eq!(
            decode_greeting(&[4, 1, 0]),
            Err(ProtoError::BadVersion {
                got: 4,
                expected: 5
            })
        );
        assert_eq!(decode_greeting(&[5, 0]), Err(ProtoError::NoMethods));
        // A method count larger than the bytes sent waits for the rest.
        assert_eq!(
            decode_greeting(&[5, 200, 0]),
            Ok(Decoded::NeedMore { at_least: 202 })
        );
    }

    /// A message with a bad VER or an empty UNAME is judged only when it is complete:
    /// every shorter prefix asks for more.
    #[test]
    fn bad_userpass_is_an_error_only_when_complete() {
        let mut empty_name = vec![0x01, 0x00, 0x73];
        empty_name.extend_from_slice(&[b'o'; 0x73]);
        let bad_version = b"\x02\x05alice\x02pw";
        for (msg, err) in [
            (&empty_name[..], ProtoError::EmptyUsername),
            (&bad_version[..], ProtoError::BadAuthVersion(2)),
        ] {
            for n in 0..msg.len() {
                match decode_userpass(&msg[..n]) {
                    Ok(Decoded::NeedMore { at_least }) => assert!(at_least > n),
                    other => panic!("prefix of {n} bytes gave {other:?}"),
                }
            }
            assert_eq!(decode_userpass(msg), Err(err));
        }
    }

    #[test]
    fn userpass_round() {
        let d = decode_userpass(b"\x01\x01a\x00").unwrap().done().unwrap();
        assert_eq!(d.username, b"a");
        assert!(d.password.is_empty());
        assert!(!format!("{d:?}").contains("password: []"));
        assert_eq!(
            decode_userpass(b"\x05\x01a\x00"),
            Err(ProtoError::BadAuthVersion(5))
        );
        assert_eq!(
            decode_userpass(b"\x01\x00\x00"),
            Err(ProtoError::EmptyUsername)
        );
        assert_eq!(encode_userpass_status(false), [1, 1]);
        assert_eq!(encode_method_choice(Method::NO_ACCEPTABLE), [5, 0xff]);
    }
}
