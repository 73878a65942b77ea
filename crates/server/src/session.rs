//! One client connection, from accept to the last log line.
//!
//! accept → client rules → negotiation (SOCKS4/4a or SOCKS5) → request → socks rules →
//! the command: CONNECT (here), BIND ([`crate::bind`]) or UDP ASSOCIATE ([`crate::udp`]).
//! The session runs on the configuration snapshot taken when it was accepted, so a
//! reload never changes the rules under a running session.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use logsys::Subsystem;
use sockd_conf::{
    AuthMethod, ErrorLog, ErrorSide, Protocol, ProxyProtocol, Rotation, Rule, SocksCommand, Via,
};
use socks_proto::{Command as WireCommand, Host, ReplyCode, Target};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use traffic_log::{Command, EndCause, Endpoint, Ends, Side, Summary};

use crate::chain;
use crate::connect::{connect, ConnectError, Stage};
use crate::logging::{is_no_route, warn_failure, Failure};
use crate::negotiate::{negotiate, reply, Ident, Negotiated, Refusal};
use crate::registry::{Entry, Phase, Registry, SessionEvent, TcpState};
use crate::relay::{relay, Counters, Dir, IoOp, RelayParams};
use crate::rules::{match_client, match_socks, MatchError, RequestFacts, TargetAddrs};
use crate::tlog::{client_side, ep, leg, only, reached_ep, target_ep, user_auth, RuleLog};
use crate::{RunConfig, Shared};

pub(crate) const UNSPECIFIED: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Serves one accepted connection.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    client: SocketAddr,
    local: SocketAddr,
) {
    let run = shared.snapshot();
    // Dropped before `stream`: the registry never names a closed descriptor.
    let reg = shared.registry.register(client, local);
    let s = Session {
        log: &shared.logger,
        run: &run,
        cut: &reg.entry.cancel,
        started: Instant::now(),
        client,
        local,
        debug: shared.logger.debug_enabled(),
        registry: &shared.registry,
        entry: &reg.entry,
    };
    s.serve(&mut stream).await;
}

/// What every step of a session needs.
pub(crate) struct Session<'a> {
    pub(crate) log: &'a logsys::Logger,
    pub(crate) run: &'a RunConfig,
    /// Ends this session: its own registry handle, cancelled by a kill or a shutdown.
    pub(crate) cut: &'a tokio_util::sync::CancellationToken,
    pub(crate) started: Instant,
    pub(crate) client: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) debug: bool,
    pub(crate) registry: &'a Registry,
    /// This session's registry entry.
    pub(crate) entry: &'a Entry,
}

/// A request that passed the socks rules, with what its command needs to log.
pub(crate) struct Granted<'a> {
    pub(crate) neg: &'a Negotiated,
    /// The socks rule that passed it.
    pub(crate) rule: &'a Rule,
    /// Its logging context.
    pub(crate) slog: RuleLog,
    /// The client rule's logging context.
    pub(crate) clog: RuleLog,
    /// `[AUTH]CLIENT PROXY-INT` (shared with the registry's entry for the dump).
    pub(crate) src: Arc<Side>,
    /// `CLIENT PROXY-INT` for the client rule's lines.
    pub(crate) accept_side: Side,
    /// The user the client's identd named at accept time (`clientmethod: rfc931`).
    pub(crate) ident: Option<&'a str>,
}

impl Granted<'_> {
    pub(crate) fn version(&self) -> ProxyProtocol {
        self.neg.version
    }
}

fn command_of(c: SocksCommand) -> Command {
    match c {
        SocksCommand::Connect => Command::Connect,
        SocksCommand::Bind => Command::Bind,
        SocksCommand::BindReply => Command::BindReply,
        SocksCommand::UdpAssociate => Command::UdpAssociate,
        SocksCommand::UdpReply => Command::UdpReply,
    }
}

