//! A relayed TCP session (CONNECT, and a BIND's bindreply): the relay with the rule's
//! I/O lines in Dante's directions, bytes the client sent early, `log.interim`
//! (`crate::interim`), `log: tcpinfo`, and the end-of-session summaries.

use std::sync::Arc;

use sockd_conf::{ErrorSide, Rule};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use traffic_log::{EndCause, Ends, Side, Summary};

use super::{reversed, seconds, Granted, Session};
use crate::logging::{warn_failure, Failure};
use crate::registry::{EventKind, Phase, TcpState};
use crate::relay::{relay, Counters, Dir, Hooks, IoOp, RelayParams};
use crate::tlog::{leg, RuleLog, SessionText};

/// A relayed TCP session's sides and the rule that logs it: what
/// [`Session::relay_logged`] needs beside the two sockets.
pub(crate) struct Relayed<'a> {
    /// The rule whose I/O lines and interim records these are (CONNECT: the socks rule;
    /// BIND: the bindreply rule).
    pub(crate) slog: &'a RuleLog,
    /// `[AUTH]CLIENT PROXY-INT`.
    pub(crate) src: &'a Arc<Side>,
    /// `PROXY-EXT TARGET` (BIND: `PROXY-EXT REMOTE`).
    pub(crate) dst: &'a Arc<Side>,
    /// The session's counters, shared with the registry.
    pub(crate) counters: &'a Arc<Counters>,
    /// The text of its lines (`None`: none is logged).
    pub(crate) text: Option<&'a SessionText>,
}

/// How a relay ended.
pub(crate) struct RelayEnd {
    pub(crate) cause: EndCause,
    /// The TCP_INFO block for the summary (`log: tcpinfo`).
    pub(crate) tcpinfo: Option<String>,
}

/// What a CONNECT's end-of-session lines say, and under which rules.
pub(super) struct Ending<'a> {
    /// The socks rule's logging context.
    pub(super) slog: &'a RuleLog,
    /// The client rule's.
    pub(super) clog: &'a RuleLog,
    /// `CLIENT PROXY-INT` for the client rule's line; `None`: `src` without its
    /// authentication, which it is.
    pub(super) accept_side: Option<&'a Side>,
    pub(super) counters: &'a Counters,
    /// `[AUTH]CLIENT PROXY-INT`.
    pub(super) src: &'a Side,
    /// `PROXY-EXT TARGET`.
    pub(super) dst: &'a Side,
    /// The text of the socks rule's lines, when they are logged.
    pub(super) text: Option<&'a SessionText>,
    pub(super) cause: &'a EndCause,
    /// The TCP_INFO block to append (`log: tcpinfo`).
    pub(super) tcpinfo: Option<&'a str>,
}

impl<'s> Session<'s> {
    /// Relays between `client` and `other`, logging I/O with `r.slog` in Dante's
    /// directions: `SRC -> DST` for bytes from the client, reversed for bytes to it.
    pub(crate) async fn relay_logged(
        &self,
        client: &mut TcpStream,
        other: &mut TcpStream,
        g: &Granted<'_>,
        r: Relayed<'_>,
    ) -> RelayEnd {
        self.relay_tcp(client, other, g.rule, &g.neg.early_data, r)
            .await
    }

