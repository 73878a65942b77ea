//! Fuzz target: SOCKS5 UDP request header (RFC 1928 §7). The body, and the properties it checks, is `socks_proto::fuzz::udp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| socks_proto::fuzz::udp(data));
