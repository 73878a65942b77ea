//! Reading traffic log lines back into [`Record`]s.
//!
//! The parser accepts every line [`Record`]'s `Display` writes and every line Dante
//! 1.2.3 and 1.4.x print for the record kinds in [`Command`], so that
//! `parse(line).to_string() == line`.

use std::net::IpAddr;

use crate::record::*;

/// Why a line is not a traffic record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The line does not start with `pass(` or `block(`.
    #[error("expected \"pass(N)\" or \"block(N)\" at the start of {0:?}")]
    Verdict(String),
    /// The rule number is not a number.
    #[error("bad rule number {0:?}")]
    RuleNumber(String),
    /// The protocol or command word is not one Dante prints.
    #[error("unknown operation {0:?}")]
    Operation(String),
    /// The phase marker is not `[:`, `-:` or `]:`.
    #[error("unknown phase marker in {0:?}")]
    Phase(String),
    /// An endpoint is not `HOST.PORT`.
    #[error("bad endpoint {0:?}")]
    Endpoint(String),
    /// A byte or packet count is not a number.
    #[error("bad count {0:?}")]
    Count(String),
    /// A summary does not have the `W -> SIDE -> R` shape.
    #[error("bad session summary {0:?}")]
    Summary(String),
    /// A JSON record lacks a field or has one of the wrong type.
    #[error("bad JSON traffic record: field {0:?}")]
    Json(String),
}

/// The phase marker of a traffic line: `[:`, `-:` or `]:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// `[:` — a start.
    Start,
    /// `-:` — an I/O operation, a transient record or an interim record.
    Dash,
    /// `]:` — a stop or a summary.
    End,
}

/// The head of a traffic line, `VERDICT(N): PROTO/CMD `, read; the rest is not.
struct Head<'a> {
    verdict: Verdict,
    rule: u32,
    proto: Proto,
    command: Command,
    rest: &'a str,
}

fn parse_head(line: &str) -> Result<Head<'_>, ParseError> {
    let (verdict, rest) = if let Some(r) = line.strip_prefix("pass(") {
        (Verdict::Pass, r)
    } else if let Some(r) = line.strip_prefix("block(") {
        (Verdict::Block, r)
    } else {
        return Err(ParseError::Verdict(line.into()));
    };
    let (rule, rest) = rest
        .split_once("): ")
        .ok_or_else(|| ParseError::RuleNumber(rest.into()))?;
    let rule = number(rule).ok_or_else(|| ParseError::RuleNumber(rule.into()))?;
    let (op, rest) = rest
        .split_once(' ')
        .ok_or_else(|| ParseError::Operation(rest.into()))?;
    let (proto, command) = op
        .split_once('/')
        .ok_or_else(|| ParseError::Operation(op.into()))?;
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return Err(ParseError::Operation(op.into())),
    };
    let command = Command::from_word(command).ok_or_else(|| ParseError::Operation(op.into()))?;
    Ok(Head {
        verdict,
        rule,
        proto,
        command,
        rest,
    })
}

impl Record {
    /// Parses one traffic line (without the line prefix and without the newline).
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let head = parse_head(line)?;
        let event = parse_event(head.rest)?;
        Ok(Self {
            verdict: head.verdict,
            rule: head.rule,
            proto: head.proto,
            command: head.command,
            event,
        })
    }

    /// The phase marker of a traffic line and what follows it, reading only the line's
    /// head (verdict, rule, protocol and command): for readers that skip some phases
    /// (`ferrosocks log stats` does not need I/O lines) without the cost of parsing
    /// their endpoints. A line [`Record::parse`] accepts always has a marker; the
    /// converse need not hold.
    pub fn marker(line: &str) -> Result<(Marker, &str), ParseError> {
        let rest = parse_head(line)?.rest;
        let marker = match rest.get(..3) {
            Some("[: ") => Marker::Start,
            Some("-: ") => Marker::Dash,
            Some("]: ") => Marker::End,
            _ => return Err(ParseError::Phase(rest.into())),
        };
        Ok((marker, &rest[3..]))
    }
}

