//! The accounting itself: records in, per-group [`Stats`] out.
//!
//! Rules (docs/accounting.md says the same for users):
//!
//! - A session is counted once, from its `]:` summary. Dante and ferrosocks write the
//!   socks rule's summary first, then the client rule's (`tcp/accept`) for the same
//!   connection: an accept summary whose client side matches one of the last socks-level
//!   records is the same session and is not counted again; one with no such match (only
//!   the client rule logs `disconnect`) is counted, with client bytes only. Blocks pair
//!   the same way (`block(N): tcp/connect ]:` then `block(N): tcp/accept ]:`). A UDP
//!   association's accept summary names the TCP control connection and its
//!   `udpassociate` summary the UDP ports: they pair by the client's address; an
//!   association that used an IPv4 and an IPv6 external socket has two `udpassociate`
//!   summaries (same client side), one session.
//! - Interim records (`log.interim`) are kept per open session (keyed by rule, command
//!   and both sides, which its summary repeats), the latest replacing the one before; the
//!   summary drops it. A UDP association's are keyed by rule and `PROXY-INTUDP` (its
//!   client's port and last target may change while it is open), one part per external
//!   socket (`PROXY-EXT`, as its summaries); a record from before it had a socket is
//!   replaced by the sockets' ones. Sessions whose summary never came (still open when
//!   the log ends, or the log was cut) are counted at the end with their last interim
//!   bytes, as `open_sessions`, once per association. Memory: one entry per session
//!   open at once.
//! - An input with no summary and no interim record at all but with `[:` lines (the
//!   rules log `connect` only) counts sessions from the start lines (socks-level ones, or
//!   `tcp/accept` when there are none) and says the bytes are unknown
//!   ([`Report::bytes_known`]).
//! - A record is placed in time by its line (the summary: when the session ended);
//!   `--since` (inclusive) and `--until` (exclusive) drop records outside; records
//!   without a time are kept and counted as undated.
//! - Bytes: `from_client`/`to_client` are the client leg's read/written counts,
//!   `from_target`/`to_target` the target leg's; an accept summary has no target leg.
//!   `bindreply` records are read turned round ([`crate::orient`]): the client is the
//!   SOCKS client, the target the host that connected to the bound port.

use std::collections::hash_map::{DefaultHasher, HashMap};
use std::collections::{BTreeMap, VecDeque};
use std::hash::Hasher;

use traffic_log::{Command, EndpointHost, Event, Record, Side, Summary, Verdict};

use crate::decode::{decode_for_stats, Context, Decoded};
use crate::malformed::Malformed;
use crate::time;

/// What to group by (`--by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// The authenticated user (`-` when none).
    User,
    /// The client's address.
    Client,
    /// The target's address (or name, as the log gives it).
    Target,
    /// The target's port.
    Port,
    /// `socks-rule #N` or `client-rule #N`.
    Rule,
    /// `YYYY-MM-DD` (UTC).
    Day,
    /// `YYYY-MM-DDTHH` (UTC).
    Hour,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Self; 7] = [
        Self::User,
        Self::Client,
        Self::Target,
        Self::Port,
        Self::Rule,
        Self::Day,
        Self::Hour,
    ];

    /// The `--by` word and the column name.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Client => "client",
            Self::Target => "target",
            Self::Port => "port",
            Self::Rule => "rule",
            Self::Day => "day",
            Self::Hour => "hour",
        }
    }

    /// The dimension of a `--by` word.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == s)
    }
}

/// The numbers of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sessions: summaries, plus sessions known only from interim records.
    pub sessions: u64,
    /// Of those, the ones without a summary (still open at the end of the input).
    pub open_sessions: u64,
    /// Blocked requests.
    pub blocked: u64,
    /// Bytes read from the client.
    pub bytes_from_client: u64,
    /// Bytes written to the client.
    pub bytes_to_client: u64,
    /// Bytes read from the target.
    pub bytes_from_target: u64,
    /// Bytes written to the target.
    pub bytes_to_target: u64,
    /// The sum of the sessions' durations.
    pub duration_secs: u64,
    /// The earliest record time of the group.
    pub first_seen: Option<i64>,
    /// The latest.
    pub last_seen: Option<i64>,
    starts_socks: u64,
    starts_accept: u64,
}