    /// [`Self::relay_logged`] for the socks rule `rule` and the bytes the client sent
    /// before the reply (`early`).
    ///
    /// A plain function returning the future, its setup done before it: an `async fn`
    /// would hold its arguments twice, across the whole relay.
    pub(super) fn relay_tcp<'f>(
        &'f self,
        client: &'f mut TcpStream,
        other: &'f mut TcpStream,
        rule: &'f Rule,
        early: &'f [u8],
        r: Relayed<'f>,
    ) -> impl std::future::Future<Output = RelayEnd> + use<'f, 's> {
        let Relayed {
            slog,
            src,
            dst,
            counters,
            text,
        } = r;
        // The session's text serves the I/O lines only when they are logged.
        let heads = text.filter(|_| slog.io_wanted(self.log));
        use std::os::fd::AsRawFd;
        self.entry.set(Phase::Tcp(TcpState {
            src: Arc::clone(src),
            dst: Arc::clone(dst),
            fds: Some((client.as_raw_fd(), other.as_raw_fd())),
            tcpinfo: slog.flags.tcpinfo,
        }));
        self.registry.notify(EventKind::Established, self.entry);
        // Built here, not in the future: moved into it once, and told to the relay as one
        // object.
        let hooks = TcpHooks {
            s: self,
            slog,
            rule,
            src,
            dst,
            heads,
        };
        async move {
            if let Some(cause) = self.early_data(other, early, counters, &hooks).await {
                return RelayEnd {
                    cause,
                    tcpinfo: None,
                };
            }
            let idle = rule.timeout_io.unwrap_or(self.run.config.timeouts.io);
            let params = RelayParams {
                counters,
                idle: seconds(idle),
                cut: self.cut,
                hooks: &hooks,
                splice: !slog.flags.data,
                // `log: tcpinfo` reads the sockets' TCP state after the relay.
                closed_after: !slog.flags.tcpinfo,
            };
            let interim = crate::interim::Interim {
                every: self.interim_every(slog),
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
            let tcpinfo = slog.flags.tcpinfo.then(|| {
                let (c, o) = (
                    crate::sockinfo::tcp_info(client),
                    crate::sockinfo::tcp_info(other),
                );
                traffic_log::tcpinfo::format_block(c.as_ref(), o.as_ref())
            });
            RelayEnd { cause, tcpinfo }
        }
    }

    /// The end-of-session lines of a CONNECT: the socks rule's, then the client rule's.
    pub(super) fn summaries(&self, e: Ending<'_>) {
        let Ending {
            slog,
            clog,
            accept_side,
            counters,
            src,
            dst,
            text,
            cause,
            tcpinfo,
        } = e;
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
        let accept_side = clog
            .logs_summary(cause)
            .then(|| accept_side.map_or_else(|| unauthenticated(src), Side::clone));
        let summary = || Summary {
            client: leg(wc, Side::clone(src), rc),
            target: Some(leg(wt, Side::clone(dst), rt)),
        };
        slog.summary_from(
            self.log,
            text,
            [wc, rc, wt, rt],
            &summary,
            cause,
            secs,
            tcpinfo,
        );
        if let Some(accept_side) = accept_side {
            let summary = Summary {
                client: leg(wc, accept_side, wt),
                target: None,
            };
            clog.summary(self.log, summary, cause, secs);
        }
    }

    /// Bytes the client sent before our reply go to the other side first.
    async fn early_data(
        &self,
        other: &mut TcpStream,
        data: &[u8],
        counters: &Counters,
        hooks: &dyn Hooks,
    ) -> Option<EndCause> {
        if data.is_empty() {
            return None;
        }
        counters.client_read.add(data.len() as u64);
        if let Err(e) = other.write_all(data).await {
            return Some(EndCause::PeerError(Some(crate::errno_text(&e))));
        }
        counters.target_written.add(data.len() as u64);
        hooks.io(
            Dir::Up,
            IoOp {
                len: data.len(),
                data: Some(data),
            },
        );
        None
    }
}

/// A relayed TCP session's I/O lines (in Dante's directions: `SRC -> DST` for bytes from
/// the client, reversed for bytes to it) and the warnings of the error that ends it.
struct TcpHooks<'f, 's> {
    s: &'f Session<'s>,
    slog: &'f RuleLog,
    rule: &'f Rule,
    src: &'f Side,
    dst: &'f Side,
    /// The lines' text (none when they are not logged).
    heads: Option<&'f SessionText>,
}

impl Hooks for TcpHooks<'_, '_> {
    fn io(&self, dir: Dir, op: IoOp<'_>) {
        let Some(heads) = self.heads else {
            return;
        };
        let (src, dst) = (self.src, self.dst);
        if dir == Dir::Up {
            let ends = || Ends {
                src: Side::clone(src),
                dst: Some(Side::clone(dst)),
            };
            self.slog
                .io_line(self.s.log, heads.up(), op.len, op.data, &ends);
        } else {
            let ends = || Ends {
                src: reversed(dst),
                dst: Some(reversed(src)),
            };
            self.slog
                .io_line(self.s.log, heads.down(), op.len, op.data, &ends);
        }
    }

    fn error(&self, side: ErrorSide, e: &std::io::Error) {
        let Some(errno) = e.raw_os_error() else {
            return;
        };
        let peer = if side == ErrorSide::Internal {
            self.src.0.first()
        } else {
            self.dst.0.last()
        };
        let peer = peer.map_or_else(String::new, ToString::to_string);
        let what = if side == ErrorSide::Internal {
            "client"
        } else {
            "host"
        };
        warn_failure(
            self.s.log,
            side,
            Failure::Errno(errno),
            &self.rule.error_logs,
            &self.s.run.config.error_logs,
            || format!("i/o error with {what} {peer}: {}", crate::errno_text(e)),
        );
    }
}

/// `CLIENT PROXY-INT` from `[AUTH]CLIENT PROXY-INT`: the client rule's side is the socks
/// rule's without the authentication (it is built as one, `tlog::client_side`), so a
/// CONNECT does not keep a third endpoint list for its whole relay.
fn unauthenticated(src: &Side) -> Side {
    Side(
        src.0
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let e = e.clone();
                if i == 0 {
                    e.with_auth(None)
                } else {
                    e
                }
            })
            .collect(),
    )
}

#[cfg(test)]
#[test]
fn the_client_rules_side_is_the_socks_rules_without_its_authentication() {
    use crate::tlog::{client_side, ep, user_auth};
    let client = ep("10.1.2.3:4567".parse().unwrap());
    let local = "127.0.0.1:1080".parse().unwrap();
    let auth = user_auth(sockd_conf::AuthMethod::Username, Some("alice"));
    assert!(auth.is_some());
    let src = client_side(&client.clone().with_auth(auth), local);
    assert_eq!(unauthenticated(&src), client_side(&client, local));
}
