//! Golden test of `stamp::split`: the same record behind every prefix kind gives the same
//! message, and the stamp's time, pid and level as `golden/prefixes.txt` says.

use traffic_log::stamp::split;
use traffic_log::Record;

#[test]
fn every_prefix_kind_gives_the_same_record() {
    let text = include_str!("golden/prefixes.txt");
    let mut n = 0;
    let mut messages = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.splitn(6, '\t').collect();
        let (stamp, msg) = split(f[5]);
        let at = format!("prefixes.txt:{}", i + 1);
        assert_eq!(stamp.kind.as_str(), f[0], "{at}");
        let epoch = stamp.epoch_secs.map_or("-".to_string(), |e| e.to_string());
        assert_eq!(epoch, f[1], "{at}");
        assert_eq!(stamp.micros.to_string(), f[2], "{at}");
        let pid = stamp.pid.map_or("-".to_string(), |p| p.to_string());
        assert_eq!(pid, f[3], "{at}");
        assert_eq!(stamp.level.map_or("-", |l| l.as_str()), f[4], "{at}");
        Record::parse(msg).unwrap_or_else(|e| panic!("{at}: {e}"));
        messages.push(msg);
        n += 1;
    }
    assert_eq!(n, 11);
    assert!(messages.windows(2).all(|w| w[0] == w[1]));
}

/// The real Dante 1.4.2 logs: every line has the Dante prefix with its epoch.
#[test]
fn dante_sample_lines_are_dante_prefixed() {
    for text in [
        include_str!("golden/dante-1.4.2-connect-ioop.log"),
        include_str!("golden/dante-1.4.2-connect-variants.log"),
    ] {
        for line in text.lines() {
            let (stamp, msg) = split(line);
            assert_eq!(stamp.kind.as_str(), "dante", "{line}");
            let (prefix, m) = traffic_log::Prefix::parse_line(line).unwrap();
            assert_eq!(stamp.epoch_secs, Some(prefix.epoch_secs));
            assert_eq!(msg, m);
        }
    }
}
