//! The floor subject (`floorproxy`) relays correctly: bytes both ways, small and past the
//! 16 KiB switch to splice, a half-close in each direction, the greeting and the request
//! together or apart, and the error replies. Loopback only; each test starts its own
//! proxy on port 0 and ends it by its PID.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

struct Floor {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn floor(threads: usize) -> Floor {
    let mut child = Command::new(env!("CARGO_BIN_EXE_floorproxy"))
        .args(["127.0.0.1:0", "--threads", &threads.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("floorproxy starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("its address");
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Floor { child, addr }
}

fn pattern(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(u32::from(seed)) as u8)
        .collect()
}

fn timeouts(s: &TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.set_write_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
}

/// SOCKS5 CONNECT to `target` through `proxy`; `together`: greeting and request in one
/// write. Returns the stream after a success reply, or the reply code.
fn socks(proxy: SocketAddr, target: SocketAddr, together: bool) -> Result<TcpStream, u8> {
    let mut s = TcpStream::connect(proxy).expect("connect to the proxy");
    timeouts(&s);
    let SocketAddr::V4(t) = target else {
        panic!("IPv4 only")
    };
    let mut req = vec![5, 1, 0, 5, 1, 0, 1];
    req.extend_from_slice(&t.ip().octets());
    req.extend_from_slice(&t.port().to_be_bytes());
    let mut m = [0u8; 2];
    if together {
        s.write_all(&req).expect("greeting and request");
        s.read_exact(&mut m).expect("method");
    } else {
        s.write_all(&req[..3]).expect("greeting");
        s.read_exact(&mut m).expect("method");
        s.write_all(&req[3..]).expect("request");
    }
    assert_eq!(m, [5, 0]);
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).expect("reply");
    assert_eq!(reply[0], 5);
    if reply[1] == 0 {
        Ok(s)
    } else {
        Err(reply[1])
    }
}

/// A target that reads until end of file, then sends `answer` and closes; returns what
/// it read.
fn read_then_answer(answer: Vec<u8>) -> (SocketAddr, JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("address");
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        timeouts(&s);
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("read to the end");
        s.write_all(&answer).expect("answer");
        got
    });
    (addr, h)
}

/// Client sends `up`, shuts its side, then reads the whole answer: the proxy must pass
/// the half-close on and keep relaying the other way.
fn client_half_close(up: usize, down: usize, together: bool, threads: usize) {
    let f = floor(threads);
    let (target, h) = read_then_answer(pattern(2, down));
    let mut s = socks(f.addr, target, together).expect("CONNECT succeeds");
    let sent = pattern(1, up);
    let w = {
        let mut s = s.try_clone().expect("clone");
        std::thread::spawn(move || {
            s.write_all(&sent).expect("upload");
            s.shutdown(Shutdown::Write).expect("half-close");
        })
    };
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("download");
    w.join().expect("writer");
    assert_eq!(h.join().expect("target"), pattern(1, up), "upload intact");
    assert!(
        got == pattern(2, down),
        "download intact ({} bytes)",
        got.len()
    );
}

#[test]
fn small_both_ways_with_client_half_close() {
    client_half_close(41, 32, false, 1);
    client_half_close(41, 32, true, 1);
}

#[test]
fn bulk_both_ways_through_splice_with_client_half_close() {
    client_half_close(8 << 20, 8 << 20, false, 1);
    client_half_close(100_000, 3 << 20, true, 2);
}

#[test]
fn target_half_close_then_client_keeps_sending() {
    let f = floor(1);
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = l.local_addr().expect("address");
    let down = pattern(3, 5 << 20);
    let h = {
        let down = down.clone();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            timeouts(&s);
            s.write_all(&down).expect("send first");
            s.shutdown(Shutdown::Write).expect("target half-close");
            let mut got = Vec::new();
            s.read_to_end(&mut got).expect("read after the half-close");
            got
        })
    };
    let mut s = socks(f.addr, target, false).expect("CONNECT succeeds");
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read to the target's end");
    assert!(got == down, "download intact ({} bytes)", got.len());
    // The other direction still relays after the end of file came the other way.
    let up = pattern(4, 3 << 20);
    s.write_all(&up).expect("send after the half-close");
    s.shutdown(Shutdown::Write).expect("half-close");
    assert!(
        h.join().expect("target") == up,
        "upload after half-close intact"
    );
    // And the proxy closes the client's socket once both ends are done.
    let mut b = [0u8; 1];
    assert_eq!(s.read(&mut b).expect("end of file"), 0);
}

#[test]
fn error_replies() {
    let f = floor(1);
    // A refused connect: a port nobody listens on.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = l.local_addr().expect("address");
    drop(l);
    assert_eq!(socks(f.addr, dead, false).err(), Some(5));
    // A domain name: address type not supported.
    let mut s = TcpStream::connect(f.addr).expect("connect");
    timeouts(&s);
    s.write_all(&[5, 1, 0, 5, 1, 0, 3, 1, b'x', 0, 80])
        .expect("request");
    let mut r = [0u8; 12];
    s.read_exact(&mut r).expect("method and reply");
    assert_eq!(&r[..4], &[5, 0, 5, 8]);
    // No acceptable method.
    let mut s = TcpStream::connect(f.addr).expect("connect");
    timeouts(&s);
    s.write_all(&[5, 1, 2]).expect("greeting");
    let mut r = [0u8; 2];
    s.read_exact(&mut r).expect("method");
    assert_eq!(r, [5, 0xff]);
    // The proxy still serves afterwards.
    client_half_close(10, 10, true, 1);
}

#[test]
fn many_sessions_on_two_threads_all_served() {
    let f = floor(2);
    let (targets, handles): (Vec<_>, Vec<_>) = (0..64)
        .map(|i| read_then_answer(pattern(i as u8, 100 + i)))
        .unzip();
    let clients: Vec<_> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (proxy, t) = (f.addr, *t);
            std::thread::spawn(move || {
                let mut s = socks(proxy, t, i % 2 == 0).expect("CONNECT succeeds");
                s.write_all(&pattern(7, i)).expect("send");
                s.shutdown(Shutdown::Write).expect("half-close");
                let mut got = Vec::new();
                s.read_to_end(&mut got).expect("answer");
                assert_eq!(got, pattern(i as u8, 100 + i));
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().expect("target"), pattern(7, i));
    }
}

/// Greeting, request, data and end of file in one go, before any answer: the data (more
/// than the handshake buffer holds) and the half-close reach the target after the connect.
#[test]
fn early_data_and_end_of_file_with_the_request() {
    let f = floor(1);
    for len in [0, 5, 2000, 100_000] {
        let (target, h) = read_then_answer(pattern(6, 77));
        let SocketAddr::V4(t) = target else {
            panic!("IPv4 only")
        };
        let mut s = TcpStream::connect(f.addr).expect("connect to the proxy");
        timeouts(&s);
        let mut all = vec![5, 1, 0, 5, 1, 0, 1];
        all.extend_from_slice(&t.ip().octets());
        all.extend_from_slice(&t.port().to_be_bytes());
        all.extend_from_slice(&pattern(5, len));
        s.write_all(&all).expect("everything at once");
        s.shutdown(Shutdown::Write).expect("half-close");
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("answers");
        assert_eq!(
            &got[..4],
            &[5, 0, 5, 0],
            "method and success ({len} bytes early)"
        );
        assert!(
            got[12..] == pattern(6, 77),
            "answer intact ({len} bytes early)"
        );
        assert!(
            h.join().expect("target") == pattern(5, len),
            "early data intact ({len})"
        );
    }
}
