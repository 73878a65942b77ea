//! Service names accepted where a port number may stand (`port = http`).
//!
//! A fixed table of the common TCP services of IANA's registry (as in netbase's
//! /etc/services), so that parsing does no I/O and gives the same answer on every
//! machine. Names not listed here are an error that says so; write the number instead.

const SERVICES: &[(&str, u16)] = &[
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("time", 37),
    ("whois", 43),
    ("domain", 53),
    ("gopher", 70),
    ("finger", 79),
    ("http", 80),
    ("www", 80),
    ("kerberos", 88),
    ("pop3", 110),
    ("sunrpc", 111),
    ("auth", 113),
    ("ident", 113),
    ("nntp", 119),
    ("ntp", 123),
    ("imap", 143),
    ("imap2", 143),
    ("snmp", 161),
    ("bgp", 179),
    ("irc", 194),
    ("ldap", 389),
    ("https", 443),
    ("microsoft-ds", 445),
    ("submissions", 465),
    ("syslog", 514),
    ("printer", 515),
    ("submission", 587),
    ("ldaps", 636),
    ("rsync", 873),
    ("ftps", 990),
    ("imaps", 993),
    ("pop3s", 995),
    ("socks", 1080),
    ("openvpn", 1194),
    ("ms-sql-s", 1433),
    ("squid", 3128),
    ("mysql", 3306),
    ("postgresql", 5432),
    ("x11", 6000),
    ("ircd", 6667),
    ("http-alt", 8080),
    ("webcache", 8080),
    ("memcache", 11211),
];

/// The port of a service name.
pub fn port_of(name: &str) -> Option<u16> {
    SERVICES.iter().find(|(n, _)| *n == name).map(|&(_, p)| p)
}
