//! Framing and words: the bytes a management client sends, split into lines
//! ([`Lines`]) and a line into words ([`split_words`]) the way OpenVPN 2.6.14 does it.
//! Re-exported by [`crate::proto`], whose module doc describes both.

use std::fmt;

/// The longest line a client may send, in bytes, without its line end.
pub const MAX_LINE: usize = 4096;
/// Words read from a line (OpenVPN's `MAX_PARMS`); the rest of the line is ignored.
pub const MAX_WORDS: usize = 16;
/// The longest word, in bytes (OpenVPN's `OPTION_PARM_SIZE`).
pub const MAX_WORD: usize = 256;

// === Framing ===

/// A line longer than [`MAX_LINE`]: it was discarded up to its line end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command line longer than {MAX_LINE} bytes")
    }
}

impl std::error::Error for LineTooLong {}

/// Splits the bytes a client sends into lines (LF or CRLF), never holding more than
/// one line's worth (plus the last read) however long a line is.
#[derive(Debug)]
pub struct Lines {
    buf: Vec<u8>,
    max: usize,
    /// The line being read is already too long: its bytes are dropped up to its LF.
    discarding: bool,
}

impl Lines {
    /// Lines of at most [`MAX_LINE`] bytes.
    pub fn new() -> Self {
        Self::with_max(MAX_LINE)
    }

    /// Lines of at most `max` bytes (line end not counted).
    pub fn with_max(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
            discarding: false,
        }
    }

    /// Adds bytes read from the client.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole line, without its line end and control characters; `None` until
    /// one is complete.
    pub fn next_line(&mut self) -> Option<Result<String, LineTooLong>> {
        let Some(lf) = self.buf.iter().position(|&b| b == b'\n') else {
            // One byte more than `max` may be the CR of a CRLF.
            if self.buf.len() > self.max + 1 {
                self.discarding = true;
                self.buf.clear();
            }
            return None;
        };
        let raw = &self.buf[..lf];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = if self.discarding || raw.len() > self.max {
            Err(LineTooLong)
        } else {
            Ok(clean_line(raw))
        };
        self.buf.drain(..=lf);
        self.discarding = false;
        Some(line)
    }
}

impl Default for Lines {
    fn default() -> Self {
        Self::new()
    }
}

/// A line as OpenVPN reads it: control characters dropped (TAB kept), the rest as
/// UTF-8.
fn clean_line(raw: &[u8]) -> String {
    let kept: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|&b| b == b'\t' || !(b < 0x20 || b == 0x7f))
        .collect();
    String::from_utf8_lossy(&kept).into_owned()
}

// === Words ===

/// The management name OpenVPN gives its command "file" in lexer errors.
const WHERE: &str = "TCP:0";

/// Splits a command line into words, as OpenVPN's `parse_line` does (see the module
/// doc). `Err` is the reply to send (CRLF included): OpenVPN's exact error text.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        Initial,
        Quoted,
        Unquoted,
        SingleQuoted,
    }
    // C's string ends at the first NUL; that NUL is read as a space (OpenVPN's
    // `do … while (*c++ != '\0')`).
    let bytes = line.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let mut words = Vec::new();
    let mut word: Vec<u8> = Vec::new();
    let mut state = State::Initial;
    let mut backslash = false;
    for c in bytes[..end].iter().copied().chain([0]) {
        // 0: nothing to store.
        let mut out = 0u8;
        if !backslash && c == b'\\' && state != State::SingleQuoted {
            backslash = true;
        } else {
            let mut done = false;
            match state {
                State::Initial => {
                    if !is_space(c) {
                        if c == b';' || c == b'#' {
                            break;
                        }
                        if !backslash && c == b'"' {
                            state = State::Quoted;
                        } else if !backslash && c == b'\'' {
                            state = State::SingleQuoted;
                        } else {
                            out = c;
                            state = State::Unquoted;
                        }
                    }
                }
                State::Unquoted => {
                    if !backslash && is_space(c) {
                        done = true;
                    } else {
                        out = c;
                    }
                }
                State::Quoted => {
                    if !backslash && c == b'"' {
                        done = true;
                    } else {
                        out = c;
                    }
                }
                State::SingleQuoted => {
                    if c == b'\'' {
                        done = true;
                    } else {
                        out = c;
                    }
                }
            }
            if done {
                words.push(String::from_utf8_lossy(&word).into_owned());
                word.clear();
                state = State::Initial;
            }
            if backslash && out != 0 && !(out == b'\\' || out == b'"' || is_space(out)) {
                return Err(BAD_BACKSLASH.to_owned());
            }
            backslash = false;
        }
        if out != 0 {
            if word.len() >= MAX_WORD {
                let shown = String::from_utf8_lossy(&word[..MAX_WORD - 1]);
                return Err(format!(
                    "ERROR: Options error: Parameter at {WHERE} is too long ({MAX_WORD} chars max): {shown}\r\n"
                ));
            }
            word.push(out);
        }
        if words.len() >= MAX_WORDS {
            return Ok(words);
        }
    }
    match state {
        State::Initial => Ok(words),
        State::Quoted => Err(format!(
            "ERROR: Options error: No closing quotation (\") in {WHERE}\r\n"
        )),
        State::SingleQuoted => Err(format!(
            "ERROR: Options error: No closing single quotation (') in {WHERE}\r\n"
        )),
        State::Unquoted => Err(format!(
            "ERROR: Options error: Residual parse state (2) in {WHERE}\r\n"
        )),
    }
}

