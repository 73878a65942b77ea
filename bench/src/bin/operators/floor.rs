//! `operators cost --floor`: the least the operators' notifications can cost the machine.
//!
//! The operators' proxy sends every session's three `>CLIENT:` blocks and its `>LOG:`
//! line (about 1.4 KB) to a management client that reads them, on the same two cores as
//! the proxy, its load and its target. [`Pump`] moves those bytes alone, with no proxy
//! work at all: a writer thread sends prebuilt session texts over a loopback TCP
//! connection, one write per 20 ms as the management interface's outbox does, at the
//! rate the proxy beside it serves sessions; a reader thread reads and counts the lines
//! as the benchmark's management client does. What it costs the connection rate of a
//! plain proxy is the floor under the operators' cost on this machine: the part that no
//! change to the proxy's code can remove while the interface sends those bytes.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{read_lines, thread_cpu_seconds, Received};
use ferrosocks_bench::procs::sleep;

/// How often the writer sends what is due (the management outbox's period).
const PERIOD: Duration = Duration::from_millis(20);

/// One session's notifications as the management interface sends them (a CONNECT
/// session at rule 1 from and to 127.0.0.1), the `>LOG:` line padded so that a session
/// is `bytes` long.
pub(super) fn session_text(cid: u64, bytes: usize) -> Vec<u8> {
    let env = |extra: &str| {
        format!(
            ">CLIENT:ENV,n_clients=50\r\n>CLIENT:ENV,untrusted_port=58936\r\n>CLIENT:ENV,untrusted_ip=127.0.0.1\r\n>CLIENT:ENV,auth_method=none\r\n>CLIENT:ENV,command=connect\r\n>CLIENT:ENV,target=127.0.0.1:41386\r\n>CLIENT:ENV,rule=1\r\n>CLIENT:ENV,time_unix=1796120831\r\n{extra}>CLIENT:ENV,END\r\n"
        )
    };
    let established = ">CLIENT:ENV,trusted_port=58936\r\n>CLIENT:ENV,trusted_ip=127.0.0.1\r\n>CLIENT:ENV,ifconfig_pool_remote_ip=127.0.0.1\r\n";
    let ended = ">CLIENT:ENV,time_duration=0\r\n>CLIENT:ENV,bytes_received=32\r\n>CLIENT:ENV,bytes_sent=32\r\n>CLIENT:ENV,reason=client closed\r\n";
    let mut t = format!(">CLIENT:CONNECT,{cid},0\r\n{}", env(""));
    t += &format!(">CLIENT:ESTABLISHED,{cid}\r\n{}", env(established));
    t += &format!(">CLIENT:DISCONNECT,{cid}\r\n{}", env(ended));
    let log = ">LOG:1796120831,I,pass(1): tcp/connect ]: 32 -> 127.0.0.1.58936 127.0.0.1.1080 -> 32, 32 -> 127.0.0.1.41387 127.0.0.1.41386 -> 32: local client closed.  Session duration: 0s";
    t += log;
    let pad = bytes.saturating_sub(t.len() + 2);
    t.extend(std::iter::repeat_n('.', pad));
    t += "\r\n";
    t.into_bytes()
}

/// The notification bytes of a proxy's sessions, moved between two threads of this
/// process while the proxy beside it serves them.
pub(super) struct Pump {
    stop: Arc<AtomicBool>,
    /// Sessions per second to send for while on; 0 while off.
    rate: Arc<AtomicU64>,
    writer: JoinHandle<std::io::Result<(u64, f64)>>,
    reader: JoinHandle<std::io::Result<Received>>,
}

/// What a pump sent and received.
pub(super) struct Pumped {
    pub(super) sessions: u64,
    pub(super) writer_cpu_secs: f64,
    pub(super) received: Received,
}

impl Pump {
    /// Connects the two threads; sends nothing until [`Pump::on`].
    pub(super) fn start(bytes_per_session: usize) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let rate = Arc::new(AtomicU64::new(0));
        let reader = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || read_all(TcpStream::connect(addr)?, &stop))
        };
        let (out, _) = listener.accept()?;
        out.set_nodelay(true)?;
        let writer = {
            let (stop, rate) = (Arc::clone(&stop), Arc::clone(&rate));
            std::thread::spawn(move || write_due(out, &stop, &rate, bytes_per_session))
        };
        Ok(Self {
            stop,
            rate,
            writer,
            reader,
        })
    }

    /// Sends for `sessions_per_sec` sessions a second from now on.
    pub(super) fn on(&self, sessions_per_sec: f64) {
        self.rate
            .store(sessions_per_sec.max(1.0) as u64, Ordering::Relaxed);
    }

    pub(super) fn off(&self) {
        self.rate.store(0, Ordering::Relaxed);
    }

    pub(super) fn finish(self) -> std::io::Result<Pumped> {
        self.stop.store(true, Ordering::Relaxed);
        let (sessions, writer_cpu_secs) = self
            .writer
            .join()
            .map_err(|_| std::io::Error::other("the pump's writer panicked"))??;
        let received = self
            .reader
            .join()
            .map_err(|_| std::io::Error::other("the pump's reader panicked"))??;
        Ok(Pumped {
            sessions,
            writer_cpu_secs,
            received,
        })
    }
}

