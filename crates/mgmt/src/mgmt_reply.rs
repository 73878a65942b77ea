//! The replies to management commands: the exact bytes, CRLF after every line (the
//! prompt has none). Re-exported as [`crate::proto::reply`]; the module doc of
//! [`crate::proto`] says which reply answers which command.
//!
//! What the reference left open, chosen here:
//! - `help` lists exactly the commands [`crate::proto::parse`] accepts, in OpenVPN's
//!   layout and order (`CMD args` padded to 23 columns, `: text`), with ferrosocks'
//!   meanings; its first line is `Management Interface for ferrosocks X.Y.Z (OpenVPN
//!   2.6.14 compatible)`. No tool parses it.
//! - `version`'s first line is the one tools parse (§2): the protocol's OpenVPN
//!   version as the second word, then who answers.
//! - `version N` answers `SUCCESS: Management client version set to N` only when N > 3,
//!   as OpenVPN HEAD does: 2.6.14 never answers, and clients that announce 3 or less
//!   (written for it) do not wait for an answer.
//! - `kill` by address prints the address as [`crate::proto::KillTarget`] shows it
//!   (`1.2.3.4:80`, `[2001:db8::1]:80`, `tcp:1.2.3.4:80`), where HEAD would print its
//!   internal protocol name (`tcp-server:…`).
//! - A line too long: `ERROR: command line is too long (4096 bytes max)` (OpenVPN drops
//!   its buffer silently).

use server::registry::{SessionSnapshot, Totals};

use crate::notify::clean;
use crate::proto::{
    HistoryArg, Hold, KillTarget, Signal, Stream, MANAGEMENT_VERSION, OPENVPN_VERSION,
};

/// The password prompt: no line end (§1.1).
pub const PROMPT: &str = "ENTER PASSWORD:";
/// The answer to the right password, before [`GREETING`].
pub const PASSWORD_OK: &str = "SUCCESS: password is correct\r\n";
/// The first line of an authenticated connection.
pub const GREETING: &str =
    ">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n";
/// The end of a multi-line reply.
pub const END: &str = "END\r\n";
/// `bytecount N`, whatever N.
pub const BYTECOUNT_CHANGED: &str = "SUCCESS: bytecount interval changed\r\n";
/// `verb N` with N in range.
pub const VERB_CHANGED: &str = "SUCCESS: verb level changed\r\n";
/// `mute N` with N in range.
pub const MUTE_CHANGED: &str = "SUCCESS: mute level changed\r\n";
/// A line over [`MAX_LINE`](crate::proto::MAX_LINE) bytes from an authenticated client.
pub const LINE_TOO_LONG: &str = "ERROR: command line is too long (4096 bytes max)\r\n";

/// This ferrosocks' version.
pub const FERROSOCKS_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where it runs, as `version` prints it (`x86_64-linux`).
pub fn platform() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

/// `help`.
pub fn help() -> String {
    help_for(FERROSOCKS_VERSION)
}

/// `help`, saying `version` is ferrosocks' version.
pub fn help_for(version: &str) -> String {
    let mut out = format!(
        "Management Interface for ferrosocks {version} (OpenVPN {OPENVPN_VERSION} compatible)\r\n\
         Commands:\r\n"
    );
    for (syntax, text) in HELP {
        let head = if syntax.len() < 23 {
            format!("{syntax:<23}: ")
        } else {
            format!("{syntax} : ")
        };
        let mut lines = text.lines();
        out += &format!("{head}{}\r\n", lines.next().unwrap_or(""));
        for more in lines {
            out += &format!("{:width$}{more}\r\n", "", width = head.len());
        }
    }
    out + END
}

