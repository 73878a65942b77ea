//! How many Dante text lines per second `ferrosocks log stats` accounts on one core:
//! the accounting crate over a log held in memory (no disk, no decompression), the mix
//! of the real Dante 1.4.2 sample with `log: connect disconnect iooperation` (per
//! session: a start line, I/O lines, a summary), with users, clients and targets varied
//! so that grouping has work to do.
//!
//! Run: `cargo run --release -p ferrosocks-bench --bin log-stats [LINES]` (default
//! 2,000,000 lines, about 355 MB; bounded by LINES). Prints lines/s and MB/s for no
//! grouping and for `--by user --by target`, per second of wall-clock time and per
//! second of the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`: the per-core figure,
//! which other load on a shared machine disturbs less).

use std::io::BufReader;
use std::time::Instant;

use accounting::account::Options;
use accounting::decode::Context;
use accounting::lines::{Chunk, Lines};
use accounting::{Accounting, Dimension};

/// One session of the sample, with `{U}` (user), `{C}` (client octet), `{P}` (client
/// port) and `{T}` (target octet) to fill in.
const SESSION: &str = "\
Nov 21 09:43:57 (1795254237.374207) danted[29852]: info: pass(1): tcp/connect [: username%user{U}@10.0.0.{C}.{P} 127.0.0.1.21013 -> 127.0.0.1.44301 192.0.2.{T}.443
Nov 21 09:43:57 (1795254237.374554) danted[29852]: info: pass(1): tcp/connect -: username%user{U}@10.0.0.{C}.{P} 127.0.0.1.21013 -> 127.0.0.1.44301 192.0.2.{T}.443 (86)
Nov 21 09:43:57 (1795254237.374958) danted[29852]: info: pass(1): tcp/connect -: 192.0.2.{T}.443 127.0.0.1.44301 -> 127.0.0.1.21013 username%user{U}@10.0.0.{C}.{P} (190)
Nov 21 09:43:57 (1795254237.375067) danted[29852]: info: pass(1): tcp/connect -: 192.0.2.{T}.443 127.0.0.1.44301 -> 127.0.0.1.21013 username%user{U}@10.0.0.{C}.{P} (65536)
Nov 21 09:43:57 (1795254237.375167) danted[29852]: info: pass(1): tcp/connect -: 192.0.2.{T}.443 127.0.0.1.44301 -> 127.0.0.1.21013 username%user{U}@10.0.0.{C}.{P} (32768)
Nov 21 09:43:57 (1795254237.375341) danted[29852]: info: pass(1): tcp/connect -: 192.0.2.{T}.443 127.0.0.1.44301 -> 127.0.0.1.21013 username%user{U}@10.0.0.{C}.{P} (0)
Nov 21 09:43:57 (1795254237.375387) danted[29852]: info: pass(1): tcp/connect ]: 98494 -> username%user{U}@10.0.0.{C}.{P} 127.0.0.1.21013 -> 86, 86 -> 127.0.0.1.44301 192.0.2.{T}.443 -> 98494: remote peer closed.  Session duration: 0s
";

/// The calling thread's CPU time, in seconds.
fn thread_cpu() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let per = SESSION.lines().count();
    let mut log = String::with_capacity(total * 130);
    let mut i = 0usize;
    while i * per < total {
        let s = SESSION
            .replace("{U}", &(i % 50).to_string())
            .replace("{C}", &(i % 200 + 1).to_string())
            .replace("{P}", &(i % 60_000 + 1024).to_string())
            .replace("{T}", &(i % 100 + 1).to_string());
        log.push_str(&s);
        i += 1;
    }
    let lines = i * per;
    for by in [vec![], vec![Dimension::User, Dimension::Target]] {
        let mut acc = Accounting::new(Options {
            by: by.clone(),
            since: None,
            until: None,
            context: Context {
                year: 2026,
                now: None,
            },
        });
        let start = Instant::now();
        let cpu_start = thread_cpu();
        let mut reader = Lines::new(BufReader::with_capacity(1 << 16, log.as_bytes()));
        let mut n = 0u64;
        while let Some(chunk) = reader.next_line().expect("reading memory") {
            n += 1;
            match chunk {
                Chunk::Line { text, complete } => acc.feed_line("bench", n, text, complete),
                Chunk::TooLong(len) => acc.too_long("bench", n, len),
            }
        }
        let report = acc.finish();
        let secs = start.elapsed().as_secs_f64();
        let cpu = thread_cpu() - cpu_start;
        assert_eq!(report.total.sessions as usize, i, "every session counted");
        assert_eq!(report.malformed.count, 0);
        let names: Vec<&str> = by.iter().map(|d| d.name()).collect();
        println!(
            "log stats --by [{}]: {lines} lines, {:.1} MB in {secs:.2} s ({cpu:.2} s CPU): {:.2} M lines/s, {:.0} MB/s; per CPU second {:.2} M lines, {:.0} MB; {} groups",
            names.join(","),
            log.len() as f64 / 1e6,
            lines as f64 / secs / 1e6,
            log.len() as f64 / secs / 1e6,
            lines as f64 / cpu / 1e6,
            log.len() as f64 / cpu / 1e6,
            report.groups.len().max(1)
        );
    }
}
