//! The two line formats: Dante's text line and JSON lines.
//!
//! The text prefix is written on the logging thread for every record, so it is built
//! without `core::fmt` and without allocating: the local date and time are converted
//! once per second per thread and kept; the rest is digits and copies.

use std::cell::Cell;
use std::time::SystemTime;

use chrono::{DateTime, Datelike, Local, SecondsFormat, Timelike};
use serde_json::{json, Value};

use crate::{Level, Payload, Subsystem};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Mon DD HH:MM:SS (SECS.`: what every line of one second starts with.
#[derive(Clone, Copy)]
struct Second {
    secs: u64,
    text: [u8; 40],
    len: usize,
}

thread_local! {
    /// The last second this thread formatted.
    static SECOND: Cell<Second> = const {
        Cell::new(Second {
            secs: u64::MAX,
            text: [0; 40],
            len: 0,
        })
    };
}

/// `Mon DD HH:MM:SS (SECS.` for `secs` since the epoch, in local time (`%h %e %T `),
/// converted once per second per thread.
fn second(secs: u64, time: SystemTime) -> Second {
    SECOND.with(|cell| {
        let cached = cell.get();
        if cached.secs == secs {
            return cached;
        }
        let local: DateTime<Local> = time.into();
        let mut out = [b' '; 40];
        let month = MONTHS[local.month0() as usize % 12].as_bytes();
        out[..3].copy_from_slice(month);
        let day = local.day() as u8;
        if day >= 10 {
            out[4] = b'0' + day / 10;
        }
        out[5] = b'0' + day % 10;
        for (at, v) in [
            (7, local.hour()),
            (10, local.minute()),
            (13, local.second().min(60)),
        ] {
            out[at] = b'0' + (v / 10) as u8;
            out[at + 1] = b'0' + (v % 10) as u8;
        }
        out[9] = b':';
        out[12] = b':';
        out[16] = b'(';
        let mut digits = Vec::with_capacity(20);
        push_decimal(&mut digits, secs);
        out[17..17 + digits.len()].copy_from_slice(&digits);
        let len = 17 + digits.len() + 1;
        out[len - 1] = b'.';
        let s = Second {
            secs,
            text: out,
            len,
        };
        cell.set(s);
        s
    })
}

use traffic_log::text::push_decimal;

/// What every text line of one process shares after the time stamp: `) program[pid]: `.
pub(crate) fn tag(program: &str, pid: u32) -> String {
    format!(") {program}[{pid}]: ")
}

/// Appends Dante's prefix, `Mon DD HH:MM:SS (secs.usec) program[pid]: level: `, where
/// `tag` is [`tag`]'s; returns its length.
pub(crate) fn push_prefix(out: &mut Vec<u8>, tag: &str, time: SystemTime, level: Level) -> usize {
    let start = out.len();
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let second = second(since.as_secs(), time);
    out.extend_from_slice(&second.text[..second.len]);
    let micros = since.subsec_micros();
    let mut digits = [b'0'; 6];
    let mut m = micros;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (m % 10) as u8;
        m /= 10;
    }
    out.extend_from_slice(&digits);
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(level.dante().as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.len() - start
}

/// Appends the message text of a record (a traffic record's Dante line).
pub(crate) fn push_message(out: &mut Vec<u8>, p: &Payload) {
    match p {
        Payload::Text(t) => out.extend_from_slice(t.as_bytes()),
        Payload::Traffic(r) => r.write_to(out),
    }
}

/// One JSON object (without newline): `ts`, `level`, `subsystem`, `pid`, `msg`, and for
/// traffic records every field of [`traffic_log::Record::to_json`] at the top level.
pub(crate) fn json_line(
    pid: u32,
    time: SystemTime,
    level: Level,
    subsystem: Subsystem,
    payload: Option<&Payload>,
    msg: &str,
) -> String {
    let local: DateTime<Local> = time.into();
    let mut o = json!({
        "ts": local.to_rfc3339_opts(SecondsFormat::Micros, true),
        "level": level.name(),
        "subsystem": subsystem.name(),
        "pid": pid,
        "msg": msg,
    });
    if let (Some(Payload::Traffic(r)), Value::Object(map)) = (payload, &mut o) {
        if let Value::Object(fields) = r.to_json() {
            map.extend(fields);
        }
    }
    o.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use traffic_log::{LocalTime, Prefix};

    /// The fast prefix is byte for byte the one `traffic_log::Prefix` prints (and
    /// parses), for days on one and two digits, midnight, and micros that need padding.
    #[test]
    fn prefix_matches_traffic_logs_prefix() {
        let tag = tag("ferrosocks", 42);
        for (secs, micros) in [
            (0u64, 0u32),
            (1_795_254_235, 762_175),
            (1_795_254_235, 42),
            (1_767_225_600, 999_999),
            (1_772_323_200 + 3_599, 5),
        ] {
            for level in [Level::Info, Level::Warning, Level::Trace, Level::Debug] {
                let time = SystemTime::UNIX_EPOCH + Duration::new(secs, micros * 1000);
                let mut out = b"x".to_vec();
                let n = push_prefix(&mut out, &tag, time, level);
                assert_eq!(n, out.len() - 1);
                let out = String::from_utf8(out).unwrap();
                let local: DateTime<Local> = time.into();
                let expected = Prefix {
                    local: LocalTime {
                        month: local.month() as u8,
                        day: local.day() as u8,
                        hour: local.hour() as u8,
                        minute: local.minute() as u8,
                        second: local.second() as u8,
                    },
                    epoch_secs: secs as i64,
                    micros,
                    program: "ferrosocks".into(),
                    pid: 42,
                    level: level.dante(),
                }
                .to_string();
                assert_eq!(&out[1..], expected);
            }
        }
    }
}
