//! The TCP_INFO block Dante appends with `log: tcpinfo` (Dante 1.4 `lib/tcpinfo.c`):
//! `\nTCP_INFO:\n`, then one line per field, `%-20s : CLIENT <-> TARGET`, with blank lines
//! between groups; `N/A` for a side whose socket is gone.

/// The fields of Linux's `struct tcp_info` that Dante prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct TcpInfo {
    pub state: u8,
    pub ca_state: u8,
    pub retransmits: u8,
    pub probes: u8,
    pub backoff: u8,
    pub options: u8,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub rto: u32,
    pub ato: u32,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    pub unacked: u32,
    pub sacked: u32,
    pub lost: u32,
    pub retrans: u32,
    pub fackets: u32,
    pub last_data_sent: u32,
    pub last_ack_sent: u32,
    pub last_data_recv: u32,
    pub last_ack_recv: u32,
    pub pmtu: u32,
    pub rcv_ssthresh: u32,
    pub rtt: u32,
    pub rttvar: u32,
    pub snd_ssthresh: u32,
    pub snd_cwnd: u32,
    pub advmss: u32,
    pub reordering: u32,
    pub rcv_rtt: u32,
    pub rcv_space: u32,
    pub total_retrans: u32,
}

const STATES: [&str; 12] = [
    "",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
];

fn options_text(o: u8) -> String {
    let names = [
        (1, "TS"),
        (2, "SACK"),
        (4, "Wscale"),
        (8, "ECN"),
        (16, "ECN_seen"),
        (32, "SYN_data"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| o & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    format!("{o} ({})", set.join(", "))
}

type Field = (&'static str, fn(&TcpInfo) -> String);

/// The groups of fields, in Dante's order.
const GROUPS: [&[Field]; 4] = [
    &[
        ("tcpi_state", |t| {
            format!(
                "{} ({})",
                t.state,
                STATES
                    .get(usize::from(t.state))
                    .copied()
                    .unwrap_or("UNKNOWN")
            )
        }),
        ("tcpi_ca_state", |t| t.ca_state.to_string()),
        ("tcpi_retransmits", |t| t.retransmits.to_string()),
        ("tcpi_probes", |t| t.probes.to_string()),
        ("tcpi_backoff", |t| t.backoff.to_string()),
        ("tcpi_options", |t| options_text(t.options)),
        ("tcpi_snd_wscale", |t| t.snd_wscale.to_string()),
        ("tcpi_rcv_wscale", |t| t.rcv_wscale.to_string()),
        ("tcpi_rto", |t| t.rto.to_string()),
        ("tcpi_ato", |t| t.ato.to_string()),
        ("tcpi_snd_mss", |t| t.snd_mss.to_string()),
        ("tcpi_rcv_mss", |t| t.rcv_mss.to_string()),
        ("tcpi_unacked", |t| t.unacked.to_string()),
        ("tcpi_sacked", |t| t.sacked.to_string()),
        ("tcpi_lost", |t| t.lost.to_string()),
        ("tcpi_retrans", |t| t.retrans.to_string()),
        ("tcpi_fackets", |t| t.fackets.to_string()),
    ],
    &[
        ("tcpi_last_data_sent", |t| t.last_data_sent.to_string()),
        ("tcpi_last_ack_sent", |t| t.last_ack_sent.to_string()),
        ("tcpi_last_data_recv", |t| t.last_data_recv.to_string()),
        ("tcpi_last_ack_recv", |t| t.last_ack_recv.to_string()),
    ],
    &[
        ("tcpi_pmtu", |t| t.pmtu.to_string()),
        ("tcpi_rcv_ssthresh", |t| t.rcv_ssthresh.to_string()),
        ("tcpi_rtt", |t| t.rtt.to_string()),
        ("tcpi_rttvar", |t| t.rttvar.to_string()),
        ("tcpi_snd_ssthresh", |t| t.snd_ssthresh.to_string()),
        ("tcpi_snd_cwnd", |t| t.snd_cwnd.to_string()),
        ("tcpi_advmss", |t| t.advmss.to_string()),
        ("tcpi_reordering", |t| t.reordering.to_string()),
        ("tcpi_rcv_rtt", |t| t.rcv_rtt.to_string()),
        ("tcpi_rcv_space", |t| t.rcv_space.to_string()),
    ],
    &[("tcpi_total_retrans", |t| t.total_retrans.to_string())],
];

/// The block, starting with its newline: client socket `<->` target socket.
pub fn format_block(client: Option<&TcpInfo>, target: Option<&TcpInfo>) -> String {
    let mut out = String::from("\nTCP_INFO:");
    for (g, group) in GROUPS.iter().enumerate() {
        if g > 0 {
            out.push('\n');
        }
        for (name, value) in group.iter() {
            let c = client.map_or_else(|| "N/A".into(), value);
            let t = target.map_or_else(|| "N/A".into(), value);
            out.push_str(&format!("\n{name:<20} : {c} <-> {t}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_shape() {
        let t = TcpInfo {
            state: 1,
            options: 7,
            rto: 204000,
            snd_mss: 32768,
            ..TcpInfo::default()
        };
        let b = format_block(Some(&t), None);
        let lines: Vec<&str> = b.lines().collect();
        assert_eq!(lines[0], "");
        assert_eq!(lines[1], "TCP_INFO:");
        assert_eq!(lines[2], "tcpi_state           : 1 (ESTABLISHED) <-> N/A");
        assert_eq!(
            lines[7],
            "tcpi_options         : 7 (TS, SACK, Wscale) <-> N/A"
        );
        assert_eq!(lines[19], "");
        assert_eq!(lines[20], "tcpi_last_data_sent  : 0 <-> N/A");
        assert_eq!(lines.last().unwrap(), &"tcpi_total_retrans   : 0 <-> N/A");
        assert_eq!(lines.len(), 2 + 17 + 1 + 4 + 1 + 10 + 1 + 1);
    }
}
