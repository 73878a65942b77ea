//! The black-box wire fuzzer: whole client conversations (greeting, RFC 1929, request,
//! SOCKS4/4a, BIND, UDP ASSOCIATE and a datagram, early data) mutated — truncated, a
//! length byte lying, NULs, a byte changed, messages duplicated or swapped, delivered
//! whole, split or byte by byte, ended by a half-close, a close or a reset — against the
//! real binary. Every reply is judged against what a correct server may send, computed
//! by an oracle from the bytes the client really sent (socks-proto's decoders and the
//! configuration below): the method, RFC 1929 status and reply a well-formed message
//! gets, no success to a malformed or unknown request, no byte after a failure reply,
//! the echo intact. Every 1,000 cases (and at the end) the server must be alive and
//! serving, its descriptors back to where they were, and every log line it wrote since
//! the last check a Dante record that round-trips or a message with its severity word.
//!
//! It runs for `FERROSOCKS_WIRE_FUZZ_SECS` seconds (60 by default, as in CI) from seed
//! `FERROSOCKS_WIRE_FUZZ_SEED` (fixed by default); each case's randomness comes from the
//! seed and its number, so a failure, printed with both, replays alone with
//! `FERROSOCKS_WIRE_FUZZ_CASE=N`.
#![allow(clippy::disallowed_methods)] // std::thread::sleep: no tokio here

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use socks_proto::{
    decode_greeting, decode_request, decode_request4, decode_userpass, Command, Command4, Decoded,
    Host, Method,
};

use crate::support::*;

const DEFAULT_SEED: u64 = 0x5eed_f022_0015;

