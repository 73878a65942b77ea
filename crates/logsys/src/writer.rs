//! The writer thread: takes messages off the queue and writes them to the sinks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::SystemTime;

use chrono::{DateTime, Datelike, Local, Timelike};
use traffic_log::{Level, LocalTime, Prefix};

use crate::sink::Sink;
use crate::{Routes, Target};

pub(crate) enum Msg {
    Line {
        time: SystemTime,
        level: Level,
        text: String,
    },
    Routes(Routes),
    Reopen,
    Flush(mpsc::Sender<()>),
}

struct State {
    program: String,
    pid: u32,
    output: Vec<Sink>,
    errors: Vec<Sink>,
}

pub(crate) fn run(
    program: String,
    pid: u32,
    routes: Routes,
    rx: mpsc::Receiver<Msg>,
    queued: &AtomicUsize,
) {
    let mut st = State {
        program,
        pid,
        output: Vec::new(),
        errors: Vec::new(),
    };
    st.apply(routes);
    while let Ok(msg) = rx.recv() {
        queued.fetch_sub(1, Ordering::Relaxed);
        match msg {
            Msg::Line { time, level, text } => st.write(time, level, &text),
            Msg::Routes(r) => st.apply(r),
            Msg::Reopen => {
                for s in st.output.iter_mut().chain(st.errors.iter_mut()) {
                    s.reopen();
                }
            }
            Msg::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

impl State {
    fn apply(&mut self, routes: Routes) {
        // One sink per distinct file: a file named in both lists is opened once and
        // written once per message.
        let mut output: Vec<Sink> = Vec::new();
        for t in dedup(&routes.logoutput) {
            output.push(Sink::open(t));
        }
        let errors = dedup(&routes.errorlog)
            .filter(|t| !routes.logoutput.contains(t))
            .map(Sink::open)
            .collect();
        self.output = output;
        self.errors = errors;
    }

    fn write(&mut self, time: SystemTime, level: Level, text: &str) {
        let prefix = self.prefix(time, level);
        let mut line = String::with_capacity(prefix.len() + text.len() + 1);
        line.push_str(&prefix);
        line.push_str(text);
        line.push('\n');
        let to_errors = level <= Level::Warning;
        if self.output.is_empty() && self.errors.is_empty() {
            if to_errors {
                eprint!("{line}");
            }
            return;
        }
        let mut failures = Vec::new();
        let sinks = self
            .output
            .iter_mut()
            .chain(self.errors.iter_mut().filter(|_| to_errors));
        for sink in sinks {
            if let Some(report) = sink.write(&line, &prefix, level) {
                failures.push(report);
            }
        }
        // A sink that failed or recovered is reported on the sinks that work, and on
        // stderr when none does.
        for report in failures {
            let note = format!("{}{report}\n", self.prefix(SystemTime::now(), Level::Error));
            let mut delivered = false;
            for sink in self.output.iter_mut().chain(self.errors.iter_mut()) {
                if sink.is_healthy() && sink.write(&note, "", Level::Error).is_none() {
                    delivered = true;
                }
            }
            if !delivered {
                eprint!("{note}");
            }
        }
    }

    fn prefix(&self, time: SystemTime, level: Level) -> String {
        let local: DateTime<Local> = time.into();
        let since = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Prefix {
            local: LocalTime {
                month: local.month() as u8,
                day: local.day() as u8,
                hour: local.hour() as u8,
                minute: local.minute() as u8,
                second: local.second().min(60) as u8,
            },
            epoch_secs: since.as_secs() as i64,
            micros: since.subsec_micros(),
            program: self.program.clone(),
            pid: self.pid,
            level,
        }
        .to_string()
    }
}

fn dedup(targets: &[Target]) -> impl Iterator<Item = &Target> {
    targets
        .iter()
        .enumerate()
        .filter(|(i, t)| !targets[..*i].contains(t))
        .map(|(_, t)| t)
}
