//! The management interface's I/O: the listener (TCP on loopback or a Unix socket of
//! mode 0600, bound before privileges are dropped) and one task per client around the
//! pure protocol of [`crate::proto`] and [`crate::notify`].
//!
//! Several clients may be connected at once, each with its own subscriptions (`log`,
//! `state`, `bytecount`) and log verbosity. Everything a client is sent goes through its
//! own bounded [`Outbox`], written by its own writer task: a client that stops reading
//! never slows the proxy or the other clients. When its outbox is full, notifications
//! for it are dropped *and counted*, and the count is told to it as soon as it reads
//! again ([`crate::notify::dropped`]); replies to its own commands wait for room instead.
//! Session events are taken in batches (one wake-up per [`outbox::LINGER`] under load)
//! and formatted straight into the outbox.
//! Commands that change the server go through the control channel, the same path as
//! signals.
//!
//! `>CLIENT:` notifications (session events from the registry) go to every
//! authenticated client, without any option. OpenVPN 2.6.14 sends them only with
//! `--management-client-auth`, and tools written for it without that option never
//! expect them (openvpn-monitor takes everything it reads up to a reply's end for the
//! reply). So, unless `management.client-auth` is on, a `>CLIENT:` block never arrives
//! in the middle of a conversation: within [`QUIET`] of a client's last line it waits,
//! in order, until the client pauses (an operator at `nc` sees it at once; a tool
//! firing its commands back to back never does). `>STATE:`, `>LOG:` and
//! `>BYTECOUNT_CLI:` go only to the clients that asked for them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use logsys::{Level, Subsystem};
use server::control::{Control, Controller, Outcome, Selector};
use server::registry::{SessionEvent, Subscription};
use server::Server;
use sockd_conf::MgmtListen;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::notify::{self, State, StateName};
use crate::outbox::{self, Outbox};
use crate::proto::{reply, Command, Conn, HistoryArg, KillTarget, Lines, Signal, Step, Stream};

/// `>LOG:` lines held back for a client until its `log on` is answered, before more are
/// dropped (and counted). (`>CLIENT:` blocks waiting for a client to pause are held as
/// long as they and the outbox together hold less than [`outbox::CAPACITY`] bytes: a
/// burst of sessions right after a command is kept, and a client that stops reading
/// still holds up no more than that.)
const QUEUE: usize = 256;
/// The kernel's send buffer for a management client: with [`outbox::CAPACITY`], what a
/// client that stops reading can hold up (the kernel would otherwise grow it to
/// megabytes).
const SEND_BUFFER: usize = 64 * 1024;
/// Clients connected at once; more are told so and closed.
const MAX_CLIENTS: usize = 256;
/// How long a client must have been silent before an unsolicited `>CLIENT:` block is
/// sent to it.
const QUIET: Duration = Duration::from_millis(250);
/// How long a client may take to give the password.
const AUTH_TIME: Duration = Duration::from_secs(60);

/// A bound management listener.
pub enum Bound {
    /// TCP.
    Tcp(std::net::TcpListener),
    /// A Unix stream socket, and its path (removed at exit).
    Unix(std::os::unix::net::UnixListener, PathBuf),
}

impl Bound {
    /// Binds `listen`: a Unix socket is created with mode 0600 (a stale socket file no
    /// server answers on is replaced); call it before dropping privileges.
    pub fn bind(listen: &MgmtListen) -> std::io::Result<Self> {
        match listen {
            MgmtListen::Tcp(addr) => {
                let l = std::net::TcpListener::bind(addr)?;
                l.set_nonblocking(true)?;
                Ok(Self::Tcp(l))
            }
            MgmtListen::Unix(path) => {
                if path.exists() {
                    if std::os::unix::net::UnixStream::connect(path).is_ok() {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::AddrInUse,
                            format!("{}: another server answers on it", path.display()),
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                // The socket is never reachable by others, not even between bind and chmod.
                // SAFETY: umask(2) has no preconditions; this runs before any thread exists
                // that creates files.
                let old = unsafe { libc::umask(0o177) };
                let bound = std::os::unix::net::UnixListener::bind(path);
                // SAFETY: as above, restoring the previous mask.
                unsafe { libc::umask(old) };
                let l = bound?;
                l.set_nonblocking(true)?;
                Ok(Self::Unix(l, path.clone()))
            }
        }
    }

    /// Where it listens, for the log.
    pub fn describe(&self) -> String {
        match self {
            Self::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string()),
            Self::Unix(_, p) => p.display().to_string(),
        }
    }

    /// The socket file, for a Unix socket.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Tcp(_) => None,
            Self::Unix(_, p) => Some(p),
        }
    }
}

