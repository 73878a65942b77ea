//! The seed's transaction types (§4.1–4.11) not covered elsewhere, each as a golden
//! transcript in Dante 1.4's form: the client-rule block, a blocked BIND, chaining, a
//! connect timeout, a blocked UDP ASSOCIATE, and blocked udpreply datagrams. (§4.3,
//! 4.4, 4.5, 4.6 and 4.10 are in bind.golden, bind-blocked-and-timeout.golden,
//! variants.golden and udp-pysocks.golden.)

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::support::*;

fn records_of(p: &dyn Server, known: &[(u16, &str)]) -> String {
    let mut k = known.to_vec();
    k.push((p.addr().port(), "PROXY"));
    normalize(&p.records(), &k)
}

#[test]
fn s4_1_connection_blocked_before_socks() {
    assert_golden("seed-4.1.golden", &s4_1(Impl::Ferrosocks));
}

/// seed-4.1.golden.
pub fn s4_1(imp: Impl) -> String {
    let p = imp.start(&conf("connect").replace("client pass", "client block"));
    assert_eq!(Raw::connect(p.addr()).read_to_close(), b"");
    p.wait_for("the block", |m| m.contains("tcp/accept ]:"));
    records_of(&*p, &[])
}

#[test]
fn s4_2_blocked_bind() {
    assert_golden("seed-4.2.golden", &s4_2(Impl::Ferrosocks));
}

/// seed-4.2.golden.
pub fn s4_2(imp: Impl) -> String {
    let conf = conf("connect disconnect").replace("socks pass {", "socks block {\n    from: 0/0 to: 0/0\n    command: bind\n    log: connect\n}\nsocks pass {");
    let p = imp.start(&conf);
    let mut c = Raw::connect(p.addr());
    c.send(&[5, 1, 0]);
    assert_eq!(c.read_exact(2), [5, 0]);
    c.send(&[5, 2, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]);
    assert_eq!(c.read_exact(2), [5, 0x02]);
    p.wait_for("the client line", |m| m.contains("tcp/accept ]:"));
    records_of(&*p, &[])
}

#[test]
fn s4_7_connect_via_server_chaining() {
    assert_golden("seed-4.7.golden", &s4_7(Impl::Ferrosocks));
}

/// seed-4.7.golden.
pub fn s4_7(imp: Impl) -> String {
    let echo = Helper::echo();
    let upstream = imp.start(&conf("connect"));
    let p = imp.start(&format!(
        "{}route {{\n    from: 0/0 to: 0/0 via: 127.0.0.1 port = {}\n    proxyprotocol: socks_v5\n}}\n",
        conf("connect disconnect ioop"),
        upstream.addr().port()
    ));
    let (mut c, reply) = Raw::connect_v4(p.addr(), echo.addr);
    assert_eq!(reply[1], 0);
    c.send(b"4444");
    assert_eq!(c.read_exact(4), b"4444");
    c.0.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(c.read_to_close().is_empty());
    p.wait_for("the summary", |m| m.contains("tcp/accept ]:"));
    records_of(
        &*p,
        &[
            (echo.addr.port(), "TARGET"),
            (upstream.addr().port(), "NEXTPROXY"),
        ],
    )
}

#[test]
fn s4_8_connect_timeout() {
    assert_golden("seed-4.8.golden", &s4_8(Impl::Ferrosocks));
}

/// seed-4.8.golden.
pub fn s4_8(imp: Impl) -> String {
    let hole = Blackhole::new();
    let target = hole.addr;
    let p = imp.start(
        &conf("connect disconnect error")
            .replace("socksmethod: none", "socksmethod: none\ntimeout.connect: 1"),
    );
    let (_, reply) = Raw::connect_v4(p.addr(), target);
    assert_eq!(reply[1], 0x06);
    p.wait_for("the client summary", |m| m.contains("tcp/accept ]:"));
    records_of(&*p, &[(target.port(), "TARGET")])
}

#[test]
fn s4_9_blocked_udp_associate() {
    assert_golden("seed-4.9.golden", &s4_9(Impl::Ferrosocks));
}

/// seed-4.9.golden.
pub fn s4_9(imp: Impl) -> String {
    let conf = conf("connect disconnect").replace("socks pass {", "socks block {\n    from: 0/0 to: 0/0\n    command: udpassociate\n    log: connect\n}\nsocks pass {");
    let p = imp.start(&conf);
    let (_c, reply) = associate(p.addr(), "0.0.0.0:0".parse().unwrap());
    assert_eq!(reply[1], 0x02);
    p.wait_for("the client line", |m| m.contains("tcp/accept ]:"));
    records_of(&*p, &[])
}

#[test]
fn s4_11_udp_associate_with_blocked_udpreply() {
    assert_golden("seed-4.11.golden", &s4_11(Impl::Ferrosocks));
}

/// seed-4.11.golden.
pub fn s4_11(imp: Impl) -> String {
    let target = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tport = target.local_addr().unwrap().port();
    let conf = conf("connect disconnect ioop").replace(
        "socks pass {",
        "socks block {\n    from: 0/0 to: 0/0\n    command: udpreply\n    log: connect ioop\n}\nsocks pass {",
    );
    let p = imp.start(&conf.replace(
        "socks pass {\n    from: 127.0.0.0/8 to: 0/0\n",
        "socks pass {\n    from: 127.0.0.0/8 to: 0/0\n    udp.portrange: 40000-40999\n",
    ));
    let me = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (ctl, reply) = associate(p.addr(), me.local_addr().unwrap());
    assert_eq!(reply[1], 0);
    let relay = SocketAddr::from((
        [reply[4], reply[5], reply[6], reply[7]],
        u16::from_be_bytes([reply[8], reply[9]]),
    ));
    target
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    me.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut dgram = vec![0, 0, 0, 1, 127, 0, 0, 1];
    dgram.extend_from_slice(&tport.to_be_bytes());
    dgram.extend_from_slice(b"ping");
    let mut pext = 0;
    // As in the seed: three tries, each reply blocked.
    for _ in 0..3 {
        me.send_to(&dgram, relay).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = target.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        pext = from.port();
        target.send_to(b"pong", from).unwrap();
        assert!(
            me.recv_from(&mut buf).is_err(),
            "a blocked reply reached the client"
        );
    }
    // Dante 1.4.2 does not apply a socks rule's udp.portrange to the external socket.
    assert!(
        imp == Impl::Dante || (40000..=40999).contains(&pext),
        "udp.portrange not honoured: {pext}"
    );
    drop(ctl);
    p.wait_for("the client summary", |m| m.contains("tcp/accept ]:"));
    let known = [
        (tport, "TARGET"),
        (pext, "PROXY-EXT"),
        (relay.port(), "PROXY-INTUDP"),
        (me.local_addr().unwrap().port(), "CLIENT-UDP"),
    ];
    records_of(&*p, &known)
}
