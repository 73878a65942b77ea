//! The metrics endpoint through the real binary, scraped with curl and checked with
//! `promtool check metrics` (Debian's `prometheus`): counters up by exactly N for N
//! connections, passed and blocked requests by rule, bytes equal to what curl moved, the
//! active-sessions gauge while sessions are held, counters equal to the traffic log's
//! lines after a mix of sessions, series bounded whatever the clients' addresses,
//! `/status.json` against held sessions, and the HTTP side's refusals.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Client rule 1 blocks 127.0.0.9; client rule 2 passes the rest of 127/8. Socks rule 1
/// blocks targets on 127.0.0.2, socks rule 2 passes the rest.
fn metrics_conf(extra: &str) -> String {
    format!(
        "logoutput: @LOG@\n\
         internal: 127.0.0.1 port = 0\n\
         external: 127.0.0.1\n\
         socksmethod: none\n\
         metrics: 127.0.0.1 port = 0\n{extra}\
         client block {{\n    from: 127.0.0.9/32 to: 0/0\n    log: connect\n}}\n\
         client pass {{\n    from: 127.0.0.0/8 to: 0/0\n    log: connect disconnect error\n}}\n\
         socks block {{\n    from: 0/0 to: 127.0.0.2/32\n    log: connect\n}}\n\
         socks pass {{\n    from: 127.0.0.0/8 to: 0/0\n    log: connect disconnect error\n}}\n"
    )
}

/// `GET path` with curl: the body.
fn get(at: SocketAddr, path: &str) -> String {
    let (code, out, err) = curl(&["--max-time", "10", &format!("http://{at}{path}")]);
    assert_eq!(code, 0, "curl {path}: {err}");
    out
}

/// The samples of a scrape: `name{labels}` → value (no comment lines).
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l:?}"));
            (k.to_owned(), v.parse().unwrap_or_else(|_| panic!("{l:?}")))
        })
        .collect()
}

fn value(s: &HashMap<String, f64>, key: &str) -> u64 {
    s.get(key).copied().unwrap_or(0.0) as u64
}

/// Scrapes `/metrics` and checks it with promtool; returns the samples.
fn scrape(at: SocketAddr) -> HashMap<String, f64> {
    let text = get(at, "/metrics");
    promtool_check(&text);
    samples(&text)
}

/// `promtool check metrics` reads the text on stdin: a parse error fails the test.
fn promtool_check(text: &str) {
    require("promtool");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{said}\n{text}"
    );
    assert!(said.trim().is_empty(), "promtool's lint findings:\n{said}");
}

/// One curl through the proxy: (bytes sent, bytes received) as curl counts them.
fn curl_through(p: &Proxy, url: &str) -> (u64, u64) {
    let (code, out, err) = curl(&[
        "--max-time",
        "10",
        "-o",
        "/dev/null",
        "-w",
        "%{size_request} %{size_header} %{size_download}",
        "-x",
        &format!("socks5://{}", p.addr),
        url,
    ]);
    assert_eq!(code, 0, "{err}");
    let n: Vec<u64> = out.split(' ').map(|x| x.parse().unwrap()).collect();
    (n[0], n[1] + n[2])
}

/// Waits until `pred` holds on a scrape.
fn wait_scrape(at: SocketAddr, what: &str, pred: impl Fn(&HashMap<String, f64>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = samples(&get(at, "/metrics"));
        if pred(&s) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s:?}"
        );
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(50));
    }
}

const ACCEPTED: &str = "ferrosocks_connections_accepted_total{rule=\"2\"}";
const PASSED: &str = "ferrosocks_requests_total{command=\"connect\",verdict=\"pass\",rule=\"2\"}";
const BLOCKED: &str = "ferrosocks_requests_total{command=\"connect\",verdict=\"block\",rule=\"1\"}";
const TO_TARGET: &str =
    "ferrosocks_relayed_bytes_total{direction=\"client_to_target\",protocol=\"tcp\"}";
const TO_CLIENT: &str =
    "ferrosocks_relayed_bytes_total{direction=\"target_to_client\",protocol=\"tcp\"}";
const ACTIVE: &str = "ferrosocks_sessions_active{command=\"connect\"}";

