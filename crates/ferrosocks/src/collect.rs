//! `ferrosocks collect --listen ADDR:PORT --dir DIR`: the collector of shipped log
//! files (`logsys::collect`), with its own messages on the usual log sinks. It blocks
//! SIGTERM, SIGINT and SIGHUP before any thread starts and waits for them on the main
//! thread: SIGHUP reopens its log files, the others finish every directory and exit.

use std::io::Write;
use std::process::ExitCode;

use logsys::collect::{Collector, Limits};
use logsys::{Format, LogConfig, SinkSpec, Target};
use nix::sys::signal::{SigSet, Signal};

use crate::cli::CollectArgs;
use crate::{complain, EX_CONFIG};

/// Exit status when the listening socket or the directory cannot be had.
const EX_UNAVAILABLE: u8 = 69;

/// A `--log` value as a sink.
fn sink(word: &str) -> Result<SinkSpec, String> {
    let target = match word {
        "stderr" => Target::Stderr,
        "stdout" => Target::Stdout,
        "syslog" => Target::Syslog { facility: 3 },
        w => match w.strip_prefix("syslog/") {
            Some(f) => {
                let code = logsys::format::FACILITY_NAMES
                    .iter()
                    .position(|n| *n == f)
                    .ok_or_else(|| format!("--log {w}: unknown syslog facility \"{f}\""))?;
                Target::Syslog {
                    facility: code as u8,
                }
            }
            None => Target::File(w.into()),
        },
    };
    Ok(SinkSpec {
        target,
        format: Format::Text,
    })
}

pub(crate) fn run(args: &CollectArgs) -> ExitCode {
    let logoutput = if args.log.is_empty() {
        vec![SinkSpec::text(Target::Stderr)]
    } else {
        match args
            .log
            .iter()
            .map(|w| sink(w))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(v) => v,
            Err(e) => {
                complain(&e);
                return ExitCode::from(EX_CONFIG);
            }
        }
    };
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    if let Err(e) = signals.thread_block() {
        complain(&format!("cannot block signals: {e}"));
        return ExitCode::from(EX_UNAVAILABLE);
    }
    let log = logsys::Logger::start(
        "ferrosocks",
        std::process::id(),
        LogConfig {
            logoutput,
            ..LogConfig::default()
        },
    );
    let listener = match std::net::TcpListener::bind(args.listen) {
        Ok(l) => l,
        Err(e) => {
            complain(&format!("collect: cannot listen on {}: {e}", args.listen));
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    let addr = listener.local_addr().unwrap_or(args.listen);
    let options = logsys::logdir::Options {
        size: args.size,
        count: args.count,
        stamp: !args.no_stamp,
        ship: None,
    };
    let limits = Limits {
        connections: args.max_connections.max(1),
        line: args.max_line as usize,
        ..Limits::default()
    };
    let collector = match Collector::start(listener, &args.dir, options, limits, log.clone()) {
        Ok(c) => c,
        Err(e) => {
            complain(&format!("collect: {e}"));
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    log.info(format!(
        "collector listening on {addr}, writing to {}",
        args.dir.display()
    ));
    println!(
        "ferrosocks collect: listening on {addr}, writing to {}",
        args.dir.display()
    );
    let _ = std::io::stdout().flush();
    loop {
        match signals.wait() {
            Ok(Signal::SIGHUP) => log.reopen(),
            Ok(sig) => {
                log.info(format!(
                    "collector: {sig} received, finishing the directories"
                ));
                break;
            }
            Err(_) => {}
        }
    }
    collector.stop();
    log.flush();
    log.close();
    ExitCode::SUCCESS
}
