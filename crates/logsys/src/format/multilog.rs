//! multilog's rotation decisions for a log directory, without the files.
//!
//! daemontools' `multilog.c` writes to `current` in pieces; a piece that would take
//! `current` past `size − 2000` bytes is cut after its last newline, and once `current`
//! holds `size − 2000` bytes or more and the piece ended a line, the file is rotated:
//! files normally end at the first line boundary past `size − 2000`, and never exceed
//! `size` (a line is cut there only when it is longer than that on its own). `size` is
//! clamped to 4096…16777215 as multilog does; `count` (multilog's `n`) is at least 2 and
//! counts `current`: at most `count − 1` rotated files are kept.
//!
//! [`Plan::step`] is asked before each write, [`Plan::full`] after each line.

/// multilog's default `s`.
pub const DEFAULT_SIZE: u64 = 99_999;
/// multilog's default `n`.
pub const DEFAULT_COUNT: u32 = 10;
/// The smallest and largest sizes multilog accepts.
pub const SIZE_RANGE: std::ops::RangeInclusive<u64> = 4096..=16_777_215;

/// A directory's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Plan {
    size: u64,
    count: u32,
}

/// What to do with the next part of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Rotate `current` first.
    Rotate,
    /// Write this many bytes of it.
    Write(usize),
}

impl Plan {
    /// Limits as multilog would take `sSIZE nCOUNT` (clamped).
    pub fn new(size: u64, count: u32) -> Self {
        Self {
            size: size.clamp(*SIZE_RANGE.start(), *SIZE_RANGE.end()),
            count: count.max(2),
        }
    }

    /// The size in force.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The count in force (`current` included).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// With `current` holding `bytes`, what to do with the next `len` bytes of a line
    /// (their end included): rotate when they would take it past `size` at a line
    /// boundary, else write what fits.
    pub fn step(&self, bytes: u64, len: usize) -> Step {
        let len64 = len as u64;
        if bytes >= self.size || (bytes > 0 && bytes + len64 > self.size) {
            Step::Rotate
        } else {
            Step::Write(len.min((self.size - bytes) as usize))
        }
    }

    /// Whether `current`, holding `bytes` and just past a newline, is full.
    pub fn full(&self, bytes: u64) -> bool {
        bytes >= self.size - 2000
    }

    /// Of the rotated files' names (any order), those to delete so that at most
    /// `count − 1` remain: the oldest, which sort first. Names not of the `@` + 24 hex +
    /// `.x` form are never counted or deleted; `keep` says which must stay whatever
    /// their age (files still to be shipped).
    pub fn expired<'a>(&self, names: &[&'a str], keep: impl Fn(&str) -> bool) -> Vec<&'a str> {
        let mut ours: Vec<&str> = names.iter().copied().filter(|n| is_rotated(n)).collect();
        ours.sort_unstable();
        let excess = ours.len().saturating_sub(self.count as usize - 1);
        ours.into_iter().filter(|n| !keep(n)).take(excess).collect()
    }
}

/// Whether `name` is a rotated file's name, `@` + 24 hex digits + `.s` or `.u`
/// (multilog counts every name starting with `@` that is at least 25 long; this is
/// stricter, so that nothing else an operator put there is deleted).
pub fn is_rotated(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 27
        && b[0] == b'@'
        && b[1..25].iter().all(u8::is_ascii_hexdigit)
        && (name.ends_with(".s") || name.ends_with(".u"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of 100 bytes into s4096: rotation once 2096 bytes are reached, at 2100.
    #[test]
    fn rotates_past_size_minus_2000() {
        let p = Plan::new(4096, 3);
        let mut bytes = 0;
        let mut files = Vec::new();
        for _ in 0..100 {
            match p.step(bytes, 100) {
                Step::Rotate => unreachable!("lines fit"),
                Step::Write(n) => bytes += n as u64,
            }
            if p.full(bytes) {
                files.push(bytes);
                bytes = 0;
            }
        }
        assert!(files.iter().all(|&b| b == 2100), "{files:?}");
    }

    #[test]
    fn long_lines_rotate_before_and_split_at_size() {
        let p = Plan::new(1, 1);
        assert_eq!((p.size(), p.count()), (4096, 2));
        assert_eq!(p.step(2000, 2500), Step::Rotate);
        assert_eq!(p.step(0, 10_000), Step::Write(4096));
        assert_eq!(p.step(4096, 10), Step::Rotate);
        assert_eq!(Plan::new(u64::MAX, 5).size(), 16_777_215);
    }

    #[test]
    fn expiry_keeps_count_minus_one_and_unshipped() {
        let p = Plan::new(4096, 3);
        let names = [
            "@400000006b0162de33ebadec.s",
            "current",
            "@400000006b0162de33e6a8c4.s",
            "@400000006b0162df00000000.u",
            "@notours.s",
            "state",
        ];
        assert_eq!(
            p.expired(&names, |_| false),
            ["@400000006b0162de33e6a8c4.s"]
        );
        // Files still to be shipped are the newest: the older ones go first.
        assert_eq!(
            p.expired(&names, |n| n > "@400000006b0162de33e6a8c4.s"),
            ["@400000006b0162de33e6a8c4.s"]
        );
        assert!(p.expired(&names, |_| true).is_empty());
    }
}
