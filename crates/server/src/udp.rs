//! UDP ASSOCIATE (RFC 1928 §7): a UDP relay that lives as long as its TCP control
//! connection.
//!
//! - The client-side UDP socket is bound on the address the client reached; the reply
//!   names it.
//! - Datagrams are accepted only from the client: from the address and port its request
//!   declared, or, when it declared `0.0.0.0` (or `::`) and/or port 0, from the IP address
//!   of its TCP connection, on the first port that IP sends from (then fixed). Others are
//!   dropped with a record.
//! - Headers are checked by `socks_proto::decode_udp`; malformed or truncated datagrams
//!   and fragments (FRAG ≠ 0) are dropped, counted and logged.
//! - Each destination is checked against the socks rules (`command: udpassociate`,
//!   `to:` = the destination) and each reply source against the `udpreply` rules
//!   (`from:` = the replying host, `to:` = the client); decisions are cached per address
//!   for the association's life.
//! - With `udp.connectdst: yes` (the default) replies are relayed only from addresses the
//!   client has sent to.
//! - External sockets, one per address family, are bound lazily to the `external:`
//!   address and, with `udp.portrange`, to a port in that range; never to the wildcard
//!   address. With `external.rotation: none` the first `external:` address of the
//!   destination's family (interface names are expanded to their addresses at start-up),
//!   with `same-same` the address the client reached, with `route` (or without any
//!   `external:`) the address the kernel would send from. A destination of a family
//!   with no such address is refused, datagram by datagram, in Dante 1.4.2's words
//!   (`getoutaddr.c`).
//!
//! Counters follow Dante: the client side counts whole datagrams (SOCKS header
//! included), the target side payload only; both count packets. One summary is written
//! per external socket used.

use crate::events::UdpDrop;
use crate::interim::Ticks;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sockd_conf::{ErrorSide, Protocol, Rotation, SocksCommand};
use socks_proto::{decode_udp, encode_udp, Host, ReplyCode, Target};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;
use traffic_log::{Command, EndCause, Endpoint, EndpointHost, Ends, Side, Summary, Verdict};

use crate::logging::{warn_failure, Failure};
use crate::negotiate::reply;
use crate::registry::{Count, Counters, EventKind, Phase};
use crate::rules::{match_socks, RequestFacts, TargetAddrs};
use crate::session::{seconds, Granted, RequestError, Session, UNSPECIFIED};
use crate::tlog::{ep, leg, only, reached_ep, target_ep, udp_leg, RuleLog};

const MAX_DATAGRAM: usize = 65_535;

/// One external socket and what went through it.
struct External {
    sock: UdpSocket,
    /// What went through it (also in the session's registry entry).
    counters: Arc<Counters>,
    /// The last destination sent to, as logged (the address a name resolved to).
    last_target: Option<Endpoint>,
}

/// A cached rule decision: the rule number, whether it passes, and its log context.
#[derive(Clone, Copy)]
struct Verdict2 {
    passes: bool,
    log: RuleLog,
}

struct Assoc {
    /// Where the client's datagrams come from, once known.
    client_udp: Option<SocketAddr>,
    allowed_ip: IpAddr,
    allowed_port: Option<u16>,
    pint: SocketAddr,
    ext4: Option<External>,
    ext6: Option<External>,
    /// Destinations the client has sent to (for `udp.connectdst`).
    contacted: Vec<SocketAddr>,
    out_rules: HashMap<Target, Verdict2>,
    reply_rules: HashMap<SocketAddr, Verdict2>,
    resolved: HashMap<String, Vec<IpAddr>>,
    /// Datagrams dropped: from others, malformed, fragments, refused.
    dropped: u64,
}

impl Assoc {
    /// One datagram dropped, counted by its reason.
    fn drop_one(&mut self, why: UdpDrop) {
        self.dropped += 1;
        why.emit();
    }
}

/// The `PROXY-EXT TARGET` half of a refused datagram's line: `0.0.0.0.0 TARGET`, as
/// Dante 1.4.2 writes it whether an external socket is bound or not.
fn dropped_dst(target: Endpoint) -> Side {
    Side(vec![Endpoint::unknown(), target])
}

