//! `ferrosocks collect` against socklog's own receiver: the same input through
//! `tcpserver … socklog ucspi TCPREMOTEIP` and through the collector gives the same
//! lines; one directory per sender IP plus `all/`, many senders at once, every line
//! exactly once; ferrosocks' own shipments, with an outage told first; a 1 MiB line,
//! binary garbage and 500 senders with bounded memory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A running `ferrosocks collect`, ended by PID on drop.
struct Collect {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Collect {
    fn start(dir: &Path, listen: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["collect", "--listen", listen, "--dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .strip_prefix("ferrosocks collect: listening on ")
            .and_then(|l| l.split(',').next())
            .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
            .parse()
            .unwrap();
        Self {
            child,
            addr,
            dir: dir.to_path_buf(),
        }
    }

    /// Everything a directory holds, rotated files first.
    fn text(&self, name: &str) -> Vec<u8> {
        let d = self.dir.join(name);
        let mut names: Vec<String> = std::fs::read_dir(&d)
            .map(|r| {
                r.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let mut out = Vec::new();
        for n in names
            .iter()
            .filter(|n| n.starts_with('@'))
            .chain(names.iter().filter(|n| *n == "current"))
        {
            out.extend(std::fs::read(d.join(n)).unwrap());
        }
        out
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Collect {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, limit: Duration, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `input` with `tcpclient HOST PORT sh -c 'cat FILE >&7'`.
fn tcpclient(addr: SocketAddr, input: &Path) {
    require("tcpclient");
    let (code, _, err) = run_within(
        Command::new("tcpclient")
            .args(["-HR", &addr.ip().to_string(), &addr.port().to_string()])
            .args(["sh", "-c", &format!("cat '{}' >&7", input.display())]),
        Duration::from_secs(20),
    );
    assert_eq!(code, 0, "{err}");
}

/// Deterministic bytes of every value.
fn garbage(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn the_collector_writes_what_socklog_ucspi_writes_line_for_line() {
    require("tcpserver");
    require("socklog");
    let root = tempfile::tempdir().unwrap();
    let mut input = Vec::new();
    for pri in [
        0, 1, 7, 8, 13, 30, 86, 96, 104, 128, 191, 192, 193, 199, 200, 999,
    ] {
        input.extend(format!("<{pri}>Nov 21 09:00:00 myhost prog[1]: pri {pri}\n").bytes());
    }
    input.extend_from_slice(b"plain line no pri\n\n\n<13\n<13>\n<0013>x\n<x>y\r\nnul\0ended\0\0\n");
    input.extend(std::iter::repeat_n(b'x', 3000));
    input.push(b'\n');
    input.extend(garbage(20_000));
    input.extend_from_slice(b"\nlast line without newline");
    let input_path = root.path().join("input");
    std::fs::write(&input_path, &input).unwrap();

    // socklog's receiver: its lines on stderr.
    let socklog_out = root.path().join("socklog.out");
    let mut server = Command::new("tcpserver")
        .args([
            "-1",
            "-HR",
            "-l0",
            "127.0.0.1",
            "0",
            "socklog",
            "ucspi",
            "TCPREMOTEIP",
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&socklog_out).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap();
    tcpclient(SocketAddr::from(([127, 0, 0, 1], port)), &input_path);
    wait_until("socklog's lines", Duration::from_secs(10), || {
        std::fs::read(&socklog_out).is_ok_and(|t| t.ends_with(b"last line without newline\n"))
    });
    let _ = server.kill();
    let _ = server.wait();
    let theirs = std::fs::read(&socklog_out).unwrap();

    let c = Collect::start(&root.path().join("c"), "127.0.0.1:0", &["--no-stamp"]);
    tcpclient(c.addr, &input_path);
    wait_until("the collector's lines", Duration::from_secs(10), || {
        c.text("all").ends_with(b"last line without newline\n")
    });
    let ours = c.text("all");
    let (t, o) = (
        String::from_utf8_lossy(&theirs),
        String::from_utf8_lossy(&ours),
    );
    for (i, (a, b)) in t.lines().zip(o.lines()).enumerate() {
        assert_eq!(a, b, "line {i}");
    }
    assert!(
        theirs == ours,
        "{} lines against {}",
        t.lines().count(),
        o.lines().count()
    );
    assert_eq!(c.text("127.0.0.1"), ours);
}

#[test]
fn fifty_senders_at_once_each_line_once_in_its_own_directory_and_in_all() {
    let root = tempfile::tempdir().unwrap();
    let c = Collect::start(
        &root.path().join("c"),
        "127.0.0.1:0",
        &["--size", "65536", "--count", "1000"],
    );
    let addr = c.addr;
    let senders: Vec<_> = (2..52u8)
        .map(|host| {
            std::thread::spawn(move || {
                let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    .unwrap();
                s.bind(&SocketAddr::from(([127, 0, 0, host], 0)).into())
                    .unwrap();
                s.connect(&addr.into()).unwrap();
                let mut s: TcpStream = s.into();
                let mut text = String::new();
                for i in 0..300 {
                    text.push_str(&format!(
                        "<30>sender {host} line {i} {}\n",
                        "p".repeat(i % 50)
                    ));
                }
                for chunk in text.as_bytes().chunks(777) {
                    s.write_all(chunk).unwrap();
                }
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    wait_until("every line in all/", Duration::from_secs(20), || {
        String::from_utf8_lossy(&c.text("all")).lines().count() == 50 * 300
    });
    let all = String::from_utf8(c.text("all")).unwrap();
    let mut seen = std::collections::HashSet::new();
    for l in all.lines() {
        let (stamp, rest) = l.split_at(26);
        assert!(stamp.starts_with('@') && stamp.ends_with(' '), "{l}");
        assert!(seen.insert(rest.to_owned()), "twice: {l}");
    }
    for host in 2..52u8 {
        let ip = format!("127.0.0.{host}");
        let own = String::from_utf8(c.text(&ip)).unwrap();
        let expected: Vec<String> = (0..300)
            .map(|i| {
                format!(
                    "{ip}: daemon.info: sender {host} line {i} {}",
                    "p".repeat(i % 50)
                )
            })
            .collect();
        let got: Vec<&str> = own.lines().map(|l| &l[26..]).collect();
        assert_eq!(got, expected, "{ip}");
        assert!(expected.iter().all(|e| seen.contains(e)));
    }
}

#[test]
fn ferrosocks_ships_to_ferrosocks_collect_and_an_outage_is_told_first() {
    let root = tempfile::tempdir().unwrap();
    let logdir = root.path().join("log");
    let port = closed_port();
    let echo = Helper::echo();
    let p = Proxy::start(&format!(
        "logdir: {}\nlogdir.size: 4096\nlogdir.count: 100000\nlogdir.ship: 127.0.0.1 port = {port}\nlogdir.ship.timeout: 2\n{}",
        logdir.display(),
        conf("connect disconnect ioop")
    ));
    let session = |i: usize| {
        let (mut s, reply) = Raw::connect_v4(p.addr, echo.addr);
        assert_eq!(reply[1], 0);
        s.send(format!("s{i}").as_bytes());
        s.read_exact(format!("s{i}").len());
    };
    let rotated = || {
        std::fs::read_dir(&logdir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_str()
                    .unwrap()
                    .starts_with('@')
            })
            .count()
    };
    let mut i = 0;
    while rotated() < 2 {
        session(i);
        i += 1;
    }
    wait_until("the failure", Duration::from_secs(10), || {
        std::fs::read_to_string(logdir.join("state")).is_ok_and(|s| s.contains("failed at"))
    });
    // The collector comes up; the next rotation ships everything kept.
    let c = Collect::start(&root.path().join("c"), &format!("127.0.0.1:{port}"), &[]);
    let before = rotated();
    while rotated() < before + 1 {
        session(i);
        i += 1;
    }
    let shipped_all = || {
        let state = std::fs::read_to_string(logdir.join("state")).unwrap_or_default();
        let mut names: Vec<String> = std::fs::read_dir(&logdir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('@'))
            .collect();
        names.sort();
        state == format!("ferrosocks: shipped through {}\n", names.last().unwrap())
    };
    // Shipped through the last file, and no further rotation for a moment (the last
    // sessions' lines may still be on their way).
    let listing = || {
        let mut v: Vec<String> = std::fs::read_dir(&logdir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('@'))
            .collect();
        v.sort();
        v
    };
    wait_until("every file shipped", Duration::from_secs(20), || {
        let before = listing();
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(200));
        shipped_all() && listing() == before
    });
    let got = String::from_utf8(c.text("127.0.0.1")).unwrap();
    let got: Vec<&str> = got.lines().map(|l| &l[26..]).collect();
    assert!(
        got[0].starts_with("127.0.0.1: ferrosocks: shipment of @") && got[0].contains("failed at"),
        "{:?}",
        &got[..3]
    );
    let mut names: Vec<PathBuf> = std::fs::read_dir(&logdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with('@'))
        .collect();
    names.sort();
    let sent: Vec<String> = names
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| format!("127.0.0.1: {l}"))
                .collect::<Vec<_>>()
        })
        .collect();
    let failures = got
        .iter()
        .take_while(|l| l.contains("ferrosocks: shipment of @"))
        .count();
    assert!(
        got[failures..] == sent[..],
        "every line once, in order: {} received after {failures} failure line(s), {} in the files {:?}; received starts {:?}, files start {:?}",
        got.len() - failures,
        sent.len(),
        listing(),
        &got[failures..(failures + 2).min(got.len())],
        &sent[..2.min(sent.len())]
    );
    drop(p);
}

#[test]
fn a_1mib_line_binary_garbage_and_500_senders_stay_within_bounded_memory() {
    let root = tempfile::tempdir().unwrap();
    let c = Collect::start(
        &root.path().join("c"),
        "127.0.0.1:0",
        &["--size", "16777215", "--count", "100"],
    );
    let baseline = c.rss_kib();
    let addr = c.addr;
    let mut big = TcpStream::connect(addr).unwrap();
    let line = "y".repeat(1 << 20);
    big.write_all(line.as_bytes()).unwrap();
    big.write_all(b"\n").unwrap();
    big.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = big.read_to_end(&mut rest);
    let mut junk = TcpStream::connect(addr).unwrap();
    junk.write_all(&garbage(1 << 20)).unwrap();
    junk.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = junk.read_to_end(&mut rest);
    let senders: Vec<_> = (0..500)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(format!("sender {i}\n").as_bytes()).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    wait_until("the 500 senders", Duration::from_secs(60), || {
        let t = c.text("all");
        let seen: std::collections::HashSet<&[u8]> = t
            .split(|&b| b == b'\n')
            .filter_map(|l| l.get(26..))
            .filter(|l| l.starts_with(b"127.0.0.1: sender "))
            .collect();
        seen.len() == 500
    });
    let grown = c.rss_kib().saturating_sub(baseline);
    assert!(grown < 16 * 1024, "the collector grew by {grown} KiB");
    // The 1 MiB line comes back cut in pieces of at most 64 KiB, each with the prefix.
    let all = c.text("all");
    // The first connection's lines come first.
    let pieces: Vec<&[u8]> = all
        .split(|&b| b == b'\n')
        .map(|l| &l[26.min(l.len())..])
        .take_while(|p| p.starts_with(b"127.0.0.1: y"))
        .collect();
    assert!(pieces.len() >= 16, "{}", pieces.len());
    assert!(pieces.iter().all(|p| p.len() <= 65_536));
    let joined: Vec<u8> = pieces.iter().flat_map(|p| p[11..].to_vec()).collect();
    assert!(joined == line.as_bytes());
}

#[test]
fn three_hundred_sender_addresses_keep_the_collectors_descriptors_bounded() {
    let root = tempfile::tempdir().unwrap();
    let c = Collect::start(&root.path().join("c"), "127.0.0.1:0", &["--no-stamp"]);
    let send = |host: u16, text: &str| {
        let ip = std::net::Ipv4Addr::new(127, 0, (host >> 8) as u8, (host & 0xff) as u8);
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from((ip, 0)).into()).unwrap();
        s.connect(&c.addr.into()).unwrap();
        let mut s: TcpStream = s.into();
        s.write_all(text.as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        ip.to_string()
    };
    let ips: Vec<String> = (2..302u16)
        .map(|h| send(h, &format!("first from {h}\n")))
        .collect();
    wait_until("300 lines", Duration::from_secs(30), || {
        String::from_utf8_lossy(&c.text("all")).lines().count() == 300
    });
    let fds = std::fs::read_dir(format!("/proc/{}/fd", c.child.id()))
        .unwrap()
        .count();
    assert!(
        fds < 900,
        "{fds} descriptors open for 300 sender directories"
    );
    // A sender whose directory was closed goes on in it.
    send(2, "second from 2\n");
    wait_until("the second line", Duration::from_secs(10), || {
        String::from_utf8_lossy(&c.text(&ips[0])).contains("second from 2")
    });
    assert_eq!(
        String::from_utf8(c.text(&ips[0])).unwrap(),
        "127.0.0.2: first from 2\n127.0.0.2: second from 2\n"
    );
    for (i, ip) in ips.iter().enumerate() {
        let t = String::from_utf8(c.text(ip)).unwrap();
        assert!(
            t.starts_with(&format!("{ip}: first from {}\n", i + 2)),
            "{ip}: {t:?}"
        );
    }
}

#[test]
fn a_collector_restart_loses_and_repeats_no_shipped_line() {
    let root = tempfile::tempdir().unwrap();
    let logdir = root.path().join("log");
    let cdir = root.path().join("c");
    let mut c = Collect::start(&cdir, "127.0.0.1:0", &[]);
    let port = c.addr.port();
    let echo = Helper::echo();
    let p = Proxy::start(&format!(
        "logdir: {}\nlogdir.size: 4096\nlogdir.count: 1000\nlogdir.ship: 127.0.0.1 port = {port}\nlogdir.ship.timeout: 2\n{}",
        logdir.display(),
        conf("connect disconnect ioop")
    ));
    let rotated = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&logdir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with('@'))
            .collect();
        v.sort();
        v
    };
    let mut i = 0;
    let mut sessions_until = |n: usize| {
        while rotated().len() < n {
            let (mut s, reply) = Raw::connect_v4(p.addr, echo.addr);
            assert_eq!(reply[1], 0);
            s.send(format!("s{i}").as_bytes());
            s.read_exact(format!("s{i}").len());
            i += 1;
        }
    };
    sessions_until(3);
    // The collector stops (cleanly) while files keep coming, then starts again.
    // SAFETY: kill(2) on our own child's PID.
    unsafe { libc::kill(c.child.id() as i32, libc::SIGTERM) };
    let _ = c.child.wait();
    sessions_until(6);
    wait_until(
        "a failure while it is away",
        Duration::from_secs(10),
        || std::fs::read_to_string(logdir.join("state")).is_ok_and(|s| s.contains("failed at")),
    );
    let c2 = Collect::start(&cdir, &format!("127.0.0.1:{port}"), &[]);
    // The next rotation ships what was kept.
    let now = rotated().len();
    sessions_until(now + 2);
    let shipped_all = || {
        let last = rotated()
            .last()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        std::fs::read_to_string(logdir.join("state")).unwrap_or_default()
            == format!("ferrosocks: shipped through {last}\n")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !shipped_all() {
        assert!(
            Instant::now() < deadline,
            "not every file shipped: state {:?}, files {:?}, log {:?}",
            std::fs::read_to_string(logdir.join("state")),
            rotated()
                .iter()
                .map(|f| f.file_name().unwrap().to_owned())
                .collect::<Vec<_>>(),
            p.messages()
                .iter()
                .filter(|m| !m.starts_with("pass("))
                .collect::<Vec<_>>()
        );
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = String::from_utf8(c2.text("127.0.0.1")).unwrap();
    let got: Vec<&str> = got
        .lines()
        .map(|l| &l[26..])
        .filter(|l| !l.starts_with("127.0.0.1: ferrosocks: shipment of @"))
        .collect();
    let sent: Vec<String> = rotated()
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| format!("127.0.0.1: {l}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(got.len(), sent.len(), "every shipped line once");
    assert!(got.iter().zip(&sent).all(|(a, b)| a == b), "in order");
    drop(p);
}
