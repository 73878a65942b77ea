//! SOCKS wire formats, with no I/O.
//!
//! This crate owns the bytes of the SOCKS protocol: the SOCKS5 method greeting and
//! choice (RFC 1928 §3), the username/password sub-negotiation (RFC 1929), the SOCKS5
//! request and reply (RFC 1928 §4–6), the UDP request header (§7), SOCKS4 and SOCKS4a,
//! and the client side of each for chaining through an upstream proxy. Every decoder is incremental: given the
//! bytes received so far it answers [`Decoded::Done`] with the message and how many
//! bytes it used, [`Decoded::NeedMore`] with how many bytes it needs at least, or a
//! [`ProtoError`] that names what was wrong. Decoders never panic, whatever the
//! input; the connection layer is a loop of "read more, call decode".
//!
//! Each [`ProtoError`] maps to the SOCKS5 reply code the server must send
//! ([`ProtoError::reply_code`]), so that mapping lives in one place.
#![forbid(unsafe_code)]

mod auth;
mod client;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod request;
mod socks4;
mod udp;

pub use auth::{
    decode_greeting, decode_userpass, encode_method_choice, encode_userpass_status, Greeting,
    Method, UserPass,
};
pub use client::{
    decode_method_choice, decode_reply, decode_reply4, decode_userpass_status, encode_greeting,
    encode_request, encode_request4, encode_userpass,
};
pub use error::ProtoError;
pub use request::{decode_request, encode_reply, Command, Host, Reply, ReplyCode, Request, Target};
pub use socks4::{decode_request4, encode_reply4, Command4, Reply4, Request4, SOCKS4};
pub use udp::{decode_udp, encode_udp, UdpDatagram};

/// The SOCKS protocol version byte of SOCKS5.
pub const SOCKS5: u8 = 0x05;

/// The result of feeding bytes to an incremental decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// A whole message was decoded from the first `used` bytes.
    Done { msg: T, used: usize },
    /// The buffer holds a prefix of a message; at least `at_least` bytes are needed in all.
    NeedMore { at_least: usize },
}

impl<T> Decoded<T> {
    /// The message, if one was decoded.
    pub fn done(self) -> Option<T> {
        match self {
            Self::Done { msg, .. } => Some(msg),
            Self::NeedMore { .. } => None,
        }
    }
}

#[cfg(test)]
mod prefix_tests {
    //! Every decoder is fed every prefix of valid messages: a prefix must ask for more,
    //! never fail and never panic.
    use super::*;

    fn check_all_prefixes<T: std::fmt::Debug>(
        bytes: &[u8],
        decode: impl Fn(&[u8]) -> Result<Decoded<T>, ProtoError>,
    ) {
        for n in 0..bytes.len() {
            match decode(&bytes[..n]) {
                Ok(Decoded::NeedMore { at_least }) => {
                    assert!(at_least > n, "prefix {n}: asks for {at_least}")
                }
                other => panic!("prefix of {n} bytes gave {other:?}"),
            }
        }
        match decode(bytes) {
            Ok(Decoded::Done { used, .. }) => assert_eq!(used, bytes.len()),
            other => panic!("whole message gave {other:?}"),
        }
    }

    #[test]
    fn greetings_requests_and_auth_decode_from_every_prefix() {
        // curl --socks5 offers no-auth (and username when given --proxy-user).
        check_all_prefixes(&[0x05, 0x01, 0x00], decode_greeting);
        check_all_prefixes(&[0x05, 0x02, 0x00, 0x02], decode_greeting);
        check_all_prefixes(b"\x01\x05alice\x06secret", decode_userpass);
        check_all_prefixes(&[5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90], decode_request);
        check_all_prefixes(b"\x05\x01\x00\x03\x09localhost\x00\x50", decode_request);
        let mut v6 = vec![5, 1, 0, 4];
        v6.extend_from_slice(&[0; 15]);
        v6.extend_from_slice(&[1, 0x01, 0xbb]);
        check_all_prefixes(&v6, decode_request);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator stands in for the fuzzer in ordinary runs.
        let mut state: u32 = 0x1234_5678;
        for _ in 0..20_000 {
            let len = (state % 40) as usize;
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                buf.push(if state.is_multiple_of(3) {
                    5
                } else {
                    state as u8
                });
            }
            let _ = decode_greeting(&buf);
            let _ = decode_userpass(&buf);
            let _ = decode_request(&buf);
            let _ = decode_request4(&buf);
            let _ = decode_udp(&buf);
            let _ = decode_reply(&buf);
            let _ = decode_reply4(&buf);
        }
    }
}