/// The target a datagram's header names, as far as it can be read (for the line of a
/// datagram dropped before it is decoded, or because it cannot be): a name the client
/// sent vis-escaped, `0.0.0.0.0` for what cannot be read (too short, an unknown
/// address type).
fn header_target(dgram: &[u8]) -> Endpoint {
    let port_at = |at: usize| {
        dgram
            .get(at..at + 2)
            .map_or(0, |p| u16::from_be_bytes([p[0], p[1]]))
    };
    match dgram.get(3) {
        Some(1) => match dgram.get(4..8) {
            Some(a) => Endpoint::ip(IpAddr::from([a[0], a[1], a[2], a[3]]), port_at(8)),
            None => Endpoint::unknown(),
        },
        Some(4) => match dgram.get(4..20) {
            Some(a) => {
                let mut o = [0u8; 16];
                o.copy_from_slice(a);
                Endpoint::ip(IpAddr::from(o), port_at(20))
            }
            None => Endpoint::unknown(),
        },
        Some(3) => {
            let len = usize::from(dgram.get(4).copied().unwrap_or(0));
            match dgram.get(5..5 + len) {
                Some(name) => named_ep(name, port_at(5 + len)),
                None => Endpoint::unknown(),
            }
        }
        _ => Endpoint::unknown(),
    }
}

/// `NAME.PORT` for a name a client sent, vis-escaped (`0.0.0.0.PORT` for an empty one).
fn named_ep(name: &[u8], port: u16) -> Endpoint {
    if name.is_empty() {
        return Endpoint::ip(IpAddr::from([0, 0, 0, 0]), port);
    }
    Endpoint {
        auth: None,
        host: EndpointHost::Name(traffic_log::vis::encode(name)),
        port,
        bracketed: false,
        target_name: None,
    }
}

