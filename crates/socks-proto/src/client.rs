//! The client side of SOCKS: what a proxy sends to an upstream proxy when chaining, and
//! how it reads the answers. Same rules as the server side: incremental, no I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::{Command, Decoded, Host, Method, ProtoError, Reply, ReplyCode, Target, SOCKS4, SOCKS5};

/// `VER NMETHODS METHODS…`.
pub fn encode_greeting(methods: &[Method], out: &mut Vec<u8>) {
    out.push(SOCKS5);
    out.push(methods.len().min(255) as u8);
    out.extend(methods.iter().take(255).map(|m| m.0));
}

/// Decodes the server's method choice.
pub fn decode_method_choice(buf: &[u8]) -> Result<Decoded<Method>, ProtoError> {
    match buf {
        [] | [_] => Ok(Decoded::NeedMore { at_least: 2 }),
        [v, ..] if *v != SOCKS5 => Err(ProtoError::BadVersion {
            got: *v,
            expected: SOCKS5,
        }),
        [_, m, ..] => Ok(Decoded::Done {
            msg: Method(*m),
            used: 2,
        }),
    }
}

/// The RFC 1929 request; user and password are cut to 255 bytes.
pub fn encode_userpass(user: &[u8], password: &[u8], out: &mut Vec<u8>) {
    let (u, p) = (
        &user[..user.len().min(255)],
        &password[..password.len().min(255)],
    );
    out.push(0x01);
    out.push(u.len() as u8);
    out.extend_from_slice(u);
    out.push(p.len() as u8);
    out.extend_from_slice(p);
}

/// Decodes the RFC 1929 status: `true` for success.
pub fn decode_userpass_status(buf: &[u8]) -> Result<Decoded<bool>, ProtoError> {
    match buf {
        [] | [_] => Ok(Decoded::NeedMore { at_least: 2 }),
        [v, ..] if *v != 0x01 => Err(ProtoError::BadAuthVersion(*v)),
        [_, s, ..] => Ok(Decoded::Done {
            msg: *s == 0,
            used: 2,
        }),
    }
}

/// A SOCKS5 request.
pub fn encode_request(command: Command, target: &Target, out: &mut Vec<u8>) {
    let cmd = match command {
        Command::Connect => 1,
        Command::Bind => 2,
        Command::UdpAssociate => 3,
        Command::Other(b) => b,
    };
    out.extend_from_slice(&[SOCKS5, cmd, 0]);
    match &target.host {
        Host::Ip(IpAddr::V4(ip)) => {
            out.push(0x01);
            out.extend_from_slice(&ip.octets());
        }
        Host::Ip(IpAddr::V6(ip)) => {
            out.push(0x04);
            out.extend_from_slice(&ip.octets());
        }
        Host::Domain(name) => {
            let n = &name.as_bytes()[..name.len().min(255)];
            out.push(0x03);
            out.push(n.len() as u8);
            out.extend_from_slice(n);
        }
    }
    out.extend_from_slice(&target.port.to_be_bytes());
}

