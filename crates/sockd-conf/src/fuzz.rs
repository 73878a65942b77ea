//! Fuzz target bodies (fuzz/ runs them under cargo-fuzz; tests/fuzz_corpus.rs replays
//! the corpus on stable): arbitrary text through the parser and the Dante migration.
//! They panic only when a promise is broken: no panic, every error positioned inside
//! the text (line and column from 1), and a migrated file that parses again.

/// Checks that every diagnostic points into `text`.
fn positioned(text: &str, errors: &crate::Errors) {
    let lines = text.split('\n').count() as u32;
    for d in &errors.0 {
        assert!(
            d.pos.line >= 1 && d.pos.line <= lines.max(1) && d.pos.col >= 1,
            "{}:{}:{}: {} (text of {lines} lines)",
            d.file,
            d.pos.line,
            d.pos.col,
            d.message
        );
    }
}

/// The sockd.conf parser.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = crate::parse("fuzz.conf", text) {
        positioned(text, &e);
    }
}

/// `ferrosocks migrate --from-dante`: Dante's file rewritten; the result parses.
pub fn migrate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::migrate::from_dante("fuzz.conf", text) {
        Ok(m) => {
            if let Err(e) = crate::parse("migrated.conf", &m.text) {
                panic!("the migrated file does not parse: {e:?}\n{}", m.text);
            }
        }
        Err(e) => positioned(text, &e),
    }
}
