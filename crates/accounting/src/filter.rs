//! `ferrosocks log grep`: which records to keep, by field, not by regular expression.
//!
//! A record's client is the first endpoint of its client side and its target the last
//! endpoint of its target side (summaries, interim records, start and stop lines). An
//! I/O line names no direction a single line can tell (bytes to the client are printed
//! `TARGET PROXY-EXT -> PROXY-INT CLIENT`), so for I/O and transient lines both outer
//! endpoints are tried for `--client` and for `--target`.

use std::net::IpAddr;

use traffic_log::{Command, Endpoint, EndpointHost, Event, Record, Side, Verdict};

/// A bad filter value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadFilter {
    /// Not `ADDRESS[/BITS]`.
    #[error("bad address or CIDR block {0:?}")]
    Cidr(String),
    /// Not `pass` or `block`.
    #[error("bad verdict {0:?}: expected pass or block")]
    Verdict(String),
    /// Not a command Dante logs.
    #[error("bad command {0:?}: expected accept, connect, bind, bindreply, udpassociate, udpreply or hostid")]
    Command(String),
    /// Not a phase.
    #[error("bad phase {0:?}: expected start, io, transient, stop, summary or interim")]
    Phase(String),
}

/// An address block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// `ADDRESS` or `ADDRESS/BITS`.
    pub fn parse(s: &str) -> Result<Self, BadFilter> {
        let bad = || BadFilter::Cidr(s.to_owned());
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(bad());
        }
        Ok(Self { net, bits })
    }

    /// Whether `ip` is in the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let shift = |n: u128, max: u8| {
            if self.bits == 0 {
                0
            } else {
                n >> (max - self.bits)
            }
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                shift(u128::from(u32::from(n)), 32) == shift(u128::from(u32::from(a)), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                shift(u128::from(n), 128) == shift(u128::from(a), 128)
            }
            _ => false,
        }
    }
}

/// What to match a target against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetMatch {
    /// An address block.
    Cidr(Cidr),
    /// A host name (case-insensitive), as requested.
    Name(String),
}

/// The fields to keep records by; every one given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The user name (any endpoint's).
    pub user: Option<String>,
    /// The client's address.
    pub client: Option<Cidr>,
    /// The target.
    pub target: Option<TargetMatch>,
    /// The target's port.
    pub port: Option<u16>,
    /// `pass` or `block`.
    pub verdict: Option<Verdict>,
    /// The rule number.
    pub rule: Option<u32>,
    /// The command.
    pub command: Option<Command>,
    /// The phase word (`start`, `io`, `transient`, `stop`, `summary`, `interim`).
    pub phase: Option<&'static str>,
}

/// The phase word of a record, as its JSON form says it.
pub fn phase_of(r: &Record) -> &'static str {
    match r.event {
        Event::Start { .. } => "start",
        Event::Io { .. } => "io",
        Event::Transient { .. } => "transient",
        Event::Stop { .. } => "stop",
        Event::Summary { .. } => "summary",
        Event::Interim { .. } => "interim",
    }
}

/// Parses `pass`/`block`.
pub fn verdict(s: &str) -> Result<Verdict, BadFilter> {
    match s {
        "pass" => Ok(Verdict::Pass),
        "block" => Ok(Verdict::Block),
        _ => Err(BadFilter::Verdict(s.to_owned())),
    }
}

/// Parses a command word.
pub fn command(s: &str) -> Result<Command, BadFilter> {
    [
        Command::Accept,
        Command::Connect,
        Command::Bind,
        Command::BindReply,
        Command::UdpAssociate,
        Command::UdpReply,
        Command::HostId,
    ]
    .into_iter()
    .find(|c| c.as_str() == s)
    .ok_or_else(|| BadFilter::Command(s.to_owned()))
}

/// Parses a phase word.
pub fn phase(s: &str) -> Result<&'static str, BadFilter> {
    ["start", "io", "transient", "stop", "summary", "interim"]
        .into_iter()
        .find(|p| *p == s)
        .ok_or_else(|| BadFilter::Phase(s.to_owned()))
}

