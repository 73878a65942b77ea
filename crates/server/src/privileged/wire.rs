//! The messages between a process and its privileged helper, with no I/O.
//!
//! One request or reply per SOCK_SEQPACKET message (the socket keeps the boundaries);
//! a descriptor the helper opened travels beside its reply as SCM_RIGHTS. A request is
//! an opcode byte and its fields; a reply is `K` (done, maybe with a descriptor), `V`
//! and a verdict byte, or `E`, a big-endian errno and a message.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::passwd::Verdict;

/// The largest message either side sends: a path of PATH_MAX and a little more, or a
/// user and a password of 255 bytes each (RFC 1929).
pub(crate) const MAX_MESSAGE: usize = 4096 + 64;

/// What the process asks of its helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request<'a> {
    /// Open a file the configuration names for reading (the configuration itself, the
    /// password file).
    Read(&'a Path),
    /// Open a log file for appending, creating it.
    Append(&'a Path),
    /// Check a system user's password.
    CheckUser { user: &'a [u8], password: &'a [u8] },
    /// Read the configuration file again to learn the files it now names (a reload).
    Refresh,
    /// Remove the pid file and end (the process is exiting).
    Exit,
}

/// The helper's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Done; a descriptor comes with it for `Read` and `Append`.
    Done,
    /// A password check's outcome.
    Verdict(Verdict),
    /// Refused or failed, with the errno to report and why.
    Failed { errno: i32, message: String },
}

/// A message that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed privileged-helper message: {0}")]
pub(crate) struct Malformed(&'static str);

const VERDICTS: [Verdict; 6] = [
    Verdict::Accepted,
    Verdict::UnknownUser,
    Verdict::WrongPassword,
    Verdict::Locked,
    Verdict::Expired,
    Verdict::Unavailable,
];

impl Request<'_> {
    /// The message's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Read(p) => {
                out.push(b'R');
                out.extend_from_slice(p.as_os_str().as_bytes());
            }
            Self::Append(p) => {
                out.push(b'A');
                out.extend_from_slice(p.as_os_str().as_bytes());
            }
            Self::CheckUser { user, password } => {
                out.push(b'P');
                out.push(u8::try_from(user.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(&user[..user.len().min(255)]);
                out.extend_from_slice(&password[..password.len().min(255)]);
            }
            Self::Refresh => out.push(b'F'),
            Self::Exit => out.push(b'X'),
        }
        out
    }
}

/// Reads a request.
pub(crate) fn decode_request(msg: &[u8]) -> Result<Request<'_>, Malformed> {
    let (&op, rest) = msg.split_first().ok_or(Malformed("empty"))?;
    fn path(rest: &[u8]) -> Result<&Path, Malformed> {
        if rest.is_empty() || rest.contains(&0) {
            return Err(Malformed("bad path"));
        }
        Ok(Path::new(OsStr::from_bytes(rest)))
    }
    match op {
        b'R' => Ok(Request::Read(path(rest)?)),
        b'A' => Ok(Request::Append(path(rest)?)),
        b'P' => {
            let (&n, rest) = rest.split_first().ok_or(Malformed("no user length"))?;
            if rest.len() < usize::from(n) || rest.len() - usize::from(n) > 255 {
                return Err(Malformed("bad user or password length"));
            }
            let (user, password) = rest.split_at(usize::from(n));
            Ok(Request::CheckUser { user, password })
        }
        b'F' if rest.is_empty() => Ok(Request::Refresh),
        b'X' if rest.is_empty() => Ok(Request::Exit),
        _ => Err(Malformed("unknown request")),
    }
}

impl Reply {
    /// The message's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            Self::Done => vec![b'K'],
            Self::Verdict(v) => {
                let code = VERDICTS.iter().position(|x| x == v).unwrap_or(0);
                vec![b'V', code as u8]
            }
            Self::Failed { errno, message } => {
                let mut out = vec![b'E'];
                out.extend_from_slice(&errno.to_be_bytes());
                let text = message.as_bytes();
                out.extend_from_slice(&text[..text.len().min(MAX_MESSAGE - 5)]);
                out
            }
        }
    }
}

/// Reads a reply.
pub(crate) fn decode_reply(msg: &[u8]) -> Result<Reply, Malformed> {
    match msg {
        [b'K'] => Ok(Reply::Done),
        [b'V', code] => VERDICTS
            .get(usize::from(*code))
            .map(|v| Reply::Verdict(*v))
            .ok_or(Malformed("unknown verdict")),
        [b'E', a, b, c, d, text @ ..] => Ok(Reply::Failed {
            errno: i32::from_be_bytes([*a, *b, *c, *d]),
            message: String::from_utf8_lossy(text).into_owned(),
        }),
        _ => Err(Malformed("unknown reply")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_byte_for_byte() {
        let cases: [(Request<'_>, &[u8]); 5] = [
            (
                Request::Read(Path::new("/etc/danted.conf")),
                b"R/etc/danted.conf",
            ),
            (Request::Append(Path::new("/var/log/x")), b"A/var/log/x"),
            (
                Request::CheckUser {
                    user: b"alice",
                    password: b"s3:cret",
                },
                b"P\x05alices3:cret",
            ),
            (Request::Refresh, b"F"),
            (Request::Exit, b"X"),
        ];
        for (req, bytes) in cases {
            assert_eq!(req.encode(), bytes, "{req:?}");
            assert_eq!(decode_request(bytes).unwrap(), req);
        }
        // An empty password and a user of 255 bytes.
        let user = [b'u'; 255];
        let req = Request::CheckUser {
            user: &user,
            password: b"",
        };
        assert_eq!(decode_request(&req.encode()).unwrap(), req);
    }

    #[test]
    fn replies_round_trip() {
        let mut all = vec![
            Reply::Done,
            Reply::Failed {
                errno: 13,
                message: "not named by the configuration".into(),
            },
        ];
        all.extend(VERDICTS.map(Reply::Verdict));
        for r in all {
            assert_eq!(decode_reply(&r.encode()).unwrap(), r);
        }
        assert_eq!(Reply::Verdict(Verdict::Locked).encode(), b"V\x03");
    }

    #[test]
    fn malformed_messages_are_refused_never_a_panic() {
        for bad in [
            &b""[..],
            b"R",
            b"Rfoo\0bar",
            b"P",
            b"P\x09short",
            b"Fx",
            b"Xx",
            b"Z",
        ] {
            assert!(decode_request(bad).is_err(), "{bad:?}");
        }
        let long = [b"P\x00".as_slice(), &[b'p'; 256]].concat();
        assert!(decode_request(&long).is_err());
        for bad in [&b""[..], b"V", b"V\x09", b"E\x00\x00", b"KK"] {
            assert!(decode_reply(bad).is_err(), "{bad:?}");
        }
        // Every prefix of every valid message decodes or is refused.
        let msg = Request::CheckUser {
            user: b"bob",
            password: b"pw",
        }
        .encode();
        for n in 0..=msg.len() {
            let _ = decode_request(&msg[..n]);
        }
    }
}
