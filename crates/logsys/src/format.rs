//! The two line formats: Dante's text line and JSON lines.

use std::time::SystemTime;

use chrono::{DateTime, Datelike, Local, SecondsFormat, Timelike};
use serde_json::{json, Value};
use traffic_log::{LocalTime, Prefix};

use crate::{Entry, Payload};

/// The message text of a record (a traffic record's Dante line).
pub(crate) fn message(p: &Payload) -> String {
    match p {
        Payload::Text(t) => t.clone(),
        Payload::Traffic(r) => r.to_string(),
    }
}

/// Dante's prefix for a record: `Mon DD HH:MM:SS (secs.usec) program[pid]: level: `.
pub(crate) fn prefix(program: &str, pid: u32, time: SystemTime, level: crate::Level) -> String {
    let local: DateTime<Local> = time.into();
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Prefix {
        local: LocalTime {
            month: local.month() as u8,
            day: local.day() as u8,
            hour: local.hour() as u8,
            minute: local.minute() as u8,
            second: local.second().min(60) as u8,
        },
        epoch_secs: since.as_secs() as i64,
        micros: since.subsec_micros(),
        program: program.to_owned(),
        pid,
        level: level.dante(),
    }
    .to_string()
}

/// One JSON object (without newline): `ts`, `level`, `subsystem`, `pid`, `msg`, and for
/// traffic records every field of [`traffic_log::Record::to_json`] at the top level.
pub(crate) fn json_line(pid: u32, e: &Entry, msg: &str) -> String {
    let local: DateTime<Local> = e.time.into();
    let mut o = json!({
        "ts": local.to_rfc3339_opts(SecondsFormat::Micros, true),
        "level": e.level.name(),
        "subsystem": e.subsystem.name(),
        "pid": pid,
        "msg": msg,
    });
    if let (Payload::Traffic(r), Value::Object(map)) = (&e.payload, &mut o) {
        if let Value::Object(fields) = r.to_json() {
            map.extend(fields);
        }
    }
    o.to_string()
}
