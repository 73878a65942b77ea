//! `logdir*` (DESIGN.md §5): the multilog-style log directory and its shipping.

use std::path::PathBuf;

use super::{Parser, Res};
use crate::lexer::Pos;
use crate::model::{HostAddr, LogDirConfig, ShipTarget};

/// The `logdir*` settings read so far (they may come in any order); those that need a
/// warning keep their keyword's position.
#[derive(Default)]
pub(super) struct LogDirSettings {
    path: Option<PathBuf>,
    size: Option<(u64, Pos)>,
    count: Option<(u32, Pos)>,
    stamp: Option<(bool, Pos)>,
    ship: Option<(ShipTarget, Pos)>,
    timeout: Option<(u64, Pos)>,
}

/// Whether `key` is one of these keywords.
pub(super) fn is_logdir_key(key: &str) -> bool {
    matches!(
        key,
        "logdir"
            | "logdir.size"
            | "logdir.count"
            | "logdir.stamp"
            | "logdir.ship"
            | "logdir.ship.timeout"
    )
}

impl Parser<'_> {
    pub(super) fn logdir_setting(&mut self, key: &str, pos: Pos) -> Res<()> {
        match key {
            "logdir" => {
                let (w, wpos) = self.word("a directory path", key)?;
                self.logdir.path = Some(PathBuf::from(w));
                self.cfg.origins.logdir = Some(wpos);
            }
            "logdir.size" => {
                let (n, npos) = self.number_at(key)?;
                if !(4096..=16_777_215).contains(&n) {
                    return Err(self.diag(
                        npos,
                        format!("logdir.size {n} out of range (expected 4096 to 16777215 bytes, as multilog's s)"),
                    ));
                }
                self.logdir.size = Some((n, pos));
            }
            "logdir.count" => {
                let (n, npos) = self.number_at(key)?;
                if !(2..=100_000).contains(&n) {
                    return Err(self.diag(
                        npos,
                        format!("logdir.count {n} out of range (expected 2 to 100000 files, current included, as multilog's n)"),
                    ));
                }
                self.logdir.count = Some((n as u32, pos));
            }
            "logdir.stamp" => {
                let on = self.on_off(key)?;
                self.logdir.stamp = Some((on, pos));
            }
            "logdir.ship" => {
                let (host, _) = self.host_addr(key)?;
                if !self.at_port_word() {
                    return Err(self.expected("\"port = N\"", key));
                }
                let port = self.port_value(key)?;
                let host = match host {
                    HostAddr::Ip(ip) => ip.to_string(),
                    HostAddr::Name(n) => n,
                };
                self.logdir.ship = Some((ShipTarget { host, port }, pos));
            }
            "logdir.ship.timeout" => {
                let (n, npos) = self.number_at(key)?;
                if !(1..=86_400).contains(&n) {
                    return Err(self.diag(
                        npos,
                        format!(
                            "logdir.ship.timeout {n} out of range (expected 1 to 86400 seconds)"
                        ),
                    ));
                }
                self.logdir.timeout = Some((n, pos));
            }
            _ => return Err(self.not_here(key, pos, None)),
        }
        Ok(())
    }

    /// Builds `Config.logdir`, warning about settings that do nothing without the one
    /// they refine.
    pub(super) fn settle_logdir(&mut self) {
        let s = std::mem::take(&mut self.logdir);
        let Some(path) = s.path else {
            for (key, pos) in [
                s.size.map(|(_, p)| ("logdir.size", p)),
                s.count.map(|(_, p)| ("logdir.count", p)),
                s.stamp.map(|(_, p)| ("logdir.stamp", p)),
                s.ship.as_ref().map(|(_, p)| ("logdir.ship", *p)),
                s.timeout.map(|(_, p)| ("logdir.ship.timeout", p)),
            ]
            .into_iter()
            .flatten()
            {
                self.without(pos, key, "logdir");
            }
            return;
        };
        if let (None, Some((_, pos))) = (&s.ship, s.timeout) {
            self.without(pos, "logdir.ship.timeout", "logdir.ship");
        }
        self.cfg.logdir = Some(LogDirConfig {
            path,
            size: s.size.map_or(LogDirConfig::DEFAULT_SIZE, |(n, _)| n),
            count: s.count.map_or(LogDirConfig::DEFAULT_COUNT, |(n, _)| n),
            stamp: s.stamp.is_some_and(|(on, _)| on),
            ship: s.ship.map(|(t, _)| t),
            ship_timeout: s
                .timeout
                .map_or(LogDirConfig::DEFAULT_SHIP_TIMEOUT, |(n, _)| n),
        });
    }
}
