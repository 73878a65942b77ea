//! The negotiation stage: SOCKS4/4a or SOCKS5 and the method's sub-negotiation
//! (`crate::negotiate`), within `timeout.negotiate` and unless the server cuts the
//! session. A refusal is always logged: under AUTH for a failed login, else CLIENT.

use logsys::Subsystem;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::accept::Accepted;
use super::Session;
use crate::negotiate::{negotiate, Ident, Negotiated};
use crate::tlog::only;

impl Session<'_> {
    /// Negotiates with the client: `None` when it was refused (logged).
    pub(super) async fn handshake(
        &self,
        stream: &mut TcpStream,
        acc: &Accepted,
        ident: &mut Ident,
    ) -> Option<Negotiated> {
        let cfg = &self.run.config;
        let limit = acc.negotiate_limit;
        // Boxed, as the connect: a session's task is as big as its largest state, and
        // these states end before the long relay.
        let handshake = Box::pin(negotiate(stream, &cfg.socksmethods, &self.run.users, ident));
        let negotiating = Instant::now();
        let outcome = self.limited(limit, handshake).await;
        crate::events::Negotiated(negotiating.elapsed()).emit();
        let neg = match outcome {
            Ok(Ok(n)) => n,
            Ok(Err(refusal)) | Err(refusal) => {
                let sub = if refusal.is_auth() {
                    Subsystem::AUTH
                } else {
                    Subsystem::CLIENT
                };
                if refusal.is_auth() {
                    self.entry.blocked();
                }
                let desc = refusal.to_string();
                self.entry.ended(desc.clone());
                acc.clog
                    .refused(self.log, sub, only(acc.accept_side.clone()), desc);
                return None;
            }
        };
        self.entry.negotiated(neg.method, neg.user.as_deref());
        Some(neg)
    }
}
