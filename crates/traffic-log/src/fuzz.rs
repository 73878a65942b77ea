//! Fuzz target bodies (fuzz/ runs them under cargo-fuzz; tests/fuzz_corpus.rs replays
//! the corpus on stable). The parser accepts exactly what the formatter writes: a
//! record or a whole log line that parses formats back to the same bytes, and a record
//! rebuilt from its JSON form is the same record.

use crate::{Prefix, Record};

/// A traffic record, and a whole log line (prefix and message), round trip.
pub fn round_trip(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Record::parse(line) {
        assert_eq!(r.to_string(), line, "{r:?}");
        let json = r.to_json();
        let back = Record::from_json(&json)
            .unwrap_or_else(|e| panic!("JSON of {line:?} does not rebuild: {e}\n{json}"));
        assert_eq!(back, r);
    }
    if let Ok((prefix, msg)) = Prefix::parse_line(line) {
        assert_eq!(format!("{prefix}{msg}"), line, "{prefix:?}");
    }
}
