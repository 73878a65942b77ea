//! BIND (RFC 1928 §4; SOCKS4 CD=2): listen on the external side, answer with the
//! bound address, wait for the remote host, check it against the `bindreply` rules,
//! answer again with its address, then relay.
//!
//! Records follow the seed's §4.3–4.4: `tcp/bind [:` once listening, `tcp/bindreply [:`
//! for the incoming connection (or `block(N): tcp/bindreply ]:` when a rule refuses it),
//! I/O lines and the bindreply summary `W_t -> TARGET PROXY-EXT -> R_t, W_c -> PROXY-INT
//! CLIENT -> R_c`, then `tcp/bind ]:` and the client rule's summary. The wait for the
//! remote host is limited by `timeout.connect` (the rule's, else the global one).
//!
//! While it waits, the control connection is read: the client's end of file ends the
//! BIND at once, logged as Dante 1.4.2 does (`sockd_request.c`: `]: …: eof from client`
//! on the bind and accept lines), and so does an error or any byte before the second
//! reply (`receiving request from client failed (…)`, an error): nothing is expected
//! there, and the listening socket is closed with the session.

use std::net::SocketAddr;

use sockd_conf::{Protocol, SocksCommand};
use socks_proto::{Host, ReplyCode, Target};
use tokio::net::{TcpListener, TcpStream};
use traffic_log::{Command, EndCause, Ends, Side, Summary};

use crate::negotiate::reply;
use crate::relay::Counters;
use crate::rules::{match_socks, RequestFacts, TargetAddrs};
use crate::session::{seconds, Granted, RelayEnd, Relayed, RequestError, Session, UNSPECIFIED};
use crate::tlog::{ep, leg, only, target_ep, user_auth, RuleLog};

enum Wait {
    Remote(TcpStream, SocketAddr),
    Failed(EndCause, ReplyCode),
    /// The client ended the wait: its end of file, or an error or bytes on the control
    /// connection.
    ClientEnded(RequestError),
}

