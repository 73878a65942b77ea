//! The status text: OpenVPN 2.6.14's server status in versions 1, 2 and 3, rendered from
//! registry snapshots. The same text goes to the status file (lines end in `\n`) and to
//! the management `status` command (`\r\n`).
//!
//! Pure: the sessions, the totals, the time and the time zone come in as arguments, so
//! the bytes are tested against golden files (`tests/golden/status-v*.golden`).
//!
//! # The layouts
//!
//! Titles, rows, column names and their order are OpenVPN 2.6.14's `multi_print_status`
//! (reference §5); times are its `time_string`, local `%Y-%m-%d %H:%M:%S`, next to
//! Unix seconds where OpenVPN prints a `(time_t)` column. What a SOCKS session puts in
//! each column is the reference's §6:
//!
//! | column | a session's |
//! |---|---|
//! | Common Name, Username | user (RFC 1929 or ident), else `UNDEF` |
//! | Real Address | client, `1.2.3.4:PORT` or `[2001:db8::1]:PORT` (IPv4-mapped as IPv4) |
//! | Virtual Address | target's IPv4 address as connected to (UDP: the last destination), alone |
//! | Virtual IPv6 Address | the same when it is IPv6 |
//! | Bytes Received / Sent | read from / written to the client |
//! | Connected Since | accept time |
//! | Client ID | CID |
//! | Peer ID | number of the socks rule that passed it, [`NO_PEER_ID`] before |
//! | Data Channel Cipher | command (`connect`, `bind`, `udpassociate`), empty before the request |
//! | Target (v2, v3: a last column) | target as requested, `HOST:PORT` |
//!
//! The routing table has a row for each session whose target address is known (Last
//! Ref: when its bytes last moved), because OpenVPN's tools accept nothing but an address
//! in its first column.
//!
//! # Choices
//!
//! - **TITLE** (v2, v3) is [`title()`]: `OpenVPN 2.6.14 management-compatible; ferrosocks
//!   X.Y.Z ARCH-OS`. OpenVPN prints the same string there and after `OpenVPN Version: `
//!   in the management `version` reply, and so do we: it says which format is spoken and
//!   who speaks it. It starts with `OpenVPN 2.6.14` because parsers that tell version 2
//!   from version 1 by the first line look for `TITLE,OpenVPN`, and openvpn-monitor
//!   reads a semver from the second word of the version string.
//! - **GLOBAL STATS.** Version 1 ends exactly as OpenVPN's does, with `Max bcast/mcast
//!   queue length,0` alone, because version 1 parsers (openvpn-status 0.2.2 and others)
//!   expect that one row and then `END`. Versions 2 and 3 keep OpenVPN 2.6.14's two rows
//!   (`Max bcast/mcast queue length,0`: ferrosocks queues no broadcast; `dco_enabled,0`:
//!   no data channel offload) and add ferrosocks' after them: `sessions` (live),
//!   `accepted total`, `blocked total`, `bytes in total` and `bytes out total` (bytes
//!   from and to clients, live and ended sessions).
//! - **Field values never break a line.** A user name (an ident answer is the client's
//!   word) or a requested host name may hold any character; control characters and
//!   commas become `_` in every version, so that each row has as many fields as its
//!   header in each format.
//! - **IPv6 clients** are printed `[addr]:port`, as the reference says and OpenVPN's
//!   development branch prints them; 2.6.14 itself prints the bare address without the
//!   port (which a `kill IP:PORT` could not name).
//! - OpenVPN stops a dump at a line longer than 511 bytes; we do not (a row of ours is
//!   at most about 930 bytes: two 255-byte names and a host name).

use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Local, TimeZone, Utc};
use server::registry::{SessionSnapshot, Totals};
use sockd_conf::SocksCommand;

/// The OpenVPN release whose status (and management) formats ferrosocks speaks.
pub const OPENVPN_VERSION: &str = "2.6.14";

/// The Peer ID of a session no socks rule has passed yet (OpenVPN's `MAX_PEER_ID`).
pub const NO_PEER_ID: u32 = 0xFF_FFFF;

/// The line for a version other than 1, 2 or 3, as OpenVPN writes it (without `END`).
pub const BAD_VERSION: &str = "ERROR: bad status format version number";

