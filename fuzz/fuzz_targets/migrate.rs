//! Fuzz target: ferrosocks migrate --from-dante. The body, and the properties it checks, is `sockd_conf::fuzz::migrate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockd_conf::fuzz::migrate(data));
