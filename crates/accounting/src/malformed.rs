//! Lines that are not what they claim to be: counted, and the place of the first few
//! kept for the report.

use std::fmt;

/// How many places of malformed lines a report keeps in all.
pub const KEEP: usize = 20;
/// How many of those from one input, so that one file of garbage does not hide the
/// places in the others.
pub const KEEP_PER_INPUT: usize = 3;
/// Inputs that could not be read are all kept, up to this.
pub const KEEP_FAILURES: usize = 100;

/// Why a line was not accounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The file (or `-`).
    pub origin: String,
    /// Line number, from 1 (0: the file as a whole, e.g. unreadable).
    pub line: u64,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.origin, self.reason)
        } else {
            write!(f, "{}:{}: {}", self.origin, self.line, self.reason)
        }
    }
}

/// The malformed lines of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Malformed {
    /// How many lines.
    pub count: u64,
    /// How many inputs could not be read, wholly or from some line on.
    pub failures: u64,
    /// The places kept: the first [`KEEP_PER_INPUT`] of each input up to [`KEEP`], and
    /// the inputs not read.
    pub first: Vec<Place>,
    kept_lines: usize,
    kept_failures: usize,
    origin: String,
    in_origin: usize,
}

impl Malformed {
    /// Notes one.
    pub fn note(&mut self, origin: &str, line: u64, reason: impl FnOnce() -> String) {
        self.count += 1;
        if self.origin != origin {
            self.origin = origin.to_owned();
            self.in_origin = 0;
        }
        if self.kept_lines < KEEP && self.in_origin < KEEP_PER_INPUT {
            self.kept_lines += 1;
            self.in_origin += 1;
            self.first.push(Place {
                origin: origin.to_owned(),
                line,
                reason: reason(),
            });
        }
    }

    /// Notes an input that could not be read (`line` 0: not at all).
    pub fn note_failure(&mut self, origin: &str, line: u64, error: String) {
        self.failures += 1;
        if self.kept_failures < KEEP_FAILURES {
            self.kept_failures += 1;
            self.first.push(Place {
                origin: origin.to_owned(),
                line,
                reason: error,
            });
        }
    }

    /// The report: `N malformed lines[, M inputs not read]` and the places, one a line.
    pub fn report(&self) -> String {
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        let mut s = format!("{} malformed line{}", self.count, plural(self.count));
        if self.failures > 0 {
            s.push_str(&format!(
                ", {} input{} not read whole",
                self.failures,
                plural(self.failures)
            ));
        }
        if self.count + self.failures > self.first.len() as u64 {
            s.push_str(&format!(
                " ({} shown: the first of each input):",
                self.first.len()
            ));
        } else if self.count + self.failures > 0 {
            s.push(':');
        }
        s.push('\n');
        for p in &self.first {
            s.push_str(&format!("  {p}\n"));
        }
        s
    }
}
