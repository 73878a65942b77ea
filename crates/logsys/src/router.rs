//! The router thread: applies thresholds' second half (mute), formats each record once,
//! and hands it to the sinks it is routed to without ever blocking on them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use crate::format::{json_line, message, prefix};
use crate::sink::{SinkHandle, SinkLine};
use crate::{Entry, Facility, Format, Level, LogConfig, Payload, SinkSpec, Subsystem, Target};

/// Lines a sink may have waiting before further lines for it are dropped (and counted).
pub(crate) const SINK_QUEUE: usize = 16 * 1024;
/// How long the router and the sinks wait for more records before sleeping: bounds
/// their wake-ups to about 2000 a second under load, at the cost of this much latency.
pub(crate) const BATCH_PAUSE: Duration = Duration::from_micros(500);
/// Records kept for operators who ask for history.
const HISTORY: usize = 1000;

pub(crate) enum Msg {
    Entry(Box<Entry>),
    Config(Box<LogConfig>),
    Reopen,
    Flush(mpsc::Sender<()>),
    Subscribe {
        mask: u32,
        level: Level,
        tx: mpsc::Sender<OperatorRecord>,
    },
    /// A sink failed or recovered (index of the sink, text).
    SinkReport(usize, u64, String),
}

/// A record as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    /// When.
    pub time: SystemTime,
    /// Severity.
    pub level: Level,
    /// Where from.
    pub subsystem: Subsystem,
    /// The text.
    pub text: String,
}

struct Subscriber {
    mask: u32,
    level: Level,
    tx: mpsc::Sender<OperatorRecord>,
}

struct State {
    program: String,
    pid: u32,
    config: LogConfig,
    /// Open sinks; a record names them by index.
    sinks: Vec<SinkHandle>,
    index: HashMap<SinkSpec, usize>,
    /// A generation number, so reports from sinks of an older configuration are ignored.
    generation: u64,
    me: mpsc::Sender<Msg>,
    subscribers: Vec<Subscriber>,
    history: std::collections::VecDeque<OperatorRecord>,
    mute: Mute,
}

#[derive(Default)]
struct Mute {
    category: u32,
    run: u32,
    suppressed: u32,
}

pub(crate) fn run(
    program: String,
    pid: u32,
    config: LogConfig,
    rx: mpsc::Receiver<Msg>,
    me: mpsc::Sender<Msg>,
    queued: &AtomicUsize,
) {
    let mut st = State {
        program,
        pid,
        config: LogConfig::default(),
        sinks: Vec::new(),
        index: HashMap::new(),
        generation: 0,
        me,
        subscribers: Vec::new(),
        history: std::collections::VecDeque::new(),
        mute: Mute::default(),
    };
    st.apply(config);
    // Records come in bursts. After a burst the router pauses briefly before it sleeps
    // on the channel again: records logged meanwhile just queue up, and the threads
    // that log them do not have to wake the router one record at a time.
    let mut next = rx.recv().ok();
    while let Some(msg) = next.take() {
        queued.fetch_sub(1, Ordering::Relaxed);
        match msg {
            Msg::Entry(e) => st.entry(&e),
            Msg::Config(c) => st.apply(*c),
            Msg::Reopen => st.sinks.iter_mut().for_each(SinkHandle::reopen),
            Msg::Flush(done) => {
                for s in &mut st.sinks {
                    s.flush(Duration::from_secs(3));
                }
                let _ = done.send(());
            }
            Msg::Subscribe { mask, level, tx } => {
                for r in &st.history {
                    if mask & (1 << r.subsystem.index()) != 0 && r.level <= level {
                        let _ = tx.send(r.clone());
                    }
                }
                st.subscribers.push(Subscriber { mask, level, tx });
            }
            Msg::SinkReport(origin, generation, text) => {
                if generation == st.generation {
                    st.report(Some(origin), Level::Error, &text);
                }
            }
        }
        next = match rx.try_recv() {
            Ok(m) => Some(m),
            Err(mpsc::TryRecvError::Disconnected) => None,
            Err(mpsc::TryRecvError::Empty) => {
                #[allow(clippy::disallowed_methods)] // a dedicated thread, not async code
                std::thread::sleep(BATCH_PAUSE);
                match rx.try_recv() {
                    Ok(m) => Some(m),
                    Err(mpsc::TryRecvError::Empty) => rx.recv().ok(),
                    Err(mpsc::TryRecvError::Disconnected) => None,
                }
            }
        };
    }
    for s in &mut st.sinks {
        s.flush(Duration::from_secs(3));
    }
}

impl State {
    fn apply(&mut self, config: LogConfig) {
        for s in &mut self.sinks {
            s.flush(Duration::from_secs(3));
        }
        self.generation += 1;
        self.sinks.clear();
        self.index.clear();
        self.config = config;
        // Open every configured sink now, not on first use: the process may drop its
        // privileges right after start-up (see `Logger::start`).
        for sub in Subsystem::ALL {
            for level in [Level::Crit, Level::Info] {
                let _ = self.routes(sub, level);
            }
        }
    }

    /// The index of the sink for `spec`, opening it on first use.
    fn sink(&mut self, spec: &SinkSpec) -> usize {
        if let Some(&i) = self.index.get(spec) {
            return i;
        }
        let i = self.sinks.len();
        self.sinks.push(SinkHandle::open(
            spec.clone(),
            i,
            self.generation,
            self.me.clone(),
        ));
        self.index.insert(spec.clone(), i);
        i
    }

