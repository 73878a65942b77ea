//! Fuzz target: RFC 1929 username/password request. The body, and the properties it checks, is `socks_proto::fuzz::userpass`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| socks_proto::fuzz::userpass(data));
