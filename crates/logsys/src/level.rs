//! Levels and subsystems, defined once (ircu's model, `reference/ircu-logging.md` §4).

use std::fmt;

/// Severity, most severe first. One threshold per subsystem applies to all its outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Critical failure (termination).
    Crit,
    /// Serious error an operator must act on.
    Error,
    /// Recoverable problem.
    Warning,
    /// Important status.
    Notice,
    /// Accounting: traffic records.
    Trace,
    /// Other information.
    Info,
    /// Developer detail.
    Debug,
}

impl Level {
    /// All levels, most severe first.
    pub const ALL: [Self; 7] = [
        Self::Crit,
        Self::Error,
        Self::Warning,
        Self::Notice,
        Self::Trace,
        Self::Info,
        Self::Debug,
    ];

    /// The name used in configuration and JSON (`crit` … `debug`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Crit => "crit",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Notice => "notice",
            Self::Trace => "trace",
            Self::Info => "info",
            Self::Debug => "debug",
        }
    }

    /// Parses a level name, case-insensitively (`critical` and `err` too).
    pub fn from_name(name: &str) -> Option<Self> {
        let n = name.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|l| l.name() == n)
            .or(match n.as_str() {
                "critical" | "emerg" | "alert" => Some(Self::Crit),
                "err" => Some(Self::Error),
                _ => None,
            })
    }

    /// The syslog severity (TRACE and INFO are both `info`).
    pub fn syslog_severity(self) -> u8 {
        match self {
            Self::Crit => 2,
            Self::Error => 3,
            Self::Warning => 4,
            Self::Notice => 5,
            Self::Trace | Self::Info => 6,
            Self::Debug => 7,
        }
    }

    /// The word Dante prints after the pid.
    pub fn dante(self) -> traffic_log::Level {
        match self {
            Self::Crit => traffic_log::Level::Critical,
            Self::Error => traffic_log::Level::Error,
            Self::Warning => traffic_log::Level::Warning,
            Self::Notice => traffic_log::Level::Notice,
            Self::Trace | Self::Info => traffic_log::Level::Info,
            Self::Debug => traffic_log::Level::Debug,
        }
    }

    /// The threshold OpenVPN-style `verb: N` (0–11) sets.
    ///
    /// | verb | shows |
    /// |---|---|
    /// | 0 | crit |
    /// | 1 | + error, warning |
    /// | 2 | + notice |
    /// | 3 | + trace (traffic records) — the usual setting |
    /// | 4, 5 | + info |
    /// | 6–11 | + debug (6–8 as Dante `debug: 1`, 9–11 as `debug: 2`) |
    pub fn for_verb(verb: u8) -> Self {
        match verb {
            0 => Self::Crit,
            1 => Self::Warning,
            2 => Self::Notice,
            3 => Self::Trace,
            4 | 5 => Self::Info,
            _ => Self::Debug,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What part of the server a record comes from. Stable names: scripts and
/// configuration files rely on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subsystem(u8);

impl Subsystem {
    /// Start and stop, signals, limits, the status dump.
    pub const SYSTEM: Self = Self(0);
    /// Configuration errors and warnings, reloads.
    pub const CONFIG: Self = Self(1);
    /// Accepted clients and client-rule decisions (`tcp/accept`).
    pub const CLIENT: Self = Self(2);
    /// Method choice, password and ident results (never passwords).
    pub const AUTH: Self = Self(3);
    /// SOCKS requests and socks-rule decisions (`tcp/connect [:`, blocks).
    pub const REQUEST: Self = Self(4);
    /// I/O records and end-of-session summaries: the accounting records.
    pub const TRAFFIC: Self = Self(5);
    /// UDP associations and datagrams.
    pub const UDP: Self = Self(6);
    /// Name resolution and its failures.
    pub const RESOLVER: Self = Self(7);
    /// Socket errors on either side.
    pub const SOCKET: Self = Self(8);
    /// Server chaining.
    pub const ROUTE: Self = Self(9);
    /// The management interface.
    pub const MGMT: Self = Self(10);
    /// Status files and metrics.
    pub const STATUS: Self = Self(11);
    /// Log shipping and forwarding.
    pub const FORWARD: Self = Self(12);
    /// Developer detail.
    pub const DEBUG: Self = Self(13);

    /// Every subsystem, in order.
    pub const ALL: [Self; 14] = [
        Self::SYSTEM,
        Self::CONFIG,
        Self::CLIENT,
        Self::AUTH,
        Self::REQUEST,
        Self::TRAFFIC,
        Self::UDP,
        Self::RESOLVER,
        Self::SOCKET,
        Self::ROUTE,
        Self::MGMT,
        Self::STATUS,
        Self::FORWARD,
        Self::DEBUG,
    ];

    const NAMES: [&'static str; 14] = [
        "SYSTEM", "CONFIG", "CLIENT", "AUTH", "REQUEST", "TRAFFIC", "UDP", "RESOLVER", "SOCKET",
        "ROUTE", "MGMT", "STATUS", "FORWARD", "DEBUG",
    ];

    /// The name (`TRAFFIC`).
    pub fn name(self) -> &'static str {
        Self::NAMES[usize::from(self.0)]
    }

    /// Parses a name, case-insensitively (`traffic`, `TRAFFIC`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// Index into per-subsystem tables.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The threshold when nothing is configured (`None`: off).
    pub fn default_level(self) -> Option<Level> {
        match self {
            Self::TRAFFIC | Self::UDP => Some(Level::Trace),
            Self::MGMT | Self::STATUS | Self::FORWARD => Some(Level::Notice),
            Self::DEBUG => None,
            _ => Some(Level::Info),
        }
    }

    /// Whether records are pushed to subscribed operators when nothing is configured.
    pub fn default_operators(self) -> bool {
        matches!(self, Self::CONFIG | Self::MGMT)
    }
}

impl fmt::Display for Subsystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_levels_order() {
        for s in Subsystem::ALL {
            assert_eq!(Subsystem::from_name(&s.name().to_lowercase()), Some(s));
        }
        for l in Level::ALL {
            assert_eq!(Level::from_name(&l.name().to_uppercase()), Some(l));
        }
        assert!(Level::Crit < Level::Trace && Level::Trace < Level::Info);
        assert_eq!(Level::Debug.syslog_severity(), 7);
        assert_eq!(Level::Trace.dante(), traffic_log::Level::Info);
        assert_eq!(Level::for_verb(3), Level::Trace);
        assert_eq!(Level::for_verb(11), Level::Debug);
    }
}
