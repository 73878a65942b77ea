//! Where the message of a log line starts, whoever wrote the line, and when it was
//! written.
//!
//! [`split`] recognises, outermost first, any stack of:
//!
//! - a syslog priority `<PRI>`;
//! - a multilog/svlogd TAI64N stamp, `@` + 24 hex digits + space (label = 2^62 + 10 +
//!   Unix seconds, as daemontools counts; shared/reference/multilog-socklog.md §1.2);
//! - Dante's own prefix, `Mon DD HH:MM:SS (SECS.USEC) PROGRAM[PID]: ` (1.4.x, which
//!   [`crate::Prefix`] formats) or 1.2.3's (micros not padded, no level word);
//! - RFC 5424, `1 2026-11-21T09:43:55.762175+01:00 HOST APP PROCID MSGID SD MSG`;
//! - an ISO 8601 stamp as rsyslog's file format writes it, `2026-11-21T09:43:55+01:00
//!   HOST TAG: MSG`;
//! - RFC 3164 as a syslog daemon writes it to a file, `Mon DD HH:MM:SS HOST TAG: MSG`,
//!   where TAG is `PROGRAM[PID]` or `PROGRAM`;
//!
//! and then a level word (`info: `), which Dante repeats inside its syslog text. Nothing
//! recognised is not an error: the whole line is the message ([`PrefixKind::None`]).
//! Times: a stamp with an epoch or an offset gives [`Stamp::epoch_secs`]; RFC 3164 gives
//! only the local wall clock without a year ([`Stamp::local`]).

use crate::prefix::{Level, LocalTime};

/// The outermost kind of prefix a line had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrefixKind {
    /// No prefix: the line is the message.
    None,
    /// Dante's own (1.4.x or 1.2.3).
    Dante,
    /// RFC 3164, as a syslog daemon writes it to a file.
    Rfc3164,
    /// RFC 5424, or an ISO 8601 stamp (rsyslog's file format).
    Rfc5424,
    /// multilog / svlogd `@TAI64N`.
    Tai64n,
}

impl PrefixKind {
    /// A short name: `none`, `dante`, `rfc3164`, `rfc5424`, `tai64n`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Dante => "dante",
            Self::Rfc3164 => "rfc3164",
            Self::Rfc5424 => "rfc5424",
            Self::Tai64n => "tai64n",
        }
    }
}

/// What the prefix of a line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The outermost prefix.
    pub kind: PrefixKind,
    /// Seconds since the epoch (UTC), when the prefix gives them.
    pub epoch_secs: Option<i64>,
    /// Microseconds within the second (0 when unknown).
    pub micros: u32,
    /// The local wall clock of an RFC 3164 stamp (no year, no zone), when that is all
    /// there is.
    pub local: Option<LocalTime>,
    /// The process id in the tag, if any.
    pub pid: Option<u32>,
    /// The level word, if the line has one.
    pub level: Option<Level>,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Splits `line` into what its prefixes say and the message after them.
pub fn split(line: &str) -> (Stamp, &str) {
    let mut stamp = Stamp {
        kind: PrefixKind::None,
        epoch_secs: None,
        micros: 0,
        local: None,
        pid: None,
        level: None,
    };
    let mut rest = line;
    if let Some(r) = strip_pri(rest) {
        rest = r;
    }
    if let Some((secs, nanos, r)) = strip_tai64n(rest) {
        set_kind(&mut stamp, PrefixKind::Tai64n);
        stamp.epoch_secs = Some(secs);
        stamp.micros = nanos / 1000;
        rest = r;
    }
    if let Some((local, secs, micros, r)) = strip_dante_stamp(rest) {
        set_kind(&mut stamp, PrefixKind::Dante);
        stamp.local = Some(local);
        stamp.epoch_secs = Some(secs);
        stamp.micros = micros;
        rest = r;
        if let Some((pid, r)) = strip_tag(rest) {
            stamp.pid = pid;
            rest = r;
        }
    } else if let Some(r) = rest.strip_prefix("1 ").filter(|r| iso_len(r).is_some()) {
        // RFC 5424: VERSION TIMESTAMP HOST APP PROCID MSGID SD MSG
        let (secs, micros, r) = strip_iso(r).unwrap_or((0, 0, r));
        set_kind(&mut stamp, PrefixKind::Rfc5424);
        stamp.epoch_secs = Some(secs);
        stamp.micros = micros;
        let mut fields = r.splitn(5, ' ');
        let (_host, _app, procid, _msgid, after) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next().unwrap_or(""),
        );
        stamp.pid = procid.and_then(|p| p.parse().ok());
        // rsyslog keeps the space that followed the tag's colon in MSG.
        rest = skip_sd(after);
        rest = rest.strip_prefix(' ').unwrap_or(rest);
    } else if let Some((secs, micros, r)) = strip_iso(rest) {
        set_kind(&mut stamp, PrefixKind::Rfc5424);
        stamp.epoch_secs = Some(secs);
        stamp.micros = micros;
        rest = host_and_tag(r, &mut stamp);
    } else if let Some((local, r)) = strip_bsd_clock(rest) {
        set_kind(&mut stamp, PrefixKind::Rfc3164);
        if stamp.epoch_secs.is_none() {
            stamp.local = Some(local);
        }
        rest = host_and_tag(r, &mut stamp);
    }
    if let Some((word, r)) = split_colon_space(rest) {
        if let Some(level) = Level::from_word(word) {
            stamp.level = Some(level);
            rest = r;
        }
    }
    (stamp, rest)
}