/// What every management client shares.
pub struct Context {
    /// The server: registry, logger, configuration.
    pub server: Server,
    /// Where commands that change it go.
    pub controller: Controller,
    /// The password clients must give (`management.password:`).
    pub password: Option<String>,
    /// The proxy's first listening address (`state`'s LOCAL_ADDR).
    pub local: Option<SocketAddr>,
    /// The server's states so far (`state all`).
    pub states: Mutex<Vec<State>>,
    /// Live `>STATE:` for subscribed clients.
    pub state_tx: broadcast::Sender<State>,
    clients: AtomicU64,
}

impl Context {
    /// A context; the server is CONNECTED from now.
    pub fn new(
        server: Server,
        controller: Controller,
        password: Option<String>,
        local: Option<SocketAddr>,
    ) -> Arc<Self> {
        let connected = State {
            time: SystemTime::now(),
            name: StateName::Connected,
            desc: "SUCCESS".into(),
            local,
        };
        Arc::new(Self {
            server,
            controller,
            password,
            local,
            states: Mutex::new(vec![connected]),
            state_tx: broadcast::channel(64).0,
            clients: AtomicU64::new(0),
        })
    }

    /// Records a state change and tells the clients that asked for `state on`.
    pub fn change_state(&self, name: StateName, desc: &str) {
        let s = State {
            time: SystemTime::now(),
            name,
            desc: desc.into(),
            local: self.local,
        };
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        if states.len() >= 100 {
            states.remove(0);
        }
        states.push(s.clone());
        let _ = self.state_tx.send(s);
    }

    fn log(&self, level: Level, text: String) {
        self.server.logger().at(Subsystem::MGMT, level, text);
    }
}

/// The server's life cycle as `>STATE:` tells it.
impl server::control::Lifecycle for Context {
    fn reloading(&self) {
        self.change_state(StateName::Reconnecting, "SIGHUP");
    }

    fn reloaded(&self) {
        self.change_state(StateName::Connected, "SUCCESS");
    }

    fn stopping(&self, sig: i32) {
        let name = if sig == libc::SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        self.change_state(StateName::Exiting, name);
    }
}

/// Accepts management clients until `stop` is cancelled.
pub async fn serve(bound: Bound, ctx: Arc<Context>, stop: CancellationToken) {
    let desc = bound.describe();
    ctx.log(
        Level::Notice,
        format!("MANAGEMENT: interface listening on {desc}"),
    );
    match bound {
        Bound::Tcp(l) => match tokio::net::TcpListener::from_std(l) {
            Ok(l) => loop {
                let accepted = tokio::select! {
                    a = l.accept() => a,
                    () = stop.cancelled() => break,
                };
                match accepted {
                    Ok((s, peer)) => {
                        let _ = s.set_nodelay(true);
                        let _ = socket2::SockRef::from(&s).set_send_buffer_size(SEND_BUFFER);
                        start_client(s, format!("[AF_INET]{peer}"), &ctx, &stop);
                    }
                    Err(e) => accept_failed(&ctx, &e).await,
                }
            },
            Err(e) => ctx.log(Level::Error, format!("MANAGEMENT: {e}")),
        },
        Bound::Unix(l, _) => match tokio::net::UnixListener::from_std(l) {
            Ok(l) => loop {
                let accepted = tokio::select! {
                    a = l.accept() => a,
                    () = stop.cancelled() => break,
                };
                match accepted {
                    Ok((s, _)) => {
                        let _ = socket2::SockRef::from(&s).set_send_buffer_size(SEND_BUFFER);
                        start_client(s, format!("[AF_UNIX]{desc}"), &ctx, &stop);
                    }
                    Err(e) => accept_failed(&ctx, &e).await,
                }
            },
            Err(e) => ctx.log(Level::Error, format!("MANAGEMENT: {e}")),
        },
    }
}

