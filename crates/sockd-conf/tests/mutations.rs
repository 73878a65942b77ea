//! Mutated configuration files never make the parser panic: every input gets a
//! configuration or a list of positioned errors. A deterministic stand-in for fuzzing.

use std::path::Path;

fn mutate(seed: &mut u64, text: &[u8]) -> Vec<u8> {
    let mut next = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    };
    let mut out = text.to_vec();
    for _ in 0..(next() % 6 + 1) {
        if out.is_empty() {
            break;
        }
        let at = (next() as usize) % out.len();
        match next() % 4 {
            0 => {
                out.remove(at);
            }
            1 => {
                let set = b"{}:=/#\n\\ .-0x";
                out.insert(at, set[(next() as usize) % set.len()]);
            }
            2 => out[at] = next() as u8,
            _ => out.truncate(at),
        }
    }
    out
}

#[test]
fn mutated_files_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    inputs.push(sockd_conf::EMBEDDED_DEFAULT.as_bytes().to_vec());
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    for input in &inputs {
        for _ in 0..400 {
            let text = String::from_utf8_lossy(&mutate(&mut seed, input)).into_owned();
            if let Err(e) = sockd_conf::parse("m", &text) {
                assert!(!e.0.is_empty());
                for d in &e.0 {
                    assert!(d.pos.line >= 1 && d.pos.col >= 1, "{d}");
                }
            }
        }
    }
}
