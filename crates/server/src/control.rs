//! Process control: signals, reload, graceful stop, privileges.
//!
//! Control is a channel. Signals and management commands send the same [`Control`]
//! messages into it ([`Controller`]), and one loop ([`serve_until_stopped`]) handles them
//! all, one code path for each: SIGHUP and `signal SIGHUP` reload (the same code as
//! start-up: read, parse, prepare) and reopen the log files — a bad file is reported with
//! all its errors and the running configuration stays; SIGUSR1 writes the status dump;
//! SIGUSR2 writes the status file now; SIGTERM and SIGINT stop gracefully; `verb`,
//! `mute` and kills come from the management interface. A reload applies the file's
//! `verb` and `mute` again, replacing values set at run time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use logsys::{Level, Subsystem};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::registry::SessionId;
use crate::{load_config, Privileged, RunConfig, Server};

/// What the process is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Re-read the configuration and reopen log files (SIGHUP).
    Reload,
    /// Reopen the log files only.
    Reopen,
    /// Write the status dump to the log (SIGUSR1).
    Dump,
    /// Write the status file now (SIGUSR2).
    WriteStatus,
    /// Stop gracefully (SIGTERM, SIGINT), with the signal number.
    Terminate(i32),
    /// Set the verbosity (`None`: back to the per-subsystem levels alone).
    Verb(Option<u8>),
    /// Set `mute`.
    Mute(u32),
    /// End sessions (`administrative termination`).
    Kill(Selector),
    /// Answer, to prove the control loop is alive (the systemd watchdog).
    Ping,
}

/// Told of the server's life-cycle changes: systemd's notify protocol, the management
/// interface's `>STATE:`.
pub trait Lifecycle: Send + Sync {
    /// The server serves: listeners accepting, signals handled.
    fn serving(&self) {}
    /// A reload starts.
    fn reloading(&self) {}
    /// A reload is over (whether the new configuration was good or not).
    fn reloaded(&self) {}
    /// The server stops, on signal `sig`.
    fn stopping(&self, _sig: i32) {}
}

/// Which sessions a kill ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// One session, by its CID.
    Id(SessionId),
    /// Every session of this user.
    User(String),
    /// The session of the client at this address.
    Client(SocketAddr),
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => write!(f, "session {id}"),
            Self::User(u) => write!(f, "the sessions of user \"{u}\""),
            Self::Client(a) => write!(f, "the sessions of client {a}"),
        }
    }
}

/// What handling a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Done,
    /// This many sessions were ended.
    Killed(usize),
    /// The server is stopping: nothing was done.
    Stopping,
}

struct Request {
    control: Control,
    reply: Option<oneshot::Sender<Outcome>>,
}

/// Sends [`Control`] messages to the running server. Cheap to clone.
#[derive(Clone)]
pub struct Controller(mpsc::UnboundedSender<Request>);

/// The receiving end, handed to [`serve_until_stopped`].
pub struct ControlReceiver(mpsc::UnboundedReceiver<Request>);

/// A control channel.
pub fn channel() -> (Controller, ControlReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Controller(tx), ControlReceiver(rx))
}

impl Controller {
    /// Sends `control` without waiting.
    pub fn send(&self, control: Control) {
        let _ = self.0.send(Request {
            control,
            reply: None,
        });
    }

    /// Sends `control` and waits until it has been handled.
    pub async fn request(&self, control: Control) -> Outcome {
        let (tx, rx) = oneshot::channel();
        let sent = self.0.send(Request {
            control,
            reply: Some(tx),
        });
        if sent.is_err() {
            return Outcome::Stopping;
        }
        rx.await.unwrap_or(Outcome::Stopping)
    }
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

/// Turns the signals an operator sends into messages on `controller`.
fn forward_signals(controller: &Controller) -> std::io::Result<()> {
    let kinds = [
        (SignalKind::hangup(), Control::Reload),
        (SignalKind::user_defined1(), Control::Dump),
        (SignalKind::user_defined2(), Control::WriteStatus),
        (SignalKind::terminate(), Control::Terminate(libc::SIGTERM)),
        (SignalKind::interrupt(), Control::Terminate(libc::SIGINT)),
    ];
    for (kind, control) in kinds {
        let mut sig = signal(kind)?;
        let controller = controller.clone();
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                controller.send(control.clone());
            }
        });
    }
    Ok(())
}

/// Serves until told to terminate (SIGTERM, SIGINT, or `signal SIGTERM` from the
/// management interface), handling every [`Control`] message on the way.
pub async fn serve_until_stopped(
    server: Server,
    listeners: Vec<std::net::TcpListener>,
    grace: Duration,
    source: ReloadSource,
    (controller, mut controls): (Controller, ControlReceiver),
    watchers: &[Arc<dyn Lifecycle>],
) -> std::io::Result<()> {
    forward_signals(&controller)?;
    let stop = CancellationToken::new();
    let running = tokio::spawn({
        let server = server.clone();
        let stop = stop.clone();
        async move { server.run(listeners, stop, grace).await }
    });
    watchers.iter().for_each(|w| w.serving());
    while let Some(Request { control, reply }) = controls.0.recv().await {
        let terminate = matches!(control, Control::Terminate(_));
        let outcome = handle(&server, &source, control, &stop, watchers).await;
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
        if terminate {
            break;
        }
    }
    let _ = running.await;
    Ok(())
}

/// One message, one code path.
async fn handle(
    server: &Server,
    source: &ReloadSource,
    control: Control,
    stop: &CancellationToken,
    watchers: &[Arc<dyn Lifecycle>],
) -> Outcome {
    let log = server.logger();
    match control {
        // Reading files and letting the old log sinks finish block: not on a worker.
        Control::Reload => {
            watchers.iter().for_each(|w| w.reloading());
            let (server, source) = (server.clone(), source.clone());
            let _ = tokio::task::spawn_blocking(move || reload(&server, &source)).await;
            watchers.iter().for_each(|w| w.reloaded());
        }
        Control::Ping => {}
        Control::Reopen => {
            let log = log.clone();
            let _ = tokio::task::spawn_blocking(move || log.reopen()).await;
        }
        Control::Dump => server.dump(),
        Control::WriteStatus => server.status_requested().notify_one(),
        Control::Terminate(sig) => {
            watchers.iter().for_each(|w| w.stopping(sig));
            log.info(format!("Exiting on signal {sig}"));
            stop.cancel();
        }
        Control::Verb(v) => log.set_verb(v),
        Control::Mute(m) => log.set_mute(m),
        Control::Kill(selector) => {
            let registry = server.registry();
            let n = match &selector {
                Selector::Id(id) => usize::from(registry.kill(*id)),
                Selector::User(user) => {
                    registry.kill_where(|s| s.user.as_deref() == Some(user.as_str()))
                }
                Selector::Client(addr) => registry.kill_where(|s| s.client == *addr),
            };
            log.at(
                Subsystem::MGMT,
                Level::Notice,
                format!("management: kill {selector}: {n} session(s) ended"),
            );
            return Outcome::Killed(n);
        }
    }
    Outcome::Done
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
