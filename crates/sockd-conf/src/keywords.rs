//! The one table of configuration keywords.
//!
//! Each entry says where a keyword may stand, whether ferrosocks implements it, its
//! syntax and what it does. The parser consults it for "not supported yet" and "did you
//! mean" errors, `docs/configuration.md` is generated from it ([`reference_markdown`]),
//! and a test keeps the two in step, and checks that every supported entry's example
//! parses.

/// Where a keyword may stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A server setting, before the rules.
    Global,
    /// Inside a `client` rule only.
    ClientRule,
    /// Inside a `socks` rule only.
    SocksRule,
    /// Inside either kind of rule.
    AnyRule,
    /// A server setting, and inside rules.
    Everywhere,
    /// Inside a `route` only.
    RouteOnly,
}

/// Whether ferrosocks does what the keyword asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Implemented.
    Supported,
    /// A Dante or ferrosocks keyword not implemented yet: using it is an error that says so.
    NotYet,
}

/// One keyword. A `*` in `name` stands for any run of characters (a family of keywords).
#[derive(Debug, Clone, Copy)]
pub struct Keyword {
    /// The keyword as written before the colon.
    pub name: &'static str,
    /// Where it may stand.
    pub place: Place,
    /// Implemented or not.
    pub status: Status,
    /// Values it takes.
    pub syntax: &'static str,
    /// What it does.
    pub doc: &'static str,
    /// A line that uses it (for supported keywords: parsed by a test).
    pub example: &'static str,
}

use Place::*;
use Status::*;

const fn kw(
    name: &'static str,
    place: Place,
    status: Status,
    syntax: &'static str,
    doc: &'static str,
    example: &'static str,
) -> Keyword {
    Keyword {
        name,
        place,
        status,
        syntax,
        doc,
        example,
    }
}