/// Who is speaking, in OpenVPN's title form: `OpenVPN 2.6.14 management-compatible;
/// ferrosocks X.Y.Z ARCH-OS`. The `TITLE` of versions 2 and 3, and what the
/// management `version` reply prints after `OpenVPN Version: `.
pub fn title() -> String {
    format!(
        "OpenVPN {OPENVPN_VERSION} management-compatible; ferrosocks {} {}-{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

/// The status text in `version` (1, 2 or 3; any other gives the one line
/// [`BAD_VERSION`]) at `now`, in local time, each line ending in `eol`.
pub fn render(
    version: u8,
    sessions: &[SessionSnapshot],
    totals: &Totals,
    now: SystemTime,
    eol: &str,
) -> String {
    render_in(version, sessions, totals, now, eol, &Local)
}

/// [`render`] with times shown in `tz` (tests use a fixed offset).
pub fn render_in<Tz>(
    version: u8,
    sessions: &[SessionSnapshot],
    totals: &Totals,
    now: SystemTime,
    eol: &str,
    tz: &Tz,
) -> String
where
    Tz: TimeZone,
    Tz::Offset: Display,
{
    let mut out = Out {
        text: String::new(),
        sep: if version == 3 { "\t" } else { "," },
        eol,
    };
    let clock = Clock(tz);
    let rows: Vec<Row> = sessions.iter().map(|s| Row::new(s, &clock)).collect();
    match version {
        1 => v1(&mut out, &rows, &clock.local(now)),
        2 | 3 => v2(
            &mut out,
            &rows,
            &Globals::new(sessions, totals),
            &clock,
            now,
        ),
        _ => out.line(&[BAD_VERSION]),
    }
    out.text
}

/// Version 1: sections with titles, comma-separated.
fn v1(out: &mut Out<'_>, rows: &[Row], updated: &str) {
    out.line(&["OpenVPN CLIENT LIST"]);
    out.line(&["Updated", updated]);
    out.line(&[
        "Common Name",
        "Real Address",
        "Bytes Received",
        "Bytes Sent",
        "Connected Since",
    ]);
    for r in rows {
        out.line(&[&r.name, &r.real, &r.received, &r.sent, &r.since]);
    }
    out.line(&["ROUTING TABLE"]);
    out.line(&["Virtual Address", "Common Name", "Real Address", "Last Ref"]);
    for r in rows {
        if let Some(route) = &r.route {
            out.line(&[route, &r.name, &r.real, &r.last_ref]);
        }
    }
    out.line(&["GLOBAL STATS"]);
    out.line(&["Max bcast/mcast queue length", "0"]);
    out.line(&["END"]);
}

/// Versions 2 and 3: typed lines, with HEADER lines naming the columns.
fn v2<Tz>(
    out: &mut Out<'_>,
    rows: &[Row],
    globals: &Globals,
    clock: &Clock<'_, Tz>,
    now: SystemTime,
) where
    Tz: TimeZone,
    Tz::Offset: Display,
{
    out.line(&["TITLE", &title()]);
    out.line(&["TIME", &clock.local(now), &unix(now).to_string()]);
    out.line(&[
        "HEADER",
        "CLIENT_LIST",
        "Common Name",
        "Real Address",
        "Virtual Address",
        "Virtual IPv6 Address",
        "Bytes Received",
        "Bytes Sent",
        "Connected Since",
        "Connected Since (time_t)",
        "Username",
        "Client ID",
        "Peer ID",
        "Data Channel Cipher",
        "Target",
    ]);
    for r in rows {
        out.line(&[
            "CLIENT_LIST",
            &r.name,
            &r.real,
            &r.virtual4,
            &r.virtual6,
            &r.received,
            &r.sent,
            &r.since,
            &r.since_t,
            &r.name,
            &r.cid,
            &r.peer_id,
            r.cipher,
            &r.target,
        ]);
    }
    out.line(&[
        "HEADER",
        "ROUTING_TABLE",
        "Virtual Address",
        "Common Name",
        "Real Address",
        "Last Ref",
        "Last Ref (time_t)",
    ]);
    for r in rows {
        if let Some(route) = &r.route {
            out.line(&[
                "ROUTING_TABLE",
                route,
                &r.name,
                &r.real,
                &r.last_ref,
                &r.last_ref_t,
            ]);
        }
    }
    for (name, value) in globals.rows() {
        out.line(&["GLOBAL_STATS", name, &value.to_string()]);
    }
    out.line(&["END"]);
}

/// The text being written: fields joined by `sep`, lines ended by `eol`.
struct Out<'a> {
    text: String,
    sep: &'a str,
    eol: &'a str,
}

impl Out<'_> {
    fn line(&mut self, fields: &[&str]) {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.text.push_str(self.sep);
            }
            self.text.push_str(f);
        }
        self.text.push_str(self.eol);
    }
}