#[test]
fn counters_rise_by_exactly_n_and_bytes_equal_what_curl_moved() {
    let p = Proxy::start(&metrics_conf(""));
    let at = metrics_addr(&p);
    let web = Helper::http();
    let before = scrape(at);
    assert_eq!(value(&before, ACCEPTED), 0);
    let n = 7;
    let (mut sent, mut got) = (0, 0);
    for _ in 0..n {
        let (s, g) = curl_through(&p, &format!("http://{}/", web.addr));
        sent += s;
        got += g;
    }
    // Blocked by socks rule 1: curl fails, the request is counted.
    for _ in 0..3 {
        let (code, _, _) = curl(&[
            "--max-time",
            "5",
            "-x",
            &format!("socks5://{}", p.addr),
            &format!("http://127.0.0.2:{}/", web.addr.port()),
        ]);
        assert_ne!(code, 0);
    }
    // A session's bytes count at its end: wait for the summaries.
    wait_scrape(at, "the summaries", |s| value(s, TO_CLIENT) == got);
    let s = scrape(at);
    assert_eq!(value(&s, ACCEPTED), n + 3);
    assert_eq!(value(&s, PASSED), n);
    assert_eq!(value(&s, BLOCKED), 3);
    assert_eq!(value(&s, TO_TARGET), sent);
    assert_eq!(value(&s, TO_CLIENT), got);
    assert_eq!(
        value(&s, "ferrosocks_session_duration_seconds_count"),
        n + 3
    );
    assert_eq!(value(&s, "ferrosocks_connect_duration_seconds_count"), n);
    assert_eq!(value(&s, ACTIVE), 0);
    // The accept records (CLIENT, info) are counted by logging itself.
    assert!(
        value(
            &s,
            "ferrosocks_log_records_total{subsystem=\"CLIENT\",level=\"info\"}"
        ) >= n + 3
    );
    assert!(
        s.keys()
            .any(|k| k.starts_with("ferrosocks_log_sink_stalls_total{sink=")),
        "{s:?}"
    );
    assert!(value(&s, "process_open_fds") > 0);
    assert!(value(&s, "process_max_fds") > 0);
    assert!(s.contains_key(&format!(
        "ferrosocks_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    )));
}

#[test]
fn the_gauge_counts_held_sessions_and_status_json_shows_them() {
    let p = Proxy::start(&metrics_conf(""));
    let at = metrics_addr(&p);
    let silent = Helper::silent();
    let held: Vec<Raw> = (0..3)
        .map(|_| {
            let (r, reply) = Raw::connect_v4(p.addr, silent.addr);
            assert_eq!(reply[1], 0);
            r
        })
        .collect();
    wait_scrape(at, "three live connects", |s| value(s, ACTIVE) == 3);
    let doc: serde_json::Value = serde_json::from_str(&get(at, "/status.json")).unwrap();
    let sessions = doc["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    for (s, r) in sessions.iter().zip(&held) {
        assert_eq!(s["client"], r.0.local_addr().unwrap().to_string());
        assert_eq!(s["target"], silent.addr.to_string());
        assert_eq!(s["command"], "connect");
        assert_eq!(s["state"], "established");
    }
    assert_eq!(doc["totals"]["live"], 3);
    drop(held);
    wait_scrape(at, "the sessions' end", |s| value(s, ACTIVE) == 0);
    let doc: serde_json::Value = serde_json::from_str(&get(at, "/status.json")).unwrap();
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 0);
    assert_eq!(doc["totals"]["ended"], 3);
}

/// A TCP connection to `to` from `from` (a loopback address of 127/8).
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    sock.connect(&to.into()).unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A CONNECT from `from` to `target` that reads one reply, sends a line and waits for
/// the echo; false when the proxy refused it.
fn session_from(from: [u8; 4], proxy: SocketAddr, target: SocketAddr) -> bool {
    let mut s = connect_from(from, proxy);
    if s.write_all(&[5, 1, 0]).is_err() {
        return false;
    }
    let mut m = [0u8; 2];
    if s.read_exact(&mut m).is_err() {
        return false;
    }
    let SocketAddr::V4(t) = target else { panic!() };
    let mut req = vec![5, 1, 0, 1];
    req.extend_from_slice(&t.ip().octets());
    req.extend_from_slice(&t.port().to_be_bytes());
    s.write_all(&req).unwrap();
    let mut reply = [0u8; 10];
    if s.read_exact(&mut reply).is_err() || reply[1] != 0 {
        return false;
    }
    s.write_all(b"hello\n").unwrap();
    let mut back = [0u8; 6];
    s.read_exact(&mut back).unwrap();
    true
}

#[test]
fn counters_equal_the_traffic_log_after_a_mix_of_sessions() {
    let p = Proxy::start(&metrics_conf(""));
    let at = metrics_addr(&p);
    let echo = Helper::echo();
    let web = Helper::http();
    let blocked_target: SocketAddr = format!("127.0.0.2:{}", echo.addr.port()).parse().unwrap();
    let mut ended = 0;
    for i in 0..12u8 {
        let passed = match i % 4 {
            0 => session_from([127, 0, 0, 1], p.addr, echo.addr),
            1 => session_from([127, 0, 0, 9], p.addr, echo.addr),
            2 => session_from([127, 0, 0, 3], p.addr, blocked_target),
            _ => {
                curl_through(&p, &format!("http://{}/", web.addr));
                true
            }
        };
        assert_eq!(passed, i % 4 == 0 || i % 4 == 3, "session {i}");
        ended += 1;
    }
    wait_scrape(at, "every session's end", |s| {
        value(s, "ferrosocks_session_duration_seconds_count") == ended
    });
    let s = scrape(at);
    // The log is written by its own thread: wait for the last session's lines.
    let deadline = Instant::now() + Duration::from_secs(15);
    let records = loop {
        let r = p.records();
        let summaries = r
            .iter()
            .filter(|m| m.starts_with("pass(2): tcp/accept ]:"))
            .count();
        if summaries == 6 || Instant::now() > deadline {
            break r;
        }
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(50));
    };
    let count = |head: &str| records.iter().filter(|m| m.starts_with(head)).count() as u64;
    assert_eq!(
        value(&s, "ferrosocks_connections_accepted_total{rule=\"2\"}"),
        count("pass(2): tcp/accept [:")
    );
    // The client rule's own blocks (not the accept lines a socks-rule block adds).
    let client_blocks = records
        .iter()
        .filter(|m| m.starts_with("block(1): tcp/accept ]:"))
        .count() as u64;
    assert_eq!(
        value(&s, "ferrosocks_connections_blocked_total{rule=\"1\"}"),
        client_blocks
    );
    assert_eq!(client_blocks, 3);
    assert_eq!(value(&s, PASSED), count("pass(2): tcp/connect [:"));
    assert_eq!(value(&s, BLOCKED), count("block(1): tcp/connect ]:"));
    assert_eq!(value(&s, PASSED), 6);
    assert_eq!(value(&s, BLOCKED), 3);
    // Bytes: the sums of the socks rule's summaries, both ways.
    let (mut to_target, mut to_client) = (0, 0);
    for m in records
        .iter()
        .filter(|m| m.starts_with("pass(2): tcp/connect ]:"))
    {
        let r = traffic_log::Record::parse(m).unwrap();
        let traffic_log::Event::Summary { summary, .. } = r.event else {
            panic!("{m}")
        };
        to_client += summary.client.written.bytes;
        to_target += summary.target.unwrap().written.bytes;
    }
    assert_eq!(value(&s, TO_TARGET), to_target, "{records:#?}");
    assert_eq!(value(&s, TO_CLIENT), to_client);
    assert!(to_target > 0 && to_client > 0);
}

#[test]
fn two_hundred_client_addresses_add_no_series() {
    let p = Proxy::start(&metrics_conf(""));
    let at = metrics_addr(&p);
    let echo = Helper::echo();
    // Every kind of label value first, from one address.
    assert!(session_from([127, 0, 0, 1], p.addr, echo.addr));
    wait_scrape(at, "the first session's end", |s| {
        value(s, "ferrosocks_session_duration_seconds_count") == 1
    });
    let series = scrape(at).len();
    for x in 0..200u16 {
        let from = [127, 0, (x / 250) as u8 + 1, (x % 250) as u8 + 2];
        assert!(session_from(from, p.addr, echo.addr), "from {from:?}");
    }
    wait_scrape(at, "every session's end", |s| {
        value(s, "ferrosocks_session_duration_seconds_count") == 201
    });
    let s = scrape(at);
    assert_eq!(s.len(), series, "series grew with client addresses");
    assert_eq!(value(&s, PASSED), 201);
    assert!(
        !get(at, "/metrics").contains("127.0.0."),
        "an address in a label"
    );
}

#[test]
fn openmetrics_when_asked_and_refusals_for_the_rest() {
    let p = Proxy::start(&metrics_conf(""));
    let at = metrics_addr(&p);
    let (code, out, _) = curl(&[
        "-D",
        "-",
        "-H",
        "Accept: application/openmetrics-text;version=1.0.0",
        &format!("http://{at}/metrics"),
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("content-type: application/openmetrics-text"),
        "{out}"
    );
    assert!(out.ends_with("# EOF\n"));
    let status = |args: &[&str]| {
        let mut a = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        a.extend_from_slice(args);
        curl(&a).1
    };
    assert_eq!(status(&[&format!("http://{at}/nope")]), "404");
    assert_eq!(
        status(&["-X", "POST", &format!("http://{at}/metrics")]),
        "405"
    );
    assert_eq!(status(&["-X", "DELETE", &format!("http://{at}/")]), "405");
    // Killing from the page is off without metrics.control.
    assert_eq!(
        status(&["-X", "POST", &format!("http://{at}/sessions/0/kill")]),
        "403"
    );
    // An over-long request line and a header flood are refused, not buffered.
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(64 * 1024));
    assert!(refused(at, long.as_bytes()), "a 64 KiB request line");
    // Many of them leave the memory where it was: nothing past 16 KiB is buffered.
    let rss = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", p.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let before = rss();
    for _ in 0..200 {
        assert!(refused(at, long.as_bytes()));
    }
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 4096,
        "200 long request lines grew the RSS by {grown} KiB"
    );
    let mut flood = String::from("GET /metrics HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        flood.push_str(&format!("X-H{i}: y\r\n"));
    }
    flood.push_str("\r\n");
    assert!(refused(at, flood.as_bytes()), "200 headers");
    // Still serving.
    assert!(get(at, "/metrics").contains("process_open_fds"));
    let page = get(at, "/");
    assert!(
        page.contains("<table id=\"sessions\"")
            && !page.contains("http://")
            && !page.contains("https://")
    );
}

