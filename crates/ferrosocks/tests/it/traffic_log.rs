//! The traffic log through the real binary, compared with golden transcripts in
//! Dante 1.4.2's exact format (ports normalized, see `support::normalize`).

use std::process::Command;

use crate::support::*;

fn curl_hostname(proxy: &dyn Server, target: std::net::SocketAddr) -> String {
    let (code, out, err) = run(Command::new("curl")
        .arg("-sS")
        .arg("--socks5-hostname")
        .arg(proxy.addr().to_string())
        .arg(format!("http://localhost:{}/", target.port())));
    assert_eq!(code, 0, "curl failed: {err}");
    out
}

/// Replaces the HTTP request and response sizes in I/O lines and summaries by REQ and RESP.
fn name_counts(text: &str, req: usize, resp: usize) -> String {
    text.replace(&format!("({req})"), "(REQ)")
        .replace(&format!("({resp})"), "(RESP)")
        .replace(&format!(" -> {req}, {req} -> "), " -> REQ, REQ -> ")
        .replace(&format!("]: {resp} -> "), "]: RESP -> ")
        .replace(&format!(" -> {resp}: "), " -> RESP: ")
        .replace(&format!(" -> {req}: "), " -> REQ: ")
}

#[test]
fn connect_session_logs_every_phase_like_dante() {
    assert_golden(
        "curl-hostname-ioop.golden",
        &curl_hostname_ioop(Impl::Ferrosocks),
    );
}

/// curl --socks5-hostname to an HTTP server, every phase logged: curl-hostname-ioop.golden.
pub fn curl_hostname_ioop(imp: Impl) -> String {
    require("curl");
    let http = Helper::http();
    let proxy = imp.start(&conf("connect disconnect ioop"));
    let proxy = &*proxy;
    assert_eq!(curl_hostname(proxy, http.addr), HTTP_BODY);
    proxy.wait_for("the accept summary", |m| m.contains("tcp/accept ]:"));
    let req = http.received.lock().unwrap().len();
    let resp = http_response().len();
    let records = proxy.records();
    name_counts(
        &normalize(
            &records,
            &[(proxy.addr().port(), "PROXY"), (http.addr.port(), "HTTP")],
        ),
        req,
        resp,
    )
}

#[test]
fn blocks_refusals_and_lookups_like_dante() {
    assert_golden("variants.golden", &variants(Impl::Ferrosocks));
}

/// A pass, a block, a refusal, no rule matching and a name that does not resolve:
/// variants.golden.
pub fn variants(imp: Impl) -> String {
    require("curl");
    let http = Helper::http();
    let blocked = closed_port();
    let refused = closed_port();
    let conf = format!(
        "logoutput: @LOG@\n\
         internal: 127.0.0.1 port = 0\n\
         external: 127.0.0.1\n\
         clientmethod: none\n\
         socksmethod: none\n\
         client pass {{\n    from: 127.0.0.0/8 to: 0.0.0.0/0\n    log: connect disconnect error\n}}\n\
         socks block {{\n    from: 127.0.0.0/8 to: 127.0.0.1/32 port = {blocked}\n    log: connect error\n}}\n\
         socks pass {{\n    from: 127.0.0.0/8 to: 127.0.0.0/8\n    command: connect bind udpassociate bindreply udpreply\n    log: connect disconnect error iooperation\n}}\n"
    );
    let proxy = imp.start(&conf);
    let proxy = &*proxy;
    let curl = |url: String, hostname: bool| {
        let flag = if hostname {
            "--socks5-hostname"
        } else {
            "--socks5"
        };
        run(Command::new("curl").args(["-sS", flag, &proxy.addr().to_string(), &url]))
    };
    let (code, out, _) = curl(format!("http://127.0.0.1:{}/", http.addr.port()), false);
    assert_eq!((code, out.as_str()), (0, HTTP_BODY));
    proxy.wait_for("session 1", |m| m.contains("tcp/accept ]: "));
    let (code, _, err) = curl(format!("http://127.0.0.1:{blocked}/"), false);
    assert_eq!(code, 97, "blocked: {err}");
    let (code, _, err) = curl(format!("http://127.0.0.1:{refused}/"), false);
    assert_eq!(code, 97, "refused: {err}");
    let (code, _, _) = curl("http://192.0.2.1:80/".into(), false);
    assert_eq!(code, 97);
    let (code, _, _) = curl("http://nonexistent.invalid/".into(), true);
    assert_eq!(code, 97);
    let records = proxy.wait_for("the last block", |m| {
        m.contains("not performed due to error")
    });
    let _ = records;
    let req = http.received.lock().unwrap().len();
    let resp = http_response().len();
    let text = normalize(
        &proxy.records(),
        &[
            (proxy.addr().port(), "PROXY"),
            (http.addr.port(), "HTTP"),
            (blocked, "BLOCKED"),
            (refused, "REFUSED"),
        ],
    );
    let mut text = name_counts(&text, req, resp);
    // The resolver's text depends on the machine's DNS set-up.
    for gai in [
        "Name or service not known for IPv4 address",
        "Name or service not known",
        "Temporary failure in name resolution",
        "No address associated with hostname",
    ] {
        text = text.replace(gai, "GAI_ERROR");
    }
    text
}

