//! Fuzz target: traffic records and log lines: parse, format, JSON round trip. The body, and the properties it checks, is `traffic_log::fuzz::round_trip`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| traffic_log::fuzz::round_trip(data));
