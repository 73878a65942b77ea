//! `ferrosocks log`: traffic moved through the real binary with curl, logged as text,
//! as JSON and through a real syslog daemon (rsyslog, RFC 3164 and RFC 5424 files),
//! then accounted by `ferrosocks log stats`: the totals equal the bytes moved, every
//! form gives the same stats, compressed and stamped copies too; bad input among good
//! is reported with file:line and the rest still counts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn wait_file(p: &Path, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let t = std::fs::read_to_string(p).unwrap_or_default();
        if pred(&t) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{} lacks {what}:\n{t}",
            p.display()
        );
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ferrosocks log ARGS…`: exit status, stdout, stderr.
fn log_cmd(args: &[&str], files: &[&Path]) -> (i32, String, String) {
    run(Command::new(BIN).arg("log").args(args).args(files))
}

/// `log stats` as CSV, without the first/last seen columns (a syslog daemon stamps a
/// line when it receives it, which may be the next second).
fn stats_csv(by: &[&str], files: &[&Path]) -> String {
    let mut args = vec!["stats", "--format", "csv"];
    for b in by {
        args.extend(["--by", b]);
    }
    let (code, out, err) = log_cmd(&args, files);
    assert_eq!(code, 0, "log stats failed: {err}");
    assert!(!err.contains("malformed"), "{err}");
    out.lines()
        .map(|l| l.rsplitn(3, ',').nth(2).unwrap_or("").to_owned() + "\n")
        .collect()
}

/// A private rsyslogd writing what it receives on its socket in RFC 3164 and RFC 5424
/// files; killed by PID on drop.
struct Rsyslog {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Rsyslog {
    fn start() -> Self {
        const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
        assert!(
            Path::new(RSYSLOGD).exists(),
            "rsyslog is not installed: run ./test.sh"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let conf = format!(
            "global(workDirectory=\"{d}\")\nmodule(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{d}/log.sock\" CreatePath=\"on\")\n\
             *.* action(type=\"omfile\" file=\"{d}/rfc3164.log\" template=\"RSYSLOG_TraditionalFileFormat\")\n\
             *.* action(type=\"omfile\" file=\"{d}/rfc5424.log\" template=\"RSYSLOG_SyslogProtocol23Format\")\n"
        );
        std::fs::write(dir.path().join("rs.conf"), conf).unwrap();
        let child = Command::new(RSYSLOGD)
            .args(["-n", "-f"])
            .arg(dir.path().join("rs.conf"))
            .arg("-i")
            .arg(dir.path().join("rs.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let me = Self { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !me.socket().exists() {
            assert!(Instant::now() < deadline, "rsyslogd made no socket");
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(20));
        }
        me
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("log.sock")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` with `input` on its standard input.
fn pipe(cmd: &mut Command, input: &[u8], out: &Path) {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(out).unwrap())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn stats_equal_the_bytes_moved_in_every_log_form() {
    require("curl");
    require("gzip");
    require("zstd");
    let rs = Rsyslog::start();
    let http = Helper::http();
    let conf = conf("connect disconnect").replace(
        "logoutput: @LOG@",
        "logoutput: @LOG@ json:@DIR@/log.json syslog",
    );
    let proxy = Proxy::launch(
        &conf,
        &[],
        &[("FERROSOCKS_SYSLOG_SOCKET", rs.socket().to_str().unwrap())],
    );
    let url = format!("http://127.0.0.1:{}/", http.addr.port());
    // Three sessions: a GET and two POSTs of known sizes.
    let body = "x".repeat(5000);
    let paddr = proxy.addr.to_string();
    for args in [
        vec![],
        vec!["--data-binary", "abc"],
        vec!["--data-binary", body.as_str()],
    ] {
        let mut a = vec!["--socks5", paddr.as_str(), url.as_str()];
        a.extend(args);
        let (code, out, err) = curl(&a);
        assert_eq!((code, out.as_str()), (0, HTTP_BODY), "{err}");
    }
    let accepts = |t: &str| t.matches("tcp/accept ]:").count() == 3;
    wait_file(&proxy.log, "three accept summaries", accepts);
    let json = proxy.dir.path().join("log.json");
    wait_file(&json, "three accept summaries", accepts);
    let rfc3164 = wait_file(&rs.file("rfc3164.log"), "three accept summaries", accepts);
    wait_file(&rs.file("rfc5424.log"), "three accept summaries", accepts);
    assert!(
        rfc3164.contains(&format!(" ferrosocks[{}]: info: pass(", proxy.pid())),
        "{rfc3164}"
    );
    // The HTTP server saw each request whole (the POST bodies arrive with them or after:
    // the helper reads up to the end of the headers, so count what curl sent instead).
    let resp = http_response().len() as u64;
    let (code, out, err) = log_cmd(&["stats", "--format", "json"], &[&proxy.log]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out}: {e}"));
    assert_eq!(v["sessions"], 3, "{out}");
    assert_eq!(v["bytes_to_client"], 3 * resp, "{out}");
    assert_eq!(v["bytes_from_target"], 3 * resp, "{out}");
    let from_client = v["bytes_from_client"].as_u64().unwrap();
    assert_eq!(v["bytes_to_target"].as_u64().unwrap(), from_client, "{out}");
    // What the client sent: the three requests' headers (the HTTP server kept those)
    // plus the bodies of the two POSTs that came after their headers.
    let headers = http.received.lock().unwrap().len() as u64;
    assert!(
        from_client >= headers && from_client <= headers + 3 + 5000,
        "{from_client} vs {headers}: {out}"
    );
    assert_eq!(v["blocked"], 0);
    assert_eq!(v["open_sessions"], 0);
    // The same stats from every form of the same traffic.
    let by = ["client", "target", "port", "rule"];
    let want = stats_csv(&by, &[&proxy.log]);
    assert_eq!(want.lines().count(), 2, "one group: {want}");
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read(&proxy.log).unwrap();
    let gz = dir.path().join("log.1.gz");
    let zst = dir.path().join("log.2.zst");
    pipe(Command::new("gzip").arg("-c"), &text, &gz);
    pipe(Command::new("zstd").args(["-q", "-c"]), &text, &zst);
    let tai = dir.path().join("multilog");
    let stamped: String = std::fs::read_to_string(&proxy.log)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| format!("@4000000069000000{:08x} {l}\n", i * 1000))
        .collect();
    std::fs::write(&tai, stamped).unwrap();
    for (what, file) in [
        ("JSON", json.clone()),
        ("RFC 3164 (rsyslog)", rs.file("rfc3164.log")),
        ("RFC 5424 (rsyslog)", rs.file("rfc5424.log")),
        ("gzip", gz.clone()),
        ("zstd", zst.clone()),
        ("@tai64n", tai.clone()),
    ] {
        assert_eq!(stats_csv(&by, &[&file]), want, "{what}");
    }
    // Standard input, and the prefix kinds counted.
    let (code, out, err) = run(Command::new("sh").arg("-c").arg(format!(
        "{BIN} log stats --format csv - < {}",
        rs.file("rfc5424.log").display()
    )));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().nth(1).is_some_and(|l| l.starts_with("3,0,0,")),
        "{out}"
    );
    assert!(err.contains("rfc5424"), "{err}");
    // Two rotated files together count twice.
    let (_, out, _) = log_cmd(&["stats", "--format", "json"], &[&gz, &zst]);
    assert!(out.contains("\"sessions\":6,"), "{out}");
}

