//! The logging subsystem through the real binary: subsystem routing, JSON, verb and
//! mute on reload, error-class warnings, tcpinfo, the SIGUSR1 dump, real rsyslog, a
//! full disk and a stalled FIFO.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn wait_file(p: &Path, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let t = read(p);
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

fn echo_session(p: &dyn Server, echo: &Helper, payload: &[u8]) {
    let (mut c, reply) = Raw::connect_v4(p.addr(), echo.addr);
    assert_eq!(reply[1], 0);
    c.send(payload);
    assert_eq!(c.read_exact(payload.len()), payload);
}

#[test]
fn subsystems_route_to_their_own_files_and_levels() {
    let echo = Helper::echo();
    let p = Proxy::start(&format!(
        "log.traffic.file: @DIR@/traffic.log\nlog.client.level: warning\n{}",
        conf("connect disconnect ioop")
    ));
    echo_session(&p, &echo, b"abc");
    let traffic = p.dir.path().join("traffic.log");
    let t = wait_file(&traffic, "the summary", |t| t.contains("tcp/accept ]:"));
    // TRAFFIC: I/O lines and summaries only.
    assert!(
        t.lines().all(|l| l.contains(" -: ") || l.contains(" ]: ")),
        "{t}"
    );
    assert!(t.contains("tcp/connect -: ") && t.contains("(3)"), "{t}");
    // CLIENT raised to warning: no accept start line anywhere; REQUEST's start line stays.
    let m = p.wait_for("the summary", |m| m.contains("tcp/accept ]:"));
    assert!(!m.iter().any(|l| l.contains("tcp/accept [:")), "{m:?}");
    assert!(m.iter().any(|l| l.contains("tcp/connect [:")), "{m:?}");
}

#[test]
fn json_lines_rebuild_every_text_line() {
    let echo = Helper::echo();
    let p = Proxy::start(
        &conf("connect disconnect ioop data")
            .replace("logoutput: @LOG@", "logoutput: @LOG@ json:@DIR@/log.json"),
    );
    echo_session(&p, &echo, b"json me");
    p.wait_for("the summary", |m| m.contains("tcp/accept ]:"));
    let json = wait_file(&p.dir.path().join("log.json"), "the summary", |t| {
        t.contains("tcp/accept ]:")
    });
    let text = p.messages();
    let mut traffic = 0;
    for line in json.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        for k in ["ts", "level", "subsystem", "pid", "msg"] {
            assert!(v.get(k).is_some(), "{k} missing: {line}");
        }
        assert_eq!(v["pid"], p.child.id());
        let msg = v["msg"].as_str().unwrap();
        assert!(text.iter().any(|t| t == msg), "{msg} not in the text log");
        if v.get("verdict").is_some() {
            traffic += 1;
            assert_eq!(traffic_log::Record::from_json(&v).unwrap().to_string(), msg);
        }
    }
    assert!(traffic >= 6, "{json}");
}

/// A CONNECT by name: every line shows the address, as Dante's; the JSON record keeps
/// the name beside it and still rebuilds the line.
#[test]
fn json_keeps_the_name_a_connect_asked_for() {
    let http = Helper::http();
    let p = Proxy::start(
        &conf("connect disconnect ioop")
            .replace("logoutput: @LOG@", "logoutput: @LOG@ json:@DIR@/log.json"),
    );
    let port = http.addr.port();
    let (code, out, err) = curl(&[
        "--socks5-hostname",
        &p.addr.to_string(),
        &format!("http://localhost:{port}/"),
    ]);
    assert_eq!((code, out.as_str()), (0, HTTP_BODY), "{err}");
    let json = wait_file(&p.dir.path().join("log.json"), "the summary", |t| {
        t.contains("tcp/accept ]:")
    });
    let mut connects = 0;
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["command"] != "connect" {
            continue;
        }
        connects += 1;
        let msg = v["msg"].as_str().unwrap();
        assert!(!msg.contains("localhost"), "{msg}");
        let target = match v["phase"].as_str().unwrap() {
            "summary" => v["target"]["endpoints"][1].clone(),
            "io" if msg.contains(&format!("-: 127.0.0.1.{port} ")) => v["src"][0].clone(),
            _ => v["dst"][1].clone(),
        };
        assert_eq!(
            target,
            serde_json::json!({"address": "127.0.0.1", "port": port, "target_name": "localhost"}),
            "{line}"
        );
        assert_eq!(traffic_log::Record::from_json(&v).unwrap().to_string(), msg);
    }
    assert!(connects >= 5, "{json}");
}