impl Stats {
    fn seen(&mut self, t: Option<i64>) {
        if let Some(t) = t {
            self.first_seen = Some(self.first_seen.map_or(t, |f| f.min(t)));
            self.last_seen = Some(self.last_seen.map_or(t, |l| l.max(t)));
        }
    }

    fn add_summary(&mut self, s: &Summary, duration: u64) {
        self.sessions += 1;
        self.bytes_to_client += s.client.written.bytes;
        self.bytes_from_client += s.client.read.bytes;
        if let Some(t) = &s.target {
            self.bytes_to_target += t.written.bytes;
            self.bytes_from_target += t.read.bytes;
        }
        self.duration_secs += duration;
    }

    /// Adds another group's numbers.
    pub fn merge(&mut self, o: &Self) {
        self.sessions += o.sessions;
        self.open_sessions += o.open_sessions;
        self.blocked += o.blocked;
        self.bytes_from_client += o.bytes_from_client;
        self.bytes_to_client += o.bytes_to_client;
        self.bytes_from_target += o.bytes_from_target;
        self.bytes_to_target += o.bytes_to_target;
        self.duration_secs += o.duration_secs;
        self.seen(o.first_seen);
        self.seen(o.last_seen);
        self.starts_socks += o.starts_socks;
        self.starts_accept += o.starts_accept;
    }

    /// All bytes, both legs, both ways.
    pub fn bytes_total(&self) -> u64 {
        self.bytes_from_client
            + self.bytes_to_client
            + self.bytes_from_target
            + self.bytes_to_target
    }
}

/// How a run is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The grouping, in column order (empty: one group).
    pub by: Vec<Dimension>,
    /// Records before this (epoch seconds) are dropped.
    pub since: Option<i64>,
    /// Records at or after this are dropped.
    pub until: Option<i64>,
    /// For RFC 3164 stamps.
    pub context: Context,
}

/// Line counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Lines read.
    pub lines: u64,
    /// Traffic records among them.
    pub records: u64,
    /// Records outside `--since`/`--until`.
    pub outside_window: u64,
    /// Records without a time.
    pub undated: u64,
    /// Other log lines.
    pub other: u64,
    /// Files that could not be read (wholly or from some point on).
    pub failed_files: u64,
}

/// The last interim records of an open session: one part for a TCP session, one per
/// external socket for a UDP association (as its summaries).
#[derive(Debug)]
struct Open {
    parts: Vec<Part>,
    duration: u64,
    time: Option<i64>,
    /// A summary of the session was already counted (a UDP association with a second
    /// socket whose summary has not come): the rest adds bytes, not a session.
    counted: bool,
}

/// One interim record of an open session.
#[derive(Debug)]
struct Part {
    /// The UDP association's external socket (`PROXY-EXT`); 0 for TCP.
    socket: u64,
    key: Vec<String>,
    summary: Summary,
}

/// How many recent socks-level records an accept-level one is paired against.
const RECENT: usize = 4096;

/// The running accounting of a set of inputs.
#[derive(Debug)]
pub struct Accounting {
    opts: Options,
    groups: HashMap<Vec<String>, Stats>,
    open: HashMap<u64, Open>,
    /// The part id of a UDP record without an external socket (`0.0.0.0.0`).
    unknown_socket: u64,
    recent: VecDeque<u64>,
    scratch: Vec<u8>,
    summaries: u64,
    any_socks_start: bool,
    /// Line counts.
    pub counts: Counts,
    /// Malformed lines.
    pub malformed: Malformed,
    /// Lines per source kind (`dante`, `json`, …).
    pub sources: BTreeMap<&'static str, u64>,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The grouping.
    pub by: Vec<Dimension>,
    /// Each group's key (one value per dimension) and numbers, sorted by key.
    pub groups: Vec<(Vec<String>, Stats)>,
    /// All groups together.
    pub total: Stats,
    /// False when sessions were counted from start lines only (no summary anywhere).
    pub bytes_known: bool,
    /// Line counts.
    pub counts: Counts,
    /// Malformed lines.
    pub malformed: Malformed,
    /// Lines per source kind.
    pub sources: BTreeMap<&'static str, u64>,
}

fn is_socks_level(c: Command) -> bool {
    !matches!(c, Command::Accept | Command::HostId)
}

fn rule_label(r: &Record) -> String {
    if is_socks_level(r.command) {
        format!("socks-rule #{}", r.rule)
    } else {
        format!("client-rule #{}", r.rule)
    }
}

