//! The differential test against Dante 1.4.2: every golden scenario of tests/golden/ (the
//! same configuration, the same client conversation) runs against a private `danted` and
//! against ferrosocks, and their traffic lines are compared after normalising what differs
//! between any two runs: ports (by first appearance, as the golden files do), durations,
//! and how a transfer splits into reads (a direction's non-empty I/O lines are summed
//! into its first). Times and PIDs are in the prefix, which is not compared, and a line
//! both write in different places counts as the same (Dante writes from several
//! processes, so lines of different sessions interleave by timing). A difference
//! fails the test unless docs/traffic-log.md's "Differences from Dante" lists it, with
//! its reason, in a ```difference block (`Dante: LINE` / `ferrosocks: LINE`, `*` for any
//! text).

use std::path::Path;

use crate::support::*;
use crate::{commands, seed, traffic_log};

/// The lines of a scenario's transcript as compared.
fn canonical(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // Index in `out` of the summed I/O line of each direction.
    let mut sums: Vec<(String, usize, u64)> = Vec::new();
    for line in text.lines() {
        let line = match line.split_once("Session duration: ") {
            Some((head, tail)) => {
                let rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
                format!(
                    "{head}Session duration: Ns{}",
                    rest.strip_prefix('s').unwrap_or(rest)
                )
            }
            None => line.to_owned(),
        };
        let line = seconds(&line);
        if let Some((head, n)) = io_line(&line) {
            if n > 0 {
                if let Some((_, at, sum)) = sums.iter_mut().find(|(h, _, _)| *h == head) {
                    *sum += n;
                    out[*at] = format!("{head} ({sum})");
                    continue;
                }
                sums.push((head.clone(), out.len(), n));
            }
        }
        out.push(line);
    }
    out
}

/// `… in 0 seconds`, `… after 1 second`: a time, written `N seconds`.
fn seconds(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(" second") {
        let head = &rest[..at];
        let digits = head.len() - head.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let tail = &rest[at + " second".len()..];
        if digits == 0 {
            out.push_str(&rest[..at + " second".len()]);
        } else {
            out.push_str(&head[..head.len() - digits]);
            out.push_str("N seconds");
        }
        rest = if digits > 0 {
            tail.strip_prefix('s').unwrap_or(tail)
        } else {
            tail
        };
    }
    out.push_str(rest);
    out
}

/// `HEAD (N)`: an I/O line without data, split into its head and count.
fn io_line(line: &str) -> Option<(String, u64)> {
    if !line.contains(" -: ") || !line.ends_with(')') {
        return None;
    }
    let (head, n) = line[..line.len() - 1].rsplit_once(" (")?;
    Some((head.to_owned(), n.parse().ok()?))
}

/// The differences docs/traffic-log.md lists: (Dante's patterns, ferrosocks' patterns).
fn listed() -> (Vec<String>, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/traffic-log.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (mut dante, mut ours) = (Vec::new(), Vec::new());
    let mut inside = false;
    for line in doc.lines() {
        let t = line.trim();
        if t == "```difference" {
            inside = true;
        } else if t.starts_with("```") {
            inside = false;
        } else if inside {
            if let Some(p) = t.strip_prefix("Dante: ") {
                dante.push(p.trim().to_owned());
            } else if let Some(p) = t.strip_prefix("ferrosocks: ") {
                ours.push(p.trim().to_owned());
            } else {
                assert!(
                    t.is_empty(),
                    "{}: bad difference line {t:?}",
                    path.display()
                );
            }
        }
    }
    (dante, ours)
}

/// `*` in a pattern stands for any text.
fn matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(p);
        }
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// The lines of `a` and of `b` outside their longest common subsequence.
fn diff<'a>(a: &'a [String], b: &'a [String]) -> (Vec<&'a String>, Vec<&'a String>) {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j == m || (i < n && lcs[i + 1][j] >= lcs[i][j + 1]) {
            only_a.push(&a[i]);
            i += 1;
        } else {
            only_b.push(&b[j]);
            j += 1;
        }
    }
    // A line both have, in different places, is a line written by another process (Dante
    // logs from several) or session first: timing, not a difference.
    let mut i = 0;
    while i < only_a.len() {
        match only_b.iter().position(|l| *l == only_a[i]) {
            Some(j) => {
                only_a.remove(i);
                only_b.remove(j);
            }
            None => i += 1,
        }
    }
    (only_a, only_b)
}

