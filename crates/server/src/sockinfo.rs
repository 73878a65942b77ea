//! Kernel facts about a socket: TCP_INFO (for `log: tcpinfo`) and the bytes waiting in
//! its buffers (for the SIGUSR1 dump).
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, RawFd};

use traffic_log::tcpinfo::TcpInfo;

/// TCP_INFO of a socket, if the kernel gives it.
pub(crate) fn tcp_info(sock: &impl AsRawFd) -> Option<TcpInfo> {
    // SAFETY: an all-zero tcp_info is valid; getsockopt writes at most `len` bytes into it.
    let mut t: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the descriptor is borrowed from a live socket; t and len are valid out-pointers.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut t as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(TcpInfo {
        state: t.tcpi_state,
        ca_state: t.tcpi_ca_state,
        retransmits: t.tcpi_retransmits,
        probes: t.tcpi_probes,
        backoff: t.tcpi_backoff,
        options: t.tcpi_options,
        snd_wscale: t.tcpi_snd_rcv_wscale & 0x0f,
        rcv_wscale: t.tcpi_snd_rcv_wscale >> 4,
        rto: t.tcpi_rto,
        ato: t.tcpi_ato,
        snd_mss: t.tcpi_snd_mss,
        rcv_mss: t.tcpi_rcv_mss,
        unacked: t.tcpi_unacked,
        sacked: t.tcpi_sacked,
        lost: t.tcpi_lost,
        retrans: t.tcpi_retrans,
        fackets: t.tcpi_fackets,
        last_data_sent: t.tcpi_last_data_sent,
        last_ack_sent: t.tcpi_last_ack_sent,
        last_data_recv: t.tcpi_last_data_recv,
        last_ack_recv: t.tcpi_last_ack_recv,
        pmtu: t.tcpi_pmtu,
        rcv_ssthresh: t.tcpi_rcv_ssthresh,
        rtt: t.tcpi_rtt,
        rttvar: t.tcpi_rttvar,
        snd_ssthresh: t.tcpi_snd_ssthresh,
        snd_cwnd: t.tcpi_snd_cwnd,
        advmss: t.tcpi_advmss,
        reordering: t.tcpi_reordering,
        rcv_rtt: t.tcpi_rcv_rtt,
        rcv_space: t.tcpi_rcv_space,
        total_retrans: t.tcpi_total_retrans,
    })
}

/// TCP_INFO of a descriptor the caller keeps open (a registry entry's).
pub(crate) fn tcp_info_fd(fd: RawFd) -> Option<TcpInfo> {
    // SAFETY: the caller holds the session's registry entry, which keeps the descriptor open.
    tcp_info(&unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })
}

/// Bytes received but not yet read (FIONREAD).
pub(crate) fn unread(fd: RawFd) -> Option<u64> {
    ioctl_count(fd, libc::FIONREAD)
}

/// Bytes written but not yet sent (SIOCOUTQ, i.e. TIOCOUTQ).
pub(crate) fn unsent(fd: RawFd) -> Option<u64> {
    ioctl_count(fd, libc::TIOCOUTQ)
}

fn ioctl_count(fd: RawFd, request: libc::Ioctl) -> Option<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: the caller holds the session's registry entry, which keeps the descriptor
    // open; n is a valid out-pointer for these requests.
    let rc = unsafe { libc::ioctl(fd, request, &mut n) };
    (rc == 0).then_some(n.max(0) as u64)
}