/// Every keyword ferrosocks knows, in the order the reference lists them.
pub const KEYWORDS: &[Keyword] = &[
    kw("internal", Global, Supported, "ADDRESS|INTERFACE [port = N]",
       "Address to listen on for SOCKS clients; may repeat. IPv4, IPv6, or an interface name (every address of the interface). Default port 1080.",
       "internal: 127.0.0.1 port = 1080"),
    kw("external", Global, Supported, "ADDRESS|INTERFACE",
       "Address to connect to targets from; may repeat. Without it the kernel picks the source address.",
       "external: 127.0.0.1"),
    kw("external.rotation", Global, Supported, "none | route | same-same",
       "How the external address is chosen: the first one (`none`), the kernel's route (`route`), or the address the client connected to (`same-same`).",
       "external.rotation: route"),
    kw("clientmethod", Everywhere, Supported, "none | rfc931 ...",
       "Methods for client rules. With `rfc931` the client's identd (RFC 1413, port 113) is asked who owns the connection, before any SOCKS byte; a rule listing only `rfc931` matches only clients whose identd answered.",
       "clientmethod: none"),
    kw("socksmethod", Everywhere, Supported, "none | username | rfc931 ...",
       "Methods offered to SOCKS clients, preference first. `username` is RFC 1929 (user name and password in clear), checked against `passwordfile` when one is set, else against the system's users (`/etc/passwd` and `/etc/shadow`, as Dante does); `rfc931` accepts a client offering no authentication whose identd names its user (SOCKS4 clients too: 0x5C when identd cannot be reached, 0x5D when it names another user than the request's USERID). With no socksmethod every request is refused. In a socks rule: the rule matches only sessions authenticated with one of these (not supported in client rules yet).",
       "socksmethod: username none"),
    kw("method", Everywhere, Supported, "none | username ...",
       "Old name of `socksmethod` (of `clientmethod` in a client rule); accepted with a warning.",
       "method: none"),
    kw("passwordfile", Global, Supported, "PATH",
       "Apache htpasswd file for `socksmethod: username`: bcrypt entries (`$2y$`, `$2b$`, `$2a$`, as `htpasswd -B` writes them); a plain `user:password` line is accepted with a warning naming the line. Without it, `username` checks the system's users, as Dante does; with it, only the file's users (ferrosocks' choice: proxy accounts need not be login accounts).",
       "passwordfile: /etc/ferrosocks/users"),
    kw("user.privileged", Global, Supported, "USER",
       "Accepted for compatibility; ferrosocks needs no privileged operations after start-up.",
       "user.privileged: root"),
    kw("user.unprivileged", Global, Supported, "USER",
       "When started as root, switch to this user (and its group) once every port is bound.",
       "user.unprivileged: nobody"),
    kw("user.libwrap", Global, Supported, "USER",
       "Accepted for compatibility; libwrap is not used.",
       "user.libwrap: nobody"),
    kw("timeout.negotiate", Everywhere, Supported, "SECONDS",
       "Time from accept until the SOCKS request has been read; 0 = forever. Default 30. In a client rule it overrides the global value.",
       "timeout.negotiate: 30"),
    kw("timeout.connect", Everywhere, Supported, "SECONDS",
       "Time allowed for connecting to the target; 0 = the system's own limit. Default 30.",
       "timeout.connect: 30"),
    kw("timeout.io", Everywhere, Supported, "SECONDS",
       "A session idle (no byte either way) this long is closed with `i/o timeout`; 0 = forever (default).",
       "timeout.io: 86400"),
    kw("timeout.io.tcp", Global, Supported, "SECONDS",
       "Same as `timeout.io`, for TCP sessions only.",
       "timeout.io.tcp: 600"),
    kw("logoutput", Global, Supported, "syslog[/FACILITY] | stdout | stderr | PATH ...",
       "Where every message goes. Files are opened for append and reopened on SIGHUP. Facilities: user daemon auth authpriv local0..local7 (default daemon).",
       "logoutput: stderr /var/log/ferrosocks.log"),
    kw("errorlog", Global, Supported, "syslog[/FACILITY] | stdout | stderr | PATH ...",
       "Where messages of level warning and worse go as well.",
       "errorlog: syslog/local3"),
    kw("debug", Global, Supported, "0 | 1 | 2",
       "Debug output: 0 off, 1 normal, 2 verbose. `-d N` on the command line wins.",
       "debug: 1"),
    kw("via", RouteOnly, Supported, "ADDRESS port = N | direct",
       "In a `route`: the upstream proxy, or `direct`.",
       "route { from: 0/0 to: 0/0 via: direct }"),
    kw("from", AnyRule, Supported, "ADDRESS/MASK | 0/0 | HOST | .DOMAIN | INTERFACE [port ...]",
       "The client. IPv4 addresses need a mask (`/32`); `0/0` is every address. Ports: `port = N`, `port OP N` (OP: eq = ne neq != ge >= le <= gt > lt <), `port A-B`, service names.",
       "socks pass { from: 10.0.0.0/8 port 1-65535 to: 0/0 }"),
    kw("to", AnyRule, Supported, "ADDRESS/MASK | 0/0 | HOST | .DOMAIN | INTERFACE [port ...]",
       "For a client rule the proxy address the client reached; for a socks rule the requested target. A `.domain` matches the domain and every name under it.",
       "socks pass { from: 0/0 to: .example.com port = http }"),
    kw("command", SocksRule, Supported, "connect bind bindreply udpassociate udpreply",
       "The rule matches only these commands.",
       "socks pass { from: 0/0 to: 0/0\ncommand: connect\n}"),
    kw("protocol", SocksRule, Supported, "tcp udp",
       "The rule matches only these protocols.",
       "socks pass { from: 0/0 to: 0/0\nprotocol: tcp\n}"),
    kw("user", AnyRule, Supported, "NAME ...",
       "The rule matches only sessions whose user is one of these: authenticated by `username`, or named by the client's identd with `rfc931` (the only way a client rule knows a user).",
       "socks pass { from: 0/0 to: 0/0\nuser: alice bob\n}"),
    kw("log", AnyRule, Supported, "connect disconnect data ioop|iooperation error",
       "What the rule logs, in Dante's traffic format: `connect` the start, `disconnect` the end-of-session summary, `ioop` each I/O operation, `data` each I/O operation with its payload, `error` failures.",
       "socks pass { from: 0/0 to: 0/0\nlog: connect disconnect error\n}"),
    // Dante keywords not implemented yet.
    kw("route", Global, Supported, "{ from: ... to: ... via: ADDRESS port = N | direct ... }",
       "Server chaining, after the rules. CONNECT requests matching `from:`/`to:` go through the upstream proxy named by `via:` (or directly with `via: direct`). Inside: `proxyprotocol: socks_v5 | socks_v4 | http` (the first is used; default socks_v5), `method: none | username` (username forwards the client's own credentials), `command:`, `protocol:`. As in Dante, each list keyword on its own line.",
       "route { from: 0/0 to: 0/0 via: 127.0.0.1 port = 1081\nproxyprotocol: socks_v5\nmethod: none\n}"),
    kw("internal.protocol", Global, NotYet, "ipv4 ipv6", "Address families for an interface name.", ""),
    kw("external.protocol", Global, NotYet, "ipv4 ipv6", "Address families for an interface name.", ""),
    kw("internal.log.*.error", Everywhere, Supported, "SYMBOL ...",
       "`internal.log.LEVEL.error:` (LEVEL: emerg alert crit err warning notice info debug). Failures on the client side whose errno is listed are logged at LEVEL instead of debug. Symbols: errno names (`ECONNRESET`), `EAI_*` names, `no-route` (ENETUNREACH EHOSTUNREACH ENETDOWN ETIMEDOUT), `dns-any`, `system-any`. Global, or in a rule for that rule.",
       "internal.log.warning.error: ECONNRESET EPIPE"),
    kw("external.log.*.error", Everywhere, Supported, "SYMBOL ...",
       "`external.log.LEVEL.error:` as above, for the target side: `connect to host X failed: …`, `no route to X: …`, `could not DNS-resolve \"H\": …`, `send to host X failed: …`.",
       "external.log.warning.error: no-route dns-any ECONNREFUSED EAI_AGAIN"),
    kw("internal.*", Global, NotYet, "VALUE", "Socket options on the client side.", ""),
    kw("external.*", Global, NotYet, "VALUE", "Socket options on the target side.", ""),
    kw("timeout.tcp_fin_wait", Everywhere, NotYet, "SECONDS", "Time to wait for the second FIN.", ""),
    kw("timeout.io.udp", Global, NotYet, "SECONDS", "Idle limit of UDP associations.", ""),
    kw("srchost", Global, NotYet, "nodnsmismatch nodnsunknown checkreplyauth", "Checks on the client's DNS names.", ""),
    kw("udp.connectdst", Global, Supported, "yes | no",
       "`yes` (default): a UDP association relays replies only from addresses its client has sent to; `no`: from any address the `udpreply` rules allow.",
       "udp.connectdst: yes"),
    kw("compatibility", Global, NotYet, "sameport draft-5.05", "Compatibility options.", ""),
    kw("extension", Global, NotYet, "bind", "Old bind extension.", ""),
    kw("childstate.*", Global, NotYet, "VALUE", "Dante process tuning.", ""),
    kw("cpu.*", Global, NotYet, "VALUE", "Dante CPU scheduling.", ""),
    kw("libwrap.hosts_access", Global, NotYet, "yes | no", "libwrap.", ""),
    kw("realm", Global, NotYet, "NAME", "Kerberos realm.", ""),
    kw("resolveprotocol", Global, NotYet, "udp tcp fake", "DNS transport.", ""),
    kw("proxyprotocol", SocksRule, Supported, "socks_v4 socks_v5",
       "The rule matches only clients speaking these SOCKS versions (`socks_v4` covers SOCKS4a).",
       "socks pass { from: 0/0 to: 0/0\nproxyprotocol: socks_v5\n}"),
    kw("udp.portrange", SocksRule, Supported, "A-B",
       "Ports the external UDP socket of an association matching this rule is bound to.",
       "socks pass { from: 0/0 to: 0/0\nudp.portrange: 40000-45000\n}"),
    kw("session.*", AnyRule, NotYet, "VALUE", "Session limits.", ""),
    kw("bandwidth", AnyRule, NotYet, "BYTES", "Bandwidth limit.", ""),
    kw("redirect", AnyRule, NotYet, "from: / to: ...", "Address redirection.", ""),
    kw("libwrap", AnyRule, NotYet, "LINE", "libwrap line.", ""),
    kw("group", AnyRule, NotYet, "NAME ...", "Unix group match.", ""),
    kw("bsdauth.stylename", AnyRule, NotYet, "NAME", "BSD auth style.", ""),
    kw("pam.servicename", AnyRule, NotYet, "NAME", "PAM service.", ""),
    kw("gssapi.*", AnyRule, NotYet, "VALUE", "GSSAPI settings.", ""),
    kw("ldap.*", AnyRule, NotYet, "VALUE", "LDAP settings.", ""),
    kw("hostid", AnyRule, NotYet, "ADDRESS", "Host id match.", ""),
    kw("hostindex", AnyRule, NotYet, "N", "Host id index.", ""),
    kw("clientcompatibility", ClientRule, NotYet, "necgssapi", "Client compatibility.", ""),
    // ferrosocks keywords (DESIGN.md §5) not implemented yet.
    kw("log.default.facility", Global, Supported, "FACILITY",
       "The facility `log.SUBSYSTEM.facility: default` means (default daemon).",
       "log.default.facility: local3"),
    kw("log.*", Global, Supported, "log.SUBSYSTEM.level|file|facility|operators: VALUE",
       "Per-subsystem routing (ircu): `.level` the least severe level written (crit error warning notice trace info debug), `.file` a file of its own (shared files are opened once), `.facility` a syslog facility, `none` or `default`, `.operators: on|off` push to subscribed management clients. Subsystems: SYSTEM CONFIG CLIENT AUTH REQUEST TRAFFIC UDP RESOLVER SOCKET ROUTE MGMT STATUS FORWARD DEBUG (any case).",
       "log.traffic.file: /var/log/ferrosocks/traffic.log"),
    kw("logformat", Global, Supported, "text | json",
       "How file and stdio sinks write: Dante's lines (default) or JSON lines. A single sink can say `json:PATH`, `json:stdout` or `json:stderr` in `logoutput`/`errorlog`.",
       "logformat: json"),
    kw("verb", Global, Supported, "0..11",
       "OpenVPN-style verbosity for every subsystem without its own level: 0 crit, 1 warnings, 2 notice, 3 traffic records, 4-5 info, 6-11 debug. Changed on SIGHUP.",
       "verb: 3"),
    kw("mute", Global, Supported, "N",
       "After N consecutive messages of the same kind (refused handshakes, dropped datagrams, …), further ones are suppressed until another kind comes, then one line says how many. Traffic records are never muted. 0: off.",
       "mute: 20"),
    kw("status.*", Global, NotYet, "VALUE", "Status file.", ""),
    kw("management", Global, NotYet, "PATH | ADDRESS port = N", "Management interface.", ""),
    kw("management.*", Global, NotYet, "VALUE", "Management interface settings.", ""),
    kw("metrics", Global, NotYet, "ADDRESS port = N", "Prometheus endpoint.", ""),
    kw("logdir", Global, NotYet, "PATH", "multilog-style log directory.", ""),
    kw("logdir.*", Global, NotYet, "VALUE", "Log directory settings and shipping.", ""),
    kw("syslog.remote", Global, NotYet, "ADDRESS port = N", "Remote RFC 5424 syslog.", ""),
];

