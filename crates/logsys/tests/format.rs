//! The pure formats byte for byte against golden files (`tests/golden/`);
//! `FERROSOCKS_BLESS=1` rewrites them after a deliberate change.

use std::path::Path;
use std::time::{Duration, SystemTime};

use logsys::format::{framing, multilog, rfc3164, rfc5424, tai64n, ucspi};

fn golden(name: &str, actual: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("FERROSOCKS_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (FERROSOCKS_BLESS=1 writes it)", path.display()));
    assert!(
        expected == actual,
        "{} differs:\n--- expected\n{}\n--- actual\n{}",
        path.display(),
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(actual)
    );
}

fn at(secs: u64, micros: u32) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(secs, micros * 1000)
}

#[test]
fn tai64n_labels() {
    let mut out = Vec::new();
    for (s, us) in [
        (0, 0),
        (1_795_252_944, 802_339),
        (1_795_252_944, 999_999),
        (4_102_444_800, 1),
    ] {
        out.extend_from_slice(format!("{s}.{us:06} ").as_bytes());
        out.extend_from_slice(&tai64n::label(at(s, us)));
        out.push(b'\n');
    }
    golden("tai64n.txt", &out);
}

#[test]
fn rfc5424_messages() {
    let mut out = Vec::new();
    let msgs = [
        rfc5424::Message {
            facility: 16,
            severity: 6,
            time: at(1_795_252_617, 429_114),
            hostname: "proxy1.example.net",
            app_name: "ferrosocks",
            procid: "13506",
            msgid: "TRAFFIC",
            structured: &[],
            msg: b"Nov 21 09:16:57 (1795252617.429114) ferrosocks[13506]: info: pass(1): tcp/accept [: 127.0.0.1.1 127.0.0.1.2\n",
        },
        rfc5424::Message {
            facility: 3,
            severity: 3,
            time: at(0, 0),
            hostname: "",
            app_name: "ferrosocks",
            procid: "1",
            msgid: "SYSTEM",
            structured: &[rfc5424::Element {
                id: "ferrosocks@32473",
                params: &[("dropped", "12"), ("why", "a \"quote\", a \\ and a ]")],
            }],
            msg: b"",
        },
        rfc5424::Message {
            facility: 99,
            severity: 99,
            time: at(1_767_225_599, 999_999),
            hostname: "bad host\tname",
            app_name: "an-app-name-that-is-far-longer-than-forty-eight-characters-allowed",
            procid: "",
            msgid: "MSGID-LONGER-THAN-THIRTY-TWO-CHARACTERS",
            structured: &[rfc5424::Element {
                id: "x=y]z",
                params: &[],
            }],
            msg: "é ünïcode\nand a second line".as_bytes(),
        },
    ];
    for m in &msgs {
        let mut one = Vec::new();
        rfc5424::encode(&mut one, m);
        framing::encode(&mut out, &one);
        out.push(b'\n');
    }
    golden("rfc5424.txt", &out);
}

#[test]
fn rfc3164_lines() {
    let prefix = "Nov  1 09:16:57 (1795252617.429114) ferrosocks[13]: info: ";
    let line = format!("{prefix}pass(1): tcp/accept [: 127.0.0.1.1 127.0.0.1.2\n");
    let mut out = rfc3164::local_datagram(19, 6, line.as_bytes(), prefix.len());
    out.push(b'\n');
    out.extend(rfc3164::local_datagram(3, 4, b"no prefix at all\n", 60));
    out.push(b'\n');
    rfc3164::encode(
        &mut out,
        &rfc3164::Message {
            facility: 16,
            severity: 5,
            local: [2, 5, 7, 3, 9],
            hostname: Some("proxy1.example.net"),
            tag: "ferro-socks",
            pid: 42,
            msg: b"hello\n",
        },
    );
    out.push(b'\n');
    golden("rfc3164.txt", &out);
}

/// The file sizes multilog's rule gives for a run of lines of growing length.
#[test]
fn multilog_rotation_sizes() {
    let plan = multilog::Plan::new(4096, 3);
    let mut bytes = 0u64;
    let mut out = String::new();
    for i in 0..400usize {
        let mut len = 20 + (i * 37) % 300;
        if i == 200 {
            len = 9000;
        }
        while len > 0 {
            match plan.step(bytes, len) {
                multilog::Step::Rotate => {
                    out.push_str(&format!("rotate at {bytes}\n"));
                    bytes = 0;
                }
                multilog::Step::Write(n) => {
                    bytes += n as u64;
                    len -= n;
                }
            }
        }
        if plan.full(bytes) {
            out.push_str(&format!("full at {bytes}\n"));
            bytes = 0;
        }
    }
    golden("multilog-sizes.txt", out.as_bytes());
}

#[test]
fn ucspi_conversion() {
    let input =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ucspi-input.txt"))
            .unwrap();
    let mut c = ucspi::Converter::new("192.0.2.7");
    let mut out = Vec::new();
    c.feed(&input, &mut out);
    c.finish(&mut out);
    golden("ucspi-output.txt", &out);
}
