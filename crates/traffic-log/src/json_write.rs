//! Traffic records written as JSON text directly, without building a `serde_json::Value`:
//! byte for byte what `serde_json::to_string(&record.to_json())` gives (keys in sorted
//! order, as serde_json's default map keeps them; strings escaped as serde_json escapes
//! them), so that a JSON sink can write a line per record without a tree of maps and
//! strings per line. Pure format code, no I/O; `tests/golden.rs` checks it against
//! [`Record::to_json`] on every golden record.

use std::io::Write as _;
use std::net::IpAddr;

use crate::record::*;
use crate::text::push_decimal;

/// Appends `s` as a JSON string (quoted, escaped as serde_json escapes: `"`, `\`, and
/// control characters as `\b \t \n \f \r` or `\u00XX`). Clean runs are found eight
/// bytes at a time and copied whole.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `x` below 0x20, or equal to `"` or `\` (bytes ≥ 0x80 never match).
    let dirty = |x: u64| {
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
            | zero(x ^ (ONES * 0x22))
            | zero(x ^ (ONES * 0x5c))
            != 0
    };
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut from = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !dirty(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0..=0x1f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[from..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        i += 1;
        from = i;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

/// A value of one top-level field of a record.
enum Field<'a> {
    Str(&'a str),
    Num(u64),
    Side(&'a Side),
    Leg(&'a Leg),
    /// Already JSON text (the caller's extra fields).
    Raw(&'a [u8]),
}

impl Record {
    /// Appends the record as one JSON object (no newline) with `extra` fields merged in:
    /// `extra` are `(key, JSON text of the value)`, in sorted key order, none of them a
    /// key of the record. The same bytes as serde_json gives for [`Record::to_json`]
    /// with the extra fields inserted.
    pub fn write_json(&self, out: &mut Vec<u8>, extra: &[(&str, &[u8])]) {
        // The record's fields in sorted key order (at most 10: a stack array): bytes,
        // client, command, data, desc, dst, duration_secs, phase, proto, rule, src,
        // target, verdict.
        let mut fields: [(&str, Field<'_>); 10] = std::array::from_fn(|_| ("", Field::Num(0)));
        let mut n = 0;
        let mut add = |k: &'static str, v| {
            fields[n] = (k, v);
            n += 1;
        };
        let (phase, desc, ends, summary, bytes, data, duration) = match &self.event {
            Event::Start { ends, desc } => {
                ("start", desc.as_deref(), Some(ends), None, None, None, None)
            }
            Event::Io { ends, bytes, data } => (
                "io",
                None,
                Some(ends),
                None,
                Some(*bytes),
                data.as_deref(),
                None,
            ),
            Event::Transient { ends, desc } => (
                "transient",
                desc.as_deref(),
                Some(ends),
                None,
                None,
                None,
                None,
            ),
            Event::Stop { ends, desc } => {
                ("stop", desc.as_deref(), Some(ends), None, None, None, None)
            }
            Event::Summary { summary, desc } => (
                "summary",
                Some(desc.as_str()),
                None,
                Some(summary),
                None,
                None,
                None,
            ),
            Event::Interim {
                summary,
                duration_secs,
            } => (
                "interim",
                None,
                None,
                Some(summary),
                None,
                None,
                Some(*duration_secs),
            ),
        };
        if let Some(b) = bytes {
            add("bytes", Field::Num(b));
        }
        if let Some(s) = summary {
            add("client", Field::Leg(&s.client));
        }
        add("command", Field::Str(self.command.as_str()));
        if let Some(d) = data {
            add("data", Field::Str(d));
        }
        if let Some(d) = desc {
            add("desc", Field::Str(d));
        }
        if let Some(d) = ends.and_then(|e| e.dst.as_ref()) {
            add("dst", Field::Side(d));
        }
        if let Some(d) = duration {
            add("duration_secs", Field::Num(d));
        }
        add("phase", Field::Str(phase));
        add(
            "proto",
            Field::Str(if self.proto == Proto::Tcp {
                "tcp"
            } else {
                "udp"
            }),
        );
        add("rule", Field::Num(u64::from(self.rule)));
        if let Some(e) = ends {
            add("src", Field::Side(&e.src));
        }
        if let Some(t) = summary.and_then(|s| s.target.as_ref()) {
            add("target", Field::Leg(t));
        }
        add(
            "verdict",
            Field::Str(if self.verdict == Verdict::Pass {
                "pass"
            } else {
                "block"
            }),
        );
        let fields = &fields[..n];
        debug_assert!(fields.windows(2).all(|w| w[0].0 < w[1].0));
        out.push(b'{');
        let mut first = true;
        let mut extra = extra.iter().peekable();
        let mut put = |out: &mut Vec<u8>, k: &str, v: &Field<'_>| {
            if !first {
                out.push(b',');
            }
            first = false;
            push_str(out, k);
            out.push(b':');
            field(out, v);
        };
        for (k, v) in fields.iter() {
            while let Some((ek, ev)) = extra.next_if(|(ek, _)| *ek < *k) {
                put(out, ek, &Field::Raw(ev));
            }
            put(out, k, v);
        }
        for (ek, ev) in extra {
            put(out, ek, &Field::Raw(ev));
        }
        out.push(b'}');
    }
}

fn field(out: &mut Vec<u8>, v: &Field<'_>) {
    match v {
        Field::Str(s) => push_str(out, s),
        Field::Num(n) => push_decimal(out, *n),
        Field::Side(s) => side(out, s),
        Field::Leg(l) => leg(out, l),
        Field::Raw(r) => out.extend_from_slice(r),
    }
}

fn side(out: &mut Vec<u8>, s: &Side) {
    out.push(b'[');
    for (i, e) in s.0.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        endpoint(out, e);
    }
    out.push(b']');
}

/// Keys in sorted order: `address` | `name`, `bracketed`, `method`, `port`,
/// `target_name`, `user` (`address` and `bracketed` sort before `method` before `name`).
fn endpoint(out: &mut Vec<u8>, e: &Endpoint) {
    out.push(b'{');
    if let EndpointHost::Ip(ip) = &e.host {
        out.extend_from_slice(b"\"address\":\"");
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                for (i, b) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    push_decimal(out, u64::from(*b));
                }
            }
            IpAddr::V6(v6) => {
                let _ = write!(out, "{v6}");
            }
        }
        out.extend_from_slice(b"\",");
    }
    if e.bracketed {
        out.extend_from_slice(b"\"bracketed\":true,");
    }
    if let Some(a) = &e.auth {
        out.extend_from_slice(b"\"method\":");
        push_str(out, &a.method);
        out.push(b',');
    }
    if let EndpointHost::Name(n) = &e.host {
        out.extend_from_slice(b"\"name\":");
        push_str(out, n);
        out.push(b',');
    }
    out.extend_from_slice(b"\"port\":");
    push_decimal(out, u64::from(e.port));
    if let Some(n) = &e.target_name {
        out.extend_from_slice(b",\"target_name\":");
        push_str(out, n);
    }
    if let Some(a) = &e.auth {
        out.extend_from_slice(b",\"user\":");
        push_str(out, &a.name);
    }
    out.push(b'}');
}

fn count(out: &mut Vec<u8>, c: &Count) {
    out.extend_from_slice(b"{\"bytes\":");
    push_decimal(out, c.bytes);
    if let Some(p) = c.packets {
        out.extend_from_slice(b",\"packets\":");
        push_decimal(out, p);
    }
    out.push(b'}');
}

fn leg(out: &mut Vec<u8>, l: &Leg) {
    out.extend_from_slice(b"{\"endpoints\":");
    side(out, &l.side);
    out.extend_from_slice(b",\"read\":");
    count(out, &l.read);
    out.extend_from_slice(b",\"written\":");
    count(out, &l.written);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte that serde_json escapes, escaped the same way.
    #[test]
    fn strings_escape_as_serde_json_does() {
        let all: String = (0u8..0x80).map(char::from).chain("é€😀".chars()).collect();
        let mut out = Vec::new();
        push_str(&mut out, &all);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&all).unwrap()
        );
    }
}
