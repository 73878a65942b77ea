//! How many Dante traffic lines per second the file sink sustains, end to end: records
//! built, routed and formatted on the caller's thread, written in batches by the sink's
//! writer thread.
//!
//! The producer sends in batches and waits (`flush`) after each, so the figure is the
//! rate the sink keeps up with, with no line dropped (the run checks the file's line
//! count). Run: `cargo run --release -p ferrosocks-bench --bin log-throughput [LINES]
//! [text|json]`: text and JSON side by side, or one of them (to count one format's
//! instructions under callgrind: 2 runs of different LINES, the difference per line).

use std::time::Instant;

use logsys::{Format, Level, LogConfig, Logger, SinkSpec, Subsystem, Target};

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let line = "pass(2): tcp/connect -: 127.0.0.1.44460 127.0.0.1.21014 -> 127.0.0.1.40779 127.0.0.1.21010 (1460)";
    let record = traffic_log::Record::parse(line).expect("a valid record");
    let only = std::env::args().nth(2);
    for format in [Format::Text, Format::Json] {
        if only
            .as_deref()
            .is_some_and(|o| !format!("{format:?}").eq_ignore_ascii_case(o))
        {
            continue;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("traffic.log");
        let config = LogConfig {
            logoutput: vec![SinkSpec {
                target: Target::File(path.clone()),
                format,
            }],
            ..LogConfig::default()
        };
        let log = Logger::start("ferrosocks", 1, config);
        let batch = 8192;
        let start = Instant::now();
        let mut sent = 0;
        while sent < total {
            for _ in 0..batch.min(total - sent) {
                log.traffic(Subsystem::TRAFFIC, Level::Trace, record.clone());
            }
            sent += batch.min(total - sent);
            log.flush();
        }
        let secs = start.elapsed().as_secs_f64();
        let written = std::fs::read_to_string(&path)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        assert_eq!(written, total, "lines were lost");
        println!(
            "{:?}: {total} traffic lines in {secs:.2} s = {:.0} lines/s ({:.1} MB/s)",
            format,
            total as f64 / secs,
            std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / secs / 1e6
        );
    }
}
