//! How many Dante traffic lines per second each sink sustains, end to end: records
//! built, routed and formatted on the caller's thread, written in batches by the sink's
//! writer thread; and the p99 time of one log call.
//!
//! Sinks: a plain file (text, JSON), a log directory (`logdir`, default size 99999, so
//! rotations with their fsyncs are included; with and without `logdir.stamp`; with
//! `logdir.ship` to a local receiver, to show shipping does not reach the log call), and
//! `syslog.remote` over TCP and over TLS (RFC 5425; a test CA made with openssl, the
//! receiver rustls) to a local receiver that decodes every frame.
//!
//! The producer sends in batches and waits (`flush`) after each, so the figure is the
//! rate the sink keeps up with, with no line dropped (each run counts what arrived).
//! Run: `cargo run --release -p ferrosocks-bench --bin log-throughput [LINES] [text|json]`:
//! with `text` or `json`, only that file sink (to count one format's instructions under
//! callgrind: two runs of different LINES, the difference per line).
//!
//! The wall a log directory's rotations hit (bench/src/fsync_rate.rs):
//! `log-throughput fsync-rate [SECONDS]`: how many rotations (write a file of one
//! default-size file's bytes, fsync it, rename it, fsync the directory) this disk does
//! per second, and a bare fsync's rate; `log-throughput logdir [LINES]`: the file sink,
//! the log directory runs, and the real `multilog s99999 n10` and `multilog t s99999 n10`
//! fed the same lines through a pipe as fast as it takes them.
//! `log-throughput remote [LINES]`: only `syslog.remote` over TCP and TLS.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrosocks_bench::fsync_rate;
use logsys::logdir::{Options, Ship};
use logsys::remote::{Protocol, RemoteTarget};
use logsys::{Format, Level, LogConfig, LogDirTarget, Logger, SinkSpec, Subsystem, Target};

/// Lines in a file or in every file of a log directory.
fn lines_in(path: &Path) -> usize {
    let count = |p: &Path| {
        std::fs::read(p)
            .map(|t| t.iter().filter(|&&b| b == b'\n').count())
            .unwrap_or(0)
    };
    if path.is_dir() {
        std::fs::read_dir(path)
            .map(|r| {
                r.filter_map(Result::ok)
                    .filter(|e| {
                        let n = e.file_name();
                        let n = n.to_string_lossy();
                        n.starts_with('@') || n == "current"
                    })
                    .map(|e| count(&e.path()))
                    .sum()
            })
            .unwrap_or(0)
    } else {
        count(path)
    }
}

/// A local receiver that reads and drops everything; counts bytes.
fn sink_receiver() -> (u16, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = l.local_addr().expect("its address").port();
    let bytes = Arc::new(AtomicU64::new(0));
    let b = Arc::clone(&bytes);
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let b = Arc::clone(&b);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    b.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (port, bytes)
}

fn run(name: &str, target: Target, format: Format, total: usize, count: &dyn Fn() -> usize) {
    let config = LogConfig {
        logoutput: vec![SinkSpec { target, format }],
        ..LogConfig::default()
    };
    let line = "pass(2): tcp/connect -: 127.0.0.1.44460 127.0.0.1.21014 -> 127.0.0.1.40779 127.0.0.1.21010 (1460)";
    let record = traffic_log::Record::parse(line).expect("a valid record");
    let log = Logger::start("ferrosocks", 1, config);
    let batch = 8192;
    let mut calls: Vec<u32> = Vec::with_capacity(total);
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        for _ in 0..batch.min(total - sent) {
            let t = Instant::now();
            log.traffic(Subsystem::TRAFFIC, Level::Trace, record.clone());
            calls.push(t.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32);
        }
        sent += batch.min(total - sent);
        log.flush();
    }
    let secs = start.elapsed().as_secs_f64();
    log.close();
    calls.sort_unstable();
    let p99 = calls[calls.len() * 99 / 100];
    let got = count();
    assert_eq!(got, total, "{name}: lines were lost");
    println!(
        "{name}: {total} traffic lines in {secs:.2} s = {:.0} lines/s; log call p99 {:.2} µs",
        total as f64 / secs,
        f64::from(p99) / 1000.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("fsync-rate") => {
            fsync_rate::report(Duration::from_secs(number(1, 3) as u64));
            return;
        }
        Some("remote") => {
            remotes(number(1, 1_000_000));
            return;
        }
        Some("logdir") => {
            let total = number(1, 1_000_000);
            let text = file_sinks(total, Some("text"));
            logdirs(total);
            multilog_runs(&text);
            return;
        }
        _ => {}
    }
    let total = number(0, 1_000_000);
    let only = args.get(1).map(String::as_str);
    file_sinks(total, only);
    if only.is_some() {
        return;
    }
    logdirs(total);
    remotes(total);
    disk_queue_replay(total);
    collector(50, total / 50);
}

