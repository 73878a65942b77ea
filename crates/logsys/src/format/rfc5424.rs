//! RFC 5424 messages: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]`.
//!
//! The time stamp is RFC 3339 in UTC with microseconds (`2026-11-21T09:16:57.429114Z`);
//! header fields are printable US-ASCII cut to their RFC lengths (255, 48, 128, 32;
//! anything else becomes `_`, an empty one the NILVALUE `-`); SD-PARAM values escape
//! `"`, `\` and `]`. MSG is written as given, without a BOM (RFC 5424's MSG-ANY): it is
//! the exact text of the local log line, which receivers keep byte for byte.

use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};

use super::rfc3164::push_pri;

/// One SD-ELEMENT: `[ID NAME="VALUE" …]`.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    /// SD-ID: an IANA name (`origin`, `meta`) or `name@PEN`.
    pub id: &'a str,
    pub params: &'a [(&'a str, &'a str)],
}

/// The fields of one message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// 0–23.
    pub facility: u8,
    /// 0–7.
    pub severity: u8,
    pub time: SystemTime,
    pub hostname: &'a str,
    pub app_name: &'a str,
    pub procid: &'a str,
    pub msgid: &'a str,
    pub structured: &'a [Element<'a>],
    /// The text, without a trailing newline (one is dropped).
    pub msg: &'a [u8],
}

/// Appends the message (no framing).
pub fn encode(out: &mut Vec<u8>, m: &Message<'_>) {
    push_pri(out, m.facility, m.severity);
    out.extend_from_slice(b"1 ");
    let utc: DateTime<Utc> = m.time.into();
    out.extend_from_slice(utc.to_rfc3339_opts(SecondsFormat::Micros, true).as_bytes());
    for (field, max) in [
        (m.hostname, 255),
        (m.app_name, 48),
        (m.procid, 128),
        (m.msgid, 32),
    ] {
        out.push(b' ');
        push_field(out, field, max);
    }
    out.push(b' ');
    if m.structured.is_empty() {
        out.push(b'-');
    }
    for e in m.structured {
        out.push(b'[');
        push_name(out, e.id);
        for (name, value) in e.params {
            out.push(b' ');
            push_name(out, name);
            out.extend_from_slice(b"=\"");
            for b in value.bytes() {
                if matches!(b, b'"' | b'\\' | b']') {
                    out.push(b'\\');
                }
                out.push(b);
            }
            out.push(b'"');
        }
        out.push(b']');
    }
    let msg = m.msg.strip_suffix(b"\n").unwrap_or(m.msg);
    if !msg.is_empty() {
        out.push(b' ');
        out.extend_from_slice(msg);
    }
}

/// A header field: PRINTUSASCII, at most `max` bytes, `-` when empty.
fn push_field(out: &mut Vec<u8>, field: &str, max: usize) {
    if field.is_empty() {
        out.push(b'-');
        return;
    }
    out.extend(field.bytes().take(max).map(printable));
}

/// An SD-NAME: PRINTUSASCII except `=`, space, `]` and `"`, at most 32 bytes.
fn push_name(out: &mut Vec<u8>, name: &str) {
    out.extend(name.bytes().take(32).map(|b| match printable(b) {
        b'=' | b']' | b'"' => b'_',
        b => b,
    }));
}

fn printable(b: u8) -> u8 {
    if (33..=126).contains(&b) {
        b
    } else {
        b'_'
    }
}
