//! The typed configuration: what the parser builds and the server runs on.
//!
//! Every value here has been checked; a [`Config`] that exists is one the server can run.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Addresses to listen on (`internal:`).
    pub internals: Vec<Internal>,
    /// Addresses to connect from (`external:`).
    pub externals: Vec<HostAddr>,
    /// How an external address is picked (`external.rotation:`).
    pub external_rotation: Rotation,
    /// Methods for client rules, in preference order (`clientmethod:`).
    pub clientmethods: Vec<AuthMethod>,
    /// Methods offered to SOCKS clients, in preference order (`socksmethod:`); empty
    /// means none was set, and every request is refused.
    pub socksmethods: Vec<AuthMethod>,
    /// `user.privileged:`
    pub user_privileged: Option<String>,
    /// `user.unprivileged:`: the user to run as after binding, when started as root.
    pub user_unprivileged: Option<String>,
    /// `user.libwrap:` (accepted; libwrap is not used).
    pub user_libwrap: Option<String>,
    /// `timeout.*` globals.
    pub timeouts: Timeouts,
    /// Where all messages go (`logoutput:`).
    pub logoutput: Vec<LogTarget>,
    /// Where warnings and worse also go (`errorlog:`).
    pub errorlog: Vec<LogTarget>,
    /// `debug:` level, 0–2.
    pub debug: u8,
    /// `log.<subsystem>.level|file|facility|operators:` settings, in file order.
    pub log_settings: Vec<SubsystemSetting>,
    /// `log.default.facility:`.
    pub log_default_facility: Option<Facility>,
    /// `logformat:` for file and stdio sinks that do not say `json:` themselves.
    pub logformat: LogFormat,
    /// `verb:` 0–11.
    pub verb: Option<u8>,
    /// `mute:` (0: off).
    pub mute: u32,
    /// `log.interim:` seconds between interim records of an open session (0: none).
    pub log_interim: u64,
    /// `internal|external.log.<level>.error:` settings.
    pub error_logs: Vec<ErrorLog>,
    /// `udp.connectdst:`: only replies from addresses the client sent to are relayed.
    pub udp_connectdst: bool,
    /// The htpasswd file for `socksmethod: username` (`passwordfile:`); without it,
    /// `username` checks the system's users, as Dante does.
    pub passwordfile: Option<PathBuf>,
    /// `client pass|block` rules, numbered from 1.
    pub client_rules: Vec<Rule>,
    /// `socks pass|block` rules, numbered from 1.
    pub socks_rules: Vec<Rule>,
    /// `route { }` entries for server chaining, numbered from 1.
    pub routes: Vec<Route>,
    /// The status file (`status.file:` with `status.interval:` and `status.version:`);
    /// `None` without `status.file:`.
    pub status: Option<StatusConfig>,
    /// `status.version:` (default 1), set with or without `status.file:`: the format of
    /// the status file and of the management `status` command given no version.
    pub status_version: u8,
    /// The management interface (`management:` with `management.password:` and
    /// `management.client-auth:`); `None` without `management:`.
    pub management: Option<ManagementConfig>,
    /// The metrics endpoint and dashboard (`metrics:` with `metrics.control:`); `None`
    /// without `metrics:` (nothing listens).
    pub metrics: Option<MetricsConfig>,
    /// The multilog-style log directory (`logdir*`); `None` without `logdir:`.
    pub logdir: Option<LogDirConfig>,
    /// RFC 5424 to a remote receiver (`syslog.remote*`); `None` without `syslog.remote:`.
    pub syslog_remote: Option<SyslogRemoteConfig>,
    /// Where the settings that start-up checks were written.
    pub origins: Origins,
}