/// The file sinks (`only`: the one whose name ends so); the text file's bytes.
fn file_sinks(total: usize, only: Option<&str>) -> Vec<u8> {
    let mut text = Vec::new();
    for (name, format) in [("file text", Format::Text), ("file json", Format::Json)] {
        if only.is_some_and(|o| !name.ends_with(o)) {
            continue;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("traffic.log");
        run(name, Target::File(path.clone()), format, total, &|| {
            lines_in(&path)
        });
        if format == Format::Text {
            text = std::fs::read(&path).expect("the text file");
        }
    }
    text
}

/// The real multilog over `text`, written into its pipe as fast as it reads.
fn multilog_runs(text: &[u8]) {
    use std::io::Write;
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    for args in [&["s99999", "n10"][..], &["t", "s99999", "n10"]] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let start = Instant::now();
        let child = std::process::Command::new("multilog")
            .args(args)
            .arg("./log")
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            println!("multilog {}: not installed (daemontools)", args.join(" "));
            return;
        };
        let mut stdin = child.stdin.take().expect("its stdin");
        stdin.write_all(text).expect("multilog reads");
        drop(stdin);
        let ok = child.wait().expect("multilog ends").success();
        let secs = start.elapsed().as_secs_f64();
        let files = std::fs::read_dir(dir.path().join("log"))
            .map(|r| r.count())
            .unwrap_or(0);
        assert!(ok, "multilog failed");
        println!(
            "multilog {}: {lines} lines in {secs:.2} s = {:.0} lines/s ({} bytes per line; {files} names in the directory at the end)",
            args.join(" "),
            lines as f64 / secs,
            text.len() / lines.max(1),
        );
    }
}

fn logdirs(total: usize) {
    let (port, _shipped_bytes) = sink_receiver();
    for (name, size, stamp, ship) in [
        ("logdir", 99_999, false, false),
        ("logdir stamped", 99_999, true, false),
        ("logdir shipped", 99_999, false, true),
        ("logdir size 4096000", 4_096_000, false, false),
        ("logdir size 4096000 stamped", 4_096_000, true, false),
    ] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("log");
        let options = Options {
            size,
            count: 100_000,
            stamp,
            ship: ship.then(|| Ship {
                host: "127.0.0.1".into(),
                port,
                timeout: Duration::from_secs(30),
            }),
        };
        let target = Target::LogDir(LogDirTarget {
            path: path.clone(),
            options,
        });
        run(name, target, Format::Text, total, &|| lines_in(&path));
    }
}