fn parse_event(s: &str) -> Result<Event, ParseError> {
    // `get`, not `split_at`: the line may have a multi-byte character there.
    let (Some(marker), Some(body)) = (s.get(..3), s.get(3..)) else {
        return Err(ParseError::Phase(s.into()));
    };
    match marker {
        "[: " => {
            let (ends, desc) = split_desc(body);
            Ok(Event::Start {
                ends: parse_ends(ends)?,
                desc,
            })
        }
        "-: " => parse_io(body),
        "]: " if starts_with_count(body) => parse_summary(body),
        "]: " => {
            let (ends, desc) = split_desc(body);
            Ok(Event::Stop {
                ends: parse_ends(ends)?,
                desc,
            })
        }
        _ => Err(ParseError::Phase(s.into())),
    }
}

/// Endpoints never contain ": " (IPv6 colons are followed by hex digits), so the first
/// ": " separates the endpoints from the description.
fn split_desc(s: &str) -> (&str, Option<String>) {
    match s.split_once(": ") {
        Some((ends, desc)) => (ends, Some(desc.to_owned())),
        None => (s, None),
    }
}

fn parse_io(body: &str) -> Result<Event, ParseError> {
    let (head, desc) = split_desc(body);
    if let Some(interim) = desc
        .as_deref()
        .and_then(|d| d.strip_prefix("interim: "))
        .and_then(|counts| parse_interim(head, counts))
    {
        return Ok(interim);
    }
    if let Some((ends, count)) = head.rsplit_once(" (") {
        if let Some(n) = count.strip_suffix(')') {
            let bytes = number(n).ok_or_else(|| ParseError::Count(n.into()))?;
            return Ok(Event::Io {
                ends: parse_ends(ends)?,
                bytes,
                data: desc,
            });
        }
    }
    Ok(Event::Transient {
        ends: parse_ends(head)?,
        desc,
    })
}

/// `ENDS` and `W -> client -> R[, W -> target -> R].  Session duration: Ns` of an
/// interim record; `None` when it is not one (the line is then a transient record).
fn parse_interim(ends: &str, counts: &str) -> Option<Event> {
    let (counts, secs) = counts.split_once(".  Session duration: ")?;
    let duration_secs = number(secs.strip_suffix('s')?)?;
    let ends = parse_ends(ends).ok()?;
    let (client, target) = match counts.split_once(", ") {
        Some((c, t)) => (c, Some(t)),
        None => (counts, None),
    };
    let pair = |s: &str, word: &str| -> Option<(Count, Count)> {
        let (w, r) = s.split_once(word)?;
        Some((parse_count(w).ok()?, parse_count(r).ok()?))
    };
    let (cw, cr) = pair(client, " -> client -> ")?;
    let target = match (target, ends.dst) {
        (Some(t), Some(side)) => {
            let (tw, tr) = pair(t, " -> target -> ")?;
            Some(Leg {
                written: tw,
                side,
                read: tr,
            })
        }
        (None, None) => None,
        _ => return None,
    };
    Some(Event::Interim {
        summary: Summary {
            client: Leg {
                written: cw,
                side: ends.src,
                read: cr,
            },
            target,
        },
        duration_secs,
    })
}

fn starts_with_count(s: &str) -> bool {
    s.split_once(" -> ")
        .is_some_and(|(first, _)| parse_count(first).is_ok())
}

fn parse_summary(body: &str) -> Result<Event, ParseError> {
    let (counts, desc) = split_desc(body);
    if desc.as_deref() == Some("") {
        // An empty description is written as none at all; ": " alone is not Dante's.
        return Err(ParseError::Summary(body.into()));
    }
    let mut legs = counts.split(", ").map(parse_leg);
    let client = legs
        .next()
        .ok_or_else(|| ParseError::Summary(body.into()))??;
    let target = legs.next().transpose()?;
    if legs.next().is_some() {
        return Err(ParseError::Summary(body.into()));
    }
    Ok(Event::Summary {
        summary: Summary { client, target },
        // The 1.2.3 chaining summary has no description; keep what is there.
        desc: desc.unwrap_or_default(),
    })
}

fn parse_leg(s: &str) -> Result<Leg, ParseError> {
    let mut parts = s.split(" -> ");
    let (Some(w), Some(side), Some(r), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Summary(s.into()));
    };
    Ok(Leg {
        written: parse_count(w)?,
        side: parse_side(side)?,
        read: parse_count(r)?,
    })
}