const BAD_BACKSLASH: &str = concat!(
    "ERROR: Options warning: Bad backslash ('\\') usage in TCP:0: remember that ",
    "backslashes are treated as shell-escapes and if you need to pass backslash ",
    "characters as part of a Windows filename, you should use double backslashes such ",
    "as \"c:\\\\openvpn\\\\static.key\"\r\n"
);

/// C's `isspace` in the C locale, and the string's end.
pub(crate) fn is_space(c: u8) -> bool {
    matches!(c, 0 | b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split_words(line).unwrap()
    }

    #[test]
    fn lines_end_in_lf_or_crlf_and_lose_their_control_characters() {
        let mut l = Lines::new();
        l.push(b"pid\r\nstat");
        assert_eq!(l.next_line(), Some(Ok("pid".into())));
        assert_eq!(l.next_line(), None);
        l.push(b"us 2\nki\x00ll\x07 \tbob\r\r\n");
        assert_eq!(l.next_line(), Some(Ok("status 2".into())));
        assert_eq!(l.next_line(), Some(Ok("kill \tbob".into())));
        assert_eq!(l.next_line(), None);
        l.push("kill j\u{f6}rg\n".as_bytes());
        assert_eq!(l.next_line(), Some(Ok("kill j\u{f6}rg".into())));
    }

    #[test]
    fn a_line_over_the_limit_is_reported_once_and_the_next_one_is_read() {
        let mut l = Lines::with_max(8);
        l.push(b"12345678\r\n123456789\n");
        assert_eq!(l.next_line(), Some(Ok("12345678".into())));
        assert_eq!(l.next_line(), Some(Err(LineTooLong)));
        // Far too long, over several reads: nothing is kept, one error at the LF.
        for _ in 0..100 {
            l.push(b"xxxxxxxxxxxx");
            assert_eq!(l.next_line(), None);
            assert!(l.buf.len() <= 8 + 1 + 12);
        }
        l.push(b"yy\npid\n");
        assert_eq!(l.next_line(), Some(Err(LineTooLong)));
        assert_eq!(l.next_line(), Some(Ok("pid".into())));
        assert_eq!(l.next_line(), None);
    }

    #[test]
    fn the_default_limit_is_4096_bytes() {
        let mut l = Lines::default();
        l.push(&[b'a'; MAX_LINE]);
        l.push(b"\r\n");
        assert_eq!(l.next_line().map(|r| r.map(|s| s.len())), Some(Ok(4096)));
        l.push(&[b'a'; MAX_LINE + 1]);
        l.push(b"\n");
        assert_eq!(l.next_line(), Some(Err(LineTooLong)));
    }

    // --- words ---

    #[test]
    fn whitespace_separates_words() {
        assert_eq!(words("  kill \t alice  "), ["kill", "alice"]);
        assert!(words("").is_empty());
        assert!(words(" \t ").is_empty());
    }

    #[test]
    fn double_and_single_quotes_group_words() {
        assert_eq!(
            words(r#"client-deny 1 0 "bad user" 'go away'"#),
            ["client-deny", "1", "0", "bad user", "go away"]
        );
        assert_eq!(words(r#"a "" b"#), ["a", "", "b"]);
        // A quote starts a word only at its beginning.
        assert_eq!(words(r#"ab"c d""#), ["ab\"c", "d\""]);
        assert_eq!(words(r#""ab"cd"#), ["ab", "cd"]);
        assert_eq!(words("'it\"s'"), ["it\"s"]);
    }

    #[test]
    fn backslashes_escape_backslash_quote_and_space_outside_single_quotes() {
        assert_eq!(words(r"a\\b"), [r"a\b"]);
        assert_eq!(words(r#"a\"b"#), [r#"a"b"#]);
        assert_eq!(words(r"a\ b c"), ["a b", "c"]);
        assert_eq!(words(r#""a\"b\\c\ d""#), [r#"a"b\c d"#]);
        assert_eq!(words(r#"\"quoted\""#), [r#""quoted""#]);
        // Inside single quotes a backslash is itself.
        assert_eq!(words(r"'a\b\'"), [r"a\b\"]);
        // A backslash-space before a word is a space like any other.
        assert_eq!(words(r"\ abc"), ["abc"]);
        // A trailing backslash between words is ignored.
        assert_eq!(words(r"abc \"), ["abc"]);
    }

    #[test]
    fn any_other_backslash_is_openvpns_error() {
        let e = split_words(r"kill a\nb").unwrap_err();
        assert_eq!(
            e,
            "ERROR: Options warning: Bad backslash ('\\') usage in TCP:0: remember that \
             backslashes are treated as shell-escapes and if you need to pass backslash \
             characters as part of a Windows filename, you should use double backslashes \
             such as \"c:\\\\openvpn\\\\static.key\"\r\n"
        );
        assert_eq!(split_words(r#""a\x""#).unwrap_err(), e);
    }

    #[test]
    fn unclosed_quotes_and_a_final_backslash_are_errors() {
        assert_eq!(
            split_words(r#"kill "alice"#).unwrap_err(),
            "ERROR: Options error: No closing quotation (\") in TCP:0\r\n"
        );
        assert_eq!(
            split_words("kill 'alice").unwrap_err(),
            "ERROR: Options error: No closing single quotation (') in TCP:0\r\n"
        );
        assert_eq!(
            split_words(r#"kill "alice\"#).unwrap_err(),
            "ERROR: Options error: No closing quotation (\") in TCP:0\r\n"
        );
        assert_eq!(
            split_words(r"kill alice\").unwrap_err(),
            "ERROR: Options error: Residual parse state (2) in TCP:0\r\n"
        );
    }

    #[test]
    fn comments_start_only_at_a_word() {
        assert_eq!(words("kill # alice"), ["kill"]);
        assert_eq!(words("kill ;alice"), ["kill"]);
        assert_eq!(words("# all of it"), Vec::<String>::new());
        assert_eq!(words("kill a#b;c"), ["kill", "a#b;c"]);
        assert_eq!(words(r"kill \#x"), ["kill"]);
        assert_eq!(words("kill '#x'"), ["kill", "#x"]);
    }

    #[test]
    fn at_most_16_words_are_read() {
        let line = (0..20).map(|i| i.to_string()).collect::<Vec<_>>().join(" ");
        assert_eq!(words(&line).len(), MAX_WORDS);
        // What follows the 16th word is not read at all.
        let line = format!("{} \"unclosed", "w ".repeat(16));
        assert_eq!(words(&line).len(), 16);
    }

    #[test]
    fn a_word_is_at_most_256_bytes() {
        let w = "a".repeat(256);
        assert_eq!(words(&format!("kill {w}")), ["kill", w.as_str()]);
        let e = split_words(&format!("kill {w}b")).unwrap_err();
        // OpenVPN shows the first 255 bytes.
        assert_eq!(
            e,
            format!(
                "ERROR: Options error: Parameter at TCP:0 is too long (256 chars max): {}\r\n",
                &w[..255]
            )
        );
    }

    #[test]
    fn a_nul_ends_the_line() {
        assert_eq!(words("kill alice\0bob"), ["kill", "alice"]);
    }
}
