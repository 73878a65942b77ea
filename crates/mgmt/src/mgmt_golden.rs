//! Golden files of the management interface: every reply and notification shape, the
//! exact bytes (CRLF and all) in `tests/golden/mgmt-*.golden`.
//!
//! `FERROSOCKS_BLESS=1 cargo test -p ferrosocks-mgmt golden` rewrites them; review the
//! diff (`git diff --text`, they are marked `-text` so git keeps their CRs). A mismatch
//! shows the first differing line with its CR visible.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use logsys::{Level, OperatorRecord, Subsystem};
use server::registry::{
    Count, EventKind, SessionSnapshot, SessionState, SessionView, Totals, Traffic,
};
use sockd_conf::{AuthMethod, SocksCommand};

use crate::notify::{self, State, StateName};
use crate::proto::{reply, Conn, HistoryArg, Hold, KillTarget, Signal, Step, Stream};

/// Compares `got` with `tests/golden/NAME.golden`, byte for byte.
pub(crate) fn golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.golden"));
    if std::env::var_os("FERROSOCKS_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (FERROSOCKS_BLESS=1 writes it)", path.display()));
    if want == got {
        return;
    }
    let lines = |s: &str| -> Vec<String> {
        s.split_inclusive('\n')
            .map(|l| l.escape_debug().to_string())
            .collect()
    };
    let (w, g) = (lines(&want), lines(got));
    let i = (0..w.len().max(g.len()))
        .find(|&i| w.get(i) != g.get(i))
        .unwrap_or(0);
    let end = "<end>".to_owned();
    panic!(
        "{name}: line {} differs\n want: {}\n  got: {}\n\nwhole output:\n{got}",
        i + 1,
        w.get(i).unwrap_or(&end),
        g.get(i).unwrap_or(&end),
    );
}

/// Every line ends in CRLF, and there is no CR elsewhere.
fn assert_crlf(name: &str, s: &str) {
    assert!(s.ends_with("\r\n"), "{name}: no CRLF at the end: {s:?}");
    assert_eq!(
        s.matches('\n').count(),
        s.matches("\r\n").count(),
        "{name}: a bare LF: {s:?}"
    );
    assert_eq!(
        s.matches('\r').count(),
        s.matches("\r\n").count(),
        "{name}: a bare CR: {s:?}"
    );
}