fn parse_count(s: &str) -> Result<Count, ParseError> {
    let num = |t: &str| number(t).ok_or_else(|| ParseError::Count(s.into()));
    Ok(match s.split_once('/') {
        Some((b, p)) => Count {
            bytes: num(b)?,
            packets: Some(num(p)?),
        },
        None => Count::bytes(num(s)?),
    })
}

fn parse_ends(s: &str) -> Result<Ends, ParseError> {
    let (src, dst) = match s.split_once(" -> ") {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    Ok(Ends {
        src: parse_side(src)?,
        dst: dst.map(parse_side).transpose()?,
    })
}

fn parse_side(s: &str) -> Result<Side, ParseError> {
    s.split(' ')
        .map(parse_endpoint)
        .collect::<Result<_, _>>()
        .map(Side)
}

fn parse_endpoint(token: &str) -> Result<Endpoint, ParseError> {
    let bad = || ParseError::Endpoint(token.into());
    let (inner, bracketed) = match token.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(inner) => (inner, true),
        None => (token, false),
    };
    let (auth, hostport) = match inner.rsplit_once('@') {
        Some((a, hp)) => {
            let (method, name) = a.split_once('%').ok_or_else(bad)?;
            let auth = Auth {
                method: method.into(),
                name: name.into(),
            };
            (Some(auth), hp)
        }
        None => (None, inner),
    };
    let (host, port) = hostport.rsplit_once('.').ok_or_else(bad)?;
    if host.is_empty() {
        return Err(bad());
    }
    let port = number(port).ok_or_else(bad)?;
    let host = match host.parse::<IpAddr>() {
        // Only take the address form when it prints back the same way: std's IPv4
        // parser takes only the canonical form (no leading zeros), IPv6 text has many.
        Ok(ip @ IpAddr::V4(_)) => EndpointHost::Ip(ip),
        Ok(ip) if ip.to_string() == host => EndpointHost::Ip(ip),
        _ => EndpointHost::Name(host.into()),
    };
    Ok(Endpoint {
        auth,
        host,
        port,
        bracketed,
        target_name: None,
    })
}

