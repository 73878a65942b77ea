//! From the configuration to the log router's settings, and the error-class warnings
//! (`internal|external.log.<level>.error`).
//!
//! Subsystem and level names are defined once, in `logsys`; the configuration keeps
//! them as written with their file:line:column, and they are checked here.

use logsys::{
    Facility as LogFacility, Format, Level, LogConfig, SinkSpec, Subsystem, SubsystemConfig, Target,
};
use sockd_conf::{
    Config, ErrorLog, ErrorSide, FacilityChoice, JsonTarget, LogFormat, LogTarget, SubsystemValue,
};

/// The router settings a configuration asks for (`debug` from the file; `-d` is applied
/// by the caller). Unknown subsystem or level names are errors with their position.
pub fn log_config(cfg: &Config) -> Result<LogConfig, Vec<String>> {
    let global = if cfg.logformat == LogFormat::Json {
        Format::Json
    } else {
        Format::Text
    };
    // With `logdir:` set, the word `logdir` in logoutput, errorlog or log.X.file names it.
    let dir_target = cfg.logdir.as_ref().map(log_dir_target);
    let names_logdir =
        |p: &std::path::Path| dir_target.is_some() && p == std::path::Path::new("logdir");
    let map = |targets: &[LogTarget]| -> Vec<SinkSpec> {
        targets
            .iter()
            .map(|t| match t {
                LogTarget::File(p) if names_logdir(p) => SinkSpec {
                    target: Target::LogDir(dir_target.clone().expect("checked")),
                    format: global,
                },
                LogTarget::Json(JsonTarget::File(p)) if names_logdir(p) => SinkSpec {
                    target: Target::LogDir(dir_target.clone().expect("checked")),
                    format: Format::Json,
                },
                LogTarget::Stdout => SinkSpec {
                    target: Target::Stdout,
                    format: global,
                },
                LogTarget::Stderr => SinkSpec {
                    target: Target::Stderr,
                    format: global,
                },
                LogTarget::File(p) => SinkSpec {
                    target: Target::File(p.clone()),
                    format: global,
                },
                LogTarget::Syslog(f) => SinkSpec::text(Target::Syslog { facility: f.code() }),
                LogTarget::Json(j) => SinkSpec {
                    target: match j {
                        JsonTarget::Stdout => Target::Stdout,
                        JsonTarget::Stderr => Target::Stderr,
                        JsonTarget::File(p) => Target::File(p.clone()),
                    },
                    format: Format::Json,
                },
            })
            .collect()
    };
    let mut logoutput = map(&cfg.logoutput);
    let named = cfg
        .logoutput
        .iter()
        .chain(&cfg.errorlog)
        .any(|t| matches!(t, LogTarget::File(p) | LogTarget::Json(JsonTarget::File(p)) if names_logdir(p)))
        || cfg
            .log_settings
            .iter()
            .any(|s| matches!(&s.value, SubsystemValue::File(p) if names_logdir(p)));
    // Named nowhere: it gets what logoutput gets.
    if !named {
        logoutput.extend(dir_target.clone().map(|t| SinkSpec {
            target: Target::LogDir(t),
            format: global,
        }));
    }
    let mut out = LogConfig {
        logoutput,
        errorlog: map(&cfg.errorlog),
        debug: cfg.debug,
        default_facility: cfg.log_default_facility.map_or(3, |f| f.code()),
        verb: cfg.verb,
        mute: cfg.mute,
        ..LogConfig::default()
    };
    let mut errors = Vec::new();
    for s in &cfg.log_settings {
        let Some(sub) = Subsystem::from_name(&s.subsystem) else {
            let names: Vec<&str> = Subsystem::ALL.iter().map(|s| s.name()).collect();
            errors.push(format!(
                "{}: unknown subsystem \"{}\" (expected one of {})",
                s.origin,
                s.subsystem,
                names.join(" ")
            ));
            continue;
        };
        let sc: &mut SubsystemConfig = &mut out.subsystems[sub.index()];
        match &s.value {
            SubsystemValue::Level(l) => match Level::from_name(l) {
                Some(level) => sc.level = Some(level),
                None => errors.push(format!(
                    "{}: unknown level \"{l}\" (expected crit, error, warning, notice, trace, info or debug)",
                    s.origin
                )),
            },
            SubsystemValue::File(p) if names_logdir(p) => sc.logdir = dir_target.clone(),
            SubsystemValue::File(p) => sc.file = Some(p.clone()),
            SubsystemValue::Facility(FacilityChoice::None) => sc.facility = LogFacility::None,
            SubsystemValue::Facility(FacilityChoice::Default) => sc.facility = LogFacility::Default,
            SubsystemValue::Facility(FacilityChoice::Facility(f)) => sc.facility = LogFacility::Code(f.code()),
            SubsystemValue::Operators(on) => sc.operators = Some(*on),
        }
    }
    if let Some(r) = &cfg.syslog_remote {
        let target = remote_target(r, cfg.logdir.as_ref(), &out);
        out.logoutput
            .push(SinkSpec::text(Target::SyslogRemote(target)));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The log directory sink `logdir*` asks for.
fn log_dir_target(d: &sockd_conf::LogDirConfig) -> logsys::LogDirTarget {
    logsys::LogDirTarget {
        path: d.path.clone(),
        options: logsys::logdir::Options {
            size: d.size,
            count: d.count,
            stamp: d.stamp,
            ship: d.ship.as_ref().map(|s| logsys::logdir::Ship {
                host: s.host.clone(),
                port: s.port,
                timeout: std::time::Duration::from_secs(d.ship_timeout),
            }),
        },
    }
}

/// The receiver `syslog.remote*` asks for: each subsystem's records with its own
/// facility (or `log.default.facility`), the queue spilling under the log directory.
fn remote_target(
    r: &sockd_conf::SyslogRemoteConfig,
    logdir: Option<&sockd_conf::LogDirConfig>,
    log: &LogConfig,
) -> logsys::remote::RemoteTarget {
    use logsys::remote::Protocol;
    logsys::remote::RemoteTarget {
        host: r.host.clone(),
        port: r.port,
        protocol: match r.protocol {
            sockd_conf::RemoteProtocol::Tcp => Protocol::Tcp,
            sockd_conf::RemoteProtocol::Tls => Protocol::Tls,
            sockd_conf::RemoteProtocol::Udp => Protocol::Udp,
        },
        ca: r.ca.clone(),
        queue_dir: logdir.map(|d| d.path.join("syslog-queue")),
        facilities: log
            .subsystems
            .iter()
            .map(|s| match s.facility {
                LogFacility::Code(c) => c,
                LogFacility::None | LogFacility::Default => log.default_facility,
            })
            .collect(),
    }
}

/// The level an `internal|external.log.<level>.error` line names.
fn level_of(word: &str) -> Level {
    match word {
        "emerg" | "alert" | "crit" => Level::Crit,
        "err" => Level::Error,
        "warning" => Level::Warning,
        "notice" => Level::Notice,
        "info" => Level::Info,
        _ => Level::Debug,
    }
}

/// What went wrong, for matching against the error classes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Failure {
    /// An errno.
    Errno(i32),
    /// A getaddrinfo error.
    Eai(i32),
}

/// Logs a failure as Dante does: at the level of the first matching error class of the
/// rule, else of the global configuration, else at debug. Text goes to SOCKET (errno)
/// or RESOLVER (EAI) — so `dns-any` warnings land in RESOLVER.
pub(crate) fn warn_failure(
    log: &logsys::Logger,
    side: ErrorSide,
    failure: Failure,
    rule: &[ErrorLog],
    global: &[ErrorLog],
    text: impl FnOnce() -> String,
) {
    let hit = |e: &&ErrorLog| {
        e.side == side
            && match failure {
                Failure::Errno(n) => e.errnos.contains(&n),
                Failure::Eai(n) => e.eai.contains(&n),
            }
    };
    let level = rule
        .iter()
        .find(hit)
        .or_else(|| global.iter().find(hit))
        .map_or(Level::Debug, |e| level_of(&e.level));
    let sub = match failure {
        Failure::Errno(_) => Subsystem::SOCKET,
        Failure::Eai(_) => Subsystem::RESOLVER,
    };
    // Repeated failures of one kind are subject to `mute`.
    let category = match failure {
        Failure::Errno(n) => 0x1000 + n as u32,
        Failure::Eai(n) => 0x2000 + n.unsigned_abs(),
    };
    if log.enabled(sub, level) {
        log.categorized(sub, level, category, text());
    }
}

/// Whether an errno is one Dante words as "no route to".
pub(crate) fn is_no_route(errno: i32) -> bool {
    matches!(
        errno,
        libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENETDOWN
    )
}
