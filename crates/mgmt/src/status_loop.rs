//! The status file's life: written at start-up, every `status.interval` seconds, at once
//! on SIGUSR2 (or `signal SIGUSR2`), and a last time at a clean exit. Each version is
//! rendered from one registry snapshot ([`crate::status::render`]) and replaces the file
//! atomically ([`crate::status_file`]); a failing write is reported once per change of
//! state on the STATUS subsystem and retried at the next interval, the previous complete
//! file staying in place. `status.*` settings follow a reload.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use logsys::{Level, Subsystem};
use server::Server;
use sockd_conf::StatusConfig;
use tokio_util::sync::CancellationToken;

use crate::status_file::StatusWriter;

/// How long to sleep when no status file is configured (a reload may add one; SIGUSR2
/// wakes the loop too).
const IDLE: Duration = Duration::from_secs(60);

/// Runs until `stop` is cancelled, then writes the file one last time.
pub async fn run(server: Server, stop: CancellationToken) {
    let mut writer: Option<StatusWriter> = None;
    loop {
        let status = server.current().config.status.clone();
        if let Some(st) = &status {
            write(&server, st, &mut writer).await;
        }
        let wait = status
            .as_ref()
            .map_or(IDLE, |s| Duration::from_secs(s.interval.max(1)));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = server.status_requested().notified() => {}
            () = stop.cancelled() => break,
        }
    }
    if let Some(st) = server.current().config.status.clone() {
        write(&server, &st, &mut writer).await;
    }
}

/// One rewrite: snapshot, render and write off the async workers. The write blocks
/// (fsync), and so, for as long, does rendering many sessions (about 30 ms for 10,000
/// here, docs/PERFORMANCE.md): on a worker, the relays queued behind it would wait.
async fn write(server: &Server, st: &StatusConfig, writer: &mut Option<StatusWriter>) {
    let registry = Arc::clone(server.registry());
    let version = st.version;
    let mut w = writer
        .take()
        .unwrap_or_else(|| StatusWriter::new(st.interval));
    w.set_interval(st.interval);
    let path = st.file.clone();
    let done = tokio::task::spawn_blocking(move || {
        let text = crate::status::render(
            version,
            &registry.snapshot(),
            &registry.totals(),
            SystemTime::now(),
            "\n",
        );
        let report = w.write(&path, text.as_bytes());
        (w, report)
    })
    .await;
    if let Ok((w, report)) = done {
        if let Some(report) = report {
            let level = if w.failing() {
                Level::Error
            } else {
                Level::Notice
            };
            server.logger().at(Subsystem::STATUS, level, report);
        }
        *writer = Some(w);
    }
}
