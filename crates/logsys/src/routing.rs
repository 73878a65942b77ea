//! Where a record goes, decided and done on the thread that logs it.
//!
//! [`Routing`] is the configuration turned into tables: per subsystem, its threshold,
//! the sinks for records below warning and for warnings and worse, and whether
//! operators get it. The logging thread reads the routing in force without a lock
//! (`arc_swap`), applies `mute`, formats the line once into a per-thread buffer and
//! appends it to each of its sinks (see `sink.rs`); a reload builds a new routing,
//! swaps it in and closes the old sinks once they have written what they hold.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use crate::format::{json_line, push_message, push_prefix, tag};
use crate::sink::{Reporter, Sink, SinkHandle};
use crate::{
    Facility, Format, Level, LogConfig, Opener, Payload, SinkSpec, Subsystem, Target, OFF,
};

/// Records kept for operators who ask for history.
const HISTORY: usize = 1000;
const SUBSYSTEMS: usize = Subsystem::ALL.len();

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

/// What a record says.
pub(crate) enum Message<'a> {
    /// A text or a whole traffic record.
    Payload(&'a Payload),
    /// One I/O operation: the line is `head (BYTES)[: DATA]`; `record` builds the
    /// structured record when a JSON sink or an operator wants it.
    Io {
        head: &'a [u8],
        bytes: u64,
        data: Option<&'a str>,
        record: &'a dyn Fn() -> traffic_log::Record,
    },
    /// A traffic record whose text line `write` appends (from text a session rendered
    /// once); `record` builds the structured record when a JSON sink or an operator
    /// wants it.
    Written {
        write: &'a dyn Fn(&mut Vec<u8>),
        record: &'a dyn Fn() -> traffic_log::Record,
    },
}

impl Message<'_> {
    fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Self::Payload(p) => push_message(out, p),
            Self::Io {
                head, bytes, data, ..
            } => {
                out.extend_from_slice(head);
                traffic_log::text::push_io_tail(out, *bytes, *data);
            }
            Self::Written { write, .. } => write(out),
        }
    }

    /// The structured payload, for JSON.
    fn payload(&self) -> std::borrow::Cow<'_, Payload> {
        match self {
            Self::Payload(p) => std::borrow::Cow::Borrowed(*p),
            Self::Io { record, .. } | Self::Written { record, .. } => {
                std::borrow::Cow::Owned(Payload::Traffic(record()))
            }
        }
    }
}

/// One configuration, turned into tables.
pub(crate) struct Routing {
    config: LogConfig,
    /// Shared with a routing made from this one by [`Routing::retuned`]: the sinks
    /// close when the last routing holding them goes.
    sinks: Arc<Vec<SinkHandle>>,
    /// Per subsystem: the least severe level written, or [`OFF`].
    thresholds: [u8; SUBSYSTEMS],
    /// Per subsystem: the sinks of records below warning, and of warnings and worse.
    routes: [[Vec<usize>; 2]; SUBSYSTEMS],
    operators: [bool; SUBSYSTEMS],
}

impl Routing {
    /// Opens every configured sink now, not on first use: the process may drop its
    /// privileges right after start-up.
    /// `old` is the routing this one replaces: a sink kept across a reload carries on
    /// its failure, if it was failing.
    fn build(
        config: LogConfig,
        reporter: &dyn Fn() -> Reporter,
        opener: &Opener,
        old: Option<&Self>,
    ) -> Self {
        let mut sinks: Vec<SinkHandle> = Vec::new();
        let mut index: HashMap<SinkSpec, usize> = HashMap::new();
        let mut routes: [[Vec<usize>; 2]; SUBSYSTEMS] = Default::default();
        for sub in Subsystem::ALL {
            for (severe, level) in [(false, Level::Info), (true, Level::Crit)] {
                let mut out = Vec::new();
                for spec in specs(&config, sub, level) {
                    let i = *index.entry(spec.clone()).or_insert_with(|| {
                        let inherited = old
                            .and_then(|o| o.sinks.iter().find(|s| s.spec == spec))
                            .and_then(|s| s.failure());
                        sinks.push(Sink::open(spec, sinks.len(), reporter(), opener, inherited));
                        sinks.len() - 1
                    });
                    if !out.contains(&i) {
                        out.push(i);
                    }
                }
                routes[sub.index()][usize::from(severe)] = out;
            }
        }
        Self {
            thresholds: Subsystem::ALL.map(|s| config.threshold_code(s)),
            operators: Subsystem::ALL.map(|s| config.operators(s)),
            config,
            sinks: Arc::new(sinks),
            routes,
        }
    }

