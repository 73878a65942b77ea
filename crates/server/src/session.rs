//! One client connection, from accept to the last log line.
//!
//! accept → client rules → negotiation → request → socks rules → resolve → connect →
//! reply → relay → summaries. The session runs on the configuration snapshot taken
//! when it was accepted, so a reload never changes the rules under a running session.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sockd_conf::{Protocol, Rotation, SocksCommand};
use socks_proto::{Command as WireCommand, ReplyCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use traffic_log::{Command, EndCause, Endpoint, Ends, Side, Summary};

use crate::connect::{connect, ConnectError};
use crate::negotiate::{negotiate, reply, Refusal};
use crate::relay::{relay, Counters, Dir, RelayParams};
use crate::rules::{match_client, match_socks, MatchError, RequestFacts, TargetAddrs};
use crate::tlog::{client_side, ep, leg, only, target_ep, user_auth, RuleLog};
use crate::{RunConfig, Shared};

const UNSPECIFIED: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Serves one accepted connection.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    client: SocketAddr,
    local: SocketAddr,
) {
    let run = shared.snapshot();
    let s = Session {
        log: &shared.logger,
        run: &run,
        cut: &shared.cut,
        started: Instant::now(),
        client,
        local,
        debug: shared.logger.debug_enabled(),
    };
    s.serve(&mut stream).await;
}

struct Session<'a> {
    log: &'a logsys::Logger,
    run: &'a RunConfig,
    cut: &'a tokio_util::sync::CancellationToken,
    started: Instant,
    client: SocketAddr,
    local: SocketAddr,
    debug: bool,
}

