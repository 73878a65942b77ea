//! The prefix of every Dante log line written to a file or stdio.
//!
//! `strftime("%h %e %T ")` local time, `(` epoch seconds `.` microseconds padded to six
//! digits `) `, program name, `[pid]: `, level word, `: ` (Dante 1.4.x `getlogprefix()`).

use std::fmt;

use crate::ParseError;

/// Severity of a log line, with Dante's (syslog's) words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `emergency`
    Emergency,
    /// `alert`
    Alert,
    /// `critical`
    Critical,
    /// `error`
    Error,
    /// `warning`
    Warning,
    /// `notice`
    Notice,
    /// `info`
    Info,
    /// `debug`
    Debug,
}

impl Level {
    /// All levels, most severe first.
    pub const ALL: [Self; 8] = [
        Self::Emergency,
        Self::Alert,
        Self::Critical,
        Self::Error,
        Self::Warning,
        Self::Notice,
        Self::Info,
        Self::Debug,
    ];

    /// The word Dante prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Emergency => "emergency",
            Self::Alert => "alert",
            Self::Critical => "critical",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Notice => "notice",
            Self::Info => "info",
            Self::Debug => "debug",
        }
    }

    /// The syslog severity number (0 emergency … 7 debug).
    pub fn syslog_severity(self) -> u8 {
        self as u8
    }

    /// Parses a level word.
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == word)
    }
}

/// Broken-down local time, as the caller's clock and time zone give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// 1–12.
    pub month: u8,
    /// 1–31.
    pub day: u8,
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
    /// 0–60.
    pub second: u8,
}

/// The parts of a line prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    /// Local wall-clock time.
    pub local: LocalTime,
    /// Seconds since the epoch.
    pub epoch_secs: i64,
    /// Microseconds within the second.
    pub micros: u32,
    /// Program name (`ferrosocks`, `danted`).
    pub program: String,
    /// Process id.
    pub pid: u32,
    /// Severity.
    pub level: Level,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.local;
        let month = MONTHS
            .get(usize::from(t.month).wrapping_sub(1))
            .unwrap_or(&"???");
        write!(
            f,
            "{month} {:>2} {:02}:{:02}:{:02} ({}.{:06}) {}[{}]: {}: ",
            t.day,
            t.hour,
            t.minute,
            t.second,
            self.epoch_secs,
            self.micros,
            self.program,
            self.pid,
            self.level.as_str()
        )
    }
}

impl Prefix {
    /// Splits a whole log line into its prefix and its message.
    pub fn parse_line(line: &str) -> Result<(Self, &str), ParseError> {
        let bad = || ParseError::Verdict(line.into());
        let month = MONTHS
            .iter()
            .position(|m| line.starts_with(m))
            .ok_or_else(bad)?;
        let rest = line.get(4..).ok_or_else(bad)?;
        let day = rest.get(..2).ok_or_else(bad)?.trim_start();
        let rest = rest.get(3..).ok_or_else(bad)?;
        let (clock, rest) = rest.split_once(" (").ok_or_else(bad)?;
        let mut hms = clock.split(':').map(|p| p.parse::<u8>());
        let (Some(Ok(hour)), Some(Ok(minute)), Some(Ok(second)), None) =
            (hms.next(), hms.next(), hms.next(), hms.next())
        else {
            return Err(bad());
        };
        let (stamp, rest) = rest.split_once(") ").ok_or_else(bad)?;
        let (secs, micros) = stamp.split_once('.').ok_or_else(bad)?;
        let (program, rest) = rest.split_once('[').ok_or_else(bad)?;
        let (pid, rest) = rest.split_once("]: ").ok_or_else(bad)?;
        let (level, msg) = rest.split_once(": ").ok_or_else(bad)?;
        let prefix = Self {
            local: LocalTime {
                month: month as u8 + 1,
                day: day.parse().map_err(|_| bad())?,
                hour,
                minute,
                second,
            },
            epoch_secs: secs.parse().map_err(|_| bad())?,
            micros: micros.parse().map_err(|_| bad())?,
            program: program.into(),
            pid: pid.parse().map_err(|_| bad())?,
            level: Level::from_word(level).ok_or_else(bad)?,
        };
        // Only the form the formatter writes (no leading zeros, six-digit microseconds,
        // a space-padded day): what parses formats back to the same bytes.
        if prefix.to_string() != line[..line.len() - msg.len()] {
            return Err(bad());
        }
        Ok((prefix, msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_round_trips_and_pads_day_and_micros() {
        let line = "Nov 21 09:43:55 (1795254235.762175) danted[29823]: info: Dante/server[1/1] v1.4.2 running";
        let (p, msg) = Prefix::parse_line(line).unwrap();
        assert_eq!(msg, "Dante/server[1/1] v1.4.2 running");
        assert_eq!(format!("{p}{msg}"), line);
        let p = Prefix {
            local: LocalTime {
                month: 3,
                day: 1,
                hour: 0,
                minute: 5,
                second: 9,
            },
            epoch_secs: 1,
            micros: 42,
            program: "ferrosocks".into(),
            pid: 7,
            level: Level::Warning,
        };
        assert_eq!(
            p.to_string(),
            "Mar  1 00:05:09 (1.000042) ferrosocks[7]: warning: "
        );
        let again = p.to_string() + "x";
        assert_eq!(Prefix::parse_line(&again).unwrap().0, p);
    }
}
