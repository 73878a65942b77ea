//! Traffic records as JSON objects, with every part of the Dante line kept in a field so
//! that the line can be rebuilt exactly ([`Record::from_json`] then `to_string`).
//!
//! ```json
//! {"verdict":"pass","rule":2,"proto":"tcp","command":"connect","phase":"summary",
//!  "client":{"written":{"bytes":197},"endpoints":[{"address":"127.0.0.1","port":40822}, …],"read":{"bytes":79}},
//!  "target":{…},"desc":"remote peer closed.  Session duration: 0s"}
//! ```
//! Phases: `start` (`[:`), `io` (`-: … (N)`, with `bytes` and optional `data`),
//! `transient` (`-: …: DESC`), `stop` (`]: …`), `summary`, and `interim` (a session still
//! open: `client` and `target` as in a summary, and `duration_secs`). Endpoints: `address` (IPv4 or
//! IPv6) or `name`, `port`, and when known `method` and `user`; `bracketed` when Dante
//! prints the endpoint in brackets; `target_name` when the client asked for a host name
//! and Dante prints the address it resolved to (`{"address":"127.0.0.1","port":80,
//! "target_name":"localhost"}`). Sides are `src` and `dst` (lists of endpoints).

use serde_json::{json, Map, Value};

use crate::record::*;
use crate::ParseError;

impl Record {
    /// The record as a JSON object.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert(
            "verdict".into(),
            json!(if self.verdict == Verdict::Pass {
                "pass"
            } else {
                "block"
            }),
        );
        o.insert("rule".into(), json!(self.rule));
        o.insert(
            "proto".into(),
            json!(if self.proto == Proto::Tcp {
                "tcp"
            } else {
                "udp"
            }),
        );
        o.insert("command".into(), json!(self.command.as_str()));
        let ends = |o: &mut Map<String, Value>, e: &Ends| {
            o.insert("src".into(), side(&e.src));
            if let Some(d) = &e.dst {
                o.insert("dst".into(), side(d));
            }
        };
        let (phase, desc) = match &self.event {
            Event::Start { ends: e, desc } => {
                ends(&mut o, e);
                ("start", desc.as_deref())
            }
            Event::Io {
                ends: e,
                bytes,
                data,
            } => {
                ends(&mut o, e);
                o.insert("bytes".into(), json!(bytes));
                if let Some(d) = data {
                    o.insert("data".into(), json!(d));
                }
                ("io", None)
            }
            Event::Transient { ends: e, desc } => {
                ends(&mut o, e);
                ("transient", desc.as_deref())
            }
            Event::Stop { ends: e, desc } => {
                ends(&mut o, e);
                ("stop", desc.as_deref())
            }
            Event::Summary { summary, desc } => {
                o.insert("client".into(), leg(&summary.client));
                if let Some(t) = &summary.target {
                    o.insert("target".into(), leg(t));
                }
                ("summary", Some(desc.as_str()))
            }
            Event::Interim {
                summary,
                duration_secs,
            } => {
                o.insert("client".into(), leg(&summary.client));
                if let Some(t) = &summary.target {
                    o.insert("target".into(), leg(t));
                }
                o.insert("duration_secs".into(), json!(duration_secs));
                ("interim", None)
            }
        };
        o.insert("phase".into(), json!(phase));
        if let Some(d) = desc {
            o.insert("desc".into(), json!(d));
        }
        Value::Object(o)
    }

    /// Rebuilds a record from [`Record::to_json`]'s object.
    pub fn from_json(v: &Value) -> Result<Self, ParseError> {
        let bad = |what: &str| ParseError::Json(what.to_owned());
        let s = |k: &str| v.get(k).and_then(Value::as_str).ok_or_else(|| bad(k));
        let verdict = match s("verdict")? {
            "pass" => Verdict::Pass,
            "block" => Verdict::Block,
            _ => return Err(bad("verdict")),
        };
        let rule = v
            .get("rule")
            .and_then(Value::as_u64)
            .and_then(|r| u32::try_from(r).ok())
            .ok_or_else(|| bad("rule"))?;
        let proto = match s("proto")? {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => return Err(bad("proto")),
        };
        let command = Command::from_word(s("command")?).ok_or_else(|| bad("command"))?;
        let desc = v.get("desc").and_then(Value::as_str).map(str::to_owned);
        let ends = || -> Result<Ends, ParseError> {
            Ok(Ends {
                src: side_from(v.get("src").ok_or_else(|| bad("src"))?)?,
                dst: v.get("dst").map(side_from).transpose()?,
            })
        };
        let event = match s("phase")? {
            "start" => Event::Start {
                ends: ends()?,
                desc,
            },
            "io" => Event::Io {
                ends: ends()?,
                bytes: v
                    .get("bytes")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad("bytes"))?,
                data: v.get("data").and_then(Value::as_str).map(str::to_owned),
            },
            "transient" => Event::Transient {
                ends: ends()?,
                desc,
            },
            "stop" => Event::Stop {
                ends: ends()?,
                desc,
            },
            "summary" => Event::Summary {
                summary: Summary {
                    client: leg_from(v.get("client").ok_or_else(|| bad("client"))?)?,
                    target: v.get("target").map(leg_from).transpose()?,
                },
                desc: desc.unwrap_or_default(),
            },
            "interim" => Event::Interim {
                summary: Summary {
                    client: leg_from(v.get("client").ok_or_else(|| bad("client"))?)?,
                    target: v.get("target").map(leg_from).transpose()?,
                },
                duration_secs: v
                    .get("duration_secs")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad("duration_secs"))?,
            },
            _ => return Err(bad("phase")),
        };
        Ok(Self {
            verdict,
            rule,
            proto,
            command,
            event,
        })
    }
}

