//! The operator's live view, read from the server's sessions registry (never from the
//! relays): OpenVPN-style status files and the management interface.
//!
//! Formats and protocol are pure functions of registry snapshots, tested byte for byte:
//! [`status`] renders the status file in versions 1, 2 and 3; [`proto`] parses
//! management command lines and writes their replies; [`notify`] writes the real-time
//! notifications; [`status_json`] and [`metrics_text`] are what the metrics endpoint
//! ([`metrics_http`]) serves. The I/O around them (the status file writer, the management
//! listener and its clients) lives beside them.

pub mod metrics_http;
pub mod metrics_text;
pub mod notify;
pub mod outbox;
pub mod proto;
pub mod serve;
pub mod status;
pub mod status_file;
pub mod status_json;
pub mod status_loop;

mod mgmt_conn;
mod mgmt_lexer;
mod mgmt_reply;

#[cfg(test)]
mod mgmt_golden;
