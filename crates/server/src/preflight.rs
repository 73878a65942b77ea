//! Start-up checks that need the system but not the real ports: everything the start-up
//! path would fail on later (binding `internal:`, resolving `external:`, switching to
//! `user.unprivileged`, reading the password file, opening log files), found at once and
//! reported as positioned diagnostics that quote the offending value, so that
//! `ferrosocks -V` can name every problem of a file before anything is bound.
//!
//! A check never binds a configured port: an address is local when a socket binds to it
//! with port 0 (`EADDRNOTAVAIL` says it is not), which is what binding the real port
//! would find out about the address. Positions come from [`sockd_conf::Origins`]; a
//! configuration built by hand without them gets position 0:0.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use sockd_conf::{
    Config, Diagnostic, HostAddr, JsonTarget, LogTarget, Origins, Pos, SubsystemValue,
};
use socket2::{Domain, Socket, Type};

use crate::{errno_text, is_link_local, resolve};

/// Every problem the start-up would meet with `config`, in file order.
pub fn check(config: &Config) -> Vec<Diagnostic> {
    let o = &config.origins;
    let at = |list: &[Pos], i: usize| list.get(i).copied().unwrap_or_default();
    let mut out = Vec::new();
    for (i, internal) in config.internals.iter().enumerate() {
        address(&mut out, o, "internal", &internal.host, at(&o.internals, i));
    }
    for (i, host) in config.externals.iter().enumerate() {
        address(&mut out, o, "external", host, at(&o.externals, i));
    }
    let users = [
        (
            "user.privileged",
            &config.user_privileged,
            o.user_privileged,
        ),
        (
            "user.unprivileged",
            &config.user_unprivileged,
            o.user_unprivileged,
        ),
    ];
    for (key, name, pos) in users {
        if let Some(name) = name {
            user(&mut out, o, key, name, pos.unwrap_or_default());
        }
    }
    if let Some(path) = &config.passwordfile {
        if let Err(e) = std::fs::read(path) {
            let pos = o.passwordfile.unwrap_or_default();
            let message = format!(
                "passwordfile: cannot read \"{}\": {}",
                path.display(),
                errno_text(&e)
            );
            out.push(o.diagnostic(pos, message));
        }
    }
    let targets = [
        ("logoutput", &config.logoutput, &o.logoutput),
        ("errorlog", &config.errorlog, &o.errorlog),
    ];
    for (key, list, positions) in targets {
        for (i, target) in list.iter().enumerate() {
            if let LogTarget::File(p) | LogTarget::Json(JsonTarget::File(p)) = target {
                log_dir(&mut out, o, key, p, at(positions, i));
            }
        }
    }
    for (i, s) in config.log_settings.iter().enumerate() {
        if let SubsystemValue::File(p) = &s.value {
            let key = format!("log.{}.file", s.subsystem);
            log_dir(&mut out, o, &key, p, at(&o.log_settings, i));
        }
    }
    operator_files(&mut out, config);
    log_directory(&mut out, config);
    out.sort_by_key(|d| d.pos);
    out
}

/// The status file's directory (replaced by rename: the user the server runs as must
/// be able to write there), the management socket's directory and password file.
fn operator_files(out: &mut Vec<Diagnostic>, config: &Config) {
    let o = &config.origins;
    if let Some(st) = &config.status {
        let pos = o.status_file.unwrap_or_default();
        let before = out.len();
        log_dir(out, o, "status.file", &st.file, pos);
        let runs_as = config
            .user_unprivileged
            .as_deref()
            .filter(|_| nix::unistd::Uid::effective().is_root());
        if let (true, Some(user)) = (out.len() == before, runs_as) {
            let dir = parent_dir(&st.file);
            if !writable_by(dir, user) {
                out.push(o.diagnostic(
                    pos,
                    format!(
                        "status.file: \"{}\" is replaced by rename, but user.unprivileged user \"{user}\" cannot write its directory \"{}\" (make it that user's, e.g. with systemd's RuntimeDirectory=)",
                        st.file.display(),
                        dir.display()
                    ),
                ));
            }
        }
    }
    let Some(m) = &config.management else {
        return;
    };
    if let sockd_conf::MgmtListen::Unix(path) = &m.listen {
        log_dir(out, o, "management", path, o.management.unwrap_or_default());
    }
    if let Some(pw) = &m.password {
        let pos = o.management_password.unwrap_or_default();
        if let Err(why) = crate::management_password(pw) {
            out.push(o.diagnostic(pos, format!("management.password: {why}")));
        }
    }
}

