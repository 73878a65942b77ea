//! The system-call helpers the two floor relays share (`floorproxy` on epoll,
//! `floor_uring` on a ring): IPv4 socket addresses, `getsockname`, an integer socket
//! option, and the exit on SIGTERM/SIGINT that lets callgrind and strace write their output.

use std::ffi::c_int;
use std::net::SocketAddrV4;

/// `a` as the kernel's `sockaddr_in`.
pub fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// The local address of the IPv4 socket `fd` (`getsockname`).
pub fn local_addr(fd: c_int) -> SocketAddrV4 {
    // SAFETY: an all-zero sockaddr_in is valid; getsockname writes at most `len` bytes.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    unsafe { libc::getsockname(fd, &mut sa as *mut _ as *mut libc::sockaddr, &mut len) };
    SocketAddrV4::new(
        u32::from_be(sa.sin_addr.s_addr).into(),
        u16::from_be(sa.sin_port),
    )
}

/// Sets the integer socket option `level`/`opt` of `fd` to `v` (errors ignored).
pub fn set_int(fd: c_int, level: c_int, opt: c_int, v: c_int) {
    // SAFETY: `v` outlives the call and its size is passed.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            &v as *const c_int as *const libc::c_void,
            size_of::<c_int>() as libc::socklen_t,
        )
    };
}

/// Exits at once on SIGTERM and SIGINT (a clean exit_group, so that callgrind and
/// strace write their output).
pub fn exit_on_term() {
    extern "C" fn on_term(_: c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(0) }
    }
    // SAFETY: the handler only calls _exit.
    unsafe {
        libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_term as *const () as libc::sighandler_t);
    }
}
