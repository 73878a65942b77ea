//! The status file through the real binary: every version, parsed back by its HEADER
//! names as OpenVPN's tools read it, with a session held open; a reader that never sees
//! a partial file while sessions churn; a vanishing directory reported once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::*;

fn status_conf(version: u8, file: &str) -> String {
    conf("connect disconnect").replace(
        "socksmethod: none",
        &format!(
            "socksmethod: none\nstatus.file: {file}\nstatus.interval: 1\nstatus.version: {version}"
        ),
    )
}

/// Waits until the status file satisfies `pred`; returns its text.
fn wait_status(path: &std::path::Path, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if pred(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no status file with {what}:\n{text}"
        );
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The rows of a v2/v3 section, as maps from the HEADER's column names.
fn rows(text: &str, sep: char, section: &str) -> Vec<HashMap<String, String>> {
    let mut names: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(sep).collect();
        if fields[0] == "HEADER" && fields.get(1) == Some(&section) {
            names = fields[2..].iter().map(|s| (*s).to_owned()).collect();
        } else if fields[0] == section {
            assert_eq!(fields.len() - 1, names.len(), "{line:?}");
            out.push(
                names
                    .iter()
                    .cloned()
                    .zip(fields[1..].iter().map(|s| (*s).to_owned()))
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn every_version_shows_a_held_session_with_its_exact_bytes() {
    for version in [1u8, 2, 3] {
        let echo = Helper::echo();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("status");
        let p = Proxy::start(&status_conf(version, file.to_str().unwrap()));
        let (mut c, reply) = Raw::connect_v4(p.addr, echo.addr);
        assert_eq!(reply[1], 0);
        c.send(b"hello, status");
        assert_eq!(c.read_exact(13), b"hello, status");
        let client = c.0.local_addr().unwrap();
        let real = client.to_string();
        // A rewrite may come between the CONNECT and the echo: wait for the one after it
        // (the session with its 13 bytes each way; v2/v3 put the columns in that order
        // after the Virtual IPv6 Address).
        let sep = if version == 3 { '\t' } else { ',' };
        let moved = format!("{sep}13{sep}13{sep}");
        let text = wait_status(&file, "the session after its echo", |t| {
            t.contains(&real) && t.contains(&moved) && t.ends_with("END\n")
        });
        match version {
            1 => {
                let lines: Vec<&str> = text.lines().collect();
                assert_eq!(lines[0], "OpenVPN CLIENT LIST");
                assert!(lines[1].starts_with("Updated,"), "{text}");
                assert_eq!(
                    lines[2],
                    "Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since"
                );
                let row = lines.iter().find(|l| l.contains(&real)).unwrap();
                assert!(row.starts_with(&format!("UNDEF,{real},13,13,")), "{row}");
                assert!(text.contains(
                    "ROUTING TABLE\nVirtual Address,Common Name,Real Address,Last Ref\n"
                ));
                assert!(text.contains(&format!("127.0.0.1,UNDEF,{real},")), "{text}");
                assert!(
                    text.ends_with("GLOBAL STATS\nMax bcast/mcast queue length,0\nEND\n"),
                    "{text}"
                );
            }
            _ => {
                let sep = if version == 2 { ',' } else { '\t' };
                assert!(
                    text.starts_with(&format!("TITLE{sep}OpenVPN 2.6.14")),
                    "{text}"
                );
                let clients = rows(&text, sep, "CLIENT_LIST");
                assert_eq!(clients.len(), 1, "{text}");
                let r = &clients[0];
                assert_eq!(r["Common Name"], "UNDEF");
                assert_eq!(r["Real Address"], real);
                assert_eq!(r["Virtual Address"], "127.0.0.1");
                assert_eq!(r["Bytes Received"], "13");
                assert_eq!(r["Bytes Sent"], "13");
                assert_eq!(r["Username"], "UNDEF");
                assert_eq!(r["Client ID"], "0");
                assert_eq!(r["Peer ID"], "1");
                assert_eq!(r["Data Channel Cipher"], "connect");
                assert_eq!(r["Target"], echo.addr.to_string());
                let routes = rows(&text, sep, "ROUTING_TABLE");
                assert_eq!(routes[0]["Real Address"], real);
                assert!(
                    text.contains(&format!("GLOBAL_STATS{sep}sessions{sep}1")),
                    "{text}"
                );
            }
        }
        // Written at a clean exit too: the session is gone, END is there.
        drop(c);
        p.wait_for("the summary", |m| m.starts_with("pass(1): tcp/connect ]: "));
        p.signal(libc::SIGTERM);
        let mut p = p;
        assert!(p.wait_exit(Duration::from_secs(15)).success());
        let last = std::fs::read_to_string(&file).unwrap();
        assert!(!last.contains(&real) && last.ends_with("END\n"), "{last}");
    }
}

#[test]
fn a_reader_never_sees_a_partial_file_while_sessions_churn() {
    let echo = Helper::echo();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("status");
    let p = Proxy::start(&status_conf(2, file.to_str().unwrap()));
    wait_status(&file, "a first file", |t| t.ends_with("END\n"));
    let (addr, target, pid) = (p.addr, echo.addr, p.pid());
    let churn = std::thread::spawn(move || {
        for i in 0..200 {
            let (mut c, reply) = Raw::connect_v4(addr, target);
            assert_eq!(reply[1], 0);
            c.send(b"x");
            assert_eq!(c.read_exact(1), b"x");
            if i % 4 == 0 {
                // SAFETY: kill(2) on the proxy this test started: rewrite now.
                unsafe { libc::kill(pid, libc::SIGUSR2) };
            }
        }
    });
    let mut reads = 0;
    let mut contents = std::collections::HashSet::new();
    // Read while the sessions churn, and on until a rewrite has been seen (a reader that
    // spins can starve the proxy of the CPU on a busy machine: it yields between reads,
    // and gives up only after 30 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !churn.is_finished() || reads < 300 || (contents.len() < 2 && Instant::now() < deadline) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("TITLE,") && text.ends_with("\nEND\n"),
            "{text:?}"
        );
        contents.insert(text);
        reads += 1;
        std::thread::yield_now();
    }
    churn.join().unwrap();
    assert!(
        contents.len() > 1,
        "the file was never rewritten in {reads} reads"
    );
}

#[test]
fn a_vanished_directory_is_reported_once_and_its_return_once() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("run");
    std::fs::create_dir(&sub).unwrap();
    let file = sub.join("status");
    let p = Proxy::start(&status_conf(1, file.to_str().unwrap()));
    wait_status(&file, "a first file", |t| t.ends_with("END\n"));
    std::fs::remove_dir_all(&sub).unwrap();
    p.wait_for("the failure", |m| m.starts_with("cannot write status file"));
    // Three more intervals fail without another report.
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(Duration::from_millis(3200));
    std::fs::create_dir(&sub).unwrap();
    let m = p.wait_for("the recovery", |m| m.contains("written again"));
    assert_eq!(
        m.iter()
            .filter(|l| l.starts_with("cannot write status file"))
            .count(),
        1,
        "{m:?}"
    );
    assert_eq!(m.iter().filter(|l| l.contains("written again")).count(), 1);
    wait_status(&file, "the file again", |t| t.ends_with("END\n"));
}