async fn accept_failed(ctx: &Context, e: &std::io::Error) {
    ctx.log(
        Level::Error,
        format!("MANAGEMENT: accept failed: {e}; retrying"),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn start_client<S>(stream: S, peer: String, ctx: &Arc<Context>, stop: &CancellationToken)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let ctx = Arc::clone(ctx);
    let stop = stop.clone();
    tokio::spawn(async move {
        let n = ctx.clients.fetch_add(1, Ordering::Relaxed) + 1;
        if n as usize > MAX_CLIENTS {
            ctx.log(
                Level::Warning,
                format!("MANAGEMENT: client from {peer} refused: {MAX_CLIENTS} clients already"),
            );
            let (_, mut wr) = tokio::io::split(stream);
            let _ = wr
                .write_all(b">INFO:too many management clients, try again later\r\n")
                .await;
        } else {
            ctx.log(
                Level::Notice,
                format!("MANAGEMENT: Client connected from {peer}"),
            );
            Client::run(stream, &ctx, &stop).await;
            ctx.log(Level::Notice, "MANAGEMENT: Client disconnected".into());
        }
        ctx.clients.fetch_sub(1, Ordering::Relaxed);
    });
}

/// One `log on` subscription. Until it is armed (its command's reply queued), records
/// are held back, so that the reply (`SUCCESS:` and, for `log on all`, the history up to
/// the subscription) comes before any live `>LOG:` line and none is missed or doubled.
struct LogSub {
    active: AtomicBool,
    /// Set once `held` is emptied for good: records then go straight to the outbox,
    /// without taking `held`'s lock.
    armed: AtomicBool,
    held: Mutex<Option<Vec<String>>>,
}

impl LogSub {
    fn take(&self, rec: &logsys::OperatorRecord, outbox: &Outbox) -> bool {
        if self.armed.load(Ordering::Acquire) {
            return outbox.notify_with(|out| notify::log_into(out, rec));
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match held.as_mut() {
            Some(buf) if buf.len() < QUEUE => {
                buf.push(notify::log(rec));
                true
            }
            Some(_) => {
                outbox.count_dropped(1);
                true
            }
            None => outbox.notify_with(|out| notify::log_into(out, rec)),
        }
    }

    fn arm(&self, outbox: &Outbox) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        for text in held.take().unwrap_or_default() {
            outbox.notify(&text);
        }
        self.armed.store(true, Ordering::Release);
    }
}

/// A client's subscriptions and protocol state.
struct Client {
    conn: Conn,
    outbox: Outbox,
    /// The `log on` subscription in force.
    log: Option<Arc<LogSub>>,
    /// A subscription made by the command being answered, armed once its reply is queued.
    log_to_arm: Option<Arc<LogSub>>,
    /// This client's verbosity for `>LOG:` (a [`Level`] as u8).
    log_level: Arc<AtomicU8>,
    state_on: bool,
    bytecount: u32,
    /// Its `>CLIENT:` blocks, with the env lines each session's blocks share.
    blocks: notify::Blocks,
    /// The session events being formatted.
    events: Vec<SessionEvent>,
    /// Those of the last batch, formatted: given back with the next take, so that the
    /// sessions' own threads drop them (`Subscription::exchange`).
    done: Vec<SessionEvent>,
}

impl Client {
    async fn run<S: AsyncRead + AsyncWrite + Send + 'static>(
        stream: S,
        ctx: &Arc<Context>,
        stop: &CancellationToken,
    ) {
        let (mut rd, wr) = tokio::io::split(stream);
        let (outbox, writer) = Outbox::new(wr);
        let writer = tokio::spawn(writer);
        let mut c = Self {
            conn: Conn::new(ctx.password.as_deref()),
            outbox,
            log: None,
            log_to_arm: None,
            log_level: Arc::new(AtomicU8::new(Level::Debug as u8)),
            state_on: false,
            bytecount: 0,
            blocks: notify::Blocks::new(),
            events: Vec::new(),
            done: Vec::new(),
        };
        c.outbox.reply(c.conn.hello()).await;
        // Session events, from the password on (nothing is sent before it).
        let mut events: Option<Subscription<SessionEvent>> = None;
        let mut states = ctx.state_tx.subscribe();
        let mut lines = Lines::new();
        let mut buf = vec![0u8; 4096];
        let auth_deadline = tokio::time::Instant::now() + AUTH_TIME;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut since_count = 0u32;
        // `>CLIENT:` blocks waiting for the client to pause, and when it last spoke.
        let mut held = String::new();
        let mut last_line = tokio::time::Instant::now();
        // While set, session events are left to gather until then.
        let mut events_resume: Option<tokio::time::Instant> = None;
        'conn: loop {
            let authenticated = c.conn.authenticated();
            if authenticated && events.is_none() {
                events = Some(ctx.server.registry().subscribe());
            }
            let events_ready = async {
                match &events {
                    Some(e) => e.ready().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = rd.read(&mut buf) => {
                    let n = match r {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    lines.push(&buf[..n]);
                    last_line = tokio::time::Instant::now();
                    while let Some(line) = lines.next_line() {
                        match c.conn.feed(line) {
                            Step::Send(text) => { c.outbox.reply(&text).await; }
                            Step::Nothing => {}
                            Step::Close => {
                                if !c.conn.authenticated() {
                                    ctx.log(Level::Warning, crate::proto::REJECTED_LOG.into());
                                }
                                break 'conn;
                            }
                            Step::Run(cmd) => {
                                if let Command::Bytecount(_) = cmd {
                                    // The first count comes one interval from now.
                                    tick.reset();
                                    since_count = 0;
                                }
                                let text = c.command(ctx, cmd).await;
                                if !c.outbox.reply(&text).await {
                                    break 'conn;
                                }
                                if let Some(sub) = c.log_to_arm.take() {
                                    sub.arm(&c.outbox);
                                }
                            }
                        }
                    }
                }
                () = events_ready, if authenticated && events_resume.is_none() => {
                    if !c.session_events(ctx, events.as_ref(), &mut held, last_line) {
                        break;
                    }
                    // Let the next events gather: one wake-up for many sessions.
                    events_resume = Some(tokio::time::Instant::now() + outbox::LINGER);
                }
                () = tokio::time::sleep_until(events_resume.unwrap_or(auth_deadline)), if events_resume.is_some() => {
                    events_resume = None;
                    if !c.session_events(ctx, events.as_ref(), &mut held, last_line) {
                        break;
                    }
                }
                () = tokio::time::sleep_until(last_line + QUIET), if !held.is_empty() => {
                    if !c.send_held(&mut held) { break; }
                }
                st = states.recv(), if authenticated => match st {
                    Ok(s) if c.state_on => { c.outbox.notify(&notify::state(&s)); }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => c.outbox.count_dropped(n),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick(), if authenticated && c.bytecount > 0 => {
                    since_count += 1;
                    if since_count >= c.bytecount {
                        since_count = 0;
                        for s in ctx.server.registry().snapshot() {
                            if !c.outbox.notify_with(|out| notify::bytecount_cli_into(out, &s)) { break 'conn; }
                        }
                    }
                }
                () = tokio::time::sleep_until(auth_deadline), if !authenticated => {
                    ctx.log(Level::Warning, "MANAGEMENT: client gave no password in time; closed".into());
                    break;
                }
                () = stop.cancelled() => {
                    if c.state_on {
                        c.outbox.notify(&notify::state(&State {
                            time: SystemTime::now(),
                            name: StateName::Exiting,
                            desc: "SIGTERM".into(),
                            local: None,
                        }));
                    }
                    break;
                }
            }
        }
        if let Some(sub) = c.log.take() {
            sub.active.store(false, Ordering::Relaxed);
        }
        // Replies already queued go out first; a client that reads nothing more cannot
        // hold the task (the writer is dropped with the connection after a while).
        c.outbox.close();
        drop(c);
        let mut writer = writer;
        if tokio::time::timeout(Duration::from_secs(10), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
            ctx.log(
                Level::Warning,
                "MANAGEMENT: client did not read its last replies; closed".into(),
            );
        }
    }

    /// Runs one command; returns its reply.
    async fn command(&mut self, ctx: &Context, cmd: Command) -> String {
        let registry = ctx.server.registry();
        let logger = ctx.server.logger();
        match cmd {
            Command::Help => reply::help(),
            Command::Version => reply::version(),
            Command::ClientVersion(n) => reply::client_version(n),
            Command::Pid => reply::pid(std::process::id()),
            Command::Status(v) => {
                let v = v.unwrap_or(ctx.server.current().config.status_version);
                // Off the async workers: 10,000 sessions take about 30 ms to render, and
                // the relays queued behind this task on its worker would wait as long.
                let registry = Arc::clone(registry);
                let rendered = tokio::task::spawn_blocking(move || {
                    crate::status::render(
                        v,
                        &registry.snapshot(),
                        &registry.totals(),
                        SystemTime::now(),
                        "\r\n",
                    )
                })
                .await;
                let mut text = match rendered {
                    Ok(text) => text,
                    Err(e) => match e.try_into_panic() {
                        Ok(panic) => std::panic::resume_unwind(panic),
                        // Only when the runtime shuts down.
                        Err(_) => String::new(),
                    },
                };
                if !text.ends_with("\r\n") {
                    text.push_str("\r\n");
                }
                text
            }
            Command::State(args) => {
                let mut out = String::new();
                for a in args {
                    match a {
                        HistoryArg::On | HistoryArg::Off => {
                            self.state_on = a == HistoryArg::On;
                            out.push_str(&reply::realtime(Stream::State, self.state_on));
                        }
                        _ => {
                            let states = ctx.states.lock().unwrap_or_else(|p| p.into_inner());
                            out.push_str(&notify::state_history(a.tail(&states)));
                        }
                    }
                }
                out
            }
            Command::Log(args) => {
                let mut out = String::new();
                // `log on all`: the history taken with the subscription, atomically.
                let mut history_at_subscription = None;
                for a in args {
                    match a {
                        HistoryArg::On => {
                            history_at_subscription = self.subscribe_log(logger);
                            out.push_str(&reply::realtime(Stream::Log, true));
                        }
                        HistoryArg::Off => {
                            if let Some(sub) = self.log.take() {
                                sub.active.store(false, Ordering::Relaxed);
                            }
                            out.push_str(&reply::realtime(Stream::Log, false));
                        }
                        _ => {
                            let level = level_of(self.log_level.load(Ordering::Relaxed));
                            let history = history_at_subscription
                                .clone()
                                .unwrap_or_else(|| logger.history(u32::MAX, level));
                            out.push_str(&notify::log_history(a.tail(&history)));
                        }
                    }
                }
                out
            }
            Command::Echo(args) => reply::echo(&args),
            Command::Bytecount(n) => {
                self.bytecount = n;
                reply::BYTECOUNT_CHANGED.into()
            }
            Command::Kill(target) => {
                let selector = match &target {
                    KillTarget::Name(name) => Selector::User(name.clone()),
                    KillTarget::Addr { addr, .. } => Selector::Client(*addr),
                };
                let n = killed(ctx.controller.request(Control::Kill(selector)).await);
                reply::killed(&target, n)
            }
            Command::ClientKill { cid, .. } => {
                let n = killed(
                    ctx.controller
                        .request(Control::Kill(Selector::Id(cid)))
                        .await,
                );
                reply::client_kill(n > 0)
            }
            Command::ClientAuth { cid, .. } | Command::ClientAuthNt { cid, .. } => {
                registry.decide(cid, Ok(()));
                reply::client_auth(true)
            }
            Command::ClientDeny { cid, reason, .. } => {
                registry.decide(cid, Err(reason));
                reply::client_deny(true)
            }
            Command::Signal(sig) => {
                let control = match sig {
                    Signal::Hup => Control::Reload,
                    Signal::Usr1 => Control::Dump,
                    Signal::Usr2 => Control::WriteStatus,
                    Signal::Term => Control::Terminate(libc::SIGTERM),
                    Signal::Int => Control::Terminate(libc::SIGINT),
                };
                ctx.controller.send(control);
                reply::signal_thrown(sig)
            }
            Command::Verb(None) => reply::verb(logger.verb().unwrap_or(DEFAULT_VERB)),
            Command::Verb(Some(n)) => {
                ctx.controller.request(Control::Verb(Some(n))).await;
                self.log_level
                    .store(Level::for_verb(n) as u8, Ordering::Relaxed);
                reply::VERB_CHANGED.into()
            }
            Command::Mute(None) => reply::mute(logger.mute()),
            Command::Mute(Some(n)) => {
                ctx.controller.request(Control::Mute(n)).await;
                reply::MUTE_CHANGED.into()
            }
            Command::LoadStats => reply::load_stats_of(&registry.snapshot(), &registry.totals()),
            Command::Hold(h) => reply::hold(h, false),
            Command::EnvFilter(n) => reply::env_filter(n),
            // The connection handles these itself.
            Command::Blank | Command::Quit => String::new(),
        }
    }

    /// Writes the `>CLIENT:` blocks of every session event waiting, or holds them while
    /// the client is in the middle of a conversation (see the module docs); false when
    /// the connection is gone.
    fn session_events(
        &mut self,
        ctx: &Context,
        events: Option<&Subscription<SessionEvent>>,
        held: &mut String,
        last_line: tokio::time::Instant,
    ) -> bool {
        let Some(events) = events else {
            return true;
        };
        let now = SystemTime::now();
        let n_clients = ctx.server.registry().len();
        let send_now = client_auth(ctx) || last_line.elapsed() >= QUIET;
        if send_now && !self.send_held(held) {
            return false;
        }
        let mut batch = std::mem::take(&mut self.events);
        let missed = events.exchange(&mut self.done, &mut batch);
        if missed > 0 {
            self.outbox.count_dropped(missed);
        }
        let mut open = true;
        for ev in &batch {
            // Formatted from the session's entry, under its lock (the entry's lock is taken
            // before the outbox's, as on the logging path), straight into the outbox (a
            // batch formatted apart would be copied into it: a memcpy of every byte),
            // with the env lines the session's blocks share (`notify::Blocks`).
            let blocks = &mut self.blocks;
            if send_now {
                let sent = ev.with_session(|s| {
                    self.outbox
                        .notify_with(|out| blocks.write(out, ev.kind, s, n_clients, now))
                });
                if !sent {
                    open = false;
                    break;
                }
            } else if held.len() + self.outbox.len() < outbox::CAPACITY {
                ev.with_session(|s| blocks.write(held, ev.kind, s, n_clients, now));
            } else {
                self.outbox.count_dropped(1);
            }
        }
        // Given back with the next batch; the two buffers circulate.
        std::mem::swap(&mut self.done, &mut batch);
        self.events = batch;
        open
    }

    /// Sends the `>CLIENT:` blocks that waited for a pause, in order; false when the
    /// connection is gone.
    fn send_held(&self, held: &mut String) -> bool {
        if held.is_empty() {
            return true;
        }
        let sent = self.outbox.notify(held);
        // A big burst's buffer is not kept.
        *held = String::new();
        sent
    }

    /// `log on`: records of the subsystems whose `operators` flag is on, at this
    /// client's verbosity, queued without ever blocking the logging thread. Returns the
    /// history up to the subscription (at this client's verbosity); `None` when already
    /// subscribed.
    fn subscribe_log(&mut self, logger: &logsys::Logger) -> Option<Vec<logsys::OperatorRecord>> {
        if self.log.is_some() {
            return None;
        }
        let sub = Arc::new(LogSub {
            active: AtomicBool::new(true),
            armed: AtomicBool::new(false),
            held: Mutex::new(Some(Vec::new())),
        });
        let (mine, level, outbox) = (
            Arc::clone(&sub),
            Arc::clone(&self.log_level),
            self.outbox.clone(),
        );
        let history = logger.subscribe(
            u32::MAX,
            Level::Debug,
            Box::new(move |rec| {
                if !mine.active.load(Ordering::Relaxed) {
                    return false;
                }
                if rec.level as u8 <= level.load(Ordering::Relaxed) {
                    mine.take(rec, &outbox)
                } else {
                    true
                }
            }),
        );
        self.log = Some(Arc::clone(&sub));
        self.log_to_arm = Some(sub);
        let level = self.log_level.load(Ordering::Relaxed);
        Some(
            history
                .into_iter()
                .filter(|r| r.level as u8 <= level)
                .collect(),
        )
    }
}

/// Whether `management.client-auth` is on (read at each event, so a reload changes it):
/// then clients expect `>CLIENT:` blocks at any moment, as OpenVPN's
/// `--management-client-auth` sends them, and a waiting session must not wait for a
/// pause. Without it, tools written for OpenVPN do not expect them at all:
/// openvpn-monitor 2.0.4 takes everything it reads up to a reply's end marker for the
/// reply, so a block in the middle of its conversation (right after `SUCCESS: password
/// is correct`, or before `load-stats`' numbers) breaks it.
fn client_auth(ctx: &Context) -> bool {
    ctx.server
        .current()
        .config
        .management
        .as_ref()
        .is_some_and(|m| m.client_auth)
}

/// What `verb` shows when no `verb:` is set: the per-subsystem defaults show info
/// records (start lines, blocks), as `verb 4` does (docs/logging.md).
const DEFAULT_VERB: u8 = 4;

fn level_of(code: u8) -> Level {
    Level::ALL
        .into_iter()
        .find(|l| *l as u8 == code)
        .unwrap_or(Level::Debug)
}

fn killed(outcome: Outcome) -> usize {
    match outcome {
        Outcome::Killed(n) => n,
        Outcome::Done | Outcome::Stopping => 0,
    }
}