#[test]
fn verb_and_mute_change_on_reload() {
    // The client rule logs no start lines, so the refusals below come one after another.
    let conf3 = conf("connect disconnect")
        .replace("socksmethod: none", "socksmethod: none\nverb: 3\nmute: 2")
        .replace(
            "    log: connect disconnect error\n}\nsocks",
            "    log: error\n}\nsocks",
        );
    let p = Proxy::start(&conf3);
    let echo = Helper::echo();
    echo_session(&p, &echo, b"x");
    let m = p.wait_for("the summary", |m| m.contains("tcp/connect ]:"));
    assert!(
        !m.iter().any(|l| l.contains("[:")),
        "verb 3 shows no INFO start lines: {m:?}"
    );
    std::fs::write(
        &p.conf,
        conf3
            .replace("verb: 3", "verb: 4")
            .replace("@LOG@", &p.log.display().to_string()),
    )
    .unwrap();
    p.signal(libc::SIGHUP);
    p.wait_for("the reload", |m| m == "Configuration reloaded");
    // Refusals are INFO: shown at verb 4. Five of them: two logged, the rest counted
    // when something else comes.
    for _ in 0..5 {
        // SOCKS4's "request rejected" (91), 8 bytes, then the close.
        let reply = Raw::connect(p.addr)
            .send(&[4, 9, 0, 80, 127, 0, 0, 1, 0])
            .read_to_close();
        assert_eq!((reply.len(), reply.get(1)), (8, Some(&91)), "{reply:?}");
    }
    echo_session(&p, &echo, b"y");
    let m = p.wait_for("a start line at verb 4", |m| m.contains("tcp/connect [:"));
    assert_eq!(
        m.iter()
            .filter(|l| l.contains("unrecognized v4 command: 9"))
            .count(),
        2,
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|l| l == "3 variation(s) on previous 2 message(s) suppressed by mute"),
        "{m:?}"
    );
}

#[test]
fn error_class_warnings_like_dante() {
    let refused = closed_port();
    let warned = conf("connect disconnect error")
        .replace("logoutput: @LOG@", "logoutput: @LOG@\nerrorlog: @DIR@/errors.log\nexternal.log.warning.error: no-route dns-any ECONNREFUSED EAI_AGAIN");
    let p = Proxy::start(&warned);
    let (_, reply) = Raw::connect_v4(p.addr, format!("127.0.0.1:{refused}").parse().unwrap());
    assert_eq!(reply[1], 0x05);
    let mut c = Raw::connect(p.addr);
    c.send(&[5, 1, 0]);
    c.read_exact(2);
    c.send(b"\x05\x01\x00\x03\x13nonexistent.invalid\x00\x50");
    assert_eq!(c.read_exact(2)[1], 0x04);
    let errors = wait_file(&p.dir.path().join("errors.log"), "both warnings", |t| {
        t.contains("DNS-resolve")
    });
    assert!(
        errors.contains(&format!(
            "warning: connect to host 127.0.0.1.{refused} failed: Connection refused"
        )),
        "{errors}"
    );
    assert!(
        errors.contains("warning: could not DNS-resolve \"nonexistent.invalid\": "),
        "{errors}"
    );
    let all = read(&p.log);
    assert!(
        all.contains("warning: connect to host"),
        "also in logoutput: {all}"
    );
    // Without the keyword the same failure is a debug line only.
    let q = Proxy::start(&conf("connect disconnect error"));
    let (_, reply) = Raw::connect_v4(q.addr, format!("127.0.0.1:{refused}").parse().unwrap());
    assert_eq!(reply[1], 0x05);
    q.wait_for("the failure", |m| m.contains("Connection refused"));
    assert!(
        !read(&q.log).contains("connect to host"),
        "{}",
        read(&q.log)
    );
}