/// Where the settings that are checked only when the server starts (an interface that
/// must exist, a user, a file, a directory) were written: the file, and the position of
/// each value token, so that such a check points at what the operator wrote. The
/// vectors run parallel to the [`Config`] fields of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origins {
    /// The file name as given to [`parse`](crate::parse()).
    pub file: String,
    /// The address or interface name of each `internal:` (parallel to `internals`).
    pub internals: Vec<crate::Pos>,
    /// The address or interface name of each `external:` (parallel to `externals`).
    pub externals: Vec<crate::Pos>,
    /// The path of `passwordfile:`.
    pub passwordfile: Option<crate::Pos>,
    /// The user name of `user.privileged:`.
    pub user_privileged: Option<crate::Pos>,
    /// The user name of `user.unprivileged:` (or `user.notprivileged:`).
    pub user_unprivileged: Option<crate::Pos>,
    /// The user name of `user.libwrap:`.
    pub user_libwrap: Option<crate::Pos>,
    /// Each `logoutput:` target (parallel to `logoutput`).
    pub logoutput: Vec<crate::Pos>,
    /// Each `errorlog:` target (parallel to `errorlog`).
    pub errorlog: Vec<crate::Pos>,
    /// The value of each `log.<subsystem>.<what>:` setting, the paths of
    /// `log.<subsystem>.file:` among them (parallel to `log_settings`).
    pub log_settings: Vec<crate::Pos>,
    /// The path of `status.file:`.
    pub status_file: Option<crate::Pos>,
    /// The socket path or address of `management:`.
    pub management: Option<crate::Pos>,
    /// The path of `management.password:`.
    pub management_password: Option<crate::Pos>,
    /// The address of `metrics:`.
    pub metrics: Option<crate::Pos>,
    /// The path of `logdir:`.
    pub logdir: Option<crate::Pos>,
    /// The path of `syslog.remote.ca:`.
    pub syslog_remote_ca: Option<crate::Pos>,
}

impl Origins {
    /// A diagnostic about this configuration's file at `pos` (one of the positions
    /// above).
    pub fn diagnostic(&self, pos: crate::Pos, message: String) -> crate::Diagnostic {
        crate::Diagnostic {
            file: self.file.clone(),
            pos,
            message,
        }
    }
}

/// A `route { }`: CONNECT requests that match go through an upstream proxy (or direct).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Number, from 1 in file order.
    pub number: u32,
    /// Line the route starts on.
    pub line: u32,
    /// `from:` (the client).
    pub from: AddrMatch,
    /// `to:` (the requested target).
    pub to: AddrMatch,
    /// `via:`.
    pub via: Via,
    /// `proxyprotocol:` the upstream speaks; the first one is used (default socks_v5).
    pub protocols: Vec<UpstreamProtocol>,
    /// `method:` offered upstream (default none); `username` forwards the client's own
    /// credentials.
    pub methods: Vec<AuthMethod>,
    /// `command:`; `None` is every command (only CONNECT is ever routed).
    pub commands: Option<Vec<SocksCommand>>,
}

/// Where a route goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// `via: direct`: no upstream.
    Direct,
    /// `via: HOST port = N`.
    Proxy {
        /// Address or name of the upstream proxy.
        host: HostAddr,
        /// Its port.
        port: u16,
    },
}

/// The protocol an upstream proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// `socks_v4` (SOCKS4a for names)
    SocksV4,
    /// `socks_v5`
    SocksV5,
    /// `http` (HTTP CONNECT)
    Http,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            internals: Vec::new(),
            externals: Vec::new(),
            external_rotation: Rotation::None,
            clientmethods: vec![AuthMethod::None],
            socksmethods: Vec::new(),
            user_privileged: None,
            user_unprivileged: None,
            user_libwrap: None,
            timeouts: Timeouts::default(),
            logoutput: Vec::new(),
            errorlog: Vec::new(),
            debug: 0,
            log_settings: Vec::new(),
            log_default_facility: None,
            logformat: LogFormat::Text,
            verb: None,
            mute: 0,
            log_interim: 0,
            error_logs: Vec::new(),
            udp_connectdst: true,
            passwordfile: None,
            client_rules: Vec::new(),
            socks_rules: Vec::new(),
            routes: Vec::new(),
            status: None,
            status_version: StatusConfig::DEFAULT_VERSION,
            management: None,
            metrics: None,
            logdir: None,
            syslog_remote: None,
            origins: Origins::default(),
        }
    }
}

/// The status file: OpenVPN's `--status FILE N` and `--status-version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusConfig {
    /// `status.file:`: the file, replaced as a whole every `interval` seconds.
    pub file: PathBuf,
    /// `status.interval:`: seconds between rewrites (default 10, at least 1).
    pub interval: u64,
    /// `status.version:`: its format, 1, 2 or 3 (the same value as
    /// [`Config::status_version`]).
    pub version: u8,
}

impl StatusConfig {
    /// Seconds between rewrites without `status.interval:`.
    pub const DEFAULT_INTERVAL: u64 = 10;
    /// The format without `status.version:` (OpenVPN's default too).
    pub const DEFAULT_VERSION: u8 = 1;
}

/// The management interface: OpenVPN's `--management`, `--management-client-auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementConfig {
    /// `management:`: where it listens.
    pub listen: MgmtListen,
    /// `management.password:`: the file whose first line is the password a client
    /// must give; `None`: no password is asked.
    pub password: Option<PathBuf>,
    /// `management.client-auth:` (default off): new sessions wait for a management
    /// client's verdict.
    pub client_auth: bool,
}

