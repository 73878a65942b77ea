//! docs/configuration.md is generated from the keyword table; this test fails when the
//! committed copy is stale. `FERROSOCKS_BLESS=1` rewrites it.

use std::path::Path;

#[test]
fn configuration_reference_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let want = sockd_conf::keywords::reference_markdown();
    if std::env::var_os("FERROSOCKS_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/configuration.md is stale: run FERROSOCKS_BLESS=1 cargo test -p sockd-conf --test docs"
    );
}
