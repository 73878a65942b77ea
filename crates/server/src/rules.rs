//! Which rule decides: client rules on the TCP connection, socks rules on the request.
//!
//! First match wins; no match is the default block rule #0. Matching a host name,
//! domain or interface against an address may need a lookup: a rule's own name is
//! looked up (interface first, then DNS) each time it is matched, and a requested
//! domain name is resolved at most once per request ([`TargetAddrs`]). A domain that does
//! not resolve while a rule needs its addresses is an error carrying that rule's number,
//! whose `external.log.<level>.error:` settings apply. That is not the number logged:
//! Dante resolves the name before any socks rule and logs the failure under the client
//! rule (`sockd_request.c` reqhostisok()), and so does the session.

use std::net::{IpAddr, SocketAddr};

use sockd_conf::{
    Action, AddrMatch, AuthMethod, HostMatch, Protocol, ProxyProtocol, Rule, SocksCommand,
};
use socks_proto::{Host, Target};

use crate::resolve::{self, ResolveError};

/// The outcome of matching: the rule that matched, or none (default block rule #0).
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    /// The matching rule.
    pub rule: Option<&'a Rule>,
}

impl Decision<'_> {
    /// Whether the request may go on.
    pub fn passes(&self) -> bool {
        self.rule.is_some_and(|r| r.action == Action::Pass)
    }

    /// The rule number to log (0 for the default rule).
    pub fn number(&self) -> u32 {
        self.rule.map_or(0, |r| r.number)
    }
}

/// Whether a rule's (or the global) `clientmethod:` list admits a client whose identd
/// answered with `ident` (or did not answer, or was not asked).
pub fn client_method_ok(list: &[AuthMethod], ident: Option<&str>) -> bool {
    list.contains(&AuthMethod::None) || (ident.is_some() && list.contains(&AuthMethod::Rfc931))
}

/// Matches client rules: `from:` is the client, `to:` the address it connected to.
/// `ident` is the user the client's identd named (with `clientmethod: rfc931`); a rule
/// with `user:` matches only such a client.
pub async fn match_client<'r>(
    rules: &'r [Rule],
    global_methods: &[AuthMethod],
    client: SocketAddr,
    local: SocketAddr,
    ident: Option<&str>,
) -> Decision<'r> {
    for rule in rules {
        let methods = rule.clientmethods.as_deref().unwrap_or(global_methods);
        if client_method_ok(methods, ident)
            && rule
                .users
                .as_ref()
                .is_none_or(|u| ident.is_some_and(|i| u.iter().any(|x| x == i)))
            && addr_matches_ip(&rule.from, client).await
            && addr_matches_ip(&rule.to, local).await
        {
            return Decision { rule: Some(rule) };
        }
    }
    Decision { rule: None }
}

/// What a socks rule is matched against.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The client's address.
    pub client: SocketAddr,
    /// The requested target.
    pub target: &'a Target,
    /// The command.
    pub command: SocksCommand,
    /// The protocol the command uses.
    pub protocol: Protocol,
    /// The negotiated method.
    pub method: AuthMethod,
    /// The authenticated user, if any.
    pub user: Option<&'a str>,
    /// The SOCKS version the client speaks.
    pub version: ProxyProtocol,
    /// The user the client's identd named at accept time, if asked.
    pub ident: Option<&'a str>,
    /// Whether `to:` is checked. A UDP ASSOCIATE request names the client's own UDP
    /// address, not a destination: its `to:` is checked per datagram instead.
    pub check_to: bool,
}

/// A failed lookup while matching rule `rule`.
#[derive(Debug, Clone)]
pub struct MatchError {
    /// The number of the rule being matched.
    pub rule: u32,
    /// What the resolver said.
    pub error: ResolveError,
}

/// The requested target's addresses, resolved when first needed.
#[derive(Debug, Default)]
pub struct TargetAddrs {
    addrs: Option<Vec<IpAddr>>,
}

impl TargetAddrs {
    /// The addresses (an IP target is its own address).
    pub async fn get(&mut self, host: &Host) -> Result<&[IpAddr], ResolveError> {
        if self.addrs.is_none() {
            self.addrs = Some(match host {
                Host::Ip(ip) => vec![*ip],
                Host::Domain(name) => resolve::resolve(name).await?,
            });
        }
        Ok(self.addrs.as_deref().unwrap_or_default())
    }
}

