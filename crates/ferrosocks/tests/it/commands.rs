//! SOCKS4/4a, BIND and UDP ASSOCIATE through the real binary: curl, proxychains4,
//! PySocks and raw clients, with Dante's records checked.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// `conf(log)` with `extra` lines added to its socks rule (the last rule).
fn socks_extra(log: &str, extra: &str) -> String {
    let c = conf(log);
    let at = c.rfind("    log: ").expect("the socks rule's log line");
    format!("{}{extra}\n{}", &c[..at], &c[at..])
}

pub(crate) fn all_commands(log: &str) -> String {
    socks_extra(
        log,
        "    command: connect bind bindreply udpassociate udpreply",
    )
}

#[test]
fn curl_socks4_and_socks4a() {
    require("curl");
    let http = Helper::http();
    let p = Proxy::start(&conf("connect disconnect"));
    let port = http.addr.port();
    for (flag, host) in [
        ("--socks4", "127.0.0.1"),
        ("--socks4a", "localhost"),
        ("--socks4", "localhost"),
    ] {
        let (code, out, err) = run(Command::new("curl").args([
            "-sS",
            flag,
            &p.addr.to_string(),
            &format!("http://{host}:{port}/"),
        ]));
        assert_eq!((code, out.as_str()), (0, HTTP_BODY), "{flag} {host}: {err}");
    }
    p.wait_for("three sessions", |_| {
        p.records()
            .iter()
            .filter(|l| l.contains("tcp/connect [:"))
            .count()
            == 3
    });
    let m = p.messages();
    assert_eq!(
        m.iter().filter(|l| l.contains("tcp/connect [:")).count(),
        3,
        "{m:?}"
    );
    // The SOCKS4a name is logged as the address it resolved to, as Dante does.
    assert!(
        m.iter()
            .filter(|l| l.contains("tcp/connect [:"))
            .all(|l| l.ends_with(&format!(" 127.0.0.1.{port}"))),
        "{m:?}"
    );
}

#[test]
fn proxyprotocol_restricts_versions() {
    let echo = Helper::echo();
    let p = Proxy::start(&socks_extra("connect", "    proxyprotocol: socks_v4"));
    let (_, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0x02, "SOCKS5 refused by a socks_v4-only rule");
    let mut c = Raw::connect(p.addr);
    let mut req = vec![4, 1];
    req.extend_from_slice(&echo.addr.port().to_be_bytes());
    req.extend_from_slice(&[127, 0, 0, 1, b'u', 0]);
    c.send(&req);
    assert_eq!(c.read_exact(8)[1], 0x5a);
    c.send(b"v4");
    assert_eq!(c.read_exact(2), b"v4");
}

#[test]
fn proxychains_runs_a_real_program_through_ferrosocks() {
    require("proxychains4");
    require("curl");
    let http = Helper::http();
    let p = Proxy::start(&conf("connect disconnect"));
    let pc = p.dir.path().join("proxychains.conf");
    std::fs::write(&pc, format!("strict_chain\nproxy_dns\ntcp_read_time_out 15000\ntcp_connect_time_out 8000\n[ProxyList]\nsocks5 127.0.0.1 {}\n", p.addr.port())).unwrap();
    let (code, out, err) = run(Command::new("proxychains4")
        .arg("-q")
        .arg("-f")
        .arg(&pc)
        .args([
            "curl",
            "-sS",
            "--noproxy",
            "*",
            &format!("http://127.0.0.1:{}/", http.addr.port()),
        ]));
    assert_eq!((code, out.as_str()), (0, HTTP_BODY), "{err}");
    p.wait_for("the proxied connect", |m| {
        m.contains(&format!("127.0.0.1.{}: remote peer closed", 0)) || m.contains("tcp/connect ]:")
    });
}