/// A golden file of lines that all end in CRLF.
fn golden_crlf(name: &str, got: &str) {
    assert_crlf(name, got);
    golden(name, got);
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn count(bytes: u64, packets: u64) -> Count {
    Count { bytes, packets }
}

fn alice() -> SessionSnapshot {
    SessionSnapshot {
        id: 7,
        client: "192.0.2.10:49017".parse().unwrap(),
        internal: "192.0.2.1:1080".parse().unwrap(),
        external: Some("198.51.100.1:40001".parse().unwrap()),
        user: Some("alice".into()),
        method: Some(AuthMethod::Username),
        rule: Some(3),
        command: Some(SocksCommand::Connect),
        target: Some("example.com:443".into()),
        resolved: Some("93.184.216.34:443".parse().unwrap()),
        state: SessionState::Established,
        started: at(1_795_252_822),
        last_activity: at(1_795_252_840),
        traffic: Traffic {
            from_client: count(4872, 9),
            to_client: count(5023, 8),
            from_target: count(5023, 8),
            to_target: count(4872, 9),
        },
    }
}

/// An anonymous UDP association from IPv6, whose last datagram went to an IPv6 host.
fn anonymous_v6() -> SessionSnapshot {
    SessionSnapshot {
        id: 12,
        client: "[2001:db8::5]:40000".parse().unwrap(),
        internal: "[2001:db8::1]:1080".parse().unwrap(),
        external: Some("[2001:db8::1]:50000".parse().unwrap()),
        user: None,
        method: Some(AuthMethod::None),
        rule: Some(1),
        command: Some(SocksCommand::UdpAssociate),
        target: Some("[::]:0".into()),
        resolved: Some("[2001:db8::53]:53".parse().unwrap()),
        state: SessionState::Established,
        started: at(1_795_252_900),
        last_activity: at(1_795_252_901),
        traffic: Traffic {
            from_client: count(120, 2),
            to_client: count(512, 1),
            from_target: count(512, 1),
            to_target: count(80, 2),
        },
    }
}

/// A session that is still negotiating: nothing known but its client.
fn negotiating() -> SessionSnapshot {
    SessionSnapshot {
        id: 13,
        client: "[::ffff:203.0.113.9]:51000".parse().unwrap(),
        external: None,
        user: None,
        method: None,
        rule: None,
        command: None,
        target: None,
        resolved: None,
        state: SessionState::Negotiating,
        started: at(1_795_252_950),
        last_activity: at(1_795_252_950),
        traffic: Traffic::default(),
        ..alice()
    }
}

fn record(secs: u64, level: Level, text: &str) -> OperatorRecord {
    OperatorRecord {
        time: at(secs),
        level,
        subsystem: Subsystem::CLIENT,
        text: text.into(),
    }
}

fn records() -> Vec<OperatorRecord> {
    vec![
        record(1_795_252_700, Level::Crit, "Cannot bind 0.0.0.0.1080: Address in use"),
        record(1_795_252_701, Level::Error, "Reading sockd.conf: line 3: unknown keyword"),
        record(1_795_252_702, Level::Warning, "Sink /var/log/sockd.log is failing"),
        record(1_795_252_703, Level::Notice, "Listening on 0.0.0.0.1080"),
        record(
            1_795_252_704,
            Level::Trace,
            "pass(1): tcp/connect -: 192.0.2.10.49017 192.0.2.1.1080 -> 198.51.100.1.40001 93.184.216.34.443",
        ),
        record(1_795_252_705, Level::Info, "Reloaded: 3 rules"),
        record(1_795_252_706, Level::Debug, "Resolver: example.com is 93.184.216.34"),
    ]
}

fn states() -> Vec<State> {
    let listen: SocketAddr = "0.0.0.0:1080".parse().unwrap();
    vec![
        State {
            time: at(1_795_252_750),
            name: StateName::Connecting,
            desc: String::new(),
            local: None,
        },
        State {
            time: at(1_795_252_752),
            name: StateName::Connected,
            desc: "SUCCESS".into(),
            local: Some(listen),
        },
        State {
            time: at(1_795_252_876),
            name: StateName::Reconnecting,
            desc: "SIGHUP".into(),
            local: None,
        },
        State {
            time: at(1_795_252_877),
            name: StateName::Connected,
            desc: "SUCCESS".into(),
            local: Some(listen),
        },
        State {
            time: at(1_795_252_990),
            name: StateName::Exiting,
            desc: "SIGTERM".into(),
            local: None,
        },
    ]
}

// === Connection and password ===

#[test]
fn golden_greeting_and_prompt() {
    golden_crlf("mgmt-greeting", reply::GREETING);
    // The one reply without a line end.
    assert!(!reply::PROMPT.contains('\n'));
    golden("mgmt-prompt", reply::PROMPT);
    golden_crlf(
        "mgmt-password-ok",
        &format!("{}{}", reply::PASSWORD_OK, reply::GREETING),
    );
}

/// What a client sees: the prompt, two wrong passwords, the right one.
#[test]
fn golden_password_flow() {
    let mut conn = Conn::new(Some("s3cret"));
    let mut seen = conn.hello().to_owned();
    for line in ["secret", "hunter2", "s3cret"] {
        match conn.feed(Ok(line)) {
            Step::Send(s) => seen += &s,
            s => panic!("{s:?}"),
        }
    }
    assert!(!seen.contains("s3cret") && !seen.contains("hunter2"));
    golden("mgmt-password-flow", &seen);
}

/// What a client sees: the prompt three times, then nothing (the connection closes).
#[test]
fn golden_password_rejected() {
    let mut conn = Conn::new(Some("s3cret"));
    let mut seen = conn.hello().to_owned();
    for line in ["a", "b"] {
        match conn.feed(Ok(line)) {
            Step::Send(s) => seen += &s,
            s => panic!("{s:?}"),
        }
    }
    assert_eq!(conn.feed(Ok("c")), Step::Close);
    golden("mgmt-password-rejected", &seen);
}

/// The `ERROR:` reply to each bad line, in order.
#[test]
fn golden_errors() {
    let mut conn = Conn::new(None);
    let mut seen = String::new();
    let lines = [
        "frobnicate",
        "remote example.com 1194",
        "kill",
        "log",
        "client-deny 1 0",
        "client-auth 1",
        "signal SIGKILL",
        "status 4",
        "verb 12",
        "mute -1",
        "log sometimes",
        "state 0",
        "echo whenever",
        "hold tight",
        "client-kill alice",
        "client-auth-nt 1 zero",
        "kill :1080",
        "kill host:1080",
        "kill 192.0.2.10:0",
        "kill sctp:192.0.2.10:1080",
        r#"kill "alice"#,
        "kill 'alice",
        r"kill alice\",
        r"kill a\lice",
    ];
    for line in lines {
        match conn.feed(Ok(line)) {
            Step::Send(s) => seen += &s,
            s => panic!("{line}: {s:?}"),
        }
    }
    match conn.feed(Ok(&*format!("kill {}", "x".repeat(300)))) {
        Step::Send(s) => seen += &s,
        s => panic!("{s:?}"),
    }
    match conn.feed(Err::<&str, _>(crate::proto::LineTooLong)) {
        Step::Send(s) => seen += &s,
        s => panic!("{s:?}"),
    }
    golden_crlf("mgmt-errors", &seen);
}

// === Replies ===

#[test]
fn golden_help_and_version() {
    golden_crlf("mgmt-help", &reply::help_for("X.Y.Z"));
    golden_crlf("mgmt-version", &reply::version_for("X.Y.Z", "x86_64-linux"));
    golden_crlf("mgmt-client-version", &reply::client_version(4));
    assert_eq!(reply::client_version(3), "");
}

#[test]
fn golden_simple_replies() {
    golden_crlf("mgmt-pid", &reply::pid(2624));
    golden_crlf("mgmt-env-filter", &reply::env_filter(0));
    golden_crlf("mgmt-bytecount-changed", reply::BYTECOUNT_CHANGED);
    golden_crlf(
        "mgmt-verb",
        &format!("{}{}", reply::verb(3), reply::VERB_CHANGED),
    );
    golden_crlf(
        "mgmt-mute",
        &format!("{}{}", reply::mute(0), reply::MUTE_CHANGED),
    );
    golden_crlf(
        "mgmt-signal",
        &format!(
            "{}{}",
            reply::signal_thrown(Signal::Usr2),
            reply::signal_ignored(Signal::Usr1)
        ),
    );
}

#[test]
fn golden_load_stats() {
    let totals = Totals {
        accepted: 40,
        handed: 38,
        blocked: 2,
        ended: 38,
        traffic: Traffic {
            from_client: count(100_000, 200),
            to_client: count(2_000_000, 1500),
            ..Traffic::default()
        },
    };
    let live = [alice(), anonymous_v6()];
    golden_crlf("mgmt-load-stats", &reply::load_stats_of(&live, &totals));
}

#[test]
fn golden_kill() {
    let name = KillTarget::Name("alice".into());
    let v4 = KillTarget::Addr {
        proto: None,
        addr: "192.0.2.10:49017".parse().unwrap(),
    };
    let v6 = KillTarget::Addr {
        proto: None,
        addr: "[2001:db8::5]:40000".parse().unwrap(),
    };
    let udp = KillTarget::Addr {
        proto: Some(crate::proto::Transport::Udp),
        addr: "[2001:db8::5]:40000".parse().unwrap(),
    };
    let out: String = [
        reply::killed(&name, 2),
        reply::killed(&name, 0),
        reply::killed(&v4, 1),
        reply::killed(&v4, 0),
        reply::killed(&v6, 1),
        reply::killed(&udp, 1),
        reply::killed(&udp, 0),
    ]
    .concat();
    golden_crlf("mgmt-kill", &out);
}

#[test]
fn golden_client_commands() {
    golden_crlf(
        "mgmt-client-kill",
        &(reply::client_kill(true) + &reply::client_kill(false)),
    );
    golden_crlf(
        "mgmt-client-auth",
        &(reply::client_auth(true) + &reply::client_auth(false)),
    );
    golden_crlf(
        "mgmt-client-deny",
        &(reply::client_deny(true) + &reply::client_deny(false)),
    );
}

#[test]
fn golden_realtime_hold_echo() {
    let out: String = [Stream::Log, Stream::State, Stream::Echo]
        .into_iter()
        .flat_map(|s| [reply::realtime(s, true), reply::realtime(s, false)])
        .collect();
    golden_crlf("mgmt-realtime", &out);
    let out = [
        reply::hold(Hold::Show, false),
        reply::hold(Hold::On, true),
        reply::hold(Hold::Off, false),
        reply::hold(Hold::Release, false),
    ]
    .concat();
    golden_crlf("mgmt-hold", &out);
    golden_crlf(
        "mgmt-echo",
        &reply::echo(&[HistoryArg::On, HistoryArg::All]),
    );
}

// === Notifications ===

#[test]
fn golden_log() {
    let recs = records();
    let live: String = recs.iter().map(notify::log).collect();
    golden_crlf("mgmt-log", &live);
    golden_crlf(
        "mgmt-log-history",
        &notify::log_history(HistoryArg::Last(3).tail(&recs)),
    );
    golden_crlf("mgmt-fatal", &notify::fatal(&recs[0].text));
}

#[test]
fn golden_state() {
    let s = states();
    let live: String = s.iter().map(notify::state).collect();
    golden_crlf("mgmt-state", &live);
    golden_crlf("mgmt-state-history", &notify::state_history(&s));
}

#[test]
fn golden_client_events() {
    let now = at(1_795_252_846);
    golden_crlf(
        "mgmt-client-connect",
        &notify::client(EventKind::Connect, &alice().view(), 0, now),
    );
    golden_crlf(
        "mgmt-client-established",
        &notify::client(EventKind::Established, &alice().view(), 1, now),
    );
    golden_crlf(
        "mgmt-client-disconnect",
        &notify::client(
            EventKind::Disconnect,
            &SessionView {
                reason: Some("local client closed"),
                ..alice().view()
            },
            0,
            now,
        ),
    );
    golden_crlf(
        "mgmt-client-established-anonymous-ipv6",
        &notify::client(EventKind::Established, &anonymous_v6().view(), 1, now),
    );
    golden_crlf(
        "mgmt-client-disconnect-negotiating",
        &notify::client(
            EventKind::Disconnect,
            &SessionView {
                reason: Some("eof from local client"),
                ..negotiating().view()
            },
            2,
            at(1_795_252_953),
        ),
    );
    let out = [
        notify::client_address(7, "93.184.216.34".parse().unwrap(), true),
        notify::client_address(12, "2001:db8::53".parse().unwrap(), false),
    ]
    .concat();
    golden_crlf("mgmt-client-address", &out);
}

#[test]
fn golden_bytecount_and_info() {
    let out = [
        notify::bytecount_cli(&alice()),
        notify::bytecount_cli(&anonymous_v6()),
    ]
    .concat();
    golden_crlf("mgmt-bytecount-cli", &out);
    golden_crlf("mgmt-bytecount", &notify::bytecount(9572, 9651));
    golden_crlf("mgmt-dropped", &notify::dropped(42));
}
