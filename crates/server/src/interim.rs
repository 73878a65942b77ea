//! Interim traffic records (`log.interim: SECONDS`, global or per socks rule): while a
//! session is open, every SECONDS it gets a record of the bytes moved since it started,
//! so that accounting sees long sessions before they end.
//!
//! The record is `traffic_log::Event::Interim`, written through the rule's
//! [`RuleLog::interim`] (only when the rule logs `disconnect`, so that every session
//! with interim records also gets the summary that supersedes them). Its text is a `-:`
//! line with a description, the form Dante uses for notices and temporary errors, so
//! readers of Dante's format never add it to the `]:` totals (traffic_log::record).
//! Each record has exactly the sides and legs of the summary the session will end
//! with, under the same rule:
//!
//! - CONNECT: `CLIENT PROXY-INT -> PROXY-EXT TARGET`, the client's leg first.
//! - BIND: the `bindreply` rule's record, turned round as its summary is (the remote
//!   host's leg first: `REMOTE PROXY-EXT -> PROXY-INT CLIENT`); its period is the
//!   `bindreply` rule's `log.interim`.
//! - UDP ASSOCIATE: one record per external socket, as one summary per socket
//!   (`CLIENT-UDP PROXY-INTUDP -> PROXY-EXT TARGET` with packet counts); the UDP loop
//!   ticks [`Ticks`] itself and builds the legs (`crate::udp`).
//!
//! The timer of a TCP session runs beside the relay in the session's task
//! ([`with_interim`]): the relay itself is unchanged, and a session without
//! `log.interim` pays nothing (the timer and the relay are boxed only when records are
//! due).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Interval};
use tokio_util::either::Either;

use logsys::Logger;
use traffic_log::{Command, Side, Summary};

use crate::registry::Counters;
use crate::session::reversed;
use crate::tlog::{leg, RuleLog};

/// What an interim record of one relayed TCP session needs.
pub(crate) struct Interim<'a> {
    /// Seconds between records (0: none).
    pub(crate) every: u64,
    pub(crate) slog: &'a RuleLog,
    pub(crate) log: &'a Logger,
    pub(crate) counters: &'a Counters,
    /// The client side, `CLIENT PROXY-INT`, as the relay's I/O lines print it.
    pub(crate) src: &'a Side,
    /// The other side, `PROXY-EXT TARGET` (for BIND `PROXY-EXT REMOTE`).
    pub(crate) dst: &'a Side,
    pub(crate) started: Instant,
}

impl Interim<'_> {
    /// The counts so far, in the shape of the session's summary.
    fn summary(&self) -> Summary {
        let c = self.counters;
        let (wc, rc) = (c.client_written.bytes(), c.client_read.bytes());
        let (wt, rt) = (c.target_written.bytes(), c.target_read.bytes());
        if self.slog.command == Command::BindReply {
            // Dante's bindreply summary: the remote host is its "local client".
            return Summary {
                client: leg(wt, reversed(self.dst), rt),
                target: Some(leg(wc, reversed(self.src), rc)),
            };
        }
        Summary {
            client: leg(wc, self.src.clone(), rc),
            target: Some(leg(wt, self.dst.clone(), rt)),
        }
    }

    fn emit(&self) {
        self.slog
            .interim(self.log, self.summary(), self.started.elapsed().as_secs());
    }
}

/// Runs `relay` to its end, writing an interim record every `interim.every` seconds
/// meanwhile (none when that is 0 or the rule does not log `disconnect`). With records,
/// the relay and its timer are boxed, so that sessions without them stay as small as
/// before (ARCHITECTURE.md, "Session size").
///
/// A plain function returning one of two futures, not an `async fn`: an `async fn` holds
/// its argument `relay` in its own state and again as the future it awaits, which made
/// every relayed session's task 1.7 KB bigger.
pub(crate) fn with_interim<'a, F: Future + 'a>(
    interim: Interim<'a>,
    relay: F,
) -> Either<F, Pin<Box<impl Future<Output = F::Output> + 'a>>> {
    if !due(interim.every, interim.slog) {
        return Either::Left(relay);
    }
    Either::Right(Box::pin(ticking(interim, relay)))
}

/// Whether a rule writes interim records every `every` seconds.
fn due(every: u64, slog: &RuleLog) -> bool {
    every > 0 && slog.flags.disconnect
}

async fn ticking<F: Future>(interim: Interim<'_>, relay: F) -> F::Output {
    let mut ticks = Ticks::new(interim.every, interim.slog);
    tokio::pin!(relay);
    loop {
        tokio::select! {
            out = &mut relay => return out,
            () = ticks.tick() => interim.emit(),
        }
    }
}

/// The interim timer of a session whose loop writes its own records (UDP): a tick
/// every period from now, or never when no records are due. Ticks are not activity:
/// a loop with an idle timeout keeps its own last-activity deadline beside them.
pub(crate) struct Ticks(Option<Interval>);

impl Ticks {
    /// Ticks every `every` seconds when `slog` writes interim records.
    pub(crate) fn new(every: u64, slog: &RuleLog) -> Self {
        if !due(every, slog) {
            return Self(None);
        }
        let period = Duration::from_secs(every);
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self(Some(ticks))
    }

    /// The next tick (pending forever without records). Cancel-safe.
    pub(crate) async fn tick(&mut self) {
        match &mut self.0 {
            Some(t) => {
                t.tick().await;
            }
            None => std::future::pending().await,
        }
    }
}
