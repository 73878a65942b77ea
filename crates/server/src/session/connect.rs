//! The CONNECT command: the target's addresses (resolved once, if the rules have not
//! already), a `route` to an upstream proxy (`crate::chain`) or a direct connection from
//! the `external:` address (`crate::connect`), the success reply, then the relay and
//! the summaries ([`super::tcp`]). A failed connection is answered with the reply code
//! its error calls for and logged as Dante does; a local failure (no socket, no bind)
//! as the proxy's own.

use std::net::SocketAddr;
use std::sync::Arc;

use sockd_conf::{ErrorSide, Rule, Via};
use socks_proto::ReplyCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use traffic_log::{EndCause, Endpoint, Ends, Side};

use super::error::connect_reply;
use super::request::Unresolved;
use super::tcp::{Ending, Relayed};
use super::{reversed, seconds, Granted, RequestError, Session, UNSPECIFIED};
use crate::chain;
use crate::connect::{connect, ConnectError, Stage};
use crate::logging::{is_no_route, warn_failure, Failure};
use crate::negotiate::reply;
use crate::relay::Counters;
use crate::rules::TargetAddrs;
use crate::tlog::{ep, only, reached_ep, target_ep, RuleLog, SessionText};

/// A CONNECT whose outgoing connection is up and answered: what its relay and its
/// summaries need, taken out of the grant, so that neither the grant nor the
/// negotiated request it borrows is held across the relay.
pub(super) struct Connected<'a> {
    /// The socks rule that passed it.
    pub(super) rule: &'a Rule,
    /// Its logging context.
    pub(super) slog: RuleLog,
    /// The client rule's logging context.
    pub(super) clog: RuleLog,
    /// `[AUTH]CLIENT PROXY-INT` (shared with the registry's entry).
    pub(super) src: Arc<Side>,
    /// `PROXY-EXT TARGET` (`None` once the summaries took it).
    dst: Option<Arc<Side>>,
    /// The session's counters, shared with the registry.
    counters: Arc<Counters>,
    /// The text of the socks rule's lines, when they are logged.
    text: Option<Box<SessionText>>,
    /// Bytes the client sent before our reply: they go to the target first.
    pub(super) early_data: Vec<u8>,
    /// The outgoing connection.
    out: TcpStream,
}

/// An outgoing connection that is up (directly or through an upstream): what
/// [`Session::answer_connected`] needs of it.
pub(super) struct Outgoing {
    pub(super) stream: TcpStream,
    /// Its local address, for the success reply.
    ext: SocketAddr,
    /// `PROXY-EXT TARGET` (chained: `PROXY-EXT NEXTPROXY [LASTPROXY-EXT] TARGET`).
    dst: Side,
    /// Bytes an upstream proxy sent after its answer: they belong to the client.
    leftover: Vec<u8>,
}

