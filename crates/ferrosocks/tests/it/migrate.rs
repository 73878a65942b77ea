//! `ferrosocks migrate --from-dante`: Debian's shipped danted.conf and its sample with
//! every keyword uncommented become files `-V` accepts; a file with errors has them all
//! reported and nothing is written.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sockd-conf/tests/data")
        .join(name)
}

/// Runs `migrate --from-dante from`, then `-V` on what it printed (saved in `dir`).
fn migrate_and_verify(dir: &Path, from: &Path) -> (String, String) {
    let (code, out, err) = run(Command::new(BIN)
        .arg("migrate")
        .arg("--from-dante")
        .arg(from));
    assert_eq!(code, 0, "migrate: exit {code}\nstderr:\n{err}");
    let migrated = dir.join("ferrosocks.conf");
    std::fs::write(&migrated, &out).unwrap();
    let (code, vout, verr) = run(Command::new(BIN).arg("-V").arg("-f").arg(&migrated));
    assert_eq!(
        code, 0,
        "-V on the migrated file: exit {code}\n{verr}\nthe file:\n{out}"
    );
    assert!(vout.ends_with("configuration OK\n"), "{vout}");
    // -o writes the same bytes.
    let o = dir.join("o.conf");
    let (code, oout, _) = run(Command::new(BIN)
        .args(["migrate", "-o"])
        .arg(&o)
        .arg("--from-dante")
        .arg(from));
    assert_eq!((code, oout.as_str()), (0, ""));
    assert_eq!(std::fs::read_to_string(&o).unwrap(), out);
    (out, err)
}

#[test]
fn debians_danted_conf_migrates_to_a_file_that_checks() {
    let dir = tempfile::tempdir().unwrap();
    let from = data("debian-etc-danted.conf");
    let (out, err) = migrate_and_verify(dir.path(), &from);
    // Dante does not start on it either: it has no internal address.
    assert!(out.contains("\ninternal: 127.0.0.1 port = 1080\n"), "{out}");
    for kept in [
        "\nuser.privileged: proxy\n",
        "\nuser.unprivileged: nobody\n",
        "\nuser.libwrap: nobody\n",
        "\nlogoutput: stderr\n",
    ] {
        assert!(out.contains(kept), "{kept:?} lost:\n{out}");
    }
    // Every comment of the Dante file is still there.
    let text = std::fs::read_to_string(&from).unwrap();
    for line in text.lines().filter(|l| l.starts_with('#')) {
        assert!(out.contains(line), "{line:?} lost");
    }
    assert!(
        err.lines()
            .any(|l| l.starts_with("ferrosocks: note: ") && l.contains("no \"internal:\"")),
        "{err}"
    );
}

#[test]
fn a_file_with_errors_has_them_all_reported_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let from = data("debian-etc-danted-uncommented.conf");
    let o = dir.path().join("out.conf");
    let (code, out, err) = run(Command::new(BIN)
        .arg("migrate")
        .arg("--from-dante")
        .arg(&from)
        .arg("-o")
        .arg(&o));
    assert_eq!(code, 64, "{err}");
    assert_eq!(out, "");
    assert!(!o.exists(), "an output file was written");
    let name = from.display();
    // The file's two errors (Dante refuses them too); what the keyword table refuses
    // (pam, srchost, libwrap) would be commented out, so it is not an error here.
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| !l.ends_with("nothing written"))
        .collect();
    assert_eq!(
        errors,
        [
            format!("ferrosocks: {name}:106:16: unknown compatibility option \"reuseaddr\" (expected sameport or draft-5.05)"),
            format!("ferrosocks: {name}:243:23: method \"username\" is not valid for \"clientmethod\" (client rules see no SOCKS bytes; use socksmethod)"),
        ],
        "{err}"
    );
    assert!(
        err.ends_with(&format!("{name}: the file has errors; nothing written\n")),
        "{err}"
    );
    // Errors found only after a refused keyword is set aside are reported too.
    let broken = dir.path().join("broken.conf");
    std::fs::write(
        &broken,
        "internal: 127.0.0.1 port = 1080\nsocks pass { from: 0/0 to: 0/0 group: staff log: connect bogus }\n",
    )
    .unwrap();
    let (code, out, err) = run(Command::new(BIN)
        .arg("migrate")
        .arg("--from-dante")
        .arg(&broken));
    assert_eq!((code, out.as_str()), (64, ""), "{err}");
    assert!(
        err.contains(&format!("{}:2:", broken.display())) && err.contains("\"bogus\""),
        "{err}"
    );
    // A file that cannot be read.
    let (code, _, err) = run(Command::new(BIN)
        .arg("migrate")
        .arg("--from-dante")
        .arg(dir.path().join("nope.conf")));
    assert_eq!(code, 64);
    assert!(err.contains("No such file or directory"), "{err}");
}

#[test]
fn debians_sample_with_every_keyword_migrates_and_checks() {
    // Debian's sample with every keyword uncommented, less its two errors, and with
    // this host's addresses instead of 10.1.1.1, eth0, 192.168.1.1 and lo0.
    let text = std::fs::read_to_string(data("debian-etc-danted-uncommented.conf")).unwrap();
    let text: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| match i + 1 {
            106 | 243 => format!("#{l}\n"),
            _ => format!(
                "{}\n",
                l.replace("internal: 10.1.1.1", "internal: 127.0.0.1")
                    .replace("internal: eth0", "internal: lo")
                    .replace("external: 192.168.1.1", "external: 127.0.0.1")
                    .replace("to: lo0", "to: lo")
                    .replace("/var/log/sockd.log", "/dev/null")
            ),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("danted.conf");
    std::fs::write(&from, &text).unwrap();
    let (out, err) = migrate_and_verify(dir.path(), &from);
    for cut in [
        "#| socksmethod: pam\n",
        // The lists "socksmethod: pam" replaced must not come back into force.
        "#| socksmethod: username none #rfc931\n",
        "#| socksmethod: username rfc931 none\n",
        "#| srchost: nodnsunknown nodnsmismatch\n",
        "#|         libwrap: spawn finger @%a\n",
        "#| compatibility: sameport\n",
        "#| extension: bind\n",
    ] {
        assert!(out.contains(cut), "{cut:?} not commented out:\n{out}");
    }
    // The block rule keeps its other lines.
    assert!(
        out.contains("#|         libwrap: spawn finger @%a\n        log: connect error\n}"),
        "{out}"
    );
    // Each is explained with the keyword table's reason, and listed on stderr.
    assert!(
        out.contains(
            "# ferrosocks: \"srchost\" is not supported yet: ferrosocks does no reverse DNS lookup"
        ),
        "{out}"
    );
    for line in [72, 134, 202] {
        assert!(
            err.contains(&format!("{}:{line}:", from.display())),
            "line {line} not noted:\n{err}"
        );
    }
    // Every line of the Dante file not commented out is in the result as it was.
    for line in text.lines() {
        assert!(out.contains(line.trim_start()), "{line:?} lost");
    }
}