/// Decodes a SOCKS5 reply. A bound address given as a name is reported as 0.0.0.0.
pub fn decode_reply(buf: &[u8]) -> Result<Decoded<Reply>, ProtoError> {
    if buf.len() < 5 {
        if let Some(&v) = buf.first().filter(|&&v| v != SOCKS5) {
            return Err(ProtoError::BadVersion {
                got: v,
                expected: SOCKS5,
            });
        }
        return Ok(Decoded::NeedMore { at_least: 5 });
    }
    if buf[0] != SOCKS5 {
        return Err(ProtoError::BadVersion {
            got: buf[0],
            expected: SOCKS5,
        });
    }
    let (len, start) = match buf[3] {
        0x01 => (4, 4),
        0x04 => (16, 4),
        0x03 => (usize::from(buf[4]), 5),
        other => return Err(ProtoError::BadAddressType(other)),
    };
    let used = start + len + 2;
    if buf.len() < used {
        return Ok(Decoded::NeedMore { at_least: used });
    }
    let a = &buf[start..start + len];
    let ip = match buf[3] {
        0x01 => IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
        0x04 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(a);
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let port = u16::from_be_bytes([buf[used - 2], buf[used - 1]]);
    let code = match buf[1] {
        0 => ReplyCode::Succeeded,
        1 => ReplyCode::GeneralFailure,
        2 => ReplyCode::NotAllowed,
        3 => ReplyCode::NetworkUnreachable,
        4 => ReplyCode::HostUnreachable,
        5 => ReplyCode::ConnectionRefused,
        6 => ReplyCode::TtlExpired,
        7 => ReplyCode::CommandNotSupported,
        8 => ReplyCode::AddressTypeNotSupported,
        b => ReplyCode::Other(b),
    };
    Ok(Decoded::Done {
        msg: Reply {
            code,
            bound: SocketAddr::new(ip, port),
        },
        used,
    })
}

/// A SOCKS4 CONNECT (SOCKS4a when the target is a name).
pub fn encode_request4(target: &Target, user_id: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&[SOCKS4, 1]);
    out.extend_from_slice(&target.port.to_be_bytes());
    match &target.host {
        Host::Ip(IpAddr::V4(ip)) => out.extend_from_slice(&ip.octets()),
        _ => out.extend_from_slice(&[0, 0, 0, 1]),
    }
    out.extend(user_id.iter().filter(|&&b| b != 0));
    out.push(0);
    if let Host::Domain(name) = &target.host {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
    } else if let Host::Ip(IpAddr::V6(ip)) = &target.host {
        out.extend_from_slice(ip.to_string().as_bytes());
        out.push(0);
    }
}

/// Decodes a SOCKS4 reply: granted or not, and the address in it.
pub fn decode_reply4(buf: &[u8]) -> Result<Decoded<(bool, SocketAddr)>, ProtoError> {
    if buf.len() < 8 {
        return Ok(Decoded::NeedMore { at_least: 8 });
    }
    if buf[0] != 0 {
        return Err(ProtoError::BadVersion {
            got: buf[0],
            expected: 0,
        });
    }
    let addr = SocketAddr::from((
        [buf[4], buf[5], buf[6], buf[7]],
        u16::from_be_bytes([buf[2], buf[3]]),
    ));
    Ok(Decoded::Done {
        msg: (buf[1] == 0x5a, addr),
        used: 8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_request, decode_request4, encode_reply};

    #[test]
    fn client_messages_round_trip_with_the_server_side() {
        let t = Target {
            host: Host::Domain("example.org".into()),
            port: 443,
        };
        let mut out = Vec::new();
        encode_request(Command::Connect, &t, &mut out);
        assert_eq!(decode_request(&out).unwrap().done().unwrap().target, t);
        out.clear();
        encode_request4(&t, b"bob", &mut out);
        let r = decode_request4(&out).unwrap().done().unwrap();
        assert_eq!((r.target, r.user_id, r.socks4a), (t, b"bob".to_vec(), true));
        out.clear();
        encode_reply(
            &Reply {
                code: ReplyCode::ConnectionRefused,
                bound: "[::1]:9".parse().unwrap(),
            },
            &mut out,
        );
        for n in 0..out.len() {
            assert!(
                matches!(decode_reply(&out[..n]), Ok(Decoded::NeedMore { .. })),
                "{n}"
            );
        }
        let r = decode_reply(&out).unwrap().done().unwrap();
        assert_eq!((r.code, r.bound.port()), (ReplyCode::ConnectionRefused, 9));
        assert_eq!(
            decode_method_choice(&[5, 2]).unwrap().done(),
            Some(Method::USERNAME)
        );
        assert_eq!(decode_userpass_status(&[1, 1]).unwrap().done(), Some(false));
        assert_eq!(
            decode_reply4(&[0, 0x5a, 0, 80, 1, 2, 3, 4]).unwrap().done(),
            Some((true, "1.2.3.4:80".parse().unwrap()))
        );
        assert!(decode_reply(b"HTTP/1.1 400").is_err());
    }
}
