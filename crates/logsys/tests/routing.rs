//! The router through real files, FIFOs and channels: Dante's logoutput/errorlog/debug,
//! ircu subsystems, verb, mute, JSON, operators, failing and stalled sinks.

use std::path::Path;

use logsys::*;

fn file(p: &Path) -> SinkSpec {
    SinkSpec::text(Target::File(p.to_path_buf()))
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn msgs(p: &Path) -> Vec<String> {
    lines(p)
        .iter()
        .map(|l| {
            traffic_log::Prefix::parse_line(l)
                .map(|(_, m)| m.to_owned())
                .unwrap_or_else(|_| l.clone())
        })
        .collect()
}

fn start(config: LogConfig) -> Logger {
    Logger::start("ferrosocks", 42, config)
}

#[test]
fn dante_routing_logoutput_errorlog_debug() {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out.log"), dir.path().join("err.log"));
    let log = start(LogConfig {
        logoutput: vec![file(&out)],
        errorlog: vec![file(&err)],
        ..LogConfig::default()
    });
    log.info("an info line");
    log.warning("a warning line");
    log.debug("a debug line");
    log.flush();
    let o = lines(&out);
    assert_eq!(o.len(), 2, "{o:?}");
    assert!(o[0].ends_with(" ferrosocks[42]: info: an info line"));
    assert_eq!(msgs(&err), ["a warning line"]);
    log.set_config(LogConfig {
        logoutput: vec![file(&out)],
        errorlog: vec![file(&out)],
        debug: 1,
        ..LogConfig::default()
    });
    log.debug("now visible");
    log.error("once");
    log.flush();
    let o = std::fs::read_to_string(&out).unwrap();
    assert!(o.contains("debug: now visible"));
    assert_eq!(
        o.matches("error: once").count(),
        1,
        "a file in both lists gets a line once"
    );
}

#[test]
fn subsystems_levels_files_and_verb() {
    let dir = tempfile::tempdir().unwrap();
    let (out, auth) = (dir.path().join("out.log"), dir.path().join("auth.log"));
    let mut c = LogConfig {
        logoutput: vec![file(&out)],
        ..LogConfig::default()
    };
    c.subsystems[Subsystem::AUTH.index()] = SubsystemConfig {
        level: Some(Level::Notice),
        file: Some(auth.clone()),
        ..Default::default()
    };
    let log = start(c.clone());
    log.at(
        Subsystem::AUTH,
        Level::Info,
        "auth info: below NOTICE, dropped",
    );
    log.at(Subsystem::AUTH, Level::Notice, "auth notice");
    log.at(Subsystem::TRAFFIC, Level::Trace, "traffic trace");
    log.at(
        Subsystem::TRAFFIC,
        Level::Info,
        "traffic info: below TRACE, dropped",
    );
    log.at(
        Subsystem::MGMT,
        Level::Info,
        "mgmt info: below NOTICE, dropped",
    );
    log.flush();
    assert_eq!(msgs(&out), ["auth notice", "traffic trace"]);
    assert_eq!(msgs(&auth), ["auth notice"]);
    assert!(!log.enabled(Subsystem::DEBUG, Level::Debug));
    // verb 2: notice and worse for every subsystem not set on its own.
    log.set_verb(Some(2));
    log.at(Subsystem::TRAFFIC, Level::Trace, "hidden at verb 2");
    log.at(Subsystem::CLIENT, Level::Notice, "client notice");
    log.set_verb(Some(11));
    log.at(Subsystem::RESOLVER, Level::Debug, "debug at verb 11");
    log.at(Subsystem::AUTH, Level::Info, "auth keeps its own level");
    log.flush();
    let m = msgs(&out);
    assert_eq!(m[2..], ["client notice", "debug at verb 11"], "{m:?}");
    assert_eq!(log.verb(), Some(11));
}

/// `verb` and `mute` changed at run time keep the sinks: a file renamed before the change
/// goes on being written (nothing was reopened), and no writer was waited for.
#[test]
fn verb_and_mute_change_at_once_on_the_same_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let log = start(LogConfig {
        logoutput: vec![file(&out)],
        ..LogConfig::default()
    });
    log.info("before");
    log.flush();
    let moved = dir.path().join("moved.log");
    std::fs::rename(&out, &moved).unwrap();
    log.set_verb(Some(1));
    assert!(!log.enabled(Subsystem::SYSTEM, Level::Info));
    log.info("hidden at verb 1");
    log.warning("a warning at verb 1");
    log.set_mute(5);
    assert_eq!((log.verb(), log.mute()), (Some(1), 5));
    log.set_verb(None);
    log.info("after");
    log.flush();
    assert_eq!(msgs(&moved), ["before", "a warning at verb 1", "after"]);
    assert!(!out.exists(), "a sink was reopened");
    // A reload applies the configuration's values again.
    log.set_config(LogConfig {
        logoutput: vec![file(&out)],
        ..LogConfig::default()
    });
    assert_eq!((log.verb(), log.mute()), (None, 0));
}