    /// The same sinks and routes with other thresholds: `verb` and `mute` changed at run
    /// time. No sink is opened, closed or waited for.
    fn retuned(&self, config: LogConfig) -> Self {
        Self {
            thresholds: Subsystem::ALL.map(|s| config.threshold_code(s)),
            operators: Subsystem::ALL.map(|s| config.operators(s)),
            config,
            sinks: Arc::clone(&self.sinks),
            routes: self.routes.clone(),
        }
    }

    fn passes(&self, sub: Subsystem, level: Level) -> bool {
        let t = self.thresholds[sub.index()];
        t != OFF && (level as u8) <= t
    }

    fn targets(&self, sub: Subsystem, level: Level) -> &[usize] {
        &self.routes[sub.index()][usize::from(level <= Level::Warning)]
    }
}

/// The sinks a record of `sub` at `level` goes to: every `logoutput`, every `errorlog`
/// for warnings and worse, the subsystem's own file and syslog facility.
fn specs(config: &LogConfig, sub: Subsystem, level: Level) -> Vec<SinkSpec> {
    let mut out = config.logoutput.clone();
    if level <= Level::Warning {
        out.extend(config.errorlog.iter().cloned());
    }
    let sc = config
        .subsystems
        .get(sub.index())
        .cloned()
        .unwrap_or_default();
    if let Some(file) = sc.file {
        out.push(SinkSpec::text(Target::File(file)));
    }
    if let Some(dir) = sc.logdir {
        out.push(SinkSpec::text(Target::LogDir(dir)));
    }
    let facility = match sc.facility {
        Facility::None => None,
        Facility::Default => Some(config.default_facility),
        Facility::Code(c) => Some(c),
    };
    out.extend(facility.map(|facility| SinkSpec::text(Target::Syslog { facility })));
    out
}

#[derive(Default)]
struct Mute {
    category: u32,
    run: u32,
    suppressed: u32,
}

/// Takes an operator record on the logging thread: it must not block (queue it, or
/// count it as dropped). Returns `false` once the subscriber is gone.
pub type OperatorSink = Box<dyn Fn(&OperatorRecord) -> bool + Send>;

struct Subscriber {
    mask: u32,
    level: Level,
    sink: OperatorSink,
}

#[derive(Default)]
struct Operators {
    subscribers: Vec<Subscriber>,
    history: VecDeque<OperatorRecord>,
}