/// Runs `scenario` against both servers side by side and compares.
fn differential(name: &str, scenario: fn(Impl) -> String) {
    assert!(
        Path::new(DANTED).is_file(),
        "{DANTED} is not installed: run ./test.sh"
    );
    let (ours, dante) = std::thread::scope(|s| {
        let ours = s.spawn(|| scenario(Impl::Ferrosocks));
        let dante = s.spawn(|| scenario(Impl::Dante));
        (
            ours.join()
                .unwrap_or_else(|_| panic!("{name}: the scenario failed on ferrosocks")),
            dante
                .join()
                .unwrap_or_else(|_| panic!("{name}: the scenario failed on Dante 1.4.2")),
        )
    });
    let (ours, dante) = (canonical(&ours), canonical(&dante));
    // FERROSOCKS_DIFF_SHOW=1 prints what was compared.
    if std::env::var_os("FERROSOCKS_DIFF_SHOW").is_some() {
        eprintln!(
            "{name}, Dante 1.4.2:\n{}\n\n{name}, ferrosocks:\n{}",
            dante.join("\n"),
            ours.join("\n")
        );
    }
    let (dante_ok, ours_ok) = listed();
    let (only_ours, only_dante) = diff(&ours, &dante);
    let unlisted: Vec<String> = only_dante
        .iter()
        .filter(|l| !dante_ok.iter().any(|p| matches(p, l)))
        .map(|l| format!("Dante: {l}"))
        .chain(
            only_ours
                .iter()
                .filter(|l| !ours_ok.iter().any(|p| matches(p, l)))
                .map(|l| format!("ferrosocks: {l}")),
        )
        .collect();
    assert!(
        unlisted.is_empty(),
        "{name}: differences from Dante 1.4.2 that docs/traffic-log.md does not list:\n{}\n\n\
         Dante 1.4.2:\n{}\n\nferrosocks:\n{}",
        unlisted.join("\n"),
        dante.join("\n"),
        ours.join("\n")
    );
}

#[test]
fn canonical_sums_io_lines_and_durations() {
    let text = "pass(1): tcp/connect -: A -> B (3)\npass(1): tcp/connect -: B -> A (2)\n\
                pass(1): tcp/connect -: A -> B (4)\npass(1): tcp/connect -: A -> B (0)\n\
                pass(1): tcp/accept ]: 2 -> A -> 7: local client closed.  Session duration: 12s\n";
    assert_eq!(
        canonical(text),
        [
            "pass(1): tcp/connect -: A -> B (7)",
            "pass(1): tcp/connect -: B -> A (2)",
            "pass(1): tcp/connect -: A -> B (0)",
            "pass(1): tcp/accept ]: 2 -> A -> 7: local client closed.  Session duration: Ns",
        ]
    );
    assert_eq!(
        seconds("x: error after reading 1 byte in 0 seconds: y after 1 second"),
        "x: error after reading 1 byte in N seconds: y after N seconds"
    );
    assert!(matches("a*c", "abbc") && matches("a*", "a") && !matches("a*c", "abd"));
    assert!(matches("x", "x") && !matches("x", "xy"));
}

#[test]
fn curl_hostname_ioop() {
    differential("curl-hostname-ioop", traffic_log::curl_hostname_ioop);
}

#[test]
fn variants() {
    differential("variants", traffic_log::variants);
}

#[test]
fn bind() {
    differential("bind", commands::bind_relay);
}

#[test]
fn bind_blocked_and_timeout() {
    differential(
        "bind-blocked-and-timeout",
        commands::bind_blocked_and_timeout,
    );
}

#[test]
fn bind_client_gone() {
    differential("bind-client-gone", commands::bind_client_gone);
}

#[test]
fn udp_pysocks() {
    differential("udp-pysocks", commands::udp_pysocks);
}

#[test]
fn seed_4_1() {
    differential("seed-4.1", seed::s4_1);
}

#[test]
fn seed_4_2() {
    differential("seed-4.2", seed::s4_2);
}

#[test]
fn seed_4_7() {
    differential("seed-4.7", seed::s4_7);
}

#[test]
fn seed_4_8() {
    differential("seed-4.8", seed::s4_8);
}

#[test]
fn seed_4_9() {
    differential("seed-4.9", seed::s4_9);
}

#[test]
fn seed_4_11() {
    differential("seed-4.11", seed::s4_11);
}

#[test]
fn negotiation_failures() {
    differential(
        "negotiation-failures",
        crate::bad_input::negotiation_failures,
    );
}

#[test]
fn tcpinfo() {
    differential("tcpinfo", crate::logging::tcpinfo_session);
}

#[test]
fn auth_failures() {
    differential("auth-failures", crate::bad_input::auth_failures);
}

#[test]
fn dump() {
    differential("dump", crate::logging::dump_scenario);
}

#[test]
fn close_order() {
    differential("close-order", traffic_log::close_order);
}
