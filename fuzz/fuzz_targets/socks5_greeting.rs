//! Fuzz target: SOCKS5 method greeting (RFC 1928 §3). The body, and the properties it checks, is `socks_proto::fuzz::greeting`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| socks_proto::fuzz::greeting(data));