/// BIND: returns (client control stream, bound address).
pub(crate) fn bind_request(proxy: SocketAddr, expect: SocketAddr) -> (Raw, SocketAddr) {
    let mut c = Raw::connect(proxy);
    c.send(&[5, 1, 0]);
    assert_eq!(c.read_exact(2), [5, 0]);
    let SocketAddr::V4(e) = expect else { panic!() };
    let mut req = vec![5, 2, 0, 1];
    req.extend_from_slice(&e.ip().octets());
    req.extend_from_slice(&e.port().to_be_bytes());
    c.send(&req);
    let r = c.read_exact(10);
    assert_eq!(&r[..4], [5, 0, 0, 1], "first BIND reply");
    let bound = SocketAddr::from(([r[4], r[5], r[6], r[7]], u16::from_be_bytes([r[8], r[9]])));
    (c, bound)
}

#[test]
fn bind_relays_the_incoming_connection_like_dante() {
    assert_golden("bind.golden", &bind_relay(Impl::Ferrosocks));
}

/// A BIND whose remote host sends 4 bytes and the client 8: bind.golden.
pub fn bind_relay(imp: Impl) -> String {
    let p = imp.start(&all_commands("connect disconnect ioop"));
    let (mut c, bound) = bind_request(p.addr(), "127.0.0.1:0".parse().unwrap());
    let mut remote = TcpStream::connect(bound).unwrap();
    remote
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let r = c.read_exact(10);
    assert_eq!(&r[..2], [5, 0], "second BIND reply");
    let said = SocketAddr::from(([r[4], r[5], r[6], r[7]], u16::from_be_bytes([r[8], r[9]])));
    assert_eq!(said, remote.local_addr().unwrap());
    // As in the seed's §4.3: the remote sends 4 bytes, the client answers 8 and closes.
    remote.write_all(b"4444").unwrap();
    assert_eq!(c.read_exact(4), b"4444");
    c.send(b"88888888");
    let mut got = [0u8; 8];
    remote.read_exact(&mut got).unwrap();
    c.0.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    remote.read_to_end(&mut rest).unwrap();
    drop(remote);
    assert!(c.read_to_close().is_empty());
    p.wait_for("the accept summary", |m| m.contains("tcp/accept ]:"));
    normalize(
        &p.records(),
        &[(p.addr().port(), "PROXY"), (bound.port(), "BOUND")],
    )
}

#[test]
fn bind_blocked_by_a_bindreply_rule_and_bind_timeout() {
    assert_golden(
        "bind-blocked-and-timeout.golden",
        &bind_blocked_and_timeout(Impl::Ferrosocks),
    );
}

/// A bindreply blocked by a rule, and a BIND nobody connects to: bind-blocked-and-timeout.golden.
pub fn bind_blocked_and_timeout(imp: Impl) -> String {
    let conf = conf("connect disconnect").replace(
        "socks pass {",
        "socks block {\n    from: 0/0 to: 0/0\n    command: bindreply\n    log: connect\n}\nsocks pass {",
    );
    let p = imp.start(&conf.replace("socksmethod: none", "socksmethod: none\ntimeout.connect: 1"));
    let (mut c, bound) = bind_request(p.addr(), "127.0.0.1:0".parse().unwrap());
    let remote = TcpStream::connect(bound).unwrap();
    assert_eq!(c.read_exact(2), [5, 0x02], "bindreply refused");
    drop(remote);
    assert!(c.read_to_close().len() <= 8);
    // A BIND nobody connects to: the second reply says TTL expired after timeout.connect.
    let (mut c2, _) = bind_request(p.addr(), "127.0.0.1:0".parse().unwrap());
    let m = if imp == Impl::Dante {
        // Dante 1.4.2 puts no time limit on a BIND (docs/traffic-log.md, Differences):
        // the client gives up instead.
        drop(c2);
        p.wait_for("the client's end", |m| {
            m.ends_with(": eof from client") && m.contains("tcp/accept ]:")
        })
    } else {
        assert_eq!(c2.read_exact(2), [5, 0x06]);
        p.wait_for("the bind timeout", |m| {
            m.ends_with("bind timeout.  Session duration: 1s")
        })
    };
    normalize(
        &m.iter()
            .filter(|l| l.starts_with("pass(") || l.starts_with("block("))
            .cloned()
            .collect::<Vec<_>>(),
        &[(p.addr().port(), "PROXY"), (bound.port(), "BOUND")],
    )
}

