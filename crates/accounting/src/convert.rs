//! `ferrosocks log convert`: a decoded line as the JSON line ferrosocks' JSON sink
//! writes, or as a CSV row.
//!
//! JSON: `ts` (RFC 3339, UTC; absent when the line has no time), `level` (the line's
//! Dante level word, when it has one), `pid`, `msg` (the message text) and, for a
//! traffic record, every field of [`traffic_log::Record::to_json`] at the top level.
//! The sink's `subsystem` is not in the text and is left out. CSV: [`CSV_FIELDS`], with
//! `bindreply` records turned to the client's point of view ([`crate::orient`]).

use serde_json::{json, Value};
use traffic_log::{Event, Record, Verdict};

use crate::decode::Line;
use crate::filter::phase_of;
use crate::time::format_utc;

/// The CSV header of `log convert --to csv`.
pub const CSV_FIELDS: [&str; 17] = [
    "ts",
    "verdict",
    "rule",
    "proto",
    "command",
    "phase",
    "user",
    "client",
    "client_port",
    "target",
    "target_port",
    "bytes_from_client",
    "bytes_to_client",
    "bytes_from_target",
    "bytes_to_target",
    "io_bytes",
    "desc",
];

fn ts(line: &Line<'_>) -> Option<String> {
    line.time.map(|t| {
        let s = format_utc(t);
        format!("{}.{:06}Z", s.trim_end_matches('Z'), line.micros)
    })
}

/// The JSON line (without newline) for `line`, with `record` when it holds one.
pub fn json_line(line: &Line<'_>, record: Option<&Record>) -> String {
    let mut o = json!({ "msg": line.msg });
    if let Value::Object(map) = &mut o {
        if let Some(t) = ts(line) {
            map.insert("ts".into(), json!(t));
        }
        if let Some(l) = line.level {
            map.insert("level".into(), json!(l.as_str()));
        }
        if let Some(p) = line.pid {
            map.insert("pid".into(), json!(p));
        }
        if let Some(Value::Object(fields)) = record.map(Record::to_json) {
            map.extend(fields);
        }
    }
    o.to_string()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The CSV row (without newline) of a record.
pub fn csv_row(line: &Line<'_>, r: &Record) -> String {
    let event = crate::orient::oriented(r);
    let (client_side, target_side, counts, io, desc) = match event.as_ref() {
        Event::Summary { summary, desc } => (
            Some(&summary.client.side),
            summary.target.as_ref().map(|t| &t.side),
            Some(summary),
            None,
            Some(desc.clone()),
        ),
        Event::Interim {
            summary,
            duration_secs,
        } => (
            Some(&summary.client.side),
            summary.target.as_ref().map(|t| &t.side),
            Some(summary),
            None,
            Some(format!("interim.  Session duration: {duration_secs}s")),
        ),
        Event::Start { ends, desc } | Event::Stop { ends, desc } => {
            (Some(&ends.src), ends.dst.as_ref(), None, None, desc.clone())
        }
        Event::Transient { ends, desc } => {
            (Some(&ends.src), ends.dst.as_ref(), None, None, desc.clone())
        }
        Event::Io { ends, bytes, .. } => {
            (Some(&ends.src), ends.dst.as_ref(), None, Some(*bytes), None)
        }
    };
    let first = client_side.and_then(|s| s.0.first());
    let last = target_side.and_then(|s| s.0.last());
    let user = client_side
        .into_iter()
        .chain(target_side)
        .flat_map(|s| s.0.iter())
        .find_map(|e| e.auth.as_ref())
        .map(|a| a.name.clone());
    let host = |e: &traffic_log::Endpoint| match &e.host {
        traffic_log::EndpointHost::Ip(ip) => ip.to_string(),
        traffic_log::EndpointHost::Name(n) => n.clone(),
    };
    let n = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let fields: [String; 17] = [
        ts(line).unwrap_or_default(),
        if r.verdict == Verdict::Pass {
            "pass"
        } else {
            "block"
        }
        .into(),
        r.rule.to_string(),
        format!("{:?}", r.proto).to_lowercase(),
        r.command.as_str().into(),
        phase_of(r).into(),
        user.unwrap_or_default(),
        first.map(host).unwrap_or_default(),
        n(first.map(|e| u64::from(e.port))),
        last.map(host).unwrap_or_default(),
        n(last.map(|e| u64::from(e.port))),
        n(counts.map(|s| s.client.read.bytes)),
        n(counts.map(|s| s.client.written.bytes)),
        n(counts.and_then(|s| s.target.as_ref()).map(|t| t.read.bytes)),
        n(counts
            .and_then(|s| s.target.as_ref())
            .map(|t| t.written.bytes)),
        n(io),
        desc.unwrap_or_default(),
    ];
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}
