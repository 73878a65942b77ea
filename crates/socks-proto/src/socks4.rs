//! SOCKS4 and SOCKS4a requests and replies.
//!
//! ```text
//! request:  VN=4 | CD | DSTPORT (2) | DSTIP (4) | USERID ... 0x00 [| HOSTNAME ... 0x00]
//! reply:    VN=0 | CD | DSTPORT (2) | DSTIP (4)
//! ```
//! SOCKS4a: a DSTIP of 0.0.0.x with x ≠ 0 means a host name follows the user id.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::{Decoded, Host, ProtoError, Target};

/// The SOCKS protocol version byte of SOCKS4.
pub const SOCKS4: u8 = 0x04;

/// Longest user id or host name accepted (the protocol sets no limit).
const MAX_FIELD: usize = 255;

/// A SOCKS4 command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command4 {
    /// CD = 1.
    Connect,
    /// CD = 2.
    Bind,
    /// Anything else.
    Other(u8),
}

/// A SOCKS4 or SOCKS4a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request4 {
    /// What the client asks for.
    pub command: Command4,
    /// Where to: an IPv4 address, or (SOCKS4a) a host name.
    pub target: Target,
    /// The USERID field, as sent.
    pub user_id: Vec<u8>,
    /// Whether the request used the SOCKS4a host-name extension.
    pub socks4a: bool,
}

/// Decodes a SOCKS4/4a request.
pub fn decode_request4(buf: &[u8]) -> Result<Decoded<Request4>, ProtoError> {
    match buf.first() {
        None => return Ok(Decoded::NeedMore { at_least: 9 }),
        Some(&v) if v != SOCKS4 => {
            return Err(ProtoError::BadVersion {
                got: v,
                expected: SOCKS4,
            })
        }
        Some(_) => {}
    }
    if buf.len() < 9 {
        return Ok(Decoded::NeedMore { at_least: 9 });
    }
    let command = match buf[1] {
        1 => Command4::Connect,
        2 => Command4::Bind,
        other => Command4::Other(other),
    };
    let port = u16::from_be_bytes([buf[2], buf[3]]);
    let ip = Ipv4Addr::new(buf[4], buf[5], buf[6], buf[7]);
    let Some(uid_len) = buf[8..].iter().position(|&b| b == 0) else {
        return too_long_or_more(buf.len() - 8, buf.len() + 1);
    };
    let user_id = buf[8..8 + uid_len].to_vec();
    let mut used = 8 + uid_len + 1;
    let socks4a = ip.octets()[..3] == [0, 0, 0] && ip.octets()[3] != 0;
    let host = if socks4a {
        let rest = &buf[used..];
        let Some(name_len) = rest.iter().position(|&b| b == 0) else {
            return too_long_or_more(rest.len(), buf.len() + 1);
        };
        if name_len == 0 {
            return Err(ProtoError::EmptyDomain);
        }
        let name = &rest[..name_len];
        if let Some(&bad) = name.iter().find(|b| !b.is_ascii_graphic()) {
            return Err(ProtoError::BadDomainByte(bad));
        }
        used += name_len + 1;
        Host::Domain(name.iter().map(|&b| char::from(b)).collect())
    } else {
        Host::Ip(ip.into())
    };
    Ok(Decoded::Done {
        msg: Request4 {
            command,
            target: Target { host, port },
            user_id,
            socks4a,
        },
        used,
    })
}

fn too_long_or_more<T>(field_so_far: usize, at_least: usize) -> Result<Decoded<T>, ProtoError> {
    if field_so_far > MAX_FIELD {
        Err(ProtoError::FieldTooLong(MAX_FIELD))
    } else {
        Ok(Decoded::NeedMore { at_least })
    }
}

/// A SOCKS4 reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply4 {
    /// 0x5A request granted.
    Granted,
    /// 0x5B request rejected or failed.
    Rejected,
    /// 0x5C rejected: the client's identd could not be reached.
    NoIdentd,
    /// 0x5D rejected: identd reported a different user id.
    IdentMismatch,
}

/// Encodes a SOCKS4 reply with the given address.
pub fn encode_reply4(code: Reply4, addr: SocketAddrV4) -> [u8; 8] {
    let cd = match code {
        Reply4::Granted => 0x5a,
        Reply4::Rejected => 0x5b,
        Reply4::NoIdentd => 0x5c,
        Reply4::IdentMismatch => 0x5d,
    };
    let [p0, p1] = addr.port().to_be_bytes();
    let [a, b, c, d] = addr.ip().octets();
    [0, cd, p0, p1, a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socks4_and_4a() {
        let r = decode_request4(b"\x04\x01\x00\x50\x7f\x00\x00\x01bob\x00")
            .unwrap()
            .done()
            .unwrap();
        assert_eq!(r.command, Command4::Connect);
        assert_eq!(r.target.host, Host::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(r.user_id, b"bob");
        assert!(!r.socks4a);
        let r = decode_request4(b"\x04\x02\x01\xbb\x00\x00\x00\x01\x00example.org\x00")
            .unwrap()
            .done()
            .unwrap();
        assert_eq!(r.command, Command4::Bind);
        assert_eq!(r.target.host, Host::Domain("example.org".into()));
        assert_eq!(r.target.port, 443);
        assert!(r.socks4a);
        let whole = b"\x04\x01\x00\x50\x00\x00\x00\x09u\x00h\x00";
        for n in 0..whole.len() {
            assert!(
                matches!(decode_request4(&whole[..n]), Ok(Decoded::NeedMore { .. })),
                "{n}"
            );
        }
        assert_eq!(
            decode_request4(b"\x04\x01\x00\x50\x00\x00\x00\x09u\x00\x00"),
            Err(ProtoError::EmptyDomain)
        );
        assert!(matches!(
            decode_request4(
                &[4, 1, 0, 80, 1, 2, 3, 4]
                    .iter()
                    .copied()
                    .chain([b'a'; 300])
                    .collect::<Vec<_>>()
            ),
            Err(ProtoError::FieldTooLong(255))
        ));
        assert_eq!(
            encode_reply4(Reply4::Rejected, "1.2.3.4:80".parse().unwrap()),
            [0, 0x5b, 0, 80, 1, 2, 3, 4]
        );
    }
}
