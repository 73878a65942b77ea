//! Lines of a byte stream, each at most [`MAX_LINE`] bytes: a longer line is skipped
//! (read through without being kept) and reported by its length, so memory stays
//! bounded whatever the input.

use std::io::{self, BufRead};

/// The longest line kept: 1 MiB.
pub const MAX_LINE: usize = 1 << 20;

/// One line read by [`Lines::next_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// A line without its newline; `complete` is false for a last line with no newline.
    Line { text: &'a [u8], complete: bool },
    /// A line longer than the limit, skipped: its length.
    TooLong(u64),
}

/// Splits a reader into lines, numbered from 1.
#[derive(Debug)]
pub struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
    lineno: u64,
    max: usize,
}

impl<R: BufRead> Lines<R> {
    /// Lines of `reader`, at most [`MAX_LINE`] bytes each.
    pub fn new(reader: R) -> Self {
        Self::with_max(reader, MAX_LINE)
    }

    /// Lines of `reader`, at most `max` bytes each.
    pub fn with_max(reader: R, max: usize) -> Self {
        Self {
            reader,
            buf: Vec::with_capacity(256),
            lineno: 0,
            max,
        }
    }

    /// The number of the line last returned.
    pub fn lineno(&self) -> u64 {
        self.lineno
    }

    /// The next line, or `None` at end of input.
    pub fn next_line(&mut self) -> io::Result<Option<Chunk<'_>>> {
        self.buf.clear();
        let mut skipped: u64 = 0;
        let mut any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if !any {
                    return Ok(None);
                }
                self.lineno += 1;
                if skipped > 0 {
                    return Ok(Some(Chunk::TooLong(skipped + self.buf.len() as u64)));
                }
                return Ok(Some(Chunk::Line {
                    text: &self.buf,
                    complete: false,
                }));
            }
            any = true;
            let (take, done) = match memchr::memchr(b'\n', available) {
                Some(i) => (i, true),
                None => (available.len(), false),
            };
            if skipped > 0 || self.buf.len() + take > self.max {
                skipped += (self.buf.len() + take) as u64;
                self.buf.clear();
            } else {
                self.buf.extend_from_slice(&available[..take]);
            }
            self.reader.consume(take + usize::from(done));
            if done {
                self.lineno += 1;
                if skipped > 0 {
                    return Ok(Some(Chunk::TooLong(skipped)));
                }
                return Ok(Some(Chunk::Line {
                    text: &self.buf,
                    complete: true,
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], max: usize) -> Vec<String> {
        let mut lines = Lines::with_max(io::BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some(c) = lines.next_line().unwrap() {
            out.push(match c {
                Chunk::Line { text, complete } => {
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(text),
                        if complete { "" } else { "$" }
                    )
                }
                Chunk::TooLong(n) => format!("<{n}>"),
            });
        }
        out
    }

    #[test]
    fn splits_bounds_and_numbers() {
        assert_eq!(all(b"", 8), Vec::<String>::new());
        assert_eq!(all(b"a\nbb\n\nccc", 8), ["a", "bb", "", "ccc$"]);
        assert_eq!(
            all(b"short\n0123456789abc\nok\n", 8),
            ["short", "<13>", "ok"]
        );
        assert_eq!(all(b"0123456789", 8), ["<10>"]);
        assert_eq!(all(b"12345678\n", 8), ["12345678"]);
    }
}