/// The metrics endpoint: `GET /metrics` (Prometheus), `GET /status.json`, the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `metrics: ADDRESS port = N`: where it listens (port 0: the kernel chooses).
    pub listen: SocketAddr,
    /// `metrics.control:` (default off): the dashboard may cut sessions, given the
    /// management password.
    pub control: bool,
}

/// Where the management interface listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MgmtListen {
    /// A Unix stream socket at this path.
    Unix(PathBuf),
    /// TCP on a loopback address (`127.0.0.0/8`, `::1`, or their IPv4-mapped form) or
    /// on every address (`0.0.0.0`, `::`); port 0 lets the kernel choose.
    Tcp(SocketAddr),
}

/// One `internal:` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Internal {
    /// Address or interface name.
    pub host: HostAddr,
    /// Port (default 1080).
    pub port: u16,
}

/// An address as `internal:`/`external:` take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAddr {
    /// A literal IPv4 or IPv6 address.
    Ip(IpAddr),
    /// An interface name (`eth0`, `lo`) or a host name, told apart when the server starts.
    Name(String),
}

/// `external.rotation:`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Always the first external address.
    None,
    /// The kernel's route picks the source address.
    Route,
    /// The address the client connected to.
    SameSame,
}

/// An authentication method name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// `none`
    None,
    /// `username`: RFC 1929, checked against `passwordfile:` when one is set, else
    /// against the system's users (as Dante does)
    Username,
    /// `rfc931`: the user name comes from the client's identd (RFC 1413)
    Rfc931,
}

impl AuthMethod {
    /// The name as written in the file and printed in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Username => "username",
            Self::Rfc931 => "rfc931",
        }
    }
}

/// Time limits, in seconds; 0 means "no limit" (or the system default for connect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From accept until the request has been read (`timeout.negotiate`, default 30).
    pub negotiate: u64,
    /// For the connect to the target (`timeout.connect`, default 30).
    pub connect: u64,
    /// Idle time allowed on an established session (`timeout.io`, default 0).
    pub io: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            negotiate: 30,
            connect: 30,
            io: 0,
        }
    }
}

/// How file and stdio sinks write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Dante's lines.
    Text,
    /// JSON lines.
    Json,
}

/// Where a configuration setting was written (for errors found later, e.g. an unknown
/// subsystem name, which the log router defines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// File name as given.
    pub file: String,
    /// Line and column of the keyword.
    pub pos: crate::Pos,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.pos.line, self.pos.col)
    }
}

/// One `log.<subsystem>.<what>:` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsystemSetting {
    /// The subsystem name as written.
    pub subsystem: String,
    /// Where.
    pub origin: Origin,
    /// What.
    pub value: SubsystemValue,
}

/// The value of a `log.<subsystem>.<what>:` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubsystemValue {
    /// `.level:` a level name as written (checked against the log router's levels).
    Level(String),
    /// `.file:` a path.
    File(PathBuf),
    /// `.facility:`.
    Facility(FacilityChoice),
    /// `.operators: on|off`.
    Operators(bool),
}

/// `log.<subsystem>.facility:` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FacilityChoice {
    /// `none`.
    None,
    /// `default`: `log.default.facility`.
    Default,
    /// A facility.
    Facility(Facility),
}

/// Which side of the proxy an error class concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSide {
    /// `internal`: towards clients.
    Internal,
    /// `external`: towards targets (and DNS).
    External,
}

/// One `internal|external.log.<level>.error:` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorLog {
    /// Which side.
    pub side: ErrorSide,
    /// The level word (`emerg alert crit err warning notice info debug`).
    pub level: String,
    /// errno values.
    pub errnos: Vec<i32>,
    /// getaddrinfo `EAI_*` values.
    pub eai: Vec<i32>,
}

/// JSON-writing sinks (`json:stdout`, `json:stderr`, `json:PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonTarget {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file.
    File(PathBuf),
}

/// A place `logoutput:`/`errorlog:` send messages to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// `json:…`: JSON lines whatever `logformat` says.
    Json(JsonTarget),
    /// `syslog[/facility]`
    Syslog(Facility),
    /// `stdout`
    Stdout,
    /// `stderr`
    Stderr,
    /// A file, opened for append.
    File(PathBuf),
}

/// A syslog facility Dante accepts after `syslog/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facility {
    /// `user` (1)
    User,
    /// `daemon` (3), the default
    Daemon,
    /// `auth` (4)
    Auth,
    /// `authpriv` (10)
    AuthPriv,
    /// `local0`…`local7` (16–23)
    Local(u8),
}