/// tcpinfo.golden's session (`log: disconnect tcpinfo`, an echo): its records, each
/// TCP_INFO block as its shape (values `N`).
pub fn tcpinfo_session(imp: Impl) -> String {
    let echo = Helper::echo();
    let p = imp.start(&conf("disconnect tcpinfo"));
    echo_session(&*p, &echo, b"tcpinfo");
    let m = p.wait_for("the summary", |m| m.contains("tcp/accept ]:"));
    let mut lines = Vec::new();
    for msg in m
        .iter()
        .filter(|l| l.starts_with("pass(") || l.starts_with("block("))
    {
        let mut parts = msg.splitn(2, "\nTCP_INFO:\n");
        let record = parts.next().unwrap_or_default();
        lines.push(record.to_owned());
        if let Some(block) = parts.next() {
            lines.push("TCP_INFO:".into());
            for l in block.lines() {
                lines.push(match l.split_once(" : ") {
                    Some((name, _)) => format!("{name} : N <-> N"),
                    None => l.to_owned(),
                });
            }
        }
    }
    normalize(
        &lines,
        &[(p.addr().port(), "PROXY"), (echo.addr.port(), "ECHO")],
    )
}

#[test]
fn tcpinfo_block_follows_the_summary() {
    let echo = Helper::echo();
    let p = Proxy::start(&conf("disconnect tcpinfo"));
    echo_session(&p, &echo, b"tcpinfo");
    p.wait_for("the summary", |m| m.contains("tcp/accept ]:"));
    let text = read(&p.log);
    let start = text.find("TCP_INFO:").expect("no TCP_INFO block");
    let block: Vec<&str> = text[start..]
        .lines()
        .take_while(|l| !l.contains("tcp/accept"))
        .collect();
    // Values vary; the shape is Dante's.
    let shape: String = block
        .iter()
        .map(|l| match l.split_once(" : ") {
            Some((name, v)) => format!(
                "{name} : {}\n",
                v.split(" <-> ")
                    .map(|x| if x.starts_with(|c: char| c.is_ascii_digit()) {
                        "N"
                    } else {
                        x
                    })
                    .collect::<Vec<_>>()
                    .join(" <-> ")
            ),
            None => format!("{l}\n"),
        })
        .collect();
    assert_golden("tcpinfo.golden", &shape);
    assert!(
        block[1].starts_with("tcpi_state           : ") && block[1].contains('('),
        "{}",
        block[1]
    );
}

/// dump.golden's configuration (`connect disconnect`, UDP allowed).
fn dump_conf() -> String {
    let base = conf("connect disconnect");
    let at = base.rfind("    log: ").unwrap();
    format!(
        "{}    command: connect udpassociate udpreply\n{}",
        &base[..at],
        &base[at..]
    )
}

/// dump.golden's sessions, left open: a TCP session that moved 5 bytes each way and a
/// UDP association with two datagrams each way. Returns the client streams.
fn dump_sessions(p: &dyn Server, echo: &Helper) -> (Raw, Raw) {
    let (mut c, reply) = Raw::connect_v4(p.addr(), echo.addr);
    assert_eq!(reply[1], 0);
    c.send(b"hello");
    assert_eq!(c.read_exact(5), b"hello");
    let udp_echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uaddr = udp_echo.local_addr().unwrap();
    let responder = udp_echo.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 256];
        for _ in 0..2 {
            if let Ok((n, from)) = responder.recv_from(&mut b) {
                let _ = responder.send_to(&b[..n], from);
            }
        }
    });
    let me = UdpSocket::bind("127.0.0.1:0").unwrap();
    me.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut ctl = Raw::connect(p.addr());
    ctl.send(&[5, 1, 0]);
    ctl.read_exact(2);
    let SocketAddr::V4(m4) = me.local_addr().unwrap() else {
        panic!()
    };
    let mut req = vec![5, 3, 0, 1];
    req.extend_from_slice(&m4.ip().octets());
    req.extend_from_slice(&m4.port().to_be_bytes());
    ctl.send(&req);
    let r = ctl.read_exact(10);
    let relay = SocketAddr::from(([r[4], r[5], r[6], r[7]], u16::from_be_bytes([r[8], r[9]])));
    let SocketAddr::V4(u4) = uaddr else { panic!() };
    let mut dgram = vec![0, 0, 0, 1];
    dgram.extend_from_slice(&u4.ip().octets());
    dgram.extend_from_slice(&u4.port().to_be_bytes());
    dgram.extend_from_slice(b"ping");
    for _ in 0..2 {
        me.send_to(&dgram, relay).unwrap();
        let mut b = [0u8; 64];
        me.recv_from(&mut b).unwrap();
    }
    (c, ctl)
}

