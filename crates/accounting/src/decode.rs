//! One input line as data: its time, its prefix kind, and the traffic record it holds.
//!
//! Text lines go through [`traffic_log::stamp::split`] (any prefix) and
//! [`traffic_log::Record::parse`]; a line whose message starts with `{` is a ferrosocks
//! JSON line ([`traffic_log::Record::from_json`], time from `ts`). What a line is:
//!
//! - a record;
//! - another log line (Dante's `Dante/server[1/1] v1.4.2 running`, a JSON line without
//!   `verdict`) or the continuation of a multi-line message (the TCP_INFO block of
//!   `log: tcpinfo`: empty lines, `TCP_INFO:`, `FIELD : CLIENT <-> TARGET`);
//! - malformed: not UTF-8 (binary garbage), a prefix with nothing after it (a truncated
//!   line), `pass(`/`block(` that does not parse, JSON that does not parse, or no prefix
//!   any writer puts and no record either (an unknown prefix).

use serde_json::Value;
use traffic_log::stamp::{self, PrefixKind};
use traffic_log::{Level, Marker, Record};

use crate::time;

/// What a decoder needs to place RFC 3164 stamps (no year) in time.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The year RFC 3164 stamps are read in (the current year, from the caller's clock).
    pub year: i64,
    /// Now, in epoch seconds: a stamp more than a day after it is from the year before.
    pub now: Option<i64>,
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A text line with this (outermost) prefix.
    Text(PrefixKind),
    /// A ferrosocks JSON line.
    Json,
}

impl Source {
    /// `dante`, `rfc3164`, `rfc5424`, `tai64n`, `none` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text(k) => k.as_str(),
            Self::Json => "json",
        }
    }
}

/// What a line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A traffic record.
    Record(Record),
    /// An I/O or transient traffic line (`-:`, not interim) left unparsed: see
    /// [`decode_for_stats`].
    Unparsed,
    /// Another log line, or the continuation of a multi-line one.
    Other,
    /// Not what it claims to be: why.
    Malformed(String),
}

/// One decoded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// Epoch seconds (UTC), when the line says.
    pub time: Option<i64>,
    /// Microseconds within the second.
    pub micros: u32,
    /// The prefix or JSON.
    pub source: Source,
    /// The process id, when the line says.
    pub pid: Option<u32>,
    /// The level, when the line says.
    pub level: Option<Level>,
    /// The message text (for JSON lines, `msg`, or the whole line when there is none).
    pub msg: &'a str,
    /// What it holds.
    pub decoded: Decoded,
}

/// Decodes one line (without its newline).
pub fn decode<'a>(bytes: &'a [u8], ctx: &Context) -> Line<'a> {
    decode_inner(bytes, ctx, false)
}

/// [`decode`] for `log stats`, which needs no I/O or transient lines: their head is
/// checked ([`Record::marker`]) and the rest, most of a `log: iooperation` log, is left
/// unparsed ([`Decoded::Unparsed`]). Interim records (also `-:`) are parsed.
pub fn decode_for_stats<'a>(bytes: &'a [u8], ctx: &Context) -> Line<'a> {
    decode_inner(bytes, ctx, true)
}

fn decode_inner<'a>(bytes: &'a [u8], ctx: &Context, skip_io: bool) -> Line<'a> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Line {
            time: None,
            micros: 0,
            source: Source::Text(PrefixKind::None),
            pid: None,
            level: None,
            msg: "",
            decoded: Decoded::Malformed("not UTF-8 text (binary data?)".into()),
        };
    };
    let text = text.strip_suffix('\r').unwrap_or(text);
    let (st, msg) = stamp::split(text);
    let time = st
        .epoch_secs
        .or_else(|| st.local.map(|l| time::from_local(l, ctx.year, ctx.now)));
    let mut line = Line {
        time,
        micros: st.micros,
        source: Source::Text(st.kind),
        pid: st.pid,
        level: st.level,
        msg,
        decoded: Decoded::Other,
    };
    if msg.starts_with('{') {
        decode_json(&mut line);
        return line;
    }
    line.decoded = if msg.starts_with("pass(") || msg.starts_with("block(") {
        match skip_io.then(|| Record::marker(msg)) {
            Some(Ok((Marker::Dash, rest)))
                if memchr::memmem::find(rest.as_bytes(), b": interim: ").is_none() =>
            {
                line.decoded = Decoded::Unparsed;
                return line;
            }
            Some(Err(e)) => {
                line.decoded = Decoded::Malformed(e.to_string());
                return line;
            }
            _ => {}
        }
        match Record::parse(msg) {
            Ok(r) => Decoded::Record(r),
            Err(e) => Decoded::Malformed(e.to_string()),
        }
    } else if st.kind == PrefixKind::None {
        if is_continuation(msg) {
            Decoded::Other
        } else {
            Decoded::Malformed("unknown prefix (not a log line ferrosocks knows)".into())
        }
    } else if msg.is_empty() {
        Decoded::Malformed("truncated line: a prefix and nothing after it".into())
    } else {
        Decoded::Other
    };
    line
}

