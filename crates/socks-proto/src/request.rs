//! The SOCKS5 request and reply (RFC 1928 §4–6).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::{Decoded, ProtoError, SOCKS5};

/// The command of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// X'01' CONNECT.
    Connect,
    /// X'02' BIND.
    Bind,
    /// X'03' UDP ASSOCIATE.
    UdpAssociate,
    /// Any other command byte; the server answers it with [`ReplyCode::CommandNotSupported`].
    Other(u8),
}

impl Command {
    fn from_u8(b: u8) -> Self {
        match b {
            0x01 => Self::Connect,
            0x02 => Self::Bind,
            0x03 => Self::UdpAssociate,
            other => Self::Other(other),
        }
    }
}

/// The host part of a request's destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 address (ATYP X'01' or X'04').
    Ip(IpAddr),
    /// A domain name (ATYP X'03'), as sent, to be resolved by the server.
    Domain(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => ip.fmt(f),
            Self::Domain(name) => f.write_str(name),
        }
    }
}

/// A destination: host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The host to reach.
    pub host: Host,
    /// The port, in host byte order.
    pub port: u16,
}

/// A client's request.
///
/// ```text
/// +----+-----+-------+------+----------+----------+
/// |VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
/// +----+-----+-------+------+----------+----------+
/// | 1  |  1  | X'00' |  1   | Variable |    2     |
/// +----+-----+-------+------+----------+----------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What the client asks for.
    pub command: Command,
    /// Where to.
    pub target: Target,
}

/// Decodes a SOCKS5 request. The RSV byte is ignored, as most servers do.
pub fn decode_request(buf: &[u8]) -> Result<Decoded<Request>, ProtoError> {
    if buf.len() < 5 {
        if let Some(&ver) = buf.first() {
            check_version(ver)?;
        }
        return Ok(Decoded::NeedMore { at_least: 5 });
    }
    check_version(buf[0])?;
    let command = Command::from_u8(buf[1]);
    let (addr_len, addr_start) = match buf[3] {
        0x01 => (4, 4),
        0x04 => (16, 4),
        0x03 => (usize::from(buf[4]), 5),
        other => return Err(ProtoError::BadAddressType(other)),
    };
    if buf[3] == 0x03 && addr_len == 0 {
        return Err(ProtoError::EmptyDomain);
    }
    let used = addr_start + addr_len + 2;
    if buf.len() < used {
        return Ok(Decoded::NeedMore { at_least: used });
    }
    let addr = &buf[addr_start..addr_start + addr_len];
    let host = match buf[3] {
        0x01 => Host::Ip(IpAddr::V4(Ipv4Addr::new(
            addr[0], addr[1], addr[2], addr[3],
        ))),
        0x04 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(addr);
            Host::Ip(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => Host::Domain(domain_name(addr)?),
    };
    let port = u16::from_be_bytes([buf[used - 2], buf[used - 1]]);
    Ok(Decoded::Done {
        msg: Request {
            command,
            target: Target { host, port },
        },
        used,
    })
}

fn check_version(ver: u8) -> Result<(), ProtoError> {
    if ver == SOCKS5 {
        Ok(())
    } else {
        Err(ProtoError::BadVersion {
            got: ver,
            expected: SOCKS5,
        })
    }
}

/// A host name may hold printable ASCII other than space; anything else is refused
/// so that it can be logged and matched without escaping surprises.
fn domain_name(bytes: &[u8]) -> Result<String, ProtoError> {
    if let Some(&bad) = bytes.iter().find(|b| !b.is_ascii_graphic()) {
        return Err(ProtoError::BadDomainByte(bad));
    }
    // All bytes are ASCII graphic characters, hence valid UTF-8.
    Ok(bytes.iter().map(|&b| char::from(b)).collect())
}

/// A SOCKS5 reply code (the REP field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyCode {
    /// X'00' succeeded.
    Succeeded,
    /// X'01' general SOCKS server failure.
    GeneralFailure,
    /// X'02' connection not allowed by ruleset.
    NotAllowed,
    /// X'03' network unreachable.
    NetworkUnreachable,
    /// X'04' host unreachable.
    HostUnreachable,
    /// X'05' connection refused.
    ConnectionRefused,
    /// X'06' TTL expired (also used for time-outs).
    TtlExpired,
    /// X'07' command not supported.
    CommandNotSupported,
    /// X'08' address type not supported.
    AddressTypeNotSupported,
    /// Any other value, so that decoding a reply is total.
    Other(u8),
}

