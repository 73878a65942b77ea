//! The `MSG_ZEROCOPY` bench (`zerocopy`) moves every byte in each of its four ways and
//! accounts for every zero-copy send: a short run of each mode on loopback, its table
//! parsed. The binary itself checks that the sink received exactly what the source sent
//! (and exits 2 otherwise).

use std::process::Command;

use ferrosocks_bench::procs::first_number;

#[test]
fn every_mode_moves_every_byte_and_every_zero_copy_send_completes() {
    let out = Command::new(env!("CARGO_BIN_EXE_zerocopy"))
        .args(["--mib", "16", "--rounds", "2"])
        .output()
        .expect("zerocopy runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for mode in ["direct", "splice", "copy", "zerocopy"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {mode} |")))
            .unwrap_or_else(|| panic!("no {mode} row in\n{stdout}"));
        let rate = first_number(row.split('|').nth(2).unwrap()).unwrap();
        assert!(rate > 0.0, "{row}");
    }
    // 16 MiB in reads of at most 256 KiB: at least 64 sends a round, each one completed
    // (the relay waits for every completion before it reports).
    let zc = stdout
        .lines()
        .find(|l| l.starts_with("| zerocopy |"))
        .unwrap();
    let counts = zc.rsplit('|').nth(1).unwrap().trim();
    let sends = first_number(counts.split(" of ").nth(1).unwrap()).unwrap();
    assert!(sends >= 128.0, "{zc}");
    assert_eq!(stderr.matches(" sends copied").count(), 2, "{stderr}");
}

#[test]
fn an_unknown_mode_is_refused_with_the_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_zerocopy"))
        .arg("sendfile")
        .output()
        .expect("zerocopy runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown argument \"sendfile\""), "{stderr}");
    assert!(stderr.contains("usage: zerocopy"), "{stderr}");
}
