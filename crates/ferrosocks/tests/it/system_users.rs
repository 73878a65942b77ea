//! `socksmethod: username` without a `passwordfile`: the system's users (shadow entry,
//! then crypt), as Dante checks them. The test creates real users with useradd and
//! chpasswd, so it needs root (./test.sh runs as root in CI) and says so when it is not.

use crate::support::*;

#[test]
fn username_authentication_with_system_users() {
    logins_of_system_users("");
}

/// Dropped to nobody, the server cannot read /etc/shadow: its privileged helper checks.
#[test]
fn system_users_after_a_privilege_drop() {
    logins_of_system_users("user.unprivileged: nobody\n");
}

fn logins_of_system_users(extra: &str) {
    let http = Helper::http();
    let alice = SystemUser::new();
    alice.set_password("sys-s3cret-pw");
    let locked = SystemUser::new();
    locked.set_password("locked-pw");
    locked.admin("usermod", &["-L"]);
    let unknown = format!("fsk-test-{}-none", std::process::id());
    let proxy = Proxy::start(&format!(
        "logoutput: @LOG@\ninternal: 127.0.0.1 port = 0\nsocksmethod: username\n{extra}\
         client pass {{ from: 127.0.0.0/8 to: 0/0\nlog: error\n}}\n\
         socks pass {{ from: 127.0.0.0/8 to: 0/0\nlog: connect disconnect error\n}}\n",
    ));
    let p = proxy.addr.to_string();
    let url = format!("http://localhost:{}/", http.addr.port());
    let login = |user: &str, password: &str| {
        curl(&[
            "--socks5-hostname",
            &p,
            "--proxy-user",
            &format!("{user}:{password}"),
            &url,
        ])
    };

    let (code, out, err) = login(&alice.name, "sys-s3cret-pw");
    assert_eq!((code, out.as_str()), (0, HTTP_BODY), "{err}");
    // curl's exit status 97: the proxy handshake failed (the server said no).
    for (user, password) in [
        (alice.name.as_str(), "wrong-pw"),
        (unknown.as_str(), "sys-s3cret-pw"),
        (locked.name.as_str(), "locked-pw"),
    ] {
        let (code, out, err) = login(user, password);
        assert_eq!((code, out.as_str()), (97, ""), "{user}: {err}");
    }

    // Dante 1.4.2's words for system users.
    let failed = |user: &str, why: &str| {
        match why {
        "unknown user" => format!(
            "could not access user \"{user}\"'s records in the system password file: no system error"
        ),
        _ => format!("system password authentication failed for user \"{user}\""),
    }
    };
    proxy.wait_for("the three refusals", |_| {
        proxy
            .records()
            .iter()
            .filter(|r| r.starts_with("block(1): tcp/accept ]: "))
            .count()
            == 3
    });
    let records = proxy.records();
    let all = records.join("\n");
    assert!(
        all.contains(&format!(
            "pass(1): tcp/connect [: username%{}@127.0.0.1.",
            alice.name
        )),
        "{all}"
    );
    for (user, why) in [
        (alice.name.as_str(), "password mismatch"),
        (unknown.as_str(), "unknown user"),
        (locked.name.as_str(), "account locked or without a password"),
    ] {
        let want = failed(user, why);
        assert!(
            records
                .iter()
                .any(|r| r.starts_with("block(1): tcp/accept ]: ") && r.ends_with(&want)),
            "no block record ending with {want:?}:\n{all}"
        );
    }
    let log = proxy.messages().join("\n");
    for secret in ["sys-s3cret-pw", "wrong-pw", "locked-pw", "$y$"] {
        assert!(!log.contains(secret), "a secret reached the log:\n{log}");
    }
}