impl Facility {
    /// The facility code (not yet shifted by 3).
    pub fn code(self) -> u8 {
        match self {
            Self::User => 1,
            Self::Daemon => 3,
            Self::Auth => 4,
            Self::AuthPriv => 10,
            Self::Local(n) => 16 + n,
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "user" => Self::User,
            "daemon" => Self::Daemon,
            "auth" => Self::Auth,
            "authpriv" => Self::AuthPriv,
            _ => {
                let n = name.strip_prefix("local")?.parse::<u8>().ok()?;
                if n > 7 || name.len() != 6 {
                    return None;
                }
                Self::Local(n)
            }
        })
    }
}

/// Which list a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `client pass|block`: decided on the TCP connection, before any SOCKS byte.
    Client,
    /// `socks pass|block` (or bare `pass|block`): decided on the SOCKS request.
    Socks,
}

/// `pass` or `block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Let it through.
    Pass,
    /// Refuse it.
    Block,
}

/// One access rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Client or socks rule.
    pub kind: RuleKind,
    /// Number within its kind, from 1 in file order (as Dante numbers them).
    pub number: u32,
    /// Line the rule starts on.
    pub line: u32,
    /// pass or block.
    pub action: Action,
    /// `from:` (the client).
    pub from: AddrMatch,
    /// `to:` (for client rules the proxy address reached, for socks rules the target).
    pub to: AddrMatch,
    /// `command:`; `None` matches every command.
    pub commands: Option<Vec<SocksCommand>>,
    /// `protocol:`; `None` matches both.
    pub protocols: Option<Vec<Protocol>>,
    /// `proxyprotocol:`; `None` matches SOCKS4 and SOCKS5.
    pub proxyprotocols: Option<Vec<ProxyProtocol>>,
    /// `udp.portrange:`: the ports the proxy's external UDP sockets may use.
    pub udp_portrange: Option<(u16, u16)>,
    /// `internal|external.log.<level>.error:` for this rule (the global ones still apply).
    pub error_logs: Vec<ErrorLog>,
    /// `socksmethod:`; `None` means the global list.
    pub socksmethods: Option<Vec<AuthMethod>>,
    /// `clientmethod:`; `None` means the global list.
    pub clientmethods: Option<Vec<AuthMethod>>,
    /// `user:`; `None` matches anybody (authenticated or not).
    pub users: Option<Vec<String>>,
    /// `log:` keywords.
    pub log: LogFlags,
    /// `timeout.negotiate:` for client rules.
    pub timeout_negotiate: Option<u64>,
    /// `timeout.connect:` for socks rules.
    pub timeout_connect: Option<u64>,
    /// `timeout.io:` for socks rules.
    pub timeout_io: Option<u64>,
    /// `log.interim:` for socks rules; `None` means the global value.
    pub log_interim: Option<u64>,
}

/// `log:` keywords of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogFlags {
    /// `connect`: the start of each operation.
    pub connect: bool,
    /// `disconnect`: the end-of-session summary.
    pub disconnect: bool,
    /// `data`: every I/O operation with its payload.
    pub data: bool,
    /// `ioop` / `iooperation`: every I/O operation with its size.
    pub ioop: bool,
    /// `error`: failures.
    pub error: bool,
    /// `tcpinfo`: TCP_INFO of both sockets at the end of a session.
    pub tcpinfo: bool,
}

impl LogFlags {
    /// Whether any keyword is set.
    pub fn any(self) -> bool {
        self.connect || self.disconnect || self.data || self.ioop || self.error || self.tcpinfo
    }
}

/// A `command:` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocksCommand {
    /// `connect`
    Connect,
    /// `bind`
    Bind,
    /// `bindreply`
    BindReply,
    /// `udpassociate`
    UdpAssociate,
    /// `udpreply`
    UdpReply,
}

/// A `proxyprotocol:` value: the SOCKS version a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// `socks_v4` (SOCKS4 and SOCKS4a)
    SocksV4,
    /// `socks_v5`
    SocksV5,
}

/// A `protocol:` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `tcp`
    Tcp,
    /// `udp`
    Udp,
}

/// An address and port pattern (`from:` / `to:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrMatch {
    /// The host part.
    pub host: HostMatch,
    /// The port part.
    pub port: PortMatch,
}

impl AddrMatch {
    /// Matches everything (`0/0`, any port).
    pub fn any() -> Self {
        Self {
            host: HostMatch::Any,
            port: PortMatch::Any,
        }
    }
}