impl Session<'_> {
    /// The outgoing connection of a granted CONNECT, up; `None` when it failed (answered
    /// and logged here).
    pub(super) async fn connect(
        &self,
        stream: &mut TcpStream,
        g: &Granted<'_>,
        mut target_addrs: TargetAddrs,
    ) -> Option<Outgoing> {
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
                let unresolved = Unresolved {
                    version: g.version(),
                    command: g.slog.command,
                    clog: &g.clog,
                    rule_errors: &g.rule.error_logs,
                    src: Side::clone(&g.src),
                    accept_side: g.accept_side.clone(),
                    target,
                    error: &error,
                };
                self.resolve_failed(stream, unresolved).await;
                return None;
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
        let (out, reached) = match self.limited(0, attempt).await {
            Ok(Ok(t)) => t,
            Ok(Err(ce)) => {
                self.connect_failed(stream, g, ce).await;
                return None;
            }
            Err(_) => {
                let ce = ConnectError {
                    addr: None,
                    error: std::io::ErrorKind::Interrupted.into(),
                    stage: Stage::Connect,
                    timed_out: false,
                    local: None,
                };
                self.connect_failed(stream, g, ce).await;
                return None;
            }
        };
        let ext = out.local_addr().unwrap_or(UNSPECIFIED);
        self.debug_msg(|| format!("client {}: connected to {reached} from {ext}", self.client));
        // Dante logs the address it connected to, not the name the client asked for.
        let dst = Side(vec![ep(ext), reached_ep(target, reached)]);
        self.entry.endpoints(Some(ext), Some(reached));
        Some(Outgoing {
            stream: out,
            ext,
            dst,
            leftover: Vec::new(),
        })
    }

    /// CONNECT through an upstream proxy.
    async fn connect_chained(
        &self,
        stream: &mut TcpStream,
        g: &Granted<'_>,
        route: &sockd_conf::Route,
    ) -> Option<Outgoing> {
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
        let outcome = match self.limited(0, attempt).await {
            Ok(Ok(ch)) => Ok(ch),
            Ok(Err(e)) => Err((e.failure, e.local)),
            // The only limit here is the server's cut.
            Err(_) => Err((chain::ChainFailure::Cut, None)),
        };
        if outcome.is_err() {
            crate::events::UpstreamFailed {
                route: route.number,
            }
            .emit();
        }
        let ch = match outcome {
            Ok(ch) => ch,
            Err((failure, local)) => {
                let err = RequestError::Chain(failure);
                self.answer(stream, g.version(), &err).await;
                let desc = err.to_string();
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
                    desc,
                );
                g.clog
                    .failed(self.log, only(g.accept_side.clone()), err.not_performed());
                return None;
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
        self.entry.endpoints(Some(ext), Some(ch.next));
        Some(Outgoing {
            stream: ch.stream,
            ext,
            dst: Side(dst),
            leftover: ch.leftover,
        })
    }

    /// A CONNECT whose outgoing connection is up (directly or through an upstream): its
    /// counters, the success reply, the start line and bytes the upstream already sent.
    /// `None` when it ended here (logged).
    pub(super) async fn answer_connected<'r>(
        &self,
        stream: &mut TcpStream,
        g: &Granted<'_>,
        rule: &'r Rule,
        out: Outgoing,
    ) -> Option<Connected<'r>> {
        let counters = Arc::new(Counters::default());
        self.entry.add_counters(&counters);
        let Outgoing {
            stream: out,
            ext,
            dst,
            leftover,
        } = out;
        let dst = Arc::new(dst);
        let mut c = Connected {
            rule,
            slog: g.slog,
            clog: g.clog,
            src: Arc::clone(&g.src),
            dst: Some(Arc::clone(&dst)),
            text: g.slog.session_text(self.log, &g.src, &dst),
            counters,
            early_data: g.neg.early_data.clone(),
            out,
        };
        let early = match reply(stream, g.version(), ReplyCode::Succeeded, ext).await {
            Err(e) => Some(EndCause::ClientError(Some(crate::errno_text(&e)))),
            Ok(()) => {
                let ends = || Ends {
                    src: Side::clone(&c.src),
                    dst: Some(Side::clone(&dst)),
                };
                match &c.text {
                    Some(text) => c.slog.start_from(self.log, text, &ends),
                    None => c.slog.start_with(self.log, ends),
                }
                drop(dst);
                self.leftover_to_client(stream, &c, leftover).await
            }
        };
        match early {
            Some(cause) => {
                self.connect_ended(&mut c, &cause, None);
                None
            }
            None => Some(c),
        }
    }

    /// The relay of an answered CONNECT, and its summaries.
    pub(super) async fn established(&self, stream: &mut TcpStream, c: &mut Connected<'_>) {
        let end = {
            let Some(dst) = &c.dst else { return };
            let relayed = Relayed {
                slog: &c.slog,
                src: &c.src,
                dst,
                counters: &c.counters,
                text: c.text.as_deref(),
            };
            self.relay_tcp(stream, &mut c.out, c.rule, &c.early_data, relayed)
                .await
        };
        self.connect_ended(c, &end.cause, end.tcpinfo.as_deref());
    }

    /// The summaries of a CONNECT that was established.
    fn connect_ended(&self, c: &mut Connected<'_>, cause: &EndCause, tcpinfo: Option<&str>) {
        let dst = c.dst.take().unwrap_or_else(|| Arc::new(Side(Vec::new())));
        self.summaries(Ending {
            slog: &c.slog,
            clog: &c.clog,
            accept_side: None,
            counters: &c.counters,
            src: &c.src,
            dst: &dst,
            text: c.text.as_deref(),
            cause,
            tcpinfo,
        });
    }

    /// Bytes an upstream proxy sent right after its answer go to the client first.
    async fn leftover_to_client(
        &self,
        stream: &mut TcpStream,
        c: &Connected<'_>,
        data: Vec<u8>,
    ) -> Option<EndCause> {
        if data.is_empty() {
            return None;
        }
        c.counters.target_read.add(data.len() as u64);
        if let Err(e) = stream.write_all(&data).await {
            return Some(EndCause::ClientError(Some(crate::errno_text(&e))));
        }
        c.counters.client_written.add(data.len() as u64);
        let dst = c.dst.as_deref().map_or_else(|| Side(Vec::new()), reversed);
        let ends = Ends {
            src: dst,
            dst: Some(reversed(&c.src)),
        };
        c.slog.io(self.log, ends, data.len(), Some(&data));
        None
    }

    async fn connect_failed(&self, stream: &mut TcpStream, g: &Granted<'_>, ce: ConnectError) {
        let ce = match RequestError::local(ce) {
            Ok(local) => return self.local_failure(stream, g, local).await,
            Err(ce) => ce,
        };
        let _ = reply(stream, g.version(), connect_reply(&ce), UNSPECIFIED).await;
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
        let text = g.slog.session_text(self.log, &g.src, &dst);
        let ending = Ending {
            slog: &g.slog,
            clog: &g.clog,
            accept_side: Some(&g.accept_side),
            counters: &Counters::default(),
            src: &g.src,
            dst: &dst,
            text: text.as_deref(),
            cause: &cause,
            tcpinfo: None,
        };
        self.summaries(ending);
    }

    /// No socket, or no bind to the external address: the proxy's own failure, before
    /// any connect. Dante 1.4.2 (`sockd_request.c`, the call of bindexternaladdr())
    /// answers "network unreachable" and logs it under the client rule, as an error of
    /// the request with the target as requested and no local address, then the client
    /// rule's `request was not performed due to error` line; no summary.
    async fn local_failure(&self, stream: &mut TcpStream, g: &Granted<'_>, err: RequestError) {
        self.answer(stream, g.version(), &err).await;
        let desc = err.to_string();
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
            desc,
        );
        g.clog
            .failed(self.log, only(g.accept_side.clone()), err.not_performed());
    }
}