    fn routes(&mut self, sub: Subsystem, level: Level) -> Vec<usize> {
        let mut out = Vec::new();
        let mut add = |st: &mut Self, spec: &SinkSpec| {
            let i = st.sink(spec);
            if !out.contains(&i) {
                out.push(i);
            }
        };
        for spec in self.config.logoutput.clone() {
            add(self, &spec);
        }
        if level <= Level::Warning {
            for spec in self.config.errorlog.clone() {
                add(self, &spec);
            }
        }
        let sc = self
            .config
            .subsystems
            .get(sub.index())
            .cloned()
            .unwrap_or_default();
        if let Some(file) = sc.file {
            add(self, &SinkSpec::text(Target::File(file)));
        }
        let facility = match sc.facility {
            Facility::None => None,
            Facility::Default => Some(self.config.default_facility),
            Facility::Code(c) => Some(c),
        };
        if let Some(facility) = facility {
            add(self, &SinkSpec::text(Target::Syslog { facility }));
        }
        out
    }

    fn entry(&mut self, e: &Entry) {
        // Thresholds were checked by the caller; the configuration may have changed since.
        if self
            .config
            .threshold(e.subsystem)
            .is_none_or(|t| e.level > t)
        {
            return;
        }
        if let Some(note) = self.muted(e) {
            if note.is_empty() {
                return;
            }
            self.report(None, Level::Notice, &note);
        }
        self.deliver(e);
    }

    /// Applies `mute`: `Some("")` to suppress `e`, `Some(note)` to log `note` before it.
    fn muted(&mut self, e: &Entry) -> Option<String> {
        let limit = self.config.mute;
        let m = &mut self.mute;
        if limit == 0 {
            return None;
        }
        if e.category == 0 {
            // An uncategorized record ends a run only if something was suppressed: it
            // brings the count out.
            if m.suppressed == 0 {
                return None;
            }
            let note = format!(
                "{} variation(s) on previous {limit} message(s) suppressed by mute",
                m.suppressed
            );
            *m = Mute::default();
            return Some(note);
        }
        if e.category == m.category {
            m.run += 1;
            if m.run > limit {
                m.suppressed += 1;
                return Some(String::new());
            }
            return None;
        }
        let note = (m.suppressed > 0).then(|| {
            format!(
                "{} variation(s) on previous {limit} message(s) suppressed by mute",
                m.suppressed
            )
        });
        *m = Mute {
            category: e.category,
            run: 1,
            suppressed: 0,
        };
        note
    }

    fn deliver(&mut self, e: &Entry) {
        let text = message(&e.payload);
        let targets = self.routes(e.subsystem, e.level);
        let prefix = prefix(&self.program, self.pid, e.time, e.level);
        let mut text_line: Option<std::sync::Arc<str>> = None;
        let mut json: Option<std::sync::Arc<str>> = None;
        for i in targets {
            let s = &mut self.sinks[i];
            let line = if s.spec.format == Format::Json
                && !matches!(s.spec.target, Target::Syslog { .. })
            {
                json.get_or_insert_with(|| format!("{}\n", json_line(self.pid, e, &text)).into())
                    .clone()
            } else {
                text_line
                    .get_or_insert_with(|| format!("{prefix}{text}\n").into())
                    .clone()
            };
            let report = s.send(SinkLine {
                line,
                prefix_len: prefix.len(),
                level: e.level,
            });
            if let Some(r) = report {
                self.report(Some(i), Level::Error, &r);
            }
        }
        if self.config.operators(e.subsystem) {
            self.push_to_operators(e, &text);
        }
    }

    fn push_to_operators(&mut self, e: &Entry, text: &str) {
        let rec = OperatorRecord {
            time: e.time,
            level: e.level,
            subsystem: e.subsystem,
            text: text.to_owned(),
        };
        self.subscribers.retain(|s| {
            if s.mask & (1 << e.subsystem.index()) == 0 || e.level > s.level {
                return true;
            }
            s.tx.send(rec.clone()).is_ok()
        });
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(rec);
    }

    /// Reports a sink problem on every other sink (and the one in question, which may work
    /// again), or on stderr when there is no sink at all.
    fn report(&mut self, origin: Option<usize>, level: Level, text: &str) {
        let e = Entry {
            time: SystemTime::now(),
            level,
            subsystem: Subsystem::SYSTEM,
            category: 0,
            payload: Payload::Text(text.to_owned()),
        };
        let mut targets = self.routes(Subsystem::SYSTEM, level);
        if self.config.logoutput.is_empty() && self.config.errorlog.is_empty() {
            targets.clear();
        }
        targets.retain(|&i| Some(i) != origin || self.sinks[i].healthy());
        if targets.is_empty() {
            eprintln!("{}{text}", prefix(&self.program, self.pid, e.time, level));
            return;
        }
        let pre = prefix(&self.program, self.pid, e.time, level);
        let line: std::sync::Arc<str> = format!("{pre}{text}\n").into();
        let json: std::sync::Arc<str> = format!("{}\n", json_line(self.pid, &e, text)).into();
        for i in targets {
            let s = &mut self.sinks[i];
            let l = if s.spec.format == Format::Json {
                json.clone()
            } else {
                line.clone()
            };
            // A report about a report is not sent again: the counts say it all.
            let _ = s.send(SinkLine {
                line: l,
                prefix_len: pre.len(),
                level,
            });
        }
    }
}
