//! The request stage: the command the client asked for, checked against the socks
//! rules (`from:` the client, `to:` the target; first match wins, no match the default
//! block rule #0), a requested name resolved only when a rule needs its addresses, and,
//! with `management.client-auth`, an operator's verdict. A refused request is answered
//! and logged here (the socks rule's line, then the client rule's); a passed one is a
//! [`Granted`] request for its command.

use std::sync::Arc;
use std::time::Duration;

use logsys::Subsystem;
use sockd_conf::{ErrorLog, ErrorSide, Protocol, ProxyProtocol, Rule, SocksCommand};
use socks_proto::{Command as WireCommand, Target};
use tokio::net::TcpStream;
use traffic_log::{Command, Endpoint, Ends, Side};

use super::accept::Accepted;
use super::{host_port, Granted, RequestError, Session};
use crate::logging::{warn_failure, Failure};
use crate::negotiate::Negotiated;
use crate::registry::{EventKind, Phase};
use crate::rules::{match_socks, MatchError, RequestFacts, TargetAddrs};
use crate::tlog::{client_side, only, target_ep, user_auth, RuleLog};

/// A requested name that did not resolve, and under which rules to log it.
pub(super) struct Unresolved<'a> {
    pub(super) version: ProxyProtocol,
    /// The request's command (its line is the client rule's, with this command).
    pub(super) command: Command,
    /// The client rule's logging context.
    pub(super) clog: &'a RuleLog,
    /// The `error.log` settings of the socks rule that needed the addresses.
    pub(super) rule_errors: &'a [ErrorLog],
    /// `[AUTH]CLIENT PROXY-INT`.
    pub(super) src: Side,
    /// `CLIENT PROXY-INT` for the client rule's line.
    pub(super) accept_side: Side,
    pub(super) target: &'a Target,
    pub(super) error: &'a crate::resolve::ResolveError,
}

impl<'s> Session<'s> {
    /// The request of `neg`, checked: `None` when it was refused (answered and logged),
    /// else the granted request and the target's addresses as far as the rules resolved
    /// them, and the passing rule again with the session's lifetime (a grant borrows the
    /// negotiated request; what CONNECT keeps across its relay must not). `ident` is the user the client's identd named (taken out of `acc`, so that
    /// the granted request does not borrow the accepted client, which ends here).
    pub(super) async fn request<'a>(
        &self,
        stream: &mut TcpStream,
        neg: &'a Negotiated,
        acc: &Accepted,
        ident: Option<&'a str>,
    ) -> Option<(Granted<'a>, TargetAddrs, &'s Rule)>
    where
        's: 'a,
    {
        let run: &'s crate::RunConfig = self.run;
        let cfg = &run.config;
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
                let err = match neg.version {
                    ProxyProtocol::SocksV4 => RequestError::UnknownV4Command(command_byte(other)),
                    _ => RequestError::UnknownV5Command(command_byte(other)),
                };
                self.answer(stream, neg.version, &err).await;
                self.entry.ended(err.to_string());
                acc.clog.refused(
                    self.log,
                    Subsystem::CLIENT,
                    only(acc.accept_side.clone()),
                    err.not_performed(),
                );
                return None;
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
            &acc.client_ep
                .clone()
                .with_auth(user_auth(neg.method, neg.user.as_deref())),
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
            ident,
            check_to: command != SocksCommand::UdpAssociate,
        };
        let mut target_addrs = TargetAddrs::default();
        let sdec = match match_socks(&cfg.socks_rules, facts, &mut target_addrs).await {
            Ok(d) => d,
            Err(MatchError { rule, error }) => {
                let r = cfg.socks_rules.iter().find(|r| r.number == rule);
                let rule_errors = r.map_or(&[][..], |r| &r.error_logs[..]);
                let unresolved = Unresolved {
                    version: neg.version,
                    command: tl_command,
                    clog: &acc.clog,
                    rule_errors,
                    src,
                    accept_side: acc.accept_side.clone(),
                    target: &req.target,
                    error: &error,
                };
                self.resolve_failed(stream, unresolved).await;
                return None;
            }
        };
        let slog = RuleLog::new(sdec.rule, tl_command, self.debug);
        let Some(rule) = sdec.rule.filter(|_| sdec.passes()) else {
            let err = RequestError::Blocked {
                rule: sdec.number(),
                unmatched: sdec.rule.is_none(),
            };
            self.answer(stream, neg.version, &err).await;
            let reason = err.rule_reason();
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
            let why = err.to_string();
            self.entry.blocked();
            self.entry.ended(why.clone());
            acc.clog
                .blocked(self.log, only(acc.accept_side.clone()), Some(why));
            return None;
        };
        self.entry.passed(rule.number);
        let client_auth = cfg.management.as_ref().is_some_and(|m| m.client_auth);
        if !client_auth {
            self.registry.notify(EventKind::Connect, self.entry);
        } else if let Err(why) = self.operator_verdict().await {
            let err = RequestError::OperatorDenied(why);
            self.answer(stream, neg.version, &err).await;
            let why = err.to_string();
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
            acc.clog
                .blocked(self.log, only(acc.accept_side.clone()), Some(why));
            return None;
        }
        let granted = Granted {
            ident,
            neg,
            rule,
            slog,
            clog: acc.clog,
            src: Arc::new(src),
            accept_side: acc.accept_side.clone(),
            command,
        };
        Some((granted, target_addrs, rule))
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

    /// A requested name that does not resolve. Dante 1.4.2 resolves it before any socks
    /// rule (`sockd_request.c` reqhostisok()) and logs the failure under the client rule
    /// (`iolog(&io.crule, …)`): `block(C): tcp/connect ]: SRC: could not resolve
    /// hostname …`, C the client rule's number, then the client rule's `tcp/accept` line.
    /// We resolve only when a rule or the connect needs the addresses, and log as Dante.
    pub(super) async fn resolve_failed(&self, stream: &mut TcpStream, u: Unresolved<'_>) {
        let Unresolved {
            version,
            command,
            clog,
            rule_errors,
            src,
            accept_side,
            target,
            error,
        } = u;
        let err = RequestError::Unresolved {
            host: target.host.to_string(),
            error: error.clone(),
        };
        self.answer(stream, version, &err).await;
        warn_failure(
            self.log,
            ErrorSide::External,
            Failure::Eai(error.code),
            rule_errors,
            &self.run.config.error_logs,
            || format!("could not DNS-resolve \"{}\": {error}", target.host),
        );
        let desc = err.to_string();
        self.entry.ended(desc.clone());
        let request = RuleLog { command, ..*clog };
        request.failed(self.log, only(src), desc);
        clog.failed(self.log, only(accept_side), err.not_performed());
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

fn command_byte(c: WireCommand) -> u8 {
    match c {
        WireCommand::Connect => 1,
        WireCommand::Bind => 2,
        WireCommand::UdpAssociate => 3,
        WireCommand::Other(b) => b,
    }
}