/// A waiting BIND ends as soon as its client sends bytes and closes (SOCKS5 and SOCKS4),
/// or just closes: not at the bind timeout (30 s here), and its listening socket goes
/// with it. Logged as Dante 1.4.2 logs a client leaving a BIND.
#[test]
fn bind_ends_when_the_client_sends_bytes_or_leaves() {
    assert_golden(
        "bind-client-gone.golden",
        &bind_client_gone(Impl::Ferrosocks),
    );
}

/// Waiting BINDs whose clients talk and leave, or only leave: bind-client-gone.golden.
pub fn bind_client_gone(imp: Impl) -> String {
    let p = imp.start(&all_commands("connect disconnect error"));
    let start = std::time::Instant::now();
    let ended = |n: usize| {
        p.wait_for("the BIND to end", |_| {
            p.records()
                .iter()
                .filter(|l| l.contains("tcp/accept ]:"))
                .count()
                == n
        });
    };
    let refused = |bound: SocketAddr| {
        assert_eq!(
            TcpStream::connect(bound).map_err(|e| e.kind()).err(),
            Some(std::io::ErrorKind::ConnectionRefused),
            "{bound} still listens"
        );
    };
    // SOCKS5: bytes before the second reply, then the client closes.
    let (mut c, bound) = bind_request(p.addr(), "127.0.0.1:0".parse().unwrap());
    c.send(b"early");
    drop(c);
    ended(1);
    refused(bound);
    // SOCKS4 the same.
    let mut c = Raw::connect(p.addr());
    c.send(&[4, 2, 0, 0, 127, 0, 0, 1, 0]);
    let r = c.read_exact(8);
    assert_eq!(r[1], 0x5a);
    let bound4 = SocketAddr::from(([r[4], r[5], r[6], r[7]], u16::from_be_bytes([r[2], r[3]])));
    c.send(b"early");
    drop(c);
    ended(2);
    refused(bound4);
    // SOCKS5: the client only closes.
    let (c, bound) = bind_request(p.addr(), "127.0.0.1:0".parse().unwrap());
    drop(c);
    ended(3);
    refused(bound);
    assert!(start.elapsed() < Duration::from_secs(10));
    normalize(&p.records(), &[(p.addr().port(), "PROXY")])
}

#[test]
fn socks4_bind() {
    let p = Proxy::start(&all_commands("connect"));
    let mut c = Raw::connect(p.addr);
    c.send(&[4, 2, 0, 0, 127, 0, 0, 1, 0]);
    let r = c.read_exact(8);
    assert_eq!(r[1], 0x5a);
    let bound = SocketAddr::from(([r[4], r[5], r[6], r[7]], u16::from_be_bytes([r[2], r[3]])));
    let mut remote = TcpStream::connect(bound).unwrap();
    let r = c.read_exact(8);
    assert_eq!(r[1], 0x5a);
    assert_eq!(
        u16::from_be_bytes([r[2], r[3]]),
        remote.local_addr().unwrap().port()
    );
    c.send(b"hi");
    let mut got = [0u8; 2];
    remote.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi");
}

/// A UDP echo server on loopback; stops when dropped.
pub(crate) struct UdpEcho {
    pub(crate) addr: SocketAddr,
    sock: UdpSocket,
}

impl UdpEcho {
    pub(crate) fn start(bind: &str) -> Self {
        let sock = UdpSocket::bind(bind).unwrap();
        let addr = sock.local_addr().unwrap();
        let s = sock.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                if &buf[..n] == b"stop" {
                    return;
                }
                let _ = s.send_to(&buf[..n], from);
            }
        });
        Self { addr, sock }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        let _ = self.sock.send_to(b"stop", self.addr);
    }
}

