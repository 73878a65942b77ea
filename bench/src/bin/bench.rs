//! The benchmark runner: ferrosocks side by side with the direct path and its peers
//! (Dante, microsocks, shadowsocks-rust's `sslocal` in SOCKS mode, merino), in one run,
//! interleaved (A B C A B C …), medians of the repetitions; each row names its best peer.
//!
//! Run `bench/run.sh` (it builds the release binaries, installs Dante and microsocks
//! with apt and the two Rust peers with `cargo install` under `bench/peers/` when
//! missing; `--netns` runs it all in a private network namespace). The Rust peers are
//! found through `FERROSOCKS_BENCH_SSLOCAL` and `FERROSOCKS_BENCH_MERINO` (run.sh sets
//! them); a peer whose binary is missing is left out with a message on standard error. Everything is on loopback; every load is bounded in bytes, connections
//! and seconds. Options: `--reps N` (default 3), `--gib N` bulk size (default 1),
//! `--quick` (fewer bytes and seconds, for a smoke run), `--soak SECONDS` (default 120).
//!
//! One more subject, `floor`, is not a peer: bench's own `floorproxy`, a bare
//! edge-triggered epoll relay (no runtime, no rules, no logging): the least a SOCKS5
//! CONNECT proxy can cost on the machine, so that a limit can be called the kernel's when
//! the floor is bound by it too. It is never a row's best peer. `FLOOR_THREADS=N` sets its
//! threads (default 1). In a private network namespace (`bench/run.sh --netns`) the
//! runner caps TIME_WAIT at 1024 entries first, so that no phase waits for it to drain.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrosocks_bench::procs::{
    cap_time_wait, cpu_seconds, first_number, free_port, loadgen, median, open_fds, pss_kib,
    settle, sleep, start_ferrosocks, start_target, wait_port, RateResult, TIME_WAIT_CAP,
};

/// The peers a row's best is chosen from (not `floor`, which is no peer).
const PEERS: [&str; 4] = ["dante", "microsocks", "sslocal", "merino"];

/// The floor subject's column heading.
const FLOOR: &str = "floor (not a peer: a bare epoll relay)";

struct Subject {
    name: &'static str,
    proxy: Option<SocketAddr>,
    child: Option<Child>,
}

impl Drop for Subject {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let quick = args.iter().any(|a| a == "--quick");
    let reps = opt("--reps", 3.0) as usize;
    let gib = opt("--gib", if quick { 0.125 } else { 1.0 });
    let soak = opt("--soak", if quick { 10.0 } else { 120.0 }) as u64;
    let rate_secs = if quick { 2.0 } else { 5.0 };
    let bin = std::env::current_exe()
        .expect("our path")
        .parent()
        .expect("a directory")
        .to_path_buf();
    let work = tempfile::tempdir().expect("a work directory");
    if cap_time_wait() {
        println!(
            "In a private network namespace: TIME_WAIT capped at {TIME_WAIT_CAP} entries (net.ipv4.tcp_max_tw_buckets, this namespace only), so no phase waits for it to drain."
        );
    }

