//! The configuration language, tested on whole files: the embedded default, the files
//! Debian's dante-server ships, the reference's examples, and broken files whose every
//! error must be reported with file:line:column.

use std::path::Path;

use sockd_conf::*;

fn data(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn ok(text: &str) -> Config {
    match parse("test.conf", text) {
        Ok(p) => p.config,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse("test.conf", text) {
        Ok(_) => panic!("parsed, but errors were expected"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// Accepted, or rejected only for keywords named as not supported yet.
fn accepted_or_not_yet(name: &str, text: &str) {
    if let Err(e) = parse(name, text) {
        for d in &e.0 {
            assert!(d.message.contains("not supported yet"), "{name}: {d}");
        }
    }
}

#[test]
fn embedded_default_is_loopback_only() {
    let c = ok(EMBEDDED_DEFAULT);
    assert_eq!(
        c.internals,
        vec![Internal {
            host: HostAddr::Ip("127.0.0.1".parse().unwrap()),
            port: 1080
        }]
    );
    assert_eq!(c.socksmethods, vec![AuthMethod::None]);
    assert_eq!(c.client_rules.len(), 1);
    assert_eq!(
        c.client_rules[0].from.host,
        HostMatch::Net {
            addr: "127.0.0.0".parse().unwrap(),
            prefix: 8
        }
    );
    let log = c.socks_rules[0].log;
    assert!(log.connect && log.disconnect && log.error && !log.ioop);
    assert_eq!(c.logoutput, vec![LogTarget::Stderr]);
}

#[test]
fn debian_dante_server_files() {
    for name in [
        "debian-etc-danted.conf",
        "debian-example-danted.conf",
        "debian-example-danted-basic.conf",
        "debian-example-danted-chaining.conf",
    ] {
        accepted_or_not_yet(name, &data(name));
    }
    let basic = ok(&data("debian-example-danted-basic.conf"));
    assert_eq!(basic.socks_rules[0].to.host, HostMatch::Name("lo".into()));
    let etc = ok(&data("debian-etc-danted.conf"));
    assert_eq!(etc.user_unprivileged.as_deref(), Some("nobody"));
}

#[test]
fn reference_examples() {
    let globals = data("reference-globals.conf");
    accepted_or_not_yet("reference-globals.conf", &globals);
    let rules = data("reference-rules.conf");
    accepted_or_not_yet("reference-rules.conf", &rules);
    // Every keyword of the reference's examples is implemented now.
    let routed = parse("r", &rules).unwrap().config;
    assert!(routed.socks_rules[2].log.tcpinfo);
    let g = ok(&globals);
    assert_eq!(g.error_logs.len(), 1);
    assert_eq!(routed.routes.len(), 1);
    let r = &routed.routes[0];
    assert_eq!(
        r.via,
        Via::Proxy {
            host: HostAddr::Name("socks.example.net".into()),
            port: 1080
        }
    );
    assert_eq!(r.to.port, PortMatch::Op(PortOp::Eq, 80));
    assert_eq!(r.protocols, vec![UpstreamProtocol::SocksV5]);
    assert_eq!(r.methods, vec![AuthMethod::None, AuthMethod::Username]);
    let variants = data("connect-variants.conf.in")
        .replace("@LOGOUTPUT@", "/tmp/x.log")
        .replace("@PORT@", "1080")
        .replace("@BLOCKPORT@", "9");
    let c = ok(&variants);
    assert_eq!(c.client_rules.len(), 1);
    assert_eq!(c.socks_rules.len(), 2);
    assert_eq!(c.socks_rules[0].action, Action::Block);
    assert_eq!(c.socks_rules[0].to.port, PortMatch::Op(PortOp::Eq, 9));
    assert_eq!(c.socks_rules[1].number, 2);
}

#[test]
fn every_table_entry_is_treated_as_its_status_says() {
    // Each keyword's and special's example is fed to the parser: supported ones parse
    // (no "is ignored" warning), ignored ones parse with exactly one warning naming
    // them, and the others give exactly one "not supported yet" error naming them.
    use keywords::{Status, KEYWORDS, SPECIALS};
    let uses = KEYWORDS
        .iter()
        .map(|k| (k.name, k.status, k.example))
        .chain(SPECIALS.iter().map(|s| (s.keyword, s.status, s.example)));
    for (name, status, example) in uses {
        let head = format!("\"{}", name.split('*').next().unwrap());
        match (status, parse("example", &format!("{example}\n"))) {
            (Status::Supported, Ok(p)) => assert!(
                p.warnings.iter().all(|w| !w.message.contains("is ignored")),
                "{name}: {:?}",
                p.warnings
            ),
            (Status::Ignored, Ok(p)) => {
                assert_eq!(p.warnings.len(), 1, "{name}: {:?}", p.warnings);
                let m = &p.warnings[0].message;
                assert!(
                    m.starts_with(&head) && m.contains(" is ignored: "),
                    "{name}: {m}"
                );
            }
            (Status::NotYet, Err(e)) => {
                assert_eq!(e.0.len(), 1, "{name}: {e}");
                let m = &e.0[0].message;
                assert!(
                    m.starts_with(&head) && m.contains(" is not supported yet"),
                    "{name}: {m}"
                );
            }
            (status, r) => panic!("{name} ({status:?}): example {example:?} gave {r:?}"),
        }
    }
}

#[test]
fn the_parser_refuses_or_ignores_only_through_the_table() {
    // "not supported yet" and "is ignored" are written by the keyword table alone, so
    // the documentation generated from it lists everything the parser refuses.
    let src = include_str!("../src/parse.rs");
    for phrase in ["supported yet", "is ignored"] {
        assert!(!src.contains(phrase), "parse.rs writes {phrase:?} itself");
    }
}

#[test]
fn debian_sample_with_every_keyword_uncommented() {
    // Debian's /etc/danted.conf with every commented keyword, rule and route line
    // uncommented. Lines 106 and 243 are errors in Dante 1.4 too (no "reuseaddr"
    // compatibility option; "username" is not a client method).
    let name = "danted.conf";
    let text = data("debian-etc-danted-uncommented.conf");
    let errs: Vec<String> = match parse(name, &text) {
        Ok(_) => panic!("parsed, but errors were expected"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    };
    assert_eq!(
        errs,
        [
            "danted.conf:72:14: \"socksmethod: pam\" is not supported yet: ferrosocks cannot authenticate clients this way",
            "danted.conf:106:16: unknown compatibility option \"reuseaddr\" (expected sameport or draft-5.05)",
            "danted.conf:134:1: \"srchost\" is not supported yet: ferrosocks does no reverse DNS lookup of clients and does not check the authentication of replies, so without it ferrosocks would let in clients and replies that Dante refuses",
            "danted.conf:202:9: \"libwrap\" is not supported yet: ferrosocks has no libwrap, and a libwrap line can refuse clients (deny, twist), so without it ferrosocks would let in clients that Dante refuses",
            "danted.conf:243:23: method \"username\" is not valid for \"clientmethod\" (client rules see no SOCKS bytes; use socksmethod)",
        ]
    );
    // With those five lines commented out again, the file parses; what is ignored is
    // said, line by line.
    let fixed: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| match i + 1 {
            72 | 106 | 134 | 202 | 243 => format!("#{l}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    let p = parse(name, &fixed).unwrap_or_else(|e| panic!("{e}"));
    let warnings: Vec<String> = p.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "danted.conf:102:16: \"compatibility: sameport\" is ignored: ferrosocks lets the kernel choose the source port of outgoing connections and never connects out from a privileged port",
            "danted.conf:114:1: \"extension\" is ignored: ferrosocks does not implement Dante's BIND extension; a request for it is handled as an ordinary BIND, and no other request changes",
        ]
    );
    let c = p.config;
    assert_eq!(c.internals.len(), 2);
    assert_eq!(
        c.socksmethods,
        [AuthMethod::Username, AuthMethod::Rfc931, AuthMethod::None]
    );
    assert_eq!(c.user_libwrap.as_deref(), Some("nobody"));
    assert_eq!((c.client_rules.len(), c.socks_rules.len()), (3, 9));
    assert_eq!(c.routes.len(), 1);
}

#[test]
fn methods_dante_refuses_for_clientmethod() {
    assert_eq!(
        errors("clientmethod: gssapi\nclientmethod: pam.address\n"),
        [
            "test.conf:1:15: method \"gssapi\" is not valid for \"clientmethod\" (expected none, rfc931, pam.any or pam.address)",
            "test.conf:2:15: \"clientmethod: pam.address\" is not supported yet: ferrosocks cannot authenticate clients this way",
        ]
    );
}

#[test]
fn rules_addresses_and_ports() {
    let c = ok(
        "socks pass { from: 10.0.0.0/255.0.0.0 port >= 1024 to: ::1 port=80 }\n\
        socks block { from:0/0 to: .Example.COM port 1-1024 }\n\
        pass { from: 0/0 to: host.example port ne https\n\
        socksmethod: username\n\
        user: alice\n\
        command: connect\n\
        timeout.io: 5\n\
        }\n\
        client pass { from: 127.0.0.1/32 port = 0x50 to: lo }\n",
    );
    let r = &c.socks_rules;
    assert_eq!(
        r[0].from.host,
        HostMatch::Net {
            addr: "10.0.0.0".parse().unwrap(),
            prefix: 8
        }
    );
    assert_eq!(r[0].from.port, PortMatch::Op(PortOp::Ge, 1024));
    assert_eq!(
        r[0].to.host,
        HostMatch::Net {
            addr: "::1".parse().unwrap(),
            prefix: 128
        }
    );
    assert_eq!(r[0].to.port, PortMatch::Op(PortOp::Eq, 80));
    assert_eq!(r[1].to.host, HostMatch::Domain("example.com".into()));
    assert_eq!(r[1].to.port, PortMatch::Range(1, 1024));
    assert_eq!(r[2].to.port, PortMatch::Op(PortOp::Ne, 443));
    assert_eq!(r[2].users.as_deref(), Some(&["alice".to_string()][..]));
    assert_eq!(r[2].timeout_io, Some(5));
    assert_eq!(r[2].number, 3);
    assert_eq!(c.client_rules[0].number, 1);
    assert_eq!(c.client_rules[0].from.port, PortMatch::Op(PortOp::Eq, 80));
}

#[test]
fn log_targets_and_globals() {
    let c = ok("logoutput: syslog/local3 stderr /var/log/sockd.log\n\
        errorlog: syslog\n\
        debug: 2\n\
        internal: ::1 port = 1081\n\
        internal: eth0\n\
        external: 127.0.0.1\n\
        external.rotation: same-same\n\
        timeout.negotiate: 5\ntimeout.connect: 0\ntimeout.io: 86400\n");
    assert_eq!(
        c.logoutput,
        vec![
            LogTarget::Syslog(Facility::Local(3)),
            LogTarget::Stderr,
            LogTarget::File("/var/log/sockd.log".into())
        ]
    );
    assert_eq!(c.errorlog, vec![LogTarget::Syslog(Facility::Daemon)]);
    assert_eq!(c.debug, 2);
    assert_eq!(c.internals[0].port, 1081);
    assert_eq!(
        c.internals[1],
        Internal {
            host: HostAddr::Name("eth0".into()),
            port: 1080
        }
    );
    assert_eq!(c.external_rotation, Rotation::SameSame);
    assert_eq!(
        c.timeouts,
        Timeouts {
            negotiate: 5,
            connect: 0,
            io: 86400
        }
    );
}

#[test]
fn every_error_is_reported_with_its_position() {
    let errs = errors(
        "sockmethod: none\n\
         debug: 7\n\
         logoutput: syslog/local9\n\
         socks pass { from: 127.0.0.1 to: 0/0 port = nosuchservice\n\
         log: connect bogus\n\
         }\n\
         timeout.io: 3\n",
    );
    assert_eq!(
        errs,
        [
            "test.conf:1:1: unknown keyword \"sockmethod\"; did you mean \"socksmethod\"?",
            "test.conf:2:1: debug level 7 out of range (expected 0, 1 or 2)",
            "test.conf:3:12: unknown syslog facility \"local9\" (expected user, daemon, auth, authpriv or local0..local7)",
            "test.conf:4:20: no netmask has been specified for the IPv4 address \"127.0.0.1\", but a netmask must be specified in this context (write \"127.0.0.1/32\")",
            "test.conf:5:14: unknown log keyword \"bogus\" (expected connect disconnect data ioop iooperation error tcpinfo)",
            "test.conf:7:1: server setting \"timeout.io\" after the first rule (line 4); settings must come before rules",
        ]
    );
}

#[test]
fn list_keywords_end_at_end_of_line() {
    // As in Dante, a second list keyword on the same line is read as a list value.
    let errs = errors("socks pass { from: 0/0 to: 0/0\ncommand: connect log: connect\n}\n");
    assert_eq!(
        errs,
        ["test.conf:2:18: unknown command \"log:\" (expected connect, bind, bindreply, udpassociate or udpreply)"]
    );
}

#[test]
fn more_errors() {
    assert_eq!(
        errors("socksmethod: gssapi\n"),
        ["test.conf:1:14: \"socksmethod: gssapi\" is not supported yet: ferrosocks cannot authenticate clients this way"]
    );
    assert_eq!(
        errors("client pass { from: 0/0 to: 0/0\ncommand: connect\n}\n"),
        ["test.conf:2:1: \"command\" is not valid in a client rule"]
    );
    assert_eq!(
        errors("socks pass { from: 0/0 to: 0/0\n"),
        ["test.conf:2:1: the socks rule opened on line 1 is not closed: \"}\" expected before end of file"]
    );
    assert_eq!(
        errors("timeout.tcp_fin_wait: 5\n"),
        ["test.conf:1:1: \"timeout.tcp_fin_wait\" is not supported yet"]
    );
    assert_eq!(
        errors("client pass { from: 0/0 to: 0/0\nuser: alice\nsocksmethod: none\n}\n"),
        ["test.conf:3:1: \"socksmethod\" in a client rule is not supported yet"]
    );
    assert_eq!(
        errors("from: 0/0\n"),
        ["test.conf:1:1: \"from\" is only valid inside a rule"]
    );
    assert_eq!(
        errors("internal 127.0.0.1\n"),
        ["test.conf:1:1: expected \":\" after keyword \"internal\""]
    );
    assert_eq!(
        errors("socks pass { from: 10.0.0.0/33 to: 0/0 port 9-1 }\n"),
        [
            "test.conf:1:20: bad netmask \"33\" in \"10.0.0.0/33\" (expected a prefix length or a dotted mask)",
        ]
    );
}

#[test]
fn unclosed_rule_is_reported_where_the_next_rule_begins() {
    // The socks rule of line 3 lacks its "}": the error names its line and points at
    // the rule that follows; that rule, the route and their own errors are still read.
    let text = "socksmethod: none\n\
        client pass { from: 0/0 to: 0/0 }\n\
        socks pass {\n\
        \x20   from: 0/0 to: 0/0\n\
        \x20   log: connect\n\
        \n\
        socks block { from: 0/0 to: 10.0.0.0/8\n\
        \x20   log: bogus\n\
        }\n\
        client block {\n\
        \x20   from: 0/0 to: 0/0\n\
        pass { from: 0/0 to: 0/0 }\n\
        route {\n\
        \x20   from: 0/0 to: 0/0 via: direct\n\
        route { from: 0/0 to: 0/0 via: direct }\n\
        route { via: direct\n";
    assert_eq!(
        errors(text),
        [
            "test.conf:7:1: the socks rule opened on line 3 is not closed: \"}\" expected before \"socks\"",
            "test.conf:8:10: unknown log keyword \"bogus\" (expected connect disconnect data ioop iooperation error tcpinfo)",
            "test.conf:12:1: the client rule opened on line 10 is not closed: \"}\" expected before \"pass\"",
            "test.conf:15:1: the route opened on line 13 is not closed: \"}\" expected before \"route\"",
            "test.conf:17:1: the route opened on line 16 is not closed: \"}\" expected before end of file",
        ]
    );
}

#[test]
fn username_without_passwordfile_means_system_users() {
    // As in Dante: no passwordfile, so `username` checks the system's users.
    let p = parse(
        "t",
        "socksmethod: username none\n\
         socks pass { from: 0/0 to: 0/0\nsocksmethod: username\n}\n",
    )
    .unwrap();
    assert_eq!(
        p.config.socksmethods,
        vec![AuthMethod::Username, AuthMethod::None]
    );
    assert_eq!(
        p.config.socks_rules[0].socksmethods,
        Some(vec![AuthMethod::Username])
    );
    assert_eq!(p.config.passwordfile, None);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let with_file = ok("passwordfile: /etc/ferrosocks/users\nsocksmethod: username\n");
    assert_eq!(
        with_file.passwordfile.as_deref(),
        Some(Path::new("/etc/ferrosocks/users"))
    );
}

#[test]
fn origins_point_at_the_values_checked_at_start_up() {
    let text = "logoutput: stderr /var/log/a.log\n\
        errorlog: syslog  /var/log/e.log\n\
        internal: eth7 port = 1080\n\
        internal:127.0.0.1\n\
        external: 192.0.2.1\n\
        passwordfile: /etc/ferrosocks/users\n\
        user.privileged: root\n\
        user.notprivileged: nobody\n\
        user.libwrap: libwrap\n\
        log.traffic.file: /var/log/t.log\n\
        log.auth.level: notice\n\
        logoutput: /var/log/b.log\n";
    let c = ok(text);
    let at = |line, col| Pos { line, col };
    let o = &c.origins;
    assert_eq!(o.file, "test.conf");
    assert_eq!(o.internals, [at(3, 11), at(4, 10)]);
    assert_eq!(o.internals.len(), c.internals.len());
    assert_eq!(o.externals, [at(5, 11)]);
    assert_eq!(o.passwordfile, Some(at(6, 15)));
    assert_eq!(o.user_privileged, Some(at(7, 18)));
    assert_eq!(o.user_unprivileged, Some(at(8, 21)));
    assert_eq!(o.user_libwrap, Some(at(9, 15)));
    // A second logoutput line replaces the first, positions with it.
    assert_eq!(c.logoutput, [LogTarget::File("/var/log/b.log".into())]);
    assert_eq!(o.logoutput, [at(12, 12)]);
    assert_eq!(o.errorlog, [at(2, 11), at(2, 19)]);
    assert_eq!(o.log_settings, [at(10, 19), at(11, 17)]);
    assert_eq!(
        o.diagnostic(
            o.internals[0],
            "internal: no interface or local address \"eth7\"".into()
        )
        .to_string(),
        "test.conf:3:11: internal: no interface or local address \"eth7\""
    );
    // Positions stay out of the values compared on reload.
    let moved = ok(&format!("\n\n{text}"));
    assert_eq!(moved.internals, c.internals);
    assert_ne!(moved.origins, c.origins);
    assert_eq!(Config::default().origins, Origins::default());
}

#[test]
fn deprecated_method_warns() {
    let p = parse("t", "method: none\n").unwrap();
    assert_eq!(p.config.socksmethods, vec![AuthMethod::None]);
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0]
        .to_string()
        .starts_with("t:1:1: \"method\" is deprecated"));
}

#[test]
fn logging_keywords() {
    let c = ok("log.traffic.file: /var/log/t.log\nlog.AUTH.level: notice\nlog.mgmt.operators: on\n\
        log.config.facility: default\nlog.default.facility: local3\nlogformat: json\nverb: 4\nmute: 20\n\
        logoutput: json:/var/log/x.json stderr\n\
        external.log.warning.error: no-route dns-any ECONNREFUSED EAI_AGAIN\n\
        socks pass { from: 0/0 to: 0/0\ninternal.log.err.error: ECONNRESET\nlog: connect tcpinfo\n}\n");
    assert_eq!(c.log_settings.len(), 4);
    assert_eq!(c.log_settings[0].subsystem, "traffic");
    assert_eq!(
        c.log_settings[1].value,
        SubsystemValue::Level("notice".into())
    );
    assert_eq!(c.log_settings[1].origin.to_string(), "test.conf:2:1");
    assert_eq!(
        c.log_settings[3].value,
        SubsystemValue::Facility(FacilityChoice::Default)
    );
    assert_eq!(c.log_default_facility, Some(Facility::Local(3)));
    assert_eq!(
        (c.logformat, c.verb, c.mute),
        (LogFormat::Json, Some(4), 20)
    );
    assert_eq!(
        c.logoutput[0],
        LogTarget::Json(JsonTarget::File("/var/log/x.json".into()))
    );
    let e = &c.error_logs[0];
    assert_eq!((e.side, e.level.as_str()), (ErrorSide::External, "warning"));
    assert!(e.errnos.contains(&libc_econnrefused()) && e.eai.len() > 10);
    assert_eq!(c.socks_rules[0].error_logs[0].side, ErrorSide::Internal);
    assert!(c.socks_rules[0].log.tcpinfo);
    assert_eq!(
        errors("verb: 12\nexternal.log.loud.error: EPIPE\nexternal.log.warning.error: EBOGUS\nlog.traffic.colour: red\n"),
        [
            "test.conf:1:1: verb 12 out of range (expected 0 to 11)",
            "test.conf:2:1: unknown level \"loud\" in \"external.log.loud.error\" (expected emerg alert crit err warning notice info debug)",
            "test.conf:3:29: unknown error symbol \"EBOGUS\" (expected an errno name, an EAI_* name, no-route, dns-any or system-any)",
            "test.conf:4:1: unknown setting \"colour\" in \"log.traffic.colour\" (expected level, file, facility or operators)",
        ]
    );
}

/// The messages of a file's warnings, with their positions.
fn warnings(text: &str) -> Vec<String> {
    match parse("test.conf", text) {
        Ok(p) => p.warnings.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

#[test]
fn status_file_settings() {
    let c = ok("status.version: 3\nstatus.interval: 5\nstatus.file: /run/ferrosocks/status\n");
    assert_eq!(
        c.status,
        Some(StatusConfig {
            file: "/run/ferrosocks/status".into(),
            interval: 5,
            version: 3
        })
    );
    assert_eq!(c.status_version, 3);
    assert_eq!(c.origins.status_file, Some(Pos { line: 3, col: 14 }));
    // Defaults: every 10 s, version 1, as OpenVPN's.
    let c = ok("status.file: /run/s\n");
    let s = c.status.unwrap();
    assert_eq!((s.interval, s.version, c.status_version), (10, 1, 1));
    // No file: no status file, but the version is the management command's default.
    let c = ok("status.version: 2\n");
    assert_eq!((c.status, c.status_version), (None, 2));
    assert_eq!(Config::default().status_version, 1);
    assert_eq!(
        warnings("status.interval: 30\n"),
        ["test.conf:1:1: \"status.interval\" has no effect without \"status.file\""]
    );
    assert_eq!(
        errors("status.interval: 0\nstatus.version: 4\nstatus.version: 0\nstatus.interval: soon\nstatus.file:\nstatus.colour: red\n"),
        [
            "test.conf:1:18: status.interval 0 out of range (expected 1 or more seconds)",
            "test.conf:2:17: status.version 4 out of range (expected 1, 2 or 3)",
            "test.conf:3:17: status.version 0 out of range (expected 1, 2 or 3)",
            "test.conf:4:18: \"soon\" is not a number (expected a number after \"status.interval\")",
            "test.conf:5:13: expected a file path after \"status.file\", found end of line",
            "test.conf:6:1: unknown keyword \"status.colour\"",
        ]
    );
}

#[test]
fn management_settings() {
    let c = ok(
        "management.client-auth: on\nmanagement.password: /etc/ferrosocks/mgmt.pw\n\
        management: 127.0.0.1 port = 7505\n",
    );
    assert_eq!(
        c.management,
        Some(ManagementConfig {
            listen: MgmtListen::Tcp("127.0.0.1:7505".parse().unwrap()),
            password: Some("/etc/ferrosocks/mgmt.pw".into()),
            client_auth: true,
        })
    );
    let at = |line, col| Some(Pos { line, col });
    assert_eq!(c.origins.management, at(3, 13));
    assert_eq!(c.origins.management_password, at(2, 22));
    let c = ok("management: /run/ferrosocks/mgmt.sock\n");
    assert_eq!(
        c.management,
        Some(ManagementConfig {
            listen: MgmtListen::Unix("/run/ferrosocks/mgmt.sock".into()),
            password: None,
            client_auth: false,
        })
    );
    for (text, addr) in [
        ("management: ::1 port = 7505\n", "[::1]:7505"),
        ("management: 127.0.0.2 port: 0\n", "127.0.0.2:0"),
        (
            "management: ::ffff:127.0.0.1 port = 1\n",
            "[::ffff:127.0.0.1]:1",
        ),
        (
            "management:0.0.0.0 port=7505\nmanagement.password: /p\n",
            "0.0.0.0:7505",
        ),
    ] {
        let listen = ok(text).management.unwrap().listen;
        assert_eq!(listen, MgmtListen::Tcp(addr.parse().unwrap()), "{text}");
    }
    assert_eq!(Config::default().management, None);
    let both = ok(&data("operator-interfaces.conf"));
    assert_eq!(both.status.unwrap().version, 2);
    assert_eq!(
        both.management.unwrap().listen,
        MgmtListen::Tcp("127.0.0.1:7505".parse().unwrap())
    );
    assert_eq!(
        warnings("management: :: port = 7505\n"),
        ["test.conf:1:13: the management interface listens on every address without \"management.password\": anyone who reaches port 7505 can control the server"]
    );
    assert_eq!(
        warnings("management.password: /p\nmanagement.client-auth: off\n"),
        [
            "test.conf:1:1: \"management.password\" has no effect without \"management\"",
            "test.conf:2:1: \"management.client-auth\" has no effect without \"management\"",
        ]
    );
    let long = format!("/run/{}", "s".repeat(103));
    assert_eq!(
        errors(&format!(
            "management: 192.0.2.1 port = 7505\nmanagement: 127.0.0.1\nmanagement: localhost port = 7505\n\
             management: /run/m.sock port = 7505\nmanagement: {long}\nmanagement.client-auth: maybe\n\
             management: 127.0.0.1 port = 70000\nmanagement.bogus: 1\n"
        )),
        [
            "test.conf:1:13: management address \"192.0.2.1\" is neither a loopback address nor the any address (expected 127.0.0.1, ::1, 0.0.0.0 or ::, or a socket path)",
            "test.conf:2:22: expected \"port = N\" after \"management\", found end of line",
            "test.conf:3:13: \"localhost\" is not a socket path or an IP address (expected a path such as /run/ferrosocks/mgmt.sock, or 127.0.0.1 port = 7505)",
            "test.conf:4:25: a socket path takes no port (\"management: /run/m.sock\")",
            &format!("test.conf:5:13: socket path \"{long}\" is 108 bytes long; a Unix socket path holds at most 107"),
            "test.conf:6:25: expected on or off after \"management.client-auth\", found \"maybe\"",
            "test.conf:7:30: port 70000 out of range (0-65535)",
            "test.conf:8:1: unknown keyword \"management.bogus\"",
        ]
    );
}

fn libc_econnrefused() -> i32 {
    111
}

#[test]
fn log_interim_global_and_per_socks_rule() {
    let c = ok("log.interim: 300\ninternal: 127.0.0.1 port = 1080\nexternal: 127.0.0.1\nsocks pass {\n    from: 0/0 to: 0/0\n    log.interim: 60\n}\nsocks pass {\n    from: 0/0 to: 0/0\n}\n");
    assert_eq!(c.log_interim, 300);
    assert_eq!(c.socks_rules[0].log_interim, Some(60));
    assert_eq!(c.socks_rules[1].log_interim, None);
    let e = errors("internal: 127.0.0.1 port = 1080\nexternal: 127.0.0.1\nclient pass {\n    from: 0/0 to: 0/0\n    log.interim: 60\n}\n");
    assert!(e.iter().any(|m| m.contains("log.interim")), "{e:?}");
    let e = errors("log.interim: soon\ninternal: 127.0.0.1 port = 1080\nexternal: 127.0.0.1\n");
    assert!(e.iter().any(|m| m.contains("1:")), "{e:?}");
}

#[test]
fn metrics_settings() {
    let c = ok("metrics: 127.0.0.1 port = 9105\n");
    assert_eq!(
        c.metrics,
        Some(MetricsConfig {
            listen: "127.0.0.1:9105".parse().unwrap(),
            control: false,
        })
    );
    assert_eq!(c.origins.metrics, Some(Pos { line: 1, col: 10 }));
    assert_eq!(ok("logoutput: stderr\n").metrics, None, "nothing listens");
    let c = ok(
        "management: /m.sock\nmanagement.password: /p\nmetrics.control: on\nmetrics: :: port = 0\n",
    );
    assert_eq!(
        c.metrics,
        Some(MetricsConfig {
            listen: "[::]:0".parse().unwrap(),
            control: true,
        })
    );
    let w = warnings("metrics.control: on\n");
    assert!(
        w[0].contains("test.conf:1:1") && w[0].contains("without \"metrics\""),
        "{w:?}"
    );
    let w = warnings("metrics: 127.0.0.1 port = 1\nmetrics.control: on\n");
    assert!(w[0].contains("management.password"), "{w:?}");
    let e = errors("metrics: localhost port = 9105\n");
    assert!(
        e[0].contains("test.conf:1:10") && e[0].contains("not an IP address"),
        "{e:?}"
    );
    let e = errors("metrics: 127.0.0.1\n");
    assert!(e[0].contains("port = N"), "{e:?}");
}

#[test]
fn logdir_settings_defaults_ranges_and_warnings() {
    let c = ok("logdir: /var/log/ferrosocks/main\n");
    assert_eq!(
        c.logdir,
        Some(LogDirConfig {
            path: "/var/log/ferrosocks/main".into(),
            size: 99_999,
            count: 10,
            stamp: false,
            ship: None,
            ship_timeout: 30,
        })
    );
    let c = ok("logdir.ship.timeout: 5\nlogdir.stamp: on\nlogdir.count: 3\nlogdir.size: 4096\nlogdir.ship: collector.example port = 10116\nlogdir: ./log\n");
    let d = c.logdir.unwrap();
    assert_eq!(
        (d.size, d.count, d.stamp, d.ship_timeout),
        (4096, 3, true, 5)
    );
    assert_eq!(
        d.ship,
        Some(ShipTarget {
            host: "collector.example".into(),
            port: 10116
        })
    );
    assert_eq!(
        errors("logdir: /l\nlogdir.size: 100\nlogdir.count: 1\nlogdir.ship: 10.0.0.1\nlogdir.stamp: maybe\n"),
        [
            "test.conf:2:14: logdir.size 100 out of range (expected 4096 to 16777215 bytes, as multilog's s)",
            "test.conf:3:15: logdir.count 1 out of range (expected 2 to 100000 files, current included, as multilog's n)",
            "test.conf:4:22: expected \"port = N\" after \"logdir.ship\", found end of line",
            "test.conf:5:15: expected on or off after \"logdir.stamp\", found \"maybe\"",
        ]
    );
}

#[test]
fn syslog_remote_settings() {
    let c = ok("syslog.remote: 10.0.0.6 port = 514\n");
    assert_eq!(
        c.syslog_remote,
        Some(SyslogRemoteConfig {
            host: "10.0.0.6".into(),
            port: 514,
            protocol: RemoteProtocol::Tcp,
            ca: None
        })
    );
    let c = ok("syslog.remote.ca: /ca.pem\nsyslog.remote.protocol: tls\nsyslog.remote: logs.example port = 6514\n");
    let r = c.syslog_remote.unwrap();
    assert_eq!(
        (r.protocol, r.ca),
        (RemoteProtocol::Tls, Some("/ca.pem".into()))
    );
    assert_eq!(
        errors("syslog.remote: 10.0.0.6 port = 514\nsyslog.remote.protocol: relp\n"),
        ["test.conf:2:25: expected tcp, tls or udp after \"syslog.remote.protocol\", found \"relp\""]
    );
}