#[test]
fn pysocks_udp_associate() {
    assert_golden("udp-pysocks.golden", &udp_pysocks(Impl::Ferrosocks));
}

/// PySocks sends two datagrams over a UDP ASSOCIATE: udp-pysocks.golden.
pub fn udp_pysocks(imp: Impl) -> String {
    let python = "/usr/bin/python3";
    assert!(
        std::path::Path::new(python).exists(),
        "Debian's python3 is missing: run ./test.sh"
    );
    let echo = UdpEcho::start("127.0.0.1:0");
    // `from: 0/0`: Dante 1.4.2 matches a UDP ASSOCIATE's `from:` against the address the
    // client declared (here the name "0"), not the control connection's.
    let p = imp.start(
        &all_commands("connect disconnect ioop")
            .replace("from: 127.0.0.0/8 to: 0/0", "from: 0/0 to: 0/0"),
    );
    let script = format!(
        "import socks\n\
         s = socks.socksocket(socks.socket.AF_INET, socks.socket.SOCK_DGRAM)\n\
         s.set_proxy(socks.SOCKS5, '127.0.0.1', {})\n\
         s.settimeout(10)\n\
         for payload in (b'ping', b'pong!!!'):\n\
         \x20   s.sendto(payload, ('127.0.0.1', {}))\n\
         \x20   data, addr = s.recvfrom(2048)\n\
         \x20   print(data.decode(), addr[1])\n\
         s.close()\n",
        p.addr().port(),
        echo.addr.port()
    );
    let (code, out, err) = run(Command::new(python).arg("-c").arg(&script));
    assert_eq!(code, 0, "PySocks failed: {err}\n{}", p.stderr());
    assert_eq!(out, format!("ping {0}\npong!!! {0}\n", echo.addr.port()));
    p.wait_for("the accept summary", |m| m.contains("tcp/accept ]:"));
    let records = p.records();
    // PySocks declares its UDP port with the host name "0": Dante prints "0.PORT".
    let declared = records
        .iter()
        .find_map(|r| {
            r.strip_prefix("pass(1): udp/udpassociate [: 0.")?
                .split(' ')
                .next()
        })
        .and_then(|port| port.parse::<u16>().ok())
        .expect("the association's start line");
    let text = normalize(
        &records,
        &[
            (p.addr().port(), "PROXY"),
            (echo.addr.port(), "ECHO"),
            (declared, "CLIENTUDP"),
        ],
    )
    .replace(&format!("[: 0.{declared} "), "[: 0.CLIENTUDP ");
    // PySocks declares 0.0.0.0:0; payloads 4 + 7 bytes, each with a 10-byte header client-side.
    text
}

pub(crate) fn header(target: SocketAddr, frag: u8) -> Vec<u8> {
    let SocketAddr::V4(t) = target else { panic!() };
    let mut h = vec![0, 0, frag, 1];
    h.extend_from_slice(&t.ip().octets());
    h.extend_from_slice(&t.port().to_be_bytes());
    h
}