/// Times as OpenVPN's `time_string` prints them, in one time zone.
struct Clock<'a, Tz>(&'a Tz);

impl<Tz> Clock<'_, Tz>
where
    Tz: TimeZone,
    Tz::Offset: Display,
{
    fn local(&self, t: SystemTime) -> String {
        DateTime::<Utc>::from(t)
            .with_timezone(self.0)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }
}

/// Unix seconds (0 before 1970).
fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// One session's fields, as printed.
struct Row {
    /// Common Name and Username.
    name: String,
    real: String,
    virtual4: String,
    virtual6: String,
    received: String,
    sent: String,
    since: String,
    since_t: String,
    cid: String,
    peer_id: String,
    cipher: &'static str,
    target: String,
    /// The routing table's Virtual Address, when the target's address is known.
    route: Option<String>,
    last_ref: String,
    last_ref_t: String,
}

impl Row {
    fn new<Tz>(s: &SessionSnapshot, clock: &Clock<'_, Tz>) -> Self
    where
        Tz: TimeZone,
        Tz::Offset: Display,
    {
        let target_ip = s.resolved.map(|a| a.ip().to_canonical());
        let (virtual4, virtual6) = match target_ip {
            Some(IpAddr::V4(v4)) => (v4.to_string(), String::new()),
            Some(IpAddr::V6(v6)) => (String::new(), v6.to_string()),
            None => (String::new(), String::new()),
        };
        Self {
            name: match s.user.as_deref() {
                Some(u) if !u.is_empty() => field(u),
                _ => "UNDEF".into(),
            },
            real: real_address(s.client),
            virtual4,
            virtual6,
            received: s.traffic.from_client.bytes.to_string(),
            sent: s.traffic.to_client.bytes.to_string(),
            since: clock.local(s.started),
            since_t: unix(s.started).to_string(),
            cid: s.id.to_string(),
            peer_id: s.rule.unwrap_or(NO_PEER_ID).to_string(),
            cipher: s.command.map_or("", command_name),
            target: s.target.as_deref().map(field).unwrap_or_default(),
            route: target_ip.map(|ip| ip.to_string()),
            last_ref: clock.local(s.last_activity),
            last_ref_t: unix(s.last_activity).to_string(),
        }
    }
}

/// The GLOBAL_STATS of versions 2 and 3.
struct Globals {
    sessions: u64,
    accepted: u64,
    blocked: u64,
    bytes_in: u64,
    bytes_out: u64,
}

impl Globals {
    fn new(sessions: &[SessionSnapshot], totals: &Totals) -> Self {
        let live = |f: fn(&SessionSnapshot) -> u64| sessions.iter().map(f).sum::<u64>();
        Self {
            sessions: sessions.len() as u64,
            accepted: totals.accepted,
            blocked: totals.blocked,
            bytes_in: totals.traffic.from_client.bytes + live(|s| s.traffic.from_client.bytes),
            bytes_out: totals.traffic.to_client.bytes + live(|s| s.traffic.to_client.bytes),
        }
    }

