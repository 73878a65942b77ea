//! TAI64N labels as daemontools writes them: `@` + 16 hex digits of seconds + 8 of
//! nanoseconds, lower case.
//!
//! The seconds are 2^62 + 10 + Unix seconds: daemontools takes the system clock for TAI
//! seconds since 1970-01-01 00:00:10 TAI, so `tai64nlocal` prints back the Unix time.
//! (The `tai64` crate's `Tai64N::now()` adds 37, 27 s off from multilog.) The
//! nanoseconds are `1000 × microseconds + 500`, as daemontools' `taia_now`.

use std::time::{Duration, SystemTime};

/// 2^62 + 10: the TAI64 label of Unix time 0 as daemontools counts.
pub const UNIX_EPOCH_LABEL: u64 = (1 << 62) + 10;

/// Length of a label with its `@`.
pub const LEN: usize = 25;

/// The label of `time` (times before 1970 take the label of 1970).
pub fn label(time: SystemTime) -> [u8; LEN] {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = UNIX_EPOCH_LABEL.wrapping_add(since.as_secs());
    let nanos = since.subsec_micros() * 1000 + 500;
    let mut out = [b'0'; LEN];
    out[0] = b'@';
    hex(&mut out[1..17], secs);
    hex(&mut out[17..25], u64::from(nanos));
    out
}

fn hex(out: &mut [u8], mut v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for d in out.iter_mut().rev() {
        *d = DIGITS[(v & 0xf) as usize];
        v >>= 4;
    }
}

/// The time a label stands for (`@` optional); `None` if it is not 24 hex digits.
pub fn parse(label: &[u8]) -> Option<SystemTime> {
    let l = label.strip_prefix(b"@").unwrap_or(label);
    if l.len() != 24 {
        return None;
    }
    let text = std::str::from_utf8(l).ok()?;
    let secs = u64::from_str_radix(text.get(..16)?, 16).ok()?;
    let nanos = u32::from_str_radix(text.get(16..)?, 16).ok()?;
    if nanos >= 1_000_000_000 {
        return None;
    }
    let unix = secs.checked_sub(UNIX_EPOCH_LABEL)?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(unix, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The label `tai64n` printed at Unix time 1795252944.802339 (reference §1.2).
    #[test]
    fn matches_daemontools() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_795_252_944, 802_339_000);
        assert_eq!(&label(t), b"@400000006b0162da2fd2baac");
        assert_eq!(
            parse(b"@400000006b0162da2fd2baac"),
            Some(SystemTime::UNIX_EPOCH + Duration::new(1_795_252_944, 802_339_500))
        );
        assert_eq!(parse(b"@4000"), None);
        assert_eq!(parse(b"@zz0000006b0162da2fd2baac"), None);
    }
}
