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
