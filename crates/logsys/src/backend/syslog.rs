//! The local syslog socket: one RFC 3164 datagram per line, as syslog(3) sends them.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use super::{Backend, Lines, Tally};
use crate::format::rfc3164;

/// The local syslog socket; `FERROSOCKS_SYSLOG_SOCKET` names another one (chroots, tests).
fn dev_log() -> PathBuf {
    std::env::var_os("FERROSOCKS_SYSLOG_SOCKET")
        .map_or_else(|| PathBuf::from("/dev/log"), PathBuf::from)
}

pub(crate) fn describe(facility: u8) -> String {
    format!(
        "syslog socket {} (facility {facility})",
        dev_log().display()
    )
}

pub(crate) struct LocalSyslog {
    facility: u8,
    sock: Option<UnixDatagram>,
}

impl LocalSyslog {
    pub(crate) fn open(facility: u8) -> Self {
        Self {
            facility,
            sock: connect(),
        }
    }

    fn send(&mut self, datagram: &[u8]) -> std::io::Result<()> {
        if self.sock.is_none() {
            self.sock = connect();
        }
        let Some(s) = self.sock.as_ref() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!("cannot connect to {}", dev_log().display()),
            ));
        };
        let r = s.send(datagram).map(drop);
        if r.is_err() {
            self.sock = None;
        }
        r
    }
}

impl Backend for LocalSyslog {
    fn describe(&self) -> String {
        describe(self.facility)
    }

    fn write(&mut self, lines: Lines<'_>, tally: &mut dyn Tally) {
        for (line, m) in lines.iter() {
            let datagram = rfc3164::local_datagram(
                self.facility,
                m.level.syslog_severity(),
                line,
                m.prefix_len,
            );
            let r = self.send(&datagram);
            tally.wrote(1, r);
        }
    }

    fn reopen(&mut self) {
        self.sock = connect();
    }
}

fn connect() -> Option<UnixDatagram> {
    let sock = UnixDatagram::unbound().ok()?;
    sock.connect(dev_log()).ok()?;
    Some(sock)
}