#[test]
fn a_file_shared_by_subsystems_and_logoutput_is_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let mut c = LogConfig {
        logoutput: vec![file(&out)],
        ..LogConfig::default()
    };
    c.subsystems[Subsystem::TRAFFIC.index()].file = Some(out.clone());
    c.subsystems[Subsystem::UDP.index()].file = Some(out.clone());
    let log = start(c);
    log.at(Subsystem::TRAFFIC, Level::Trace, "traffic line");
    log.at(Subsystem::UDP, Level::Trace, "udp line");
    log.flush();
    assert_eq!(msgs(&out), ["traffic line", "udp line"]);
}

#[test]
fn mute_suppresses_repeats_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let log = start(LogConfig {
        logoutput: vec![file(&out)],
        mute: 2,
        ..LogConfig::default()
    });
    for i in 0..5 {
        log.categorized(Subsystem::CLIENT, Level::Info, 7, format!("refused {i}"));
    }
    log.categorized(Subsystem::CLIENT, Level::Info, 8, "something else");
    log.at(Subsystem::CLIENT, Level::Info, "never muted");
    log.at(Subsystem::CLIENT, Level::Info, "never muted");
    log.flush();
    assert_eq!(
        msgs(&out),
        [
            "refused 0",
            "refused 1",
            "3 variation(s) on previous 2 message(s) suppressed by mute",
            "something else",
            "never muted",
            "never muted"
        ]
    );
    assert_eq!(log.mute(), 2);
}

#[test]
fn json_lines_rebuild_the_traffic_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let log = start(LogConfig {
        logoutput: vec![SinkSpec {
            target: Target::File(out.clone()),
            format: Format::Json,
        }],
        ..LogConfig::default()
    });
    let line = "pass(2): tcp/connect ]: 197 -> username%alice@127.0.0.1.44460 127.0.0.1.21014 -> 79, 79 -> 127.0.0.1.40779 localhost.21010 -> 197: remote peer closed.  Session duration: 0s";
    log.traffic(
        Subsystem::TRAFFIC,
        Level::Trace,
        traffic_log::Record::parse(line).unwrap(),
    );
    log.info("plain");
    log.flush();
    let l = lines(&out);
    let v: serde_json::Value = serde_json::from_str(&l[0]).unwrap();
    assert_eq!(v["subsystem"], "TRAFFIC");
    assert_eq!(v["level"], "trace");
    assert_eq!(v["pid"], 42);
    assert_eq!(v["msg"], line);
    assert_eq!(v["client"]["endpoints"][0]["user"], "alice");
    assert_eq!(v["target"]["read"]["bytes"], 197);
    let ts = v["ts"].as_str().unwrap();
    // RFC 3339 with microseconds, in UTC (`Z`) or with a numeric offset, digit for digit.
    let shape = if ts.ends_with('Z') {
        "dddd-dd-ddTdd:dd:dd.ddddddZ"
    } else {
        "dddd-dd-ddTdd:dd:dd.dddddd+dd:dd"
    };
    assert_eq!(ts.len(), shape.len(), "{ts}");
    for (got, want) in ts.chars().zip(shape.chars()) {
        let fits = match want {
            'd' => got.is_ascii_digit(),
            '+' => got == '+' || got == '-',
            c => got == c,
        };
        assert!(fits, "{ts} does not have the shape {shape}");
    }
    assert_eq!(
        traffic_log::Record::from_json(&v).unwrap().to_string(),
        line
    );
    let p: serde_json::Value = serde_json::from_str(&l[1]).unwrap();
    assert_eq!(
        (p["msg"].as_str(), p["subsystem"].as_str()),
        (Some("plain"), Some("SYSTEM"))
    );
}