impl Session<'_> {
    pub(crate) async fn udp_associate(&self, stream: &mut TcpStream, g: &Granted<'_>) {
        let declared = g.neg.request.target.clone();
        let client_sock = match UdpSocket::bind(SocketAddr::new(self.local.ip(), 0)).await {
            Ok(s) => s,
            Err(e) => {
                let err = RequestError::UdpSocket(e);
                self.answer(stream, g.version(), &err).await;
                g.slog
                    .failed(self.log, only(Side::clone(&g.src)), err.to_string());
                return;
            }
        };
        let pint = client_sock.local_addr().unwrap_or(UNSPECIFIED);
        let (allowed_ip, allowed_port) = match &declared.host {
            Host::Ip(ip) if !ip.is_unspecified() => (
                ip.to_canonical(),
                (declared.port != 0).then_some(declared.port),
            ),
            _ => (
                self.client.ip(),
                (declared.port != 0).then_some(declared.port),
            ),
        };
        if let Err(e) = reply(stream, g.version(), ReplyCode::Succeeded, pint).await {
            let cause = EndCause::ClientError(Some(crate::errno_text(&e)));
            return g.clog.summary(
                self.log,
                Summary {
                    client: leg(0, g.accept_side.clone(), 0),
                    target: None,
                },
                &cause,
                0,
            );
        }
        g.slog
            .start(self.log, only(Side(vec![target_ep(&declared), ep(pint)])));
        let mut a = Assoc {
            client_udp: allowed_port.map(|p| SocketAddr::new(allowed_ip, p)),
            allowed_ip,
            allowed_port,
            pint,
            ext4: None,
            ext6: None,
            contacted: Vec::new(),
            out_rules: HashMap::new(),
            reply_rules: HashMap::new(),
            resolved: HashMap::new(),
            dropped: 0,
        };
        self.entry.set(Phase::Udp {
            src: Some(Side(vec![target_ep(&declared), ep(pint)])),
            dst: None,
        });
        self.registry.notify(EventKind::Established, self.entry);
        // Kernel receive times, for the dump's latency statistics.
        let _ = nix::sys::socket::setsockopt(
            &client_sock,
            nix::sys::socket::sockopt::ReceiveTimestampns,
            &true,
        );
        let cause = self.udp_loop(stream, g, &client_sock, &mut a).await;
        self.udp_summaries(g, &a, &cause);
    }

    async fn udp_loop(
        &self,
        stream: &mut TcpStream,
        g: &Granted<'_>,
        client_sock: &UdpSocket,
        a: &mut Assoc,
    ) -> EndCause {
        let idle = seconds(g.rule.timeout_io.unwrap_or(self.run.config.timeouts.io));
        let mut cbuf = vec![0u8; MAX_DATAGRAM];
        let mut tbuf4 = vec![0u8; MAX_DATAGRAM];
        let mut tbuf6 = vec![0u8; MAX_DATAGRAM];
        let mut control = [0u8; 512];
        // The idle timeout runs from the last event on any socket; interim ticks are not
        // events, so they neither extend nor cut it.
        let mut last_activity = Instant::now();
        let mut ticks = Ticks::new(self.interim_every(&g.slog), &g.slog);
        loop {
            let idle_deadline = idle.map(|d| last_activity + d);
            let idle_timer = async move {
                match idle_deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = recv_stamped(client_sock, &mut cbuf) => match r {
                    Ok((n, from, stamp)) => {
                        if let Some(t) = stamp {
                            self.registry.read_latency.lock().unwrap_or_else(|p| p.into_inner()).add(t.elapsed().unwrap_or_default());
                        }
                        self.datagram_from_client(g, a, &cbuf[..n], from).await;
                        if let Some(t) = stamp {
                            self.registry.io_latency.lock().unwrap_or_else(|p| p.into_inner()).add(t.elapsed().unwrap_or_default());
                        }
                    }
                    Err(e) => return EndCause::ClientError(Some(crate::errno_text(&e))),
                },
                r = recv_opt(a.ext4.as_ref().map(|e| &e.sock), &mut tbuf4) => {
                    if let Ok((n, from)) = r { self.datagram_from_target(g, client_sock, a, &tbuf4[..n], from, true).await }
                },
                r = recv_opt(a.ext6.as_ref().map(|e| &e.sock), &mut tbuf6) => {
                    if let Ok((n, from)) = r { self.datagram_from_target(g, client_sock, a, &tbuf6[..n], from, false).await }
                },
                r = tokio::io::AsyncReadExt::read(stream, &mut control) => match r {
                    // The control connection carries nothing after the reply; its end ends the association.
                    Ok(0) => return EndCause::ClientClosed,
                    Ok(_) => {}
                    Err(e) => return EndCause::ClientError(Some(crate::errno_text(&e))),
                },
                () = ticks.tick() => {
                    self.udp_interim(g, a);
                    continue;
                }
                () = idle_timer => return EndCause::Timeout("i/o timeout"),
                () = self.cut.cancelled() => return EndCause::AdminTermination,
            }
            last_activity = Instant::now();
        }
    }

    async fn datagram_from_client(
        &self,
        g: &Granted<'_>,
        a: &mut Assoc,
        dgram: &[u8],
        from: SocketAddr,
    ) {
        let from = SocketAddr::new(from.ip().to_canonical(), from.port());
        let pint = a.pint;
        let pint_side = |src: SocketAddr| Side(vec![ep(src), ep(pint)]);
        // A datagram from the client that goes no further: counted and logged in Dante
        // 1.4.2's two-sided form, `CLIENT-UDP PROXY-INTUDP -> 0.0.0.0.0 TARGET: REASON`
        // (Dante writes no PROXY-EXT for a refused datagram, bound or not).
        let refuse = |a: &mut Assoc, reason: UdpDrop, target: Endpoint, why: String| {
            a.drop_one(reason);
            let ends = Ends {
                src: pint_side(from),
                dst: Some(dropped_dst(target)),
            };
            g.slog.transient(self.log, Verdict::Block, ends, why);
        };
        let known_port = a.allowed_port.or(a.client_udp.map(|c| c.port()));
        if from.ip() != a.allowed_ip || known_port.is_some_and(|p| p != from.port()) {
            // Dante drops these without a line; ferrosocks says so (docs/traffic-log.md).
            refuse(
                a,
                UdpDrop::Foreign,
                header_target(dgram),
                "datagram not from the client of this association".into(),
            );
            return;
        }
        a.client_udp.get_or_insert(from);
        let d = match decode_udp(dgram) {
            Ok(d) => d,
            // A name with a byte no host name has: ferrosocks does not look it up (Dante
            // does, and writes the name unescaped).
            Err(e @ socks_proto::ProtoError::BadDomainByte(_)) => {
                refuse(a, UdpDrop::Malformed, header_target(dgram), e.to_string());
                return;
            }
            Err(_) => {
                let why = format!(
                    "SOCKS protocol error in socks udp packet of length {}.  \
                     Could not extract valid address from SOCKS UDP header",
                    dgram.len()
                );
                refuse(a, UdpDrop::Malformed, Endpoint::unknown(), why);
                return;
            }
        };
        if d.frag != 0 {
            refuse(
                a,
                UdpDrop::Fragment,
                target_ep(&d.target),
                "fragmented socks udp packets are not supported".into(),
            );
            return;
        }
        let target = d.target.clone();
        let Some(dest) = self.udp_destination(g, a, &target, from).await else {
            a.drop_one(UdpDrop::Unresolved);
            return;
        };
        let verdict = match a.out_rules.get(&target) {
            Some(v) => *v,
            None => {
                let v = self
                    .udp_rule(g, SocksCommand::UdpAssociate, from, &target)
                    .await;
                a.out_rules.insert(target.clone(), v);
                v
            }
        };
        let ext = match self.external(g, a, from, dest).await {
            Ok(e) => e,
            Err(NoExternal::Address(why)) => {
                let desc = why.to_string();
                a.drop_one(UdpDrop::NoExternal);
                let ends = Ends {
                    src: pint_side(from),
                    dst: Some(Side(vec![Endpoint::unknown(), reached_ep(&target, dest)])),
                };
                if verdict.passes {
                    verdict.log.transient(self.log, Verdict::Block, ends, desc);
                } else {
                    verdict.log.datagram(self.log, Verdict::Block, ends, d.data);
                }
                return;
            }
            Err(NoExternal::Socket(e)) => {
                refuse(
                    a,
                    UdpDrop::NoExternal,
                    reached_ep(&target, dest),
                    format!("no external UDP socket: {}", crate::errno_text(&e)),
                );
                return;
            }
        };
        let pext = ext.sock.local_addr().unwrap_or(UNSPECIFIED);
        // Dante logs the address a datagram goes to, not the name the client sent.
        let reached = reached_ep(&target, dest);
        let ends = Ends {
            src: pint_side(from),
            dst: Some(Side(vec![ep(pext), reached.clone()])),
        };
        if !verdict.passes {
            a.drop_one(UdpDrop::Blocked);
            verdict.log.datagram(self.log, Verdict::Block, ends, d.data);
            return;
        }
        ext.counters.client_read.add(dgram.len() as u64);
        ext.counters.touch();
        match ext.sock.send_to(d.data, dest).await {
            Ok(_) => {
                ext.counters.target_written.add(d.data.len() as u64);
                let pext_side = Side(vec![ep(pext), reached.clone()]);
                self.entry
                    .udp_sent(Side(vec![ep(from), ep(pint)]), pext_side, pext, dest);
                ext.last_target = Some(reached);
                if !a.contacted.contains(&dest) {
                    a.contacted.push(dest);
                }
                verdict.log.datagram(self.log, Verdict::Pass, ends, d.data);
            }
            Err(e) => {
                if let Some(errno) = e.raw_os_error() {
                    let errors = &self.run.config.error_logs;
                    warn_failure(
                        self.log,
                        ErrorSide::External,
                        Failure::Errno(errno),
                        &g.rule.error_logs,
                        errors,
                        || {
                            format!(
                                "send to host {} failed: {}",
                                ep(dest),
                                crate::errno_text(&e)
                            )
                        },
                    );
                }
                UdpDrop::SendFailed.emit();
                let desc = format!("send to host failed: {}", crate::errno_text(&e));
                verdict.log.transient(self.log, Verdict::Block, ends, desc);
            }
        }
    }

    async fn datagram_from_target(
        &self,
        g: &Granted<'_>,
        client_sock: &UdpSocket,
        a: &mut Assoc,
        data: &[u8],
        from: SocketAddr,
        v4: bool,
    ) {
        let from = SocketAddr::new(from.ip().to_canonical(), from.port());
        let Some(client_udp) = a.client_udp else {
            a.drop_one(UdpDrop::NoClient);
            return;
        };
        if self.run.config.udp_connectdst && !a.contacted.contains(&from) {
            a.drop_one(UdpDrop::ConnectDst);
            self.debug_msg(|| {
                format!(
                    "UDP reply from {from} dropped: the client has not sent to it (udp.connectdst)"
                )
            });
            return;
        }
        let verdict = match a.reply_rules.get(&from) {
            Some(v) => *v,
            None => {
                let client_target = Target {
                    host: Host::Ip(client_udp.ip()),
                    port: client_udp.port(),
                };
                let v = self
                    .udp_rule(g, SocksCommand::UdpReply, from, &client_target)
                    .await;
                a.reply_rules.insert(from, v);
                v
            }
        };
        let pint = a.pint;
        let ext = if v4 { a.ext4.as_mut() } else { a.ext6.as_mut() };
        let Some(ext) = ext else { return };
        let pext = ext.sock.local_addr().unwrap_or(UNSPECIFIED);
        let ends = Ends {
            src: Side(vec![ep(from), ep(pext)]),
            dst: Some(Side(vec![ep(pint), ep(client_udp)])),
        };
        // Read from the target, whether passed on or not (as Dante 1.4.2 counts it).
        ext.counters.target_read.add(data.len() as u64);
        ext.counters.touch();
        if !verdict.passes {
            a.drop_one(UdpDrop::Blocked);
            verdict.log.datagram(self.log, Verdict::Block, ends, data);
            return;
        }
        let mut out = Vec::with_capacity(data.len() + 22);
        encode_udp(from, data, &mut out);
        match client_sock.send_to(&out, client_udp).await {
            Ok(_) => {
                ext.counters.client_written.add(out.len() as u64);
                verdict.log.datagram(self.log, Verdict::Pass, ends, data);
            }
            Err(e) => {
                UdpDrop::SendFailed.emit();
                verdict.log.transient(
                    self.log,
                    Verdict::Block,
                    ends,
                    format!("send to client failed: {}", crate::errno_text(&e)),
                );
            }
        }
    }

    /// The rule for one direction of UDP traffic, as a cached verdict.
    async fn udp_rule(
        &self,
        g: &Granted<'_>,
        command: SocksCommand,
        from: SocketAddr,
        to: &Target,
    ) -> Verdict2 {
        let facts = RequestFacts {
            client: from,
            target: to,
            command,
            protocol: Protocol::Udp,
            method: g.neg.method,
            user: g.neg.user.as_deref(),
            version: g.neg.version,
            ident: g.ident,
            check_to: true,
        };
        let tl = if command == SocksCommand::UdpReply {
            Command::UdpReply
        } else {
            Command::UdpAssociate
        };
        match match_socks(
            &self.run.config.socks_rules,
            facts,
            &mut TargetAddrs::default(),
        )
        .await
        {
            Ok(d) => Verdict2 {
                passes: d.passes(),
                log: RuleLog::new(d.rule, tl, self.debug),
            },
            Err(e) => {
                let r = self
                    .run
                    .config
                    .socks_rules
                    .iter()
                    .find(|r| r.number == e.rule);
                Verdict2 {
                    passes: false,
                    log: RuleLog::new(r, tl, self.debug),
                }
            }
        }
    }

    /// The socket address of a datagram's destination, resolving names once.
    async fn udp_destination(
        &self,
        g: &Granted<'_>,
        a: &mut Assoc,
        target: &Target,
        from: SocketAddr,
    ) -> Option<SocketAddr> {
        let ip = match &target.host {
            Host::Ip(ip) => *ip,
            Host::Domain(name) => {
                if !a.resolved.contains_key(name) {
                    match crate::resolve::resolve(name).await {
                        Ok(addrs) => {
                            a.resolved.insert(name.clone(), addrs);
                        }
                        Err(e) => {
                            let to = named_ep(name.as_bytes(), target.port);
                            // Dante 1.4.2's words, its trailing space included.
                            let mut text = Vec::new();
                            to.write_to(&mut text);
                            let why = format!(
                                "could not resolve target address {}: {e} ",
                                String::from_utf8_lossy(&text)
                            );
                            let ends = Ends {
                                src: Side(vec![ep(from), ep(a.pint)]),
                                dst: Some(dropped_dst(to)),
                            };
                            g.slog.transient(self.log, Verdict::Block, ends, why);
                            return None;
                        }
                    }
                }
                *a.resolved.get(name)?.first()?
            }
        };
        Some(SocketAddr::new(ip, target.port))
    }

    /// The external socket for `dest`'s family, bound on first use (the datagram from
    /// the client at `from` is the first to go there).
    async fn external<'a>(
        &self,
        g: &Granted<'_>,
        a: &'a mut Assoc,
        from: SocketAddr,
        dest: SocketAddr,
    ) -> Result<&'a mut External, NoExternal> {
        let slot = if dest.is_ipv4() {
            &mut a.ext4
        } else {
            &mut a.ext6
        };
        if slot.is_none() {
            let ip = self.udp_source(from, dest).map_err(NoExternal::Address)?;
            let sock = bind_in_range(ip, g.rule.udp_portrange)
                .await
                .map_err(NoExternal::Socket)?;
            let counters = Arc::new(Counters::default());
            self.entry.add_counters(&counters);
            *slot = Some(External {
                sock,
                counters,
                last_target: None,
            });
        }
        Ok(slot.as_mut().expect("set just above"))
    }

    /// The address an external socket towards `dest` is bound on, or why there is none.
    fn udp_source(&self, from: SocketAddr, dest: SocketAddr) -> Result<IpAddr, NoAddress> {
        let cfg = &self.run.config;
        let v4 = dest.is_ipv4();
        match cfg.external_rotation {
            Rotation::SameSame => {
                let local = self.local.ip().to_canonical();
                if local.is_ipv4() == v4 {
                    return Ok(local);
                }
                Err(NoAddress::SameSame {
                    local: self.local,
                    dest,
                })
            }
            Rotation::None if !self.run.externals.is_empty() => self
                .run
                .externals
                .iter()
                .copied()
                .find(|ip| ip.is_ipv4() == v4)
                .ok_or_else(|| NoAddress::NoneConfigured {
                    from,
                    dest,
                    file: cfg.origins.file.clone(),
                }),
            // The kernel's choice: the source address of a socket connected to `dest`.
            _ => route_source(dest).map_err(|error| NoAddress::NoRoute { from, dest, error }),
        }
    }

    /// The counts so far of each external socket used (one summary each), or of none:
    /// `CLIENT-UDP PROXY-INTUDP` and `PROXY-EXT TARGET` with bytes and packets.
    fn udp_legs(&self, a: &Assoc) -> Vec<Summary> {
        let client_udp = a.client_udp.map_or_else(Endpoint::unknown, ep);
        let client_side = Side(vec![client_udp, ep(a.pint)]);
        let pair = |c: Count| (c.bytes, c.packets);
        let mut out: Vec<Summary> = a
            .ext4
            .iter()
            .chain(a.ext6.iter())
            .map(|ext| {
                let f = ext.counters.traffic();
                let pext = ext
                    .sock
                    .local_addr()
                    .map_or_else(|_| Endpoint::unknown(), ep);
                let target = ext.last_target.clone().unwrap_or_else(Endpoint::unknown);
                Summary {
                    client: udp_leg(pair(f.to_client), client_side.clone(), pair(f.from_client)),
                    target: Some(udp_leg(
                        pair(f.to_target),
                        Side(vec![pext, target]),
                        pair(f.from_target),
                    )),
                }
            })
            .collect();
        if out.is_empty() {
            out.push(Summary {
                client: udp_leg((0, 0), client_side, (0, 0)),
                target: Some(udp_leg(
                    (0, 0),
                    Side(vec![Endpoint::unknown(), Endpoint::unknown()]),
                    (0, 0),
                )),
            });
        }
        out
    }

    /// An interim record per external socket (`log.interim`), with the sides and legs
    /// its summary will have.
    fn udp_interim(&self, g: &Granted<'_>, a: &Assoc) {
        let secs = self.started.elapsed().as_secs();
        for summary in self.udp_legs(a) {
            g.slog.interim(self.log, summary, secs);
        }
    }

    fn udp_summaries(&self, g: &Granted<'_>, a: &Assoc, cause: &EndCause) {
        let secs = self.started.elapsed().as_secs();
        let legs = self.udp_legs(a);
        self.entry.ended(cause.to_string());
        let (mut to_client, mut to_target) = (0, 0);
        for summary in legs {
            to_client += summary.client.written.bytes;
            to_target += summary.target.as_ref().map_or(0, |t| t.written.bytes);
            g.slog.summary(self.log, summary, cause, secs);
        }
        if a.dropped > 0 {
            self.debug_msg(|| {
                format!(
                    "UDP association of {}: {} datagram(s) dropped",
                    self.client, a.dropped
                )
            });
        }
        let summary = Summary {
            client: leg(to_client, g.accept_side.clone(), to_target),
            target: None,
        };
        g.clog.summary(self.log, summary, cause, secs);
    }
}