impl Session<'_> {
    pub(crate) async fn bind(&self, stream: &mut TcpStream, g: &Granted<'_>) {
        let cfg = &self.run.config;
        let local_ip = self.local.ip().to_canonical();
        let ip = self.source_for(local_ip.is_ipv4()).unwrap_or(local_ip);
        let listener = match listen(SocketAddr::new(ip, 0)) {
            Ok(l) => l,
            Err(error) => {
                let err = RequestError::BindListen { ip, error };
                self.answer(stream, g.version(), &err).await;
                g.slog
                    .failed(self.log, only(Side::clone(&g.src)), err.to_string());
                g.clog
                    .failed(self.log, only(g.accept_side.clone()), err.not_performed());
                return;
            }
        };
        let bound = listener.local_addr().unwrap_or(UNSPECIFIED);
        let bind_dst = Side(vec![ep(bound), target_ep(&g.neg.request.target)]);
        let bind_ends = Ends {
            src: Side::clone(&g.src),
            dst: Some(bind_dst),
        };
        if let Err(e) = reply(stream, g.version(), ReplyCode::Succeeded, bound).await {
            let cause = EndCause::ClientError(Some(crate::errno_text(&e)));
            return self.bind_ended(g, &bind_ends, &Counters::default(), &cause);
        }
        g.slog.start(self.log, bind_ends.clone());
        self.debug_msg(|| format!("client {}: bound {bound} for BIND", self.client));

        let limit = g.rule.timeout_connect.unwrap_or(cfg.timeouts.connect);
        let (remote, remote_addr) = match self.wait_for_remote(stream, &listener, limit).await {
            Wait::Remote(r, a) => (r, a),
            Wait::Failed(cause, code) => {
                let _ = reply(stream, g.version(), code, UNSPECIFIED).await;
                return self.bind_ended(g, &bind_ends, &Counters::default(), &cause);
            }
            Wait::ClientEnded(err) => {
                drop(listener);
                self.answer(stream, g.version(), &err).await;
                return self.bind_left(g, bind_ends, &err);
            }
        };
        drop(listener);
        let remote_addr = SocketAddr::new(remote_addr.ip().to_canonical(), remote_addr.port());
        let ext_in = remote.local_addr().unwrap_or(bound);
        let client_user = ep(self.client).with_auth(user_auth(g.neg.method, g.neg.user.as_deref()));
        let target_side = Side(vec![ep(remote_addr), ep(ext_in)]);
        let client_side = Side(vec![ep(self.local), client_user]);
        let reply_ends = Ends {
            src: target_side.clone(),
            dst: Some(client_side.clone()),
        };

        // `from:` is the remote host, `to:` the client.
        let client_target = Target {
            host: Host::Ip(self.client.ip()),
            port: self.client.port(),
        };
        let facts = RequestFacts {
            client: remote_addr,
            target: &client_target,
            command: SocksCommand::BindReply,
            protocol: Protocol::Tcp,
            method: g.neg.method,
            user: g.neg.user.as_deref(),
            version: g.neg.version,
            ident: g.ident,
            check_to: true,
        };
        let decision = match_socks(&cfg.socks_rules, facts, &mut TargetAddrs::default()).await;
        let rule = decision.as_ref().ok().and_then(|d| d.rule);
        let rlog = RuleLog::new(rule, Command::BindReply, self.debug);
        let number = decision.as_ref().map_or(0, |d| d.number());
        if !decision.is_ok_and(|d| d.passes()) {
            drop(remote);
            let err = RequestError::BindReplyBlocked {
                from: ep(remote_addr),
                rule: number,
            };
            self.answer(stream, g.version(), &err).await;
            rlog.blocked(self.log, reply_ends, None);
            // The BIND and the client's session end blocked.
            let why = err.to_string();
            self.entry.blocked();
            self.entry.ended(why.clone());
            g.slog.blocked(self.log, bind_ends, Some(why.clone()));
            g.clog
                .blocked(self.log, only(g.accept_side.clone()), Some(why));
            return;
        }
        if let Err(e) = reply(stream, g.version(), ReplyCode::Succeeded, remote_addr).await {
            let cause = EndCause::ClientError(Some(crate::errno_text(&e)));
            return self.bind_ended(g, &bind_ends, &Counters::default(), &cause);
        }
        rlog.start(self.log, reply_ends);
        let mut remote = remote;
        let _ = remote.set_nodelay(true);
        let counters = std::sync::Arc::new(Counters::default());
        self.entry.add_counters(&counters);
        self.entry.endpoints(Some(ext_in), Some(remote_addr));
        let to_remote = std::sync::Arc::new(Side(vec![ep(ext_in), ep(remote_addr)]));
        // Only the I/O lines of a BIND take the session's text: its start and summary
        // are turned round.
        let text = rlog
            .io_wanted(self.log)
            .then(|| rlog.session_text(self.log, &g.src, &to_remote))
            .flatten();
        let relayed = Relayed {
            slog: &rlog,
            src: &g.src,
            dst: &to_remote,
            counters: &counters,
            text: text.as_deref(),
        };
        let RelayEnd { cause, tcpinfo } = self.relay_logged(stream, &mut remote, g, relayed).await;
        // Dante 1.4.2 relays a bindreply with the remote host as its "local client".
        let cause = match cause {
            EndCause::ClientClosed => EndCause::PeerClosed,
            EndCause::PeerClosed => EndCause::ClientClosed,
            EndCause::ClientError(e) => EndCause::PeerError(e),
            EndCause::PeerError(e) => EndCause::ClientError(e),
            other => other,
        };
        let (wc, rc) = (
            counters.client_written.bytes(),
            counters.client_read.bytes(),
        );
        let (wt, rt) = (
            counters.target_written.bytes(),
            counters.target_read.bytes(),
        );
        let summary = Summary {
            client: leg(wt, target_side, rt),
            target: Some(leg(wc, client_side, rc)),
        };
        rlog.summary_with(
            self.log,
            summary,
            &cause,
            self.started.elapsed().as_secs(),
            tcpinfo.as_deref(),
        );
        self.bind_ended(g, &bind_ends, &counters, &cause);
    }

    /// A wait the client ended: Dante's `]: …: eof from client` on the bind and accept
    /// lines, or for an error the failure lines.
    fn bind_left(&self, g: &Granted<'_>, bind_ends: Ends, err: &RequestError) {
        let desc = err.to_string();
        self.entry.ended(desc.clone());
        let accept = only(g.accept_side.clone());
        if matches!(err, RequestError::BindClientEof) {
            g.slog.stopped(self.log, bind_ends, Some(desc.clone()));
            g.clog.stopped(self.log, accept, Some(desc));
        } else {
            g.slog.failed(self.log, bind_ends, desc);
            g.clog.failed(self.log, accept, err.not_performed());
        }
    }

    /// `tcp/bind ]:` and the client rule's summary.
    fn bind_ended(&self, g: &Granted<'_>, bind_ends: &Ends, counters: &Counters, cause: &EndCause) {
        g.slog.stopped(self.log, bind_ends.clone(), None);
        if !g.slog.flags.disconnect
            && matches!(cause, EndCause::Timeout(_) | EndCause::ClientError(_))
        {
            g.slog
                .failed(self.log, bind_ends.clone(), cause.to_string());
        }
        self.entry.ended(cause.to_string());
        let summary = Summary {
            client: leg(
                counters.client_written.bytes(),
                g.accept_side.clone(),
                counters.target_written.bytes(),
            ),
            target: None,
        };
        g.clog
            .summary(self.log, summary, cause, self.started.elapsed().as_secs());
    }

    /// Waits for the remote host, the client's departure (or bytes from it), the time
    /// limit or a cut.
    async fn wait_for_remote(
        &self,
        client: &TcpStream,
        listener: &TcpListener,
        limit: u64,
    ) -> Wait {
        let client_gone = async {
            let mut b = [0u8; 64];
            let read = loop {
                if let Err(e) = client.readable().await {
                    break Err(e);
                }
                match client.try_read(&mut b) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    other => break other,
                }
            };
            let failed = |why: String| Wait::ClientEnded(RequestError::BindClientError(why));
            match read {
                Ok(0) => Wait::ClientEnded(RequestError::BindClientEof),
                // Dante 1.4.2's words for bytes where it expects none.
                Ok(_) => failed("no system error".into()),
                Err(e) => failed(crate::errno_text(&e)),
            }
        };
        let deadline = async {
            match seconds(limit) {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = listener.accept() => match r {
                Ok((s, a)) => Wait::Remote(s, a),
                Err(e) => Wait::Failed(EndCause::PeerError(Some(crate::errno_text(&e))), ReplyCode::GeneralFailure),
            },
            ended = client_gone => ended,
            () = deadline => Wait::Failed(EndCause::Timeout("bind timeout"), ReplyCode::TtlExpired),
            () = self.cut.cancelled() => Wait::Failed(EndCause::AdminTermination, ReplyCode::GeneralFailure),
        }
    }
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(8)?;
    TcpListener::from_std(sock.into())
}
