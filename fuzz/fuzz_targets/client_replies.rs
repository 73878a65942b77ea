//! Fuzz target: an upstream proxy's answers (chaining). The body, and the properties it checks, is `socks_proto::fuzz::client_replies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| socks_proto::fuzz::client_replies(data));
