//! `GET /status.json`: the sessions registry's snapshot and totals as JSON, rendered
//! purely (no I/O) from the same [`SessionSnapshot`]s and [`Totals`] the status file
//! renders, with the same address and command names ([`crate::status`]).
//!
//! Field names are stable (docs/metrics.md): `sessions` (oldest first) with `id`,
//! `client`, `internal`, `external`, `user`, `method`, `rule`, `command`, `target`,
//! `resolved`, `state`, `started` and `last_activity` (Unix seconds), `age`, `idle`
//! (seconds), `bytes_from_client`, `bytes_to_client`, `bytes_from_target`,
//! `bytes_to_target`, `packets_*` likewise; `totals` with `accepted`, `handed`,
//! `blocked`, `ended`, `live`, and the bytes of ended sessions; `time` (Unix seconds,
//! with milliseconds).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use server::registry::{SessionSnapshot, SessionState, Totals, Traffic};

use crate::status::{command_name, real_address};

fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| (d.as_millis() as f64) / 1000.0)
}

fn whole_secs(from: SystemTime, to: SystemTime) -> u64 {
    to.duration_since(from).map_or(0, |d| d.as_secs())
}

fn traffic(t: &Traffic, into: &mut serde_json::Map<String, Value>) {
    for (name, c) in [
        ("from_client", t.from_client),
        ("to_client", t.to_client),
        ("from_target", t.from_target),
        ("to_target", t.to_target),
    ] {
        into.insert(format!("bytes_{name}"), c.bytes.into());
        into.insert(format!("packets_{name}"), c.packets.into());
    }
}

fn state(s: SessionState) -> &'static str {
    match s {
        SessionState::Negotiating => "negotiating",
        SessionState::Requesting => "requesting",
        SessionState::Established => "established",
    }
}

fn session(s: &SessionSnapshot, now: SystemTime) -> Value {
    let mut v = json!({
        "id": s.id,
        "client": real_address(s.client),
        "internal": real_address(s.internal),
        "external": s.external.map(real_address),
        "user": s.user,
        "method": s.method.map(|m| m.as_str()),
        "rule": s.rule,
        "command": s.command.map(command_name),
        "target": s.target,
        "resolved": s.resolved.map(real_address),
        "state": state(s.state),
        "started": secs(s.started),
        "last_activity": secs(s.last_activity),
        "age": whole_secs(s.started, now),
        "idle": whole_secs(s.last_activity, now),
    });
    if let Value::Object(m) = &mut v {
        traffic(&s.traffic, m);
    }
    v
}

/// The document for `sessions` and `totals` at `now`, one line, ending in a newline.
pub fn render(sessions: &[SessionSnapshot], totals: &Totals, now: SystemTime) -> String {
    let mut t = json!({
        "accepted": totals.accepted,
        "handed": totals.handed,
        "blocked": totals.blocked,
        "ended": totals.ended,
        "live": sessions.len(),
    });
    if let Value::Object(m) = &mut t {
        traffic(&totals.traffic, m);
    }
    let doc = json!({
        "time": secs(now),
        "version": env!("CARGO_PKG_VERSION"),
        "sessions": sessions.iter().map(|s| session(s, now)).collect::<Vec<_>>(),
        "totals": t,
    });
    let mut out = doc.to_string();
    out.push('\n');
    out
}

/// The most recent log records (`GET /log.json`): `time` (Unix seconds), `level`,
/// `subsystem`, `text`; one line, ending in a newline.
pub fn render_log(records: &[logsys::OperatorRecord]) -> String {
    let lines: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "time": secs(r.time),
                "level": r.level.name(),
                "subsystem": r.subsystem.name(),
                "text": r.text,
            })
        })
        .collect();
    let mut out = Value::Array(lines).to_string();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use server::registry::{Count, SessionState};
    use sockd_conf::{AuthMethod, SocksCommand};

    use super::*;

    #[test]
    fn a_session_and_the_totals_as_golden_json() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let s = SessionSnapshot {
            id: 7,
            client: "127.0.0.1:40000".parse().unwrap(),
            internal: "127.0.0.1:1080".parse().unwrap(),
            external: Some("[::ffff:127.0.0.1]:50000".parse().unwrap()),
            user: Some("al\"ice".into()),
            method: Some(AuthMethod::Username),
            rule: Some(2),
            command: Some(SocksCommand::Connect),
            target: Some("example.org:80".into()),
            resolved: Some("[2001:db8::1]:80".parse().unwrap()),
            state: SessionState::Established,
            started: t0,
            last_activity: t0 + Duration::from_millis(2500),
            traffic: Traffic {
                from_client: Count {
                    bytes: 78,
                    packets: 1,
                },
                to_client: Count {
                    bytes: 1000,
                    packets: 2,
                },
                from_target: Count {
                    bytes: 1000,
                    packets: 2,
                },
                to_target: Count {
                    bytes: 78,
                    packets: 1,
                },
            },
        };
        let totals = Totals {
            accepted: 9,
            handed: 8,
            blocked: 1,
            ended: 8,
            traffic: Traffic::default(),
        };
        let out = render(&[s], &totals, t0 + Duration::from_secs(10));
        // The version changes with releases, not with the format.
        let version = format!("\"version\":\"{}\"", env!("CARGO_PKG_VERSION"));
        crate::mgmt_golden::golden(
            "status-json",
            &out.replace(&version, "\"version\":\"VERSION\""),
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["sessions"][0]["external"], "127.0.0.1:50000");
        assert_eq!(v["sessions"][0]["age"], 10);
        assert_eq!(v["sessions"][0]["idle"], 7);
        assert_eq!(v["totals"]["live"], 1);
    }
}
