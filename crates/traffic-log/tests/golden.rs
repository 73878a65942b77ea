//! Golden tests: every line Dante 1.4.2 printed in the reference samples, every record
//! the reference quotes, and the seed's CONNECT examples parse, and format back to the
//! same bytes.

use std::path::Path;

use traffic_log::{Event, Prefix, Record};

fn golden(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_round_trip(origin: &str, lineno: usize, record: &str) -> Record {
    let parsed = Record::parse(record)
        .unwrap_or_else(|e| panic!("{origin}:{lineno}: does not parse: {e}\n  {record}"));
    let again = parsed.to_string();
    assert_eq!(again, record, "{origin}:{lineno}: formats differently");
    // The JSON form rebuilds the same line.
    let json = parsed.to_json();
    let text = serde_json::to_string(&json).unwrap();
    // The direct writer gives the same bytes, alone and with extra fields merged in.
    let mut direct = Vec::new();
    parsed.write_json(&mut direct, &[]);
    assert_eq!(
        String::from_utf8(direct).unwrap(),
        text,
        "{origin}:{lineno}: the direct JSON writer differs"
    );
    let extra: [(&str, &[u8]); 5] = [
        ("level", b"\"info\""),
        ("msg", b"\"m\""),
        ("pid", b"7"),
        ("subsystem", b"\"traffic\""),
        ("ts", b"\"t\""),
    ];
    let mut merged = json.clone();
    for (k, v) in extra {
        merged[k] = serde_json::from_slice(v).unwrap();
    }
    let mut direct = Vec::new();
    parsed.write_json(&mut direct, &extra);
    assert_eq!(
        String::from_utf8(direct).unwrap(),
        serde_json::to_string(&merged).unwrap(),
        "{origin}:{lineno}: the direct JSON writer differs with extra fields"
    );
    let back = Record::from_json(&serde_json::from_str(&text).unwrap())
        .unwrap_or_else(|e| panic!("{origin}:{lineno}: JSON does not rebuild: {e}\n  {text}"));
    assert_eq!(
        back.to_string(),
        record,
        "{origin}:{lineno}: JSON rebuilds differently"
    );
    parsed
}

/// Whole Dante log files: the prefix and, for traffic lines, the record round-trip.
fn check_log_file(name: &str) -> usize {
    let text = golden(name);
    let mut records = 0;
    for (i, line) in text.lines().enumerate() {
        let (prefix, msg) =
            Prefix::parse_line(line).unwrap_or_else(|e| panic!("{name}:{}: prefix: {e}", i + 1));
        assert_eq!(format!("{prefix}{msg}"), line, "{name}:{}", i + 1);
        if msg.starts_with("pass(") || msg.starts_with("block(") {
            assert_round_trip(name, i + 1, msg);
            records += 1;
        }
    }
    records
}

#[test]
fn dante_1_4_2_sample_logs_round_trip() {
    assert_eq!(check_log_file("dante-1.4.2-connect-ioop.log"), 20);
    assert_eq!(check_log_file("dante-1.4.2-connect-variants.log"), 39);
    // What Dante 1.4.2 wrote running the golden scenarios of the differential test
    // (ferrosocks/tests/it/differential.rs, FERROSOCKS_DANTE_LOGS), among them a blocked
    // udpreply datagram's `-: ENDS` without count or reason.
    assert_eq!(check_log_file("dante-1.4.2-scenarios.log"), 93);
}

#[test]
fn reference_records_round_trip() {
    let text = golden("reference-1.4-records.txt");
    let mut n = 0;
    for (i, l) in text.lines().enumerate() {
        assert_round_trip("reference", i + 1, l);
        n += 1;
    }
    assert_eq!(n, 26);
}

#[test]
fn seed_connect_examples_round_trip() {
    let text = golden("seed-1.2.3-connect.txt");
    let records: Vec<Record> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.is_empty())
        .map(|(i, l)| assert_round_trip("seed", i + 1, l))
        .collect();
    assert_eq!(records.len(), 27);
    // The chained summary carries three endpoints on the target side.
    let chained = records
        .iter()
        .find_map(|r| match &r.event {
            Event::Summary { summary, .. } => {
                summary.target.as_ref().filter(|t| t.side.0.len() == 4)
            }
            _ => None,
        })
        .expect("a chained summary");
    assert_eq!(
        chained.side.to_string(),
        "192.0.2.1.50000 203.0.113.9.1080 203.0.113.10.42000 198.51.100.7.7"
    );
}
