//! The management interface's line protocol: OpenVPN 2.6.14's, byte for byte, with
//! ferrosocks' SOCKS sessions as its "clients" (`shared/reference/openvpn-management.md`,
//! the authority on every byte; §n below are its sections).
//!
//! Everything here is pure: no I/O, no clock, no tokio.
//!
//! # Framing (§1)
//!
//! Every line the server sends ends in CRLF, except the password prompt
//! (`ENTER PASSWORD:`, no line end). Lines from the client end in LF or CRLF. [`Lines`]
//! splits the byte stream: like OpenVPN it drops control characters (CR anywhere, NUL,
//! …), but it keeps TAB (a space to the lexer) and bytes ≥ 0x80 (as UTF-8, lossy),
//! which OpenVPN drops, so that a user name in UTF-8 can be killed. A line over
//! [`MAX_LINE`] bytes is not a panic nor a growing buffer: it is discarded up to its LF
//! and reported once as [`LineTooLong`]. OpenVPN silently empties its
//! 1024-byte buffer instead; an unterminated last line is ignored, as there.
//!
//! # Words (§1, OpenVPN's `parse_line`)
//!
//! [`split_words`] is OpenVPN's configuration lexer as the management interface calls
//! it: whitespace separates words; `"…"` and `'…'` quote (a quote starts a word only at
//! its beginning: `ab"c"` is one word `ab"c"`, and `"ab"cd` two words); outside single
//! quotes `\\` → `\`, `\"` → `"`, `\ ` → space, and any other backslash is an error; a
//! word starting with `#` or `;` starts a comment; at most [`MAX_WORDS`] words are read
//! (the rest of the line is ignored) and a word is at most [`MAX_WORD`] bytes. Its
//! errors are OpenVPN's own texts, down to the `TCP:0` where a file name and line
//! number would be (`ERROR: Options error: No closing quotation (") in TCP:0`).

pub use crate::mgmt_lexer::{split_words, LineTooLong, Lines, MAX_LINE, MAX_WORD, MAX_WORDS};