#[test]
fn data_logging_shows_the_bytes_vis_encoded() {
    let echo = Helper::echo();
    let proxy = Proxy::start(&conf("data"));
    let (mut c, reply) = Raw::connect_v4(proxy.addr, echo.addr);
    assert_eq!(reply[1], 0);
    c.send(b"hi there\n");
    assert_eq!(c.read_exact(9), b"hi there\n");
    drop(c);
    let data_line = |m: &str| m.ends_with("(9): hi\\sthere\\n");
    proxy.wait_for("the data line upwards", |m| {
        data_line(m) && m.contains(&format!(" 127.0.0.1.{} (9)", echo.addr.port()))
    });
    proxy.wait_for("the data line downwards", |m| {
        data_line(m) && m.contains(&format!("-: 127.0.0.1.{}", echo.addr.port()))
    });
}

/// A requested name that does not resolve is logged under the client rule's number, as
/// Dante 1.4.2 logs it (it resolves the name before any socks rule): whether a socks
/// rule needed its addresses (`to: 127.0.0.0/8`) or only the connect did (`to: 0/0`).
#[test]
fn a_name_that_does_not_resolve_is_logged_under_the_client_rule() {
    for to in ["127.0.0.0/8", "0/0"] {
        let p = Proxy::start(&format!(
            "logoutput: @LOG@\ninternal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\n\
             client block {{ from: 10.0.0.0/8 to: 0/0\nlog: connect error\n}}\n\
             client pass {{ from: 127.0.0.0/8 to: 0/0\nlog: connect disconnect error\n}}\n\
             socks block {{ from: 0/0 to: 127.0.0.1/32 port = 9\nlog: connect error\n}}\n\
             socks block {{ from: 0/0 to: 127.0.0.1/32 port = 10\nlog: connect error\n}}\n\
             socks pass {{ from: 127.0.0.0/8 to: {to}\nlog: connect disconnect error\n}}\n"
        ));
        let mut c = Raw::connect(p.addr);
        c.send(&[5, 1, 0]);
        assert_eq!(c.read_exact(2), [5, 0]);
        c.send(b"\x05\x01\x00\x03\x13nonexistent.invalid\x00\x50");
        assert_eq!(c.read_to_close()[..2], [5, 0x04], "host unreachable");
        let m = p.wait_for("the accept line", |m| m.contains("tcp/accept ]:"));
        let records: Vec<&String> = m
            .iter()
            .filter(|l| l.starts_with("pass(") || l.starts_with("block("))
            .collect();
        assert_eq!(records.len(), 3, "{to}: {m:?}");
        assert!(
            records[0].starts_with("pass(2): tcp/accept [: "),
            "{to}: {m:?}"
        );
        assert!(
            records[1].starts_with("block(2): tcp/connect ]: 127.0.0.1.")
                && records[1].contains(" 127.0.0.1.")
                && records[1].contains(": could not resolve hostname \"nonexistent.invalid\": "),
            "{to}: {m:?}"
        );
        assert!(
            records[2].starts_with("block(2): tcp/accept ]: 127.0.0.1.")
                && records[2].contains(
                    ": request was not performed due to error: could not resolve hostname"
                ),
            "{to}: {m:?}"
        );
    }
}

/// The two closing orders of a CONNECT: the target first (it sends a banner and
/// closes; the client reads to the end, then closes), and the client first (it sends,
/// half-closes, reads the answer to the end): close-order.golden.
pub fn close_order(imp: Impl) -> String {
    let banner = Helper::start(|mut c, _| {
        use std::io::Write;
        let _ = c.write_all(b"banner\n");
    });
    let after_eof = Helper::after_eof();
    let p = imp.start(&conf("connect disconnect ioop"));
    let (mut c, reply) = Raw::connect_v4(p.addr(), banner.addr);
    assert_eq!(reply[1], 0);
    assert_eq!(c.read_to_close(), b"banner\n");
    drop(c);
    p.wait_for("the first session's end", |m| m.contains("tcp/accept ]:"));
    let (mut c, reply) = Raw::connect_v4(p.addr(), after_eof.addr);
    assert_eq!(reply[1], 0);
    c.send(b"12345");
    c.0.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(c.read_to_close(), b"got 5 bytes");
    drop(c);
    p.wait_for("the second session's end", |_| {
        p.records()
            .iter()
            .filter(|l| l.contains("tcp/accept ]:"))
            .count()
            == 2
    });
    normalize(
        &p.records(),
        &[
            (p.addr().port(), "PROXY"),
            (banner.addr.port(), "BANNER"),
            (after_eof.addr.port(), "AFTER-EOF"),
        ],
    )
}

#[test]
fn the_first_side_to_close_is_named() {
    assert_golden("close-order.golden", &close_order(Impl::Ferrosocks));
}