/// `logdir`: its parent must exist (it is created, as multilog creates it, but not its
/// parents); an existing one must be a directory the user the server runs as can write
/// (it rotates after the privilege drop).
fn log_directory(out: &mut Vec<Diagnostic>, config: &Config) {
    let Some(d) = &config.logdir else { return };
    let o = &config.origins;
    let pos = o.logdir.unwrap_or_default();
    match std::fs::metadata(&d.path) {
        Ok(m) if !m.is_dir() => out.push(o.diagnostic(
            pos,
            format!(
                "logdir: \"{}\" exists and is not a directory",
                d.path.display()
            ),
        )),
        Ok(_) => {
            let runs_as = config
                .user_unprivileged
                .as_deref()
                .filter(|_| nix::unistd::Uid::effective().is_root());
            if let Some(user) = runs_as {
                if !writable_by(&d.path, user) {
                    out.push(o.diagnostic(
                        pos,
                        format!(
                            "logdir: user.unprivileged user \"{user}\" cannot write \"{}\", where it creates the rotated files (make the directory that user's, as multilog's under setuidgid)",
                            d.path.display()
                        ),
                    ));
                }
            }
        }
        Err(_) => log_dir(out, o, "logdir", &d.path, pos),
    }
}

fn parent_dir(file: &Path) -> &Path {
    match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Whether `user` may create files in `dir`, by its owner, group and mode bits.
fn writable_by(dir: &Path, user: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(m), Ok(Some(u))) = (std::fs::metadata(dir), nix::unistd::User::from_name(user)) else {
        return true;
    };
    let mode = m.mode();
    (m.uid() == u.uid.as_raw() && mode & 0o200 != 0)
        || (m.gid() == u.gid.as_raw() && mode & 0o020 != 0)
        || mode & 0o002 != 0
}

/// An `internal:` or `external:` entry: an interface with a usable address, or a host
/// name that resolves, and every address local.
fn address(out: &mut Vec<Diagnostic>, o: &Origins, key: &str, host: &HostAddr, pos: Pos) {
    match host {
        HostAddr::Ip(ip) => {
            if let Err(why) = local(*ip) {
                out.push(o.diagnostic(pos, format!("{key}: \"{ip}\" {why}")));
            }
        }
        HostAddr::Name(name) => match resolve::interface_addrs(name) {
            Some(addrs) => {
                // As start-up does: IPv6 link-local addresses are left aside.
                let addrs: Vec<IpAddr> =
                    addrs.into_iter().filter(|ip| !is_link_local(ip)).collect();
                if addrs.is_empty() {
                    let message = format!("{key}: interface \"{name}\" has no usable address");
                    out.push(o.diagnostic(pos, message));
                }
                for ip in addrs {
                    if let Err(why) = local(ip) {
                        let message = format!("{key}: address {ip} of interface \"{name}\" {why}");
                        out.push(o.diagnostic(pos, message));
                    }
                }
            }
            None => match resolve::resolve_blocking(name) {
                Err(e) => {
                    let message = format!(
                        "{key}: no interface or local address \"{name}\" (no interface has that name, and resolving it failed: {e})"
                    );
                    out.push(o.diagnostic(pos, message));
                }
                Ok(addrs) if addrs.is_empty() => {
                    let message = format!("{key}: host name \"{name}\" resolves to no address");
                    out.push(o.diagnostic(pos, message));
                }
                Ok(addrs) => {
                    for ip in addrs {
                        if let Err(why) = local(ip) {
                            let message = format!(
                                "{key}: host name \"{name}\" resolves to {ip}, which {why}"
                            );
                            out.push(o.diagnostic(pos, message));
                        }
                    }
                }
            },
        },
    }
}

/// Whether `ip` is an address of this host: a socket binds to it with port 0. The error
/// completes a sentence about the address ("is not a local address").
fn local(ip: IpAddr) -> Result<(), String> {
    let addr = SocketAddr::new(ip, 0);
    // UDP: a TCP bind to port 0 could fail for want of ephemeral ports (TIME_WAIT).
    let bound = Socket::new(Domain::for_address(addr), Type::DGRAM, None)
        .and_then(|s| s.bind(&addr.into()));
    match bound {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {
            Err("is not a local address".into())
        }
        Err(e) => Err(format!("cannot be bound: {}", errno_text(&e))),
    }
}

/// `user.*`: the user must exist.
fn user(out: &mut Vec<Diagnostic>, o: &Origins, key: &str, name: &str, pos: Pos) {
    let message = match nix::unistd::User::from_name(name) {
        Ok(Some(_)) => return,
        Ok(None) => format!("{key}: no such user \"{name}\""),
        Err(e) => format!("{key}: cannot look up user \"{name}\": {}", e.desc()),
    };
    out.push(o.diagnostic(pos, message));
}