impl Keyword {
    /// Whether `word` is this keyword (or one of its family).
    pub fn matches(&self, word: &str) -> bool {
        glob(self.name, word)
    }

    /// Whether it may stand in a rule of this kind (`None`: among server settings).
    pub fn allowed_in(&self, rule: Option<crate::RuleKind>) -> bool {
        use crate::RuleKind::*;
        matches!(
            (self.place, rule),
            (Global | Everywhere, None)
                | (AnyRule | Everywhere, Some(_))
                | (ClientRule, Some(Client))
                | (SocksRule, Some(Socks))
        )
    }
}

/// The entry for `word`, if any: exact names first, then families.
pub fn lookup(word: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|k| k.name == word).or_else(|| {
        KEYWORDS
            .iter()
            .find(|k| k.name.contains('*') && k.matches(word))
    })
}

/// The known keyword nearest to `word`, for "did you mean" hints.
pub fn nearest(word: &str) -> Option<&'static str> {
    KEYWORDS
        .iter()
        .filter(|k| !k.name.contains('*'))
        .map(|k| (edit_distance(word, k.name), k.name))
        .filter(|&(d, name)| d <= 2.max(name.len() / 4))
        .min()
        .map(|(_, name)| name)
}

fn glob(pattern: &str, word: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == word,
        Some((head, tail)) => {
            let Some(rest) = word.strip_prefix(head) else {
                return false;
            };
            // The star stands for at least one character without spaces; the tail may
            // hold another star.
            rest.char_indices()
                .skip(1)
                .any(|(i, _)| !rest[..i].contains(' ') && glob(tail, &rest[i..]))
                || (tail.is_empty() && !rest.is_empty() && !rest.contains(' '))
        }
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The configuration reference (`docs/configuration.md`), generated from [`KEYWORDS`].
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from crates/sockd-conf/src/keywords.rs; a test fails when this copy is stale.\n     \
         Regenerate: FERROSOCKS_BLESS=1 cargo test -p sockd-conf --test docs -->\n\n\
         ferrosocks reads Dante's `sockd.conf` language: `keyword: value` lines, `#` comments, server\n\
         settings first, then `client` rules, then `socks` rules (first match wins; no match is the\n\
         default block rule #0). List keywords (`log:`, `command:`, `socksmethod:`, …) end at the end of\n\
         the line or at `}`. Errors name file:line:column and quote the token; every error is reported.\n\n\
         ## Supported\n\n| keyword | where | values | meaning |\n|---|---|---|---|\n",
    );
    let row = |out: &mut String, k: &Keyword| {
        let place = match k.place {
            Global => "setting",
            ClientRule => "client rule",
            SocksRule => "socks rule",
            AnyRule => "rule",
            Everywhere => "setting, rule",
            RouteOnly => "route",
        };
        out.push_str(&format!(
            "| `{}` | {place} | `{}` | {} |\n",
            k.name,
            k.syntax.replace('|', "\\|"),
            k.doc.replace('|', "\\|")
        ));
    };
    for k in KEYWORDS.iter().filter(|k| k.status == Supported) {
        row(&mut out, k);
    }
    out.push_str(
        "\n## Recognised, not supported yet\n\n\
         Using one of these is a configuration error that says \"not supported yet\" and names it,\n\
         so that nothing in a Dante file is ignored silently. `*` stands for any suffix.\n\n\
         | keyword | where | values | meaning |\n|---|---|---|---|\n",
    );
    for k in KEYWORDS.iter().filter(|k| k.status == NotYet) {
        row(&mut out, k);
    }
    out.push_str(
        "\nValues not supported yet: methods `gssapi pam.* bsdauth ldapauth`, `log: tcpinfo`.\n\n\
         ## Embedded default\n\nWith no `-f` and no `/etc/ferrosocks.conf`, ferrosocks runs on:\n\n```\n",
    );
    out.push_str(crate::EMBEDDED_DEFAULT);
    out.push_str("```\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_suggestions() {
        assert_eq!(lookup("session.max").unwrap().name, "session.*");
        assert_eq!(
            lookup("external.log.warning.error").unwrap().name,
            "external.log.*.error"
        );
        assert_eq!(lookup("external").unwrap().name, "external");
        assert_eq!(lookup("log.auth.level").unwrap().name, "log.*");
        assert!(lookup("frobnicate").is_none());
        assert_eq!(nearest("sockmethod"), Some("socksmethod"));
        assert_eq!(nearest("logoutptu"), Some("logoutput"));
        assert_eq!(nearest("zzzzzzzz"), None);
    }
}