impl Session<'_> {
    async fn serve(&self, stream: &mut TcpStream) {
        let cfg = &self.run.config;
        let client_ep = ep(self.client);
        let accept_side = client_side(&client_ep, self.local);
        let cdec = match_client(&cfg.client_rules, self.client, self.local).await;
        let clog = RuleLog::new(cdec.rule, Command::Accept, self.debug);
        if !cdec.passes() {
            clog.blocked(self.log, only(accept_side), None);
            return;
        }
        clog.start(self.log, only(accept_side.clone()));
        let _ = stream.set_nodelay(true);
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
        let handshake = negotiate(stream, &cfg.socksmethods, self.run.passwords.as_ref());
        let neg = match self.limited(limit, "negotiate timeout", handshake).await {
            Ok(Ok(n)) => n,
            Ok(Err(refusal)) | Err(refusal) => {
                clog.refused(self.log, only(accept_side), refusal.desc);
                return;
            }
        };
        let req = &neg.request;
        self.debug_msg(|| {
            format!(
                "client {}: method {}, request {:?} for {}.{}",
                self.client,
                neg.method.as_str(),
                req.command,
                req.target.host,
                req.target.port
            )
        });
        let command = match req.command {
            WireCommand::Connect => SocksCommand::Connect,
            other => {
                let _ = reply(stream, ReplyCode::CommandNotSupported, UNSPECIFIED).await;
                let what = match other {
                    WireCommand::Bind => "command bind is not supported yet".to_string(),
                    WireCommand::UdpAssociate => {
                        "command udpassociate is not supported yet".to_string()
                    }
                    _ => format!("unknown command {:#04x}", command_byte(other)),
                };
                clog.refused(
                    self.log,
                    only(accept_side),
                    format!("request was not performed due to error: {what}"),
                );
                return;
            }
        };

        let src = client_side(
            &client_ep.clone().with_auth(user_auth(neg.user.as_deref())),
            self.local,
        );
        let facts = RequestFacts {
            client: self.client,
            target: &req.target,
            command,
            protocol: Protocol::Tcp,
            method: neg.method,
            user: neg.user.as_deref(),
        };
        let mut target_addrs = TargetAddrs::default();
        let sdec = match match_socks(&cfg.socks_rules, facts, &mut target_addrs).await {
            Ok(d) => d,
            Err(MatchError { rule, error }) => {
                let r = cfg.socks_rules.iter().find(|r| r.number == rule);
                let slog = RuleLog::new(r, Command::Connect, self.debug);
                self.resolve_failed(stream, &slog, &clog, src, accept_side, req, &error)
                    .await;
                return;
            }
        };
        let slog = RuleLog::new(sdec.rule, Command::Connect, self.debug);
        if !sdec.passes() {
            let _ = reply(stream, ReplyCode::NotAllowed, UNSPECIFIED).await;
            let reason = sdec
                .rule
                .is_none()
                .then_some("no rules matched; using default block rule");
            let dst = Side(vec![Endpoint::unknown(), target_ep(&req.target)]);
            slog.blocked(
                self.log,
                Ends {
                    src,
                    dst: Some(dst),
                },
                reason.map(String::from),
            );
            let why = match reason {
                Some(r) => format!("blocked by higher-level socks-rule #{}: {r}", sdec.number()),
                None => format!("blocked by higher-level socks-rule #{}", sdec.number()),
            };
            clog.blocked(self.log, only(accept_side), Some(why));
            return;
        }

        let addrs: Vec<SocketAddr> = match target_addrs.get(&req.target.host).await {
            Ok(a) => a
                .iter()
                .map(|ip| SocketAddr::new(*ip, req.target.port))
                .collect(),
            Err(error) => {
                self.resolve_failed(stream, &slog, &clog, src, accept_side, req, &error)
                    .await;
                return;
            }
        };
        self.debug_msg(|| {
            format!(
                "client {}: socks-rule #{} passes; {} resolves to {addrs:?}",
                self.client,
                sdec.number(),
                req.target.host
            )
        });
        let rule = sdec.rule.expect("a passing decision has a rule");
        let limit = rule.timeout_connect.unwrap_or(cfg.timeouts.connect);
        let source = |addr: &SocketAddr| self.source_for(addr);
        let attempt = connect(&addrs, source, seconds(limit));
        let mut target = match self.limited(0, "", attempt).await {
            Ok(Ok(t)) => t,
            Ok(Err(ce)) => {
                self.connect_failed(stream, &slog, &clog, src, accept_side, req, ce)
                    .await;
                return;
            }
            Err(_) => {
                let ce = ConnectError {
                    error: std::io::ErrorKind::Interrupted.into(),
                    timed_out: false,
                    local: None,
                };
                self.connect_failed(stream, &slog, &clog, src, accept_side, req, ce)
                    .await;
                return;
            }
        };

        let ext = target.local_addr().unwrap_or(UNSPECIFIED);
        self.debug_msg(|| {
            format!(
                "client {}: connected to {} from {ext}",
                self.client,
                target
                    .peer_addr()
                    .map_or_else(|_| "?".into(), |a| a.to_string())
            )
        });
        let dst = Side(vec![ep(ext), target_ep(&req.target)]);
        let counters = Counters::default();
        let up = Ends {
            src: src.clone(),
            dst: Some(dst.clone()),
        };
        let down = Ends {
            src: reversed(&dst),
            dst: Some(reversed(&src)),
        };
        let cause = match reply(stream, ReplyCode::Succeeded, ext).await {
            Err(e) => EndCause::ClientError(Some(crate::errno_text(&e))),
            Ok(()) => {
                slog.start(self.log, up.clone());
                let on_io = |dir: Dir, bytes: &[u8]| {
                    let ends = if dir == Dir::Up { &up } else { &down };
                    slog.io(self.log, ends.clone(), bytes);
                };
                match self
                    .early_data(&mut target, &neg.early_data, &counters, &on_io)
                    .await
                {
                    Some(cause) => cause,
                    None => {
                        let idle = rule.timeout_io.unwrap_or(cfg.timeouts.io);
                        let params = RelayParams {
                            counters: &counters,
                            idle: seconds(idle),
                            cut: self.cut,
                            on_io: &on_io,
                        };
                        relay(stream, &mut target, params).await
                    }
                }
            }
        };
        let g = Counters::get;
        let secs = self.started.elapsed().as_secs();
        let (wc, rc) = (g(&counters.client_written), g(&counters.client_read));
        let (wt, rt) = (g(&counters.target_written), g(&counters.target_read));
        let summary = Summary {
            client: leg(wc, src, rc),
            target: Some(leg(wt, dst, rt)),
        };
        slog.summary(self.log, summary, &cause, secs);
        let summary = Summary {
            client: leg(wc, accept_side, wt),
            target: None,
        };
        clog.summary(self.log, summary, &cause, secs);
    }

    /// Logs at debug level; the message is built only when debug is on.
    fn debug_msg(&self, msg: impl FnOnce() -> String) {
        if self.debug {
            self.log.debug(msg());
        }
    }

    /// Runs `fut` within `limit` seconds (0: no limit) and unless the server cuts sessions.
    async fn limited<T>(
        &self,
        limit: u64,
        what: &str,
        fut: impl std::future::Future<Output = T>,
    ) -> Result<T, Refusal> {
        let timed = async {
            match seconds(limit) {
                Some(d) => tokio::time::timeout(d, fut)
                    .await
                    .map_err(|_| Refusal::new(what)),
                None => Ok(fut.await),
            }
        };
        tokio::select! {
            r = timed => r,
            () = self.cut.cancelled() => Err(Refusal::new("administrative termination")),
        }
    }

    /// Bytes the client sent before our reply go to the target first.
    async fn early_data(
        &self,
        target: &mut TcpStream,
        data: &[u8],
        counters: &Counters,
        on_io: &(dyn Fn(Dir, &[u8]) + Sync),
    ) -> Option<EndCause> {
        if data.is_empty() {
            return None;
        }
        use std::sync::atomic::Ordering::Relaxed;
        counters.client_read.fetch_add(data.len() as u64, Relaxed);
        if let Err(e) = target.write_all(data).await {
            return Some(EndCause::PeerError(Some(crate::errno_text(&e))));
        }
        counters
            .target_written
            .fetch_add(data.len() as u64, Relaxed);
        on_io(Dir::Up, data);
        None
    }

    fn source_for(&self, target: &SocketAddr) -> Option<IpAddr> {
        let same_family = |ip: &IpAddr| ip.is_ipv4() == target.is_ipv4();
        match self.run.config.external_rotation {
            Rotation::Route => None,
            Rotation::SameSame => Some(self.local.ip().to_canonical()).filter(same_family),
            Rotation::None => self.run.externals.iter().copied().find(same_family),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn resolve_failed(
        &self,
        stream: &mut TcpStream,
        slog: &RuleLog,
        clog: &RuleLog,
        src: Side,
        accept_side: Side,
        req: &socks_proto::Request,
        error: &crate::resolve::ResolveError,
    ) {
        let _ = reply(stream, ReplyCode::HostUnreachable, UNSPECIFIED).await;
        let desc = format!(
            "could not resolve hostname \"{}\": {error}",
            req.target.host
        );
        slog.failed(self.log, only(src), desc.clone());
        clog.failed(
            self.log,
            only(accept_side),
            format!("request was not performed due to error: {desc}"),
        );
    }

    #[allow(clippy::too_many_arguments)]
    async fn connect_failed(
        &self,
        stream: &mut TcpStream,
        slog: &RuleLog,
        clog: &RuleLog,
        src: Side,
        accept_side: Side,
        req: &socks_proto::Request,
        ce: ConnectError,
    ) {
        let _ = reply(stream, reply_for(&ce), UNSPECIFIED).await;
        let cause = if ce.timed_out {
            EndCause::Timeout("connect timeout")
        } else if ce.error.kind() == std::io::ErrorKind::Interrupted {
            EndCause::AdminTermination
        } else {
            EndCause::PeerError(Some(crate::errno_text(&ce.error)))
        };
        let ext = ce.local.map_or_else(Endpoint::unknown, ep);
        let secs = self.started.elapsed().as_secs();
        let dst = Side(vec![ext, target_ep(&req.target)]);
        let summary = Summary {
            client: leg(0, src, 0),
            target: Some(leg(0, dst, 0)),
        };
        slog.summary(self.log, summary, &cause, secs);
        let summary = Summary {
            client: leg(0, accept_side, 0),
            target: None,
        };
        clog.summary(self.log, summary, &cause, secs);
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

fn reversed(side: &Side) -> Side {
    Side(side.0.iter().rev().cloned().collect())
}

fn seconds(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n))
}