/// The candidate client and target endpoints of a record, and every side it has.
fn ends_of(event: &Event) -> (Vec<&Endpoint>, Vec<&Endpoint>, Vec<&Side>) {
    match event {
        Event::Summary { summary, .. } | Event::Interim { summary, .. } => {
            let t = summary.target.as_ref().map(|t| &t.side);
            let mut sides = vec![&summary.client.side];
            sides.extend(t);
            (
                summary.client.side.0.first().into_iter().collect(),
                t.and_then(|t| t.0.last()).into_iter().collect(),
                sides,
            )
        }
        Event::Start { ends, .. } | Event::Stop { ends, .. } => {
            let mut sides = vec![&ends.src];
            sides.extend(ends.dst.as_ref());
            (
                ends.src.0.first().into_iter().collect(),
                ends.dst
                    .as_ref()
                    .and_then(|d| d.0.last())
                    .into_iter()
                    .collect(),
                sides,
            )
        }
        Event::Io { ends, .. } | Event::Transient { ends, .. } => {
            let mut sides = vec![&ends.src];
            sides.extend(ends.dst.as_ref());
            let outer: Vec<&Endpoint> = ends
                .src
                .0
                .first()
                .into_iter()
                .chain(ends.dst.as_ref().and_then(|d| d.0.last()))
                .collect();
            (outer.clone(), outer, sides)
        }
    }
}

fn ip_of(e: &Endpoint) -> Option<IpAddr> {
    match &e.host {
        EndpointHost::Ip(ip) => Some(*ip),
        EndpointHost::Name(n) => n.parse().ok(),
    }
}

impl Filter {
    /// Whether `r` passes every field given.
    pub fn matches(&self, r: &Record) -> bool {
        if self.verdict.is_some_and(|v| v != r.verdict)
            || self.rule.is_some_and(|n| n != r.rule)
            || self.command.is_some_and(|c| c != r.command)
            || self.phase.is_some_and(|p| p != phase_of(r))
        {
            return false;
        }
        let event = crate::orient::oriented(r);
        let (clients, targets, sides) = ends_of(&event);
        if let Some(user) = &self.user {
            let any = sides
                .iter()
                .flat_map(|s| s.0.iter())
                .any(|e| e.auth.as_ref().is_some_and(|a| &a.name == user));
            if !any {
                return false;
            }
        }
        if let Some(c) = &self.client {
            if !clients
                .iter()
                .any(|e| ip_of(e).is_some_and(|ip| c.contains(ip)))
            {
                return false;
            }
        }
        if let Some(t) = &self.target {
            let hit = |e: &&Endpoint| match t {
                TargetMatch::Cidr(c) => ip_of(e).is_some_and(|ip| c.contains(ip)),
                TargetMatch::Name(n) => {
                    matches!(&e.host, EndpointHost::Name(h) if h.eq_ignore_ascii_case(n))
                        || e.target_name
                            .as_ref()
                            .is_some_and(|h| h.eq_ignore_ascii_case(n))
                }
            };
            if !targets.iter().any(hit) {
                return false;
            }
        }
        if let Some(p) = self.port {
            if !targets.iter().any(|e| e.port == p) {
                return false;
            }
        }
        true
    }
}

impl TargetMatch {
    /// An address block when `s` is one, else a host name.
    pub fn parse(s: &str) -> Self {
        Cidr::parse(s).map_or_else(|_| Self::Name(s.to_owned()), Self::Cidr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(s: &str) -> Record {
        Record::parse(s).unwrap()
    }

    #[test]
    fn cidr_blocks() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fields_match() {
        let s = rec("pass(3): tcp/connect ]: 5 -> username%bob@10.0.0.5.45446 127.0.0.1.1080 -> 6, 6 -> 127.0.0.1.34339 192.0.2.7.443 -> 5: local client closed.  Session duration: 6s");
        let f = |f: Filter| f.matches(&s);
        assert!(f(Filter::default()));
        assert!(f(Filter {
            user: Some("bob".into()),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            user: Some("alice".into()),
            ..Filter::default()
        }));
        assert!(f(Filter {
            client: Some(Cidr::parse("10.0.0.0/8").unwrap()),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            client: Some(Cidr::parse("192.0.2.0/24").unwrap()),
            ..Filter::default()
        }));
        assert!(f(Filter {
            target: Some(TargetMatch::parse("192.0.2.7")),
            port: Some(443),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            port: Some(80),
            ..Filter::default()
        }));
        assert!(f(Filter {
            verdict: Some(Verdict::Pass),
            rule: Some(3),
            command: Some(Command::Connect),
            phase: Some("summary"),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            verdict: Some(Verdict::Block),
            ..Filter::default()
        }));
        let io = rec("pass(3): tcp/connect -: 192.0.2.7.443 127.0.0.1.34339 -> 127.0.0.1.1080 username%bob@10.0.0.5.45446 (6)");
        assert!(Filter {
            client: Some(Cidr::parse("10.0.0.5").unwrap()),
            user: Some("bob".into()),
            ..Filter::default()
        }
        .matches(&io));
        let named =
            rec("pass(1): tcp/connect [: 10.0.0.5.1 127.0.0.1.1080 -> 127.0.0.1.2 example.org.80");
        assert!(Filter {
            target: Some(TargetMatch::parse("EXAMPLE.org")),
            ..Filter::default()
        }
        .matches(&named));
    }
}