impl ReplyCode {
    /// The byte on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Succeeded => 0x00,
            Self::GeneralFailure => 0x01,
            Self::NotAllowed => 0x02,
            Self::NetworkUnreachable => 0x03,
            Self::HostUnreachable => 0x04,
            Self::ConnectionRefused => 0x05,
            Self::TtlExpired => 0x06,
            Self::CommandNotSupported => 0x07,
            Self::AddressTypeNotSupported => 0x08,
            Self::Other(b) => b,
        }
    }
}

/// A server's reply: code and bound address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The REP field.
    pub code: ReplyCode,
    /// BND.ADDR and BND.PORT.
    pub bound: SocketAddr,
}

impl Reply {
    /// A failure reply with an all-zero IPv4 bound address.
    pub fn failure(code: ReplyCode) -> Self {
        Self {
            code,
            bound: SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }
}

/// Appends the encoded reply to `out`.
pub fn encode_reply(reply: &Reply, out: &mut Vec<u8>) {
    out.extend_from_slice(&[SOCKS5, reply.code.as_u8(), 0x00]);
    encode_socket_addr(reply.bound, out);
}

/// Appends `ATYP ADDR PORT` for an IPv4 or IPv6 socket address (replies, UDP headers).
pub(crate) fn encode_socket_addr(addr: SocketAddr, out: &mut Vec<u8>) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(0x01);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(0x04);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> Request {
        decode_request(buf).unwrap().done().unwrap()
    }

    #[test]
    fn decodes_each_address_type() {
        let r = done(&[5, 1, 0, 1, 10, 0, 0, 1, 0, 80]);
        assert_eq!(r.command, Command::Connect);
        assert_eq!(r.target.host, Host::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!(r.target.port, 80);
        let r = done(b"\x05\x01\x00\x03\x0bexample.org\x01\xbb");
        assert_eq!(r.target.host, Host::Domain("example.org".into()));
        assert_eq!(r.target.port, 443);
        let mut v6 = vec![5, 2, 0, 4];
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&[0, 21]);
        let r = done(&v6);
        assert_eq!(r.command, Command::Bind);
        assert_eq!(r.target.host.to_string(), "::1");
    }

    #[test]
    fn unknown_command_decodes_so_it_can_be_answered() {
        let r = done(&[5, 9, 0, 1, 1, 2, 3, 4, 0, 1]);
        assert_eq!(r.command, Command::Other(9));
    }

    #[test]
    fn bad_requests_map_to_reply_codes() {
        let e = decode_request(&[5, 1, 0, 7, 0, 0]).unwrap_err();
        assert_eq!(e.reply_code(), ReplyCode::AddressTypeNotSupported);
        let e = decode_request(&[5, 1, 0, 3, 0, 0, 80]).unwrap_err();
        assert_eq!(e, ProtoError::EmptyDomain);
        let e = decode_request(b"\x05\x01\x00\x03\x03a b\x00\x50").unwrap_err();
        assert_eq!(e, ProtoError::BadDomainByte(b' '));
        assert!(matches!(
            decode_request(&[4]),
            Err(ProtoError::BadVersion { got: 4, .. })
        ));
    }

    #[test]
    fn encodes_replies() {
        let mut out = Vec::new();
        encode_reply(
            &Reply {
                code: ReplyCode::Succeeded,
                bound: "127.0.0.1:1080".parse().unwrap(),
            },
            &mut out,
        );
        assert_eq!(out, [5, 0, 0, 1, 127, 0, 0, 1, 0x04, 0x38]);
        out.clear();
        encode_reply(&Reply::failure(ReplyCode::HostUnreachable), &mut out);
        assert_eq!(out, [5, 4, 0, 1, 0, 0, 0, 0, 0, 0]);
        out.clear();
        encode_reply(
            &Reply {
                code: ReplyCode::Succeeded,
                bound: "[::1]:80".parse().unwrap(),
            },
            &mut out,
        );
        assert_eq!(out.len(), 22);
        assert_eq!(out[3], 4);
    }
}
