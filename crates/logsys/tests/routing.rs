//! Dante's routing rules, through real files.

use logsys::{Level, Logger, Routes, Target};

#[test]
fn logoutput_gets_everything_errorlog_gets_warnings_debug_needs_debug() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let err = dir.path().join("err.log");
    let log = Logger::start(
        "ferrosocks",
        42,
        Routes {
            logoutput: vec![Target::File(out.clone())],
            errorlog: vec![Target::File(err.clone())],
            debug: 0,
        },
    );
    log.info("an info line");
    log.warning("a warning line");
    log.debug("a debug line");
    log.flush();
    let o = std::fs::read_to_string(&out).unwrap();
    let e = std::fs::read_to_string(&err).unwrap();
    assert_eq!(o.lines().count(), 2, "{o}");
    assert!(o
        .lines()
        .next()
        .unwrap()
        .ends_with(" ferrosocks[42]: info: an info line"));
    let (prefix, msg) = traffic_log::Prefix::parse_line(o.lines().nth(1).unwrap()).unwrap();
    assert_eq!((prefix.level, msg), (Level::Warning, "a warning line"));
    assert_eq!(e.lines().count(), 1);
    assert!(e.ends_with("warning: a warning line\n"));

    // Reload with debug on; the same file in both lists is written once.
    log.set_routes(Routes {
        logoutput: vec![Target::File(out.clone())],
        errorlog: vec![Target::File(out.clone())],
        debug: 1,
    });
    log.debug("now visible");
    log.error("once");
    log.flush();
    let o = std::fs::read_to_string(&out).unwrap();
    assert!(o.contains("debug: now visible"));
    assert_eq!(o.matches("error: once").count(), 1);
}

#[test]
fn reopen_follows_a_rotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let log = Logger::start(
        "t",
        1,
        Routes {
            logoutput: vec![Target::File(out.clone())],
            ..Routes::default()
        },
    );
    log.info("before");
    log.flush();
    std::fs::rename(&out, dir.path().join("out.log.1")).unwrap();
    log.reopen();
    log.info("after");
    log.flush();
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .ends_with("info: after\n"));
    assert!(std::fs::read_to_string(dir.path().join("out.log.1"))
        .unwrap()
        .ends_with("info: before\n"));
}

#[test]
fn a_failing_file_is_reported_on_the_other_sinks_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.log");
    let sub = dir.path().join("missing");
    let bad = sub.join("bad.log");
    let log = Logger::start(
        "t",
        1,
        Routes {
            logoutput: vec![Target::File(bad.clone()), Target::File(good.clone())],
            ..Routes::default()
        },
    );
    log.info("one");
    log.info("two");
    log.flush();
    std::fs::create_dir(&sub).unwrap();
    log.info("three");
    log.flush();
    let g = std::fs::read_to_string(&good).unwrap();
    assert_eq!(g.matches("cannot write to log file").count(), 1, "{g}");
    assert!(g.contains("works again after failing"), "{g}");
    assert!(g.contains("2 line(s) could not be written"), "{g}");
    assert!(std::fs::read_to_string(&bad)
        .unwrap()
        .contains("info: three\n"));
}