/// The lines of the TCP_INFO block after a summary (traffic_log::tcpinfo).
fn is_continuation(msg: &str) -> bool {
    msg.is_empty() || msg == "TCP_INFO:" || msg.contains(" <-> ")
}

fn decode_json(line: &mut Line<'_>) {
    let v: Value = match serde_json::from_str(line.msg) {
        Ok(v) => v,
        Err(e) => {
            line.decoded = Decoded::Malformed(format!("bad JSON: {e}"));
            return;
        }
    };
    line.source = Source::Json;
    if let Some((secs, micros)) = v.get("ts").and_then(Value::as_str).and_then(stamp::rfc3339) {
        line.time = Some(secs);
        line.micros = micros;
    }
    if let Some(pid) = v.get("pid").and_then(Value::as_u64) {
        line.pid = u32::try_from(pid).ok();
    }
    line.decoded = if v.get("verdict").is_some() {
        match Record::from_json(&v) {
            Ok(r) => Decoded::Record(r),
            Err(e) => Decoded::Malformed(e.to_string()),
        }
    } else if v.is_object() {
        Decoded::Other
    } else {
        Decoded::Malformed("a JSON value that is not an object".into())
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: Context = Context {
        year: 2026,
        now: None,
    };

    #[test]
    fn kinds_of_lines() {
        let d = |s: &str| decode(s.as_bytes(), &CTX).decoded;
        assert!(matches!(
            d("pass(1): tcp/accept [: 127.0.0.1.1 127.0.0.1.2"),
            Decoded::Record(_)
        ));
        assert_eq!(d("Nov 21 09:43:55 (1795254235.762175) danted[29823]: info: Dante/server[1/1] v1.4.2 running"), Decoded::Other);
        assert!(
            matches!(d("Nov 21 09:43:57 (1795254237.375341) "), Decoded::Malformed(m) if m.starts_with("truncated"))
        );
        assert!(matches!(
            d("pass(1): tcp/accept ?: 127.0.0.1.1"),
            Decoded::Malformed(_)
        ));
        assert!(
            matches!(d("hello world"), Decoded::Malformed(m) if m.starts_with("unknown prefix"))
        );
        assert!(matches!(d("{\"ts\": 1"), Decoded::Malformed(m) if m.starts_with("bad JSON")));
        assert_eq!(d("{\"msg\": \"x\"}"), Decoded::Other);
        assert_eq!(d("TCP_INFO:"), Decoded::Other);
        assert!(matches!(
            decode(b"\xff\xfe\x00", &CTX).decoded,
            Decoded::Malformed(_)
        ));
    }

    #[test]
    fn json_lines_carry_their_time() {
        let l = r#"{"ts":"2026-11-21T10:43:56.760944+01:00","level":"info","pid":7,"msg":"x","verdict":"pass","rule":1,"proto":"tcp","command":"accept","phase":"start","src":[{"address":"127.0.0.1","port":1},{"address":"127.0.0.1","port":2}]}"#;
        let line = decode(l.as_bytes(), &CTX);
        assert_eq!(line.time, Some(1_795_254_236));
        assert_eq!(line.source, Source::Json);
        assert_eq!(line.pid, Some(7));
        assert!(matches!(line.decoded, Decoded::Record(_)));
    }
}