/// `help`'s lines: syntax, text (a line break continues under the text).
const HELP: &[(&str, &str)] = &[
    (
        "bytecount n",
        "Show bytes in/out, update every n secs (0=off).",
    ),
    (
        "echo [on|off] [N|all]",
        "Like log, but only show messages in echo buffer\n(always empty here).",
    ),
    ("exit|quit", "Close management session."),
    ("help", "Print this message."),
    (
        "hold [on|off|release]",
        "Set/show hold flag to on/off state, or\nrelease current hold (ferrosocks never holds).",
    ),
    (
        "kill cn",
        "Kill the session(s) of user cn (UNDEF: sessions without one).",
    ),
    (
        "kill IP:port",
        "Kill the session(s) from client address IP:port\n([IPv6]:port; tcp:IP:port, udp:IP:port for UDP associations).",
    ),
    (
        "load-stats",
        "Show global server load stats (open sessions, bytes from/to clients).",
    ),
    (
        "log [on|off] [N|all]",
        "Turn on/off realtime log display\n+ show last N lines or 'all' for entire history.",
    ),
    (
        "mute [n]",
        "Set log mute level to n, or show level if n is absent.",
    ),
    (
        "pid",
        "Show process ID of the current ferrosocks process.",
    ),
    (
        "client-auth CID KID",
        "Authenticate client-id/key-id CID/KID (MULTILINE)",
    ),
    (
        "client-auth-nt CID KID",
        "Authenticate client-id/key-id CID/KID",
    ),
    (
        "client-deny CID KID R [CR]",
        "Deny auth client-id/key-id CID/KID with log reason\ntext R and optional client reason text CR",
    ),
    (
        "client-kill CID [M]",
        "Kill session CID (the CID of status and >CLIENT:), message M (def=RESTART)",
    ),
    ("env-filter [level]", "Set env-var filter level"),
    (
        "signal s",
        "Send signal s to daemon,\ns = SIGHUP|SIGTERM|SIGUSR1|SIGUSR2\n(reload, stop, sessions dump to the log, status file now).",
    ),
    (
        "state [on|off] [N|all]",
        "Like log, but show state history.",
    ),
    (
        "status [n]",
        "Show current daemon status info using format #n (1, 2 or 3).",
    ),
    (
        "verb [n]",
        "Set log verbosity level to n (0-11), or show if n is absent.",
    ),
    (
        "version [n]",
        "Set client's version to n or show current version of daemon.",
    ),
];

/// `version`.
pub fn version() -> String {
    version_for(FERROSOCKS_VERSION, &platform())
}

/// `version`, naming ferrosocks' `version` and `platform`.
pub fn version_for(version: &str, platform: &str) -> String {
    format!(
        "OpenVPN Version: OpenVPN {OPENVPN_VERSION} management-compatible; ferrosocks {version} {platform}\r\n\
         Management Version: {MANAGEMENT_VERSION}\r\n{END}"
    )
}

/// `version N`: empty (send nothing) unless N > 3.
pub fn client_version(n: i32) -> String {
    if n > 3 {
        format!("SUCCESS: Management client version set to {n}\r\n")
    } else {
        String::new()
    }
}

/// `pid`.
pub fn pid(pid: u32) -> String {
    format!("SUCCESS: pid={pid}\r\n")
}

/// `env-filter [N]`.
pub fn env_filter(level: i32) -> String {
    format!("SUCCESS: env_filter_level={level}\r\n")
}

/// `load-stats`: open sessions, bytes read from and written to clients.
pub fn load_stats(nclients: usize, bytes_in: u64, bytes_out: u64) -> String {
    format!("SUCCESS: nclients={nclients},bytesin={bytes_in},bytesout={bytes_out}\r\n")
}

/// `load-stats` from the registry: the live sessions and the ended ones' totals
/// (client side: what OpenVPN counts on its link).
pub fn load_stats_of(sessions: &[SessionSnapshot], totals: &Totals) -> String {
    let (mut bytes_in, mut bytes_out) = (
        totals.traffic.from_client.bytes,
        totals.traffic.to_client.bytes,
    );
    for s in sessions {
        bytes_in += s.traffic.from_client.bytes;
        bytes_out += s.traffic.to_client.bytes;
    }
    load_stats(sessions.len(), bytes_in, bytes_out)
}

/// `kill`, having ended `n` sessions.
pub fn killed(target: &KillTarget, n: usize) -> String {
    let who = clean(&target.to_string()).into_owned();
    match (target, n) {
        (KillTarget::Name(_), 0) => format!("ERROR: common name '{who}' not found\r\n"),
        (KillTarget::Name(_), n) => {
            format!("SUCCESS: common name '{who}' found, {n} client(s) killed\r\n")
        }
        (KillTarget::Addr { .. }, 0) => format!("ERROR: client at address {who} not found\r\n"),
        (KillTarget::Addr { .. }, n) => {
            format!("SUCCESS: {n} client(s) at address {who} killed\r\n")
        }
    }
}

/// `client-kill`: whether the session was there.
pub fn client_kill(ok: bool) -> String {
    outcome("client-kill", ok)
}

/// `client-auth` and `client-auth-nt` (2.6.14 answers both with this text).
pub fn client_auth(ok: bool) -> String {
    outcome("client-auth", ok)
}

/// `client-deny`.
pub fn client_deny(ok: bool) -> String {
    outcome("client-deny", ok)
}

fn outcome(command: &str, ok: bool) -> String {
    if ok {
        format!("SUCCESS: {command} command succeeded\r\n")
    } else {
        format!("ERROR: {command} command failed\r\n")
    }
}

/// `signal S`, done.
pub fn signal_thrown(signal: Signal) -> String {
    format!("SUCCESS: signal {} thrown\r\n", signal.name())
}

/// `signal S`, when the server ignores S.
pub fn signal_ignored(signal: Signal) -> String {
    format!("ERROR: signal '{}' is currently ignored\r\n", signal.name())
}

