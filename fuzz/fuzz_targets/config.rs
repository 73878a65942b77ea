//! Fuzz target: the sockd.conf parser. The body, and the properties it checks, is `sockd_conf::fuzz::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockd_conf::fuzz::config(data));