#[test]
fn bad_input_is_reported_with_its_place_and_the_rest_is_accounted() {
    let good = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../traffic-log/tests/golden/dante-1.4.2-connect-ioop.log");
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.log");
    let mut bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i * 7919 % 251) as u8)
        .filter(|&b| b != b'\n')
        .collect();
    bytes.extend_from_slice(b"\nNov 21 09:43:57 (1795254237.375387) danted[29852]: info: pass(1): tcp/connect ]: 135281 -> 127.0");
    std::fs::write(&garbage, &bytes).unwrap();
    let long = dir.path().join("long.log");
    let mut text = std::fs::read_to_string(&good).unwrap();
    text.insert_str(
        0,
        &format!(
            "Nov 21 09:43:55 (1795254235.762175) danted[1]: info: {}\n",
            "y".repeat(3 << 20)
        ),
    );
    std::fs::write(&long, text).unwrap();
    let missing = dir.path().join("deleted.log");
    let directory = dir.path().to_path_buf();
    let truncated_gz = dir.path().join("cut.gz");
    let gz = {
        let mut c = Command::new("gzip");
        c.arg("-c");
        let out = dir.path().join("whole.gz");
        pipe(&mut c, &std::fs::read(&good).unwrap(), &out);
        std::fs::read(&out).unwrap()
    };
    std::fs::write(&truncated_gz, &gz[..gz.len() / 2]).unwrap();
    let (code, out, err) = log_cmd(
        &["stats", "--format", "json"],
        &[&garbage, &missing, &long, &directory, &truncated_gz, &good],
    );
    assert_eq!(code, 1, "an input could not be read: {err}");
    // long.log and the good file: three sessions each; the cut gzip file counts what
    // it had before the cut (its lines are whole up to there).
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let sessions = v["sessions"].as_u64().unwrap();
    assert!((6..=9).contains(&sessions), "{out}\n{err}");
    let g = garbage.display();
    assert!(err.contains(&format!("{g}:1: ")), "garbage: {err}");
    assert!(
        err.contains(&format!("{g}:2: ")) && err.contains("truncated?"),
        "truncated: {err}"
    );
    assert!(
        err.contains(&format!("{}: cannot read", missing.display())),
        "missing: {err}"
    );
    assert!(
        err.contains(&format!("{}:1: line of 3145", long.display())),
        "long: {err}"
    );
    assert!(
        err.contains(&format!(
            "{}: cannot read: Is a directory",
            directory.display()
        )),
        "directory: {err}"
    );
    assert!(
        err.contains(&format!("{}:", truncated_gz.display())),
        "cut gzip: {err}"
    );
    // convert and grep report the same way and still do their work.
    let (code, out, err) = log_cmd(&["grep", "--phase", "summary"], &[&garbage, &good]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(err.contains(&format!("{g}:1: ")), "{err}");
    let (code, out, _) = log_cmd(&["convert", "--to", "json", "--strict"], &[&good]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 20, "the traffic records only: {out}");
    let (_, out, _) = log_cmd(&["stats", "--since", "nonsense"], &[&good]);
    assert!(out.is_empty());
}

