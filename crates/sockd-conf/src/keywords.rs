//! The one table of configuration keywords.
//!
//! Each entry says where a keyword may stand, whether ferrosocks implements it, ignores
//! it (with a warning saying why that is safe) or refuses it ("not supported yet"),
//! whether Dante has it, its syntax and what it does. [`SPECIALS`] does the same for
//! single values of a keyword (`socksmethod: gssapi`) and for a keyword in one place
//! (`socksmethod` in a client rule). The parser takes its "not supported yet" and
//! "is ignored" messages from here, `docs/configuration.md` is generated from it
//! ([`reference_markdown`]), and tests keep the three in step: every entry's example
//! is parsed and must be accepted, warned about or refused as its status says.

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
    /// Accepted and ignored, with a warning naming it and saying why (`why`): only for
    /// keywords whose absence neither lets in anybody Dante would refuse nor changes
    /// what a client that works with Dante sees in a way it cannot cope with.
    Ignored,
    /// Not implemented yet: using it is an error that says so (and why it cannot simply
    /// be ignored, when that is not obvious).
    NotYet,
}

/// Whose language a keyword belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Dante's `sockd.conf`.
    Dante,
    /// ferrosocks' own (DESIGN.md §5); Dante does not know it.
    Ferrosocks,
}

/// One keyword. A `*` in `name` stands for any run of characters (a family of keywords).
#[derive(Debug, Clone, Copy)]
pub struct Keyword {
    /// The keyword as written before the colon.
    pub name: &'static str,
    /// Where it may stand.
    pub place: Place,
    /// Implemented, ignored or not yet.
    pub status: Status,
    /// Dante's or ferrosocks' own.
    pub source: Source,
    /// Values it takes.
    pub syntax: &'static str,
    /// What it does.
    pub doc: &'static str,
    /// For an ignored keyword, why ignoring it is safe; for one not supported yet, why
    /// it cannot be ignored (may be empty). Ends the warning or error message.
    pub why: &'static str,
    /// A use of it, parsed by a test: accepted (supported), accepted with a warning
    /// (ignored) or refused as not supported yet.
    pub example: &'static str,
}

use Place::*;
use Source::*;
use Status::*;

/// A supported Dante keyword.
const fn kw(
    name: &'static str,
    place: Place,
    syntax: &'static str,
    doc: &'static str,
    example: &'static str,
) -> Keyword {
    Keyword {
        name,
        place,
        status: Supported,
        source: Dante,
        syntax,
        doc,
        why: "",
        example,
    }
}

/// A Dante keyword accepted with a warning.
const fn ignored(
    name: &'static str,
    place: Place,
    syntax: &'static str,
    doc: &'static str,
    why: &'static str,
    example: &'static str,
) -> Keyword {
    Keyword {
        status: Ignored,
        why,
        ..kw(name, place, syntax, doc, example)
    }
}

/// A Dante keyword refused as not supported yet.
const fn not_yet(
    name: &'static str,
    place: Place,
    syntax: &'static str,
    doc: &'static str,
    why: &'static str,
    example: &'static str,
) -> Keyword {
    Keyword {
        status: NotYet,
        why,
        ..kw(name, place, syntax, doc, example)
    }
}