fn side(s: &Side) -> Value {
    Value::Array(s.0.iter().map(endpoint).collect())
}

fn endpoint(e: &Endpoint) -> Value {
    let mut o = Map::new();
    match &e.host {
        EndpointHost::Ip(ip) => o.insert("address".into(), json!(ip.to_string())),
        EndpointHost::Name(n) => o.insert("name".into(), json!(n)),
    };
    o.insert("port".into(), json!(e.port));
    if let Some(a) = &e.auth {
        o.insert("method".into(), json!(a.method));
        o.insert("user".into(), json!(a.name));
    }
    if e.bracketed {
        o.insert("bracketed".into(), json!(true));
    }
    if let Some(n) = &e.target_name {
        o.insert("target_name".into(), json!(n));
    }
    Value::Object(o)
}

fn count(c: &Count) -> Value {
    match c.packets {
        Some(p) => json!({ "bytes": c.bytes, "packets": p }),
        None => json!({ "bytes": c.bytes }),
    }
}

fn leg(l: &Leg) -> Value {
    json!({ "written": count(&l.written), "endpoints": side(&l.side), "read": count(&l.read) })
}

fn side_from(v: &Value) -> Result<Side, ParseError> {
    let items = v
        .as_array()
        .ok_or_else(|| ParseError::Json("endpoints".into()))?;
    items
        .iter()
        .map(endpoint_from)
        .collect::<Result<_, _>>()
        .map(Side)
}

fn endpoint_from(v: &Value) -> Result<Endpoint, ParseError> {
    let bad = || ParseError::Json("endpoint".into());
    let host = match (
        v.get("address").and_then(Value::as_str),
        v.get("name").and_then(Value::as_str),
    ) {
        (Some(a), None) => EndpointHost::Ip(a.parse().map_err(|_| bad())?),
        (None, Some(n)) => EndpointHost::Name(n.into()),
        _ => return Err(bad()),
    };
    let port = v
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(bad)?;
    let auth = match (
        v.get("method").and_then(Value::as_str),
        v.get("user").and_then(Value::as_str),
    ) {
        (Some(m), Some(u)) => Some(Auth {
            method: m.into(),
            name: u.into(),
        }),
        (None, None) => None,
        _ => return Err(bad()),
    };
    let bracketed = v.get("bracketed").and_then(Value::as_bool).unwrap_or(false);
    let target_name = match v.get("target_name") {
        None => None,
        Some(n) => Some(n.as_str().ok_or_else(bad)?.to_owned()),
    };
    Ok(Endpoint {
        auth,
        host,
        port,
        bracketed,
        target_name,
    })
}

fn count_from(v: &Value) -> Result<Count, ParseError> {
    Ok(Count {
        bytes: v
            .get("bytes")
            .and_then(Value::as_u64)
            .ok_or_else(|| ParseError::Json("bytes".into()))?,
        packets: v.get("packets").and_then(Value::as_u64),
    })
}

fn leg_from(v: &Value) -> Result<Leg, ParseError> {
    let bad = || ParseError::Json("leg".into());
    Ok(Leg {
        written: count_from(v.get("written").ok_or_else(bad)?)?,
        side: side_from(v.get("endpoints").ok_or_else(bad)?)?,
        read: count_from(v.get("read").ok_or_else(bad)?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target reached by name: the line prints the address, the JSON keeps the name,
    /// and the line is rebuilt from the JSON exactly.
    #[test]
    fn target_name_is_kept_beside_the_address() {
        let line = "pass(1): tcp/connect [: 127.0.0.1.40822 127.0.0.1.1080 -> 127.0.0.1.41377 127.0.0.1.31839";
        let mut record = Record::parse(line).unwrap();
        let Event::Start { ends, .. } = &mut record.event else {
            panic!("not a start line")
        };
        let target = ends.dst.as_mut().and_then(|d| d.0.last_mut()).unwrap();
        target.target_name = Some("localhost".into());
        assert_eq!(record.to_string(), line);
        let json = record.to_json();
        assert_eq!(
            json["dst"][1],
            json!({"address": "127.0.0.1", "port": 31839, "target_name": "localhost"})
        );
        let back = Record::from_json(&json).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.to_string(), line);
    }
}