#[test]
fn operators_receive_flagged_subsystems_with_history() {
    let mut c = LogConfig::default();
    c.subsystems[Subsystem::AUTH.index()].operators = Some(true);
    let log = start(c);
    log.at(Subsystem::CONFIG, Level::Warning, "before subscribing");
    log.flush();
    let (tx, rx) = std::sync::mpsc::channel();
    let history = log.subscribe(
        u32::MAX,
        Level::Info,
        Box::new(move |r| tx.send(r.text.clone()).is_ok()),
    );
    let texts = |h: Vec<OperatorRecord>| h.into_iter().map(|r| r.text).collect::<Vec<_>>();
    assert_eq!(texts(history), ["before subscribing"]);
    log.at(Subsystem::AUTH, Level::Info, "auth to operators");
    log.at(
        Subsystem::CLIENT,
        Level::Info,
        "client: operators off by default",
    );
    log.flush();
    let got: Vec<String> = rx.try_iter().collect();
    assert_eq!(got, ["auth to operators"]);
    // The history is kept whether or not anyone is subscribed.
    assert_eq!(
        texts(log.history(u32::MAX, Level::Info)),
        ["before subscribing", "auth to operators"]
    );
    assert_eq!(
        texts(log.history(1 << Subsystem::AUTH.index(), Level::Info)),
        ["auth to operators"]
    );
}

#[test]
fn the_history_keeps_the_last_thousand_records_each_with_its_own_text() {
    let mut c = LogConfig::default();
    c.subsystems[Subsystem::AUTH.index()].operators = Some(true);
    let log = start(c);
    // Long and short texts in turn, so that reused buffers meet texts of every size.
    let text = |i: usize| {
        if i.is_multiple_of(7) {
            format!("record {i} {}", "x".repeat(2000))
        } else {
            format!("record {i}")
        }
    };
    for i in 0..1_250 {
        log.at(Subsystem::AUTH, Level::Info, text(i));
    }
    log.flush();
    let got: Vec<String> = log
        .history(u32::MAX, Level::Info)
        .into_iter()
        .map(|r| r.text)
        .collect();
    let want: Vec<String> = (250..1_250).map(text).collect();
    assert_eq!(got, want);
}

#[test]
fn reopen_follows_a_rotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let log = start(LogConfig {
        logoutput: vec![file(&out)],
        ..LogConfig::default()
    });
    log.info("before");
    log.flush();
    std::fs::rename(&out, dir.path().join("out.log.1")).unwrap();
    log.reopen();
    log.info("after");
    log.flush();
    assert_eq!(msgs(&out), ["after"]);
    assert_eq!(msgs(&dir.path().join("out.log.1")), ["before"]);
}

/// Opens through the real opener, remembering every path (what a privileged helper
/// would be asked), refusing one path.
struct Recording {
    opened: std::sync::Arc<std::sync::Mutex<Vec<std::path::PathBuf>>>,
    refuse: Option<std::path::PathBuf>,
}

impl FileOpener for Recording {
    fn open_append(&self, path: &Path) -> std::io::Result<std::fs::File> {
        self.opened.lock().unwrap().push(path.to_path_buf());
        if self.refuse.as_deref() == Some(path) {
            return Err(std::io::Error::from_raw_os_error(EACCES));
        }
        open_append(path)
    }
}

const EACCES: i32 = 13;

#[test]
fn an_installed_opener_opens_every_file_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (out, more) = (dir.path().join("out.log"), dir.path().join("more.log"));
    let log = start(LogConfig {
        logoutput: vec![file(&out)],
        ..LogConfig::default()
    });
    log.info("opened directly");
    log.flush();
    let opened = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    log.set_opener(Box::new(Recording {
        opened: std::sync::Arc::clone(&opened),
        refuse: None,
    }));
    // A reopen after a rotation, and a sink a reload adds, both go through it.
    std::fs::rename(&out, dir.path().join("out.log.1")).unwrap();
    log.reopen();
    log.info("after the rotation");
    log.flush();
    log.set_config(LogConfig {
        logoutput: vec![file(&out), file(&more)],
        ..LogConfig::default()
    });
    log.info("after the reload");
    log.flush();
    let seen = opened.lock().unwrap().clone();
    assert!(seen.contains(&out) && seen.contains(&more), "{seen:?}");
    assert_eq!(msgs(&dir.path().join("out.log.1")), ["opened directly"]);
    assert_eq!(msgs(&out), ["after the rotation", "after the reload"]);
    assert_eq!(msgs(&more), ["after the reload"]);

    // An opener that refuses a file: the failure is reported on the sink that works.
    log.set_opener(Box::new(Recording {
        opened: std::sync::Arc::clone(&opened),
        refuse: Some(more.clone()),
    }));
    std::fs::rename(&more, dir.path().join("more.log.1")).unwrap();
    log.reopen();
    log.info("with the refusing opener");
    log.flush();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&out)
        .unwrap()
        .contains("cannot write to log file")
    {
        assert!(std::time::Instant::now() < deadline, "no report");
        log.flush();
    }
    let o = std::fs::read_to_string(&out).unwrap();
    assert!(o.contains("Permission denied"), "{o}");
    assert!(!more.exists());
}

