//! Shipping rotated files (`logdir.ship`) to a real ucspi-tcp `tcpserver … cat`
//! receiver: exact bytes, in order; a collector that is down (files kept, the failure
//! remembered in `state` and told first in the next shipment, also after a restart);
//! a stalled collector (every attempt ends within the timeout, SOCKS unaffected).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// `tcpserver -HR -l0 127.0.0.1 PORT sh -c 'cat >> FILE'`: every shipment appended to
/// one file, in the order received. Ended by PID on drop.
struct Receiver {
    child: Child,
    port: u16,
    file: PathBuf,
}

impl Receiver {
    fn start(port: u16, file: &Path) -> Self {
        require("tcpserver");
        let mut child = Command::new("tcpserver")
            .args(["-1", "-HR", "-l0", "127.0.0.1", &port.to_string()])
            .args(["sh", "-c", &format!("cat >> '{}'", file.display())])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("tcpserver said {line:?}"));
        Self {
            child,
            port,
            file: file.to_path_buf(),
        }
    }

    fn received(&self) -> Vec<u8> {
        std::fs::read(&self.file).unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rotated(dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with('@'))
        .collect();
    names.sort();
    names
}

fn concat(files: &[PathBuf]) -> Vec<u8> {
    files
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sessions until the log directory holds `n` rotated files; returns the longest
/// session's time.
fn sessions_until_rotated(p: &Proxy, echo: &Helper, dir: &Path, n: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    while rotated(dir).len() < n {
        assert!(Instant::now() < deadline, "no {n} rotations");
        let t = Instant::now();
        let (mut c, reply) = Raw::connect_v4(p.addr, echo.addr);
        assert_eq!(reply[1], 0);
        let payload = format!("session {i}");
        c.send(payload.as_bytes());
        assert_eq!(c.read_exact(payload.len()), payload.as_bytes());
        drop(c);
        slowest = slowest.max(t.elapsed());
        i += 1;
    }
    slowest
}

fn ship_conf(dir: &Path, port: u16, timeout: u64) -> String {
    format!(
        "logdir: {}\nlogdir.size: 4096\nlogdir.count: 100000\nlogdir.ship: 127.0.0.1 port = {port}\nlogdir.ship.timeout: {timeout}\n{}",
        dir.display(),
        conf("connect disconnect ioop")
    )
}

#[test]
fn each_rotated_file_reaches_a_tcpserver_cat_receiver_exactly_once_in_order() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let recv = Receiver::start(0, &root.path().join("received"));
    let echo = Helper::echo();
    let p = Proxy::start(&ship_conf(&dir, recv.port, 5));
    sessions_until_rotated(&p, &echo, &dir, 3);
    // Once the last rotated file is shipped (later lines stay in current).
    let shipped_all = || {
        let files = rotated(&dir);
        let last = files
            .last()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let state = std::fs::read_to_string(dir.join("state")).unwrap_or_default();
        state == format!("ferrosocks: shipped through {last}\n")
    };
    // Shipped through the last file, and no further rotation for a moment (the last
    // sessions' lines may still be on their way).
    wait_until("the shipments", Duration::from_secs(20), || {
        let before = rotated(&dir);
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(200));
        shipped_all() && rotated(&dir) == before
    });
    let files = rotated(&dir);
    assert!(
        recv.received() == concat(&files),
        "the receiver got exactly the files"
    );
    // Shipped files keep their local copy.
    assert!(files
        .iter()
        .all(|f| std::fs::metadata(f).unwrap().len() > 2000));
}

