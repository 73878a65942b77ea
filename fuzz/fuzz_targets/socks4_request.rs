//! Fuzz target: SOCKS4 and SOCKS4a request. The body, and the properties it checks, is `socks_proto::fuzz::request4`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| socks_proto::fuzz::request4(data));