/// Sends `request` raw: true when the answer is a 4xx or the connection is closed
/// without a 200.
fn refused(at: SocketAddr, request: &[u8]) -> bool {
    let mut s = TcpStream::connect(at).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let head = String::from_utf8_lossy(&answer);
    !head.starts_with("HTTP/1.1 200")
}

#[test]
fn the_dashboard_cuts_a_session_only_with_control_and_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("mgmt.pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let extra = format!(
        "management: 127.0.0.1 port = 0\nmanagement.password: {}\nmetrics.control: on\n",
        pw.display()
    );
    let p = Proxy::start(&metrics_conf(&extra));
    let at = metrics_addr(&p);
    let silent = Helper::silent();
    let (mut held, reply) = Raw::connect_v4(p.addr, silent.addr);
    assert_eq!(reply[1], 0);
    wait_scrape(at, "the held session", |s| value(s, ACTIVE) == 1);
    let doc: serde_json::Value = serde_json::from_str(&get(at, "/status.json")).unwrap();
    let id = doc["sessions"][0]["id"].as_u64().unwrap();
    let kill = |pw: &str| {
        curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-H",
            &format!("X-Ferrosocks-Password: {pw}"),
            &format!("http://{at}/sessions/{id}/kill"),
        ])
        .1
    };
    assert_eq!(kill("wrong"), "401");
    assert_eq!(kill("s3cret"), "200");
    assert!(held.read_to_close().is_empty());
    wait_scrape(at, "the cut session's end", |s| value(s, ACTIVE) == 0);
    assert_eq!(kill("s3cret"), "404");
}

