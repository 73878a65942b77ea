//! systemd's notify protocol (`Type=notify`), with the `sd-notify` crate: `READY=1` once
//! every `internal:` address is bound (or adopted from socket activation),
//! `RELOADING=1` with `MONOTONIC_USEC` when a reload starts and `READY=1` after it,
//! `STOPPING=1` on SIGTERM, `STATUS=` with the sessions and the connection rate (every
//! 10 s, or every watchdog period when shorter), and
//! `WATCHDOG=1` when the unit sets `WatchdogSec`, sent only after a check that the
//! server is alive: the control loop answers, every accept loop runs, every log writer
//! thread runs.
//!
//! Without `NOTIFY_SOCKET` (not started by systemd) nothing is sent; a socket that
//! cannot be written is reported once, and the server runs on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use server::control::{Control, Controller, Lifecycle};
use server::Server;

/// The notify side of one process.
pub(crate) struct Systemd {
    logger: logsys::Logger,
    enabled: bool,
    /// A failed notification was reported already.
    reported: AtomicBool,
}

impl Systemd {
    /// Notifies when started by systemd (`NOTIFY_SOCKET` set).
    pub(crate) fn from_env(logger: logsys::Logger) -> Arc<Self> {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        Arc::new(Self {
            logger,
            enabled,
            reported: AtomicBool::new(false),
        })
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            if !self.reported.swap(true, Ordering::Relaxed) {
                self.logger.warning(format!(
                    "systemd: cannot notify through NOTIFY_SOCKET: {e}; running on without telling systemd"
                ));
            }
        }
    }

    /// Every `internal:` address is bound: the service is up.
    pub(crate) fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// `STATUS=` only.
    fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// While the server serves: `STATUS=` every period (10 s, or half the watchdog
    /// interval when shorter) and, when the unit asks for a
    /// watchdog, `WATCHDOG=1` at half its interval after checking the server is alive.
    pub(crate) async fn run(
        self: Arc<Self>,
        server: Server,
        controller: Controller,
        listeners: usize,
    ) {
        if !self.enabled {
            return;
        }
        let watchdog = sd_notify::watchdog_enabled();
        let period = watchdog.map_or(Duration::from_secs(10), |w| {
            (w / 2).min(Duration::from_secs(10))
        });
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_status = Instant::now();
        let mut last_accepted = server.accepted();
        loop {
            tick.tick().await;
            if watchdog.is_some() {
                match self.alive(&server, &controller, listeners, period).await {
                    Ok(()) => self.send(&[NotifyState::Watchdog]),
                    Err(why) => self
                        .logger
                        .error(format!("systemd watchdog: not pinging, {why}")),
                }
            }
            if last_status.elapsed() >= period {
                let accepted = server.accepted();
                let rate = (accepted - last_accepted) as f64 / last_status.elapsed().as_secs_f64();
                self.status(&status_text(&server, rate));
                (last_status, last_accepted) = (Instant::now(), accepted);
            }
        }
    }

    /// The checks behind a watchdog ping.
    async fn alive(
        &self,
        server: &Server,
        controller: &Controller,
        listeners: usize,
        limit: Duration,
    ) -> Result<(), String> {
        let answered = tokio::time::timeout(limit, controller.request(Control::Ping)).await;
        if answered.is_err() {
            return Err(format!("the control loop did not answer within {limit:?}"));
        }
        let running = server.accept_loops();
        if running < listeners {
            return Err(format!("{running} of {listeners} accept loops run"));
        }
        if !server.logger().writers_alive() {
            return Err("a log writer thread has ended".into());
        }
        Ok(())
    }
}

/// `STATUS=`: what `systemctl status` shows.
pub(crate) fn status_text(server: &Server, rate: f64) -> String {
    let t = server.registry().totals();
    format!(
        "{} session(s) open, {} accepted, {:.1} conn/s",
        server.registry().len(),
        t.accepted,
        rate
    )
}

impl Lifecycle for Systemd {
    fn serving(&self) {
        self.ready("serving");
    }

    fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    fn reloaded(&self) {
        self.send(&[
            NotifyState::Ready,
            NotifyState::Status("configuration reloaded"),
        ]);
    }

    fn stopping(&self, _sig: i32) {
        self.send(&[NotifyState::Stopping]);
    }
}
