//! Fuzz target bodies (fuzz/ runs them under cargo-fuzz; tests/fuzz_corpus.rs replays
//! the corpus on stable). Each takes arbitrary bytes, runs a decoder and panics only
//! when a property every decoder promises is broken: no panic, `used` within the
//! input, `NeedMore` asking for more than there is, the same answer for any longer
//! input when a message is done (incremental), and re-encoding a decoded message
//! decoding to the same message.

use std::net::{IpAddr, SocketAddr};

use crate::{
    decode_greeting, decode_method_choice, decode_reply, decode_reply4, decode_request,
    decode_request4, decode_udp, decode_userpass, decode_userpass_status, encode_greeting,
    encode_request, encode_request4, encode_udp, encode_userpass, Command, Decoded, Host,
    ProtoError,
};

/// Checks the incremental contract of `decode` on `data` and returns its message.
fn incremental<T: Clone + PartialEq + std::fmt::Debug>(
    data: &[u8],
    decode: impl Fn(&[u8]) -> Result<Decoded<T>, ProtoError>,
) -> Option<(T, usize)> {
    match decode(data) {
        Ok(Decoded::Done { msg, used }) => {
            assert!(used <= data.len(), "used {used} of {}", data.len());
            // The bytes used decode alone to the same message.
            assert_eq!(
                decode(&data[..used]),
                Ok(Decoded::Done {
                    msg: msg.clone(),
                    used
                })
            );
            Some((msg, used))
        }
        Ok(Decoded::NeedMore { at_least }) => {
            assert!(at_least > data.len(), "need {at_least} of {}", data.len());
            None
        }
        Err(_) => None,
    }
}

/// SOCKS5 method greeting (RFC 1928 §3).
pub fn greeting(data: &[u8]) {
    if let Some((g, used)) = incremental(data, decode_greeting) {
        let mut out = Vec::new();
        encode_greeting(&g.methods, &mut out);
        assert_eq!(out, data[..used]);
    }
}

/// RFC 1929 username/password request.
pub fn userpass(data: &[u8]) {
    if let Some((up, used)) = incremental(data, decode_userpass) {
        let mut out = Vec::new();
        encode_userpass(&up.username, &up.password, &mut out);
        assert_eq!(out, data[..used]);
    }
}

/// SOCKS5 request (RFC 1928 §4).
pub fn request(data: &[u8]) {
    if let Some((req, _)) = incremental(data, decode_request) {
        if matches!(req.command, Command::Other(_)) {
            return;
        }
        let mut out = Vec::new();
        encode_request(req.command, &req.target, &mut out);
        assert_eq!(
            decode_request(&out),
            Ok(Decoded::Done {
                msg: req,
                used: out.len()
            })
        );
    }
}

/// SOCKS4 and SOCKS4a request.
pub fn request4(data: &[u8]) {
    if let Some((req, _)) = incremental(data, decode_request4) {
        // The encoder writes CONNECT requests with an IPv4 address or a name.
        if req.command != crate::Command4::Connect
            || matches!(req.target.host, Host::Ip(IpAddr::V6(_)))
        {
            return;
        }
        let mut out = Vec::new();
        encode_request4(&req.target, &req.user_id, &mut out);
        let again = decode_request4(&out);
        let Ok(Decoded::Done { msg, used }) = again else {
            panic!("re-encoded request does not decode: {again:?}");
        };
        assert_eq!(used, out.len());
        assert_eq!((msg.target, msg.user_id), (req.target, req.user_id));
    }
}

/// SOCKS5 UDP request header (RFC 1928 §7).
pub fn udp(data: &[u8]) {
    let Ok(d) = decode_udp(data) else { return };
    assert_eq!(d.header_len + d.data.len(), data.len());
    assert_eq!(d.data, &data[d.header_len..]);
    if let (Host::Ip(ip), 0) = (&d.target.host, d.frag) {
        let mut out = Vec::new();
        encode_udp(SocketAddr::new(*ip, d.target.port), d.data, &mut out);
        let again = decode_udp(&out).expect("a re-encoded datagram decodes");
        assert_eq!((again.target, again.data), (d.target.clone(), d.data));
    }
}

/// The replies a proxy reads from an upstream proxy when chaining: method choice,
/// RFC 1929 status, SOCKS5 reply, SOCKS4 reply.
pub fn client_replies(data: &[u8]) {
    incremental(data, decode_method_choice);
    incremental(data, decode_userpass_status);
    incremental(data, decode_reply);
    incremental(data, decode_reply4);
}