/// `syslog.remote` over TCP, then over TLS, each to a local receiver decoding every
/// frame.
fn remotes(total: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = listener.local_addr().expect("its address").port();
    let frames = frame_receiver(listener, None);
    let target = Target::SyslogRemote(remote_target(port, None));
    run("syslog.remote tcp", target, Format::Text, total, &|| {
        wait_frames(&frames, total as u64, Duration::from_secs(30))
    });
    let pki = tempfile::tempdir().expect("a temporary directory");
    let Some(server) = tls::server_config(pki.path()) else {
        println!("syslog.remote tls: openssl is not installed (it makes the test CA)");
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = listener.local_addr().expect("its address").port();
    let frames = frame_receiver(listener, Some(server));
    let target = Target::SyslogRemote(RemoteTarget {
        protocol: Protocol::Tls,
        ca: Some(pki.path().join("ca.pem")),
        ..remote_target(port, None)
    });
    run("syslog.remote tls", target, Format::Text, total, &|| {
        wait_frames(&frames, total as u64, Duration::from_secs(30))
    });
}

fn remote_target(port: u16, queue_dir: Option<std::path::PathBuf>) -> RemoteTarget {
    RemoteTarget {
        host: "127.0.0.1".into(),
        port,
        protocol: Protocol::Tcp,
        ca: None,
        queue_dir,
        facilities: vec![3; Subsystem::ALL.len()],
    }
}

/// A receiver that counts octet-counted frames, across connections; over TLS with
/// `tls`.
fn frame_receiver(l: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> Arc<AtomicU64> {
    let frames = Arc::new(AtomicU64::new(0));
    let f = Arc::clone(&frames);
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let f = Arc::clone(&f);
            let tls = tls.clone();
            std::thread::spawn(move || match tls {
                None => count_frames(c, &f),
                Some(config) => {
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    count_frames(rustls::StreamOwned::new(conn, c), &f);
                }
            });
        }
    });
    frames
}

/// Decodes every octet-counted frame read from `c`, counting them in `f`.
fn count_frames(mut c: impl Read, f: &AtomicU64) {
    let mut buf = vec![0u8; 1 << 16];
    let mut pending: Vec<u8> = Vec::new();
    while let Ok(n) = c.read(&mut buf) {
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        let mut at = 0;
        while let Ok(logsys::format::framing::Decoded::Frame { used, .. }) =
            logsys::format::framing::decode(&pending[at..], 1 << 20)
        {
            at += used;
            f.fetch_add(1, Ordering::Relaxed);
        }
        pending.drain(..at);
    }
}

/// The TLS receiver's side: a test CA and a certificate for 127.0.0.1, made with
/// openssl as the TLS integration test makes them.
mod tls {
    use std::path::Path;
    use std::process::Command;
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    /// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir`; the server's
    /// configuration, or None without openssl.
    pub(super) fn server_config(dir: &Path) -> Option<Arc<rustls::ServerConfig>> {
        let p = |f: &str| dir.join(f).display().to_string();
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .expect("ext.cnf");
        let steps: [Vec<String>; 3] = [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"]
                .map(String::from)
                .into_iter()
                .chain([p("ca.key"), "-out".into(), p("ca.pem")])
                .chain(["-days", "2", "-subj", "/CN=ferrosocks bench CA"].map(String::from))
                .collect(),
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout"]
                .map(String::from)
                .into_iter()
                .chain([p("key.pem"), "-out".into(), p("req.csr")])
                .chain(["-subj", "/CN=127.0.0.1"].map(String::from))
                .collect(),
            ["x509", "-req", "-in"]
                .map(String::from)
                .into_iter()
                .chain([p("req.csr"), "-CA".into(), p("ca.pem"), "-CAkey".into()])
                .chain([p("ca.key"), "-CAcreateserial".into(), "-out".into()])
                .chain([p("cert.pem"), "-days".into(), "2".into(), "-extfile".into()])
                .chain([p("ext.cnf")])
                .collect(),
        ];
        for args in steps {
            let out = Command::new("openssl").args(&args).output().ok()?;
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let certs = CertificateDer::pem_file_iter(dir.join("cert.pem"))
            .expect("cert.pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("a certificate");
        let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).expect("key.pem");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("the certificate and its key");
        Some(Arc::new(config))
    }
}

fn wait_frames(frames: &AtomicU64, want: u64, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    while frames.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        #[allow(clippy::disallowed_methods)] // no runtime here
        std::thread::sleep(Duration::from_millis(1));
    }
    frames.load(Ordering::Relaxed) as usize
}