/// Headless Chromium on `url` with `args`: its stdout (the DOM with `--dump-dom`).
fn chromium(profile: &std::path::Path, url: &str, args: &[&str]) -> String {
    require("chromium");
    let (code, out, err) = run_within(
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--window-size=900,700",
                // Lets the page poll /status.json a few times before the DOM is read.
                "--virtual-time-budget=4000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(url),
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "chromium: {err}");
    out
}

/// The dashboard's row of session `id`, from a dumped DOM.
fn row_of(dom: &str, id: u64) -> Option<String> {
    let start = dom.find(&format!("<tr data-id=\"{id}\">"))?;
    let end = dom[start..].find("</tr>")? + start;
    Some(dom[start..end].to_owned())
}

#[test]
fn the_dashboard_in_headless_chromium_shows_a_held_session_until_it_ends() {
    let p = Proxy::start(&metrics_conf(""));
    let at = metrics_addr(&p);
    let silent = Helper::silent();
    let (mut held, reply) = Raw::connect_v4(p.addr, silent.addr);
    assert_eq!(reply[1], 0);
    held.send(b"twelve bytes");
    wait_scrape(at, "the held session", |s| value(s, ACTIVE) == 1);
    let doc: serde_json::Value = serde_json::from_str(&get(at, "/status.json")).unwrap();
    let id = doc["sessions"][0]["id"].as_u64().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{at}/");
    let dom = chromium(profile.path(), &url, &["--dump-dom"]);
    let row = row_of(&dom, id).unwrap_or_else(|| panic!("no row for session {id}:\n{dom}"));
    let client = held.0.local_addr().unwrap().to_string();
    assert!(row.contains(&format!("<td>{client}</td>")), "{row}");
    assert!(row.contains(&format!("<td>{}</td>", silent.addr)), "{row}");
    assert!(
        row.contains("<td>connect</td>") && row.contains("12 B"),
        "{row}"
    );
    // The screenshot docs/metrics.md shows (rewritten with FERROSOCKS_BLESS=1).
    let shot = profile.path().join("dashboard.png");
    chromium(
        profile.path(),
        &url,
        &[&format!("--screenshot={}", shot.display())],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 1000);
    if std::env::var_os("FERROSOCKS_BLESS").is_some() {
        let docs = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/metrics-dashboard.png"
        );
        std::fs::write(docs, &png).unwrap();
    }
    drop(held);
    wait_scrape(at, "the session's end", |s| value(s, ACTIVE) == 0);
    let dom = chromium(profile.path(), &url, &["--dump-dom"]);
    assert!(dom.contains("<table id=\"sessions\""), "{dom}");
    assert!(
        row_of(&dom, id).is_none(),
        "the ended session's row stays:\n{dom}"
    );
}

