//! What the runners share: ports, the processes they start and what /proc says about
//! them (CPU, PSS, descriptors), `loadgen` runs and their results, TIME_WAIT settling and
//! medians. Blocking and std only: the runners are plain programs that start the proxy,
//! the target server and the load generator as processes.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound and released: a race with other programs is possible but
/// harmless here, the start of whatever binds it fails loudly).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits (at most 15 s) until something accepts on `port`.
pub fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        sleep(Duration::from_millis(50));
    }
}

/// The runners are plain threads, not tokio workers.
#[allow(clippy::disallowed_methods)]
pub fn sleep(d: Duration) {
    std::thread::sleep(d);
}

/// The process and its descendants.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            let after = stat.rsplit_once(") ").map_or("", |(_, a)| a);
            if let Some(ppid) = after.split(' ').nth(1).and_then(|x| x.parse().ok()) {
                parents.push((p, ppid));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// CPU seconds (user + system) of a process tree, counting children that have exited
/// and been waited for (Dante's forked workers) through their parents' `cutime`/`cstime`,
/// so that a worker's exit does not make the difference negative.
pub fn cpu_seconds(pid: u32) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    tree(pid)
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .map(|s| {
            let f: Vec<&str> = s
                .rsplit_once(") ")
                .map_or("", |(_, a)| a)
                .split(' ')
                .collect();
            let t = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
            (t(11) + t(12) + t(13) + t(14)) / hz
        })
        .sum()
}

/// A `Name:  N kB` field of a /proc file (`smaps_rollup`, `status`), in KiB.
pub fn proc_kib(pid: u32, file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// PSS in KiB of a process tree.
pub fn pss_kib(pid: u32) -> u64 {
    tree(pid)
        .iter()
        .filter_map(|p| proc_kib(*p, "smaps_rollup", "Pss"))
        .sum()
}

/// Open descriptors of a process tree.
pub fn open_fds(pid: u32) -> usize {
    tree(pid)
        .iter()
        .filter_map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).ok())
        .map(|d| d.count())
        .sum()
}

/// The process's limit on open descriptors, the one in force (the soft limit:
/// ferrosocks raises it to the hard limit itself); 20,000 if it cannot be read.
pub fn nofile_limit(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|x| x.starts_with("Max open files"))
                .and_then(|x| x.split_whitespace().nth(3)?.parse::<usize>().ok())
        })
        .unwrap_or(20_000)
}

/// The most sessions (two descriptors each) the proxy `pid` can hold, at most `want`:
/// what its descriptor limit leaves after the ones it has open and a margin of 64.
pub fn sessions_within_limit(pid: u32, want: usize) -> usize {
    want.min(nofile_limit(pid).saturating_sub(open_fds(pid) + 64) / 2)
}

/// One load run: its output line, or why it failed (a failed run is left out of the
/// medians and listed).
pub fn loadgen(bin: &Path, args: &[String]) -> Result<String, String> {
    let out = Command::new(bin.join("loadgen"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("loadgen runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        eprintln!("loadgen {args:?} failed: {why}");
        Err(why)
    }
}

/// The first number of a line (`loadgen bulk`'s MB/s).
pub fn first_number(s: &str) -> Option<f64> {
    s.split_whitespace().next()?.parse().ok()
}

/// What `loadgen rate` printed: `R conn/s p50 X ms p99 Y ms (N ok, E errors)`.
#[derive(Debug, Clone, Copy)]
pub struct RateResult {
    /// Connections per second.
    pub rate: Option<f64>,
    /// Latency percentiles, ms.
    pub p50: Option<f64>,
    /// Latency percentiles, ms.
    pub p99: Option<f64>,
    /// Sessions that succeeded.
    pub ok: Option<f64>,
    /// Sessions that failed.
    pub errors: u64,
}

impl RateResult {
    /// Reads `loadgen rate`'s line.
    pub fn parse(out: &str) -> Self {
        let words: Vec<&str> = out.split_whitespace().collect();
        let num = |i: usize| words.get(i).and_then(|w| w.parse::<f64>().ok());
        Self {
            rate: num(0),
            p50: num(3),
            p99: num(6),
            ok: words
                .iter()
                .position(|w| w.starts_with('('))
                .and_then(|i| words[i].trim_start_matches('(').parse::<f64>().ok()),
            errors: words
                .iter()
                .position(|w| *w == "ok,")
                .and_then(|i| words.get(i + 1)?.parse::<u64>().ok())
                .unwrap_or(0),
        }
    }
}

/// The median (NaN of nothing); sorts `v`.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The smallest and largest value (infinities of nothing).
pub fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        })
}

