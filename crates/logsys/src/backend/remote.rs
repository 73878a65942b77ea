//! `syslog.remote` as a sink: each line becomes an RFC 5424 message queued for the
//! receiver's own thread (`remote/`), so the writer never waits on the network.
//!
//! PRI: the subsystem's facility and the level's severity; TIMESTAMP: when the record
//! was logged; HOSTNAME: this host's name; APP-NAME `ferrosocks`; PROCID the pid;
//! MSGID the subsystem (`TRAFFIC`, `AUTH`, …); MSG the text of the local line after
//! Dante's prefix. A traffic record also carries `[ferrosocks@32473 verdict="pass"
//! rule="1" proto="tcp" cmd="connect"]` (32473: the example enterprise number of
//! RFC 5612, until the project has its own).

use std::sync::Arc;

use super::{Backend, Lines, Tally};
use crate::format::rfc5424::{self, Element};
use crate::remote::queue::MAX_MESSAGE;
use crate::remote::{self, Remote, RemoteTarget};

/// The SD-ID of ferrosocks' own structured data.
pub(crate) const SD_ID: &str = "ferrosocks@32473";

pub(crate) struct RemoteBackend {
    target: RemoteTarget,
    remote: Arc<Remote>,
    hostname: String,
    procid: String,
    /// A line has been written: the sink is in the routing, its reports are heard.
    live: bool,
}

impl RemoteBackend {
    pub(crate) fn open(target: RemoteTarget, waker: super::Waker) -> Self {
        let remote = remote::shared(&target);
        remote.set_waker(waker);
        Self {
            remote,
            target,
            hostname: hostname(),
            procid: std::process::id().to_string(),
            live: false,
        }
    }
}

/// This host's name (`-` when it has none).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// `verdict(rule): proto/cmd …` at the start of a traffic line.
fn traffic_fields(msg: &[u8]) -> Option<[&str; 4]> {
    let text = std::str::from_utf8(msg.get(..msg.len().min(80))?).ok()?;
    let (verdict, rest) = text.split_once('(')?;
    let (rule, rest) = rest.split_once("): ")?;
    let (proto, rest) = rest.split_once('/')?;
    let cmd = rest.split(' ').next()?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    (ok(verdict) && rule.bytes().all(|b| b.is_ascii_digit()) && ok(proto) && ok(cmd))
        .then_some([verdict, rule, proto, cmd])
}

impl Backend for RemoteBackend {
    fn describe(&self) -> String {
        format!(
            "syslog.remote {} port {}",
            self.target.host, self.target.port
        )
    }

    fn write(&mut self, lines: Lines<'_>, tally: &mut dyn Tally) {
        for (line, m) in lines.iter() {
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            let msg = text.get(m.prefix_len..).unwrap_or(text);
            let msg = &msg[..msg.len().min(MAX_MESSAGE - 512)];
            let facility = self
                .target
                .facilities
                .get(m.subsystem.index())
                .copied()
                .unwrap_or(3);
            let fields = (m.subsystem == crate::Subsystem::TRAFFIC)
                .then(|| traffic_fields(msg))
                .flatten();
            let params;
            let sd: &[Element<'_>] = match &fields {
                Some([verdict, rule, proto, cmd]) => {
                    params = [
                        ("verdict", *verdict),
                        ("rule", *rule),
                        ("proto", *proto),
                        ("cmd", *cmd),
                    ];
                    &[Element {
                        id: SD_ID,
                        params: &params,
                    }][..]
                }
                None => &[],
            };
            let mut out = Vec::with_capacity(msg.len() + 128);
            rfc5424::encode(
                &mut out,
                &rfc5424::Message {
                    facility,
                    severity: m.level.syslog_severity(),
                    time: m.time,
                    hostname: &self.hostname,
                    app_name: "ferrosocks",
                    procid: &self.procid,
                    msgid: m.subsystem.name(),
                    structured: sd,
                    msg,
                },
            );
            self.remote.push(out);
        }
        // Queued: delivery problems are the queue's reports, not lost lines.
        tally.wrote(lines.len() as u64, Ok(()));
        self.live = true;
        self.poll(tally);
    }

    fn poll(&mut self, tally: &mut dyn Tally) {
        // Before the first line the sink may not be in the routing yet (start-up, a
        // reload): its reports would go nowhere, so they wait for that line.
        if !self.live {
            return;
        }
        for n in self.remote.take_notes() {
            tally.note(n);
        }
    }
}