    let bytes = (gib * 1024.0 * 1024.0 * 1024.0) as u64;
    let mut results: BTreeMap<(String, &str), Vec<f64>> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut record = |subject: &str, measure: &'static str, v: f64| {
        results
            .entry((subject.to_owned(), measure))
            .or_default()
            .push(v)
    };

    for rep in 1..=reps {
        eprintln!("repetition {rep}/{reps}");
        // Every repetition starts every subject and target afresh: two long-lived
        // instances of the same proxy differed by 19% in connection rate on this machine
        // (docs/PERFORMANCE.md, "Fresh processes every round"), so one instance's luck
        // must not decide a ratio.
        let (subjects, targets) = start_all(&bin, work.path());
        let target_of = targets_of(&subjects, &targets);
        for (measure, dir, streams) in [
            ("up x1 MB/s", "up", 1),
            ("down x1 MB/s", "down", 1),
            ("up x4 MB/s", "up", 4),
            ("down x4 MB/s", "down", 4),
        ] {
            for s in &subjects {
                let pid = s.child.as_ref().map(Child::id);
                let cpu0 = pid.map(cpu_seconds);
                let mut a = vec![
                    "bulk".into(),
                    target_of[s.name].to_string(),
                    dir.into(),
                    streams.to_string(),
                    bytes.to_string(),
                ];
                a.extend(s.proxy.map(|p| p.to_string()));
                match loadgen(&bin, &a).map(|out| first_number(&out)) {
                    Ok(Some(v)) => {
                        record(s.name, measure, v);
                        if let (Some(pid), Some(c0)) = (pid, cpu0) {
                            record(s.name, "CPU s/GiB", (cpu_seconds(pid) - c0) / gib);
                        }
                    }
                    Ok(None) => {
                        failures.push(format!("{} {measure}, repetition {rep}: no result", s.name))
                    }
                    Err(why) => {
                        failures.push(format!("{} {measure}, repetition {rep}: {why}", s.name))
                    }
                }
            }
        }
        // Every connection-rate run leaves its connections in TIME_WAIT for a minute,
        // and the kernel's source-port search gets slower with each of them: start
        // each round's rate phase from a drained table, and rotate the order (Dante
        // stays last, see `start_subjects`) so that no subject always runs first.
        settle();
        for s in rate_order(&subjects, rep) {
            let pid = s.child.as_ref().map(Child::id);
            let cpu0 = pid.map(cpu_seconds);
            let mut a = vec![
                "rate".into(),
                target_of[s.name].to_string(),
                "50".into(),
                rate_secs.to_string(),
                "200000".into(),
            ];
            a.extend(s.proxy.map(|p| p.to_string()));
            let out = match loadgen(&bin, &a) {
                Ok(out) => out,
                Err(why) => {
                    failures.push(format!("{} conn/s, repetition {rep}: {why}", s.name));
                    continue;
                }
            };
            let r = RateResult::parse(&out);
            let (ok, errors) = (r.ok, r.errors);
            if errors > 0 {
                failures.push(format!(
                    "{} conn/s, repetition {rep}: {errors} connections failed ({out})",
                    s.name
                ));
            }
            if ok.is_none_or(|ok| ok < 1.0) {
                failures.push(format!(
                    "{} conn/s, repetition {rep}: no connection succeeded",
                    s.name
                ));
                continue;
            }
            if let (Some(rate), Some(p50), Some(p99)) = (r.rate, r.p50, r.p99) {
                record(s.name, "conn/s", rate);
                record(s.name, "p50 ms", p50);
                record(s.name, "p99 ms", p99);
            }
            if let (Some(pid), Some(c0), Some(ok)) = (pid, cpu0, ok) {
                record(s.name, "CPU us/conn", (cpu_seconds(pid) - c0) / ok * 1e6);
            }
        }
        stop_all(subjects, targets);
    }
    settle();
    let (subjects, mut targets) = start_all(&bin, work.path());
    let target_of = targets_of(&subjects, &targets);
    for n in [1000usize, 5000] {
        for s in subjects.iter().filter(|s| s.proxy.is_some()) {
            let pid = s.child.as_ref().map(Child::id).expect("a proxy process");
            if let Some(kib) = idle_pss(&bin, target_of[s.name], s, pid, n) {
                record(
                    s.name,
                    if n == 1000 {
                        "PSS KiB/idle x1000"
                    } else {
                        "PSS KiB/idle x5000"
                    },
                    kib,
                );
            }
        }
    }
    print_table(&mut results, reps, gib);
    if !failures.is_empty() {
        println!("\nRuns left out of the medians:");
        for f in &failures {
            println!("  {f}");
        }
    }
    settle();
    soak_test(&bin, target_of["ferrosocks"], &subjects, soak);
    for (target, _) in &mut targets {
        let _ = target.kill();
        let _ = target.wait();
    }
}

