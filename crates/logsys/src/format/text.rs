//! The two line formats: Dante's text line and JSON lines.
//!
//! The text prefix is written on the logging thread for every record, so it is built
//! without `core::fmt` and without allocating: the local date and time are converted
//! once per second per thread and kept; the rest is digits and copies.

use std::cell::Cell;
use std::time::SystemTime;

use chrono::{DateTime, Datelike, Local, SecondsFormat, Timelike};

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

use traffic_log::text::{push_decimal, PAIRS};

/// What every text line of one process shares after the time stamp: `) program[pid]: `.
pub(crate) fn tag(program: &str, pid: u32) -> String {
    format!(") {program}[{pid}]: ")
}

/// The longest prefix kept as a template; a longer tag (a very long program name) is
/// written piece by piece.
const TEMPLATE: usize = 128;

/// A whole prefix of one second, tag and level, with the micros' six digits to fill in.
struct Template {
    secs: u64,
    /// The level's word: `Trace` and `Info` records (a session's I/O lines and its
    /// first and last) share a template.
    level: traffic_log::Level,
    /// The tag it was made with (its address and length: one process has one or two).
    tag: (usize, usize),
    text: [u8; TEMPLATE],
    len: usize,
    micros_at: usize,
}

thread_local! {
    /// The last prefix this thread wrote, reused while the second, level and tag hold.
    static PREFIX: std::cell::RefCell<Template> = const {
        std::cell::RefCell::new(Template {
            secs: u64::MAX,
            level: traffic_log::Level::Info,
            tag: (0, 0),
            text: [0; TEMPLATE],
            len: 0,
            micros_at: 0,
        })
    };
}

/// Appends Dante's prefix, `Mon DD HH:MM:SS (secs.usec) program[pid]: level: `, where
/// `tag` is [`tag`]'s; returns its length. The whole prefix but the micros is copied
/// from a per-thread template made once per second (and per level and tag).
pub(crate) fn push_prefix(out: &mut Vec<u8>, tag: &str, time: SystemTime, level: Level) -> usize {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let micros = since.subsec_micros();
    let key = (tag.as_ptr() as usize, tag.len());
    let word = level.dante();
    let written = PREFIX.with(|cell| {
        let Ok(mut t) = cell.try_borrow_mut() else {
            return None;
        };
        if t.secs != secs || t.level != word || t.tag != key {
            let second = second(secs, time);
            let level_text = word.as_str().as_bytes();
            let len = second.len + 6 + tag.len() + level_text.len() + 2;
            if len > TEMPLATE {
                return None;
            }
            let mut at = 0;
            for piece in [
                &second.text[..second.len],
                b"000000".as_slice(),
                tag.as_bytes(),
                level_text,
                b": ",
            ] {
                t.text[at..at + piece.len()].copy_from_slice(piece);
                at += piece.len();
            }
            t.secs = secs;
            t.level = word;
            t.tag = key;
            t.len = len;
            t.micros_at = second.len;
        }
        let start = out.len();
        out.extend_from_slice(&t.text[..t.len]);
        out[start + t.micros_at..start + t.micros_at + 6].copy_from_slice(&micros_text(micros));
        Some(t.len)
    });
    written.unwrap_or_else(|| push_prefix_pieces(out, tag, secs, micros, time, level))
}

