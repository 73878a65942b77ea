//! Fuzz target: SOCKS5 request (RFC 1928 §4). The body, and the properties it checks, is `socks_proto::fuzz::request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| socks_proto::fuzz::request(data));