/// The shape of a dump line: digits as `9`, a run of them as one.
fn dump_shape(l: &str) -> String {
    collapse_nines(
        &l.chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect::<String>(),
    )
}

/// dump.golden's scenario: the SIGUSR1 dump's lines (no records), as shapes.
pub fn dump_scenario(imp: Impl) -> String {
    let echo = Helper::echo();
    let p = imp.start(&dump_conf());
    let (c, ctl) = dump_sessions(&*p, &echo);
    p.signal(libc::SIGUSR1);
    p.wait_for("the UDP line of the dump", |m| m.starts_with("udp: "));
    // Dante's processes answer one by one: give the others a moment.
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(Duration::from_millis(500));
    let m = p.messages();
    let from = m
        .iter()
        .position(|l| l.contains(" up ") && l.contains(" days, "))
        .unwrap_or(0);
    let shape: Vec<String> = m[from..]
        .iter()
        .filter(|l| !l.contains("): ") && !l.ends_with(" running"))
        .map(|l| dump_shape(l))
        .collect();
    drop((c, ctl));
    shape.join("\n") + "\n"
}

#[test]
fn sigusr1_dump_lists_sessions_and_udp_latency() {
    let echo = Helper::echo();
    let p = Proxy::start(&dump_conf());
    let (c, ctl) = dump_sessions(&p, &echo);
    p.signal(libc::SIGUSR1);
    let m = p.wait_for("the UDP line of the dump", |m| m.starts_with("udp: "));
    let from = m
        .iter()
        .position(|l| l.starts_with("ferrosocks v") && l.contains(" up "))
        .expect("header");
    let dump: Vec<&String> = m[from..].iter().filter(|l| !l.contains("): ")).collect();
    let head = dump
        .iter()
        .find(|l| l.starts_with("ferrosocks v") && l.contains(" up "))
        .expect("header");
    assert!(
        head.contains(" up 0 days, 0:0") && head.contains(" c: 2"),
        "{head}"
    );
    let tcp = dump
        .iter()
        .find(|l| l.starts_with("tcp: "))
        .expect("tcp line");
    assert!(
        tcp.contains(": age: ")
            && tcp.contains("bytes transferred: 5 (+ ")
            && tcp.contains("<-> 5 (+ "),
        "{tcp}"
    );
    let udp = dump
        .iter()
        .find(|l| l.starts_with("udp: "))
        .expect("udp line");
    assert!(
        udp.ends_with("bytes transferred: 8 <-> 28, packets: 2 <-> 2"),
        "{udp}"
    );
    for l in [tcp, udp] {
        let (age, idle) = age_idle(l);
        assert!(idle <= age, "idle exceeds age: {l}");
    }
    for kind in ["read-only", "i/o"] {
        let l = dump
            .iter()
            .find(|l| {
                l.starts_with(&format!(
                    "{kind} latency statistics based on last 2 packets"
                ))
            })
            .expect("latency");
        let nums: Vec<u64> = l
            .rsplit(": ")
            .next()
            .unwrap()
            .trim_end_matches(" (us)")
            .split('/')
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(nums.len(), 6, "{l}");
        assert!(
            nums[0] <= nums[2] && nums[2] <= nums[1],
            "min <= median <= max: {l}"
        );
    }
    let shape: String = dump.iter().map(|l| dump_shape(l) + "\n").collect();
    assert_golden("dump.golden", &shape);
    drop(c);
    drop(ctl);
}