#[test]
fn a_failing_file_is_reported_on_the_other_sinks_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.log");
    let sub = dir.path().join("missing");
    let bad = sub.join("bad.log");
    let config = LogConfig {
        logoutput: vec![file(&bad), file(&good)],
        ..LogConfig::default()
    };
    let log = start(config.clone());
    log.info("one");
    log.info("two");
    log.flush();
    // A reload keeps the sink: its failure goes on, reported once, its count kept.
    log.set_config(config);
    log.info("two and a half");
    log.flush();
    std::fs::create_dir(&sub).unwrap();
    log.info("three");
    // Reports travel from the sink thread back through the router: wait for them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let g = loop {
        log.flush();
        let g = std::fs::read_to_string(&good).unwrap();
        if g.contains("works again") || std::time::Instant::now() > deadline {
            break g;
        }
    };
    assert_eq!(g.matches("cannot write to log file").count(), 1, "{g}");
    assert!(g.contains("works again after failing"), "{g}");
    assert!(g.contains("3 line(s) could not be written"), "{g}");
    assert!(msgs(&bad).contains(&"three".to_string()));
}

/// A FIFO nobody reads: the sink stalls, the other sink gets every line plus a report of
/// the stall, and when a reader appears the count of dropped lines is reported.
#[test]
fn a_stalled_fifo_is_reported_and_never_blocks_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // A reader that opens the FIFO and never reads, so writes block once the pipe is full.
    let reader = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap()
    };
    let good = dir.path().join("good.log");
    let log = start(LogConfig {
        logoutput: vec![file(&fifo), file(&good)],
        ..LogConfig::default()
    });
    // 40,000 lines, far more than the stalled sink can hold, in bursts that the good
    // sink's own buffer (16,384 lines) takes whole however slowly its writer is scheduled:
    // between bursts the test waits for the good file, never for the stalled sink.
    let n = 40_000;
    let burst = 8_000;
    for start in (0..n).step_by(burst) {
        for i in start..start + burst {
            log.at(
                Subsystem::TRAFFIC,
                Level::Trace,
                format!("line {i} {}", "x".repeat(100)),
            );
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while msgs(&good)
            .iter()
            .filter(|m| m.starts_with("line "))
            .count()
            < start + burst
            && std::time::Instant::now() < deadline
        {
            #[allow(clippy::disallowed_methods)] // a plain test thread, no runtime
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    log.flush();
    // The producer never waited on the stalled sink.
    let g = msgs(&good);
    assert_eq!(
        g.iter().filter(|m| m.starts_with("line ")).count(),
        n,
        "the good sink lost lines"
    );
    assert!(
        g.iter()
            .any(|m| m.starts_with("log file ") && m.contains("fifo is stalled")),
        "no stall report"
    );
    // Drain the FIFO: the sink catches up and reports how many lines it dropped.
    let mut r = reader;
    let drainer = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            match std::io::Read::read(&mut r, &mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => std::thread::yield_now(),
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        log.info("probe");
        log.flush();
        if msgs(&good)
            .iter()
            .any(|m| m.contains("takes lines again") && m.contains("line(s) were dropped"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no recovery report");
    }
    drop(log);
    drop(drainer);
}

/// Lines are formatted and appended on the logging threads: from several threads at
/// once, every line arrives whole (no interleaving) and none is lost. Each thread waits
/// for the writer every thousand lines, so that at most 4,000 lines wait and a writer
/// starved of CPU (parallel tests on two cores) never reaches the sink's queue limit,
/// where lines are dropped and counted by design (tested by
/// `a_stalled_fifo_is_reported_and_never_blocks_the_others`).
#[test]
fn many_threads_log_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let log = start(LogConfig {
        logoutput: vec![file(&out)],
        ..LogConfig::default()
    });
    let (threads, each) = (4, 5000);
    std::thread::scope(|s| {
        for t in 0..threads {
            let log = log.clone();
            s.spawn(move || {
                for i in 0..each {
                    log.at(
                        Subsystem::TRAFFIC,
                        Level::Trace,
                        format!("t{t} n{i} {}", "y".repeat(i % 300)),
                    );
                    if i % 1000 == 999 {
                        log.flush();
                    }
                }
            });
        }
    });
    log.flush();
    let m = msgs(&out);
    assert_eq!(m.len(), threads * each);
    for t in 0..threads {
        let mine: Vec<&String> = m
            .iter()
            .filter(|l| l.starts_with(&format!("t{t} ")))
            .collect();
        assert_eq!(mine.len(), each);
        for (i, l) in mine.iter().enumerate() {
            assert_eq!(
                **l,
                format!("t{t} n{i} {}", "y".repeat(i % 300)),
                "thread {t} line {i}"
            );
        }
    }
}

/// A reload while other threads log: the old sinks write what they were given before
/// they close, so every line is in the old file or the new one.
#[test]
#[allow(clippy::disallowed_methods)] // plain threads, no runtime
fn reloading_while_logging_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let config = |p: &Path| LogConfig {
        logoutput: vec![file(p)],
        ..LogConfig::default()
    };
    let log = start(config(&a));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let sent = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let (log, stop) = (log.clone(), &stop);
                s.spawn(move || {
                    let mut n = 0usize;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 500_000 {
                        log.at(Subsystem::TRAFFIC, Level::Trace, format!("w{t} {n}"));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for i in 0..6 {
            std::thread::sleep(std::time::Duration::from_millis(30));
            log.set_config(config(if i % 2 == 0 { &b } else { &a }));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .sum::<usize>()
    });
    log.flush();
    drop(log);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // Lines a sink could not take (the writers here log faster than a file takes them)
    // are counted and the counts reported on the sinks that work.
    let count = || {
        let all: Vec<String> = msgs(&a).into_iter().chain(msgs(&b)).collect();
        let written = all.iter().filter(|m| m.starts_with('w')).count();
        let dropped: usize = all
            .iter()
            .filter_map(|m| {
                let (_, rest) = m.split_once("; ")?;
                rest.split_once(" line(s) were dropped")?
                    .0
                    .parse::<usize>()
                    .ok()
            })
            .sum();
        written + dropped
    };
    // Sinks closed by the last reload write their rest in the background.
    while count() < sent && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(count(), sent);
}

/// An I/O line given as its direction's head and a byte count: the text sink gets the
/// record's line, the JSON sink the whole record (built only for it).
#[test]
fn io_lines_from_a_shared_head() {
    let dir = tempfile::tempdir().unwrap();
    let (text, json) = (dir.path().join("out.log"), dir.path().join("out.json"));
    let log = start(LogConfig {
        logoutput: vec![
            file(&text),
            SinkSpec {
                target: Target::File(json.clone()),
                format: Format::Json,
            },
        ],
        ..LogConfig::default()
    });
    let line = "pass(2): tcp/connect -: 127.0.0.1.44460 127.0.0.1.21014 -> 127.0.0.1.40779 127.0.0.1.21010 (1460): a\\001b";
    let record = traffic_log::Record::parse(line).unwrap();
    let mut head = Vec::new();
    record.write_io_head(&mut head);
    let built = std::cell::Cell::new(0);
    let make = || {
        built.set(built.get() + 1);
        record.clone()
    };
    log.traffic_io(
        Subsystem::TRAFFIC,
        Level::Trace,
        &head,
        1460,
        Some("a\\001b"),
        &make,
    );
    log.flush();
    assert_eq!(msgs(&text), [line]);
    let v: serde_json::Value = serde_json::from_str(&lines(&json)[0]).unwrap();
    assert_eq!(v["msg"], line);
    assert_eq!(traffic_log::Record::from_json(&v).unwrap(), record);
    assert_eq!(
        built.get(),
        1,
        "the record is built once, for the JSON sink"
    );
}

/// A line written straight into a sink's buffer whose writing panics leaves no part of
/// itself there: the lines before and after it are whole, and the sink goes on.
#[test]
fn a_line_that_fails_to_format_leaves_nothing_in_the_sink() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let log = start(LogConfig {
        logoutput: vec![file(&out)],
        ..LogConfig::default()
    });
    let record =
        || traffic_log::Record::parse("pass(1): tcp/connect -: 1.2.3.4.5 6.7.8.9.10 (1)").unwrap();
    log.info("before");
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        log.traffic_written(
            Subsystem::TRAFFIC,
            Level::Trace,
            &|buf| {
                buf.extend_from_slice(b"half a line");
                panic!("formatting failed");
            },
            &record,
        );
    }));
    assert!(failed.is_err());
    log.traffic_written(
        Subsystem::TRAFFIC,
        Level::Trace,
        &|buf| buf.extend_from_slice(b"a whole line"),
        &record,
    );
    log.info("after");
    log.flush();
    assert_eq!(msgs(&out), ["before", "a whole line", "after"]);
}