    /// OpenVPN 2.6.14's rows, then ferrosocks' own.
    fn rows(&self) -> [(&'static str, u64); 7] {
        [
            ("Max bcast/mcast queue length", 0),
            ("dco_enabled", 0),
            ("sessions", self.sessions),
            ("accepted total", self.accepted),
            ("blocked total", self.blocked),
            ("bytes in total", self.bytes_in),
            ("bytes out total", self.bytes_out),
        ]
    }
}

/// An address as OpenVPN 2.6's tools expect a Real Address: `1.2.3.4:PORT`,
/// `[2001:db8::1]:PORT`, IPv4-mapped IPv6 as IPv4 (no scope id).
pub(crate) fn real_address(a: SocketAddr) -> String {
    match a.ip().to_canonical() {
        IpAddr::V4(v4) => format!("{v4}:{}", a.port()),
        IpAddr::V6(v6) => format!("[{v6}]:{}", a.port()),
    }
}

/// The Data Channel Cipher column: the command as `command:` names it.
pub(crate) fn command_name(c: SocksCommand) -> &'static str {
    match c {
        SocksCommand::Connect => "connect",
        SocksCommand::Bind => "bind",
        SocksCommand::BindReply => "bindreply",
        SocksCommand::UdpAssociate => "udpassociate",
        SocksCommand::UdpReply => "udpreply",
    }
}

/// A value made safe for a field of any version: control characters (line ends, tabs)
/// and commas become `_`.
fn field(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() || c == ',' { '_' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::Duration;

    use chrono::FixedOffset;
    use server::registry::{Count, SessionState, Traffic};
    use sockd_conf::AuthMethod;

    use super::*;

    /// The golden files' clock: 2026-11-21 09:20:36 UTC, shown at +01:00.
    const NOW: u64 = 1_795_252_836;

    /// The golden files' TITLE, whatever this build's version and platform.
    const GOLDEN_TITLE: &str =
        "OpenVPN 2.6.14 management-compatible; ferrosocks X.Y.Z x86_64-linux";

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn count(bytes: u64, packets: u64) -> Count {
        Count { bytes, packets }
    }

    /// A session accepted `age` seconds before [`NOW`] from `client`, still negotiating.
    fn session(id: u64, client: &str, age: u64) -> SessionSnapshot {
        SessionSnapshot {
            id,
            client: addr(client),
            internal: addr("192.0.2.1:1080"),
            external: None,
            user: None,
            method: None,
            rule: None,
            command: None,
            target: None,
            resolved: None,
            state: SessionState::Negotiating,
            started: at(NOW - age),
            last_activity: at(NOW - age),
            traffic: Traffic::default(),
        }
    }

    /// Every kind of session: CONNECT with a user to a named host, CONNECT from an IPv6
    /// client to an IPv6 target without a user, BIND from an IPv4-mapped client still
    /// waiting (target not resolved), a UDP association, and one still negotiating.
    fn sessions() -> Vec<SessionSnapshot> {
        let connect = SessionSnapshot {
            user: Some("alice".into()),
            method: Some(AuthMethod::Username),
            rule: Some(1),
            command: Some(SocksCommand::Connect),
            target: Some("www.example.com:443".into()),
            resolved: Some(addr("93.184.215.14:443")),
            external: Some(addr("198.51.100.2:40100")),
            state: SessionState::Established,
            last_activity: at(NOW - 7),
            traffic: Traffic {
                from_client: count(517, 3),
                to_client: count(4821, 5),
                from_target: count(4821, 4),
                to_target: count(517, 3),
            },
            ..session(0, "192.0.2.10:40001", 14)
        };
        let v6 = SessionSnapshot {
            method: Some(AuthMethod::None),
            rule: Some(2),
            command: Some(SocksCommand::Connect),
            target: Some("[2001:db8::80]:80".into()),
            resolved: Some(addr("[2001:db8::80]:80")),
            state: SessionState::Established,
            last_activity: at(NOW - 1),
            traffic: Traffic {
                from_client: count(78, 1),
                to_client: count(1_048_576, 40),
                ..Traffic::default()
            },
            ..session(1, "[2001:db8::5]:51000", 3)
        };
        let bind = SessionSnapshot {
            user: Some("bob".into()),
            method: Some(AuthMethod::Rfc931),
            rule: Some(4),
            command: Some(SocksCommand::Bind),
            target: Some("ftp.example.net:21".into()),
            state: SessionState::Requesting,
            ..session(3, "[::ffff:198.51.100.7]:1234", 2)
        };
        let udp = SessionSnapshot {
            user: Some("carol".into()),
            method: Some(AuthMethod::Username),
            rule: Some(3),
            command: Some(SocksCommand::UdpAssociate),
            target: Some("0.0.0.0:0".into()),
            resolved: Some(addr("198.51.100.53:53")),
            state: SessionState::Established,
            last_activity: at(NOW - 30),
            traffic: Traffic {
                from_client: count(120, 2),
                to_client: count(300, 2),
                ..Traffic::default()
            },
            ..session(4, "192.0.2.11:40002", 3600)
        };
        let negotiating = session(5, "192.0.2.12:40003", 0);
        vec![connect, v6, bind, udp, negotiating]
    }

    fn totals() -> Totals {
        Totals {
            accepted: 9,
            handed: 7,
            blocked: 2,
            ended: 4,
            traffic: Traffic {
                from_client: count(1000, 10),
                to_client: count(20000, 20),
                ..Traffic::default()
            },
        }
    }

    fn tz() -> FixedOffset {
        FixedOffset::east_opt(3600).unwrap()
    }

    fn golden_render(version: u8, eol: &str) -> String {
        render_in(version, &sessions(), &totals(), at(NOW), eol, &tz())
            .replace(&title(), GOLDEN_TITLE)
    }

    fn golden_path(version: u8) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/golden/status-v{version}.golden"))
    }

    /// Compares with the golden file, showing the first line that differs;
    /// `FERROSOCKS_BLESS=1` rewrites it.
    fn check_golden(version: u8) {
        let path = golden_path(version);
        let have = golden_render(version, "\n");
        if std::env::var_os("FERROSOCKS_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &have).unwrap();
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (FERROSOCKS_BLESS=1 writes it)", path.display()));
        if have != want {
            let (h, w): (Vec<&str>, Vec<&str>) = (have.lines().collect(), want.lines().collect());
            let i = (0..h.len().max(w.len()))
                .find(|&i| h.get(i) != w.get(i))
                .unwrap_or(0);
            panic!(
                "{} differs at line {}:\n  want {:?}\n  have {:?}\n(FERROSOCKS_BLESS=1 rewrites it)",
                path.display(),
                i + 1,
                w.get(i),
                h.get(i)
            );
        }
    }

    #[test]
    fn version_1_matches_its_golden_file() {
        check_golden(1);
    }

    #[test]
    fn version_2_matches_its_golden_file() {
        check_golden(2);
    }

    #[test]
    fn version_3_matches_its_golden_file() {
        check_golden(3);
    }

    #[test]
    fn version_3_is_version_2_with_tabs() {
        let (v2, v3) = (golden_render(2, "\n"), golden_render(3, "\n"));
        assert!(!v3.contains(','), "{v3}");
        assert_eq!(v3.replace('\t', ","), v2);
    }

    #[test]
    fn the_management_socket_gets_the_same_lines_with_crlf() {
        for version in 1..=3 {
            let crlf = golden_render(version, "\r\n");
            assert!(crlf.ends_with("END\r\n"));
            assert_eq!(crlf.replace("\r\n", "\n"), golden_render(version, "\n"));
        }
    }

    /// A v2 or v3 text read back as OpenVPN's tools do: each `CLIENT_LIST` and
    /// `ROUTING_TABLE` row a map from its HEADER's column names, and the GLOBAL_STATS.
    struct Parsed {
        time: Vec<String>,
        clients: Vec<BTreeMap<String, String>>,
        routes: Vec<BTreeMap<String, String>>,
        globals: Vec<(String, String)>,
    }

    fn parse_back(text: &str, sep: char) -> Parsed {
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut p = Parsed {
            time: Vec::new(),
            clients: Vec::new(),
            routes: Vec::new(),
            globals: Vec::new(),
        };
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines.last(), Some(&"END"));
        assert!(lines[0].starts_with(&format!("TITLE{sep}OpenVPN 2.6.14 ")));
        for line in &lines[1..lines.len() - 1] {
            let fields: Vec<String> = line.split(sep).map(str::to_owned).collect();
            match fields[0].as_str() {
                "TIME" => p.time = fields[1..].to_vec(),
                "HEADER" => {
                    headers.insert(fields[1].clone(), fields[2..].to_vec());
                }
                kind @ ("CLIENT_LIST" | "ROUTING_TABLE") => {
                    let names = &headers[kind];
                    // As collectd checks: as many fields as the header names.
                    assert_eq!(fields.len() - 1, names.len(), "{line}");
                    let row = names
                        .iter()
                        .cloned()
                        .zip(fields[1..].iter().cloned())
                        .collect();
                    match kind {
                        "CLIENT_LIST" => p.clients.push(row),
                        _ => p.routes.push(row),
                    }
                }
                "GLOBAL_STATS" => {
                    assert_eq!(fields.len(), 3, "{line}");
                    p.globals.push((fields[1].clone(), fields[2].clone()));
                }
                other => panic!("unexpected line type {other:?} in {line:?}"),
            }
        }
        p
    }

    /// The expected value of every column, from the snapshot itself.
    fn expected_client(s: &SessionSnapshot) -> BTreeMap<String, String> {
        let local = |t: SystemTime| {
            let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
            DateTime::from_timestamp(secs + 3600, 0)
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        let unix = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
        let user = s.user.clone().unwrap_or_else(|| "UNDEF".into());
        let ip = s.resolved.map(|a| a.ip().to_canonical());
        let client = match s.client.ip().to_canonical() {
            IpAddr::V4(v4) => format!("{v4}:{}", s.client.port()),
            IpAddr::V6(v6) => format!("[{v6}]:{}", s.client.port()),
        };
        let cipher = match s.command {
            None => "",
            Some(SocksCommand::Connect) => "connect",
            Some(SocksCommand::Bind) => "bind",
            Some(SocksCommand::UdpAssociate) => "udpassociate",
            Some(other) => panic!("{other:?} is no session's command"),
        };
        [
            ("Common Name", user.clone()),
            ("Real Address", client),
            (
                "Virtual Address",
                ip.filter(IpAddr::is_ipv4)
                    .map(|i| i.to_string())
                    .unwrap_or_default(),
            ),
            (
                "Virtual IPv6 Address",
                ip.filter(IpAddr::is_ipv6)
                    .map(|i| i.to_string())
                    .unwrap_or_default(),
            ),
            ("Bytes Received", s.traffic.from_client.bytes.to_string()),
            ("Bytes Sent", s.traffic.to_client.bytes.to_string()),
            ("Connected Since", local(s.started)),
            ("Connected Since (time_t)", unix(s.started)),
            ("Username", user),
            ("Client ID", s.id.to_string()),
            (
                "Peer ID",
                s.rule.map_or("16777215".into(), |r| r.to_string()),
            ),
            ("Data Channel Cipher", cipher.into()),
            ("Target", s.target.clone().unwrap_or_default()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    #[test]
    fn versions_2_and_3_read_back_by_header_names() {
        let sessions = sessions();
        for (version, sep) in [(2, ','), (3, '\t')] {
            let text = render_in(version, &sessions, &totals(), at(NOW), "\n", &tz());
            let p = parse_back(&text, sep);
            assert_eq!(p.time, ["2026-11-21 10:20:36", "1795252836"]);
            let want: Vec<_> = sessions.iter().map(expected_client).collect();
            assert_eq!(p.clients, want, "v{version}");
            // A route for each session whose target address is known.
            let routed: Vec<&SessionSnapshot> =
                sessions.iter().filter(|s| s.resolved.is_some()).collect();
            assert_eq!(p.routes.len(), 3);
            for (route, s) in p.routes.iter().zip(routed) {
                let c = expected_client(s);
                let virt = [&c["Virtual Address"], &c["Virtual IPv6 Address"]];
                assert!(virt.contains(&&route["Virtual Address"]), "{route:?}");
                assert_eq!(route["Common Name"], c["Common Name"]);
                assert_eq!(route["Real Address"], c["Real Address"]);
                let last = s
                    .last_activity
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                assert_eq!(route["Last Ref (time_t)"], last.to_string());
            }
            let globals: Vec<(&str, &str)> = p
                .globals
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(
                globals,
                [
                    ("Max bcast/mcast queue length", "0"),
                    ("dco_enabled", "0"),
                    ("sessions", "5"),
                    ("accepted total", "9"),
                    ("blocked total", "2"),
                    ("bytes in total", "1715"),
                    ("bytes out total", "1073697"),
                ]
            );
        }
    }

    #[test]
    fn version_1_ends_as_its_parsers_expect() {
        // openvpn-status 0.2.2 reads exactly one row after GLOBAL STATS, then END.
        let text = golden_render(1, "\n");
        assert!(text.ends_with("GLOBAL STATS\nMax bcast/mcast queue length,0\nEND\n"));
        assert!(text.starts_with("OpenVPN CLIENT LIST\nUpdated,2026-11-21 10:20:36\n"));
    }

    #[test]
    fn without_sessions_the_headers_stay() {
        let now = at(NOW);
        let v2 = render_in(2, &[], &Totals::default(), now, "\n", &tz());
        let lines: Vec<&str> = v2.lines().collect();
        assert!(lines[2].starts_with("HEADER,CLIENT_LIST,Common Name,"));
        assert!(lines[3].starts_with("HEADER,ROUTING_TABLE,"));
        assert_eq!(lines[4], "GLOBAL_STATS,Max bcast/mcast queue length,0");
        assert_eq!(lines[6], "GLOBAL_STATS,sessions,0");
        let v1 = render_in(1, &[], &Totals::default(), now, "\n", &tz());
        assert_eq!(
            v1,
            "OpenVPN CLIENT LIST\nUpdated,2026-11-21 10:20:36\n\
             Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since\n\
             ROUTING TABLE\nVirtual Address,Common Name,Real Address,Last Ref\n\
             GLOBAL STATS\nMax bcast/mcast queue length,0\nEND\n"
        );
    }

    #[test]
    fn other_versions_get_openvpns_error_line() {
        for version in [0, 4, 255] {
            let text = render_in(version, &sessions(), &totals(), at(NOW), "\r\n", &tz());
            assert_eq!(text, "ERROR: bad status format version number\r\n");
        }
    }

    #[test]
    fn values_never_break_a_row() {
        let s = SessionSnapshot {
            user: Some("eve,admin\tx".into()),
            command: Some(SocksCommand::Connect),
            target: Some("a,b\r\nEND\nc.example:80".into()),
            ..session(7, "192.0.2.9:9", 1)
        };
        for version in 1..=3 {
            let text = render_in(
                version,
                std::slice::from_ref(&s),
                &Totals::default(),
                at(NOW),
                "\n",
                &tz(),
            );
            let ends: Vec<&str> = text.lines().filter(|l| *l == "END").collect();
            assert_eq!(ends.len(), 1, "{text}");
            let rows = text.lines().filter(|l| l.contains("eve"));
            assert_eq!(rows.count(), 1, "{text}");
            assert!(text.contains("eve_admin_x"), "{text}");
        }
        let v3 = render_in(3, &[s], &Totals::default(), at(NOW), "\n", &tz());
        assert!(v3.contains("\ta_b__END_c.example:80\n"), "{v3}");
        assert_eq!(field(""), "");
    }

    #[test]
    fn local_time_follows_the_zone() {
        let s = session(0, "192.0.2.9:9", 0);
        let utc = render_in(
            1,
            std::slice::from_ref(&s),
            &Totals::default(),
            at(NOW),
            "\n",
            &Utc,
        );
        assert!(utc.contains(",2026-11-21 09:20:36\n"), "{utc}");
        let west = FixedOffset::west_opt(5 * 3600).unwrap();
        let v2 = render_in(2, &[s], &Totals::default(), at(NOW), "\n", &west);
        assert!(v2.contains("TIME,2026-11-21 04:20:36,1795252836\n"), "{v2}");
    }

    #[test]
    fn the_title_names_the_format_and_the_server() {
        let t = title();
        assert!(
            t.starts_with("OpenVPN 2.6.14 management-compatible; ferrosocks "),
            "{t}"
        );
        assert!(
            t.contains(env!("CARGO_PKG_VERSION")) && !t.contains(','),
            "{t}"
        );
    }
}