#[test]
fn sigusr1_dump_idle_never_exceeds_age() {
    let echo = Helper::echo();
    let p = Proxy::start(&conf("connect disconnect"));
    // A session that moves bytes at once and stays open.
    let (mut early, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0);
    early.send(b"early");
    assert_eq!(early.read_exact(5), b"early");
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(Duration::from_secs(2));
    // Accepted long after the start, relaying, not a byte moved yet.
    let (quiet, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0);
    let (quiet_ep, early_ep) = (
        ep(quiet.0.local_addr().unwrap()),
        ep(early.0.local_addr().unwrap()),
    );
    // The success reply goes out just before the relay registers: dump again while the
    // quiet session still shows as a request in progress.
    let deadline = Instant::now() + Duration::from_secs(15);
    let lines = loop {
        let seen = p.messages().len();
        p.signal(libc::SIGUSR1);
        let dump = loop {
            let m = p.messages();
            let new = &m[seen.min(m.len())..];
            if new.iter().any(|l| {
                l.starts_with(&format!("tcp: {quiet_ep} "))
                    || l.starts_with(&format!("{quiet_ep}: "))
            }) {
                break new.to_vec();
            }
            assert!(
                Instant::now() < deadline,
                "no dump line for {quiet_ep}; log:\n{}",
                m.join("\n")
            );
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(20));
        };
        let tcp = |e: &str| {
            dump.iter()
                .find(|l| l.starts_with(&format!("tcp: {e} ")))
                .cloned()
        };
        if let (Some(q), Some(e)) = (tcp(&quiet_ep), tcp(&early_ep)) {
            break (q, e);
        }
    };
    for l in [&lines.0, &lines.1] {
        let (age, idle) = age_idle(l);
        assert!(idle <= age, "idle exceeds age: {l}");
    }
    assert!(
        lines.0.contains("bytes transferred: 0 (+ "),
        "the quiet session moved bytes: {}",
        lines.0
    );
    drop(quiet);
    drop(early);
}

/// The `age: Ns, idle: Ns` of a dump line, in seconds.
fn age_idle(line: &str) -> (u64, u64) {
    let secs = |key: &str| -> u64 {
        let from = line
            .find(key)
            .unwrap_or_else(|| panic!("no {key:?} in {line}"))
            + key.len();
        let digits: String = line[from..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("no seconds after {key:?} in {line}"))
    };
    (secs(": age: "), secs(", idle: "))
}

/// Runs of 9s (numbers) become one 9, so widths do not matter.
fn collapse_nines(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if !(c == '9' && out.ends_with('9')) {
            out.push(c);
        }
    }
    out
}

