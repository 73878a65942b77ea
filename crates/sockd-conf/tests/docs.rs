//! docs/configuration.md is generated from the keyword table; these tests fail when the
//! committed copy is stale (`FERROSOCKS_BLESS=1` rewrites it), and check that its lists
//! of what is refused and what is ignored are the table's (tests/parse.rs feeds every
//! table entry to the parser).

use std::collections::BTreeSet;
use std::path::Path;

use sockd_conf::keywords::{self, Source, Status, KEYWORDS, SPECIALS};

fn doc_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md")
}

#[test]
fn configuration_reference_is_up_to_date() {
    let path = doc_path();
    let want = keywords::reference_markdown();
    if std::env::var_os("FERROSOCKS_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/configuration.md is stale: run FERROSOCKS_BLESS=1 cargo test -p sockd-conf --test docs"
    );
}

/// The first cell of every table row in the section titled `title`.
fn listed(doc: &str, title: &str) -> BTreeSet<String> {
    let start = doc
        .find(&format!("\n{title}\n"))
        .unwrap_or_else(|| panic!("no {title:?}"));
    let body = &doc[start + title.len() + 2..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    body.lines()
        .filter_map(|l| l.strip_prefix("| "))
        .map(|l| l.split(" |").next().unwrap().to_owned())
        .filter(|c| c.starts_with('`'))
        .collect()
}

/// What the table gives `status`: keywords and specials, as the document names them.
fn in_table(status: Status) -> BTreeSet<String> {
    KEYWORDS
        .iter()
        .filter(|k| k.status == status)
        .map(|k| format!("`{}`", k.name))
        .chain(
            SPECIALS
                .iter()
                .filter(|s| s.status == status)
                .map(|s| s.label()),
        )
        .collect()
}

#[test]
fn documented_refusals_and_ignores_are_the_tables() {
    // While the other test rewrites the file, read what it writes.
    let doc = match std::env::var_os("FERROSOCKS_BLESS") {
        Some(_) => keywords::reference_markdown(),
        None => std::fs::read_to_string(doc_path()).unwrap(),
    };
    let not_yet = listed(&doc, keywords::NOT_YET_TITLE);
    assert_eq!(not_yet, in_table(Status::NotYet));
    for label in [
        "`srchost`",
        "`libwrap`",
        "`socksmethod: gssapi`",
        "`socksmethod` in a client rule",
    ] {
        assert!(not_yet.contains(label), "{label} not listed");
    }
    // `log: tcpinfo` works: it is not listed as refused anywhere in the document.
    assert!(!doc.contains("log: tcpinfo"));
    let ignored = listed(&doc, keywords::IGNORED_TITLE);
    assert_eq!(ignored, in_table(Status::Ignored));
    assert!(ignored.contains("`extension`") && ignored.contains("`compatibility: sameport`"));
}

#[test]
fn ferrosocks_only_keywords_are_marked() {
    let doc = keywords::reference_markdown();
    for k in KEYWORDS {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", k.name)))
            .unwrap_or_else(|| panic!("no row for {}", k.name));
        let marked = row.contains("| **ferrosocks only** |");
        assert_eq!(marked, k.source == Source::Ferrosocks, "{row}");
    }
    for name in [
        "passwordfile",
        "verb",
        "mute",
        "logformat",
        "log.*",
        "log.default.facility",
    ] {
        let k = keywords::lookup(name).unwrap();
        assert_eq!(k.source, Source::Ferrosocks, "{name}");
    }
}
