//! The SOCKS5 UDP request header (RFC 1928 §7).
//!
//! ```text
//! +----+------+------+----------+----------+----------+
//! |RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
//! +----+------+------+----------+----------+----------+
//! | 2  |  1   |  1   | Variable |    2     | Variable |
//! +----+------+------+----------+----------+----------+
//! ```
//! A datagram is whole or nothing: a truncated header is an error, not "need more".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::{Host, ProtoError, Target};

/// A decoded UDP datagram from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// The FRAG field; servers that do not reassemble drop anything but 0.
    pub frag: u8,
    /// Where the payload goes.
    pub target: Target,
    /// The payload.
    pub data: &'a [u8],
    /// Length of the header.
    pub header_len: usize,
}

/// Decodes a client datagram.
pub fn decode_udp(buf: &[u8]) -> Result<UdpDatagram<'_>, ProtoError> {
    let truncated = ProtoError::Truncated(buf.len());
    if buf.len() < 4 {
        return Err(truncated);
    }
    let frag = buf[2];
    let (host, end) = match buf[3] {
        0x01 => {
            let a = buf.get(4..8).ok_or(truncated.clone())?;
            (
                Host::Ip(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))),
                8,
            )
        }
        0x04 => {
            let a = buf.get(4..20).ok_or(truncated.clone())?;
            let mut o = [0u8; 16];
            o.copy_from_slice(a);
            (Host::Ip(IpAddr::V6(Ipv6Addr::from(o))), 20)
        }
        0x03 => {
            let len = usize::from(*buf.get(4).ok_or(truncated.clone())?);
            if len == 0 {
                return Err(ProtoError::EmptyDomain);
            }
            let name = buf.get(5..5 + len).ok_or(truncated.clone())?;
            if let Some(&bad) = name.iter().find(|b| !b.is_ascii_graphic()) {
                return Err(ProtoError::BadDomainByte(bad));
            }
            (
                Host::Domain(name.iter().map(|&b| char::from(b)).collect()),
                5 + len,
            )
        }
        other => return Err(ProtoError::BadAddressType(other)),
    };
    let port = buf.get(end..end + 2).ok_or(truncated)?;
    let port = u16::from_be_bytes([port[0], port[1]]);
    Ok(UdpDatagram {
        frag,
        target: Target { host, port },
        data: &buf[end + 2..],
        header_len: end + 2,
    })
}

/// Appends a header for a reply from `from` to `out` (FRAG 0), then the payload.
pub fn encode_udp(from: SocketAddr, data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 0, 0]);
    crate::request::encode_socket_addr(from, out);
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut out = Vec::new();
        encode_udp("10.0.0.1:53".parse().unwrap(), b"abcd", &mut out);
        assert_eq!(out.len(), 14);
        let d = decode_udp(&out).unwrap();
        assert_eq!(
            (d.frag, d.target.port, d.data, d.header_len),
            (0, 53, &b"abcd"[..], 10)
        );
        for n in 0..10 {
            assert!(decode_udp(&out[..n]).is_err(), "{n}");
        }
        let d = decode_udp(b"\x00\x00\x01\x03\x04host\x00\x07x").unwrap();
        assert_eq!(
            (d.frag, d.target.host.to_string(), d.data),
            (1, "host".to_string(), &b"x"[..])
        );
        assert_eq!(
            decode_udp(b"\x00\x00\x00\x09"),
            Err(ProtoError::BadAddressType(9))
        );
        let mut v6 = Vec::new();
        encode_udp("[::1]:9".parse().unwrap(), b"", &mut v6);
        assert_eq!(decode_udp(&v6).unwrap().target.host.to_string(), "::1");
    }
}