/// Every keyword ferrosocks knows, in the order the reference lists them.
pub const KEYWORDS: &[Keyword] = &[
    kw("internal", Global, "ADDRESS|INTERFACE [port = N]",
       "Address to listen on for SOCKS clients; may repeat. IPv4, IPv6, or an interface name (every address of the interface). Default port 1080.",
       "internal: 127.0.0.1 port = 1080"),
    kw("external", Global, "ADDRESS|INTERFACE",
       "Address to connect to targets from; may repeat. Without it the kernel picks the source address.",
       "external: 127.0.0.1"),
    kw("external.rotation", Global, "none | route | same-same",
       "How the external address is chosen: the first one (`none`), the kernel's route (`route`), or the address the client connected to (`same-same`).",
       "external.rotation: route"),
    kw("clientmethod", Everywhere, "none | rfc931 ...",
       "Methods for client rules. With `rfc931` the client's identd (RFC 1413, port 113) is asked who owns the connection, before any SOCKS byte; a rule listing only `rfc931` matches only clients whose identd answered.",
       "clientmethod: none"),
    kw("socksmethod", Everywhere, "none | username | rfc931 ...",
       "Methods offered to SOCKS clients, preference first. `username` is RFC 1929 (user name and password in clear), checked against `passwordfile` when one is set, else against the system's users (`/etc/passwd` and `/etc/shadow`, as Dante does); `rfc931` accepts a client offering no authentication whose identd names its user (SOCKS4 clients too: 0x5C when identd cannot be reached, 0x5D when it names another user than the request's USERID). With no socksmethod every request is refused. In a socks rule: the rule matches only sessions authenticated with one of these (not supported in client rules yet).",
       "socksmethod: username none"),
    kw("method", Everywhere, "none | username ...",
       "Old name of `socksmethod` (of `clientmethod` in a client rule); accepted with a warning.",
       "method: none"),
    kw("passwordfile", Global, "PATH",
       "Apache htpasswd file for `socksmethod: username`: bcrypt entries (`$2y$`, `$2b$`, `$2a$`, as `htpasswd -B` writes them); a plain `user:password` line is accepted with a warning naming the line. Without it, `username` checks the system's users, as Dante does; with it, only the file's users (ferrosocks' choice: proxy accounts need not be login accounts).",
       "passwordfile: /etc/ferrosocks/users").ferrosocks(),
    kw("user.privileged", Global, "USER",
       "The user the privileged helper runs as, when the server was started as root and `user.unprivileged` drops its rights: it reopens the log files the configuration names (after logrotate), reads the configuration and password file on SIGHUP, checks system users' passwords and removes the pid file at exit. Default: the helper stays root. Given another user, the helper takes that user's groups too (e.g. `shadow`, `adm`). See docs/privileges.md.",
       "user.privileged: root"),
    kw("user.unprivileged", Global, "USER",
       "When started as root, switch to this user (and its group) once every port is bound; a privileged helper (as `user.privileged`) keeps root's rights for the chores that need them (docs/privileges.md). The user must exist (`-V` checks). `user.notprivileged` is an old name for it.",
       "user.unprivileged: nobody"),
    kw("user.libwrap", Global, "USER",
       "Accepted for compatibility; libwrap is not used.",
       "user.libwrap: nobody"),
    kw("timeout.negotiate", Everywhere, "SECONDS",
       "Time from accept until the SOCKS request has been read; 0 = forever. Default 30. In a client rule it overrides the global value.",
       "timeout.negotiate: 30"),
    kw("timeout.connect", Everywhere, "SECONDS",
       "Time allowed for connecting to the target; 0 = the system's own limit. Default 30.",
       "timeout.connect: 30"),
    kw("timeout.io", Everywhere, "SECONDS",
       "A session idle (no byte either way) this long is closed with `i/o timeout`; 0 = forever (default).",
       "timeout.io: 86400"),
    kw("timeout.io.tcp", Global, "SECONDS",
       "Same as `timeout.io`, for TCP sessions only.",
       "timeout.io.tcp: 600"),
    kw("logoutput", Global, "syslog[/FACILITY] | stdout | stderr | PATH ...",
       "Where every message goes. Files are opened for append and reopened on SIGHUP. Facilities: user daemon auth authpriv local0..local7 (default daemon).",
       "logoutput: stderr /var/log/ferrosocks.log"),
    kw("errorlog", Global, "syslog[/FACILITY] | stdout | stderr | PATH ...",
       "Where messages of level warning and worse go as well.",
       "errorlog: syslog/local3"),
    kw("debug", Global, "0 | 1 | 2",
       "Debug output: 0 off, 1 normal, 2 verbose. `-d N` on the command line wins.",
       "debug: 1"),
    kw("via", RouteOnly, "ADDRESS port = N | direct",
       "In a `route`: the upstream proxy, or `direct`.",
       "route { from: 0/0 to: 0/0 via: direct }"),
    kw("from", AnyRule, "ADDRESS/MASK | 0/0 | HOST | .DOMAIN | INTERFACE [port ...]",
       "The client. IPv4 addresses need a mask (`/32`); `0/0` is every address. Ports: `port = N`, `port OP N` (OP: eq = ne neq != ge >= le <= gt > lt <), `port A-B`, service names.",
       "socks pass { from: 10.0.0.0/8 port 1-65535 to: 0/0 }"),
    kw("to", AnyRule, "ADDRESS/MASK | 0/0 | HOST | .DOMAIN | INTERFACE [port ...]",
       "For a client rule the proxy address the client reached; for a socks rule the requested target. A `.domain` matches the domain and every name under it.",
       "socks pass { from: 0/0 to: .example.com port = http }"),
    kw("command", SocksRule, "connect bind bindreply udpassociate udpreply",
       "The rule matches only these commands.",
       "socks pass { from: 0/0 to: 0/0\ncommand: connect\n}"),
    kw("protocol", SocksRule, "tcp udp",
       "The rule matches only these protocols.",
       "socks pass { from: 0/0 to: 0/0\nprotocol: tcp\n}"),
    kw("user", AnyRule, "NAME ...",
       "The rule matches only sessions whose user is one of these: authenticated by `username`, or named by the client's identd with `rfc931` (the only way a client rule knows a user).",
       "socks pass { from: 0/0 to: 0/0\nuser: alice bob\n}"),
    kw("log", AnyRule, "connect disconnect data ioop|iooperation error tcpinfo",
       "What the rule logs, in Dante's traffic format: `connect` the start, `disconnect` the end-of-session summary, `ioop` each I/O operation, `data` each I/O operation with its payload, `error` failures, `tcpinfo` the TCP_INFO of both sockets after the end-of-session summary (and in the SIGUSR1 dump).",
       "socks pass { from: 0/0 to: 0/0\nlog: connect disconnect error tcpinfo\n}"),
    kw("route", Global, "{ from: ... to: ... via: ADDRESS port = N | direct ... }",
       "Server chaining, after the rules. CONNECT requests matching `from:`/`to:` go through the upstream proxy named by `via:` (or directly with `via: direct`). Inside: `proxyprotocol: socks_v5 | socks_v4 | http` (the first is used; default socks_v5), `method: none | username` (username forwards the client's own credentials), `command:`, `protocol:`. As in Dante, each list keyword on its own line.",
       "route { from: 0/0 to: 0/0 via: 127.0.0.1 port = 1081\nproxyprotocol: socks_v5\nmethod: none\n}"),
    not_yet("internal.protocol", Global, "ipv4 ipv6", "Address families for an interface name.",
       "without it ferrosocks would listen on addresses of the other family too",
       "internal.protocol: ipv4"),
    not_yet("external.protocol", Global, "ipv4 ipv6", "Address families for an interface name.",
       "without it ferrosocks would connect from addresses of the other family too",
       "external.protocol: ipv4"),
    kw("internal.log.*.error", Everywhere, "SYMBOL ...",
       "`internal.log.LEVEL.error:` (LEVEL: emerg alert crit err warning notice info debug). Failures on the client side whose errno is listed are logged at LEVEL instead of debug. Symbols: errno names (`ECONNRESET`), `EAI_*` names, `no-route` (ENETUNREACH EHOSTUNREACH ENETDOWN ETIMEDOUT), `dns-any`, `system-any`. Global, or in a rule for that rule.",
       "internal.log.warning.error: ECONNRESET EPIPE"),
    kw("external.log.*.error", Everywhere, "SYMBOL ...",
       "`external.log.LEVEL.error:` as above, for the target side: `connect to host X failed: …`, `no route to X: …`, `could not DNS-resolve \"H\": …`, `send to host X failed: …`.",
       "external.log.warning.error: no-route dns-any ECONNREFUSED EAI_AGAIN"),
    not_yet("internal.*", Global, "VALUE", "Socket options on the client side.", "",
       "internal.socket.so_rcvbuf: 65536"),
    not_yet("external.*", Global, "VALUE", "Socket options on the target side.", "",
       "external.socket.so_sndbuf: 65536"),
    not_yet("timeout.tcp_fin_wait", Everywhere, "SECONDS", "Time to wait for the second FIN.", "",
       "timeout.tcp_fin_wait: 30"),
    not_yet("timeout.io.udp", Global, "SECONDS", "Idle limit of UDP associations.", "",
       "timeout.io.udp: 60"),
    not_yet("srchost", Global, "nodnsmismatch nodnsunknown checkreplyauth",
       "Dante refuses clients whose address has no DNS name (`nodnsunknown`) or whose name does not resolve back to it (`nodnsmismatch`), and checks the authentication of bind and UDP replies against the rules (`checkreplyauth`).",
       "ferrosocks does no reverse DNS lookup of clients and does not check the authentication of replies, so without it ferrosocks would let in clients and replies that Dante refuses",
       "srchost: nodnsunknown nodnsmismatch"),
    kw("udp.connectdst", Global, "yes | no",
       "`yes` (default): a UDP association relays replies only from addresses its client has sent to; `no`: from any address the `udpreply` rules allow.",
       "udp.connectdst: yes"),
    ignored("compatibility", Global, "sameport draft-5.05",
       "Dante's `sameport` extends its attempt to connect out from the client's own source port to privileged ports (Dante's manual advises against it); `draft-5.05` sets the USECLIENTSPORT flag of the SOCKS v5-05 draft in UDP replies when the client's port could be used. Other values (`reuseaddr`, in Debian's sample) are errors, in Dante 1.4 too.",
       "each value is ignored with its own warning (below)",
       "compatibility: sameport"),
    ignored("extension", Global, "bind",
       "Enables Dante's own BIND extension: several incoming connections through one BIND, asked for only by Dante's client library, which Dante's manual considers deprecating.",
       "ferrosocks does not implement Dante's BIND extension; a request for it is handled as an ordinary BIND, and no other request changes",
       "extension: bind"),
    not_yet("child.*", Global, "VALUE", "Dante process tuning (`child.maxidle`, `child.maxrequests`, …).", "", "child.maxrequests: 100"),
    not_yet("cpu.*", Global, "VALUE", "Dante CPU scheduling.", "", "cpu.schedule.mother: SCHED_OTHER/0"),
    not_yet("libwrap.hosts_access", Global, "yes | no",
       "With `yes`, libwrap's `hosts_access()` (`/etc/hosts.allow`, `/etc/hosts.deny`) decides before any rule whether a client is dropped.",
       "ferrosocks has no libwrap, so it would let in clients that hosts.deny refuses",
       "libwrap.hosts_access: yes"),
    not_yet("realm", Global, "NAME", "Kerberos realm.", "", "realm: EXAMPLE.COM"),
    not_yet("resolveprotocol", Global, "udp tcp fake", "DNS transport.", "", "resolveprotocol: tcp"),
    kw("proxyprotocol", SocksRule, "socks_v4 socks_v5",
       "The rule matches only clients speaking these SOCKS versions (`socks_v4` covers SOCKS4a).",
       "socks pass { from: 0/0 to: 0/0\nproxyprotocol: socks_v5\n}"),
    kw("udp.portrange", SocksRule, "A-B",
       "Ports the external UDP socket of an association matching this rule is bound to.",
       "socks pass { from: 0/0 to: 0/0\nudp.portrange: 40000-45000\n}"),
    not_yet("session.*", AnyRule, "VALUE", "Session limits (`session.max`, `session.throttle`, …).",
       "they refuse sessions over a limit, which ferrosocks would accept",
       "socks pass { from: 0/0 to: 0/0\nsession.max: 10\n}"),
    not_yet("bandwidth", AnyRule, "BYTES", "Bandwidth limit.",
       "sessions would not be held to the limit",
       "socks pass { from: 0/0 to: 0/0\nbandwidth: 10000\n}"),
    not_yet("redirect", AnyRule, "from: / to: ...", "Address redirection.", "",
       "socks pass { from: 0/0 to: 0/0\nredirect from: 10.0.0.1\n}"),
    not_yet("libwrap", AnyRule, "LINE",
       "A line Dante passes to libwrap when the rule matches: `hosts_options` such as `spawn`, `banners`, `deny` or `allow`.",
       "ferrosocks has no libwrap, and a libwrap line can refuse clients (deny, twist), so without it ferrosocks would let in clients that Dante refuses",
       "socks block { from: 0/0 to: 172.16.0.0/12\nlibwrap: spawn finger @%a\n}"),
    not_yet("group", AnyRule, "NAME ...", "Unix group match.",
       "without it the rule would match users outside these groups",
       "socks pass { from: 0/0 to: 0/0\ngroup: staff\n}"),
    not_yet("bsdauth.stylename", AnyRule, "NAME", "BSD auth style.", "",
       "socks pass { from: 0/0 to: 0/0\nbsdauth.stylename: passwd\n}"),
    not_yet("pam.servicename", AnyRule, "NAME", "PAM service.", "",
       "socks pass { from: 0/0 to: 0/0\npam.servicename: sockd\n}"),
    not_yet("gssapi.*", AnyRule, "VALUE", "GSSAPI settings.", "",
       "socks pass { from: 0/0 to: 0/0\ngssapi.servicename: rcmd\n}"),
    not_yet("ldap.*", AnyRule, "VALUE", "LDAP settings.", "",
       "socks pass { from: 0/0 to: 0/0\nldap.server: ldap.example.com\n}"),
    not_yet("hostid", AnyRule, "ADDRESS", "Host id match.", "",
       "socks pass { from: 0/0 to: 0/0\nhostid: 10.0.0.1/32\n}"),
    not_yet("hostindex", AnyRule, "N", "Host id index.", "",
       "socks pass { from: 0/0 to: 0/0\nhostindex: 1\n}"),
    not_yet("clientcompatibility", ClientRule, "necgssapi", "Client compatibility.", "",
       "client pass { from: 0/0 to: 0/0\nclientcompatibility: necgssapi\n}"),
    // ferrosocks keywords (DESIGN.md §5).
    kw("log.default.facility", Global, "FACILITY",
       "The facility `log.SUBSYSTEM.facility: default` means (default daemon).",
       "log.default.facility: local3").ferrosocks(),
    kw("log.interim", Everywhere, "SECONDS",
       "Every SECONDS, each session open that long (CONNECT, BIND, UDP ASSOCIATE) gets an interim record with the bytes moved since it started, in the shape of the summary that will close it (`pass(N): tcp/connect -: CLIENT PROXY-INT -> PROXY-EXT TARGET: interim: W -> client -> R, W -> target -> R.  Session duration: Ns`; a BIND's under its `bindreply` rule, the remote host first; a UDP association's one per external socket, with datagram counts; JSON `phase: \"interim\"`), written when the rule logs `disconnect`; the ticks do not reset `timeout.io`. A `-:` line, which Dante-format readers treat as a notice and never add to the totals; `ferrosocks log stats` counts a session still open at the end of a log once, with its last interim bytes (docs/accounting.md). In a socks rule it overrides the global value; 0 (default): none.",
       "log.interim: 300").ferrosocks(),
    kw("log.*", Global, "log.SUBSYSTEM.level|file|facility|operators: VALUE",
       "Per-subsystem routing (ircu): `.level` the least severe level written (crit error warning notice trace info debug), `.file` a file of its own (shared files are opened once), `.facility` a syslog facility, `none` or `default`, `.operators: on|off` push to subscribed management clients. Subsystems: SYSTEM CONFIG CLIENT AUTH REQUEST TRAFFIC UDP RESOLVER SOCKET ROUTE MGMT STATUS FORWARD DEBUG (any case).",
       "log.traffic.file: /var/log/ferrosocks/traffic.log").ferrosocks(),
    kw("logformat", Global, "text | json",
       "How file and stdio sinks write: Dante's lines (default) or JSON lines. A single sink can say `json:PATH`, `json:stdout` or `json:stderr` in `logoutput`/`errorlog`.",
       "logformat: json").ferrosocks(),
    kw("verb", Global, "0..11",
       "OpenVPN-style verbosity for every subsystem without its own level: 0 crit, 1 warnings, 2 notice, 3 traffic records, 4-5 info, 6-11 debug. Changed on SIGHUP.",
       "verb: 3").ferrosocks(),
    kw("mute", Global, "N",
       "After N consecutive messages of the same kind (refused handshakes, dropped datagrams, …), further ones are suppressed until another kind comes, then one line says how many. Traffic records are never muted. 0: off.",
       "mute: 20").ferrosocks(),
    kw("status.file", Global, "PATH",
       "OpenVPN-style status file: every live session (user, client address, target, bytes from and to the client, since when, CID, rule, command) and global counters, in the format `status.version` says. Rewritten every `status.interval` seconds as a whole (a temporary file in the same directory, renamed over it), so a reader never sees half a file; the directory must be writable by the user the server runs as. A failed write keeps the previous file and is reported once, and once more when a write succeeds again. Default: no status file.",
       "status.file: /run/ferrosocks/status").ferrosocks(),
    kw("status.interval", Global, "SECONDS",
       "Seconds between rewrites of `status.file` (default 10, at least 1). Without `status.file` it has no effect (a warning says so).",
       "status.file: /run/ferrosocks/status\nstatus.interval: 5").ferrosocks(),
    kw("status.version", Global, "1 | 2 | 3",
       "Format of the status file and of the management `status` command given no version, as OpenVPN 2.6's `--status-version`: 1 (default) `OpenVPN CLIENT LIST`, `ROUTING TABLE` and `GLOBAL STATS` sections; 2 typed lines (`TITLE`, `TIME`, `HEADER`, `CLIENT_LIST`, `ROUTING_TABLE`, `GLOBAL_STATS`, `END`), comma-separated, with a last `Target` column in the client list and ferrosocks' own `GLOBAL_STATS` rows; 3 the same as 2 with tabs.",
       "status.version: 2").ferrosocks(),
    kw("management", Global, "PATH | ADDRESS port = N",
       "OpenVPN's management interface (its line protocol: `status`, `kill`, `client-kill`, `signal`, `log`, `bytecount`, notifications): a Unix socket at PATH (a value with a `/`), or TCP on a loopback address (`127.0.0.1`, `::1`) or on every address (`0.0.0.0`, `::`; a warning unless `management.password` is set), with a port. Default: none.",
       "management: /run/ferrosocks/mgmt.sock").ferrosocks(),
    kw("management.password", Global, "PATH",
       "File whose first line is the password a management client must give (`ENTER PASSWORD:`) before any command, as OpenVPN's `--management ... pwfile`. Default: no password. Without `management` it has no effect (a warning says so).",
       "management: 127.0.0.1 port = 7505\nmanagement.password: /etc/ferrosocks/mgmt.pw").ferrosocks(),
    kw("management.client-auth", Global, "on | off",
       "`on`: a new session whose request passed the rules waits for a management client's `client-auth` or `client-deny` verdict, as OpenVPN's `--management-client-auth`; `off` (default): it does not wait. With it on, `>CLIENT:` notifications are also sent at any moment; off, never within 250 ms of a client's last line (tools written for OpenVPN without the option do not expect them in a reply). Without `management` it has no effect (a warning says so).",
       "management: /run/ferrosocks/mgmt.sock\nmanagement.client-auth: on").ferrosocks(),
    kw("metrics", Global, "ADDRESS port = N",
       "The metrics endpoint (HTTP/1.1): `GET /metrics` in Prometheus text format 0.0.4 (OpenMetrics when the `Accept` header asks), `GET /status.json` (the live sessions and totals), and a dashboard page at `GET /` with every asset embedded. Any IP address; keep it on loopback or behind a firewall unless it should be scraped from elsewhere. Default: none (nothing listens). docs/metrics.md lists every metric.",
       "metrics: 127.0.0.1 port = 9105").ferrosocks(),
    kw("metrics.control", Global, "on | off",
       "`on`: the dashboard may cut a session (`POST /sessions/CID/kill` with the management password in the `X-Ferrosocks-Password` header); `off` (default): it only shows. Needs `management.password` (a warning says so otherwise); without `metrics` it has no effect (a warning says so).",
       "metrics: 127.0.0.1 port = 9105\nmanagement.password: /etc/ferrosocks/mgmt.pw\nmetrics.control: on").ferrosocks(),
    kw("logdir", Global, "PATH",
       "A multilog-style log directory. It gets every record `logoutput` gets (in `logformat`), unless the word `logdir` names it in `logoutput`, `errorlog` or `log.SUBSYSTEM.file` (`json:logdir` too): then it gets what those get. Its files: `current` (0644 while written, 0744 once complete), rotated files `@<TAI64N>.s` (0744), `lock`, `state`, as daemontools' multilog writes them, so `tai64nlocal` and socklog tools read it. Created 0700 if missing; a `current` left unfinished by a crash becomes `@<TAI64N>.u` at start. See docs/logdir.md.",
       "logdir: /var/log/ferrosocks/main").ferrosocks(),
    kw("logdir.size", Global, "BYTES",
       "Rotate `current` at the first line boundary past `logdir.size − 2000` bytes; it never exceeds `logdir.size` (multilog's `s`; 4096 to 16777215, default 99999).",
       "logdir: /var/log/ferrosocks/main\nlogdir.size: 4096000").ferrosocks(),
    kw("logdir.count", Global, "N",
       "Files kept in the log directory, `current` included (multilog's `n`; at least 2, default 10): the oldest rotated file goes first; with `logdir.ship`, files not yet shipped are never removed.",
       "logdir: /var/log/ferrosocks/main\nlogdir.count: 20").ferrosocks(),
    kw("logdir.stamp", Global, "on | off",
       "`on`: `@<TAI64N> ` (the time the record was logged) before each line, as `multilog t`; `off` (default): lines as the sink formats them.",
       "logdir: /var/log/ferrosocks/main\nlogdir.stamp: on").ferrosocks(),
    kw("logdir.ship", Global, "ADDRESS port = N",
       "Send each rotated file, as raw bytes over TCP, to a collector (`ferrosocks collect`, or socklog's `tcpserver … socklog ucspi`), off the logging path. A failed shipment keeps the file, is remembered in `state` and retried, in order, with the next rotation or within a minute; its failure is told as the first line of the next successful shipment (socklog's tryto). Shipped files stay in the directory until `logdir.count` removes them.",
       "logdir: /var/log/ferrosocks/main\nlogdir.ship: 10.0.0.5 port = 10116").ferrosocks(),
    kw("logdir.ship.timeout", Global, "SECONDS",
       "Each shipment attempt, connect included, gives up after this many seconds (default 30).",
       "logdir: /var/log/ferrosocks/main\nlogdir.ship: 10.0.0.5 port = 10116\nlogdir.ship.timeout: 10").ferrosocks(),
    kw("syslog.remote", Global, "ADDRESS port = N",
       "Send every record `logoutput` gets to a remote syslog receiver (rsyslog, syslog-ng) as RFC 5424: PRI from the subsystem's `log.SUBSYSTEM.facility` (else `log.default.facility`), RFC 3339 time with microseconds, this host's name, APP-NAME `ferrosocks`, the pid, the subsystem as MSGID, the text of the local line as MSG. Off the logging path: while the receiver is away records wait in a bounded memory queue that spills to `syslog-queue/` under `logdir` (if set) and are delivered in order once it is back; what a full queue drops, oldest first, is counted and reported. See docs/syslog.md.",
       "syslog.remote: 10.0.0.6 port = 514").ferrosocks(),
    kw("syslog.remote.protocol", Global, "tcp | tls | udp",
       "`tcp` (default): RFC 6587 octet counting; `tls`: RFC 5425 (rustls; the receiver's certificate checked against `syslog.remote.ca`, its name against the `syslog.remote` host); `udp`: RFC 5426, one message per datagram (lost when nobody listens).",
       "syslog.remote: 10.0.0.6 port = 6514\nsyslog.remote.protocol: tls\nsyslog.remote.ca: /etc/ferrosocks/syslog-ca.pem").ferrosocks(),
    kw("syslog.remote.ca", Global, "PATH",
       "PEM file of the certificate authorities a `tls` receiver's certificate must chain to.",
       "syslog.remote: 10.0.0.6 port = 6514\nsyslog.remote.protocol: tls\nsyslog.remote.ca: /etc/ferrosocks/syslog-ca.pem").ferrosocks(),
];

