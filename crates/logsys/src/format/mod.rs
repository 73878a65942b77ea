//! Pure formats: what bytes a record becomes, with no I/O and no clock (time comes in as
//! an argument), so that every byte can be tested against golden files
//! (`tests/golden/`).
//!
//! - `text`: Dante's line prefix and JSON lines, written on the logging thread;
//! - [`tai64n`]: multilog's `@` + 24 hex digits time stamps (2^62 + 10 + Unix seconds);
//! - [`multilog`]: when a log directory's `current` is rotated (multilog's `size − 2000`
//!   rule) and how many old files it keeps;
//! - [`rfc3164`]: the BSD syslog line (the local `/dev/log` datagram);
//! - [`rfc5424`]: the structured syslog message for remote receivers;
//! - [`framing`]: RFC 6587 octet counting (and its decoder);
//! - [`ucspi`]: socklog's `ucspi` conversion (`IP: ` prefix, `<PRI>` → `facility.priority: `).

mod text;

pub mod framing;
pub mod multilog;
pub mod rfc3164;
pub mod rfc5424;
pub mod tai64n;
pub mod ucspi;

pub(crate) use text::{json_line, push_message, push_prefix, tag};

/// Syslog facility names (RFC 5424 §6.2.1 codes 0–23) as socklog and syslog.h print them.
pub const FACILITY_NAMES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "security", "console", "mark", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Syslog severity names (0–7) as syslog.h prints them.
pub const SEVERITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];
