//! Decoding errors and the SOCKS5 reply each one calls for.

use crate::ReplyCode;

/// What was wrong with bytes received from a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The first byte was not the expected protocol version.
    #[error("unsupported SOCKS version {got:#04x} (expected {expected:#04x})")]
    BadVersion { got: u8, expected: u8 },
    /// A greeting that offers no authentication method at all.
    #[error("greeting offers no authentication method")]
    NoMethods,
    /// The RFC 1929 sub-negotiation version byte was not 0x01.
    #[error("unsupported username/password version {0:#04x} (expected 0x01)")]
    BadAuthVersion(u8),
    /// An RFC 1929 username of zero length.
    #[error("empty username")]
    EmptyUsername,
    /// The address type byte of a request is not IPv4, IPv6 or domain name.
    #[error("unsupported address type {0:#04x}")]
    BadAddressType(u8),
    /// A domain-name target of zero length.
    #[error("empty domain name")]
    EmptyDomain,
    /// A domain-name target with bytes that cannot be part of a host name.
    #[error("domain name has invalid byte {0:#04x}")]
    BadDomainByte(u8),
    /// A SOCKS4 user id or host name longer than the server accepts.
    #[error("field longer than {0} bytes")]
    FieldTooLong(usize),
    /// A datagram shorter than its header says.
    #[error("truncated datagram of {0} bytes")]
    Truncated(usize),
}

impl ProtoError {
    /// The SOCKS5 reply code a server sends for this error before closing.
    pub fn reply_code(&self) -> ReplyCode {
        match self {
            Self::BadAddressType(_) => ReplyCode::AddressTypeNotSupported,
            Self::EmptyDomain | Self::BadDomainByte(_) => ReplyCode::HostUnreachable,
            _ => ReplyCode::GeneralFailure,
        }
    }
}