#[test]
fn udp_bad_datagrams_are_dropped_and_logged() {
    let echo = UdpEcho::start("127.0.0.1:0");
    let p = Proxy::start(&all_commands("connect disconnect error"));
    let me = UdpSocket::bind("127.0.0.1:0").unwrap();
    me.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (ctl, reply) = associate(p.addr, me.local_addr().unwrap());
    let relay = relay_of(&reply);
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    // From another port than declared; truncated; a fragment; then a good one.
    other
        .send_to(&[header(echo.addr, 0), b"x".to_vec()].concat(), relay)
        .unwrap();
    me.send_to(&[0, 0, 0, 1, 127], relay).unwrap();
    me.send_to(&[header(echo.addr, 1), b"frag".to_vec()].concat(), relay)
        .unwrap();
    me.send_to(&[0, 0, 0, 9, 1, 2, 3, 4, 0, 1], relay).unwrap();
    me.send_to(&[header(echo.addr, 0), b"good".to_vec()].concat(), relay)
        .unwrap();
    let mut buf = [0u8; 256];
    let (n, from) = me.recv_from(&mut buf).unwrap();
    assert_eq!(from, relay);
    assert_eq!(&buf[..n], [header(echo.addr, 0), b"good".to_vec()].concat());
    drop(ctl);
    let m = p.wait_for("the association summary", |m| {
        m.contains("udp/udpassociate ]:")
    });
    let all = m.join("\n");
    for expected in [
        "datagram dropped: not from the client of this association",
        "datagram dropped: truncated datagram of 5 bytes",
        "datagram dropped: fragment 1 (fragmentation is not supported)",
        "datagram dropped: unsupported address type 0x09",
        "udp/udpassociate ]: 14/1 -> 127.0.0.1.",
    ] {
        assert!(all.contains(expected), "missing {expected:?}:\n{all}");
    }
}

/// A datagram to a name: its I/O line and the summary show the address the name
/// resolved to, as Dante logs them.
#[test]
fn udp_to_a_name_logs_the_address_it_went_to() {
    let echo = UdpEcho::start("127.0.0.1:0");
    let p = Proxy::start(&all_commands("connect disconnect ioop"));
    let me = UdpSocket::bind("127.0.0.1:0").unwrap();
    me.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (ctl, reply) = associate(p.addr, me.local_addr().unwrap());
    let relay = relay_of(&reply);
    let mut dgram = vec![0, 0, 0, 3, 9];
    dgram.extend_from_slice(b"localhost");
    dgram.extend_from_slice(&echo.addr.port().to_be_bytes());
    dgram.extend_from_slice(b"name");
    me.send_to(&dgram, relay).unwrap();
    let mut buf = [0u8; 256];
    let (n, _) = me.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], [header(echo.addr, 0), b"name".to_vec()].concat());
    drop(ctl);
    let m = p.wait_for("the association summary", |m| {
        m.contains("udp/udpassociate ]:")
    });
    let target = format!(" 127.0.0.1.{}", echo.addr.port());
    let sent = m
        .iter()
        .find(|l| l.starts_with("pass(1): udp/udpassociate -: "))
        .unwrap_or_else(|| panic!("no I/O line: {m:?}"));
    assert!(sent.ends_with(&format!("{target} (4)")), "{sent}");
    let summary = m
        .iter()
        .find(|l| l.contains("udp/udpassociate ]:"))
        .unwrap();
    assert!(summary.contains(&format!("{target} -> 4/1: ")), "{summary}");
    assert!(!m.iter().any(|l| l.contains("localhost")), "{m:?}");
}

#[test]
fn udp_over_ipv6() {
    let echo = UdpEcho::start("[::1]:0");
    let p = Proxy::start(
        "logoutput: @LOG@\ninternal: ::1 port = 0\nsocksmethod: none\n\
         client pass { from: ::1/128 to: 0/0\n}\n\
         socks pass { from: 0/0 to: 0/0\nlog: connect disconnect\n}\n",
    );
    let me = UdpSocket::bind("[::1]:0").unwrap();
    me.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut c = Raw::connect(p.addr);
    c.send(&[5, 1, 0]);
    assert_eq!(c.read_exact(2), [5, 0]);
    let mut req = vec![5, 3, 0, 4];
    req.extend_from_slice(&[0u8; 16]);
    req.extend_from_slice(&[0, 0]);
    c.send(&req);
    let r = c.read_exact(22);
    assert_eq!(&r[..4], [5, 0, 0, 4]);
    let mut ip = [0u8; 16];
    ip.copy_from_slice(&r[4..20]);
    let relay = SocketAddr::from((ip, u16::from_be_bytes([r[20], r[21]])));
    let mut dgram = vec![0, 0, 0, 4];
    dgram.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    dgram.extend_from_slice(&echo.addr.port().to_be_bytes());
    dgram.extend_from_slice(b"six");
    me.send_to(&dgram, relay).unwrap();
    let mut buf = [0u8; 128];
    let (n, _) = me.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &dgram[..]);
    drop(c);
    let m = p.wait_for("the summary", |m| {
        m.contains("udp/udpassociate ]: 25/1 -> ::1.")
    });
    // No `external:`: the relay is bound on the address the kernel sends from, never on
    // the wildcard address.
    assert!(
        m.iter().any(|l| l.contains(", 3/1 -> ::1.")
            && l.contains(&format!(" ::1.{} -> 3/1", echo.addr.port()))),
        "{m:?}"
    );
    assert!(!m.iter().any(|l| l.contains("-> ::.")), "{m:?}");
}

