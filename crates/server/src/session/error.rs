//! Why a request was not carried out, in one place: each [`RequestError`] knows the reply
//! code the client gets ([`RequestError::reply`]) and, as its `Display`, the description
//! its log lines carry in Dante 1.4.2's words (`sockd_request.c`, `sockd_negotiate.c`);
//! the client rule's line for an error is [`RequestError::not_performed`]. A CONNECT
//! that failed at the peer is answered by [`connect_reply`] and logged by its summary.

use std::io;
use std::net::IpAddr;

use socks_proto::ReplyCode;
use traffic_log::Endpoint;

use crate::chain::ChainFailure;
use crate::connect::{ConnectError, Stage};
use crate::errno_text;
use crate::resolve::ResolveError;

/// A request refused or failed before its command ran, or a BIND's wait cut short.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// A SOCKS4 command byte that is not CONNECT or BIND.
    #[error("unrecognized v4 command: {0}")]
    UnknownV4Command(u8),
    /// A SOCKS5 command byte not carried out (a SOCKS5 one is refused while negotiating).
    #[error("unknown socks_v5 command: {0}")]
    UnknownV5Command(u8),
    /// No socks rule passed it: rule `rule`, or the default rule #0 when none matched.
    #[error(
        "blocked by higher-level socks-rule #{rule}{}",
        if *.unmatched { ": no rules matched; using default block rule" } else { "" }
    )]
    Blocked { rule: u32, unmatched: bool },
    /// `management.client-auth`: an operator denied it, or none answered in time.
    #[error("denied by the management interface: {0}")]
    OperatorDenied(String),
    /// The requested name did not resolve (`host` as requested).
    #[error("could not resolve hostname \"{host}\": {error}")]
    Unresolved { host: String, error: ResolveError },
    /// No socket, or no bind to the external address, before any connect: the proxy's
    /// own failure (`bindexternaladdr()`).
    #[error(
        "could not bind address to use on external side: {}: {}",
        local_stage(*.stage),
        errno_text(.error)
    )]
    ExternalBind { stage: Stage, error: io::Error },
    /// The upstream proxy of a `route` failed.
    #[error("serverchain failed: {0}")]
    Chain(ChainFailure),
    /// A BIND's listening socket could not be made.
    #[error("could not bind {ip}: {}", errno_text(.error))]
    BindListen { ip: IpAddr, error: io::Error },
    /// The client closed the control connection of a waiting BIND.
    #[error("eof from client")]
    BindClientEof,
    /// An error, or bytes (`no system error`), on the control connection of a waiting
    /// BIND.
    #[error("receiving request from client failed ({0})")]
    BindClientError(String),
    /// A `bindreply` rule refused the host that connected to the bound port.
    #[error("bind-reply from {from} blocked by socks-rule #{rule}")]
    BindReplyBlocked { from: Endpoint, rule: u32 },
    /// A UDP association's client-side socket could not be made.
    #[error("could not bind a UDP socket: {}", errno_text(.0))]
    UdpSocket(io::Error),
}

/// Dante's words for a local failure's stage.
fn local_stage(stage: Stage) -> &'static str {
    match stage {
        Stage::Socket => "could not create socket",
        // Connect is not a local failure; Dante has no words for it here.
        Stage::Bind | Stage::Connect => "failed to bind address on external side",
    }
}

impl RequestError {
    /// What the client is answered; `None` when it is gone.
    pub(crate) fn reply(&self) -> Option<ReplyCode> {
        Some(match self {
            Self::UnknownV4Command(_) | Self::UnknownV5Command(_) => ReplyCode::CommandNotSupported,
            Self::Blocked { .. } | Self::OperatorDenied(_) | Self::BindReplyBlocked { .. } => {
                ReplyCode::NotAllowed
            }
            Self::Unresolved { .. } => ReplyCode::HostUnreachable,
            // Dante answers "network unreachable" for a bind to the external address.
            Self::ExternalBind { .. } => ReplyCode::NetworkUnreachable,
            Self::Chain(failure) => failure.reply(),
            Self::BindListen { .. } | Self::BindClientError(_) | Self::UdpSocket(_) => {
                ReplyCode::GeneralFailure
            }
            Self::BindClientEof => return None,
        })
    }

    /// The socks rule's own reason on its block line: Dante's for the default rule #0.
    pub(crate) fn rule_reason(&self) -> Option<&'static str> {
        match self {
            Self::Blocked {
                unmatched: true, ..
            } => Some("no rules matched; using default block rule"),
            _ => None,
        }
    }

    /// The client rule's line for an error: `request was not performed due to error:
    /// DESC`.
    pub(crate) fn not_performed(&self) -> String {
        format!("request was not performed due to error: {self}")
    }

    /// The local failure of a connect attempt (no socket, no bind), `None` for one that
    /// failed at the peer.
    pub(crate) fn local(ce: ConnectError) -> Result<Self, ConnectError> {
        match ce.stage {
            Stage::Socket | Stage::Bind => Ok(Self::ExternalBind {
                stage: ce.stage,
                error: ce.error,
            }),
            Stage::Connect => Err(ce),
        }
    }
}

/// The reply to a CONNECT that failed at the peer (or timed out).
pub(crate) fn connect_reply(ce: &ConnectError) -> ReplyCode {
    if ce.timed_out {
        return ReplyCode::TtlExpired;
    }
    match ce.error.raw_os_error() {
        Some(libc::ECONNREFUSED) => ReplyCode::ConnectionRefused,
        Some(libc::ENETUNREACH | libc::ENETDOWN) => ReplyCode::NetworkUnreachable,
        Some(libc::EHOSTUNREACH | libc::EHOSTDOWN) => ReplyCode::HostUnreachable,
        Some(libc::ETIMEDOUT) => ReplyCode::TtlExpired,
        _ => ReplyCode::GeneralFailure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are Dante's (the golden transcripts and the differential test check
    /// them end to end); the codes are what each failure is answered.
    #[test]
    fn each_error_has_its_reply_and_words() {
        let refused = io::Error::from_raw_os_error(libc::EADDRNOTAVAIL);
        let cases: Vec<(RequestError, Option<ReplyCode>, &str)> = vec![
            (
                RequestError::UnknownV4Command(9),
                Some(ReplyCode::CommandNotSupported),
                "unrecognized v4 command: 9",
            ),
            (
                RequestError::Blocked {
                    rule: 0,
                    unmatched: true,
                },
                Some(ReplyCode::NotAllowed),
                "blocked by higher-level socks-rule #0: no rules matched; using default block rule",
            ),
            (
                RequestError::Blocked {
                    rule: 3,
                    unmatched: false,
                },
                Some(ReplyCode::NotAllowed),
                "blocked by higher-level socks-rule #3",
            ),
            (
                RequestError::ExternalBind {
                    stage: Stage::Bind,
                    error: refused,
                },
                Some(ReplyCode::NetworkUnreachable),
                "could not bind address to use on external side: failed to bind address on external side: Cannot assign requested address",
            ),
            (RequestError::BindClientEof, None, "eof from client"),
            (
                RequestError::BindClientError("no system error".into()),
                Some(ReplyCode::GeneralFailure),
                "receiving request from client failed (no system error)",
            ),
        ];
        for (e, reply, text) in cases {
            assert_eq!((e.reply(), e.to_string().as_str()), (reply, text));
        }
        assert_eq!(
            RequestError::UnknownV5Command(9).not_performed(),
            "request was not performed due to error: unknown socks_v5 command: 9"
        );
    }
}