/// A value of a keyword that ferrosocks ignores or does not support yet (`value` is
/// set), or a keyword it does not support yet in one place (`value` is `None`).
#[derive(Debug, Clone, Copy)]
pub struct Special {
    /// The keyword (its current name; `method:` is looked up as `socksmethod` or
    /// `clientmethod`).
    pub keyword: &'static str,
    /// The value, or `None` for the keyword itself in `place`.
    pub value: Option<&'static str>,
    /// Where: the keyword's places for a value, the refused place otherwise.
    pub place: Place,
    /// [`Status::Ignored`] or [`Status::NotYet`].
    pub status: Status,
    /// Why ignoring it is safe, or why it cannot be ignored (may be empty).
    pub why: &'static str,
    /// A use of it, parsed by a test.
    pub example: &'static str,
}

const fn special(
    keyword: &'static str,
    value: Option<&'static str>,
    place: Place,
    status: Status,
    why: &'static str,
    example: &'static str,
) -> Special {
    Special {
        keyword,
        value,
        place,
        status,
        why,
        example,
    }
}

/// Why an authentication method cannot be ignored.
const METHOD_WHY: &str = "ferrosocks cannot authenticate clients this way";

/// Values and places ferrosocks ignores or does not support yet.
pub const SPECIALS: &[Special] = &[
    special("compatibility", Some("sameport"), Global, Ignored,
        "ferrosocks lets the kernel choose the source port of outgoing connections and never connects out from a privileged port",
        "compatibility: sameport"),
    special("compatibility", Some("draft-5.05"), Global, Ignored,
        "ferrosocks never sets the draft's USECLIENTSPORT flag in UDP replies, which tells a client asking for it that its own port was not used, as Dante's reply does whenever Dante could not use it",
        "compatibility: draft-5.05"),
    special("socksmethod", Some("gssapi"), Everywhere, NotYet, METHOD_WHY, "socksmethod: gssapi"),
    special("socksmethod", Some("pam"), Everywhere, NotYet, METHOD_WHY, "socksmethod: pam"),
    special("socksmethod", Some("pam.any"), Everywhere, NotYet, METHOD_WHY, "socksmethod: pam.any"),
    special("socksmethod", Some("pam.address"), Everywhere, NotYet, METHOD_WHY, "socksmethod: pam.address"),
    special("socksmethod", Some("pam.username"), Everywhere, NotYet, METHOD_WHY, "socksmethod: pam.username"),
    special("socksmethod", Some("bsdauth"), Everywhere, NotYet, METHOD_WHY, "socksmethod: bsdauth"),
    special("socksmethod", Some("ldapauth"), Everywhere, NotYet, METHOD_WHY, "socksmethod: ldapauth"),
    special("clientmethod", Some("pam.any"), Everywhere, NotYet, METHOD_WHY, "clientmethod: pam.any"),
    special("clientmethod", Some("pam.address"), Everywhere, NotYet, METHOD_WHY, "clientmethod: pam.address"),
    special("socksmethod", None, ClientRule, NotYet, "",
        "client pass { from: 0/0 to: 0/0\nsocksmethod: none\n}"),
    special("proxyprotocol", Some("upnp"), RouteOnly, NotYet, "",
        "route { from: 0/0 to: 0/0 via: direct\nproxyprotocol: upnp\n}"),
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

    /// The message for using this keyword, written `key`, when it is not supported yet
    /// (an error) or ignored (a warning).
    pub fn message(&self, key: &str) -> String {
        message(&format!("\"{key}\""), self.status, self.why)
    }

    /// The same keyword, as ferrosocks' own.
    const fn ferrosocks(self) -> Self {
        Self {
            source: Ferrosocks,
            ..self
        }
    }
}