/// Why a datagram found no external socket.
enum NoExternal {
    /// No address to bind it on.
    Address(NoAddress),
    /// The socket could not be made or bound.
    Socket(std::io::Error),
}

/// Why a destination has no external address to send from, in the words of Dante
/// 1.4.2's getoutaddr() (`SameSame`, `NoneConfigured`) or ours (`NoRoute`).
#[derive(Debug, thiserror::Error)]
enum NoAddress {
    /// `external.rotation: same-same` and the client reached an address of the other
    /// family.
    #[error(
        "rotation for external addresses is set to same-same, but that can not work for \
         this udpassociate request.  The internal address we accepted the client on is a {} \
         ({}), but the target address is a {} ({})",
        family(.local.ip().to_canonical().is_ipv4()),
        ep(*.local),
        family(.dest.is_ipv4()),
        ep(*.dest)
    )]
    SameSame { local: SocketAddr, dest: SocketAddr },
    /// `external.rotation: none` and no `external:` address of the family.
    #[error(
        "none of the addresses configured on our external interface(s) can be used for \
         forwarding from our local client {} to target {}.  Configuration error in {file}?",
        ep(*.from),
        ep(*.dest)
    )]
    NoneConfigured {
        from: SocketAddr,
        dest: SocketAddr,
        file: String,
    },
    /// `external.rotation: route`: the kernel has no route to the destination.
    #[error(
        "could not find a local address for forwarding from our local client {} to target {}: {}",
        ep(*.from),
        ep(*.dest),
        crate::errno_text(.error)
    )]
    NoRoute {
        from: SocketAddr,
        dest: SocketAddr,
        error: std::io::Error,
    },
}

