#![allow(unreachable_pub)]
//! Integration tests: the real `ferrosocks` binary, driven by real clients (curl, ncat,
//! htpasswd) and by a raw SOCKS client for malformed input. Every test starts its own
//! server on a kernel-chosen loopback port and ends it by PID, even when it fails.

mod support;

mod bad_input;
mod chaining;
mod churn;
mod cli;
mod clients;
mod collect;
mod commands;
mod control;
mod differential;
mod examples;
mod features;
mod ident;
mod load;
mod log_accounting;
mod logdir;
mod logging;
mod logship;
mod management;
mod metrics;
mod migrate;
mod openvpn_monitor;
mod privileges;
mod relay;
mod seed;
mod status;
mod syslog_remote;
mod system_users;
mod systemd;
mod traffic_log;
mod wire_fuzz;