/// `log.interim: 1` in the socks rule: a session held open gets interim records (text
/// and JSON `phase: "interim"`); the log cut while it is open counts it once with its
/// interim bytes; the whole log, after it ended, counts it once with its summary.
#[test]
fn interim_records_count_an_open_session_once() {
    let echo = Helper::echo();
    let conf = conf("connect disconnect")
        .replace("logoutput: @LOG@", "logoutput: @LOG@ json:@DIR@/log.json")
        .replace(
            "    log: connect disconnect\n}\n",
            "    log: connect disconnect\n    log.interim: 1\n}\n",
        );
    assert!(conf.contains("log.interim: 1"), "{conf}");
    let p = Proxy::start(&conf);
    let (mut c, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0);
    c.send(&[b'a'; 1000]);
    assert_eq!(c.read_exact(1000).len(), 1000);
    let interims = |t: &str| {
        t.matches(": interim: 1000 -> client -> 1000, 1000 -> target -> 1000.")
            .count()
    };
    let text = wait_file(&p.log, "an interim record", |t| interims(t) >= 1);
    // The log as it is now: cut in the middle of the session.
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.log");
    std::fs::write(&cut, &text).unwrap();
    let (code, out, err) = log_cmd(&["stats", "--format", "json"], &[&cut]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (v["sessions"].as_u64(), v["open_sessions"].as_u64()),
        (Some(1), Some(1)),
        "{out}"
    );
    assert_eq!(v["bytes_from_client"], 1000, "{out}");
    assert_eq!(v["bytes_to_client"], 1000, "{out}");
    assert!(err.contains("still open"), "{err}");
    // More bytes, a later interim record with the new counts, then the end.
    c.send(&[b'b'; 500]);
    assert_eq!(c.read_exact(500).len(), 500);
    wait_file(&p.log, "a second interim record", |t| {
        t.contains(": interim: 1500 -> client -> 1500")
    });
    drop(c);
    let whole = wait_file(&p.log, "the summary", |t| t.contains("tcp/accept ]:"));
    // The JSON sink has a writer thread of its own: it may write a moment later.
    let json_file = p.dir.path().join("log.json");
    wait_file(&json_file, "the summary", |t| t.contains("tcp/accept ]:"));
    assert!(interims(&whole) >= 1);
    for file in [p.log.clone(), p.dir.path().join("log.json")] {
        let (code, out, err) = log_cmd(&["stats", "--format", "json"], &[&file]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(
            (v["sessions"].as_u64(), v["open_sessions"].as_u64()),
            (Some(1), Some(0)),
            "{}: {out}",
            file.display()
        );
        assert_eq!(v["bytes_from_client"], 1500, "{out}");
        assert_eq!(v["bytes_from_target"], 1500, "{out}");
    }
    let json = std::fs::read_to_string(p.dir.path().join("log.json")).unwrap();
    let interim = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["phase"] == "interim")
        .unwrap_or_else(|| panic!("no interim JSON record: {json}"));
    assert_eq!(interim["client"]["read"]["bytes"], 1000);
    assert!(interim["duration_secs"].as_u64().is_some(), "{interim}");
    // The cut log and the rest of it (as logrotate would split them) count it once.
    let rest = dir.path().join("rest.log");
    std::fs::write(&rest, &whole[text.len()..]).unwrap();
    let (_, out, _) = log_cmd(&["stats", "--format", "json"], &[&cut, &rest]);
    assert!(
        out.contains("\"sessions\":1,\"open_sessions\":0,")
            && out.contains("\"bytes_from_client\":1500,"),
        "{out}"
    );
    // Dante-format readers: the interim line is a `-:` notice, not a `]:` summary.
    let line = whole.lines().find(|l| l.contains(": interim: ")).unwrap();
    assert!(line.contains(" -: ") && !line.contains(" ]: "), "{line}");
    // Debian's sockd-stat.awk (Dante 1.1's layout: program `sockd`, no level word) on
    // the same log: one passed request, the interim records not counted.
    const AWK: &str = "/usr/share/doc/dante-server/examples/sockd-stat.awk";
    assert!(
        Path::new(AWK).exists(),
        "{AWK} missing: run ./test.sh (dante-server)"
    );
    let tag = format!("ferrosocks[{}]: info: ", p.pid());
    let as_11 = dir.path().join("as-1.1.log");
    std::fs::write(
        &as_11,
        whole.replace(&tag, &format!("sockd[{}]: ", p.pid())),
    )
    .unwrap();
    let (code, out, err) = run(Command::new("awk")
        .args(["-v", "nodns=1", "-f", AWK])
        .arg(&as_11));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Passed requests            :            1\n"),
        "{out}"
    );
}

