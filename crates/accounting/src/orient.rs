//! Records seen from the SOCKS client's side.
//!
//! Every record puts the client first (`CLIENT PROXY-INT -> PROXY-EXT TARGET`, summary
//! legs client then target) except `bindreply`, which reports the connection the remote
//! host made to the bound port: `REMOTE PROXY-EXT -> PROXY-INT CLIENT`, and its summary
//! `W -> REMOTE PROXY-EXT -> R, W -> PROXY-INT CLIENT -> R` (docs/traffic-log.md).
//! [`oriented`] turns such a record round (legs swapped, sides reversed), so that the
//! accounting and the filters read every record the same way: the client is the first
//! endpoint of the client side, the target the last of the target side.

use std::borrow::Cow;

use traffic_log::{Command, Ends, Event, Leg, Record, Side, Summary};

fn reversed(s: &Side) -> Side {
    Side(s.0.iter().rev().cloned().collect())
}

fn turned(e: &Ends) -> Ends {
    match &e.dst {
        Some(d) => Ends {
            src: reversed(d),
            dst: Some(reversed(&e.src)),
        },
        None => e.clone(),
    }
}

fn turned_summary(s: &Summary) -> Summary {
    match &s.target {
        Some(t) => Summary {
            client: Leg {
                written: t.written,
                side: reversed(&t.side),
                read: t.read,
            },
            target: Some(Leg {
                written: s.client.written,
                side: reversed(&s.client.side),
                read: s.client.read,
            }),
        },
        None => s.clone(),
    }
}

/// The record's event with the client first (a copy only for `bindreply`).
pub fn oriented(r: &Record) -> Cow<'_, Event> {
    if r.command != Command::BindReply {
        return Cow::Borrowed(&r.event);
    }
    Cow::Owned(match &r.event {
        Event::Start { ends, desc } => Event::Start {
            ends: turned(ends),
            desc: desc.clone(),
        },
        Event::Io { ends, bytes, data } => Event::Io {
            ends: turned(ends),
            bytes: *bytes,
            data: data.clone(),
        },
        Event::Transient { ends, desc } => Event::Transient {
            ends: turned(ends),
            desc: desc.clone(),
        },
        Event::Stop { ends, desc } => Event::Stop {
            ends: turned(ends),
            desc: desc.clone(),
        },
        Event::Summary { summary, desc } => Event::Summary {
            summary: turned_summary(summary),
            desc: desc.clone(),
        },
        Event::Interim {
            summary,
            duration_secs,
        } => Event::Interim {
            summary: turned_summary(summary),
            duration_secs: *duration_secs,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bindreply_summary_turned_round() {
        let r = Record::parse("pass(1): tcp/bindreply ]: 8 -> 192.0.2.9.4000 127.0.0.1.5000 -> 4, 4 -> 127.0.0.1.1080 10.0.0.5.3000 -> 8: local client closed.  Session duration: 0s").unwrap();
        let Event::Summary { summary, .. } = oriented(&r).into_owned() else {
            panic!()
        };
        assert_eq!(
            summary.client.side.to_string(),
            "10.0.0.5.3000 127.0.0.1.1080"
        );
        assert_eq!(
            (summary.client.written.bytes, summary.client.read.bytes),
            (4, 8)
        );
        let t = summary.target.unwrap();
        assert_eq!(t.side.to_string(), "127.0.0.1.5000 192.0.2.9.4000");
        assert_eq!((t.written.bytes, t.read.bytes), (8, 4));
        let c = Record::parse(
            "pass(1): tcp/connect [: 10.0.0.5.1 127.0.0.1.2 -> 127.0.0.1.3 192.0.2.9.4",
        )
        .unwrap();
        assert!(matches!(oriented(&c), Cow::Borrowed(_)));
    }
}