/// A log file's directory must exist (the file itself is created when opened).
fn log_dir(out: &mut Vec<Diagnostic>, o: &Origins, key: &str, file: &Path, pos: Pos) {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (f, d) = (file.display(), dir.display());
    let message = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return,
        Ok(_) => format!("{key}: \"{d}\" (the directory of \"{f}\") is not a directory"),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            format!("{key}: directory \"{d}\" of \"{f}\" does not exist")
        }
        Err(e) => format!(
            "{key}: cannot reach directory \"{d}\" of \"{f}\": {}",
            errno_text(&e)
        ),
    };
    out.push(o.diagnostic(pos, message));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        sockd_conf::parse("sockd.conf", text)
            .unwrap_or_else(|e| panic!("{e}"))
            .config
    }

    #[test]
    fn a_good_configuration_passes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let users = dir.path().join("users");
        std::fs::write(&users, "alice:$2y$05$abcdefghijklmnopqrstuv\n").unwrap();
        let c = parse(&format!(
            "logoutput: stderr {d}/sockd.log syslog\n\
             errorlog: json:{d}/errors.json\n\
             log.traffic.file: {d}/traffic.log\n\
             internal: 127.0.0.1 port = 1080\n\
             internal: lo port = 1081\n\
             internal: 0.0.0.0 port = 1082\n\
             external: 127.0.0.1\n\
             user.privileged: root\n\
             user.unprivileged: root\n\
             passwordfile: {}\n",
            users.display()
        ));
        assert_eq!(check(&c), []);
        // A relative log file lives in the current directory, which exists.
        assert_eq!(check(&parse("logoutput: sockd.log\n")), []);
    }

    #[test]
    fn every_problem_is_named_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        std::fs::write(dir.path().join("plain"), "").unwrap();
        let text = format!(
            "logoutput: stderr {d}/missing/sockd.log\n\
             errorlog: {d}/plain/errors.log\n\
             log.Traffic.file: {d}/missing/traffic.log\n\
             internal: nosuch0.invalid port = 1080\n\
             internal: 198.51.100.1 port = 1080\n\
             external: 203.0.113.1\n\
             user.privileged: ferrosocks-no-such-user\n\
             user.notprivileged: ferrosocks-no-such-user\n\
             passwordfile: {d}/no-users\n"
        );
        let found: Vec<String> = check(&parse(&text))
            .iter()
            .map(ToString::to_string)
            .collect();
        let resolved = resolve::resolve_blocking("nosuch0.invalid").unwrap_err();
        let col = |line: usize, prefix: &str| {
            let l = text.lines().nth(line - 1).unwrap();
            assert!(l.starts_with(prefix), "{l}");
            format!("sockd.conf:{line}:{}", prefix.chars().count() + 1)
        };
        assert_eq!(
            found,
            [
                format!("{}: logoutput: directory \"{d}/missing\" of \"{d}/missing/sockd.log\" does not exist", col(1, "logoutput: stderr ")),
                format!("{}: errorlog: \"{d}/plain\" (the directory of \"{d}/plain/errors.log\") is not a directory", col(2, "errorlog: ")),
                format!("{}: log.Traffic.file: directory \"{d}/missing\" of \"{d}/missing/traffic.log\" does not exist", col(3, "log.Traffic.file: ")),
                format!("{}: internal: no interface or local address \"nosuch0.invalid\" (no interface has that name, and resolving it failed: {resolved})", col(4, "internal: ")),
                format!("{}: internal: \"198.51.100.1\" is not a local address", col(5, "internal: ")),
                format!("{}: external: \"203.0.113.1\" is not a local address", col(6, "external: ")),
                format!("{}: user.privileged: no such user \"ferrosocks-no-such-user\"", col(7, "user.privileged: ")),
                format!("{}: user.unprivileged: no such user \"ferrosocks-no-such-user\"", col(8, "user.notprivileged: ")),
                format!("{}: passwordfile: cannot read \"{d}/no-users\": No such file or directory", col(9, "passwordfile: ")),
            ]
        );
    }

    #[test]
    fn a_log_directory_needs_its_parent_and_must_be_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        std::fs::write(dir.path().join("plain"), "").unwrap();
        let found = |text: &str| -> Vec<String> {
            check(&parse(text))
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(found(&format!("logdir: {d}/new\n")), Vec::<String>::new());
        assert_eq!(
            found(&format!("logdir: {d}/missing/log\n")),
            [format!("sockd.conf:1:9: logdir: directory \"{d}/missing\" of \"{d}/missing/log\" does not exist")]
        );
        assert_eq!(
            found(&format!("logdir: {d}/plain\n")),
            [format!(
                "sockd.conf:1:9: logdir: \"{d}/plain\" exists and is not a directory"
            )]
        );
    }

    #[test]
    fn local_addresses() {
        assert_eq!(local("127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(local("0.0.0.0".parse().unwrap()), Ok(()));
        assert_eq!(
            local("198.51.100.1".parse().unwrap()),
            Err("is not a local address".into())
        );
    }

    #[test]
    fn a_configuration_without_origins_still_gets_diagnostics() {
        let c = Config {
            user_unprivileged: Some("ferrosocks-no-such-user".into()),
            ..Config::default()
        };
        let d = check(&c);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].pos, Pos::default());
        assert_eq!(
            d[0].message,
            "user.unprivileged: no such user \"ferrosocks-no-such-user\""
        );
    }
}
