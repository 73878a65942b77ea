//! Process control: signals, reload, graceful stop, privileges.
//!
//! Signals become [`Control`] messages, handled by one loop ([`serve_until_stopped`]),
//! so that the management interface can later send the same messages down the same
//! path. SIGHUP reloads (the same code as start-up: read, parse, prepare) and reopens the
//! log files; a bad file is reported with all its errors and the running configuration
//! stays. SIGTERM and SIGINT stop gracefully.

use std::path::PathBuf;
use std::time::Duration;

use logsys::{Level, Subsystem};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::{load_config, Privileged, RunConfig, Server};

/// What the process is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Re-read the configuration and reopen log files (SIGHUP).
    Reload,
    /// Write the status dump (SIGUSR1).
    Dump,
    /// Stop gracefully (SIGTERM, SIGINT), with the signal number.
    Terminate(i32),
}

/// How the running process reloads.
#[derive(Debug, Clone)]
pub struct ReloadSource {
    /// The configuration file; `None` for the embedded default.
    pub path: Option<PathBuf>,
    /// `-d N` from the command line, which wins over the file.
    pub debug_override: Option<u8>,
    /// Reads the files (directly, or through the privileged helper after a drop).
    pub files: Privileged,
}

/// The log router's settings for a prepared configuration, with `-d` applied.
pub fn log_config(run: &RunConfig, debug_override: Option<u8>) -> logsys::LogConfig {
    let mut c = run.log.clone();
    if let Some(d) = debug_override {
        c.debug = d;
    }
    c
}

/// Serves until SIGTERM or SIGINT, reloading on SIGHUP.
pub async fn serve_until_stopped(
    server: Server,
    listeners: Vec<std::net::TcpListener>,
    grace: Duration,
    source: ReloadSource,
) -> std::io::Result<()> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let stop = CancellationToken::new();
    let running = tokio::spawn({
        let server = server.clone();
        let stop = stop.clone();
        async move { server.run(listeners, stop, grace).await }
    });
    loop {
        let control = tokio::select! {
            _ = hup.recv() => Control::Reload,
            _ = usr1.recv() => Control::Dump,
            _ = term.recv() => Control::Terminate(libc::SIGTERM),
            _ = int.recv() => Control::Terminate(libc::SIGINT),
        };
        match control {
            // Reading files and letting the old log sinks finish block: not on a worker.
            Control::Reload => {
                let (server, source) = (server.clone(), source.clone());
                let _ = tokio::task::spawn_blocking(move || reload(&server, &source)).await;
            }
            Control::Dump => server.dump(),
            Control::Terminate(sig) => {
                server.logger().info(format!("Exiting on signal {sig}"));
                stop.cancel();
                break;
            }
        }
    }
    let _ = running.await;
    Ok(())
}

/// Re-reads the configuration; keeps the running one when the new one is bad.
pub fn reload(server: &Server, source: &ReloadSource) {
    let log = server.logger();
    let name = source.path.as_ref().map_or_else(
        || "the embedded default".to_string(),
        |p| p.display().to_string(),
    );
    log.at(
        Subsystem::CONFIG,
        Level::Notice,
        format!("Reloading configuration from {name}"),
    );
    if let Err(e) = source.files.refresh() {
        log.at(
            Subsystem::CONFIG,
            Level::Error,
            format!("the privileged helper cannot read the configuration again: {e}"),
        );
    }
    let prepared = load_config(source.path.as_deref(), &source.files).and_then(|parsed| {
        for w in &parsed.warnings {
            log.at(Subsystem::CONFIG, Level::Warning, w.to_string());
        }
        RunConfig::prepare(parsed.config, &source.files)
    });
    match prepared {
        Err(errors) => {
            for line in errors.lines() {
                log.at(Subsystem::CONFIG, Level::Error, line);
            }
            log.at(
                Subsystem::CONFIG,
                Level::Error,
                "Configuration not reloaded: keeping the running configuration",
            );
            log.reopen();
        }
        Ok((run, warnings)) => {
            for w in warnings {
                log.at(Subsystem::CONFIG, Level::Warning, w);
            }
            if run.config.internals != server.current().config.internals {
                log.at(
                    Subsystem::CONFIG,
                    Level::Warning,
                    "internal: addresses changed; they take effect at the next restart",
                );
            }
            log.set_config(log_config(&run, source.debug_override));
            server.replace(run);
            log.at(Subsystem::CONFIG, Level::Notice, "Configuration reloaded");
        }
    }
}

/// Switches to `user` (and its primary group) when running as root.
pub fn drop_privileges(user: &str) -> Result<bool, String> {
    use nix::unistd::{setgid, setgroups, setuid, Uid, User};
    if !Uid::effective().is_root() {
        return Ok(false);
    }
    let u = User::from_name(user)
        .map_err(|e| format!("user.unprivileged: cannot look up \"{user}\": {e}"))?
        .ok_or_else(|| format!("user.unprivileged: no user \"{user}\""))?;
    setgroups(&[u.gid]).map_err(|e| format!("setgroups: {e}"))?;
    setgid(u.gid).map_err(|e| format!("setgid({}): {e}", u.gid))?;
    setuid(u.uid).map_err(|e| format!("setuid({}): {e}", u.uid))?;
    Ok(true)
}