/// `verb`: the level in force.
pub fn verb(level: u8) -> String {
    format!("SUCCESS: verb={level}\r\n")
}

/// `mute`: the level in force.
pub fn mute(level: u32) -> String {
    format!("SUCCESS: mute={level}\r\n")
}

/// `log on|off`, `state on|off`, `echo on|off`.
pub fn realtime(stream: Stream, on: bool) -> String {
    format!(
        "SUCCESS: real-time {} notification set to {}\r\n",
        stream.as_str(),
        if on { "ON" } else { "OFF" }
    )
}

/// `echo …`, whole: ferrosocks has no echo buffer, so a history is just `END`.
pub fn echo(args: &[HistoryArg]) -> String {
    args.iter()
        .map(|a| match a {
            HistoryArg::On => realtime(Stream::Echo, true),
            HistoryArg::Off => realtime(Stream::Echo, false),
            HistoryArg::All | HistoryArg::Last(_) => END.to_owned(),
        })
        .collect()
}

/// `hold …`, with the flag as it is (after `on`/`off`).
pub fn hold(hold: Hold, flag: bool) -> String {
    match hold {
        Hold::Show => format!("SUCCESS: hold={}\r\n", u8::from(flag)),
        Hold::On => "SUCCESS: hold flag set to ON\r\n".into(),
        Hold::Off => "SUCCESS: hold flag set to OFF\r\n".into(),
        Hold::Release => "SUCCESS: hold release succeeded\r\n".into(),
    }
}

/// OpenVPN's answer to a command the daemon cannot run in its mode (for a server that
/// has, say, no status callback).
pub fn not_in_this_mode(command: &str) -> String {
    format!(
        "ERROR: The '{}' command is not supported by the current daemon mode\r\n",
        clean(command)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lines_are_laid_out_as_openvpns() {
        let h = help_for("9.9.9");
        assert!(h.starts_with(
            "Management Interface for ferrosocks 9.9.9 (OpenVPN 2.6.14 compatible)\r\nCommands:\r\n"
        ));
        assert!(h.contains("\r\nbytecount n            : Show bytes in/out"));
        assert!(h.contains(
            "\r\nclient-deny CID KID R [CR] : Deny auth client-id/key-id CID/KID with log reason\r\n\
             \x20                            text R and optional client reason text CR\r\n"
        ));
        assert!(h.ends_with("\r\nEND\r\n"));
    }

    #[test]
    fn help_names_every_command_parse_accepts() {
        let h = help();
        for cmd in [
            "bytecount",
            "echo",
            "exit",
            "quit",
            "help",
            "hold",
            "kill",
            "load-stats",
            "log",
            "mute",
            "pid",
            "client-auth",
            "client-auth-nt",
            "client-deny",
            "client-kill",
            "env-filter",
            "signal",
            "state",
            "status",
            "verb",
            "version",
        ] {
            assert!(
                h.lines().any(|l| l.split([' ', '|']).next() == Some(cmd)
                    || l.starts_with(&format!("exit|{cmd}"))),
                "{cmd} missing from help"
            );
            let line = match cmd {
                "kill" => "kill x".to_owned(),
                "log" | "echo" => format!("{cmd} on"),
                "bytecount" => format!("{cmd} 1"),
                "signal" => format!("{cmd} SIGHUP"),
                "client-kill" => format!("{cmd} 1"),
                "client-auth" | "client-auth-nt" => format!("{cmd} 1 0"),
                "client-deny" => format!("{cmd} 1 0 r"),
                c => c.to_owned(),
            };
            assert!(crate::proto::parse(&line).is_ok(), "{line}");
        }
    }

    #[test]
    fn version_has_the_words_tools_parse() {
        let v = version();
        let first = v.lines().next().unwrap();
        let words: Vec<&str> = first
            .strip_prefix("OpenVPN Version: ")
            .unwrap()
            .split(' ')
            .collect();
        // openvpn-monitor: the second word is a semver; openvpn-api: `OpenVPN N.N.N`.
        assert_eq!(&words[..2], ["OpenVPN", "2.6.14"]);
        assert!(v.contains(&format!("ferrosocks {FERROSOCKS_VERSION} ")));
        assert!(v.ends_with("\r\nManagement Version: 5\r\nEND\r\n"));
    }

    #[test]
    fn the_too_long_error_names_the_limit() {
        let limit = format!("({} bytes max)", crate::proto::MAX_LINE);
        assert!(LINE_TOO_LONG.contains(&limit));
    }

    #[test]
    fn client_version_is_acknowledged_only_above_3() {
        assert_eq!(client_version(3), "");
        assert_eq!(client_version(0), "");
        assert_eq!(
            client_version(4),
            "SUCCESS: Management client version set to 4\r\n"
        );
    }
}
