//! One place messages are written to, and what happens when it fails.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use traffic_log::Level;

use crate::Target;

/// The local syslog socket; `FERROSOCKS_SYSLOG_SOCKET` names another one (for tests
/// and chroots).
fn dev_log() -> PathBuf {
    std::env::var_os("FERROSOCKS_SYSLOG_SOCKET")
        .map_or_else(|| PathBuf::from("/dev/log"), PathBuf::from)
}

pub(crate) struct Sink {
    kind: Kind,
    /// Set while the sink is failing: the error, reported once.
    failing: Option<String>,
    /// Lines that could not be written while failing.
    lost: u64,
}

enum Kind {
    Stdout,
    Stderr,
    File {
        path: PathBuf,
        file: Option<File>,
    },
    Syslog {
        facility: u8,
        sock: Option<UnixDatagram>,
    },
}

impl Sink {
    pub(crate) fn open(target: &Target) -> Self {
        let kind = match target {
            Target::Stdout => Kind::Stdout,
            Target::Stderr => Kind::Stderr,
            Target::File(path) => Kind::File {
                path: path.clone(),
                file: None,
            },
            Target::Syslog { facility } => Kind::Syslog {
                facility: *facility,
                sock: None,
            },
        };
        let mut s = Self {
            kind,
            failing: None,
            lost: 0,
        };
        s.reopen();
        s
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.failing.is_none()
    }

    pub(crate) fn reopen(&mut self) {
        match &mut self.kind {
            Kind::File { path, file } => {
                *file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&*path)
                    .ok();
            }
            Kind::Syslog { sock, .. } => *sock = connect_syslog(),
            Kind::Stdout | Kind::Stderr => {}
        }
    }

    fn name(&self) -> String {
        match &self.kind {
            Kind::Stdout => "stdout".into(),
            Kind::Stderr => "stderr".into(),
            Kind::File { path, .. } => format!("log file {}", path.display()),
            Kind::Syslog { .. } => format!("syslog socket {}", dev_log().display()),
        }
    }

    /// Writes one line (`line` with prefix and newline; `prefix` to strip for syslog).
    /// Returns a message to report when the sink starts failing or recovers.
    pub(crate) fn write(&mut self, line: &str, prefix: &str, level: Level) -> Option<String> {
        let result = self.try_write(line, prefix, level);
        match (result, self.failing.take()) {
            (Ok(()), None) => None,
            (Ok(()), Some(err)) => {
                let lost = std::mem::take(&mut self.lost);
                Some(format!(
                    "{} works again after failing ({err}); {lost} line(s) could not be written to it meanwhile",
                    self.name()
                ))
            }
            (Err(e), was) => {
                self.lost += 1;
                let first = was.is_none();
                self.failing = Some(was.unwrap_or_else(|| e.to_string()));
                first.then(|| {
                    format!(
                        "cannot write to {}: {e}; will retry with each line",
                        self.name()
                    )
                })
            }
        }
    }

    fn try_write(&mut self, line: &str, prefix: &str, level: Level) -> std::io::Result<()> {
        match &mut self.kind {
            Kind::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
            Kind::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
            Kind::File { path, file } => {
                if file.is_none() {
                    *file = Some(OpenOptions::new().create(true).append(true).open(&*path)?);
                }
                let f = file.as_mut().expect("opened just above");
                let r = f.write_all(line.as_bytes());
                if r.is_err() {
                    // Reopen on the next line: the file may have been replaced or the disk freed.
                    *file = None;
                }
                r
            }
            Kind::Syslog { facility, sock } => {
                if sock.is_none() {
                    *sock = connect_syslog();
                }
                let Some(s) = sock.as_ref() else {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotConnected,
                        format!("cannot connect to {}", dev_log().display()),
                    ));
                };
                let msg = syslog_message(*facility, level, line, prefix);
                let r = s.send(msg.as_bytes()).map(drop);
                if r.is_err() {
                    *sock = None;
                }
                r
            }
        }
    }
}

fn connect_syslog() -> Option<UnixDatagram> {
    let sock = UnixDatagram::unbound().ok()?;
    sock.connect(dev_log()).ok()?;
    Some(sock)
}

/// A local syslog datagram as glibc's syslog(3) writes it:
/// `<PRI>Mon DD HH:MM:SS program[pid]: level: message`. The file prefix carries the same
/// date and `program[pid]: level: `; only the `(epoch.usec) ` part is dropped.
pub(crate) fn syslog_message(facility: u8, level: Level, line: &str, prefix: &str) -> String {
    let pri = u16::from(facility) * 8 + u16::from(level.syslog_severity());
    let body = line.strip_suffix('\n').unwrap_or(line);
    // prefix = "Mon DD HH:MM:SS (secs.usec) program[pid]: level: "
    let (date, rest) = body.split_at(prefix.len().min(16).min(body.len()));
    let rest = match rest.split_once(") ") {
        Some((_, after)) if !prefix.is_empty() => after,
        _ => rest,
    };
    format!("<{pri}>{date}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_datagram_shape() {
        let prefix = "Nov 21 09:16:57 (1795252617.429114) ferrosocks[13]: info: ";
        let line = format!("{prefix}pass(1): tcp/accept [: 127.0.0.1.1 127.0.0.1.2\n");
        assert_eq!(
            syslog_message(19, Level::Info, &line, prefix),
            "<158>Nov 21 09:16:57 ferrosocks[13]: info: pass(1): tcp/accept [: 127.0.0.1.1 127.0.0.1.2"
        );
    }
}