/// Matches socks rules against a request.
pub async fn match_socks<'r>(
    rules: &'r [Rule],
    facts: RequestFacts<'_>,
    target_addrs: &mut TargetAddrs,
) -> Result<Decision<'r>, MatchError> {
    for rule in rules {
        if !rule_admits(rule, &facts) || !addr_matches_ip(&rule.from, facts.client).await {
            continue;
        }
        if !facts.check_to {
            return Ok(Decision { rule: Some(rule) });
        }
        if !rule.to.port.matches(facts.target.port) {
            continue;
        }
        let hit = host_matches_target(&rule.to.host, &facts.target.host, target_addrs)
            .await
            .map_err(|error| MatchError {
                rule: rule.number,
                error,
            })?;
        if hit {
            return Ok(Decision { rule: Some(rule) });
        }
    }
    Ok(Decision { rule: None })
}

/// Whether a route's `from:` and `to:` match a CONNECT. A target name that does not
/// resolve, when the route needs its addresses, does not match.
pub async fn route_matches(
    from: &AddrMatch,
    to: &AddrMatch,
    client: SocketAddr,
    target: &Target,
    addrs: &mut TargetAddrs,
) -> bool {
    addr_matches_ip(from, client).await
        && to.port.matches(target.port)
        && host_matches_target(&to.host, &target.host, addrs)
            .await
            .unwrap_or(false)
}

fn listed<T: PartialEq>(list: &Option<Vec<T>>, item: T) -> bool {
    list.as_ref().is_none_or(|l| l.contains(&item))
}

fn rule_admits(rule: &Rule, f: &RequestFacts<'_>) -> bool {
    listed(&rule.commands, f.command)
        && listed(&rule.protocols, f.protocol)
        && listed(&rule.proxyprotocols, f.version)
        && rule
            .clientmethods
            .as_deref()
            .is_none_or(|m| client_method_ok(m, f.ident))
        && listed(&rule.socksmethods, f.method)
        && rule
            .users
            .as_ref()
            .is_none_or(|users| f.user.is_some_and(|u| users.iter().any(|x| x == u)))
}

async fn addr_matches_ip(m: &AddrMatch, addr: SocketAddr) -> bool {
    if !m.port.matches(addr.port()) {
        return false;
    }
    match &m.host {
        HostMatch::Name(name) => resolve::name_addrs(name)
            .await
            .is_ok_and(|a| a.iter().any(|ip| same_ip(*ip, addr.ip()))),
        // Without reverse lookups, a domain pattern never matches a bare address.
        HostMatch::Domain(_) => false,
        net => net.contains_ip(addr.ip()),
    }
}

async fn host_matches_target(
    m: &HostMatch,
    host: &Host,
    target_addrs: &mut TargetAddrs,
) -> Result<bool, ResolveError> {
    match (m, host) {
        (HostMatch::Any, _) => Ok(true),
        (HostMatch::Domain(d), Host::Domain(name)) => Ok(in_domain(name, d)),
        (HostMatch::Domain(_), Host::Ip(_)) => Ok(false),
        (HostMatch::Name(n), Host::Domain(name)) if n.eq_ignore_ascii_case(name) => Ok(true),
        (HostMatch::Name(n), _) => {
            let Ok(rule_addrs) = resolve::name_addrs(n).await else {
                return Ok(false);
            };
            let addrs = target_addrs.get(host).await?;
            Ok(addrs
                .iter()
                .any(|a| rule_addrs.iter().any(|r| same_ip(*r, *a))))
        }
        (net, _) => {
            let addrs = target_addrs.get(host).await?;
            Ok(addrs.iter().any(|a| net.contains_ip(*a)))
        }
    }
}