#[test]
fn a_thousand_idle_http_connections_do_not_stop_the_socks_side() {
    let p = Proxy::start(&metrics_conf(""));
    let at = metrics_addr(&p);
    let echo = Helper::echo();
    let idle: Vec<TcpStream> = (0..1000)
        .filter_map(|_| TcpStream::connect(at).ok())
        .collect();
    assert!(idle.len() >= 900, "{} connections", idle.len());
    let started = Instant::now();
    for _ in 0..20 {
        assert!(session_from([127, 0, 0, 1], p.addr, echo.addr));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "20 sessions took {:?}",
        started.elapsed()
    );
    drop(idle);
    assert!(get(at, "/metrics").contains("ferrosocks_requests_total"));
}

/// `all_commands` (one socks rule passing every command) with the metrics endpoint.
fn all_commands_conf() -> String {
    crate::commands::all_commands("connect disconnect error").replace(
        "socksmethod: none",
        "socksmethod: none\nmetrics: 127.0.0.1 port = 0",
    )
}

#[test]
fn udp_and_bind_count_as_their_records_say_and_drops_by_reason() {
    use crate::commands::{bind_request, header, UdpEcho};
    let echo = UdpEcho::start("127.0.0.1:0");
    let p = Proxy::start(&all_commands_conf());
    let at = metrics_addr(&p);
    let me = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    me.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (ctl, reply) = associate(p.addr, me.local_addr().unwrap());
    let relay = relay_of(&reply);
    let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    other
        .send_to(&[header(echo.addr, 0), b"x".to_vec()].concat(), relay)
        .unwrap();
    me.send_to(&[0, 0, 0, 1, 127], relay).unwrap();
    me.send_to(&[header(echo.addr, 1), b"frag".to_vec()].concat(), relay)
        .unwrap();
    me.send_to(&[header(echo.addr, 0), b"good".to_vec()].concat(), relay)
        .unwrap();
    let mut buf = [0u8; 256];
    let (n, _) = me.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[n - 4..n], b"good");
    drop(ctl);
    // A BIND whose peer never comes: its start record, then the client leaves.
    let (bind, _) = bind_request(p.addr, "127.0.0.1:0".parse().unwrap());
    drop(bind);
    wait_scrape(at, "both sessions' end", |s| {
        value(s, "ferrosocks_session_duration_seconds_count") == 2
    });
    let s = scrape(at);
    let drop_of = |r: &str| {
        value(
            &s,
            &format!("ferrosocks_udp_datagrams_dropped_total{{reason=\"{r}\"}}"),
        )
    };
    assert_eq!(
        (
            drop_of("foreign"),
            drop_of("malformed"),
            drop_of("fragment")
        ),
        (1, 1, 1)
    );
    let records = {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = p.records();
            if r.iter()
                .filter(|m| m.starts_with("pass(2): tcp/accept ]:"))
                .count()
                == 2
                || Instant::now() > deadline
            {
                break r;
            }
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let count = |head: &str| records.iter().filter(|m| m.starts_with(head)).count() as u64;
    for command in ["udpassociate", "bind"] {
        let proto = if command == "bind" { "tcp" } else { "udp" };
        assert_eq!(
            value(
                &s,
                &format!(
                    "ferrosocks_requests_total{{command=\"{command}\",verdict=\"pass\",rule=\"1\"}}"
                )
            ),
            count(&format!("pass(1): {proto}/{command} [:")),
            "{command}: {records:#?}"
        );
    }
    assert_eq!(count("pass(1): udp/udpassociate [:"), 1);
    let mut to_target = 0;
    for m in records
        .iter()
        .filter(|m| m.starts_with("pass(1): udp/udpassociate ]:"))
    {
        let r = traffic_log::Record::parse(m).unwrap();
        if let traffic_log::Event::Summary { summary, .. } = r.event {
            to_target += summary.target.unwrap().written.bytes;
        }
    }
    assert_eq!(to_target, 4);
    assert_eq!(
        value(
            &s,
            "ferrosocks_relayed_bytes_total{direction=\"client_to_target\",protocol=\"udp\"}"
        ),
        to_target
    );
}