/// [`push_prefix`] without the template (a tag too long for it).
fn push_prefix_pieces(
    out: &mut Vec<u8>,
    tag: &str,
    secs: u64,
    micros: u32,
    time: SystemTime,
    level: Level,
) -> usize {
    let start = out.len();
    let second = second(secs, time);
    out.extend_from_slice(&second.text[..second.len]);
    out.extend_from_slice(&micros_text(micros));
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(level.dante().as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.len() - start
}

/// The six digits of `micros` (below 1,000,000), zero-padded.
fn micros_text(micros: u32) -> [u8; 6] {
    let (hi, rest) = ((micros / 10_000) as usize % 100, (micros % 10_000) as usize);
    let [a, b] = PAIRS[hi];
    let [c, d] = PAIRS[rest / 100];
    let [e, f] = PAIRS[rest % 100];
    [a, b, c, d, e, f]
}

/// Appends the message text of a record (a traffic record's Dante line).
pub(crate) fn push_message(out: &mut Vec<u8>, p: &Payload) {
    match p {
        Payload::Text(t) => out.extend_from_slice(t.as_bytes()),
        Payload::Traffic(r) => r.write_to(out),
    }
}

thread_local! {
    /// The last second this thread wrote a JSON time stamp for: the seconds since the
    /// epoch, the RFC 3339 text up to the seconds and the offset after the micros.
    static JSON_SECOND: std::cell::RefCell<(u64, String, String)> =
        const { std::cell::RefCell::new((u64::MAX, String::new(), String::new())) };
}

/// Appends `"ts"`'s value (quoted): local time in RFC 3339 with micros, as chrono's
/// `to_rfc3339_opts(SecondsFormat::Micros, true)` writes it, converted once per second
/// per thread (the offset only changes on a second's boundary).
fn push_ts(out: &mut Vec<u8>, time: SystemTime) {
    let Ok(since) = time.duration_since(SystemTime::UNIX_EPOCH) else {
        // Before 1970: not worth a cache.
        let local: DateTime<Local> = time.into();
        out.push(b'"');
        out.extend_from_slice(
            local
                .to_rfc3339_opts(SecondsFormat::Micros, true)
                .as_bytes(),
        );
        out.push(b'"');
        return;
    };
    JSON_SECOND.with(|cell| {
        let mut c = cell.borrow_mut();
        if c.0 != since.as_secs() {
            let local: DateTime<Local> = time.into();
            let full = local.to_rfc3339_opts(SecondsFormat::Micros, true);
            // `YYYY-MM-DDTHH:MM:SS.uuuuuu` then the offset; other shapes (years past
            // 9999) are kept whole and written as they are.
            if full.len() > 26 && full.as_bytes()[19] == b'.' {
                *c = (
                    since.as_secs(),
                    full[..19].to_owned(),
                    full[26..].to_owned(),
                );
            } else {
                out.push(b'"');
                out.extend_from_slice(full.as_bytes());
                out.push(b'"');
                return;
            }
        }
        out.push(b'"');
        out.extend_from_slice(c.1.as_bytes());
        out.push(b'.');
        out.extend_from_slice(&micros_text(since.subsec_micros()));
        out.extend_from_slice(c.2.as_bytes());
        out.push(b'"');
    });
}

/// One JSON object and a newline: `level`, `msg`, `pid`, `subsystem`, `ts`, and for
/// traffic records every field of [`traffic_log::Record::to_json`] at the top level,
/// keys in sorted order — the bytes serde_json gave for the same object, written
/// directly ([`traffic_log::Record::write_json`]) without a `serde_json::Value`.
pub(crate) fn json_line(
    pid: u32,
    time: SystemTime,
    level: Level,
    subsystem: Subsystem,
    payload: Option<&Payload>,
    msg: &str,
) -> Vec<u8> {
    let mut fields = Vec::with_capacity(64 + 2 * msg.len());
    let mut at = [0usize; 5];
    // The five fields' values one after another, then the pairs point into them.
    push_str(&mut fields, level.name());
    at[0] = fields.len();
    push_str(&mut fields, msg);
    at[1] = fields.len();
    push_decimal(&mut fields, u64::from(pid));
    at[2] = fields.len();
    push_str(&mut fields, subsystem.name());
    at[3] = fields.len();
    push_ts(&mut fields, time);
    at[4] = fields.len();
    let extra: [(&str, &[u8]); 5] = [
        ("level", &fields[..at[0]]),
        ("msg", &fields[at[0]..at[1]]),
        ("pid", &fields[at[1]..at[2]]),
        ("subsystem", &fields[at[2]..at[3]]),
        ("ts", &fields[at[3]..at[4]]),
    ];
    let mut out = Vec::with_capacity(fields.len() + 512);
    match payload {
        Some(Payload::Traffic(r)) => r.write_json(&mut out, &extra),
        _ => {
            out.push(b'{');
            for (i, (k, v)) in extra.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_str(&mut out, k);
                out.push(b':');
                out.extend_from_slice(v);
            }
            out.push(b'}');
        }
    }
    out.push(b'\n');
    out
}

