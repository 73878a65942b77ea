//! `syslog.remote*` (DESIGN.md §5): RFC 5424 to a remote receiver.

use std::path::PathBuf;

use super::{Parser, Res};
use crate::lexer::Pos;
use crate::model::{HostAddr, RemoteProtocol, SyslogRemoteConfig};

/// The `syslog.remote*` settings read so far.
#[derive(Default)]
pub(super) struct RemoteSettings {
    target: Option<(String, u16)>,
    protocol: Option<(RemoteProtocol, Pos)>,
    ca: Option<(PathBuf, Pos)>,
}

pub(super) fn is_remote_key(key: &str) -> bool {
    matches!(
        key,
        "syslog.remote" | "syslog.remote.protocol" | "syslog.remote.ca"
    )
}

impl Parser<'_> {
    pub(super) fn remote_setting(&mut self, key: &str, pos: Pos) -> Res<()> {
        match key {
            "syslog.remote" => {
                let (host, _) = self.host_addr(key)?;
                if !self.at_port_word() {
                    return Err(self.expected("\"port = N\"", key));
                }
                let port = self.port_value(key)?;
                let host = match host {
                    HostAddr::Ip(ip) => ip.to_string(),
                    HostAddr::Name(n) => n,
                };
                self.remote.target = Some((host, port));
            }
            "syslog.remote.protocol" => {
                let (w, wpos) = self.word("tcp, tls or udp", key)?;
                let p = match w.as_str() {
                    "tcp" => RemoteProtocol::Tcp,
                    "tls" => RemoteProtocol::Tls,
                    "udp" => RemoteProtocol::Udp,
                    _ => {
                        return Err(self.diag(
                            wpos,
                            format!("expected tcp, tls or udp after \"{key}\", found \"{w}\""),
                        ))
                    }
                };
                self.remote.protocol = Some((p, pos));
            }
            "syslog.remote.ca" => {
                let (w, wpos) = self.word("a file path", key)?;
                self.remote.ca = Some((PathBuf::from(w), pos));
                self.cfg.origins.syslog_remote_ca = Some(wpos);
            }
            _ => return Err(self.not_here(key, pos, None)),
        }
        Ok(())
    }

    /// Builds `Config.syslog_remote`.
    pub(super) fn settle_remote(&mut self) {
        let s = std::mem::take(&mut self.remote);
        let Some((host, port)) = s.target else {
            for (key, pos) in [
                s.protocol.map(|(_, p)| ("syslog.remote.protocol", p)),
                s.ca.as_ref().map(|(_, p)| ("syslog.remote.ca", *p)),
            ]
            .into_iter()
            .flatten()
            {
                self.without(pos, key, "syslog.remote");
            }
            return;
        };
        let protocol = s.protocol.map_or(RemoteProtocol::Tcp, |(p, _)| p);
        if let (Some((_, pos)), false) = (&s.ca, protocol == RemoteProtocol::Tls) {
            let d = self.diag(
                *pos,
                "\"syslog.remote.ca\" has no effect unless \"syslog.remote.protocol: tls\"".into(),
            );
            self.warnings.push(d);
        }
        self.cfg.syslog_remote = Some(SyslogRemoteConfig {
            host,
            port,
            protocol,
            ca: s.ca.map(|(p, _)| p),
        });
    }
}