/// The outermost prefix wins.
fn set_kind(stamp: &mut Stamp, k: PrefixKind) {
    if stamp.kind == PrefixKind::None {
        stamp.kind = k;
    }
}

/// `HOST TAG: ` after a syslog time stamp; the message after it, or all of `r` when the
/// tag is not there.
fn host_and_tag<'a>(r: &'a str, stamp: &mut Stamp) -> &'a str {
    let Some((_host, after)) = r.split_once(' ') else {
        return r;
    };
    match strip_tag(after) {
        Some((pid, msg)) => {
            stamp.pid = pid;
            msg
        }
        None => after,
    }
}

/// `PROGRAM[PID]: ` or `PROGRAM: ` (a program name has no space).
fn strip_tag(s: &str) -> Option<(Option<u32>, &str)> {
    let (tag, msg) = split_colon_space(s)?;
    if tag.is_empty() || tag.contains(' ') || Level::from_word(tag).is_some() {
        return None;
    }
    match tag.strip_suffix(']').and_then(|t| t.split_once('[')) {
        Some((_, pid)) => Some((Some(pid.parse().ok()?), msg)),
        None if tag.contains('[') || tag.contains('(') => None,
        None => Some((None, msg)),
    }
}

/// `s.split_once(": ")`, by a byte search (a string pattern builds a searcher each call;
/// this runs on every line).
fn split_colon_space(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = b[from..].iter().position(|&c| c == b':') {
        let at = from + i;
        if b.get(at + 1) == Some(&b' ') {
            return Some((&s[..at], &s[at + 2..]));
        }
        from = at + 1;
    }
    None
}

fn strip_pri(s: &str) -> Option<&str> {
    let r = s.strip_prefix('<')?;
    let (pri, rest) = r.split_once('>')?;
    (!pri.is_empty() && pri.len() <= 3 && pri.bytes().all(|b| b.is_ascii_digit())).then_some(rest)
}

/// `@` + 16 hex (label) + 8 hex (nanoseconds) + space.
fn strip_tai64n(s: &str) -> Option<(i64, u32, &str)> {
    let r = s.strip_prefix('@')?;
    let (hex, rest) = (r.get(..24)?, r.get(24..)?);
    let rest = rest.strip_prefix(' ')?;
    let label = u64::from_str_radix(hex.get(..16)?, 16).ok()?;
    let nanos = u32::from_str_radix(hex.get(16..)?, 16).ok()?;
    let secs = label.checked_sub((1 << 62) + 10)?;
    Some((i64::try_from(secs).ok()?, nanos.min(999_999_999), rest))
}

/// `Mon DD HH:MM:SS ` (day padded with a space); the time and what follows.
fn strip_bsd_clock(s: &str) -> Option<(LocalTime, &str)> {
    let month = MONTHS.iter().position(|m| s.starts_with(m))? as u8 + 1;
    let b = s.as_bytes();
    if b.get(3) != Some(&b' ') || b.get(6) != Some(&b' ') || b.get(15) != Some(&b' ') {
        return None;
    }
    let day: u8 = s.get(4..6)?.trim_start().parse().ok()?;
    let clock = s.get(7..15)?;
    let cb = clock.as_bytes();
    if cb[2] != b':' || cb[5] != b':' {
        return None;
    }
    let two = |i: usize| -> Option<u8> { clock.get(i..i + 2)?.parse().ok() };
    let local = LocalTime {
        month,
        day,
        hour: two(0)?,
        minute: two(3)?,
        second: two(6)?,
    };
    (1..=31).contains(&day).then_some(())?;
    Some((local, s.get(16..)?))
}