use traffic_log::json_write::push_str;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// What `json_line` gave when it built a `serde_json::Value` per line.
    fn json_line_by_value(
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
        o.to_string() + "\n"
    }

    /// The direct writer gives the bytes the `Value` did, for traffic records of every
    /// phase and for plain messages with characters JSON escapes, across seconds.
    #[test]
    fn json_line_is_byte_identical_to_the_value_form() {
        let records = [
            "pass(2): tcp/connect -: 127.0.0.1.44460 127.0.0.1.21014 -> 127.0.0.1.40779 127.0.0.1.21010 (1460)",
            "pass(1): tcp/connect [: username%alice@127.0.0.1.40822 127.0.0.1.1080 -> 127.0.0.1.41377 127.0.0.1.31839",
            "pass(1): tcp/connect ]: 197 -> 127.0.0.1.40822 127.0.0.1.1080 -> 79, 79 -> 127.0.0.1.41377 127.0.0.1.31839 -> 197: remote peer closed.  Session duration: 0s",
            "block(3): tcp/connect ]: 127.0.0.1.40822 127.0.0.1.1080 -> example.com.443: blocked by \"rule\" \\ here",
        ];
        let texts: [&str; 3] = [
            "plain",
            "quote \" backslash \\ tab \t nl \n ctl \u{1} é",
            "",
        ];
        let times = [(1_795_254_235u64, 762_175u32), (1_795_254_236, 5), (0, 0)]
            .map(|(secs, micros)| SystemTime::UNIX_EPOCH + Duration::new(secs, micros * 1000));
        let before_1970 = SystemTime::UNIX_EPOCH - Duration::new(1, 500_000_000);
        for time in times.into_iter().chain([before_1970]) {
            for line in records {
                let r = traffic_log::Record::parse(line).unwrap();
                let p = Payload::Traffic(r);
                let a = json_line(9, time, Level::Info, Subsystem::TRAFFIC, Some(&p), line);
                let b =
                    json_line_by_value(9, time, Level::Info, Subsystem::TRAFFIC, Some(&p), line);
                assert_eq!(String::from_utf8(a).unwrap(), b);
            }
            for t in texts {
                let p = Payload::Text(t.into());
                for payload in [None, Some(&p)] {
                    let a = json_line(1, time, Level::Warning, Subsystem::SYSTEM, payload, t);
                    let b =
                        json_line_by_value(1, time, Level::Warning, Subsystem::SYSTEM, payload, t);
                    assert_eq!(String::from_utf8(a).unwrap(), b);
                }
            }
        }
    }
    use std::time::Duration;
    use traffic_log::{LocalTime, Prefix};

    /// The fast prefix is byte for byte the one `traffic_log::Prefix` prints (and
    /// parses), for days on one and two digits, midnight, and micros that need padding;
    /// with the per-thread template reused within a second, across levels and two tags,
    /// and without it for a tag too long for the template.
    #[test]
    fn prefix_matches_traffic_logs_prefix() {
        let long_name = "p".repeat(150);
        let programs = [("ferrosocks", 42u32), ("sockd", 7), (long_name.as_str(), 9)];
        let tags = programs.map(|(name, pid)| tag(name, pid));
        for (secs, micros) in [
            (0u64, 0u32),
            (1_795_254_235, 762_175),
            (1_795_254_235, 42),
            (1_767_225_600, 999_999),
            (1_772_323_200 + 3_599, 5),
        ] {
            // Trace and Info share a template (one word): each follows the other.
            for level in [
                Level::Info,
                Level::Warning,
                Level::Trace,
                Level::Info,
                Level::Debug,
                Level::Trace,
            ] {
                for ((program, pid), tag) in programs.iter().zip(&tags) {
                    for micros in [micros, (micros + 1) % 1_000_000, micros] {
                        let time = SystemTime::UNIX_EPOCH + Duration::new(secs, micros * 1000);
                        let mut out = b"x".to_vec();
                        let n = push_prefix(&mut out, tag, time, level);
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
                            program: (*program).into(),
                            pid: *pid,
                            level: level.dante(),
                        }
                        .to_string();
                        assert_eq!(&out[1..], expected);
                    }
                }
            }
        }
    }
}