/// A decimal number as Dante prints one: digits only, no leading zero, so that the
/// text it came from is the only text it formats to.
fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(line: &str) -> Record {
        let r = Record::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(r.to_string(), line);
        r
    }

    #[test]
    fn every_phase_round_trips() {
        let r = round_trip("pass(1): tcp/accept [: 127.0.0.1.40822 127.0.0.1.47080");
        assert!(matches!(r.event, Event::Start { ref ends, desc: None } if ends.dst.is_none()));
        let r = round_trip("pass(2): tcp/connect -: 127.0.0.1.47081 127.0.0.1.41377 -> 127.0.0.1.47080 127.0.0.1.40822 (184)");
        assert!(matches!(r.event, Event::Io { bytes: 184, .. }));
        round_trip("pass(3): tcp/connect ]: 5 -> username%ferrotest@127.0.0.1.45446 127.0.0.1.47080 -> 5, 5 -> 127.0.0.1.34339 127.0.0.1.47082 -> 5: local client error (Connection reset by peer).  Session duration: 6s");
        round_trip("block(1): tcp/accept ]: 127.0.0.1.60566 127.0.0.1.47091: blocked by higher-level socks-rule #0: no rules matched; using default block rule");
        round_trip("pass(1): udp/udpassociate [: 0.52499 127.0.0.1.49013");
        let r = round_trip("pass(1): udp/udpassociate ]: 34/2 -> 127.0.0.1.52499 127.0.0.1.49013 -> 34/2, 14/2 -> 127.0.0.1.50456 127.0.0.1.47083 -> 14/2: local client closed.  Session duration: 6s");
        assert!(
            matches!(r.event, Event::Summary { ref summary, .. } if summary.client.written.packets == Some(2))
        );
        round_trip("pass(1): tcp/connect [: 127.0.0.1.33300 127.0.0.1.23191 -> 127.0.0.1.38007 127.0.0.1.23190 [127.0.0.1.37393] 127.0.0.1.47081");
        round_trip(
            "pass(1): tcp/connect -: ::1.5000 ::1.1080 -> ::1.40000 localhost.80 (3): GET\\s/",
        );
        round_trip("pass(1): tcp/connect -: 10.0.0.1.5 10.0.0.2.6 -> 10.0.0.3.7 10.0.0.4.8: some temporary error");
    }

    #[test]
    fn interim_records_round_trip_and_near_misses_stay_transient() {
        let r = round_trip("pass(2): tcp/connect -: username%bob@127.0.0.1.35258 127.0.0.1.21013 -> 127.0.0.1.37659 127.0.0.1.21010: interim: 197 -> client -> 79, 79 -> target -> 197.  Session duration: 65s");
        let Event::Interim {
            summary,
            duration_secs: 65,
        } = &r.event
        else {
            panic!("not interim: {r:?}")
        };
        assert_eq!(summary.client.written.bytes, 197);
        assert_eq!(summary.client.read.bytes, 79);
        let t = summary.target.as_ref().unwrap();
        assert_eq!((t.written.bytes, t.read.bytes), (79, 197));
        assert_eq!(t.side.to_string(), "127.0.0.1.37659 127.0.0.1.21010");
        let r = round_trip("pass(1): tcp/accept -: 127.0.0.1.1 127.0.0.1.2: interim: 5 -> client -> 7.  Session duration: 0s");
        assert!(matches!(r.event, Event::Interim { ref summary, .. } if summary.target.is_none()));
        let r = round_trip("pass(1): udp/udpassociate -: 127.0.0.1.1 127.0.0.1.2 -> 127.0.0.1.3 127.0.0.1.4: interim: 34/2 -> client -> 34/2, 14/2 -> target -> 14/2.  Session duration: 9s");
        assert!(matches!(r.event, Event::Interim { .. }));
        for near in [
            "pass(1): tcp/connect -: 127.0.0.1.1 127.0.0.1.2 -> 127.0.0.1.3 127.0.0.1.4: interim: 5 -> client -> 7.  Session duration: 1s",
            "pass(1): tcp/connect -: 127.0.0.1.1 127.0.0.1.2: interim: 5 -> client -> 7, 1 -> target -> 2.  Session duration: 1s",
            "pass(1): tcp/connect -: 127.0.0.1.1 127.0.0.1.2: interim: 5 -> client -> 07.  Session duration: 1s",
            "pass(1): tcp/connect -: 127.0.0.1.1 127.0.0.1.2: interim: 5 -> client -> 7.  Session duration: 1",
            "pass(1): tcp/connect -: 127.0.0.1.1 127.0.0.1.2: interim: soon",
        ] {
            let r = round_trip(near);
            assert!(matches!(r.event, Event::Transient { .. }), "{near}");
        }
    }

    #[test]
    fn non_canonical_addresses_stay_names() {
        for host in ["10.0.0.01", "010.0.0.1", "::0001", "0:0::1"] {
            let r = round_trip(&format!("pass(1): tcp/accept [: {host}.1 127.0.0.1.2"));
            let Event::Start { ends, .. } = r.event else {
                panic!()
            };
            assert!(
                matches!(ends.src.0[0].host, EndpointHost::Name(_)),
                "{host}"
            );
        }
    }

    #[test]
    fn markers_without_parsing_the_rest() {
        let m = |s: &str| Record::marker(s).map(|(m, _)| m);
        assert_eq!(m("pass(1): tcp/accept [: x"), Ok(Marker::Start));
        assert_eq!(m("block(0): udp/udpreply -: x"), Ok(Marker::Dash));
        assert_eq!(m("pass(2): tcp/connect ]: x"), Ok(Marker::End));
        assert!(m("pass(2): tcp/connect ?: x").is_err());
        assert!(m("pass(02): tcp/connect ]: x").is_err());
        assert!(m("pass(2): tcp/frob ]: x").is_err());
    }

    #[test]
    fn rejects_what_is_not_a_record() {
        assert!(matches!(
            Record::parse("Dante/server[1/1] v1.4.2 running"),
            Err(ParseError::Verdict(_))
        ));
        assert!(matches!(
            Record::parse("pass(x): tcp/connect [: a.1"),
            Err(ParseError::RuleNumber(_))
        ));
        assert!(matches!(
            Record::parse("pass(1): tcp/frob [: a.1"),
            Err(ParseError::Operation(_))
        ));
        assert!(matches!(
            Record::parse("pass(1): tcp/connect ?: a.1"),
            Err(ParseError::Phase(_))
        ));
        assert!(matches!(
            Record::parse("pass(1): tcp/connect [: nohostport"),
            Err(ParseError::Endpoint(_))
        ));
    }
}