/// The interim records of `command` in the log, parsed: the legs of each.
fn interim_summaries(p: &Proxy, command: &str) -> Vec<traffic_log::Summary> {
    p.records()
        .iter()
        .filter(|m| m.contains(&format!(" {command} -: ")) && m.contains(": interim: "))
        .map(|m| match traffic_log::Record::parse(m).unwrap().event {
            traffic_log::Event::Interim { summary, .. } => summary,
            other => panic!("not an interim record: {other:?}"),
        })
        .collect()
}

/// The summaries (`]:` with counts) of `command` in the log, parsed.
fn summaries_of(p: &Proxy, command: &str) -> Vec<traffic_log::Summary> {
    p.records()
        .iter()
        .filter(|m| m.contains(&format!(" {command} ]: ")))
        .filter_map(|m| match traffic_log::Record::parse(m).unwrap().event {
            traffic_log::Event::Summary { summary, .. } => Some(summary),
            _ => None,
        })
        .collect()
}

/// Waits for the JSON sink's summary of the accept, then returns its interim records,
/// checking there are at least three and all of `command`; the JSON file's path.
fn interim_json_records(p: &Proxy, command: &str) -> PathBuf {
    let json = p.dir.path().join("log.json");
    // The JSON sink has a writer thread of its own: it may write a moment later.
    wait_file(&json, "the accept summary", |t| t.contains("tcp/accept ]:"));
    let interim_json = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["phase"] == "interim")
        .collect::<Vec<_>>();
    assert!(interim_json.len() >= 3, "{interim_json:?}");
    assert!(
        interim_json.iter().all(|v| v["command"] == command),
        "{interim_json:?}"
    );
    json
}

/// Each set of files counts one session, closed, with `bytes` (from and to the client,
/// from and to the target).
fn counted_once(sets: &[Vec<&Path>], bytes: [u64; 4]) {
    for files in sets {
        let v = stats_row(files);
        assert_eq!(
            (v["sessions"].as_u64(), v["open_sessions"].as_u64()),
            (Some(1), Some(0)),
            "{files:?}: {v}"
        );
        assert_eq!(bytes_of(&v), bytes, "{files:?}: {v}");
    }
}