/// The host part of an [`AddrMatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// `0/0`: every IPv4 and IPv6 address and every name.
    Any,
    /// An address with a prefix length (`10.0.0.0/8`, `::1/128`; `0.0.0.0/0` is every IPv4 address).
    Net {
        /// The network address.
        addr: IpAddr,
        /// Prefix length in bits.
        prefix: u8,
    },
    /// A host name or an interface name; the server tells them apart.
    Name(String),
    /// `.example.com`: the domain and every name under it (stored without the dot).
    Domain(String),
}

impl HostMatch {
    /// Whether `ip` is in this network (`Any` and `Net` only; names need resolving).
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        match *self {
            Self::Any => true,
            Self::Net { addr, prefix } => net_contains(addr, prefix, ip),
            Self::Name(_) | Self::Domain(_) => false,
        }
    }
}

fn net_contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    let ip = match (net, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        _ => ip,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The port part of an [`AddrMatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMatch {
    /// No port given: every port.
    Any,
    /// `port OP N`.
    Op(PortOp, u16),
    /// `port A-B`, inclusive.
    Range(u16, u16),
}

impl PortMatch {
    /// Whether `port` matches.
    pub fn matches(self, port: u16) -> bool {
        match self {
            Self::Any => true,
            Self::Range(a, b) => (a..=b).contains(&port),
            Self::Op(op, n) => match op {
                PortOp::Eq => port == n,
                PortOp::Ne => port != n,
                PortOp::Ge => port >= n,
                PortOp::Le => port <= n,
                PortOp::Gt => port > n,
                PortOp::Lt => port < n,
            },
        }
    }
}

/// A port comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortOp {
    /// `eq`, `=`
    Eq,
    /// `ne`, `neq`, `!=`
    Ne,
    /// `ge`, `>=`
    Ge,
    /// `le`, `<=`
    Le,
    /// `gt`, `>`
    Gt,
    /// `lt`, `<`
    Lt,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_ports() {
        let net = HostMatch::Net {
            addr: "10.0.0.0".parse().unwrap(),
            prefix: 8,
        };
        assert!(net.contains_ip("10.9.9.9".parse().unwrap()));
        assert!(net.contains_ip("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains_ip("11.0.0.1".parse().unwrap()));
        let all4 = HostMatch::Net {
            addr: "0.0.0.0".parse().unwrap(),
            prefix: 0,
        };
        assert!(all4.contains_ip("1.2.3.4".parse().unwrap()));
        assert!(!all4.contains_ip("::1".parse().unwrap()));
        assert!(HostMatch::Any.contains_ip("::1".parse().unwrap()));
        assert!(PortMatch::Range(1, 1024).matches(1024));
        assert!(!PortMatch::Op(PortOp::Lt, 80).matches(80));
        assert!(PortMatch::Op(PortOp::Ne, 80).matches(81));
    }
}

/// The log directory: `logdir:` and its `logdir.*` settings (multilog's `s`, `n`, `t`,
/// and socklog's shipping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirConfig {
    /// `logdir:`
    pub path: PathBuf,
    /// `logdir.size:` (default 99999).
    pub size: u64,
    /// `logdir.count:` (default 10, `current` included).
    pub count: u32,
    /// `logdir.stamp:` (default off).
    pub stamp: bool,
    /// `logdir.ship:`: where each rotated file is sent.
    pub ship: Option<ShipTarget>,
    /// `logdir.ship.timeout:` in seconds (default 30).
    pub ship_timeout: u64,
}

impl LogDirConfig {
    /// multilog's default size.
    pub const DEFAULT_SIZE: u64 = 99_999;
    /// multilog's default count.
    pub const DEFAULT_COUNT: u32 = 10;
    /// The default `logdir.ship.timeout`.
    pub const DEFAULT_SHIP_TIMEOUT: u64 = 30;
}

/// A collector: `HOST port = N`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShipTarget {
    /// An IP address or a host name (resolved at each shipment).
    pub host: String,
    pub port: u16,
}

/// `syslog.remote:` with `syslog.remote.protocol:` and `syslog.remote.ca:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogRemoteConfig {
    /// An IP address or a host name.
    pub host: String,
    pub port: u16,
    /// Default tcp.
    pub protocol: RemoteProtocol,
    /// PEM certificates the TLS receiver's certificate must chain to.
    pub ca: Option<PathBuf>,
}

/// How records travel to a remote receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemoteProtocol {
    /// RFC 6587 octet counting over TCP.
    Tcp,
    /// RFC 5425: octet counting over TLS.
    Tls,
    /// RFC 5426: one message per datagram.
    Udp,
}