/// Every subject, and a target server for each. Each connection-rate run leaves tens of
/// thousands of connections in TIME_WAIT towards its target for a minute; with one shared
/// target, every subject would pay (in the kernel's search for a free source port) for the
/// subject that ran before it, and the ratios would depend on the order.
fn start_all(bin: &Path, work: &Path) -> (Vec<Subject>, Vec<(Child, SocketAddr)>) {
    let subjects = start_subjects(bin, work);
    let targets = subjects.iter().map(|_| start_target(bin)).collect();
    (subjects, targets)
}

fn targets_of(
    subjects: &[Subject],
    targets: &[(Child, SocketAddr)],
) -> BTreeMap<&'static str, SocketAddr> {
    subjects
        .iter()
        .zip(targets)
        .map(|(s, (_, a))| (s.name, *a))
        .collect()
}

/// Ends the subjects (SIGTERM first, so that Dante ends its children too) and the targets.
fn stop_all(subjects: Vec<Subject>, targets: Vec<(Child, SocketAddr)>) {
    for s in &subjects {
        if let Some(c) = &s.child {
            // SAFETY: kill(2) on the PID of a child we started and have not yet waited for.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for mut s in subjects {
        if let Some(c) = &mut s.child {
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                sleep(Duration::from_millis(20));
            }
        }
        drop(s);
    }
    for (mut t, _) in targets {
        let _ = t.kill();
        let _ = t.wait();
    }
}

