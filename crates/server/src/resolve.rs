//! Name resolution through the system's getaddrinfo(3), with its real error codes.
//!
//! tokio's `lookup_host` folds every failure into an `io::Error` whose text varies; Dante
//! prints `gai_strerror()` ("Name or service not known") and issue 4's `EAI_*` warning
//! classes need the code itself, so this calls getaddrinfo directly on the blocking pool.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::net::{IpAddr, SocketAddr};

/// A failed lookup: the `EAI_*` code and the system's text for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct ResolveError {
    /// getaddrinfo's return value (`EAI_NONAME`, …).
    pub code: i32,
    /// `gai_strerror(code)` (with Debian's ` for IPv4 address` after `EAI_NONAME`'s), or
    /// the errno text for `EAI_SYSTEM`.
    pub text: String,
}

/// Resolves `host` to its addresses (TCP), in the order the system gives them.
pub async fn resolve(host: &str) -> Result<Vec<IpAddr>, ResolveError> {
    let host = host.to_owned();
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || resolve_blocking(&host))
        .await
        .unwrap_or_else(|_| {
            Err(ResolveError {
                code: libc::EAI_SYSTEM,
                text: "resolver task failed".into(),
            })
        });
    crate::events::Resolved {
        took: started.elapsed(),
        failure: result.as_ref().err().map(|e| e.code),
    }
    .emit();
    result
}

/// Blocking form of [`resolve`].
pub fn resolve_blocking(host: &str) -> Result<Vec<IpAddr>, ResolveError> {
    let c_host = CString::new(host).map_err(|_| ResolveError {
        code: libc::EAI_NONAME,
        text: "name contains a NUL byte".into(),
    })?;
    // SAFETY: an all-zero addrinfo is a valid "no hints" value; fields are set below.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: c_host is a valid C string, hints a valid addrinfo, res an out pointer.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        let text = if rc == libc::EAI_SYSTEM {
            std::io::Error::last_os_error().to_string()
        } else {
            // SAFETY: gai_strerror returns a pointer to a static string.
            unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }
                .to_string_lossy()
                .into_owned()
        };
        // Debian's Dante 1.4.2 (the one ferrosocks replaces) ends this one failure with
        // " for IPv4 address" (observed; upstream's log_resolvefailed() does not).
        let text = if rc == libc::EAI_NONAME {
            text + " for IPv4 address"
        } else {
            text
        };
        return Err(ResolveError { code: rc, text });
    }
    let mut out = Vec::new();
    let mut cur = res;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getaddrinfo returned, not yet freed.
        let ai = unsafe { &*cur };
        if let Some(ip) = sockaddr_ip(ai) {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        cur = ai.ai_next;
    }
    // SAFETY: res came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    Ok(out)
}

fn sockaddr_ip(ai: &libc::addrinfo) -> Option<IpAddr> {
    if ai.ai_addr.is_null() {
        return None;
    }
    match ai.ai_family {
        libc::AF_INET => {
            // SAFETY: the family says ai_addr points to a sockaddr_in.
            let sa = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in) };
            Some(IpAddr::from(u32::from_be(sa.sin_addr.s_addr).to_be_bytes()))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says ai_addr points to a sockaddr_in6.
            let sa = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in6) };
            Some(IpAddr::from(sa.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

/// The addresses of a local interface, if an interface of that name exists.
pub fn interface_addrs(name: &str) -> Option<Vec<IpAddr>> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    let mut found = false;
    let mut out = Vec::new();
    for ifa in addrs.filter(|a| a.interface_name == name) {
        found = true;
        let Some(addr) = ifa.address else { continue };
        if let Some(v4) = addr.as_sockaddr_in() {
            out.push(IpAddr::V4(v4.ip()));
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            out.push(IpAddr::V6(v6.ip()));
        }
    }
    found.then_some(out)
}

/// Addresses for a name that may be an interface or a host name.
pub async fn name_addrs(name: &str) -> Result<Vec<IpAddr>, ResolveError> {
    match interface_addrs(name) {
        Some(a) => Ok(a),
        None => resolve(name).await,
    }
}

/// Socket addresses for `host` and `port`.
pub async fn socket_addrs(host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
    Ok(resolve(host)
        .await?
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_and_failures() {
        let a = resolve_blocking("localhost").unwrap();
        assert!(a.iter().any(|ip| ip.is_loopback()), "{a:?}");
        let e = resolve_blocking("nonexistent.invalid").unwrap_err();
        assert!(
            e.code == libc::EAI_NONAME || e.code == libc::EAI_AGAIN,
            "{e:?}"
        );
        assert!(!e.text.is_empty());
        // Debian's Dante 1.4.2's words.
        if e.code == libc::EAI_NONAME {
            assert_eq!(e.to_string(), "Name or service not known for IPv4 address");
        }
        assert!(interface_addrs("lo")
            .unwrap()
            .iter()
            .any(|ip| ip.is_loopback()));
        assert!(interface_addrs("no-such-if0").is_none());
    }
}
