//! Traffic accounting from proxy logs, as data: what `ferrosocks log stats|convert|grep`
//! compute, without the files (no I/O besides a caller's [`std::io::BufRead`], no
//! clock, no tokio).
//!
//! Layout: [`lines`] splits a byte stream into lines of at most [`lines::MAX_LINE`]
//! bytes; [`decode`] turns one line into a typed [`traffic_log::Record`] whatever its
//! prefix (Dante's, RFC 3164/5424, multilog `@tai64n`) or a ferrosocks JSON line;
//! [`account`] keeps the per-group [`account::Stats`] (memory bounded by the number of
//! groups and of sessions open at once, never by the input's size); [`render`] prints
//! them as a table, CSV or JSON lines (field names in [`render::FIELDS`]); [`filter`]
//! is `log grep`'s record filter and [`convert`] `log convert`'s output; [`orient`]
//! turns `bindreply` records to the client's point of view; [`time`] the
//! `--since/--until` values and UTC day/hour keys; [`malformed`] counts lines that are
//! not what they claim and keeps where the first few are.
#![forbid(unsafe_code)]

pub mod account;
pub mod convert;
pub mod decode;
pub mod filter;
pub mod lines;
pub mod malformed;
pub mod orient;
pub mod render;
pub mod time;

pub use account::{Accounting, Dimension, Stats};
pub use decode::{decode, Decoded, Line};
pub use malformed::Malformed;