/// A `loadgen serve` on a free loopback port.
pub fn start_target(bin: &Path) -> (Child, SocketAddr) {
    let port = free_port();
    let child = Command::new(bin.join("loadgen"))
        .args(["serve", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()
        .expect("target server");
    wait_port(port);
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// `binary -f conf` (a ferrosocks), once it accepts on `port`; its standard error goes
/// to `conf` with the extension `err`, shown if it ends before it listens.
pub fn start_ferrosocks(binary: &Path, conf: &Path, port: u16) -> Child {
    start_ferrosocks_with_env(binary, conf, port, &[])
}

/// [`start_ferrosocks`] with more environment variables (e.g. `FERROSOCKS_WORKERS`).
pub fn start_ferrosocks_with_env(
    binary: &Path,
    conf: &Path,
    port: u16,
    env: &[(String, String)],
) -> Child {
    let err = conf.with_extension("err");
    let mut child = Command::new(binary)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("-f")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).expect("a file for standard error"))
        .spawn()
        .expect("ferrosocks");
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{} -f {} ended ({status}): {}",
                binary.display(),
                conf.display(),
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        sleep(Duration::from_millis(50));
    }
    child
}

/// Connections in TIME_WAIT, from /proc/net/sockstat.
pub fn time_wait() -> u64 {
    std::fs::read_to_string("/proc/net/sockstat")
        .ok()
        .and_then(|t| {
            let tcp = t.lines().find(|l| l.starts_with("TCP:"))?;
            let words: Vec<&str> = tcp.split_whitespace().collect();
            let i = words.iter().position(|w| *w == "tw")?;
            words.get(i + 1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Whether this process runs in a network namespace of its own: a namespace with no
/// interface but loopback (`/proc/net/dev`, which is the reader's namespace's), made by
/// `unshare --net` for a benchmark. The host's namespace has at least one more.
pub fn in_private_netns() -> bool {
    std::fs::read_to_string("/proc/net/dev").is_ok_and(|t| {
        t.lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .all(|name| name.trim() == "lo")
    })
}

/// TIME_WAIT entries a private namespace keeps, set by [`cap_time_wait`].
pub const TIME_WAIT_CAP: u32 = 1024;

/// In a private network namespace, caps TIME_WAIT at [`TIME_WAIT_CAP`] entries
/// (`net.ipv4.tcp_max_tw_buckets`; past it the kernel closes a connection without
/// keeping it), so that [`settle`] never waits and rounds can follow each other at once,
/// each subject meeting the same empty table. Never touches the host's namespace.
/// Returns whether the cap is set.
pub fn cap_time_wait() -> bool {
    in_private_netns()
        && std::fs::write(
            "/proc/sys/net/ipv4/tcp_max_tw_buckets",
            TIME_WAIT_CAP.to_string(),
        )
        .is_ok()
}

/// Waits (at most 70 s: TIME_WAIT lasts 60) until fewer than 2000 connections are in
/// TIME_WAIT, so that a phase that opens thousands of connections finds free ports.
pub fn settle() {
    let start = Instant::now();
    while time_wait() > 2000 && start.elapsed() < Duration::from_secs(70) {
        sleep(Duration::from_secs(1));
    }
    eprintln!(
        "waited {:.0} s for TIME_WAIT to drain ({} left)",
        start.elapsed().as_secs_f64(),
        time_wait()
    );
}

/// `loadgen hold` started: `n` sessions to `target` through `proxy`, held for `secs`.
pub struct Hold {
    child: Child,
    out: BufReader<ChildStdout>,
    /// Sessions held, as the load generator said.
    pub held: usize,
}

impl Hold {
    /// Opens the sessions and returns once all are held (`extra`: more `loadgen hold`
    /// arguments after the proxy, such as `--echo-every MS`); `None` if the load
    /// generator failed.
    pub fn start(
        bin: &Path,
        target: SocketAddr,
        proxy: SocketAddr,
        n: usize,
        secs: u64,
        extra: &[&str],
    ) -> Option<Self> {
        let mut child = Command::new(bin.join("loadgen"))
            .args([
                "hold",
                &target.to_string(),
                &n.to_string(),
                &secs.to_string(),
                &proxy.to_string(),
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .ok()?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        };
        let mut out = BufReader::new(stdout);
        let mut line = String::new();
        let held = out
            .read_line(&mut line)
            .ok()
            .and_then(|_| line.strip_prefix("held ")?.trim().parse().ok());
        match held {
            Some(held) => Some(Self { child, out, held }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    /// Closes the sessions now (ends the load generator).
    pub fn stop(self) {
        drop(self);
    }

    /// The next line the load generator prints (with `--echo-every`, its echo line,
    /// when its time is up); empty if it ended.
    pub fn next_line(&mut self) -> String {
        let mut line = String::new();
        let _ = self.out.read_line(&mut line);
        line.trim().to_owned()
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // Nothing is sent to a child already waited for.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A [`Hold`] towards a target server of its own, ended so that no client port is left
/// in TIME_WAIT ([`Held::end`]).
pub struct Held {
    target: Option<Child>,
    /// The load generator's sessions.
    pub hold: Hold,
}

impl Held {
    /// A target server, then `n` sessions to it through `proxy` for at most `secs`
    /// (`extra`: as [`Hold::start`]). A hold that fails (connect fails with
    /// EADDRNOTAVAIL while the machine has tens of thousands of connections in
    /// TIME_WAIT, other jobs' included) is tried once more once they have drained.
    pub fn start(
        bin: &Path,
        proxy: SocketAddr,
        n: usize,
        secs: u64,
        extra: &[&str],
    ) -> Option<Self> {
        for attempt in 0..2 {
            if attempt > 0 {
                eprintln!("holding {n} sessions failed; once more after TIME_WAIT drains");
                settle();
            }
            let (mut target, addr) = start_target(bin);
            if let Some(hold) = Hold::start(bin, addr, proxy, n, secs, extra) {
                return Some(Self {
                    target: Some(target),
                    hold,
                });
            }
            let _ = target.kill();
            let _ = target.wait();
        }
        None
    }

    /// Ends the sessions, the target server first: its sockets send their FIN first, so
    /// TIME_WAIT falls on its side and on the proxy's accepted sockets, neither of which
    /// takes a port from the ephemeral range; the proxy passes the end of file on, and
    /// then the load generator closes. Holds of 10,000 sessions one after another,
    /// closed by the client, would run out of client ports for a minute.
    pub fn end(mut self) {
        if let Some(mut t) = self.target.take() {
            let _ = t.kill();
            let _ = t.wait();
        }
        sleep(Duration::from_secs(1));
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(mut t) = self.target.take() {
            let _ = t.kill();
            let _ = t.wait();
        }
    }
}

/// Holds `n` idle sessions to `target` through `proxy` (the process `pid`) and returns
/// the PSS growth per session, in KiB.
pub fn idle_pss(
    bin: &Path,
    target: SocketAddr,
    proxy: SocketAddr,
    pid: u32,
    n: usize,
) -> Option<f64> {
    let before = pss_kib(pid);
    let hold = Hold::start(bin, target, proxy, n, 60, &[])?;
    sleep(Duration::from_millis(500));
    let per = (pss_kib(pid).saturating_sub(before)) as f64 / n as f64;
    hold.stop();
    sleep(Duration::from_millis(500));
    Some(per)
}