/// A destination of a family `external:` has no address of is refused, in Dante's
/// words, instead of being sent from the wildcard address; the association goes on for
/// the other family. The same for `external.rotation: same-same` when the client came
/// in on the other family.
#[test]
fn udp_to_a_family_without_an_external_address_is_refused() {
    let echo4 = UdpEcho::start("127.0.0.1:0");
    let echo6 = UdpEcho::start("[::1]:0");
    for (rotation, why) in [
        (
            "",
            "none of the addresses configured on our external interface(s) can be used for \
             forwarding from our local client CLIENT to target ECHO6.  Configuration error in ",
        ),
        (
            "external.rotation: same-same\n",
            "rotation for external addresses is set to same-same, but that can not work for \
             this udpassociate request.  The internal address we accepted the client on is a \
             IPv4 address (127.0.0.1.PROXY), but the target address is a IPv6 address (ECHO6)",
        ),
    ] {
        let p = Proxy::start(&all_commands("connect disconnect error").replace(
            "socksmethod: none\n",
            &format!("socksmethod: none\n{rotation}"),
        ));
        let me = UdpSocket::bind("127.0.0.1:0").unwrap();
        me.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let (ctl, reply) = associate(p.addr, me.local_addr().unwrap());
        let relay = relay_of(&reply);
        let mut six = vec![0, 0, 0, 4];
        six.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        six.extend_from_slice(&echo6.addr.port().to_be_bytes());
        six.extend_from_slice(b"six");
        me.send_to(&six, relay).unwrap();
        let mut buf = [0u8; 128];
        assert!(
            me.recv_from(&mut buf).is_err(),
            "an IPv6 datagram was relayed"
        );
        let four = [header(echo4.addr, 0), b"four".to_vec()].concat();
        me.send_to(&four, relay).unwrap();
        let (n, _) = me.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &four[..]);
        drop(ctl);
        let m = p.wait_for("the accept summary", |m| m.contains("tcp/accept ]:"));
        let client = ep(me.local_addr().unwrap());
        let echo6_ep = format!("::1.{}", echo6.addr.port());
        let why = why
            .replace("CLIENT", &client)
            .replace("ECHO6", &echo6_ep)
            .replace("PROXY", &p.addr.port().to_string());
        let refused = m
            .iter()
            .find(|l| l.starts_with("block(1): udp/udpassociate -: "))
            .unwrap_or_else(|| panic!("no refusal: {m:?}"));
        assert!(
            refused.contains(&format!(" -> 0.0.0.0.0 {echo6_ep}: {why}")),
            "{refused}\n{why}"
        );
        let summaries: Vec<&String> = m
            .iter()
            .filter(|l| l.contains("udp/udpassociate ]:"))
            .collect();
        assert_eq!(summaries.len(), 1, "{m:?}");
        assert!(summaries[0].contains(" -> 4/1: "), "{m:?}");
        assert!(!m.iter().any(|l| l.contains("-> ::.")), "{m:?}");
    }
}
