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
fn config() {
    replay("config", sockd_conf::fuzz::config);
}

#[test]
fn migrate() {
    replay("migrate", sockd_conf::fuzz::migrate);
}