thread_local! {
    /// The line being formatted on this thread, reused from record to record.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What every logging thread and writer shares.
pub(crate) struct Core {
    /// `) program[pid]: `, the constant part of every text prefix.
    tag: String,
    pid: u32,
    routing: ArcSwap<Routing>,
    /// How every sink, present and future, opens its files.
    pub(crate) opener: Opener,
    /// Serializes reloads.
    reload: Mutex<()>,
    mute: Mutex<Mute>,
    /// Something was muted: the next record of any category brings the count out.
    mute_pending: AtomicBool,
    operators: Mutex<Operators>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Core {
    pub(crate) fn start(program: &str, pid: u32, config: LogConfig, opener: Opener) -> Arc<Self> {
        Arc::new_cyclic(|me: &Weak<Self>| Self {
            tag: tag(program, pid),
            pid,
            routing: ArcSwap::from_pointee(Routing::build(config, &reporter(me), &opener, None)),
            opener,
            reload: Mutex::new(()),
            mute: Mutex::new(Mute::default()),
            mute_pending: AtomicBool::new(false),
            operators: Mutex::new(Operators::default()),
        })
    }

    /// Changes `verb` and `mute` at once: a new routing over the same sinks is swapped
    /// in; nothing waits on a writer. Returns the configuration now in force.
    pub(crate) fn retune(&self, verb: Option<Option<u8>>, mute: Option<u32>) -> LogConfig {
        let _one_at_a_time = lock(&self.reload);
        let current = self.routing.load_full();
        let mut config = current.config.clone();
        if let Some(v) = verb {
            config.verb = v;
        }
        if let Some(m) = mute {
            config.mute = m;
        }
        self.routing
            .store(Arc::new(current.retuned(config.clone())));
        config
    }

    /// Replaces the routing; the old sinks write what they hold, then close.
    pub(crate) fn apply(self: &Arc<Self>, config: LogConfig) {
        let _one_at_a_time = lock(&self.reload);
        // The old files are flushed before the new ones are opened (they may be the same).
        for s in self.routing.load().sinks.iter() {
            s.flush(Duration::from_secs(3));
        }
        let me = Arc::downgrade(self);
        let current = self.routing.load_full();
        let new = Routing::build(config, &reporter(&me), &self.opener, Some(&current));
        let old = self.routing.swap(Arc::new(new));
        for s in old.sinks.iter() {
            s.flush(Duration::from_secs(3));
        }
    }

    /// Logs one record (its subsystem's threshold was checked by the caller).
    pub(crate) fn emit(&self, sub: Subsystem, level: Level, category: u32, message: &Message<'_>) {
        let time = SystemTime::now();
        let routing = self.routing.load();
        // The configuration may have changed since the caller's check.
        if !routing.passes(sub, level) {
            return;
        }
        if let Some(note) = self.muted(routing.config.mute, category) {
            let Some(note) = note else {
                return;
            };
            self.report(&routing, None, Level::Notice, &note);
        }
        crate::stats::record(sub, level);
        let targets = routing.targets(sub, level);
        let to_operators = routing.operators[sub.index()];
        if targets.is_empty() && !to_operators {
            return;
        }
        if let ([only], false) = (targets, to_operators) {
            // One text sink and no operator: the line is written into the sink's own
            // buffer (no per-thread line, no copy of it).
            let sink = &routing.sinks[*only];
            if !is_json(&sink.spec) {
                let report = sink.append_with(level, sub, time, |buf| {
                    let prefix_len = push_prefix(buf, &self.tag, time, level);
                    message.write_to(buf);
                    buf.push(b'\n');
                    prefix_len
                });
                if let Some(r) = report {
                    self.report(&routing, Some(*only), Level::Error, &r);
                }
                return;
            }
        }
        LINE.with(|cell| {
            let mut fresh = Vec::new();
            let mut held = cell.try_borrow_mut();
            let line: &mut Vec<u8> = match held.as_deref_mut() {
                Ok(l) => l,
                Err(_) => &mut fresh,
            };
            line.clear();
            let prefix_len = push_prefix(line, &self.tag, time, level);
            message.write_to(line);
            line.push(b'\n');
            // Every piece written is a `str` or ASCII; built only for JSON and operators.
            // `str::from_utf8` checks ASCII a word at a time; `from_utf8_lossy` walks
            // every byte (a third of what a record for operators cost).
            let text = || {
                let bytes = &line[prefix_len..line.len() - 1];
                std::str::from_utf8(bytes).map_or_else(
                    |_| String::from_utf8_lossy(bytes),
                    std::borrow::Cow::Borrowed,
                )
            };
            let mut json: Option<Vec<u8>> = None;
            for &i in targets {
                let sink = &routing.sinks[i];
                let report = if is_json(&sink.spec) {
                    let j = json.get_or_insert_with(|| {
                        let payload = message.payload();
                        json_line(self.pid, time, level, sub, Some(&payload), &text())
                    });
                    sink.append(j, 0, level, sub, time)
                } else {
                    sink.append(line, prefix_len, level, sub, time)
                };
                if let Some(r) = report {
                    self.report(&routing, Some(i), Level::Error, &r);
                }
            }
            if to_operators {
                self.to_operators(time, level, sub, &text());
            }
        });
    }

    /// Applies `mute` (`limit` repeats of one category): `None` to log the record as
    /// is, `Some(None)` to suppress it, `Some(Some(note))` to log `note` before it.
    fn muted(&self, limit: u32, category: u32) -> Option<Option<String>> {
        if limit == 0 || (category == 0 && !self.mute_pending.load(Ordering::Relaxed)) {
            return None;
        }
        let mut m = lock(&self.mute);
        let count = |m: &Mute| {
            format!(
                "{} variation(s) on previous {limit} message(s) suppressed by mute",
                m.suppressed
            )
        };
        let out = if category == 0 {
            // An uncategorized record ends a run only if something was suppressed: it
            // brings the count out.
            if m.suppressed == 0 {
                None
            } else {
                let note = count(&m);
                *m = Mute::default();
                Some(Some(note))
            }
        } else if category == m.category {
            m.run += 1;
            if m.run > limit {
                m.suppressed += 1;
                Some(None)
            } else {
                None
            }
        } else {
            let note = (m.suppressed > 0).then(|| count(&m));
            *m = Mute {
                category,
                run: 1,
                suppressed: 0,
            };
            note.map(Some)
        };
        self.mute_pending.store(m.suppressed > 0, Ordering::Relaxed);
        out
    }

    /// Gives a record to the operators' subscribers and keeps it in the history. Once
    /// the history is full, the oldest record's text buffer takes the new text (no
    /// allocation and no free per record), unless that buffer is much bigger than the
    /// text (so that one long record does not make every later one as big).
    fn to_operators(&self, time: SystemTime, level: Level, subsystem: Subsystem, text: &str) {
        let mut ops = lock(&self.operators);
        let oldest = if ops.history.len() == HISTORY {
            ops.history.pop_front()
        } else {
            None
        };
        let rec = match oldest {
            Some(mut old) if old.text.capacity() <= 2 * text.len().max(128) => {
                old.text.clear();
                old.text.push_str(text);
                OperatorRecord {
                    time,
                    level,
                    subsystem,
                    text: old.text,
                }
            }
            _ => OperatorRecord {
                time,
                level,
                subsystem,
                text: text.to_owned(),
            },
        };
        ops.subscribers.retain(|s| {
            if s.mask & (1 << rec.subsystem.index()) == 0 || rec.level > s.level {
                return true;
            }
            (s.sink)(&rec)
        });
        ops.history.push_back(rec);
    }

    /// From now on, every new record of the subsystems in `mask` at `level` and worse
    /// whose `operators` flag is on goes to `sink`; returns the history of such records
    /// up to now (taken at the same moment: none is missed or given twice).
    pub(crate) fn subscribe(
        &self,
        mask: u32,
        level: Level,
        sink: OperatorSink,
    ) -> Vec<OperatorRecord> {
        let mut ops = lock(&self.operators);
        let history = Self::matching(&ops.history, mask, level);
        ops.subscribers.push(Subscriber { mask, level, sink });
        history
    }

    /// The records kept for operators (the last [`HISTORY`]) of the subsystems in
    /// `mask` at `level` and worse, oldest first.
    pub(crate) fn history(&self, mask: u32, level: Level) -> Vec<OperatorRecord> {
        Self::matching(&lock(&self.operators).history, mask, level)
    }

    fn matching(
        history: &VecDeque<OperatorRecord>,
        mask: u32,
        level: Level,
    ) -> Vec<OperatorRecord> {
        history
            .iter()
            .filter(|r| mask & (1 << r.subsystem.index()) != 0 && r.level <= level)
            .cloned()
            .collect()
    }

    /// Reports a sink problem on every other sink (and the one in question, which may work
    /// again), or on stderr when there is no sink at all. A report about a report is not
    /// sent again: the counts say it all.
    fn report(&self, routing: &Routing, origin: Option<usize>, level: Level, text: &str) {
        let time = SystemTime::now();
        let mut targets = routing.targets(Subsystem::SYSTEM, level).to_vec();
        if routing.config.logoutput.is_empty() && routing.config.errorlog.is_empty() {
            targets.clear();
        }
        targets.retain(|&i| Some(i) != origin || routing.sinks[i].healthy());
        let mut line = Vec::new();
        let prefix_len = push_prefix(&mut line, &self.tag, time, level);
        line.extend_from_slice(text.as_bytes());
        line.push(b'\n');
        if targets.is_empty() {
            eprint!("{}", String::from_utf8_lossy(&line));
            return;
        }
        let json = json_line(self.pid, time, level, Subsystem::SYSTEM, None, text);
        for i in targets {
            let sink = &routing.sinks[i];
            let _ = if is_json(&sink.spec) {
                sink.append(&json, 0, level, Subsystem::SYSTEM, time)
            } else {
                sink.append(&line, prefix_len, level, Subsystem::SYSTEM, time)
            };
        }
    }

    /// A writer's report about its sink: reported if that sink is still in the routing
    /// (a failure of a sink since replaced is old news), or if it is the last word of a
    /// closed sink (the count of lines it dropped).
    fn report_from(&self, sink: &Arc<Sink>, text: &str, closed: bool) {
        let routing = self.routing.load();
        let origin = routing.sinks.iter().position(|s| Arc::ptr_eq(s, sink));
        if origin.is_some() || closed {
            self.report(&routing, origin, Level::Error, text);
        }
    }

    /// Waits until every line logged so far is written (each sink at most 3 s).
    pub(crate) fn flush(&self) {
        for s in self.routing.load().sinks.iter() {
            s.flush(Duration::from_secs(3));
        }
    }

    /// Closes every sink once what it holds is written (each at most 3 s) and waits
    /// for their writers to end: log directories are left cleanly finished.
    pub(crate) fn close(self: &Arc<Self>) {
        let _one_at_a_time = lock(&self.reload);
        let me = Arc::downgrade(self);
        let mut empty = self.routing.load().config.clone();
        empty.logoutput.clear();
        empty.errorlog.clear();
        for s in &mut empty.subsystems {
            s.file = None;
            s.facility = Facility::None;
        }
        let new = Routing::build(empty, &reporter(&me), &self.opener, None);
        let old = self.routing.swap(Arc::new(new));
        for s in old.sinks.iter() {
            s.close();
        }
        for s in old.sinks.iter() {
            s.wait_closed(Duration::from_secs(3));
        }
    }

    /// Closes and reopens every sink once what it holds is written.
    pub(crate) fn reopen(&self) {
        for s in self.routing.load().sinks.iter() {
            s.reopen();
        }
    }

    /// Reads the configuration in force.
    pub(crate) fn with_config<T>(&self, read: impl FnOnce(&LogConfig) -> T) -> T {
        read(&self.routing.load().config)
    }

    /// Whether every sink in force has its writer thread running.
    pub(crate) fn writers_alive(&self) -> bool {
        self.routing.load().sinks.iter().all(|s| s.writer_alive())
    }

    /// Lines waiting in the sinks.
    pub(crate) fn pending(&self) -> usize {
        self.routing.load().sinks.iter().map(|s| s.pending()).sum()
    }
}

/// JSON sinks get JSON lines; syslog, local or remote, always gets text.
fn is_json(spec: &SinkSpec) -> bool {
    spec.format == Format::Json
        && !matches!(spec.target, Target::Syslog { .. } | Target::SyslogRemote(_))
}

/// What a writer calls with a report: back to the core, if it still exists.
fn reporter(core: &Weak<Core>) -> impl Fn() -> Reporter + '_ {
    move || {
        let core = Weak::clone(core);
        Box::new(move |sink: &Arc<Sink>, text: String, closed: bool| {
            if let Some(core) = core.upgrade() {
                core.report_from(sink, &text, closed);
            }
        })
    }
}