#[test]
fn a_collector_that_is_down_keeps_the_files_and_hears_of_it_first_also_after_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let port = closed_port();
    let echo = Helper::echo();
    let conf_text = ship_conf(&dir, port, 2);
    let mut p = Proxy::start(&conf_text);
    sessions_until_rotated(&p, &echo, &dir, 2);
    wait_until("the failure in state", Duration::from_secs(10), || {
        std::fs::read_to_string(dir.join("state")).is_ok_and(|s| s.contains("failed at"))
    });
    p.wait_for("the failure on the error log", |m| {
        m.contains("shipment of @") && m.contains("retried, in order")
    });
    p.signal(libc::SIGTERM);
    assert!(p.wait_exit(Duration::from_secs(10)).success());
    let state = std::fs::read_to_string(dir.join("state")).unwrap();
    assert!(
        state.contains(&format!("to 127.0.0.1 port {port} failed at ")),
        "{state}"
    );
    assert!(state.contains("refused"), "{state}");
    let files = rotated(&dir);
    assert!(files.len() >= 2);

    // The collector comes back, then ferrosocks restarts: the failure goes first, then
    // every kept file, oldest first.
    let recv = Receiver::start(port, &root.path().join("received"));
    let p = Proxy::start(&conf_text);
    let head = state.as_bytes().to_vec();
    // The restarted proxy's own lines may fill the `current` it continues and rotate it:
    // that file is shipped after the kept ones, so the receiver ends with all the rotated
    // files there are, the kept ones first.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (data, got) = loop {
        let now = rotated(&dir);
        assert!(now.starts_with(&files), "kept {files:?}, now {now:?}");
        let data = concat(&now);
        let got = recv.received();
        if got.ends_with(&data) {
            break (data, got);
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out waiting for the kept files {files:?}; the directory now: {now:?} ({} bytes); state: {:?}; received {} bytes, its start:\n{}\nits end:\n{}",
                data.len(),
                std::fs::read_to_string(dir.join("state")),
                got.len(),
                String::from_utf8_lossy(&got[..got.len().min(800)]),
                String::from_utf8_lossy(&got[got.len().saturating_sub(400)..]),
            );
        }
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(20));
    };
    // First the failures remembered (those of state, and any the restarted proxy met
    // before the collector answered), then every kept file, oldest first, once.
    let told = &got[..got.len() - data.len()];
    let told_text = String::from_utf8_lossy(told);
    assert!(
        told.starts_with(&head),
        "got:\n{}",
        &told_text[..told_text.len().min(600)]
    );
    assert!(
        told_text
            .lines()
            .all(|l| l.starts_with("ferrosocks: shipment of @") && l.contains(" failed at ")),
        "{told_text}"
    );
    let state = std::fs::read_to_string(dir.join("state")).unwrap();
    assert!(
        state.starts_with("ferrosocks: shipped through @") && state.lines().count() == 1,
        "{state}"
    );
    drop(p);
}

#[test]
fn a_stalled_collector_times_out_every_attempt_and_never_holds_up_socks() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    // A listener that never accepts, its queue filled: connects hang.
    let stalled = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    stalled
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    stalled.listen(0).unwrap();
    let stalled: TcpListener = stalled.into();
    let port = stalled.local_addr().unwrap().port();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(
            &stalled.local_addr().unwrap(),
            Duration::from_millis(200),
        ) {
            fillers.push(s);
        }
    }
    let echo = Helper::echo();
    let p = Proxy::start(&ship_conf(&dir, port, 1));
    let slowest = sessions_until_rotated(&p, &echo, &dir, 3);
    assert!(
        slowest < Duration::from_millis(500),
        "a session took {slowest:?}"
    );
    wait_until(
        "a timed-out attempt in state",
        Duration::from_secs(10),
        || std::fs::read_to_string(dir.join("state")).is_ok_and(|s| s.contains("timed out")),
    );
    let started = Instant::now();
    // Every attempt ends within the timeout: a further rotation is tried promptly.
    sessions_until_rotated(&p, &echo, &dir, 5);
    wait_until("another attempt", Duration::from_secs(5), || {
        std::fs::read_to_string(dir.join("state"))
            .is_ok_and(|s| s.matches("timed out").count() >= 2)
    });
    assert!(started.elapsed() < Duration::from_secs(5));
    let sizes: Vec<(PathBuf, u64)> = rotated(&dir)
        .into_iter()
        .map(|f| {
            let n = std::fs::metadata(&f).unwrap().len();
            (f, n)
        })
        .collect();
    assert!(sizes.len() >= 5, "nothing removed: {sizes:?}");
    assert!(
        sizes.iter().all(|(_, n)| *n > 2000),
        "nothing emptied: {sizes:?}"
    );
    drop(fillers);
}