fn in_domain(name: &str, domain: &str) -> bool {
    let name = name.trim_end_matches('.');
    name.eq_ignore_ascii_case(domain)
        || (name.len() > domain.len()
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.'
            && name[name.len() - domain.len()..].eq_ignore_ascii_case(domain))
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<Rule> {
        sockd_conf::parse("t", text).unwrap().config.socks_rules
    }

    fn facts(target: &Target) -> RequestFacts<'_> {
        RequestFacts {
            client: "10.1.2.3:40000".parse().unwrap(),
            target,
            command: SocksCommand::Connect,
            protocol: Protocol::Tcp,
            method: AuthMethod::None,
            user: None,
            version: ProxyProtocol::SocksV5,
            ident: None,
            check_to: true,
        }
    }

    async fn number(rs: &[Rule], target: &Target) -> u32 {
        match_socks(rs, facts(target), &mut TargetAddrs::default())
            .await
            .unwrap()
            .number()
    }

    fn t(host: &str, port: u16) -> Target {
        Target {
            host: host
                .parse()
                .map(Host::Ip)
                .unwrap_or_else(|_| Host::Domain(host.into())),
            port,
        }
    }

    #[tokio::test]
    async fn first_match_wins_and_default_is_zero() {
        let rs = rules(
            "socks block { from: 0/0 to: 127.0.0.1/32 port = 9 }\n\
             socks pass { from: 10.0.0.0/8 to: .example.com }\n\
             socks pass { from: 10.0.0.0/8 to: localhost port 1-1024 }\n\
             socks pass { from: 10.0.0.0/8 to: 127.0.0.0/8 }\n",
        );
        assert_eq!(number(&rs, &t("127.0.0.1", 9)).await, 1);
        assert_eq!(number(&rs, &t("www.EXAMPLE.com", 80)).await, 2);
        assert_eq!(number(&rs, &t("example.com", 80)).await, 2);
        // Not in the domain; rule 3 then needs its addresses, and it does not resolve.
        let target = t("notexample.invalid", 80);
        let err = match_socks(&rs, facts(&target), &mut TargetAddrs::default())
            .await
            .unwrap_err();
        assert_eq!(err.rule, 3);
        assert_eq!(number(&rs, &t("localhost", 80)).await, 3);
        assert_eq!(number(&rs, &t("127.0.0.1", 8080)).await, 4);
        assert_eq!(number(&rs, &t("192.0.2.1", 80)).await, 0);
    }

    #[tokio::test]
    async fn unresolvable_target_names_the_rule_that_needed_it() {
        let rs = rules("socks block { from: 0/0 to: 127.0.0.1/32 port = 9 }\nsocks pass { from: 0/0 to: 0/0 }\n");
        let target = t("nonexistent.invalid", 9);
        let err = match_socks(&rs, facts(&target), &mut TargetAddrs::default())
            .await
            .unwrap_err();
        assert_eq!(err.rule, 1);
        // A port that rule 1 cannot match needs no lookup.
        assert_eq!(number(&rs, &t("nonexistent.invalid", 80)).await, 2);
    }

    #[tokio::test]
    async fn methods_users_and_commands() {
        let rs = rules(
            "passwordfile: /x\nsocks pass { from: 0/0 to: 0/0\nsocksmethod: username\nuser: alice\n}\n\
             socks pass { from: 0/0 to: 0/0\ncommand: bind\n}\n",
        );
        let target = t("192.0.2.1", 80);
        let mut f = facts(&target);
        assert_eq!(
            match_socks(&rs, f, &mut TargetAddrs::default())
                .await
                .unwrap()
                .number(),
            0
        );
        f.method = AuthMethod::Username;
        f.user = Some("alice");
        assert_eq!(
            match_socks(&rs, f, &mut TargetAddrs::default())
                .await
                .unwrap()
                .number(),
            1
        );
        f.user = Some("bob");
        assert_eq!(
            match_socks(&rs, f, &mut TargetAddrs::default())
                .await
                .unwrap()
                .number(),
            0
        );
        f.command = SocksCommand::Bind;
        assert_eq!(
            match_socks(&rs, f, &mut TargetAddrs::default())
                .await
                .unwrap()
                .number(),
            2
        );
    }

    #[tokio::test]
    async fn client_rules_match_client_and_local_address() {
        let c = sockd_conf::parse(
            "t",
            "client block { from: 127.0.0.2/32 to: 0/0 }\nclient pass { from: 127.0.0.0/8 to: lo port = 1080 }\n",
        )
        .unwrap()
        .config;
        let local: SocketAddr = "127.0.0.1:1080".parse().unwrap();
        let none = [AuthMethod::None];
        let d = match_client(
            &c.client_rules,
            &none,
            "127.0.0.2:5".parse().unwrap(),
            local,
            None,
        )
        .await;
        assert_eq!((d.number(), d.passes()), (1, false));
        let d = match_client(
            &c.client_rules,
            &none,
            "127.0.0.3:5".parse().unwrap(),
            local,
            None,
        )
        .await;
        assert_eq!((d.number(), d.passes()), (2, true));
        let other: SocketAddr = "127.0.0.1:1081".parse().unwrap();
        let d = match_client(
            &c.client_rules,
            &none,
            "127.0.0.3:5".parse().unwrap(),
            other,
            None,
        )
        .await;
        assert_eq!(d.number(), 0);
        // A client rule naming users matches only a client its identd named.
        let mut rules = c.client_rules.clone();
        rules[1].users = Some(vec!["alice".into()]);
        rules[1].clientmethods = Some(vec![AuthMethod::Rfc931]);
        let client: SocketAddr = "127.0.0.3:5".parse().unwrap();
        assert_eq!(
            match_client(&rules[1..], &none, client, local, None)
                .await
                .number(),
            0
        );
        assert_eq!(
            match_client(&rules[1..], &none, client, local, Some("bob"))
                .await
                .number(),
            0
        );
        assert_eq!(
            match_client(&rules[1..], &none, client, local, Some("alice"))
                .await
                .number(),
            2
        );
    }
}
