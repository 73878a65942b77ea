//! Bounds under load, at a size the test suite can afford (bench/run.sh does 10,000):
//! sessions held with flat memory, and every descriptor released once they close.

use std::time::{Duration, Instant};

use crate::support::*;

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Private (anonymous) resident memory: unlike PSS it does not move when other
/// ferrosocks processes of the parallel test suite start or stop.
fn anon_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("RssAnon:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn held_sessions_keep_memory_flat_and_release_every_descriptor() {
    let echo = Helper::echo();
    let p = Proxy::start(&conf("error"));
    let pid = p.child.id();
    // The runtime opens its own descriptors (epoll, eventfd, signal pipes) after the
    // ready line: count from after a first session.
    let (mut warm, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0);
    warm.send(b"w");
    assert_eq!(warm.read_exact(1), b"w");
    drop(warm);
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(Duration::from_millis(300));
    let baseline_fds = fds(pid);
    let n = 300;
    let mut rounds = Vec::new();
    for _ in 0..4 {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            let (mut c, reply) = Raw::connect_v4(p.addr, echo.addr);
            assert_eq!(reply[1], 0);
            c.send(b"x");
            assert_eq!(c.read_exact(1), b"x");
            held.push(c);
        }
        assert!(
            fds(pid) >= baseline_fds + 2 * n,
            "two descriptors per session"
        );
        // Memory while the sessions sit idle, sampled three times.
        let mut samples = Vec::new();
        for _ in 0..3 {
            samples.push(anon_kib(pid));
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(300));
        }
        let (lo, hi) = (
            *samples.iter().min().unwrap(),
            *samples.iter().max().unwrap(),
        );
        assert!(
            hi - lo <= lo / 10,
            "memory not flat while idle: {samples:?}"
        );
        rounds.push(hi);
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(15);
        while fds(pid) != baseline_fds {
            assert!(
                Instant::now() < deadline,
                "descriptors not released: {} now, {baseline_fds} before",
                fds(pid)
            );
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // glibc gives each worker thread its own arena, so PSS can step up once when another
    // thread does the allocating; it must not keep growing with every round.
    assert!(
        rounds[3] <= 2 * rounds[0],
        "memory grew between rounds: {rounds:?}"
    );
    // And no session is left behind: the status dump counts none.
    p.signal(libc::SIGUSR1);
    let m = p.wait_for("the dump header", |m| {
        m.starts_with("ferrosocks v") && m.contains(" up ")
    });
    let head = m
        .iter()
        .rev()
        .find(|m| m.starts_with("ferrosocks v") && m.contains(" up "))
        .unwrap();
    assert!(head.ends_with(" c: 0"), "{head}");
}
