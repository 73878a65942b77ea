//! The ferrosocks server.
//!
//! This crate owns everything that touches a socket: binding the `internal:` addresses
//! ([`listen`]), accepting clients and running each session ([`session`]: client rules,
//! the SOCKS5 handshake in [`negotiate`], socks rules in [`rules`], name resolution in
//! [`resolve`], connecting out in [`connect`], relaying in [`relay`]), emitting Dante
//! traffic records ([`tlog`]), and the process-level control: reload, graceful stop and
//! privilege drop ([`control`]). Wire formats come from `socks-proto`, the configuration
//! from `sockd-conf`, records from `traffic-log`, and every line goes out through
//! `logsys`.
//!
//! Layout of a running server: a [`Server`] holds the current [`RunConfig`] behind a
//! lock; each accepted connection takes a snapshot (an `Arc`) and keeps it to the end,
//! so a reload swaps the configuration for new sessions only.
#![deny(unsafe_code)]

mod bind;
mod chain;
mod connect;
pub mod control;
mod dump;
mod events;
mod ident;
mod interim;
pub mod listen;
pub mod logging;
pub mod metrics;
mod negotiate;
pub mod passwd;
pub mod preflight;
pub mod privileged;
pub mod registry;
mod relay;
pub mod resolve;
pub mod rules;
mod session;
mod sockinfo;
mod splice;
pub mod sysusers;
mod tlog;
mod udp;

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use logsys::Logger;
use sockd_conf::{AuthMethod, Config, HostAddr};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use passwd::PasswordFile;
pub use privileged::Privileged;

/// Who may log in with `socksmethod: username`.
#[derive(Debug, Clone)]
pub enum Users {
    /// No method asks for a user name (every login is refused as unknown).
    None,
    /// `passwordfile:` (htpasswd), ferrosocks' choice.
    File(Arc<PasswordFile>),
    /// The system's users (shadow entries), as Dante checks them when no password file
    /// is set; by the process itself or by its privileged helper.
    System(Privileged),
}

impl Users {
    /// Checks a login. Slow on purpose (bcrypt, crypt): call it off the async workers.
    pub fn check(&self, user: &[u8], password: &[u8]) -> passwd::Verdict {
        match self {
            Self::None => passwd::Verdict::UnknownUser,
            Self::File(f) => f.check(user, password),
            Self::System(p) => p.check_system_user(user, password),
        }
    }
}

/// Reads the management password: the first line of `path`, which must not be
/// readable by every user and must not be empty.
pub fn management_password(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read \"{shown}\": {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o004 != 0 {
        return Err(format!(
            "\"{shown}\" is readable by every user (mode {mode:04o}): chmod o-r it"
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read \"{shown}\": {e}"))?;
    let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if first.is_empty() {
        return Err(format!("\"{shown}\" has no password on its first line"));
    }
    Ok(first.to_owned())
}

/// Whether some method list of the configuration names `username`.
pub fn uses_username(config: &Config) -> bool {
    config.socksmethods.contains(&AuthMethod::Username)
        || config
            .socks_rules
            .iter()
            .chain(&config.client_rules)
            .any(|r| {
                r.socksmethods
                    .as_ref()
                    .is_some_and(|m| m.contains(&AuthMethod::Username))
            })
}

/// The name and version printed in the start-up line and `-v`.
pub const VERSION_LINE: &str = concat!("ferrosocks v", env!("CARGO_PKG_VERSION"));

/// A configuration made ready to run: the password file read, external names resolved.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The parsed configuration.
    pub config: Config,
    /// Users for `socksmethod: username`.
    pub users: Users,
    /// The `external:` addresses, names expanded.
    pub externals: Vec<IpAddr>,
    /// The log router's settings (without a `-d` override).
    pub log: logsys::LogConfig,
}