fn host_text(h: &EndpointHost) -> String {
    match h {
        EndpointHost::Ip(ip) => ip.to_string(),
        EndpointHost::Name(n) => n.clone(),
    }
}

/// An endpoint's address (octets, or the name's bytes).
fn push_host(out: &mut Vec<u8>, e: &traffic_log::Endpoint) {
    match &e.host {
        EndpointHost::Ip(std::net::IpAddr::V4(ip)) => out.extend_from_slice(&ip.octets()),
        EndpointHost::Ip(std::net::IpAddr::V6(ip)) => out.extend_from_slice(&ip.octets()),
        EndpointHost::Name(n) => out.extend_from_slice(n.as_bytes()),
    }
}

/// `Session duration: Ns` in a summary's description.
fn duration_of(desc: &str) -> u64 {
    desc.split_once("Session duration: ")
        .and_then(|(_, rest)| {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            rest[..digits].parse().ok()
        })
        .unwrap_or(0)
}

impl Accounting {
    /// A new run.
    pub fn new(opts: Options) -> Self {
        let mut a = Self {
            opts,
            groups: HashMap::new(),
            open: HashMap::new(),
            unknown_socket: 0,
            recent: VecDeque::with_capacity(RECENT),
            scratch: Vec::with_capacity(128),
            summaries: 0,
            any_socks_start: false,
            counts: Counts::default(),
            malformed: Malformed::default(),
            sources: BTreeMap::new(),
        };
        a.unknown_socket = a.side_hash(5, &Side(vec![traffic_log::Endpoint::unknown()]));
        a
    }

    /// One line of `origin` (without its newline); `complete` is false for a last line
    /// that had no newline.
    pub fn feed_line(&mut self, origin: &str, lineno: u64, bytes: &[u8], complete: bool) {
        self.counts.lines += 1;
        let line = decode_for_stats(bytes, &self.opts.context);
        *self.sources.entry(line.source.as_str()).or_default() += 1;
        match line.decoded {
            Decoded::Record(r) => self.feed_record(&r, line.time),
            Decoded::Unparsed => self.counts.records += 1,
            Decoded::Other => self.counts.other += 1,
            Decoded::Malformed(why) => self.malformed.note(origin, lineno, || {
                if complete {
                    why
                } else {
                    format!("{why} (last line, no newline: truncated?)")
                }
            }),
        }
    }

    /// A line longer than the limit, skipped.
    pub fn too_long(&mut self, origin: &str, lineno: u64, len: u64) {
        self.counts.lines += 1;
        self.malformed.note(origin, lineno, || {
            format!(
                "line of {len} bytes, longer than {} (skipped)",
                crate::lines::MAX_LINE
            )
        });
    }

    /// A file that could not be read (`line` 0: not at all), reported with the others.
    pub fn failed(&mut self, origin: &str, line: u64, error: String) {
        self.counts.failed_files += 1;
        self.malformed.note_failure(origin, line, error);
    }