/// `total` records queued (memory, then disk under a log directory) while the receiver
/// is away, then the rate at which they are delivered once it listens.
fn disk_queue_replay(total: usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let target = Target::SyslogRemote(remote_target(port, Some(dir.path().join("syslog-queue"))));
    let log = Logger::start(
        "ferrosocks",
        1,
        LogConfig {
            logoutput: vec![SinkSpec::text(target)],
            ..LogConfig::default()
        },
    );
    let line = "pass(2): tcp/connect -: 127.0.0.1.44460 127.0.0.1.21014 -> 127.0.0.1.40779 127.0.0.1.21010 (1460)";
    let record = traffic_log::Record::parse(line).expect("a valid record");
    for chunk in (0..total).collect::<Vec<_>>().chunks(8192) {
        for _ in chunk {
            log.traffic(Subsystem::TRAFFIC, Level::Trace, record.clone());
        }
        log.flush();
    }
    let on_disk: u64 = std::fs::read_dir(dir.path().join("syslog-queue"))
        .map(|r| {
            r.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the receiver's port");
    let back = Instant::now();
    let frames = frame_receiver(listener, None);
    // The sender finds the receiver back at its next reconnect (back-off up to 30 s);
    // the replay rate is from the first record received.
    wait_frames(&frames, 1, Duration::from_secs(60));
    let start = Instant::now();
    let reconnect = back.elapsed().as_secs_f64();
    let got = wait_frames(&frames, total as u64, Duration::from_secs(120));
    let secs = start.elapsed().as_secs_f64();
    // The sink's own reports (unreachable, reachable again) travel too.
    assert!(
        got >= total,
        "disk queue replay: records were lost ({got} of {total})"
    );
    println!(
        "syslog.remote replay: {total} queued records ({:.1} MB on disk) delivered in {secs:.2} s from the first one = {:.0} records/s (the reconnect came {reconnect:.1} s after the receiver was back)",
        on_disk as f64 / 1e6,
        total as f64 / secs
    );
    log.close();
}

/// `senders` connections at once, each sending `each` syslog lines, into a collector.
fn collector(senders: usize, each: usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let listener = TcpListener::bind("127.0.0.1:0").expect("a listener");
    let addr = listener.local_addr().expect("its address");
    let quiet = Logger::start("ferrosocks", 1, LogConfig::default());
    let options = Options {
        count: 100_000,
        stamp: true,
        ..Options::default()
    };
    let _c = logsys::collect::Collector::start(
        listener,
        dir.path(),
        options,
        logsys::collect::Limits::default(),
        quiet,
    )
    .expect("a collector");
    let start = Instant::now();
    let threads: Vec<_> = (0..senders)
        .map(|s| {
            std::thread::spawn(move || {
                use std::io::Write;
                let mut c = std::net::TcpStream::connect(addr).expect("a connection");
                let mut text = Vec::new();
                for i in 0..each {
                    text.extend_from_slice(format!("<30>Dec  1 14:00:00 host{s} ferrosocks[1]: info: pass(2): tcp/connect -: line {i} of sender {s}\n").as_bytes());
                }
                c.write_all(&text).expect("sent");
                c.shutdown(std::net::Shutdown::Write).expect("half-closed");
                let mut rest = Vec::new();
                let _ = c.read_to_end(&mut rest);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a sender");
    }
    let want = senders * each;
    let all = dir.path().join("all");
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines_in(&all) < want && Instant::now() < deadline {
        #[allow(clippy::disallowed_methods)] // no runtime here
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(lines_in(&all), want, "collector: lines were lost");
    println!(
        "collect: {senders} senders x {each} lines = {want} lines into all/ and per-sender directories in {secs:.2} s = {:.0} lines/s",
        want as f64 / secs
    );
}
