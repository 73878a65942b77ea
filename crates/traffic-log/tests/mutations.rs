//! Mutated log lines never make the parser panic, and whatever parses formats back to
//! the same text. A deterministic stand-in for fuzzing.

use traffic_log::{Prefix, Record};

#[test]
fn mutated_lines_never_panic_and_round_trip_when_accepted() {
    let text = include_str!("golden/dante-1.4.2-connect-variants.log");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for line in text.lines() {
        let (_, msg) = Prefix::parse_line(line).unwrap();
        for _ in 0..300 {
            let mut m: Vec<char> = msg.chars().collect();
            for _ in 0..(next() % 4 + 1) {
                if m.is_empty() {
                    break;
                }
                let at = (next() as usize) % m.len();
                match next() % 3 {
                    0 => {
                        m.remove(at);
                    }
                    1 => m.insert(
                        at,
                        [
                            ' ', ':', '.', '-', '>', '[', ']', '%', '@', '/', '(', ')', '9',
                        ][(next() % 13) as usize],
                    ),
                    _ => m.truncate(at),
                }
            }
            let mutated: String = m.into_iter().collect();
            if let Ok(r) = Record::parse(&mutated) {
                assert_eq!(r.to_string(), mutated, "accepted but formats differently");
            }
            let _ = Prefix::parse_line(&mutated);
        }
    }
}

/// The same for whole lines behind every prefix kind (`stamp::split`) and for interim
/// records: no panic, and an accepted record formats back to its text.
#[test]
fn mutated_prefixed_and_interim_lines_never_panic() {
    let mut lines: Vec<String> = include_str!("golden/prefixes.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.splitn(6, '\t').nth(5).map(str::to_owned))
        .collect();
    lines.push("pass(2): tcp/connect -: username%bob@127.0.0.1.35258 127.0.0.1.21013 -> 127.0.0.1.37659 127.0.0.1.21010: interim: 197 -> client -> 79, 79 -> target -> 197.  Session duration: 65s".into());
    lines.push("pass(1): udp/udpassociate -: 127.0.0.1.1 127.0.0.1.2 -> 127.0.0.1.3 127.0.0.1.4: interim: 34/2 -> client -> 34/2, 14/2 -> target -> 14/2.  Session duration: 9s".into());
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for line in &lines {
        for _ in 0..300 {
            let mut m: Vec<char> = line.chars().collect();
            for _ in 0..(next() % 4 + 1) {
                if m.is_empty() {
                    break;
                }
                let at = (next() as usize) % m.len();
                match next() % 3 {
                    0 => {
                        m.remove(at);
                    }
                    1 => m.insert(
                        at,
                        [
                            ' ', ':', '.', '-', '>', '[', ']', '<', '@', '/', '(', ')', '9', 'T',
                            'Z', '+',
                        ][(next() % 16) as usize],
                    ),
                    _ => m.truncate(at),
                }
            }
            let mutated: String = m.into_iter().collect();
            let (_, msg) = traffic_log::stamp::split(&mutated);
            if let Ok(r) = Record::parse(msg) {
                assert_eq!(r.to_string(), msg, "accepted but formats differently");
            }
            let _ = Record::marker(msg);
        }
    }
}
