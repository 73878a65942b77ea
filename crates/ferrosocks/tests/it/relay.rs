//! The relay's byte paths end to end: a direction starts buffered (16 KiB reads) and
//! switches to splice(2) through a 1 MiB pipe after a full read, so these tests cross
//! both limits, one byte either side, in both directions, and pass a half-close on
//! after spliced data while the other direction keeps flowing.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use crate::support::*;

/// The byte at `offset` of a stream: every position has its own value modulo 251 (a
/// prime, so that no power-of-two chunk repeats), so a lost, doubled or reordered chunk
/// shows.
fn pattern(offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((offset + i) % 251) as u8)
        .collect()
}

/// Sizes around the buffered read (16 KiB) and the pipe (1 MiB), then a large one.
const SIZES: [usize; 9] = [
    1,
    16383,
    16384,
    16385,
    65536,
    (1 << 20) - 1,
    1 << 20,
    (1 << 20) + 1,
    (3 << 20) + 7,
];

#[test]
fn every_byte_arrives_in_order_across_the_buffer_and_pipe_sizes() {
    let p = Proxy::start(&conf("disconnect"));
    let echo = Helper::echo();
    let (r, reply) = Raw::connect_v4(p.addr, echo.addr);
    assert_eq!(reply[1], 0x00);
    let mut reader = r.0.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = r.0;
    let total: u64 = SIZES.iter().map(|&n| n as u64).sum();
    // Writes and reads at once: the echo's send buffer and ours fill otherwise.
    let sending = thread::spawn(move || {
        let mut at = 0u64;
        for n in SIZES {
            writer.write_all(&pattern(at, n)).unwrap();
            at += n as u64;
        }
        writer
    });
    let mut at = 0u64;
    for n in SIZES {
        let mut got = vec![0u8; n];
        reader
            .read_exact(&mut got)
            .unwrap_or_else(|e| panic!("reading {n} bytes at offset {at}: {e}"));
        let want = pattern(at, n);
        if got != want {
            let first = got.iter().zip(&want).position(|(a, b)| a != b).unwrap();
            panic!(
                "chunk of {n} at {at}: first wrong byte at {}",
                at + first as u64
            );
        }
        at += n as u64;
    }
    let writer = sending.join().unwrap();
    writer.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{} bytes after the echo", rest.len());
    // The summary counts every byte in each of the four places.
    let m = p.wait_for("the summary", |m| m.contains("tcp/connect ]: "));
    let line = m.iter().find(|m| m.contains("tcp/connect ]: ")).unwrap();
    assert_eq!(
        line.matches(&total.to_string()).count(),
        4,
        "{total} bytes each way in: {line}"
    );
}

/// Reads to end of file, then sends [`BACK`] bytes of the pattern and closes: the
/// target's direction flows only after the client's half-close came through.
fn bulk_after_eof(mut c: TcpStream, received: &Mutex<Vec<u8>>) {
    let mut n = 0u64;
    let mut buf = vec![0u8; 65536];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(_) => return,
        }
    }
    received
        .lock()
        .unwrap()
        .extend_from_slice(n.to_string().as_bytes());
    let _ = c.write_all(&pattern(0, BACK));
    let _ = c.shutdown(Shutdown::Both);
}

const BACK: usize = (2 << 20) + 3;

#[test]
fn a_half_close_after_spliced_data_passes_on_and_the_other_way_still_flows() {
    let p = Proxy::start(&conf("disconnect"));
    let target = Helper::start(bulk_after_eof);
    let (mut r, reply) = Raw::connect_v4(p.addr, target.addr);
    assert_eq!(reply[1], 0x00);
    r.0.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let up = (2 << 20) + 5;
    r.send(&pattern(0, up));
    r.0.shutdown(Shutdown::Write).unwrap();
    let back = r.read_to_close();
    assert_eq!(back.len(), BACK, "bytes after the half-close");
    assert!(back == pattern(0, BACK), "the bytes back differ");
    assert_eq!(
        String::from_utf8(target.received.lock().unwrap().clone()).unwrap(),
        up.to_string()
    );
    p.wait_for("the summary", |m| {
        m.contains("tcp/connect ]: ") && m.contains(&format!("-> {up}"))
    });
}