/// `log stats --format json` of `files`: its one row.
fn stats_row(files: &[&Path]) -> serde_json::Value {
    let (code, out, err) = log_cmd(&["stats", "--format", "json"], files);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out}: {e}"))
}

/// The four byte columns of a stats row: from/to client, from/to target.
fn bytes_of(v: &serde_json::Value) -> [u64; 4] {
    ["from_client", "to_client", "from_target", "to_target"]
        .map(|f| v[format!("bytes_{f}")].as_u64().unwrap_or(u64::MAX))
}

/// `log.interim: 1` on a UDP association held open for several periods, with datagrams
/// each way: interim records (one per external socket, as its summary) whose counts are
/// what was sent so far, the idle timeout (`timeout.io: 4`) still counted from the last
/// datagram (the ticks neither extend nor cut it), the log cut before the summary counted
/// once with the interim bytes, and the last interim record equal to the summary.
#[test]
fn a_udp_association_gets_interim_records_and_keeps_its_idle_timeout() {
    use crate::commands::{header, UdpEcho};
    let echo = UdpEcho::start("127.0.0.1:0");
    let conf = crate::commands::all_commands("connect disconnect")
        .replace("logoutput: @LOG@", "logoutput: @LOG@ json:@DIR@/log.json")
        .replace("socksmethod: none", "socksmethod: none\ntimeout.io: 4")
        .replace(
            "    log: connect disconnect\n}\n",
            "    log: connect disconnect\n    log.interim: 1\n}\n",
        );
    assert!(conf.contains("log.interim: 1"), "{conf}");
    let p = Proxy::start(&conf);
    let me = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    me.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (ctl, reply) = associate(p.addr, me.local_addr().unwrap());
    let relay = relay_of(&reply);
    let mut buf = [0u8; 256];
    let mut exchange = |payload: &[u8]| {
        me.send_to(&[header(echo.addr, 0), payload.to_vec()].concat(), relay)
            .unwrap();
        let (n, _) = me.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[10..n], payload);
        Instant::now()
    };
    // A datagram each way (whole datagrams on the client's side, the payload on the
    // target's), then an interim record with those counts.
    exchange(b"one");
    let first = ": interim: 13/1 -> client -> 13/1, 3/1 -> target -> 3/1.";
    wait_file(&p.log, "an interim record", |t| t.contains(first));
    let last = exchange(b"three");
    let second = ": interim: 28/2 -> client -> 28/2, 8/2 -> target -> 8/2.";
    // Two more periods with nothing sent: the same counts again, the association open.
    let text = wait_file(&p.log, "three interim records", |t| {
        t.matches(second).count() >= 2
    });
    assert!(
        !text.contains("udp/udpassociate ]:"),
        "closed early:\n{text}"
    );
    for s in interim_summaries(&p, "udp/udpassociate") {
        let t = s.target.as_ref().unwrap();
        assert_eq!(t.side.0[1].port, echo.addr.port(), "{s:?}");
        assert_eq!(s.client.side.0[1].port, relay.port(), "{s:?}");
    }
    // The log cut here: one open session with the bytes so far.
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.log");
    std::fs::write(&cut, &text).unwrap();
    let v = stats_row(&[&cut]);
    assert_eq!(
        (v["sessions"].as_u64(), v["open_sessions"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(bytes_of(&v), [28, 28, 8, 8], "{v}");
    // The idle timeout ends it 4 s after the last datagram, ticks or not.
    let whole = wait_file(&p.log, "the idle timeout", |t| {
        t.contains("udp/udpassociate ]:")
    });
    let idle = last.elapsed();
    assert!(
        idle >= Duration::from_millis(3900) && idle < Duration::from_millis(5500),
        "ended {idle:?} after the last datagram:\n{whole}"
    );
    let summary = whole
        .lines()
        .find(|l| l.contains("udp/udpassociate ]:"))
        .unwrap();
    assert!(
        summary.contains(": i/o timeout.  Session duration: "),
        "{summary}"
    );
    // The last interim record has the summary's sides and counts.
    let interims = interim_summaries(&p, "udp/udpassociate");
    assert_eq!(
        interims.last(),
        summaries_of(&p, "udp/udpassociate").first(),
        "{whole}"
    );
    drop(ctl);
    let whole = wait_file(&p.log, "the accept summary", |t| {
        t.contains("tcp/accept ]:")
    });
    let json = interim_json_records(&p, "udpassociate");
    // The whole log, and the cut one with its rest: one session, the summary's bytes.
    let rest = dir.path().join("rest.log");
    std::fs::write(&rest, &whole[text.len()..]).unwrap();
    counted_once(
        &[vec![p.log.as_path()], vec![&json], vec![&cut, &rest]],
        [28, 28, 8, 8],
    );
}

/// `log.interim: 1` on a BIND held open for several periods, bytes both ways: the
/// bindreply rule's interim records, in its summary's (turned) shape, with the bytes so
/// far; the log cut before the summary counts one session, seen from the SOCKS client;
/// the last interim record equals the summary.
#[test]
fn a_bind_gets_interim_records_in_its_summarys_shape() {
    use std::io::{Read, Write};
    let conf = crate::commands::all_commands("connect disconnect")
        .replace("logoutput: @LOG@", "logoutput: @LOG@ json:@DIR@/log.json")
        .replace(
            "    log: connect disconnect\n}\n",
            "    log: connect disconnect\n    log.interim: 1\n}\n",
        );
    assert!(conf.contains("log.interim: 1"), "{conf}");
    let p = Proxy::start(&conf);
    let (mut c, bound) = crate::commands::bind_request(p.addr, "127.0.0.1:0".parse().unwrap());
    let mut remote = std::net::TcpStream::connect(bound).unwrap();
    remote
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(&c.read_exact(10)[..2], [5, 0], "second BIND reply");
    let mut both_ways = |from_remote: &[u8], from_client: &[u8]| {
        remote.write_all(from_remote).unwrap();
        assert_eq!(c.read_exact(from_remote.len()), from_remote);
        c.send(from_client);
        let mut got = vec![0u8; from_client.len()];
        remote.read_exact(&mut got).unwrap();
        assert_eq!(got, from_client);
    };
    both_ways(b"4444", b"88888888");
    // As the bindreply summary: the remote host's leg first (`W -> client -> R` are the
    // bytes to and from it), then the SOCKS client's.
    let first = ": interim: 8 -> client -> 4, 4 -> target -> 8.";
    wait_file(&p.log, "an interim record", |t| t.contains(first));
    both_ways(b"0123456789", b"01234567890123456789");
    let second = ": interim: 28 -> client -> 14, 14 -> target -> 28.";
    let text = wait_file(&p.log, "three interim records", |t| {
        t.matches(second).count() >= 2
    });
    assert!(!text.contains("tcp/bindreply ]:"), "closed early:\n{text}");
    let line = text.lines().find(|l| l.contains(first)).unwrap();
    let remote_ep = ep(remote.local_addr().unwrap());
    assert!(
        line.contains(&format!("pass(1): tcp/bindreply -: {remote_ep} ")),
        "{line}"
    );
    // The log cut here: one open session, seen from the client (4 + 10 bytes to it).
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.log");
    std::fs::write(&cut, &text).unwrap();
    let v = stats_row(&[&cut]);
    assert_eq!(
        (v["sessions"].as_u64(), v["open_sessions"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(bytes_of(&v), [28, 14, 14, 28], "{v}");
    // The end: the last interim record has the summary's sides and counts.
    c.0.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest_bytes = Vec::new();
    remote.read_to_end(&mut rest_bytes).unwrap();
    drop(remote);
    assert!(c.read_to_close().is_empty());
    let whole = wait_file(&p.log, "the accept summary", |t| {
        t.contains("tcp/accept ]:")
    });
    assert_eq!(
        interim_summaries(&p, "tcp/bindreply").last(),
        summaries_of(&p, "tcp/bindreply").first(),
        "{whole}"
    );
    let json = interim_json_records(&p, "bindreply");
    let rest = dir.path().join("rest.log");
    std::fs::write(&rest, &whole[text.len()..]).unwrap();
    counted_once(
        &[vec![p.log.as_path()], vec![&json], vec![&cut, &rest]],
        [28, 14, 14, 28],
    );
}

/// A log deleted (or rotated away) while `log stats` reads it is read to its end: the
/// reader keeps the descriptor it opened. A FIFO stands for a file still being read.
#[test]
fn a_file_deleted_while_it_is_read_is_read_to_its_end() {
    use std::io::Write;
    let good = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../traffic-log/tests/golden/dante-1.4.2-connect-ioop.log");
    let text = std::fs::read_to_string(good).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("sockd.log");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a path we own, with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let path = fifo.clone();
    let reader = std::thread::spawn(move || {
        run_within(
            Command::new(BIN)
                .args(["log", "stats", "--format", "json"])
                .arg(&path),
            Duration::from_secs(30),
        )
    });
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let (first, rest) = text.split_at(text.len() / 2);
    w.write_all(first.as_bytes()).unwrap();
    w.flush().unwrap();
    std::fs::remove_file(&fifo).unwrap();
    w.write_all(rest.as_bytes()).unwrap();
    drop(w);
    let (code, out, err) = reader.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\"sessions\":3,") && out.contains("\"bytes_to_client\":135510,"),
        "{out}"
    );
    assert!(!err.contains("malformed"), "{err}");
}

/// `--by user` on a log of real RFC 1929 logins (an htpasswd file): each user's sessions
/// and bytes, as curl moved them; the refused login is a blocked request.
#[test]
fn per_user_report_of_real_logins() {
    require("curl");
    require("htpasswd");
    let http = Helper::http();
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    for (i, (u, pw)) in [("alice", "a-pw"), ("bob", "b-pw")].iter().enumerate() {
        let mut cmd = Command::new("htpasswd");
        cmd.arg("-B").arg("-b");
        if i == 0 {
            cmd.arg("-c");
        }
        let (code, _, err) = run(cmd.arg(&users).args([u, pw]));
        assert_eq!(code, 0, "htpasswd: {err}");
    }
    let conf = format!(
        "logoutput: @LOG@\ninternal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: username\npasswordfile: {}\n\
         client pass {{ from: 127.0.0.0/8 to: 0/0\nlog: connect disconnect error\n}}\n\
         socks pass {{ from: 127.0.0.0/8 to: 0/0\nlog: connect disconnect error\n}}\n",
        users.display()
    );
    let proxy = Proxy::start(&conf);
    let p = proxy.addr.to_string();
    let url = format!("http://127.0.0.1:{}/", http.addr.port());
    for (cred, n) in [("alice:a-pw", 2), ("bob:b-pw", 1)] {
        for _ in 0..n {
            let (code, out, err) = curl(&["--socks5", &p, "--proxy-user", cred, &url]);
            assert_eq!((code, out.as_str()), (0, HTTP_BODY), "{err}");
        }
    }
    let (code, _, _) = curl(&["--socks5", &p, "--proxy-user", "alice:wrong", &url]);
    assert_ne!(code, 0);
    proxy.wait_for("three sessions and the refusal", |_| {
        let t = std::fs::read_to_string(&proxy.log).unwrap_or_default();
        t.matches("tcp/accept ]: ").count() >= 4 && t.contains("password mismatch")
    });
    let (code, out, err) = log_cmd(&["stats", "--by", "user", "--format", "csv"], &[&proxy.log]);
    assert_eq!(code, 0, "{err}");
    let resp = http_response().len();
    let rows: Vec<Vec<String>> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    let row = |user: &str| {
        rows.iter()
            .find(|r| r[0] == user)
            .unwrap_or_else(|| panic!("no row for {user}: {out}"))
            .clone()
    };
    let (alice, bob) = (row("alice"), row("bob"));
    assert_eq!(alice[1], "2", "{out}");
    assert_eq!(bob[1], "1", "{out}");
    assert_eq!(alice[5], (2 * resp).to_string(), "bytes to alice: {out}");
    assert_eq!(bob[5], resp.to_string(), "bytes to bob: {out}");
    // The failed login: a block of the client connection, not a session.
    let blocked: u64 = rows.iter().map(|r| r[3].parse::<u64>().unwrap()).sum();
    assert_eq!(
        blocked,
        1,
        "{out}\n{}",
        std::fs::read_to_string(&proxy.log).unwrap()
    );
    let (code, out, _) = log_cmd(
        &["grep", "--user", "bob", "--phase", "summary"],
        &[&proxy.log],
    );
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "{out}");
}

/// Several files on a terminal (a pseudo-terminal from script(1)): a progress bar on
/// standard error, cleared at the end; not with --no-progress, nor off a terminal.
#[test]
fn a_progress_bar_for_several_files_on_a_terminal_only() {
    require("script");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../traffic-log/tests/golden");
    let a = golden.join("dante-1.4.2-connect-ioop.log");
    let b = golden.join("dante-1.4.2-connect-variants.log");
    let on_tty = |extra: &str| {
        let cmd = format!(
            "{BIN} log stats --format csv {extra} {} {}",
            a.display(),
            b.display()
        );
        let (code, out, err) = run(Command::new("script").args(["-qec", &cmd, "/dev/null"]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("8,0,3,469,136298,136298,469,true,"), "{out}");
        out
    };
    let with_bar = on_tty("");
    assert!(
        with_bar.contains("connect-ioop.log") && with_bar.contains("KiB"),
        "{with_bar:?}"
    );
    assert!(
        with_bar.contains("\u{1b}[2K"),
        "the bar is cleared: {with_bar:?}"
    );
    let without = on_tty("--no-progress");
    assert!(!without.contains('\u{1b}'), "{without:?}");
    let (_, _, err) = log_cmd(&["stats"], &[&a, &b]);
    assert!(!err.contains('\u{1b}'), "not a terminal: {err:?}");
}

/// A real BIND (as in commands.rs): one session, seen from the SOCKS client, with the
/// bytes each way.
#[test]
fn a_bind_is_one_session_with_the_clients_bytes() {
    use std::io::{Read, Write};
    let p = Proxy::start(&crate::commands::all_commands("connect disconnect"));
    let (mut c, bound) = crate::commands::bind_request(p.addr, "127.0.0.1:0".parse().unwrap());
    let mut remote = std::net::TcpStream::connect(bound).unwrap();
    remote
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(&c.read_exact(10)[..2], [5, 0], "second BIND reply");
    remote.write_all(b"4444").unwrap();
    assert_eq!(c.read_exact(4), b"4444");
    c.send(b"88888888");
    let mut got = [0u8; 8];
    remote.read_exact(&mut got).unwrap();
    c.0.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    remote.read_to_end(&mut rest).unwrap();
    drop(remote);
    assert!(c.read_to_close().is_empty());
    p.wait_for("the accept summary", |m| m.contains("tcp/accept ]:"));
    let (code, out, err) = log_cmd(&["stats", "--by", "target", "--format", "json"], &[&p.log]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out}: {e}"));
    assert_eq!(v["target"], "127.0.0.1");
    assert_eq!(v["sessions"], 1, "{out}");
    assert_eq!(
        (
            v["bytes_to_client"].as_u64(),
            v["bytes_from_client"].as_u64()
        ),
        (Some(4), Some(8)),
        "{out}"
    );
    assert_eq!(
        (
            v["bytes_to_target"].as_u64(),
            v["bytes_from_target"].as_u64()
        ),
        (Some(8), Some(4)),
        "{out}"
    );
}

/// A real UDP association: the `udpassociate` summary and the accept summary of its
/// control connection are one session, with the datagram bytes.
#[test]
fn a_udp_association_is_one_session_with_its_datagram_bytes() {
    use crate::commands::{header, UdpEcho};
    let echo = UdpEcho::start("127.0.0.1:0");
    let p = Proxy::start(&crate::commands::all_commands("connect disconnect"));
    let me = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    me.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (ctl, reply) = associate(p.addr, me.local_addr().unwrap());
    let relay = relay_of(&reply);
    let mut buf = [0u8; 256];
    for payload in [&b"one"[..], b"three"] {
        me.send_to(&[header(echo.addr, 0), payload.to_vec()].concat(), relay)
            .unwrap();
        let (n, _) = me.recv_from(&mut buf).unwrap();
        assert_eq!(n, 10 + payload.len());
    }
    drop(ctl);
    p.wait_for("the accept summary", |m| m.contains("tcp/accept ]:"));
    let (code, out, err) = log_cmd(&["stats", "--format", "json"], &[&p.log]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out}: {e}"));
    assert_eq!(
        v["sessions"],
        1,
        "{out}\n{}",
        std::fs::read_to_string(&p.log).unwrap()
    );
    // What the datagrams carried to and from the target: 3 + 5 bytes each way.
    assert_eq!(
        (
            v["bytes_to_target"].as_u64(),
            v["bytes_from_target"].as_u64()
        ),
        (Some(8), Some(8)),
        "{out}"
    );
}