    /// One record, at `time`.
    pub fn feed_record(&mut self, r: &Record, time: Option<i64>) {
        self.counts.records += 1;
        match time {
            Some(t) => {
                if self.opts.since.is_some_and(|s| t < s) || self.opts.until.is_some_and(|u| t >= u)
                {
                    self.counts.outside_window += 1;
                    return;
                }
            }
            None => self.counts.undated += 1,
        }
        let event = crate::orient::oriented(r);
        match event.as_ref() {
            Event::Summary { summary, desc } => {
                let pair = self.side_hash(1, &summary.client.side);
                // A UDP association's accept summary names the TCP control connection,
                // its socks summary the UDP ports: they share the client's address only.
                let udp_pair = self.host_hash(3, summary.client.side.0.first());
                if !is_socks_level(r.command)
                    && (self.take_recent(pair) || self.take_recent(udp_pair))
                {
                    return;
                }
                // The second summary of one association (it used an IPv4 and an IPv6
                // external socket): its bytes, not another session.
                let same_association = r.command == Command::UdpAssociate && {
                    let assoc = self.side_hash(4, &summary.client.side);
                    let again = self.take_recent(assoc);
                    if !again {
                        self.push_recent(assoc);
                    }
                    again
                };
                if is_socks_level(r.command) {
                    self.push_recent(pair);
                    if r.command == Command::UdpAssociate && !same_association {
                        self.push_recent(udp_pair);
                    }
                }
                self.close_open(r, summary);
                self.summaries += 1;
                let key = self.key(
                    r,
                    &summary.client.side,
                    summary.target.as_ref().map(|t| &t.side),
                    time,
                );
                let g = self.groups.entry(key).or_default();
                let duration = duration_of(desc);
                g.add_summary(summary, duration);
                if same_association {
                    g.sessions -= 1;
                    g.duration_secs -= duration;
                }
                g.seen(time);
            }
            Event::Interim {
                summary,
                duration_secs,
            } => {
                let (id, socket) = self.open_ids(r, summary);
                let key = self.key(
                    r,
                    &summary.client.side,
                    summary.target.as_ref().map(|t| &t.side),
                    time,
                );
                let unknown = self.unknown_socket;
                let o = self.open.entry(id).or_insert_with(|| Open {
                    parts: Vec::new(),
                    duration: 0,
                    time,
                    counted: false,
                });
                // A UDP association's record from before it had an external socket is
                // superseded by those of its sockets.
                if socket != unknown {
                    o.parts.retain(|p| p.socket != unknown);
                }
                let part = Part {
                    socket,
                    key,
                    summary: summary.clone(),
                };
                match o.parts.iter_mut().find(|p| p.socket == socket) {
                    Some(p) => *p = part,
                    None => o.parts.push(part),
                }
                o.duration = *duration_secs;
                o.time = time;
            }
            Event::Stop { ends, .. } if r.verdict == Verdict::Block => {
                let pair = self.side_hash(2, &ends.src);
                if !is_socks_level(r.command) && self.take_recent(pair) {
                    return;
                }
                if is_socks_level(r.command) {
                    self.push_recent(pair);
                }
                let key = self.key(r, &ends.src, ends.dst.as_ref(), time);
                let g = self.groups.entry(key).or_default();
                g.blocked += 1;
                g.seen(time);
            }
            // A BIND request's start is the `tcp/bind` line; its reply's is not another.
            Event::Start { .. } if r.command == Command::BindReply => {}
            Event::Start { ends, .. } => {
                let socks = is_socks_level(r.command);
                self.any_socks_start |= socks;
                let key = self.key(r, &ends.src, ends.dst.as_ref(), time);
                let g = self.groups.entry(key).or_default();
                if socks {
                    g.starts_socks += 1;
                } else {
                    g.starts_accept += 1;
                }
                g.seen(time);
            }
            _ => {}
        }
    }

    /// The addresses and ports of a side, without users: the client rule's records carry
    /// no user where the socks rule's do.
    fn side_hash(&mut self, tag: u8, side: &Side) -> u64 {
        self.scratch.clear();
        self.scratch.push(tag);
        for e in &side.0 {
            push_host(&mut self.scratch, e);
            self.scratch.extend_from_slice(&e.port.to_le_bytes());
        }
        let mut h = DefaultHasher::new();
        h.write(&self.scratch);
        h.finish()
    }

    /// The address of one endpoint (none: a hash of the tag alone).
    fn host_hash(&mut self, tag: u8, e: Option<&traffic_log::Endpoint>) -> u64 {
        self.scratch.clear();
        self.scratch.push(tag);
        if let Some(e) = e {
            push_host(&mut self.scratch, e);
        }
        let mut h = DefaultHasher::new();
        h.write(&self.scratch);
        h.finish()
    }

    /// Which open session (and which of its parts) a summary or interim record is: TCP
    /// sessions by rule, command and both sides; UDP associations by rule and
    /// `PROXY-INTUDP` (their own socket, while they are open: the client's port and the
    /// last target may change, or be unknown at first), their parts by `PROXY-EXT`.
    fn open_ids(&mut self, r: &Record, s: &Summary) -> (u64, u64) {
        if r.command != Command::UdpAssociate {
            return (self.session_hash(r, s), 0);
        }
        let unknown = traffic_log::Endpoint::unknown();
        let pint = s.client.side.0.last().unwrap_or(&unknown).clone();
        let pext = s
            .target
            .as_ref()
            .and_then(|t| t.side.0.first())
            .unwrap_or(&unknown)
            .clone();
        let id = self.session_hash(
            r,
            &Summary {
                client: traffic_log::Leg {
                    side: Side(vec![pint]),
                    ..s.client.clone()
                },
                target: None,
            },
        );
        (id, self.side_hash(5, &Side(vec![pext])))
    }

