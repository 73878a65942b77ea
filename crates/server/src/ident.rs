//! The RFC 1413 (ident) client behind `clientmethod: rfc931` and `socksmethod: rfc931`.
//!
//! Asks the client's identd (port 113 on the client's address) who owns the connection,
//! from the proxy address the client reached, within a time limit. The answer's user id
//! becomes the session's user: matched by `user:` in rules and logged as
//! `rfc931%USER@CLIENT`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The identd port.
const IDENT_PORT: u16 = 113;
/// Longest answer read (RFC 1413 allows 1000 characters).
const MAX_ANSWER: usize = 1024;

/// Asks who owns the connection from `client` to `local`.
pub(crate) async fn query(
    client: SocketAddr,
    local: SocketAddr,
    limit: Duration,
) -> Result<String, String> {
    let ask = async {
        let server = SocketAddr::new(client.ip(), IDENT_PORT);
        let source = |_: &SocketAddr| Some(local.ip());
        let (mut s, _) = crate::connect::connect(&[server], source, None)
            .await
            .map_err(|e| {
                format!(
                    "ident query to {server} failed: {}",
                    crate::errno_text(&e.error)
                )
            })?;
        s.write_all(format!("{} , {}\r\n", client.port(), local.port()).as_bytes())
            .await
            .map_err(|e| format!("ident query to {server} failed: {}", crate::errno_text(&e)))?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 256];
        while !answer.contains(&b'\n') && answer.len() < MAX_ANSWER {
            let n = s
                .read(&mut chunk)
                .await
                .map_err(|e| format!("ident answer from {server}: {}", crate::errno_text(&e)))?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
        }
        parse_answer(&String::from_utf8_lossy(&answer))
    };
    tokio::time::timeout(limit, ask).await.unwrap_or_else(|_| {
        Err(format!(
            "no ident answer from {} within {}s",
            client.ip(),
            limit.as_secs()
        ))
    })
}

/// `PORTS : USERID : OS [, CHARSET] : USER` or `PORTS : ERROR : WHAT`.
fn parse_answer(line: &str) -> Result<String, String> {
    let line = line.lines().next().unwrap_or_default();
    let mut parts = line.splitn(4, ':');
    let (_ports, kind) = (parts.next(), parts.next().map(str::trim));
    match kind {
        Some("USERID") => {
            let user = parts
                .nth(1)
                .map(|u| u.trim_start_matches(' ').trim_end())
                .unwrap_or_default();
            if user.is_empty() {
                Err("ident answer has an empty user id".into())
            } else {
                Ok(user.to_owned())
            }
        }
        Some("ERROR") => Err(format!(
            "identd says {}",
            parts.next().unwrap_or_default().trim()
        )),
        _ => Err(format!(
            "malformed ident answer \"{}\"",
            traffic_log::vis::encode(line.as_bytes())
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_answer;

    #[test]
    fn answers() {
        assert_eq!(
            parse_answer("6193, 23 : USERID : UNIX : stjohns\r\n"),
            Ok("stjohns".into())
        );
        assert_eq!(
            parse_answer("6193, 23 : USERID : UNIX, UTF-8 : a:b\r\n"),
            Ok("a:b".into())
        );
        assert_eq!(
            parse_answer("6195, 26 : ERROR : NO-USER\r\n"),
            Err("identd says NO-USER".into())
        );
        assert!(parse_answer("garbage").is_err());
    }
}