impl RunConfig {
    /// Reads what the configuration refers to (files through `files`, which may be the
    /// privileged helper). Returns warnings to log.
    pub fn prepare(config: Config, files: &Privileged) -> Result<(Self, Vec<String>), String> {
        if config.internals.is_empty() {
            return Err(
                "no internal address configured (add e.g. \"internal: 127.0.0.1 port = 1080\")"
                    .into(),
            );
        }
        let mut warnings = Vec::new();
        let uses_username = uses_username(&config);
        let users = match &config.passwordfile {
            Some(path) => {
                let text = files
                    .read_file(path)
                    .map_err(|e| format!("cannot read passwordfile {}: {e}", path.display()))?;
                let (file, w) = PasswordFile::parse(&path.display().to_string(), &text);
                warnings.extend(w);
                if uses_username && file.is_empty() {
                    warnings.push(format!(
                        "passwordfile {} has no usable user",
                        path.display()
                    ));
                }
                Users::File(Arc::new(file))
            }
            None if uses_username => {
                if !files.can_check_system_users() {
                    warnings.push(
                        "socksmethod username without passwordfile checks the system's users, \
                         but this process cannot read their shadow entries (run as root, or in \
                         group shadow): every login will fail"
                            .into(),
                    );
                }
                Users::System(files.clone())
            }
            None => Users::None,
        };
        if config.socksmethods.is_empty() {
            warnings.push("no socksmethod configured: every SOCKS request will be refused".into());
        }
        let mut externals = Vec::new();
        for ext in &config.externals {
            match ext {
                HostAddr::Ip(ip) => externals.push(*ip),
                HostAddr::Name(name) => match resolve::interface_addrs(name) {
                    Some(a) => externals.extend(a.into_iter().filter(|ip| !is_link_local(ip))),
                    None => externals.extend(
                        resolve::resolve_blocking(name)
                            .map_err(|e| format!("external: cannot resolve \"{name}\": {e}"))?,
                    ),
                },
            }
        }
        let log = logging::log_config(&config).map_err(|e| e.join("\n"))?;
        Ok((
            Self {
                config,
                users,
                externals,
                log,
            },
            warnings,
        ))
    }
}

/// Reads (through `files`, which may be the privileged helper) and parses a
/// configuration file, or the embedded default when `path` is `None`.
pub fn load_config(path: Option<&Path>, files: &Privileged) -> Result<sockd_conf::Parsed, String> {
    match path {
        None => sockd_conf::parse("<embedded default>", sockd_conf::EMBEDDED_DEFAULT)
            .map_err(|e| e.to_string()),
        Some(p) => {
            let bytes = files
                .read_file(p)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            let text =
                String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", p.display()))?;
            sockd_conf::parse(&p.display().to_string(), &text).map_err(|e| e.to_string())
        }
    }
}

pub(crate) struct Shared {
    pub(crate) logger: Logger,
    current: RwLock<Arc<RunConfig>>,
    /// Cancelled when open sessions must end now (after the grace period); every
    /// session's own cancel handle is a child of it.
    pub(crate) cut: CancellationToken,
    /// Every session: the one read API of live state.
    pub(crate) registry: Arc<registry::Registry>,
    /// Notified when the status file should be written now (SIGUSR2).
    status_requested: Arc<tokio::sync::Notify>,
    /// Accept loops running (the systemd watchdog checks them).
    accepting: std::sync::atomic::AtomicUsize,
}

