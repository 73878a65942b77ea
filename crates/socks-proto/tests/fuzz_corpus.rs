//! The fuzz corpus (fuzz/corpus/TARGET/, what the cargo-fuzz campaigns kept) and the
//! inputs that once broke something (fuzz/regressions/TARGET/) replayed through the
//! target bodies on stable, so `cargo test` and CI run every one (docs/fuzzing.md).

use std::path::Path;

/// Runs `body` on every file of fuzz/corpus/`target` (there must be some) and of
/// fuzz/regressions/`target` (inputs that once broke a property; `cargo fuzz cmin`
/// never drops them).
fn replay(target: &str, body: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        let dir = fuzz.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            assert_eq!(kind, "regressions", "{}: missing", dir.display());
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            if std::panic::catch_unwind(|| body(&data)).is_err() {
                panic!("{target}: {} fails", path.display());
            }
            n += 1;
        }
    }
    assert!(n > 0, "{target}: empty corpus");
}

#[test]
fn socks5_greeting() {
    replay("socks5_greeting", socks_proto::fuzz::greeting);
}

#[test]
fn rfc1929() {
    replay("rfc1929", socks_proto::fuzz::userpass);
}

#[test]
fn socks5_request() {
    replay("socks5_request", socks_proto::fuzz::request);
}

#[test]
fn socks4_request() {
    replay("socks4_request", socks_proto::fuzz::request4);
}

#[test]
fn udp_header() {
    replay("udp_header", socks_proto::fuzz::udp);
}

#[test]
fn client_replies() {
    replay("client_replies", socks_proto::fuzz::client_replies);
}