/// Every [`PERIOD`], writes the sessions due since the rate was set, in one write.
fn write_due(
    mut out: TcpStream,
    stop: &AtomicBool,
    rate: &AtomicU64,
    bytes_per_session: usize,
) -> std::io::Result<(u64, f64)> {
    let block = session_text(0, bytes_per_session);
    let mut batch = Vec::new();
    let (mut sent, mut since, mut rate_now) = (0u64, Instant::now(), 0u64);
    let mut total = 0u64;
    while !stop.load(Ordering::Relaxed) {
        sleep(PERIOD);
        let r = rate.load(Ordering::Relaxed);
        if r != rate_now {
            (rate_now, sent, since) = (r, 0, Instant::now());
        }
        if r == 0 {
            continue;
        }
        let due = (since.elapsed().as_secs_f64() * r as f64) as u64;
        batch.clear();
        for _ in sent..due {
            batch.extend_from_slice(&block);
        }
        out.write_all(&batch)?;
        total += due - sent;
        sent = due;
    }
    Ok((total, thread_cpu_seconds()))
}

/// Reads and counts lines until `stop`, as the benchmark's management client does.
fn read_all(mut s: TcpStream, stop: &AtomicBool) -> std::io::Result<Received> {
    let mut r = Received::default();
    let mut buf = vec![0u8; 1 << 20];
    let forever = Instant::now() + Duration::from_secs(24 * 3600);
    read_lines(&mut s, &mut buf, stop, forever, &mut r)?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session's text is the asked length, whole lines, three blocks and a `>LOG:`.
    #[test]
    fn a_session_text_is_whole_lines_of_the_asked_length() {
        let t = session_text(7, 1392);
        assert_eq!(t.len(), 1392);
        let mut r = Received::default();
        let text = String::from_utf8(t).unwrap();
        assert!(text.ends_with("\r\n"));
        for l in text.split("\r\n").filter(|l| !l.is_empty()) {
            r.line(l.as_bytes());
        }
        assert_eq!((r.client_blocks, r.log, r.other), (3, 1, 0));
    }

    /// The pump sends at the rate it is given, only while on, and its reader gets it all.
    #[test]
    fn the_pump_sends_the_sessions_due_while_on() {
        let pump = Pump::start(1392).unwrap();
        let t0 = Instant::now();
        pump.on(2000.0);
        sleep(Duration::from_millis(500));
        pump.off();
        let on_for = t0.elapsed();
        sleep(Duration::from_millis(200));
        let p = pump.finish().unwrap();
        // The writer notices each change at its next 20 ms tick.
        let most = 2000.0 * (on_for + Duration::from_millis(200)).as_secs_f64();
        assert!(
            p.sessions > 0 && p.sessions as f64 <= most,
            "{}",
            p.sessions
        );
        assert_eq!(p.received.client_blocks, 3 * p.sessions);
        assert_eq!(p.received.log, p.sessions);
        assert_eq!(p.received.bytes, 1392 * p.sessions);
    }

    /// Lines cut across reads (a CRLF split between two, a line longer than one read)
    /// are counted once each, whole.
    #[test]
    fn lines_split_across_reads_are_counted_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sender = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let long = format!(">LOG:1,I,{}\r\n", "x".repeat(3000));
            let text = format!(">CLIENT:CONNECT,1,0\r\n>CLIENT:ENV,END\r\n{long}>BYTECOUNT_CLI:1,2,3\r\n>INFO:5 notification(s) dropped\r\n");
            for piece in text.as_bytes().chunks(7) {
                s.write_all(piece).unwrap();
                s.flush().unwrap();
                sleep(Duration::from_micros(200));
            }
        });
        let stop = AtomicBool::new(false);
        let mut s = TcpStream::connect(addr).unwrap();
        let mut r = Received::default();
        let mut buf = vec![0u8; 1 << 12];
        read_lines(
            &mut s,
            &mut buf,
            &stop,
            Instant::now() + Duration::from_secs(30),
            &mut r,
        )
        .unwrap();
        sender.join().unwrap();
        assert_eq!(
            (r.client_blocks, r.log, r.bytecount, r.dropped, r.other),
            (1, 1, 1, 5, 0)
        );
    }
}