impl Special {
    /// The message for this use, the keyword written `key`: an error when not supported
    /// yet, a warning when ignored.
    pub fn message(&self, key: &str) -> String {
        let what = match self.value {
            Some(v) => format!("\"{key}: {v}\""),
            None => format!("\"{key}\" {}", place_phrase(self.place)),
        };
        message(&what, self.status, self.why)
    }

    /// How the documentation names it: `socksmethod: gssapi`, or `socksmethod` and where.
    pub fn label(&self) -> String {
        match self.value {
            Some(v) => format!("`{}: {v}`", self.keyword),
            None => format!("`{}` {}", self.keyword, place_phrase(self.place)),
        }
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

/// The entry for `value` of `keyword` (its current name), if that value is ignored or
/// not supported yet.
pub fn special_value(keyword: &str, value: &str) -> Option<&'static Special> {
    SPECIALS
        .iter()
        .find(|s| s.keyword == keyword && s.value == Some(value))
}

/// The entry for `keyword` in `place`, if it is not supported yet there.
pub fn special_place(keyword: &str, place: Place) -> Option<&'static Special> {
    SPECIALS
        .iter()
        .find(|s| s.keyword == keyword && s.value.is_none() && s.place == place)
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

/// `"KEY" is not supported yet[: WHY]` or `"KEY" is ignored: WHY`.
fn message(what: &str, status: Status, why: &str) -> String {
    let verdict = match status {
        Ignored => "is ignored",
        Supported | NotYet => "is not supported yet",
    };
    if why.is_empty() {
        format!("{what} {verdict}")
    } else {
        format!("{what} {verdict}: {why}")
    }
}

fn place_phrase(place: Place) -> &'static str {
    match place {
        Global => "among the server settings",
        ClientRule => "in a client rule",
        SocksRule => "in a socks rule",
        AnyRule => "in a rule",
        Everywhere => "anywhere",
        RouteOnly => "in a route",
    }
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

/// Title of the section that lists what is refused as not supported yet; a test reads
/// the generated document's list under it.
pub const NOT_YET_TITLE: &str = "## Recognised, not supported yet";
/// Title of the section that lists what is accepted and ignored.
pub const IGNORED_TITLE: &str = "## Accepted and ignored";

/// The configuration reference (`docs/configuration.md`), generated from [`KEYWORDS`]
/// and [`SPECIALS`].
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from crates/sockd-conf/src/keywords.rs; a test fails when this copy is stale.\n     \
         Regenerate: FERROSOCKS_BLESS=1 cargo test -p sockd-conf --test docs -->\n\n\
         ferrosocks reads Dante's `sockd.conf` language: `keyword: value` lines, `#` comments, server\n\
         settings first, then `client` rules, then `socks` rules (first match wins; no match is the\n\
         default block rule #0). List keywords (`log:`, `command:`, `socksmethod:`, …) end at the end of\n\
         the line or at `}`. Errors name file:line:column and quote the token; every error is reported.\n\
         Keywords marked **ferrosocks only** are ferrosocks' own: Dante does not know them.\n\n\
         ## Supported\n\n| keyword | where | values | from | meaning |\n|---|---|---|---|---|\n",
    );
    for k in KEYWORDS.iter().filter(|k| k.status == Supported) {
        out.push_str(&row(k, None));
    }
    out.push_str(&format!(
        "\n{IGNORED_TITLE}\n\n\
         Using one of these gives a warning that names it and says why ignoring it is safe: it lets\n\
         in nobody that Dante would refuse, and what a client may notice is said here.\n\n\
         | keyword | where | values | from | meaning | why it is ignored |\n|---|---|---|---|---|---|\n"
    ));
    for k in KEYWORDS.iter().filter(|k| k.status == Ignored) {
        out.push_str(&row(k, Some(k.why)));
    }
    specials(&mut out, Ignored, "why it is ignored");
    out.push_str(&format!(
        "\n{NOT_YET_TITLE}\n\n\
         Using one of these is a configuration error that says \"not supported yet\" and names it,\n\
         so that nothing in a Dante file that matters is ignored silently. `*` stands for any suffix.\n\n\
         | keyword | where | values | from | meaning | why it is not ignored |\n|---|---|---|---|---|---|\n"
    ));
    for k in KEYWORDS.iter().filter(|k| k.status == NotYet) {
        out.push_str(&row(k, Some(k.why)));
    }
    specials(&mut out, NotYet, "why it is not ignored");
    out.push_str(
        "\n## Embedded default\n\nWith no `-f` and no `/etc/ferrosocks.conf`, ferrosocks runs on:\n\n```\n",
    );
    out.push_str(crate::EMBEDDED_DEFAULT);
    out.push_str("```\n");
    out
}

