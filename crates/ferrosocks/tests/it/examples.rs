//! The configurations shipped in `examples/`: each one checks with `-V`, and the minimal
//! one serves a CONNECT as it is, only its port changed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// `examples/` at the top of the repository.
fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Every `*.conf` in `examples/`, by listing the directory: a new example is checked
/// without touching this file.
fn examples() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("examples/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "conf"))
        .collect();
    all.sort();
    all
}

#[test]
fn every_example_checks_with_v() {
    let all = examples();
    for name in ["sockd.conf", "sockd-minimal.conf"] {
        assert!(
            all.iter().any(|p| p.file_name().is_some_and(|f| f == name)),
            "examples/{name} is missing: {all:?}"
        );
    }
    for path in &all {
        let (code, out, err) = run(Command::new(BIN).arg("-V").arg("-f").arg(path));
        assert_eq!(
            code,
            0,
            "{}: exit {code}\nstdout:\n{out}\nstderr:\n{err}",
            path.display()
        );
        assert!(
            out.contains("configuration OK"),
            "{}: stdout:\n{out}",
            path.display()
        );
        assert_eq!(err, "", "{}: an example warns", path.display());
    }
}

#[test]
fn the_minimal_example_serves_a_connect() {
    require("curl");
    let text = std::fs::read_to_string(examples_dir().join("sockd-minimal.conf")).unwrap();
    assert!(text.contains("port = 1080"), "{text}");
    let http = Helper::http();
    // Port 0: the kernel picks a free port, and the ready line names it.
    let p = Proxy::start(&text.replace("port = 1080", "port = 0"));
    assert!(p.addr.ip().is_loopback(), "{}", p.addr);
    let (code, out, err) = curl(&[
        "--socks5-hostname",
        &p.addr.to_string(),
        &format!("http://127.0.0.1:{}/", http.addr.port()),
    ]);
    assert_eq!((code, out.as_str()), (0, HTTP_BODY), "curl: {err}");
    // Its traffic records go to stderr, as the example says.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !p.stderr().contains("pass(1): tcp/connect ]: ") {
        assert!(
            Instant::now() < deadline,
            "no summary on stderr:\n{}",
            p.stderr()
        );
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(20));
    }
}
