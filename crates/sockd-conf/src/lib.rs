//! Dante's `sockd.conf` language, plus the ferrosocks keywords.
//!
//! This crate owns the configuration file: the [`lexer`] turns text into positioned
//! tokens, [`parse()`] turns them into a checked, typed [`Config`] (or every error found,
//! each with file:line:column, the quoted token and what was expected), and [`keywords`]
//! is the one table of keywords that drives "not supported yet" errors, "is ignored"
//! warnings, suggestions, `docs/configuration.md` and the man page; [`migrate`] rewrites a
//! Dante file as one ferrosocks runs. No I/O: callers read the file and
//! pass its text.
#![forbid(unsafe_code)]

pub mod error;
pub mod errors;
#[doc(hidden)]
pub mod fuzz;
pub mod keywords;
pub mod lexer;
pub mod migrate;
pub mod model;
mod parse;
pub mod services;

pub use error::{Diagnostic, Errors};
pub use lexer::Pos;
pub use model::*;
pub use parse::{parse, Parsed};

/// The configuration ferrosocks runs with when given no file: loopback only, never an
/// open proxy.
pub const EMBEDDED_DEFAULT: &str = "\
# ferrosocks embedded default: listens on loopback only and serves loopback clients only.
logoutput: stderr
internal: 127.0.0.1 port = 1080
socksmethod: none
clientmethod: none

client pass {
    from: 127.0.0.0/8 to: 0/0
    log: error
}

socks pass {
    from: 127.0.0.0/8 to: 0/0
    log: connect disconnect error
}
";