#[test]
fn rsyslog_receives_records_with_facility_and_severity() {
    const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
    assert!(
        Path::new(RSYSLOGD).exists(),
        "rsyslog is not installed: run ./test.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let rs_conf = format!(
        "global(workDirectory=\"{d}\")\nmodule(load=\"imuxsock\" SysSock.Use=\"off\")\n\
         input(type=\"imuxsock\" Socket=\"{d}/log.sock\" CreatePath=\"on\")\n\
         template(name=\"t\" type=\"string\" string=\"%syslogfacility-text%.%syslogseverity-text% %syslogtag%%msg%\\n\")\n\
         *.* action(type=\"omfile\" file=\"{d}/out.log\" template=\"t\")\n"
    );
    std::fs::write(dir.path().join("rs.conf"), rs_conf).unwrap();
    let mut rs = Command::new(RSYSLOGD)
        .args(["-n", "-f"])
        .arg(dir.path().join("rs.conf"))
        .arg("-i")
        .arg(dir.path().join("rs.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sock = dir.path().join("log.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "rsyslogd made no socket");
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(20));
    }
    let result = std::panic::catch_unwind(|| {
        let echo = Helper::echo();
        let conf = conf("connect disconnect")
            .replace("logoutput: @LOG@", "logoutput: @LOG@ syslog/local3\nlog.auth.facility: auth\nlog.config.facility: default\nlog.default.facility: local5");
        let p = Proxy::launch(
            &conf,
            &[],
            &[("FERROSOCKS_SYSLOG_SOCKET", sock.to_str().unwrap())],
        );
        echo_session(&p, &echo, b"to syslog");
        assert_eq!(
            Raw::connect(p.addr).send(&[5, 1, 2]).read_to_close(),
            [5, 0xff]
        );
        let pid = p.child.id();
        let out = wait_file(
            &dir.path().join("out.log"),
            "the summary and the refusal",
            |t| {
                t.contains("tcp/connect ]:")
                    && t.contains("pass(1): tcp/accept ]:")
                    && t.contains("auth.info")
            },
        );
        assert!(
            out.contains(&format!(
                "local3.info ferrosocks[{pid}]: info: pass(1): tcp/accept [: 127.0.0.1."
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "local3.info ferrosocks[{pid}]: info: pass(1): tcp/connect ]: 9 -> "
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "auth.info ferrosocks[{pid}]: info: block(1): tcp/accept ]: "
            )),
            "AUTH to its own facility: {out}"
        );
        p.signal(libc::SIGHUP);
        // The reload notice itself: other local5.notice lines may come before it.
        let notice = format!("local5.notice ferrosocks[{pid}]: notice: Configuration reloaded");
        wait_file(&dir.path().join("out.log"), "the reload notice", |t| {
            t.contains(&notice)
        });
    });
    let _ = rs.kill();
    let _ = rs.wait();
    result.unwrap();
}

#[test]
fn a_full_disk_is_reported_and_the_proxy_keeps_relaying() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("full"), "64k");
    let mnt = disk.path().to_path_buf();
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![0u8; 40 * 1024]).unwrap();
    let log = mnt.join("ferrosocks.log");
    let p = Proxy::start(&conf("connect disconnect ioop").replace(
        "logoutput: @LOG@",
        &format!("logoutput: @LOG@ {}", log.display()),
    ));
    let echo = Helper::echo();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !p.stderr().contains("No space left on device")
        && !read(&p.log).contains("No space left on device")
    {
        assert!(Instant::now() < deadline, "the disk never filled");
        echo_session(&p, &echo, &[b'x'; 200]);
    }
    // Still relaying while the disk is full.
    for _ in 0..20 {
        echo_session(&p, &echo, b"still relaying");
    }
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        echo_session(&p, &echo, b"after");
        let main = read(&p.log);
        if main.contains("works again after failing") {
            assert!(
                main.contains(&format!(
                    "cannot write to log file {}: No space left on device",
                    log.display()
                )),
                "{main}"
            );
            assert!(
                main.contains("line(s) could not be written to it meanwhile"),
                "{main}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no recovery report:\n{main}");
    }
}

#[test]
fn a_stalled_fifo_sink_never_stops_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // A reader that never reads: the pipe fills and writes to it block.
    let mut reader = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap()
    };
    let p = Proxy::start(&conf("connect disconnect ioop").replace(
        "logoutput: @LOG@",
        &format!("logoutput: @LOG@ {}", fifo.display()),
    ));
    let echo = Helper::echo();
    let start = Instant::now();
    // Enough sessions to overflow the pipe (64 KiB) and the sink's queue (16384 lines).
    let mut sessions = 0;
    while !read(&p.log).contains("is stalled") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no stall report after {sessions} sessions"
        );
        let (mut c, reply) = Raw::connect_v4(p.addr, echo.addr);
        assert_eq!(reply[1], 0);
        for _ in 0..20 {
            c.send(b"0123456789");
            c.read_exact(10);
        }
        sessions += 1;
    }
    // Drain the FIFO: the sink resumes and says how many lines it dropped.
    let drainer = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => std::thread::yield_now(),
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        echo_session(&p, &echo, b"probe");
        if read(&p.log).contains("takes lines again") {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery report");
    }
    let main = read(&p.log);
    assert!(
        main.contains("line(s) were dropped for it while it was stalled"),
        "{main}"
    );
    let _ = TcpStream::connect(p.addr).map(|mut s| s.write_all(b""));
    drop(p);
    let _ = drainer.join();
}