#[test]
fn failed_logins_and_lookups_are_counted_by_method_and_class() {
    require("htpasswd");
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let (code, _, err) = run(Command::new("htpasswd")
        .args(["-B", "-b", "-c"])
        .arg(&users)
        .args(["alice", "s3cret-pw"]));
    assert_eq!(code, 0, "htpasswd: {err}");
    let c = metrics_conf("").replace(
        "socksmethod: none",
        &format!("socksmethod: username\npasswordfile: {}", users.display()),
    );
    let p = Proxy::start(&c);
    let at = metrics_addr(&p);
    let web = Helper::http();
    for pw in ["wrong", "also-wrong"] {
        let (code, _, _) = curl(&[
            "--max-time",
            "10",
            "-x",
            &format!("socks5://alice:{pw}@{}", p.addr),
            &format!("http://{}/", web.addr),
        ]);
        assert_ne!(code, 0);
    }
    // A name that does not resolve (no resolver in the test's namespace, or .invalid).
    let (code, _, _) = curl(&[
        "--max-time",
        "20",
        "-x",
        &format!("socks5h://alice:s3cret-pw@{}", p.addr),
        "http://no-such-host.invalid/",
    ]);
    assert_ne!(code, 0);
    wait_scrape(at, "the three sessions' end", |s| {
        value(s, "ferrosocks_session_duration_seconds_count") == 3
    });
    let s = scrape(at);
    assert_eq!(
        value(&s, "ferrosocks_auth_failures_total{method=\"username\"}"),
        2
    );
    let logged = p
        .wait_for("the AUTH lines", |m| m.contains("authentication failed"))
        .iter()
        .filter(|m| m.contains("username/password authentication failed"))
        .count();
    assert_eq!(logged, 2);
    let dns: u64 = s
        .iter()
        .filter(|(k, _)| k.starts_with("ferrosocks_dns_failures_total{class=\"EAI_"))
        .map(|(_, v)| *v as u64)
        .sum();
    assert_eq!(dns, 1, "{s:?}");
    assert!(value(&s, "ferrosocks_resolve_duration_seconds_count") >= 1);
}

