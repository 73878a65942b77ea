//! The first stage: the connection as accepted, before any SOCKS byte. The client's
//! identd is asked when a client rule needs it (`clientmethod: rfc931`), the client
//! rules decide (`from:` the client, `to:` the address it reached), and a block ends the
//! session with `block(N): tcp/accept ]: …` when the rule logs.

use std::time::Duration;

use sockd_conf::AuthMethod;
use traffic_log::{Command, Endpoint, Side};

use super::Session;
use crate::negotiate::Ident;
use crate::rules::match_client;
use crate::tlog::{client_side, ep, only, RuleLog};

/// A connection the client rules passed.
pub(super) struct Accepted {
    /// The client rule's logging context.
    pub(super) clog: RuleLog,
    /// The client, as its records print it.
    pub(super) client_ep: Endpoint,
    /// `CLIENT PROXY-INT` for the client rule's lines.
    pub(super) accept_side: Side,
    /// The user the client's identd named, when a client rule asked.
    pub(super) ident: Option<String>,
    /// `timeout.negotiate` for this client (its rule's, else the global one).
    pub(super) negotiate_limit: u64,
}

impl Session<'_> {
    /// The identd client of this connection, asked at most once (here or while
    /// negotiating `rfc931`), within `timeout.negotiate` but at most 10 s.
    pub(super) fn ident(&self) -> Ident {
        let limit = self.run.config.timeouts.negotiate;
        Ident {
            client: self.client,
            local: self.local,
            limit: Duration::from_secs(if limit == 0 { 10 } else { limit.min(10) }),
            answer: None,
        }
    }

    /// The client rules: `None` when they block the connection (logged).
    pub(super) async fn client_rules(&self, ident: &mut Ident) -> Option<Accepted> {
        let cfg = &self.run.config;
        let client_ep = ep(self.client);
        let accept_side = client_side(&client_ep, self.local);
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
            return None;
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
        let negotiate_limit = cdec
            .rule
            .and_then(|r| r.timeout_negotiate)
            .unwrap_or(cfg.timeouts.negotiate);
        Some(Accepted {
            clog,
            client_ep,
            accept_side,
            ident: client_ident,
            negotiate_limit,
        })
    }
}