/// One table row for a keyword; `why` adds the last column.
fn row(k: &Keyword, why: Option<&str>) -> String {
    let place = place_name(k.place);
    let source = match k.source {
        Dante => "Dante",
        Ferrosocks => "**ferrosocks only**",
    };
    let mut line = format!(
        "| `{}` | {place} | `{}` | {source} | {} |",
        k.name,
        cell(k.syntax),
        cell(k.doc)
    );
    if let Some(why) = why {
        line.push_str(&format!(" {} |", cell(why)));
    }
    line.push('\n');
    line
}

/// The table of [`SPECIALS`] of one status, if any.
fn specials(out: &mut String, status: Status, why_title: &str) {
    let mut rows = SPECIALS.iter().filter(|s| s.status == status).peekable();
    if rows.peek().is_none() {
        return;
    }
    out.push_str(&format!(
        "\nValues and places:\n\n| use | where | {why_title} |\n|---|---|---|\n"
    ));
    for s in rows {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            s.label(),
            place_name(s.place),
            cell(s.why)
        ));
    }
}

/// How the documentation names a place: `setting`, `socks rule`, … (a table column of
/// docs/configuration.md, a line of ferrosocks.conf(5)).
pub fn place_name(place: Place) -> &'static str {
    match place {
        Global => "setting",
        ClientRule => "client rule",
        SocksRule => "socks rule",
        AnyRule => "rule",
        Everywhere => "setting, rule",
        RouteOnly => "route",
    }
}