fn start_subjects(bin: &Path, work: &Path) -> Vec<Subject> {
    let mut out = vec![Subject {
        name: "direct",
        proxy: None,
        child: None,
    }];
    let fs = |name: &'static str, log: &str| {
        let port = free_port();
        let conf = work.join(format!("{name}.conf"));
        let logline = if log.is_empty() {
            String::new()
        } else {
            format!(
                "logoutput: {}\n",
                work.join(format!("{name}.log")).display()
            )
        };
        let rule_log = if log.is_empty() {
            String::new()
        } else {
            format!("\n    log: {log}\n")
        };
        std::fs::write(
            &conf,
            format!("{logline}internal: 127.0.0.1 port = {port}\nsocksmethod: none\nclient pass {{ from: 127.0.0.0/8 to: 0/0 }}\nsocks pass {{ from: 127.0.0.0/8 to: 0/0{rule_log}}}\n"),
        )
        .expect("a config");
        let child = start_ferrosocks(&bin.join("ferrosocks"), &conf, port);
        Subject {
            name,
            proxy: Some(SocketAddr::from(([127, 0, 0, 1], port))),
            child: Some(child),
        }
    };
    out.push(fs("ferrosocks", ""));
    out.push(fs("ferrosocks+log", "connect disconnect ioop"));
    let fport = free_port();
    let threads = std::env::var("FLOOR_THREADS").unwrap_or_else(|_| "1".into());
    let floor = Command::new(bin.join("floorproxy"))
        .args([format!("127.0.0.1:{fport}"), "--threads".into(), threads])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("floorproxy (built with the bench crate)");
    wait_port(fport);
    out.push(Subject {
        name: "floor",
        proxy: Some(SocketAddr::from(([127, 0, 0, 1], fport))),
        child: Some(floor),
    });
    let dport = free_port();
    let dconf = work.join("danted.conf");
    // Dante binds its outgoing sockets to `external` before connecting, so its source
    // ports come from that address's pool, which the other subjects' TIME_WAIT
    // connections on 127.0.0.1 would exhaust (it then refuses with 0x03): it gets an
    // address of its own. The sockets it binds hold their port for every address while in
    // TIME_WAIT, though, so a minute after its connection-rate run the kernel has few
    // ports left to hand out: Dante runs last in each round, and the memory and soak
    // phases wait for TIME_WAIT to drain (`settle`).
    std::fs::write(
        &dconf,
        format!("logoutput: /dev/null\ninternal: 127.0.0.1 port = {dport}\nexternal: 127.0.0.5\nclientmethod: none\nsocksmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\nclient pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\nsocks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n"),
    )
    .expect("a Dante config");
    let dante = Command::new("/usr/sbin/danted")
        .arg("-f")
        .arg(&dconf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("danted");
    wait_port(dport);
    out.push(Subject {
        name: "dante",
        proxy: Some(SocketAddr::from(([127, 0, 0, 1], dport))),
        child: Some(dante),
    });
    let mport = free_port();
    let ms = Command::new("microsocks")
        .args(["-i", "127.0.0.1", "-p", &mport.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("microsocks");
    wait_port(mport);
    out.push(Subject {
        name: "microsocks",
        proxy: Some(SocketAddr::from(([127, 0, 0, 1], mport))),
        child: Some(ms),
    });
    for (name, env, args) in [
        (
            "sslocal",
            "FERROSOCKS_BENCH_SSLOCAL",
            &["-b", "127.0.0.1:{port}", "--protocol", "socks"][..],
        ),
        (
            "merino",
            "FERROSOCKS_BENCH_MERINO",
            &["--no-auth", "-i", "127.0.0.1", "-p", "{port}"][..],
        ),
    ] {
        match std::env::var_os(env) {
            Some(path) if Path::new(&path).is_file() => {
                let port = free_port();
                let child = Command::new(&path)
                    .args(args.iter().map(|a| a.replace("{port}", &port.to_string())))
                    .env("RUST_LOG", "error")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap_or_else(|e| panic!("{}: {e}", Path::new(&path).display()));
                wait_port(port);
                out.push(Subject {
                    name,
                    proxy: Some(SocketAddr::from(([127, 0, 0, 1], port))),
                    child: Some(child),
                });
            }
            _ => eprintln!("{name} LEFT OUT: set {env} to its binary (bench/run.sh installs it)"),
        }
    }
    // Stable: direct, ferrosocks, ferrosocks+log, floor, microsocks, sslocal, merino, dante.
    out.sort_by_key(|s| s.name == "dante");
    out
}

/// The subjects in the order of repetition `rep`'s rate phase: the ones before Dante
/// rotated by one place per repetition, Dante last.
fn rate_order(subjects: &[Subject], rep: usize) -> Vec<&Subject> {
    let (mut head, tail): (Vec<&Subject>, Vec<&Subject>) =
        subjects.iter().partition(|s| s.name != "dante");
    if !head.is_empty() {
        let n = head.len();
        head.rotate_left((rep - 1) % n);
    }
    head.extend(tail);
    head
}

/// Holds `n` idle sessions through the proxy and returns the PSS growth per session.
fn idle_pss(bin: &Path, target: SocketAddr, s: &Subject, pid: u32, n: usize) -> Option<f64> {
    ferrosocks_bench::procs::idle_pss(bin, target, s.proxy?, pid, n)
}

fn print_table(results: &mut BTreeMap<(String, &'static str), Vec<f64>>, reps: usize, gib: f64) {
    let measures = [
        "up x1 MB/s",
        "down x1 MB/s",
        "up x4 MB/s",
        "down x4 MB/s",
        "conn/s",
        "p50 ms",
        "p99 ms",
        "CPU s/GiB",
        "CPU us/conn",
        "PSS KiB/idle x1000",
        "PSS KiB/idle x5000",
    ];
    let subjects = [
        "direct",
        "ferrosocks",
        "ferrosocks+log",
        "floor",
        "dante",
        "microsocks",
        "sslocal",
        "merino",
    ];
    println!("\nMedian of {reps} interleaved repetitions ({gib} GiB per bulk run); [min–max].\n");
    let headings: Vec<&str> = subjects
        .iter()
        .map(|s| if *s == "floor" { FLOOR } else { s })
        .collect();
    println!(
        "| measure | {} | best peer | ferrosocks / best peer | ferrosocks / direct | ferrosocks / floor |",
        headings.join(" | ")
    );
    println!("|---|{}---|---|---|---|", "---|".repeat(subjects.len()));
    for m in measures {
        let mut row = format!("| {m} |");
        let mut med = BTreeMap::new();
        for s in subjects {
            match results.get_mut(&(s.to_owned(), m)) {
                Some(v) if !v.is_empty() => {
                    let (lo, hi) = (
                        v.iter().copied().fold(f64::INFINITY, f64::min),
                        v.iter().copied().fold(0.0, f64::max),
                    );
                    let md = median(v);
                    med.insert(s, md);
                    row.push_str(&format!(" {md:.1} [{lo:.1}–{hi:.1}] |"));
                }
                _ => row.push_str(" – |"),
            }
        }
        let lower_better = m.contains("ms") || m.contains("CPU") || m.contains("PSS");
        let best = PEERS
            .iter()
            .filter_map(|p| med.get(p).map(|v| (*p, *v)))
            .fold(None, |acc: Option<(&str, f64)>, (p, v)| match acc {
                Some((_, a)) if (lower_better && a <= v) || (!lower_better && a >= v) => acc,
                _ => Some((p, v)),
            });
        let best_peer = best.map(|(_, v)| v);
        let ours = med.get("ferrosocks").copied();
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
            _ => "–".into(),
        };
        row.push_str(&format!(
            " {} | {} | {} | {} |",
            best.map_or("–", |(p, _)| p),
            ratio(ours, best_peer),
            ratio(ours, med.get("direct").copied()),
            ratio(ours, med.get("floor").copied())
        ));
        println!("{row}");
    }
    let cost = |d: &str| {
        let a = results
            .get(&("ferrosocks".to_owned(), d))
            .map(|v| median(&mut v.clone()));
        let b = results
            .get(&("ferrosocks+log".to_owned(), d))
            .map(|v| median(&mut v.clone()));
        match (a, b) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.1}%", (1.0 - b / a) * 100.0),
            _ => "–".into(),
        }
    };
    println!(
        "\nCost of `log: connect disconnect ioop` to a file: up x1 {}, down x1 {}, up x4 {}, down x4 {}, conn/s {}.",
        cost("up x1 MB/s"),
        cost("down x1 MB/s"),
        cost("up x4 MB/s"),
        cost("down x4 MB/s"),
        cost("conn/s")
    );
}

