//! Times on the command line (`--since`, `--until`) and in reports: all in UTC.
//!
//! Accepted: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`, `YYYY-MM-DDTHH:MM:SS` (a space may stand
//! for the `T`), each optionally followed by `Z` or `±HH:MM`, and `@SECONDS` since the
//! epoch. Printed: `YYYY-MM-DDTHH:MM:SSZ`; day keys `YYYY-MM-DD`, hour keys
//! `YYYY-MM-DDTHH`.

use traffic_log::stamp::{civil_from_days, days_from_civil, rfc3339};
use traffic_log::LocalTime;

/// A time argument that is not one of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad time {0:?}: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z|±HH:MM] or @SECONDS")]
pub struct BadTime(pub String);

/// Parses a `--since`/`--until` value into epoch seconds.
pub fn parse(s: &str) -> Result<i64, BadTime> {
    let bad = || BadTime(s.to_owned());
    if let Some(n) = s.strip_prefix('@') {
        return n.parse().map_err(|_| bad());
    }
    let t = s.replacen(' ', "T", 1);
    let full = match t.len() {
        10 => format!("{t}T00:00:00Z"),
        _ => {
            // Add seconds when only HH:MM is given, and Z when no zone is.
            let (clock_end, zone) = match t.get(16..) {
                Some(rest) if rest.starts_with(':') => (19, t.get(19..).unwrap_or("")),
                Some(rest) => (16, rest),
                None => return Err(bad()),
            };
            let base = t.get(..clock_end).ok_or_else(bad)?;
            let secs = if clock_end == 16 { ":00" } else { "" };
            let zone = if zone.is_empty() { "Z" } else { zone };
            format!("{base}{secs}{zone}")
        }
    };
    rfc3339(&full).map(|(secs, _)| secs).ok_or_else(bad)
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc(epoch: i64) -> String {
    let (y, m, d) = civil_from_days(epoch.div_euclid(86_400));
    let s = epoch.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `YYYY-MM-DD` of an epoch time.
pub fn day_key(epoch: i64) -> String {
    let (y, m, d) = civil_from_days(epoch.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH` of an epoch time.
pub fn hour_key(epoch: i64) -> String {
    format!("{}T{:02}", day_key(epoch), epoch.rem_euclid(86_400) / 3600)
}

/// An RFC 3164 wall clock (no year, no zone) as epoch seconds, read as UTC in the year
/// `year`, or the year before when that would be more than a day after `now`
/// (December lines read in January).
pub fn from_local(t: LocalTime, year: i64, now: Option<i64>) -> i64 {
    let at = |y: i64| {
        days_from_civil(y, u32::from(t.month), u32::from(t.day)) * 86_400
            + i64::from(t.hour) * 3600
            + i64::from(t.minute) * 60
            + i64::from(t.second)
    };
    let this = at(year);
    match now {
        Some(now) if this > now + 86_400 => at(year - 1),
        _ => this,
    }
}

/// The year (UTC) of an epoch time.
pub fn year_of(epoch: i64) -> i64 {
    civil_from_days(epoch.div_euclid(86_400)).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(parse("2026-11-21"), Ok(1_795_219_200));
        assert_eq!(parse("2026-11-21T09:43"), Ok(1_795_254_180));
        assert_eq!(parse("2026-11-21 09:43:56"), Ok(1_795_254_236));
        assert_eq!(parse("2026-11-21T10:43:56+01:00"), Ok(1_795_254_236));
        assert_eq!(parse("2026-11-21T09:43:56Z"), Ok(1_795_254_236));
        assert_eq!(parse("@1795254236"), Ok(1_795_254_236));
        for bad in [
            "",
            "yesterday",
            "2026-11",
            "2026-11-21T9",
            "@x",
            "2026-11-21T09:43:56+1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn printed_forms() {
        assert_eq!(format_utc(1_795_254_236), "2026-11-21T09:43:56Z");
        assert_eq!(day_key(1_795_254_236), "2026-11-21");
        assert_eq!(hour_key(1_795_254_236), "2026-11-21T09");
        let t = LocalTime {
            month: 12,
            day: 31,
            hour: 23,
            minute: 0,
            second: 0,
        };
        let jan = parse("2027-01-01T00:30").unwrap();
        assert_eq!(
            format_utc(from_local(t, 2027, Some(jan))),
            "2026-12-31T23:00:00Z"
        );
        assert_eq!(year_of(jan), 2027);
    }
}
