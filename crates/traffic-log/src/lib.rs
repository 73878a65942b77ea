//! The Dante traffic log, as data.
//!
//! This crate owns the text of Dante 1.4.2's traffic log lines
//! (`pass(1): tcp/connect [: 127.0.0.1.40822 127.0.0.1.47080 -> …`) and of the line
//! prefix every Dante log line starts with (`Nov 21 09:16:57 (1795252617.429114)
//! danted[13506]: info: `). Records are typed ([`Record`]); [`Record`]'s `Display`
//! writes the exact bytes Dante writes and [`Record::parse`] reads them back, with
//! `format(parse(line)) == line` for every line Dante prints. No I/O and no clock:
//! callers pass the time in ([`Prefix`]).
//!
//! Layout: [`record`] has the record types, [`text`] writes them (`Record::write_to`
//! appends a line to a `String` without `core::fmt`; `Display` goes through it),
//! [`parse`] the parser, [`prefix`] the line prefix, [`stamp`] the prefixes other
//! writers put before a line (syslog daemons, multilog) and [`vis`] the strvis(3)
//! escaping Dante applies to names and logged data.
#![forbid(unsafe_code)]

#[doc(hidden)]
pub mod fuzz;
pub mod json;
pub mod json_write;
pub mod parse;
pub mod prefix;
pub mod record;
pub mod stamp;
pub mod tcpinfo;
pub mod text;
pub mod vis;

pub use parse::{Marker, ParseError};
pub use prefix::{Level, LocalTime, Prefix};
pub use record::{
    Auth, Command, Count, EndCause, Endpoint, EndpointHost, Ends, Event, Leg, Proto, Record, Side,
    Summary, Verdict,
};