#[test]
fn a_metrics_port_in_use_stops_the_start_naming_the_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sockd.conf");
    std::fs::write(
        &conf,
        format!(
            "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\nmetrics: 127.0.0.1 port = {port}\n"
        ),
    )
    .unwrap();
    let (code, out, err) = run_within(
        Command::new(BIN).arg("-f").arg(&conf),
        Duration::from_secs(20),
    );
    assert_eq!(code, 71, "stdout {out:?}, stderr {err:?}");
    assert!(
        err.contains("sockd.conf:4:10: metrics: cannot listen on 127.0.0.1:"),
        "{err}"
    );
    assert!(out.is_empty(), "no ready line: {out:?}");
}

#[test]
fn a_failed_chaining_is_counted_by_route() {
    let echo = Helper::echo();
    let closed = closed_port();
    let c = format!(
        "{}route {{\n    from: 0/0 to: 0/0 via: 127.0.0.1 port = {closed}\n    proxyprotocol: socks_v5\n    method: none\n}}\n",
        metrics_conf("")
    );
    let p = Proxy::start(&c);
    let at = metrics_addr(&p);
    for _ in 0..2 {
        assert!(!session_from([127, 0, 0, 1], p.addr, echo.addr));
    }
    wait_scrape(at, "both failures", |s| {
        value(s, "ferrosocks_upstream_failures_total{route=\"1\"}") == 2
    });
    let s = scrape(at);
    let logged = p
        .wait_for("the failure records", |m| m.contains("serverchain failed"))
        .iter()
        .filter(|m| m.starts_with("block(2): tcp/connect ]:") && m.contains("serverchain failed"))
        .count() as u64;
    assert_eq!(
        value(
            &s,
            "ferrosocks_requests_total{command=\"connect\",verdict=\"error\",rule=\"2\"}"
        ),
        logged
    );
}

#[test]
fn a_sink_whose_writes_fail_is_counted_with_the_lines_it_lost() {
    let root = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&root.path().join("small"), "16k");
    let mnt = disk.path().to_path_buf();
    let full = mnt.join("full.log");
    let conf = metrics_conf("").replace(
        "logoutput: @LOG@\n",
        &format!("logoutput: @LOG@ {}\n", full.display()),
    );
    let p = Proxy::start(&conf);
    let at = metrics_addr(&p);
    let web = Helper::http();
    // Every session writes its lines to both files until the small one is full.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !p
        .messages()
        .iter()
        .any(|m| m.contains("No space left on device"))
    {
        assert!(Instant::now() < deadline, "the small disk never filled");
        curl_through(&p, &format!("http://{}/", web.addr));
    }
    for _ in 0..5 {
        curl_through(&p, &format!("http://{}/", web.addr));
    }
    let sink = |s: &HashMap<String, f64>, name: &str| {
        s.iter()
            .find(|(k, _)| k.starts_with(name) && k.contains("full.log"))
            .map_or(0, |(_, v)| *v as u64)
    };
    wait_scrape(at, "a failure and its lost lines", |s| {
        sink(s, "ferrosocks_log_sink_failures_total{") == 1
            && sink(s, "ferrosocks_log_sink_lost_records_total{") > 0
    });
    // The other sink writes on: its counts show no failure.
    let s = scrape(at);
    assert!(s
        .iter()
        .filter(
            |(k, _)| k.starts_with("ferrosocks_log_sink_failures_total{")
                && !k.contains("full.log")
        )
        .all(|(_, v)| *v == 0.0));
}