/// xorshift64*: small, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, case: u64) -> Self {
        let mut r = Self((seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
        for _ in 0..4 {
            r.next();
        }
        r
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// True with probability `n` in 16.
    fn chance(&mut self, n: u64) -> bool {
        self.next() % 16 < n
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// The servers a conversation may reach.
struct World {
    echo: SocketAddr,
    udp_echo: SocketAddr,
}

fn ipv4_target(a: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(a) = a else {
        panic!("IPv4 only")
    };
    let mut v = vec![1];
    v.extend_from_slice(&a.ip().octets());
    v.extend_from_slice(&a.port().to_be_bytes());
    v
}

/// A well-formed conversation, as messages (each a unit for duplication and swapping).
fn conversation(rng: &mut Rng, w: &World) -> Vec<Vec<u8>> {
    let payload: Vec<u8> = (0..rng.below(40)).map(|_| rng.byte()).collect();
    match rng.below(7) {
        // SOCKS5 CONNECT, no authentication, early data.
        0 | 1 => {
            let mut req = vec![5, 1, 0];
            req.extend(ipv4_target(w.echo));
            vec![vec![5, 1, 0], req, payload]
        }
        // SOCKS5 with RFC 1929.
        2 => {
            let mut req = vec![5, 1, 0];
            req.extend(ipv4_target(w.echo));
            let (user, pass): (&[u8], &[u8]) = if rng.chance(8) {
                (b"alice", b"pw")
            } else {
                (b"alice", b"wrong")
            };
            let mut up = vec![1, user.len() as u8];
            up.extend_from_slice(user);
            up.push(pass.len() as u8);
            up.extend_from_slice(pass);
            vec![vec![5, 1, 2], up, req, payload]
        }
        // SOCKS5 CONNECT by name.
        3 => {
            let mut req = vec![5, 1, 0, 3, 9];
            req.extend_from_slice(b"localhost");
            req.extend_from_slice(&w.echo.port().to_be_bytes());
            vec![vec![5, 2, 0, 2], req, payload]
        }
        // SOCKS4 / SOCKS4a CONNECT.
        4 => {
            let mut req = vec![4, 1];
            req.extend_from_slice(&w.echo.port().to_be_bytes());
            if rng.chance(8) {
                req.extend_from_slice(&[127, 0, 0, 1]);
                req.extend_from_slice(b"fuzz\0");
            } else {
                req.extend_from_slice(&[0, 0, 0, 1]);
                req.extend_from_slice(b"fuzz\0localhost\0");
            }
            vec![req, payload]
        }
        // BIND.
        5 => {
            let mut req = vec![5, 2, 0];
            req.extend(ipv4_target("127.0.0.1:0".parse().unwrap()));
            vec![vec![5, 1, 0], req, payload]
        }
        // UDP ASSOCIATE (a datagram follows on UDP).
        _ => {
            let mut req = vec![5, 3, 0];
            req.extend(ipv4_target("0.0.0.0:0".parse().unwrap()));
            vec![vec![5, 1, 0], req]
        }
    }
}

/// Mutates a conversation; returns what was done (for the failure message).
fn mutate(rng: &mut Rng, msgs: &mut Vec<Vec<u8>>) -> String {
    let mut done = Vec::new();
    for _ in 0..rng.below(3) {
        match rng.below(7) {
            0 if msgs.len() > 1 => {
                let i = rng.below(msgs.len() - 1);
                msgs.swap(i, i + 1);
                done.push(format!("swap {i}"));
            }
            1 => {
                let i = rng.below(msgs.len());
                let m = msgs[i].clone();
                msgs.insert(i, m);
                done.push(format!("duplicate {i}"));
            }
            2 => {
                // A length byte lies: the second byte of a greeting, ULEN/PLEN, or a
                // domain name's length.
                let i = rng.below(msgs.len());
                let m = &mut msgs[i];
                let at = match m.first() {
                    Some(5) | Some(1) if m.len() > 1 => 1,
                    _ if m.len() > 4 && m[3] == 3 => 4,
                    _ => 0,
                };
                if let Some(b) = m.get_mut(at) {
                    let d = [1u8, 2, 255, 128][rng.below(4)];
                    *b = b.wrapping_add(d);
                    done.push(format!("length lie {i}:{at}"));
                }
            }
            3 => {
                let i = rng.below(msgs.len());
                let at = rng.below(msgs[i].len() + 1);
                msgs[i].insert(at, 0);
                done.push(format!("NUL {i}:{at}"));
            }
            4 => {
                let i = rng.below(msgs.len());
                if !msgs[i].is_empty() {
                    let at = rng.below(msgs[i].len());
                    msgs[i][at] = rng.byte();
                    done.push(format!("byte {i}:{at}"));
                }
            }
            _ => {
                let total: usize = msgs.iter().map(Vec::len).sum();
                let mut keep = rng.below(total + 1);
                for m in msgs.iter_mut() {
                    let k = keep.min(m.len());
                    m.truncate(k);
                    keep -= k;
                }
                done.push("truncate".into());
            }
        }
    }
    done.join(", ")
}

/// What the client may receive: bytes, `None` where any byte will do (addresses).
#[derive(Default)]
struct Expect {
    bytes: Vec<Option<u8>>,
    /// Whatever comes after `bytes` is free (a reply the oracle cannot foresee).
    open_end: bool,
    /// A success reply was predicted (for UDP: the relay address follows).
    udp_relay: bool,
}

impl Expect {
    fn exact(&mut self, b: &[u8]) {
        self.bytes.extend(b.iter().map(|&b| Some(b)));
    }
    fn any(&mut self, n: usize) {
        self.bytes.extend(std::iter::repeat_n(None, n));
    }
}

/// What a correct server sends for `sent` (all of it, then a half-close).
fn oracle(sent: &[u8], w: &World) -> Expect {
    let mut e = Expect::default();
    match sent.first() {
        Some(5) => socks5(sent, w, &mut e),
        Some(4) => socks4(sent, w, &mut e),
        _ => {}
    }
    e
}

fn socks5(sent: &[u8], w: &World, e: &mut Expect) {
    let mut rest = match decode_greeting(sent) {
        Ok(Decoded::Done { msg, used }) => {
            // socksmethod: none username, in that order of preference.
            if msg.methods.contains(&Method::NONE) {
                e.exact(&[5, 0]);
            } else if msg.methods.contains(&Method::USERNAME) {
                e.exact(&[5, 2]);
                match decode_userpass(&sent[used..]) {
                    Ok(Decoded::Done { msg: up, used: u }) => {
                        if up.username == b"alice" && up.password == b"pw" {
                            e.exact(&[1, 0]);
                            return request5(&sent[used + u..], w, e);
                        }
                        e.exact(&[1, 1]);
                        return;
                    }
                    Ok(Decoded::NeedMore { .. }) => return,
                    Err(_) => return e.exact(&[1, 1]),
                }
            } else {
                return e.exact(&[5, 0xff]);
            }
            &sent[used..]
        }
        Ok(Decoded::NeedMore { .. }) => return,
        // A greeting that offers no method at all.
        Err(_) => return e.exact(&[5, 0xff]),
    };
    request5(std::mem::take(&mut rest), w, e);
}

fn request5(sent: &[u8], w: &World, e: &mut Expect) {
    match decode_request(sent) {
        Ok(Decoded::Done { msg, used }) => {
            let to_echo = matches!(&msg.target.host, Host::Ip(ip) if SocketAddr::new(*ip, msg.target.port) == w.echo)
                || matches!(&msg.target.host, Host::Domain(d) if d == "localhost" && msg.target.port == w.echo.port());
            match msg.command {
                Command::Connect if to_echo => {
                    e.exact(&[5, 0, 0, 1]);
                    e.any(6);
                    e.exact(&sent[used..]);
                }
                Command::Bind => {
                    e.exact(&[5, 0, 0, 1]);
                    e.any(6);
                    // The client leaves (or talks) before a remote host comes: closed
                    // with a failure reply, or without one on end of file.
                    e.open_end = true;
                }
                Command::UdpAssociate => {
                    e.exact(&[5, 0, 0, 1]);
                    e.any(6);
                    e.udp_relay = true;
                    e.open_end = true;
                }
                Command::Other(_) => {
                    e.exact(&[5, 7, 0, 1]);
                    e.any(6);
                }
                // Elsewhere: refused, unreachable, or a listener that happens to be
                // there; the judge only holds it to "nothing after a failure".
                Command::Connect => e.open_end = true,
            }
        }
        Ok(Decoded::NeedMore { .. }) => {}
        Err(err) => {
            e.exact(&[5, err.reply_code().as_u8(), 0, 1]);
            e.any(6);
        }
    }
}

fn socks4(sent: &[u8], w: &World, e: &mut Expect) {
    match decode_request4(sent) {
        Ok(Decoded::Done { msg, used }) => {
            let to_echo = msg.target.port == w.echo.port()
                && match &msg.target.host {
                    Host::Ip(ip) => SocketAddr::new(*ip, msg.target.port) == w.echo,
                    Host::Domain(d) => d == "localhost",
                };
            match msg.command {
                Command4::Connect if to_echo => {
                    e.exact(&[0, 0x5a]);
                    e.any(6);
                    e.exact(&sent[used..]);
                }
                Command4::Other(_) => {
                    e.exact(&[0, 0x5b]);
                    e.any(6);
                }
                _ => e.open_end = true,
            }
        }
        Ok(Decoded::NeedMore { .. }) => {}
        Err(_) => {
            e.exact(&[0, 0x5b]);
            e.any(6);
        }
    }
}

/// Is `got` what `e` allows? A reply that is no success must be the last thing sent.
fn judge(got: &[u8], e: &Expect) -> Result<(), String> {
    let fixed = e.bytes.len().min(got.len());
    for (i, (g, want)) in got.iter().zip(&e.bytes).enumerate().take(fixed) {
        if let Some(w) = want {
            if g != w {
                return Err(format!("byte {i} is {g:#04x}, {w:#04x} expected"));
            }
        }
    }
    if got.len() < e.bytes.len() {
        return Err(format!("{} bytes, {} expected", got.len(), e.bytes.len()));
    }
    if got.len() > e.bytes.len() && !e.open_end {
        return Err(format!(
            "{} bytes after the {} expected",
            got.len() - e.bytes.len(),
            e.bytes.len()
        ));
    }
    // Open end: whatever follows the predicted part is one reply, and nothing follows a
    // failure reply.
    if e.open_end && got.len() > e.bytes.len() {
        let tail = &got[e.bytes.len()..];
        let (failed, len) = match tail {
            [5, rep, _, 1, ..] => (*rep != 0, 10),
            [5, rep, _, 4, ..] => (*rep != 0, 22),
            [0, rep, ..] => (*rep != 0x5a, 8),
            _ => (false, tail.len()),
        };
        if failed && tail.len() > len {
            return Err(format!("{} bytes after a failure reply", tail.len() - len));
        }
    }
    Ok(())
}

/// One case: the conversation, mutated, sent, and the reply judged.
fn run_case(proxy: SocketAddr, w: &World, rng: &mut Rng) -> Result<(), String> {
    let mut msgs = conversation(rng, w);
    let mutations = if rng.chance(11) {
        mutate(rng, &mut msgs)
    } else {
        String::new()
    };
    let sent: Vec<u8> = msgs.concat();
    let end = rng.below(8);
    let byte_by_byte = rng.chance(3);
    let what = || format!("sent {sent:02x?} ({mutations}), end {end}");
    let mut c = TcpStream::connect(proxy).map_err(|e| format!("connect: {e}"))?;
    c.set_nodelay(true).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let wrote = if byte_by_byte {
        sent.chunks(1).try_for_each(|b| c.write_all(b))
    } else {
        let cut = rng.below(sent.len() + 1);
        c.write_all(&sent[..cut])
            .and_then(|()| c.write_all(&sent[cut..]))
    };
    // The server may close on a bad message before all of it was written.
    if let Err(e) = wrote {
        if !matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) {
            return Err(format!("write: {e}; {}", what()));
        }
    }
    match end {
        // Reset: the server must only survive it.
        0 => {
            socket2::SockRef::from(&c)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            return Ok(());
        }
        // Close without reading.
        1 => return Ok(()),
        _ => {}
    }
    let expect = oracle(&sent, w);
    if expect.udp_relay {
        // A datagram through the association comes back from the UDP echo intact.
        let mut got = vec![0u8; expect.bytes.len()];
        if let Err(e) = c.read_exact(&mut got) {
            return Err(format!("no UDP ASSOCIATE reply: {e}; {}", what()));
        }
        judge(&got, &expect).map_err(|e| format!("{e}; {}", what()))?;
        let reply = &got[got.len() - 10..];
        return udp_round(rng, reply, w).map_err(|e| format!("{e}; {}", what()));
    }
    let _ = c.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => {
                return Err(format!(
                    "no end after {:?} ({e}), got {got:02x?}; {}",
                    started.elapsed(),
                    what()
                ))
            }
        }
    }
    judge(&got, &expect).map_err(|e| format!("{e}: got {got:02x?}; {}", what()))
}

