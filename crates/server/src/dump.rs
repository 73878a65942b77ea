//! The SIGUSR1 status dump, in Dante 1.4's shape (reference/dante.md §6), at info level
//! in SYSTEM:
//!
//! ```text
//! ferrosocks v0.1.0 up 0 days, 0:05, a: 12, h: 11 c: 2  (no comma before c:, as in Dante 1.4.2)
//! max limits: files: 1024 (1003 free)
//! read-only latency statistics based on last 4 packets: min/max/median/average/last/stddev: 15/412/26/119/21/169 (us)
//! i/o latency statistics based on last 4 packets: min/max/median/average/last/stddev: 27/536/36/159/27/218 (us)
//! 127.0.0.1.40000 127.0.0.1.1080: negotiating for 3s
//! 127.0.0.1.40002: tcp connect-request in progress for 1s
//! tcp: CLIENT PROXY-INT <-> PROXY-EXT TARGET: age: 3s, idle: 3s, bytes transferred: 5 (+ 0 buffered (0 + 0 + 0)) <-> 5 (+ 0 buffered (0 + 0 + 0))
//! udp: CLIENT-UDP PROXY-INTUDP <-> PROXY-EXT TARGET: age: 3s, idle: 3s, bytes transferred: 14 <-> 34, packets: 2 <-> 2
//! ```
//! Bytes transferred: written to the target `<->` written to the client. Buffered:
//! unread bytes in the other socket + ferrosocks' own buffer (always 0: it copies as it
//! reads) + unsent bytes in this socket. Age is the time since the accept, idle the time
//! since bytes last moved (since the accept while none has), both on the registry's clock
//! at one `now`, so idle never exceeds age.

use logsys::{Level, Subsystem};

use crate::registry::{now_ms, Phase};
use crate::sockinfo::{tcp_info_fd, unread, unsent};
use crate::tlog::{client_side, ep};
use crate::{Server, VERSION_LINE};

impl Server {
    /// Writes the status dump to the log.
    pub fn dump(&self) {
        let log = &self.shared.logger;
        let r = &self.shared.registry;
        let line = |s: String| log.at(Subsystem::SYSTEM, Level::Info, s);
        let up = r.started.elapsed().as_secs();
        let totals = r.totals();
        let days = up / 86_400;
        line(format!(
            "{VERSION_LINE} up {days} day{}, {}:{:02}, a: {}, h: {} c: {}",
            if days == 1 { "" } else { "s" },
            up % 86_400 / 3600,
            up % 3600 / 60,
            totals.accepted,
            totals.handed,
            r.len()
        ));
        if let Some(limits) = file_limits() {
            line(limits);
        }
        for (name, lat) in [("read-only", &r.read_latency), ("i/o", &r.io_latency)] {
            let stats = lat.lock().unwrap_or_else(|p| p.into_inner()).stats();
            line(match stats {
                Some((n, s)) => format!(
                    "{name} latency statistics based on last {n} packets: min/max/median/average/last/stddev: {}/{}/{}/{}/{}/{} (us)",
                    s[0], s[1], s[2], s[3], s[4], s[5]
                ),
                None => format!("no {name} latency information available (yet)"),
            });
        }
        let now = now_ms();
        for e in r.entries() {
            let age = e.age_secs(now);
            e.with_phase(now, |phase, internal, idle, traffic| match phase {
                Phase::Negotiating => line(format!(
                    "{}: negotiating for {age}s",
                    client_side(&ep(e.client), internal)
                )),
                Phase::Requesting(what) => {
                    line(format!("{}: {what} in progress for {age}s", ep(e.client)));
                }
                Phase::Tcp(t) => {
                    let (to_target, to_client) =
                        (traffic.to_target.bytes, traffic.to_client.bytes);
                    let buffered = |from: Option<i32>, to: Option<i32>| {
                        let k1 = from.and_then(unread);
                        let k3 = to.and_then(unsent);
                        let show =
                            |k: Option<u64>| k.map_or_else(|| "?".to_string(), |k| k.to_string());
                        let total = k1.unwrap_or(0) + k3.unwrap_or(0);
                        format!("(+ {total} buffered ({} + 0 + {}))", show(k1), show(k3))
                    };
                    let (cfd, tfd) = t.fds.map_or((None, None), |(c, t)| (Some(c), Some(t)));
                    line(format!(
                        "tcp: {} <-> {}: age: {age}s, idle: {idle}s, bytes transferred: {to_target} {} <-> {to_client} {}",
                        t.src,
                        t.dst,
                        buffered(cfd, tfd),
                        buffered(tfd, cfd)
                    ));
                    if let (true, Some((c, t))) = (t.tcpinfo, t.fds) {
                        let block = traffic_log::tcpinfo::format_block(
                            tcp_info_fd(c).as_ref(),
                            tcp_info_fd(t).as_ref(),
                        );
                        line(block.trim_start_matches('\n').to_string());
                    }
                }
                Phase::Udp { src, dst } => {
                    let src = src
                        .as_ref()
                        .map_or_else(|| "0.0.0.0.0 0.0.0.0.0".to_string(), ToString::to_string);
                    let dst = dst
                        .as_ref()
                        .map(|d| format!(" <-> {d}"))
                        .unwrap_or_default();
                    line(format!(
                        "udp: {src}{dst}: age: {age}s, idle: {idle}s, bytes transferred: {} <-> {}, packets: {} <-> {}",
                        traffic.to_target.bytes,
                        traffic.to_client.bytes,
                        traffic.to_target.packets,
                        traffic.to_client.packets
                    ));
                }
            });
        }
    }
}

/// `max limits: files: N (M free)` from RLIMIT_NOFILE and /proc/self/fd.
fn file_limits() -> Option<String> {
    let (soft, _) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).ok()?;
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(format!(
        "max limits: files: {soft} ({} free)",
        soft.saturating_sub(open)
    ))
}