/// Dante's name for an address family (`atype2string`).
fn family(v4: bool) -> &'static str {
    if v4 {
        "IPv4 address"
    } else {
        "IPv6 address"
    }
}

/// The address the kernel sends to `dest` from (a UDP socket connected to it, as
/// Dante's getoutaddr() does for `external.rotation: route`).
fn route_source(dest: SocketAddr) -> std::io::Result<IpAddr> {
    let any = if dest.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let probe = std::net::UdpSocket::bind(any)?;
    probe.connect(dest)?;
    Ok(probe.local_addr()?.ip())
}

/// `recv_from` that also returns the kernel's receive time (SO_TIMESTAMPNS), when on.
async fn recv_stamped(
    sock: &UdpSocket,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr, Option<std::time::SystemTime>)> {
    use std::os::fd::AsRawFd;
    loop {
        sock.readable().await?;
        match sock.try_io(tokio::io::Interest::READABLE, || {
            recvmsg_stamped(sock.as_raw_fd(), buf)
        }) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

fn recvmsg_stamped(
    fd: std::os::fd::RawFd,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr, Option<std::time::SystemTime>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
        .map_err(std::io::Error::from)?;
    let mut stamp = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmTimestampns(t) = c {
                let since =
                    std::time::Duration::new(t.tv_sec().max(0) as u64, t.tv_nsec().max(0) as u32);
                stamp = Some(std::time::UNIX_EPOCH + since);
            }
        }
    }
    let addr = msg.address.and_then(|a: SockaddrStorage| {
        if let Some(v4) = a.as_sockaddr_in() {
            Some(SocketAddr::V4((*v4).into()))
        } else {
            a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
        }
    });
    let addr = addr.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "datagram without a source address",
        )
    })?;
    Ok((msg.bytes, addr, stamp))
}

async fn recv_opt(
    sock: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// Binds a UDP socket on `ip`, on a port of `range` when given (the first free one from
/// a varying starting point).
async fn bind_in_range(ip: IpAddr, range: Option<(u16, u16)>) -> std::io::Result<UdpSocket> {
    let Some((lo, hi)) = range else {
        return UdpSocket::bind(SocketAddr::new(ip, 0)).await;
    };
    let span = u32::from(hi - lo) + 1;
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        % span;
    let mut last = std::io::Error::from(std::io::ErrorKind::AddrInUse);
    for i in 0..span {
        let port = lo + ((start + i) % span) as u16;
        match UdpSocket::bind(SocketAddr::new(ip, port)).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}