/// 10,000 sessions held through ferrosocks for `secs`: PSS sampled every 10 s must stay
/// flat, and every descriptor must be released after the sessions close.
fn soak_test(bin: &Path, target: SocketAddr, subjects: &[Subject], secs: u64) {
    let Some(s) = subjects.iter().find(|s| s.name == "ferrosocks") else {
        return;
    };
    let pid = s.child.as_ref().map(Child::id).expect("ferrosocks runs");
    let fds_before = open_fds(pid);
    // Each session takes two descriptors in the proxy; a process cannot go past its hard
    // limit, which an unprivileged (or capability-less) runner cannot raise.
    let limit = ferrosocks_bench::procs::nofile_limit(pid);
    let n = ferrosocks_bench::procs::sessions_within_limit(pid, 10_000);
    if n < 10_000 {
        println!(
            "\nSoak: the proxy may open {limit} descriptors, so {n} sessions instead of 10,000"
        );
    }
    let mut hold = Command::new(bin.join("loadgen"))
        .args([
            "hold",
            &target.to_string(),
            &n.to_string(),
            &secs.to_string(),
            &s.proxy.expect("a proxy").to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("loadgen hold");
    let mut line = String::new();
    let _ = BufReader::new(hold.stdout.take().expect("stdout")).read_line(&mut line);
    println!("\nSoak: {} through ferrosocks for {secs} s", line.trim());
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs.saturating_sub(2)) {
        samples.push((start.elapsed().as_secs(), pss_kib(pid), open_fds(pid)));
        sleep(Duration::from_secs(10).min(Duration::from_secs(secs.max(3) - 2)));
    }
    let _ = hold.wait();
    sleep(Duration::from_secs(2));
    let fds_after = open_fds(pid);
    for (t, pss, fds) in &samples {
        println!("  t={t:>4}s PSS {pss} KiB, {fds} descriptors");
    }
    let (lo, hi) = samples.iter().fold((u64::MAX, 0), |(lo, hi), (_, p, _)| {
        (lo.min(*p), hi.max(*p))
    });
    println!(
        "  PSS range while held: {lo}–{hi} KiB ({:.1}% spread)",
        (hi - lo) as f64 / lo.max(1) as f64 * 100.0
    );
    println!("  descriptors before {fds_before}, after the sessions closed {fds_after}");
}