/// A datagram (maybe malformed) through a granted association.
fn udp_round(rng: &mut Rng, reply: &[u8], w: &World) -> Result<(), String> {
    let relay = SocketAddr::from((
        [reply[4], reply[5], reply[6], reply[7]],
        u16::from_be_bytes([reply[8], reply[9]]),
    ));
    let me = UdpSocket::bind("127.0.0.1:0").unwrap();
    me.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut d = vec![0, 0, 0];
    d.extend(ipv4_target(w.udp_echo));
    let header = d.len();
    d.extend((0..rng.below(64)).map(|_| rng.byte()));
    let good = !rng.chance(4);
    if !good {
        let at = rng.below(d.len());
        d[at] = rng.byte();
    }
    me.send_to(&d, relay).map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 2048];
    match me.recv_from(&mut buf) {
        Ok((n, from)) => {
            if from != relay {
                return Err(format!("datagram from {from}, not the relay {relay}"));
            }
            // Whatever comes back is an intact reply from a target with a header.
            if good && buf[..n] != d[..] {
                return Err(format!("echo {:02x?} of {d:02x?}", &buf[..n]));
            }
            Ok(())
        }
        Err(_) if !good => Ok(()),
        // UDP may lose a datagram; a lost one is not a server fault.
        Err(_) => {
            let _ = header;
            Ok(())
        }
    }
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .count()
}