/// Text for a table cell: pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
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

    #[test]
    fn messages_name_the_keyword_and_say_why() {
        assert_eq!(
            lookup("bandwidth").unwrap().message("bandwidth"),
            "\"bandwidth\" is not supported yet: sessions would not be held to the limit"
        );
        assert_eq!(
            lookup("realm").unwrap().message("realm"),
            "\"realm\" is not supported yet"
        );
        assert!(lookup("extension")
            .unwrap()
            .message("extension")
            .starts_with("\"extension\" is ignored: ferrosocks does not implement"));
        assert_eq!(
            special_value("socksmethod", "gssapi")
                .unwrap()
                .message("method"),
            "\"method: gssapi\" is not supported yet: ferrosocks cannot authenticate clients this way"
        );
        assert_eq!(
            special_place("socksmethod", ClientRule)
                .unwrap()
                .message("socksmethod"),
            "\"socksmethod\" in a client rule is not supported yet"
        );
        assert!(special_value("socksmethod", "username").is_none());
        assert!(special_place("socksmethod", SocksRule).is_none());
    }

    #[test]
    fn every_special_names_a_keyword_of_the_table() {
        for s in SPECIALS {
            let k = lookup(s.keyword).unwrap_or_else(|| panic!("{}", s.keyword));
            // A value of a keyword refused as a whole could never be reached.
            assert_ne!(k.status, NotYet, "{}", s.keyword);
            assert!(matches!(s.status, Ignored | NotYet), "{}", s.label());
        }
    }
}