impl Shared {
    pub(crate) fn snapshot(&self) -> Arc<RunConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A running server: listeners, sessions and the current configuration.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    /// A server that will run `run` and log through `logger`.
    pub fn new(logger: Logger, run: RunConfig) -> Self {
        let cut = CancellationToken::new();
        Self {
            shared: Arc::new(Shared {
                logger,
                current: RwLock::new(Arc::new(run)),
                registry: Arc::new(registry::Registry::new(cut.clone())),
                cut,
                status_requested: Arc::new(tokio::sync::Notify::new()),
                accepting: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }

    /// The logger.
    pub fn logger(&self) -> &Logger {
        &self.shared.logger
    }

    /// The configuration new sessions get.
    pub fn current(&self) -> Arc<RunConfig> {
        self.shared.snapshot()
    }

    /// Replaces the configuration for sessions accepted from now on.
    pub fn replace(&self, run: RunConfig) {
        *self
            .shared
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(run);
    }

    /// Clients accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.registry.totals().accepted
    }

    /// Notified (with a stored permit) when the status file should be written now.
    pub fn status_requested(&self) -> &Arc<tokio::sync::Notify> {
        &self.shared.status_requested
    }

    /// Accept loops running now: one per listening socket while the server serves.
    pub fn accept_loops(&self) -> usize {
        self.shared
            .accepting
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The sessions registry: live sessions, totals, events, kills.
    pub fn registry(&self) -> &Arc<registry::Registry> {
        &self.shared.registry
    }

    /// Serves on `listeners` until `stop` is cancelled, then stops accepting, lets open
    /// sessions finish for up to `grace`, and cuts (and logs) the rest.
    pub async fn run(
        &self,
        listeners: Vec<std::net::TcpListener>,
        stop: CancellationToken,
        grace: Duration,
    ) {
        let tracker = TaskTracker::new();
        let mut accept_loops = Vec::new();
        for l in listeners {
            match TcpListener::from_std(l) {
                Ok(l) => accept_loops.push(tokio::spawn(self.clone().accept_loop(
                    l,
                    stop.clone(),
                    tracker.clone(),
                ))),
                Err(e) => self
                    .shared
                    .logger
                    .error(format!("cannot use a listening socket: {e}")),
            }
        }
        stop.cancelled().await;
        for a in accept_loops {
            let _ = a.await;
        }
        tracker.close();
        let log = &self.shared.logger;
        if !tracker.is_empty() {
            log.info(format!(
                "Shutting down: {} session(s) open, waiting up to {}s for them to end",
                tracker.len(),
                grace.as_secs()
            ));
        }
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            log.info(format!(
                "Grace period over: ending {} session(s)",
                tracker.len()
            ));
            self.shared.cut.cancel();
            if tokio::time::timeout(Duration::from_secs(5), tracker.wait())
                .await
                .is_err()
            {
                log.warning(format!(
                    "{} session(s) did not end after being cut",
                    tracker.len()
                ));
            }
        }
    }

    async fn accept_loop(
        self,
        listener: TcpListener,
        stop: CancellationToken,
        tracker: TaskTracker,
    ) {
        let shared = Arc::clone(&self.shared);
        shared
            .accepting
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Counted down however the loop ends (a stop, a panic).
        struct Running(Arc<Shared>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0
                    .accepting
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let _running = Running(shared);
        let mut backoff = Duration::from_millis(10);
        // A listener bound to one address accepts only on that address: no getsockname
        // per connection. A wildcard listener asks each accepted socket.
        let fixed_local = listener
            .local_addr()
            .ok()
            .filter(|a| !a.ip().is_unspecified());
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                () = stop.cancelled() => return,
            };
            match accepted {
                Ok((stream, client)) => {
                    backoff = Duration::from_millis(10);
                    let Some(local) = fixed_local.or_else(|| stream.local_addr().ok()) else {
                        continue;
                    };
                    let shared = Arc::clone(&self.shared);
                    let client =
                        std::net::SocketAddr::new(client.ip().to_canonical(), client.port());
                    // Boxed: the task then holds a pointer, and tokio's moves of the
                    // future into its cell and of each stage into it copy 16 bytes
                    // rather than the session's ~3 KB (−5,000 instructions a session).
                    tracker.spawn(Box::pin(session::serve(shared, stream, client, local)));
                }
                Err(e) => {
                    // Out of file descriptors or memory: say so, wait, try again.
                    self.shared.logger.error(format!(
                        "accept() failed: {}; retrying in {}ms",
                        errno_text(&e),
                        backoff.as_millis()
                    ));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// The system's text for an I/O error, without Rust's " (os error N)" suffix
/// ("Connection refused"), as Dante prints strerror().
pub(crate) fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_owned(),
        None => e.to_string(),
    }
}

fn is_link_local(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}