impl Session<'_> {
    async fn serve(&self, stream: &mut TcpStream) {
        let cfg = &self.run.config;
        let accept_side = client_side(&ep(self.client), self.local);
        // A block: what only the client rules and the negotiation need (the identd
        // state, the handshake's outcome) ends with it, instead of staying in the task
        // for the whole relay (a task is as big as its largest state).
        let (client_ident, clog, neg) = {
            let limit = cfg.timeouts.negotiate;
            let mut ident = Ident {
                client: self.client,
                local: self.local,
                limit: Duration::from_secs(if limit == 0 { 10 } else { limit.min(10) }),
                answer: None,
            };
            let asks_ident = |m: &[AuthMethod]| m.contains(&AuthMethod::Rfc931);
            let client_ident = if asks_ident(&cfg.clientmethods)
                || cfg
                    .client_rules
                    .iter()
                    .any(|r| r.clientmethods.as_deref().is_some_and(asks_ident))
            {
                ident.get().await.as_ref().ok().cloned()
            } else {
                None
            };
            let cdec = match_client(
                &cfg.client_rules,
                &cfg.clientmethods,
                self.client,
                self.local,
                client_ident.as_deref(),
            )
            .await;
            let clog = RuleLog::new(cdec.rule, Command::Accept, self.debug);
            if !cdec.passes() {
                clog.blocked(self.log, only(accept_side), None);
                self.entry.blocked();
                self.entry
                    .ended(format!("blocked by client-rule #{}", cdec.number()));
                return;
            }
            clog.start_with(self.log, || only(accept_side.clone()));
            // TCP_NODELAY comes from the listening socket: Linux copies it to accepted ones.
            self.debug_msg(|| {
                format!(
                    "client {} on {} passed client-rule #{}",
                    self.client,
                    self.local,
                    cdec.number()
                )
            });

            let limit = cdec
                .rule
                .and_then(|r| r.timeout_negotiate)
                .unwrap_or(cfg.timeouts.negotiate);
            // Boxed, as the connect below: a session's task is as big as its largest state,
            // and these states end before the long relay.
            let handshake = Box::pin(negotiate(
                stream,
                &cfg.socksmethods,
                &self.run.users,
                &mut ident,
            ));
            let negotiating = Instant::now();
            let outcome = self
                .limited(
                    limit,
                    || crate::negotiate::negotiate_timeout(limit),
                    handshake,
                )
                .await;
            crate::events::Negotiated(negotiating.elapsed()).emit();
            let neg = match outcome {
                Ok(Ok(n)) => n,
                Ok(Err(refusal)) | Err(refusal) => {
                    let sub = if refusal.auth {
                        Subsystem::AUTH
                    } else {
                        Subsystem::CLIENT
                    };
                    if refusal.auth {
                        self.entry.blocked();
                    }
                    self.entry.ended(refusal.desc.clone());
                    clog.refused(self.log, sub, only(accept_side), refusal.desc);
                    return;
                }
            };
            (client_ident, clog, neg)
        };
        self.entry.negotiated(neg.method, neg.user.as_deref());
        let req = &neg.request;
        self.debug_msg(|| {
            format!(
                "client {}: {:?}, method {}, request {:?} for {}.{}",
                self.client,
                neg.version,
                neg.method.as_str(),
                req.command,
                req.target.host,
                req.target.port
            )
        });
        let command = match (req.command, neg.version) {
            (WireCommand::Connect, _) => SocksCommand::Connect,
            (WireCommand::Bind, _) => SocksCommand::Bind,
            (WireCommand::UdpAssociate, ProxyProtocol::SocksV5) => SocksCommand::UdpAssociate,
            (other, _) => {
                let _ = reply(
                    stream,
                    neg.version,
                    ReplyCode::CommandNotSupported,
                    UNSPECIFIED,
                )
                .await;
                // Dante 1.4.2's words (a SOCKS5 one is refused while negotiating).
                let what = match neg.version {
                    ProxyProtocol::SocksV4 => {
                        format!("unrecognized v4 command: {}", command_byte(other))
                    }
                    _ => format!("unknown socks_v5 command: {}", command_byte(other)),
                };
                self.entry.ended(what.clone());
                clog.refused(
                    self.log,
                    Subsystem::CLIENT,
                    only(accept_side),
                    format!("request was not performed due to error: {what}"),
                );
                return;
            }
        };
        self.registry.handed();
        self.entry.requested(command, host_port(&req.target));
        let what = match command {
            SocksCommand::Bind => "tcp bind-request",
            SocksCommand::UdpAssociate => "udp udpassociate-request",
            _ => "tcp connect-request",
        };
        self.entry.set(Phase::Requesting(what));
        let protocol = if command == SocksCommand::UdpAssociate {
            Protocol::Udp
        } else {
            Protocol::Tcp
        };
        let tl_command = command_of(command);

        let src = client_side(
            &ep(self.client).with_auth(user_auth(neg.method, neg.user.as_deref())),
            self.local,
        );
        let facts = RequestFacts {
            client: self.client,
            target: &req.target,
            command,
            protocol,
            method: neg.method,
            user: neg.user.as_deref(),
            version: neg.version,
            ident: client_ident.as_deref(),
            check_to: command != SocksCommand::UdpAssociate,
        };
        let mut target_addrs = TargetAddrs::default();
        let sdec = match match_socks(&cfg.socks_rules, facts, &mut target_addrs).await {
            Ok(d) => d,
            Err(MatchError { rule, error }) => {
                let r = cfg.socks_rules.iter().find(|r| r.number == rule);
                let rule_errors = r.map_or(&[][..], |r| &r.error_logs[..]);
                self.resolve_failed(
                    stream,
                    neg.version,
                    (tl_command, &clog, rule_errors),
                    src,
                    accept_side,
                    &req.target,
                    &error,
                )
                .await;
                return;
            }
        };
        let slog = RuleLog::new(sdec.rule, tl_command, self.debug);
        let Some(rule) = sdec.rule.filter(|_| sdec.passes()) else {
            let _ = reply(stream, neg.version, ReplyCode::NotAllowed, UNSPECIFIED).await;
            let reason = sdec
                .rule
                .is_none()
                .then_some("no rules matched; using default block rule");
            // A UDP request names the client's UDP address, not a target; Dante 1.4.2
            // writes no destination side (seed §4.9 has the 1.2.3 form).
            let ends = if command == SocksCommand::UdpAssociate {
                Ends {
                    src: Side(vec![target_ep(&req.target), Endpoint::unknown()]),
                    dst: None,
                }
            } else {
                Ends {
                    src,
                    dst: Some(Side(vec![Endpoint::unknown(), target_ep(&req.target)])),
                }
            };
            slog.blocked(self.log, ends, reason.map(String::from));
            let why = match reason {
                Some(r) => format!("blocked by higher-level socks-rule #{}: {r}", sdec.number()),
                None => format!("blocked by higher-level socks-rule #{}", sdec.number()),
            };
            self.entry.blocked();
            self.entry.ended(why.clone());
            clog.blocked(self.log, only(accept_side), Some(why));
            return;
        };
        self.entry.passed(rule.number);
        let client_auth = cfg.management.as_ref().is_some_and(|m| m.client_auth);
        if !client_auth {
            self.registry
                .notify(|| SessionEvent::Connect(self.entry.snapshot()));
        } else if let Err(why) = self.operator_verdict().await {
            let _ = reply(stream, neg.version, ReplyCode::NotAllowed, UNSPECIFIED).await;
            let why = format!("denied by the management interface: {why}");
            let dst = Side(vec![Endpoint::unknown(), target_ep(&req.target)]);
            slog.blocked(
                self.log,
                Ends {
                    src,
                    dst: Some(dst),
                },
                Some(why.clone()),
            );
            self.entry.blocked();
            self.entry.ended(why.clone());
            clog.blocked(self.log, only(accept_side), Some(why));
            return;
        }
        let granted = Granted {
            ident: client_ident.as_deref(),
            neg: &neg,
            rule,
            slog,
            clog,
            src: Arc::new(src),
            accept_side,
        };
        match command {
            // The rarer commands are boxed: the task of every session is as big as its
            // largest state, so they would make every CONNECT session bigger.
            SocksCommand::Bind => Box::pin(self.bind(stream, &granted)).await,
            SocksCommand::UdpAssociate => Box::pin(self.udp_associate(stream, &granted)).await,
            _ => self.connect(stream, &granted, target_addrs).await,
        }
    }

    async fn connect(
        &self,
        stream: &mut TcpStream,
        g: &Granted<'_>,
        mut target_addrs: TargetAddrs,
    ) {
        let cfg = &self.run.config;
        let target = &g.neg.request.target;
        let route = chain::pick(&cfg.routes, self.client, target, &mut target_addrs).await;
        if let Some(route) = route.filter(|r| matches!(r.via, Via::Proxy { .. })) {
            return Box::pin(self.connect_chained(stream, g, route)).await;
        }
        let addrs: Vec<SocketAddr> = match target_addrs.get(&target.host).await {
            Ok(a) => a
                .iter()
                .map(|ip| SocketAddr::new(*ip, target.port))
                .collect(),
            Err(error) => {
                self.resolve_failed(
                    stream,
                    g.version(),
                    (g.slog.command, &g.clog, &g.rule.error_logs[..]),
                    Side::clone(&g.src),
                    g.accept_side.clone(),
                    target,
                    &error,
                )
                .await;
                return;
            }
        };
        self.debug_msg(|| {
            format!(
                "client {}: socks-rule #{} passes; {} resolves to {addrs:?}",
                self.client, g.rule.number, target.host
            )
        });
        let limit = g.rule.timeout_connect.unwrap_or(cfg.timeouts.connect);
        let source = |addr: &SocketAddr| self.source_for(addr.is_ipv4());
        let attempt = Box::pin(connect(&addrs, source, seconds(limit)));
        let (mut out, reached) = match self.limited(0, String::new, attempt).await {
            Ok(Ok(t)) => t,
            Ok(Err(ce)) => return self.connect_failed(stream, g, ce).await,
            Err(_) => {
                let ce = ConnectError {
                    addr: None,
                    error: std::io::ErrorKind::Interrupted.into(),
                    stage: Stage::Connect,
                    timed_out: false,
                    local: None,
                };
                return self.connect_failed(stream, g, ce).await;
            }
        };
        let ext = out.local_addr().unwrap_or(UNSPECIFIED);
        self.debug_msg(|| format!("client {}: connected to {reached} from {ext}", self.client));
        // Dante logs the address it connected to, not the name the client asked for.
        let dst = Side(vec![ep(ext), reached_ep(target, reached)]);
        self.established(stream, g, &mut out, (ext, reached), dst, &[])
            .await;
    }

    /// CONNECT through an upstream proxy.
    async fn connect_chained(
        &self,
        stream: &mut TcpStream,
        g: &Granted<'_>,
        route: &sockd_conf::Route,
    ) {
        let target = &g.neg.request.target;
        let limit = seconds(
            g.rule
                .timeout_connect
                .unwrap_or(self.run.config.timeouts.connect),
        );
        let creds = chain::Credentials {
            user: g.neg.user.as_deref(),
            password: &g.neg.password.0,
        };
        self.debug_msg(|| {
            format!(
                "client {}: CONNECT to {}.{} through route #{}",
                self.client, target.host, target.port, route.number
            )
        });
        let attempt = chain::via(
            route,
            target,
            creds,
            |a| self.source_for(a.is_ipv4()),
            limit,
        );
        let outcome = match self.limited(0, String::new, attempt).await {
            Ok(Ok(ch)) => Ok(ch),
            Ok(Err(e)) => Err((e.desc, e.reply, e.local)),
            Err(r) => Err((r.desc, ReplyCode::GeneralFailure, None)),
        };
        if outcome.is_err() {
            crate::events::UpstreamFailed {
                route: route.number,
            }
            .emit();
        }
        let mut ch = match outcome {
            Ok(ch) => ch,
            Err((desc, code, local)) => {
                let _ = reply(stream, g.version(), code, UNSPECIFIED).await;
                let desc = format!("serverchain failed: {desc}");
                self.entry.ended(desc.clone());
                let dst = Side(vec![
                    local.map_or_else(Endpoint::unknown, ep),
                    target_ep(target),
                ]);
                g.slog.failed(
                    self.log,
                    Ends {
                        src: Side::clone(&g.src),
                        dst: Some(dst),
                    },
                    desc.clone(),
                );
                g.clog.failed(
                    self.log,
                    only(g.accept_side.clone()),
                    format!("request was not performed due to error: {desc}"),
                );
                return;
            }
        };
        let ext = ch.stream.local_addr().unwrap_or(UNSPECIFIED);
        let mut dst = vec![ep(ext), ep(ch.next)];
        if let Some(last) = ch.last {
            dst.push(Endpoint {
                bracketed: true,
                ..ep(last)
            });
        }
        // The upstream resolves a name: it stays as requested.
        dst.push(target_ep(target));
        let dst = Side(dst);
        self.established(stream, g, &mut ch.stream, (ext, ch.next), dst, &ch.leftover)
            .await;
    }

    /// A CONNECT whose outgoing connection is up (directly or through an upstream): the
    /// success reply, the start line, bytes the upstream already sent, the relay, and the
    /// summaries. `(ext, peer)` are the outgoing connection's local and remote addresses.
    async fn established(
        &self,
        stream: &mut TcpStream,
        g: &Granted<'_>,
        out: &mut TcpStream,
        (ext, peer): (SocketAddr, SocketAddr),
        dst: Side,
        leftover: &[u8],
    ) {
        let counters = Arc::new(Counters::default());
        self.entry.add_counters(&counters);
        self.entry.endpoints(Some(ext), Some(peer));
        let dst = Arc::new(dst);
        let mut tcpinfo = None;
        let cause = match reply(stream, g.version(), ReplyCode::Succeeded, ext).await {
            Err(e) => EndCause::ClientError(Some(crate::errno_text(&e))),
            Ok(()) => {
                g.slog.start_with(self.log, || Ends {
                    src: Side::clone(&g.src),
                    dst: Some(Side::clone(&dst)),
                });
                match self
                    .leftover_to_client(stream, g, leftover, &counters, &dst)
                    .await
                {
                    Some(cause) => cause,
                    None => {
                        self.relay_logged(
                            stream,
                            out,
                            g,
                            &g.slog,
                            &g.src,
                            &dst,
                            &counters,
                            &mut tcpinfo,
                        )
                        .await
                    }
                }
            }
        };
        self.summaries(
            g,
            &g.slog,
            &counters,
            Side::clone(&g.src),
            Arc::unwrap_or_clone(dst),
            &cause,
            tcpinfo.as_deref(),
        );
    }

    /// Bytes an upstream proxy sent right after its answer go to the client first.
    async fn leftover_to_client(
        &self,
        stream: &mut TcpStream,
        g: &Granted<'_>,
        data: &[u8],
        counters: &Counters,
        dst: &Side,
    ) -> Option<EndCause> {
        if data.is_empty() {
            return None;
        }
        counters.target_read.add(data.len() as u64);
        if let Err(e) = stream.write_all(data).await {
            return Some(EndCause::ClientError(Some(crate::errno_text(&e))));
        }
        counters.client_written.add(data.len() as u64);
        let ends = Ends {
            src: reversed(dst),
            dst: Some(reversed(&g.src)),
        };
        g.slog.io(self.log, ends, data.len(), Some(data));
        None
    }

    /// Relays between `client` and `other`, logging I/O with `slog` in Dante's directions:
    /// `SRC -> DST` for bytes from the client, reversed for bytes to it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn relay_logged(
        &self,
        client: &mut TcpStream,
        other: &mut TcpStream,
        g: &Granted<'_>,
        slog: &RuleLog,
        src: &Arc<Side>,
        dst: &Arc<Side>,
        counters: &Arc<Counters>,
        tcpinfo: &mut Option<String>,
    ) -> EndCause {
        use std::os::fd::AsRawFd;
        self.entry.set(Phase::Tcp(TcpState {
            src: Arc::clone(src),
            dst: Arc::clone(dst),
            fds: Some((client.as_raw_fd(), other.as_raw_fd())),
            tcpinfo: slog.flags.tcpinfo,
        }));
        self.registry
            .notify(|| SessionEvent::Established(self.entry.snapshot()));
        // The I/O lines of each direction, their endpoints written once, only when they
        // will be logged.
        let up = slog.io_lines(
            self.log,
            Ends {
                src: Side::clone(src),
                dst: Some(Side::clone(dst)),
            },
        );
        let down = up.as_ref().and_then(|_| {
            slog.io_lines(
                self.log,
                Ends {
                    src: reversed(dst),
                    dst: Some(reversed(src)),
                },
            )
        });
        let on_io = |dir: Dir, op: IoOp<'_>| {
            let lines = if dir == Dir::Up { &up } else { &down };
            if let Some(lines) = lines {
                slog.io_line(self.log, lines, op.len, op.data);
            }
        };
        if let Some(cause) = self
            .early_data(other, &g.neg.early_data, counters, &on_io)
            .await
        {
            return cause;
        }
        let idle = g.rule.timeout_io.unwrap_or(self.run.config.timeouts.io);
        let on_error = |side: ErrorSide, e: &std::io::Error| {
            let Some(errno) = e.raw_os_error() else {
                return;
            };
            let peer = if side == ErrorSide::Internal {
                src.0.first()
            } else {
                dst.0.last()
            };
            let peer = peer.map_or_else(String::new, ToString::to_string);
            let what = if side == ErrorSide::Internal {
                "client"
            } else {
                "host"
            };
            warn_failure(
                self.log,
                side,
                Failure::Errno(errno),
                &g.rule.error_logs,
                &self.run.config.error_logs,
                || format!("i/o error with {what} {peer}: {}", crate::errno_text(e)),
            );
        };
        let params = RelayParams {
            counters,
            idle: seconds(idle),
            cut: self.cut,
            on_io: &on_io,
            on_error: &on_error,
            splice: !slog.flags.data,
            // `log: tcpinfo` reads the sockets' TCP state after the relay.
            closed_after: !slog.flags.tcpinfo,
        };
        let interim = crate::interim::Interim {
            every: g.rule.log_interim.unwrap_or(self.run.config.log_interim),
            slog,
            log: self.log,
            counters,
            src,
            dst,
            started: self.started,
        };
        let cause = crate::interim::with_interim(interim, relay(client, other, params)).await;
        self.entry.with_tcp(|t| t.fds = None);
        // `log: tcpinfo`: both sockets, while they are still open.
        if slog.flags.tcpinfo {
            let (c, o) = (
                crate::sockinfo::tcp_info(client),
                crate::sockinfo::tcp_info(other),
            );
            *tcpinfo = Some(traffic_log::tcpinfo::format_block(c.as_ref(), o.as_ref()));
        }
        cause
    }

    /// The end-of-session lines: the socks rule's (`slog`), then the client rule's.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn summaries(
        &self,
        g: &Granted<'_>,
        slog: &RuleLog,
        counters: &Counters,
        src: Side,
        dst: Side,
        cause: &EndCause,
        tcpinfo: Option<&str>,
    ) {
        let secs = self.started.elapsed().as_secs();
        self.entry.ended(cause.to_string());
        let (wc, rc) = (
            counters.client_written.bytes(),
            counters.client_read.bytes(),
        );
        let (wt, rt) = (
            counters.target_written.bytes(),
            counters.target_read.bytes(),
        );
        let summary = Summary {
            client: leg(wc, src, rc),
            target: Some(leg(wt, dst, rt)),
        };
        slog.summary_with(self.log, summary, cause, secs, tcpinfo);
        if g.clog.logs_summary(cause) {
            let summary = Summary {
                client: leg(wc, g.accept_side.clone(), wt),
                target: None,
            };
            g.clog.summary(self.log, summary, cause, secs);
        }
    }

    /// With `management.client-auth: on`: waits, for at most `timeout.negotiate` (10 s
    /// when that is 0), for a management client's `client-auth` or `client-deny`.
    async fn operator_verdict(&self) -> Result<(), String> {
        let limit = match self.run.config.timeouts.negotiate {
            0 => 10,
            n => n,
        };
        self.registry
            .await_verdict(self.entry, Duration::from_secs(limit))
            .await
    }

    /// Logs at debug level; the message is built only when debug is on.
    pub(crate) fn debug_msg(&self, msg: impl FnOnce() -> String) {
        if self.debug {
            self.log.debug(msg());
        }
    }

    /// Runs `fut` within `limit` seconds (0: no limit) and unless the server cuts sessions;
    /// `what` describes a timeout, built only when one happens.
    pub(crate) async fn limited<T>(
        &self,
        limit: u64,
        what: impl FnOnce() -> String,
        fut: impl std::future::Future<Output = T>,
    ) -> Result<T, Refusal> {
        let timed = async {
            match seconds(limit) {
                Some(d) => tokio::time::timeout(d, fut)
                    .await
                    .map_err(|_| Refusal::new(what())),
                None => Ok(fut.await),
            }
        };
        tokio::select! {
            r = timed => r,
            () = self.cut.cancelled() => Err(Refusal::new("administrative termination")),
        }
    }

    /// Bytes the client sent before our reply go to the other side first.
    async fn early_data(
        &self,
        other: &mut TcpStream,
        data: &[u8],
        counters: &Counters,
        on_io: &(dyn Fn(Dir, IoOp<'_>) + Sync),
    ) -> Option<EndCause> {
        if data.is_empty() {
            return None;
        }
        counters.client_read.add(data.len() as u64);
        if let Err(e) = other.write_all(data).await {
            return Some(EndCause::PeerError(Some(crate::errno_text(&e))));
        }
        counters.target_written.add(data.len() as u64);
        on_io(
            Dir::Up,
            IoOp {
                len: data.len(),
                data: Some(data),
            },
        );
        None
    }

    /// The source address for a connection or socket towards the outside.
    pub(crate) fn source_for(&self, ipv4: bool) -> Option<IpAddr> {
        let same_family = |ip: &IpAddr| ip.is_ipv4() == ipv4;
        match self.run.config.external_rotation {
            Rotation::Route => None,
            Rotation::SameSame => Some(self.local.ip().to_canonical()).filter(same_family),
            Rotation::None => self.run.externals.iter().copied().find(same_family),
        }
    }

    /// A requested name that does not resolve. Dante 1.4.2 resolves it before any socks
    /// rule (`sockd_request.c` reqhostisok()) and logs the failure under the client rule
    /// (`iolog(&io.crule, …)`): `block(C): tcp/connect ]: SRC: could not resolve
    /// hostname …`, C the client rule's number, then the client rule's `tcp/accept` line.
    /// We resolve only when a rule or the connect needs the addresses, and log as Dante.
    /// `rule_errors` are the `error.log` settings of the socks rule that needed them.
    #[allow(clippy::too_many_arguments)]
    async fn resolve_failed(
        &self,
        stream: &mut TcpStream,
        version: ProxyProtocol,
        (command, clog, rule_errors): (Command, &RuleLog, &[ErrorLog]),
        src: Side,
        accept_side: Side,
        target: &Target,
        error: &crate::resolve::ResolveError,
    ) {
        let _ = reply(stream, version, ReplyCode::HostUnreachable, UNSPECIFIED).await;
        warn_failure(
            self.log,
            ErrorSide::External,
            Failure::Eai(error.code),
            rule_errors,
            &self.run.config.error_logs,
            || format!("could not DNS-resolve \"{}\": {error}", target.host),
        );
        let desc = format!("could not resolve hostname \"{}\": {error}", target.host);
        self.entry.ended(desc.clone());
        let request = RuleLog { command, ..*clog };
        request.failed(self.log, only(src), desc.clone());
        clog.failed(
            self.log,
            only(accept_side),
            format!("request was not performed due to error: {desc}"),
        );
    }

    async fn connect_failed(&self, stream: &mut TcpStream, g: &Granted<'_>, ce: ConnectError) {
        if let Some(desc) = ce.local_desc() {
            return self.local_failure(stream, g, desc).await;
        }
        let _ = reply(stream, g.version(), reply_for(&ce), UNSPECIFIED).await;
        if let (Some(errno), Some(addr)) = (ce.error.raw_os_error(), ce.addr) {
            warn_failure(
                self.log,
                ErrorSide::External,
                Failure::Errno(errno),
                &g.rule.error_logs,
                &self.run.config.error_logs,
                || {
                    let text = crate::errno_text(&ce.error);
                    if is_no_route(errno) {
                        format!("no route to {}: {text}", ep(addr))
                    } else {
                        format!("connect to host {} failed: {text}", ep(addr))
                    }
                },
            );
        }
        let cause = if ce.timed_out {
            EndCause::Timeout("connect timeout")
        } else if ce.error.kind() == std::io::ErrorKind::Interrupted {
            EndCause::AdminTermination
        } else {
            EndCause::PeerError(Some(crate::errno_text(&ce.error)))
        };
        let ext = ce.local.map_or_else(Endpoint::unknown, ep);
        // The address tried, as Dante logs it; the target as requested when none was.
        let target = &g.neg.request.target;
        let peer = ce
            .addr
            .map_or_else(|| target_ep(target), |a| reached_ep(target, a));
        let dst = Side(vec![ext, peer]);
        self.summaries(
            g,
            &g.slog,
            &Counters::default(),
            Side::clone(&g.src),
            dst,
            &cause,
            None,
        );
    }

    /// No socket, or no bind to the external address: the proxy's own failure, before
    /// any connect. Dante 1.4.2 (`sockd_request.c`, the call of bindexternaladdr())
    /// answers "network unreachable" and logs it under the client rule, as an error of
    /// the request with the target as requested and no local address, then the client
    /// rule's `request was not performed due to error` line; no summary.
    async fn local_failure(&self, stream: &mut TcpStream, g: &Granted<'_>, desc: String) {
        let _ = reply(
            stream,
            g.version(),
            ReplyCode::NetworkUnreachable,
            UNSPECIFIED,
        )
        .await;
        self.entry.ended(desc.clone());
        let request = RuleLog {
            command: g.slog.command,
            ..g.clog
        };
        let dst = Side(vec![Endpoint::unknown(), target_ep(&g.neg.request.target)]);
        request.failed(
            self.log,
            Ends {
                src: Side::clone(&g.src),
                dst: Some(dst),
            },
            desc.clone(),
        );
        g.clog.failed(
            self.log,
            only(g.accept_side.clone()),
            format!("request was not performed due to error: {desc}"),
        );
    }
}

fn reply_for(ce: &ConnectError) -> ReplyCode {
    if ce.timed_out {
        return ReplyCode::TtlExpired;
    }
    match ce.error.raw_os_error() {
        Some(libc::ECONNREFUSED) => ReplyCode::ConnectionRefused,
        Some(libc::ENETUNREACH | libc::ENETDOWN) => ReplyCode::NetworkUnreachable,
        Some(libc::EHOSTUNREACH | libc::EHOSTDOWN) => ReplyCode::HostUnreachable,
        Some(libc::ETIMEDOUT) => ReplyCode::TtlExpired,
        _ => ReplyCode::GeneralFailure,
    }
}

fn command_byte(c: WireCommand) -> u8 {
    match c {
        WireCommand::Connect => 1,
        WireCommand::Bind => 2,
        WireCommand::UdpAssociate => 3,
        WireCommand::Other(b) => b,
    }
}

/// A target as requested, as the registry keeps it: `HOST:PORT`, `[IPv6]:PORT`.
pub(crate) fn host_port(t: &Target) -> String {
    match &t.host {
        // IPv4, the common case, without `core::fmt` (a third of a session's formatting).
        Host::Ip(IpAddr::V4(v4)) => {
            let mut out = Vec::with_capacity(21);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                traffic_log::text::push_decimal(&mut out, u64::from(octet));
            }
            out.push(b':');
            traffic_log::text::push_decimal(&mut out, u64::from(t.port));
            String::from_utf8(out).unwrap_or_default()
        }
        Host::Ip(ip) => SocketAddr::new(*ip, t.port).to_string(),
        Host::Domain(name) => format!("{name}:{}", t.port),
    }
}

#[cfg(test)]
#[test]
fn host_port_writes_what_socket_addr_displays() {
    for (ip, port) in [
        ([127, 0, 0, 1], 80),
        ([0, 0, 0, 0], 0),
        ([255, 10, 9, 100], 65535),
    ] {
        let t = Target {
            host: Host::Ip(IpAddr::from(ip)),
            port,
        };
        assert_eq!(host_port(&t), SocketAddr::from((ip, port)).to_string());
    }
}

pub(crate) fn reversed(side: &Side) -> Side {
    Side(side.0.iter().rev().cloned().collect())
}

pub(crate) fn seconds(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n))
}