    /// A summary ends its open session's part (a UDP association's socket, and its
    /// record from before it had one); the rest of a UDP association stays open, its
    /// session counted.
    fn close_open(&mut self, r: &Record, s: &Summary) {
        let (id, socket) = self.open_ids(r, s);
        let unknown = self.unknown_socket;
        let Some(o) = self.open.get_mut(&id) else {
            return;
        };
        o.parts
            .retain(|p| p.socket != socket && p.socket != unknown);
        if o.parts.is_empty() {
            self.open.remove(&id);
        } else {
            o.counted = true;
        }
    }

    fn session_hash(&mut self, r: &Record, s: &Summary) -> u64 {
        self.scratch.clear();
        self.scratch
            .extend_from_slice(r.command.as_str().as_bytes());
        self.scratch.extend_from_slice(&r.rule.to_le_bytes());
        s.client.side.write_to(&mut self.scratch);
        if let Some(t) = &s.target {
            self.scratch.push(b'>');
            t.side.write_to(&mut self.scratch);
        }
        let mut h = DefaultHasher::new();
        h.write(&self.scratch);
        h.finish()
    }

    fn push_recent(&mut self, h: u64) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(h);
    }

    fn take_recent(&mut self, h: u64) -> bool {
        match self.recent.iter().rposition(|&x| x == h) {
            Some(i) => {
                self.recent.remove(i);
                true
            }
            None => false,
        }
    }

    fn key(
        &self,
        r: &Record,
        client: &Side,
        target: Option<&Side>,
        time: Option<i64>,
    ) -> Vec<String> {
        let first = client.0.first();
        let last = target.and_then(|t| t.0.last());
        self.opts
            .by
            .iter()
            .map(|d| match d {
                Dimension::User => client
                    .0
                    .iter()
                    .find_map(|e| e.auth.as_ref())
                    .map_or_else(|| "-".to_owned(), |a| a.name.clone()),
                Dimension::Client => first.map_or_else(|| "-".into(), |e| host_text(&e.host)),
                Dimension::Target => last.map_or_else(|| "-".into(), |e| host_text(&e.host)),
                Dimension::Port => last.map_or_else(|| "-".into(), |e| e.port.to_string()),
                Dimension::Rule => rule_label(r),
                Dimension::Day => time.map_or_else(|| "-".into(), time::day_key),
                Dimension::Hour => time.map_or_else(|| "-".into(), time::hour_key),
            })
            .collect()
    }

    /// Ends the run: open sessions are counted with their last interim bytes.
    pub fn finish(mut self) -> Report {
        for (_, o) in std::mem::take(&mut self.open) {
            for (i, part) in o.parts.into_iter().enumerate() {
                let g = self.groups.entry(part.key).or_default();
                g.add_summary(&part.summary, o.duration);
                // One session per association, in its first socket's group.
                if i == 0 && !o.counted {
                    g.open_sessions += 1;
                } else {
                    g.sessions -= 1;
                    g.duration_secs -= o.duration;
                }
                g.seen(o.time);
            }
        }
        let interims_or_summaries =
            self.summaries > 0 || self.groups.values().any(|g| g.open_sessions > 0);
        let mut bytes_known = true;
        let mut groups: Vec<(Vec<String>, Stats)> = self.groups.into_iter().collect();
        let from_starts = !interims_or_summaries
            && groups
                .iter()
                .any(|(_, g)| g.starts_socks + g.starts_accept > 0);
        if from_starts {
            bytes_known = false;
            for (_, g) in &mut groups {
                g.sessions = if self.any_socks_start {
                    g.starts_socks
                } else {
                    g.starts_accept
                };
            }
        }
        // Groups that only saw start lines already counted by their summaries elsewhere
        // (e.g. by day across midnight), or accept starts beside socks starts. A group
        // with bytes and no session of its own is kept: the second external socket of a
        // UDP association counted in its first socket's group.
        groups.retain(|(_, g)| g.sessions > 0 || g.blocked > 0 || g.bytes_total() > 0);
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        // Without grouping there is one group, even for an empty input.
        if self.opts.by.is_empty() && groups.is_empty() {
            groups.push((Vec::new(), Stats::default()));
        }
        let mut total = Stats::default();
        for (_, g) in &groups {
            total.merge(g);
        }
        Report {
            by: self.opts.by,
            groups,
            total,
            bytes_known,
            counts: self.counts,
            malformed: self.malformed,
            sources: self.sources,
        }
    }
}