/// The server alive, serving, its descriptors back to `baseline`, its new log lines
/// Dante records or severity-marked messages. Returns how many messages it has.
fn checkpoint(p: &Proxy, w: &World, baseline: usize, seen: usize, at: &str) -> usize {
    assert!(
        p.child_running(),
        "{at}: the server exited; stderr:\n{}",
        p.stderr()
    );
    let (mut c, reply) = Raw::connect_v4(p.addr, w.echo);
    assert_eq!(reply[1], 0, "{at}: a good CONNECT refused");
    c.send(b"alive");
    assert_eq!(c.read_exact(5), b"alive", "{at}");
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = fd_count(p.pid());
        if n <= baseline {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{at}: {n} descriptors, {baseline} at the start:\n{:?}",
            std::fs::read_dir(format!("/proc/{}/fd", p.pid()))
                .unwrap()
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Proxy::messages checks each line's prefix (severity word included); records must
    // parse and format back to the same line.
    let m = p.messages();
    for line in &m[seen.min(m.len())..] {
        if line.starts_with("pass(") || line.starts_with("block(") {
            let r = traffic_log::Record::parse(line)
                .unwrap_or_else(|e| panic!("{at}: not a Dante record: {line}: {e}"));
            assert_eq!(&r.to_string(), line, "{at}");
        }
        assert!(!line.contains("panicked"), "{at}: {line}");
    }
    m.len()
}

#[test]
fn wire_fuzzer() {
    let env = |k: &str| std::env::var(k).ok();
    let secs: u64 = env("FERROSOCKS_WIRE_FUZZ_SECS").map_or(60, |s| s.parse().unwrap());
    let seed = env("FERROSOCKS_WIRE_FUZZ_SEED").map_or(DEFAULT_SEED, |s| {
        let s = s.trim_start_matches("0x");
        u64::from_str_radix(s, 16).expect("FERROSOCKS_WIRE_FUZZ_SEED is hexadecimal")
    });
    let only: Option<u64> = env("FERROSOCKS_WIRE_FUZZ_CASE").map(|s| s.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "alice:pw\n").unwrap();
    let echo = Helper::echo();
    let udp_echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp_echo.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 65536];
        while let Ok((n, from)) = udp_echo.recv_from(&mut b) {
            let _ = udp_echo.send_to(&b[..n], from);
        }
    });
    let w = World {
        echo: echo.addr,
        udp_echo: udp_addr,
    };
    let p = Proxy::start(&format!(
        "logoutput: @LOG@\ninternal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\n\
         socksmethod: none username\npasswordfile: {}\ntimeout.negotiate: 10\n\
         client pass {{ from: 127.0.0.0/8 to: 0/0\nlog: connect disconnect error\n}}\n\
         socks pass {{ from: 127.0.0.0/8 to: 0/0\n\
         command: connect bind bindreply udpassociate udpreply\n\
         log: connect disconnect error ioop\n}}\n",
        users.display()
    ));
    // The baseline once the first session has come and gone (lazy descriptors opened).
    checkpoint(&p, &w, usize::MAX, 0, "warm-up");
    std::thread::sleep(Duration::from_millis(200));
    let baseline = fd_count(p.pid());
    let mut seen = p.messages().len();
    let start = Instant::now();
    let mut case = only.unwrap_or(0);
    let mut ran = 0u64;
    loop {
        let mut rng = Rng::new(seed, case);
        if let Err(e) = run_case(p.addr, &w, &mut rng) {
            panic!(
                "wire fuzzer: seed {seed:#x} case {case} (FERROSOCKS_WIRE_FUZZ_SEED={seed:x} \
                 FERROSOCKS_WIRE_FUZZ_CASE={case}): {e}"
            );
        }
        ran += 1;
        case += 1;
        let done = only.is_some() || start.elapsed() >= Duration::from_secs(secs);
        if ran.is_multiple_of(1000) || done {
            let at = format!("seed {seed:#x} after case {}", case - 1);
            seen = checkpoint(&p, &w, baseline, seen, &at);
        }
        if done {
            break;
        }
    }
    eprintln!(
        "wire fuzzer: {ran} cases in {:?}, seed {seed:#x}",
        start.elapsed()
    );
    assert!(only.is_some() || ran >= 100, "only {ran} cases ran");
}