/// Dante's `Mon DD HH:MM:SS (SECS.USEC) `.
fn strip_dante_stamp(s: &str) -> Option<(LocalTime, i64, u32, &str)> {
    let (local, r) = strip_bsd_clock(s)?;
    let r = r.strip_prefix('(')?;
    let close = r.find(')')?;
    let (stamp, rest) = (&r[..close], r[close + 1..].strip_prefix(' ')?);
    let (secs, micros) = stamp.split_once('.')?;
    let digits = |t: &str| !t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs) || !digits(micros) || micros.len() > 6 {
        return None;
    }
    Some((local, secs.parse().ok()?, micros.parse().ok()?, rest))
}

/// The length of `YYYY-MM-DDTHH:MM:SS` at the start of `s`, if it is there.
fn iso_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < shape.len() {
        return None;
    }
    for (c, want) in b.iter().zip(shape) {
        let ok = match want {
            b'd' => c.is_ascii_digit(),
            other => c == other,
        };
        if !ok {
            return None;
        }
    }
    Some(shape.len())
}

/// An RFC 3339 time stamp, `YYYY-MM-DDTHH:MM:SS[.FRAC](Z|±HH:MM)` (what ferrosocks'
/// JSON lines carry in `ts`): epoch seconds and micros.
pub fn rfc3339(s: &str) -> Option<(i64, u32)> {
    match strip_iso_stamp(s)? {
        (secs, micros, "") => Some((secs, micros)),
        _ => None,
    }
}

/// [`strip_iso_stamp`] followed by a space.
fn strip_iso(s: &str) -> Option<(i64, u32, &str)> {
    let (secs, micros, r) = strip_iso_stamp(s)?;
    Some((secs, micros, r.strip_prefix(' ')?))
}

/// `YYYY-MM-DDTHH:MM:SS[.FRAC](Z|±HH:MM)`: epoch seconds, micros, what follows.
fn strip_iso_stamp(s: &str) -> Option<(i64, u32, &str)> {
    let n = iso_len(s)?;
    let num = |a: usize, b: usize| -> Option<i64> { s.get(a..b)?.parse().ok() };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut r = &s[n..];
    let mut micros = 0u32;
    if let Some(frac) = r.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let text = &frac[..digits.min(6)];
        micros = text.parse::<u32>().ok()? * 10u32.pow(6 - text.len() as u32);
        r = &frac[digits..];
    }
    let offset = if let Some(after) = r.strip_prefix('Z') {
        r = after;
        0
    } else {
        let sign = match r.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (oh, om) = (
            r.get(1..3)?.parse::<i64>().ok()?,
            r.get(4..6)?.parse::<i64>().ok()?,
        );
        (r.as_bytes().get(3) == Some(&b':')).then_some(())?;
        r = r.get(6..)?;
        sign * (oh * 3600 + om * 60)
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let epoch = days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + sec;
    Some((epoch - offset, micros, r))
}

/// RFC 5424 structured data: `-` or one or more `[…]`, then a space.
fn skip_sd(s: &str) -> &str {
    if let Some(r) = s.strip_prefix("- ") {
        return r;
    }
    if s == "-" {
        return "";
    }
    let mut rest = s;
    while rest.starts_with('[') {
        let mut escaped = false;
        let mut end = None;
        for (i, c) in rest.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                ']' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        match end {
            Some(i) => rest = &rest[i + 1..],
            None => return s,
        }
    }
    rest.strip_prefix(' ').unwrap_or(rest)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number of [`days_from_civil`]: (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for z in [-800_000, -1, 0, 1, 11_016, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn rfc3339_stamps() {
        assert_eq!(
            rfc3339("2026-11-21T09:43:56.760944+00:00"),
            Some((1_795_254_236, 760_944))
        );
        assert_eq!(
            rfc3339("2026-11-21T10:43:56.5+01:00"),
            Some((1_795_254_236, 500_000))
        );
        assert_eq!(rfc3339("2026-11-21T09:43:56Z"), Some((1_795_254_236, 0)));
        assert_eq!(rfc3339("2026-11-21T09:43:56Z x"), None);
        assert_eq!(rfc3339("2026-13-21T09:43:56Z"), None);
    }

    #[test]
    fn garbage_is_all_message() {
        for line in [
            "",
            "@",
            "<",
            "<1",
            "Nov",
            "Nov 21",
            "1 ",
            "2026-",
            "@4000",
            "\u{fffd}x",
        ] {
            let (s, msg) = split(line);
            assert_eq!(s.kind, PrefixKind::None, "{line:?}");
            assert_eq!(msg, line);
        }
    }
}
