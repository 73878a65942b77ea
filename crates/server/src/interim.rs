//! Interim traffic records (`log.interim: SECONDS`, global or per socks rule): while a
//! relayed session is open, every SECONDS it gets a record of the bytes moved since it
//! started, so that accounting sees long sessions before they end.
//!
//! The record is `traffic_log::Event::Interim`, written through the rule's
//! [`RuleLog::interim`] (only when the rule logs `disconnect`, so that every session
//! with interim records also gets the summary that supersedes them). Its text is a `-:`
//! line with a description, the form Dante uses for notices and temporary errors, so
//! readers of Dante's format never add it to the `]:` totals (traffic_log::record).
//!
//! The timer runs beside the relay in the session's task ([`with_interim`]): the relay
//! itself is unchanged, and a session without `log.interim` pays nothing (the timer and
//! the relay are boxed only when records are due).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio_util::either::Either;

use tokio::time::Instant;

use logsys::Logger;
use traffic_log::{Command, Side, Summary};

use crate::registry::Counters;
use crate::tlog::{leg, RuleLog};

/// What an interim record of one session needs.
pub(crate) struct Interim<'a> {
    /// Seconds between records (0: none).
    pub(crate) every: u64,
    pub(crate) slog: &'a RuleLog,
    pub(crate) log: &'a Logger,
    pub(crate) counters: &'a Counters,
    /// The client side, `CLIENT PROXY-INT`, as the summary will print it.
    pub(crate) src: &'a Side,
    /// The target side, `PROXY-EXT TARGET`.
    pub(crate) dst: &'a Side,
    pub(crate) started: Instant,
}

impl Interim<'_> {
    fn emit(&self) {
        let c = self.counters;
        let summary = Summary {
            client: leg(
                c.client_written.bytes(),
                self.src.clone(),
                c.client_read.bytes(),
            ),
            target: Some(leg(
                c.target_written.bytes(),
                self.dst.clone(),
                c.target_read.bytes(),
            )),
        };
        self.slog
            .interim(self.log, summary, self.started.elapsed().as_secs());
    }
}

/// Runs `relay` to its end, writing an interim record every `interim.every` seconds
/// meanwhile (none when that is 0, the rule does not log `disconnect` or the command is
/// not CONNECT). With records,
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
    // CONNECT only: a BIND's relay has the bindreply rule, whose summary swaps the legs
    // (its interim record would not match it), and UDP has no relay of this kind.
    if interim.every == 0
        || !interim.slog.flags.disconnect
        || interim.slog.command != Command::Connect
    {
        return Either::Left(relay);
    }
    Either::Right(Box::pin(ticking(interim, relay)))
}

async fn ticking<F: Future>(interim: Interim<'_>, relay: F) -> F::Output {
    let period = Duration::from_secs(interim.every);
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(relay);
    loop {
        tokio::select! {
            out = &mut relay => return out,
            _ = ticks.tick() => interim.emit(),
        }
    }
}
