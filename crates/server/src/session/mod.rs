//! One client connection, from accept to the last log line.
//!
//! [`Session::serve`] runs the stages in order, each in a module of its own:
//! accept and the client rules ([`accept`]), negotiation ([`handshake`]: SOCKS4/4a or
//! SOCKS5 and authentication), the request and the socks rules ([`request`]: a
//! [`Granted`] request or its refusal), then the command: CONNECT ([`connect`], directly
//! or through an upstream proxy), BIND ([`crate::bind`]) or UDP ASSOCIATE
//! ([`crate::udp`]). A relayed TCP session (CONNECT and bindreply) is relayed, logged
//! and summarised by [`tcp`]. The session runs on the configuration snapshot taken when
//! it was accepted, so a reload never changes the rules under a running session.

mod accept;
mod connect;
mod error;
mod handshake;
mod request;
mod tcp;

pub(crate) use error::RequestError;
pub(crate) use tcp::{RelayEnd, Relayed};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sockd_conf::{ProxyProtocol, Rotation, Rule, SocksCommand};
use socks_proto::{Host, Target};
use tokio::net::TcpStream;
use tokio::time::Instant;
use traffic_log::Side;

use crate::negotiate::{Negotiated, Refusal};
use crate::registry::{Entry, Registry};
use crate::tlog::RuleLog;
use crate::{RunConfig, Shared};

pub(crate) const UNSPECIFIED: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Serves one accepted connection.
///
/// A plain function returning the future: an `async fn` would hold its arguments twice
/// (as arguments and as the locals they are moved into).
#[allow(clippy::manual_async_fn)]
pub(crate) fn serve(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    client: SocketAddr,
    local: SocketAddr,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let run = shared.snapshot();
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
        // The registry entry goes before `stream`: the registry never names a closed
        // descriptor.
        drop(reg);
        drop(stream);
    }
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
    pub(crate) entry: &'a Arc<Entry>,
}

/// A request that passed the socks rules, with what its command needs to log.
pub(crate) struct Granted<'a> {
    pub(crate) neg: &'a Negotiated,
    /// The command, as the rules name it.
    pub(crate) command: SocksCommand,
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

impl Session<'_> {
    /// The stages in order; each logs and answers its own refusal, and a refused stage
    /// ends the session.
    async fn serve(&self, stream: &mut TcpStream) {
        // Everything up to the command is one boxed future, and what it leaves is only
        // what a CONNECT needs across its relay (`Connected`): a task is as big as its
        // largest state, and the relay's should be the largest (ARCHITECTURE.md, "Session
        // size"). A future of its own, not a block: a block's value is built where its
        // locals still are, so the task would keep room for both.
        let mut connected = Box::pin(self.until_connected(stream)).await;
        if let Some(c) = &mut connected {
            self.established(stream, c).await;
        }
    }

    /// Accept, negotiation, request and the command: a CONNECT until its outgoing
    /// connection is up (`None` when it was refused or failed, answered and logged),
    /// BIND and UDP ASSOCIATE to their end (`None`).
    async fn until_connected(&self, stream: &mut TcpStream) -> Option<connect::Connected<'_>> {
        let (accepted, neg, ident) = self.negotiate(stream).await?;
        // In a block: what only the request needs is gone before the command.
        let mut granted = {
            let acc = accepted;
            self.request(stream, &neg, &acc, ident.as_deref()).await
        };
        // By reference: a move out of it would be a second copy in the future.
        let (granted, target_addrs, rule) = granted.as_mut()?;
        match granted.command {
            // The rarer commands are boxed: they would make this future bigger for all.
            SocksCommand::Bind => {
                Box::pin(self.bind(stream, granted)).await;
                return None;
            }
            SocksCommand::UdpAssociate => {
                Box::pin(self.udp_associate(stream, granted)).await;
                return None;
            }
            _ => {}
        }
        let out = self
            .connect(stream, granted, std::mem::take(target_addrs))
            .await?;
        self.answer_connected(stream, granted, rule, out).await
    }

    /// The client rules and the negotiation (the identd state is needed only until the
    /// handshake ends), and the user the client's identd named, taken out of the
    /// accepted client.
    async fn negotiate(
        &self,
        stream: &mut TcpStream,
    ) -> Option<(accept::Accepted, Negotiated, Option<String>)> {
        let mut ident = self.ident();
        let mut accepted = self.client_rules(&mut ident).await?;
        let neg = self.handshake(stream, &accepted, &mut ident).await?;
        let user = accepted.ident.take();
        Some((accepted, neg, user))
    }

    /// Answers the client the reply `err` calls for (none when it is gone).
    pub(crate) async fn answer(
        &self,
        stream: &mut TcpStream,
        version: ProxyProtocol,
        err: &RequestError,
    ) {
        if let Some(code) = err.reply() {
            let _ = crate::negotiate::reply(stream, version, code, UNSPECIFIED).await;
        }
    }

    /// Seconds between the interim records of `slog`'s rule (its `log.interim`, else the
    /// global one; 0: none).
    pub(crate) fn interim_every(&self, slog: &RuleLog) -> u64 {
        slog.interim.unwrap_or(self.run.config.log_interim)
    }

    /// Logs at debug level; the message is built only when debug is on.
    pub(crate) fn debug_msg(&self, msg: impl FnOnce() -> String) {
        if self.debug {
            self.log.debug(msg());
        }
    }

    /// Runs `fut` within `limit` seconds (0: no limit; only the negotiation has one) and
    /// unless the server cuts sessions.
    pub(crate) async fn limited<T>(
        &self,
        limit: u64,
        fut: impl std::future::Future<Output = T>,
    ) -> Result<T, Refusal> {
        let timed = async {
            match seconds(limit) {
                Some(d) => tokio::time::timeout(d, fut)
                    .await
                    .map_err(|_| Refusal::Timeout { secs: limit }),
                None => Ok(fut.await),
            }
        };
        tokio::select! {
            r = timed => r,
            () = self.cut.cancelled() => Err(Refusal::Cut),
        }
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
