//! RFC 6587 §3.4.1 octet counting (also RFC 5425 §4.3, syslog over TLS): a frame is
//! `MSG-LEN SP SYSLOG-MSG`, MSG-LEN the decimal count of the message's octets.

/// Appends one frame holding `msg`.
pub fn encode(out: &mut Vec<u8>, msg: &[u8]) {
    out.extend_from_slice(msg.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(msg);
}

/// What the start of a buffer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame: the message is `buf[start..start + len]`, `used` bytes in all.
    Frame {
        start: usize,
        len: usize,
        used: usize,
    },
    /// Not a whole frame yet.
    NeedMore,
}

/// Why a buffer does not start with a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The first byte is not a non-zero digit, or the length is not followed by a space.
    #[error("not an octet-counted frame (expected MSG-LEN SP)")]
    NotCounted,
    /// The length is above the limit given.
    #[error("frame of {0} octets is over the limit")]
    TooLong(u64),
}

/// Decodes the frame at the start of `buf`, refusing messages longer than `max`.
pub fn decode(buf: &[u8], max: usize) -> Result<Decoded, FrameError> {
    let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
    match buf.first() {
        None => return Ok(Decoded::NeedMore),
        Some(b'1'..=b'9') => {}
        Some(_) => return Err(FrameError::NotCounted),
    }
    let mut len: u64 = 0;
    for d in &buf[..digits] {
        len = len.saturating_mul(10).saturating_add(u64::from(d - b'0'));
        if len > max as u64 {
            return Err(FrameError::TooLong(len));
        }
    }
    match buf.get(digits) {
        None => Ok(Decoded::NeedMore),
        Some(b' ') => {
            let start = digits + 1;
            let len = len as usize;
            if buf.len() < start + len {
                Ok(Decoded::NeedMore)
            } else {
                Ok(Decoded::Frame {
                    start,
                    len,
                    used: start + len,
                })
            }
        }
        Some(_) => Err(FrameError::NotCounted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_prefix() {
        let mut buf = Vec::new();
        encode(&mut buf, b"<134>1 - - - - - hello");
        assert_eq!(buf, b"22 <134>1 - - - - - hello");
        for n in 0..buf.len() {
            assert_eq!(decode(&buf[..n], 1000), Ok(Decoded::NeedMore), "prefix {n}");
        }
        assert_eq!(
            decode(&buf, 1000),
            Ok(Decoded::Frame {
                start: 3,
                len: 22,
                used: 25
            })
        );
        assert_eq!(decode(b"0 x", 10), Err(FrameError::NotCounted));
        assert_eq!(decode(b"<13>x", 10), Err(FrameError::NotCounted));
        assert_eq!(decode(b"12x", 10), Err(FrameError::TooLong(12)));
        assert_eq!(decode(b"9a", 10), Err(FrameError::NotCounted));
    }
}
