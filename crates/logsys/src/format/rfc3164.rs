//! The BSD syslog line (RFC 3164 §4.1): `<PRI>Mmm dd hh:mm:ss [HOSTNAME ]TAG[PID]: MSG`,
//! the day space-padded, local time. Without HOSTNAME it is the datagram glibc's
//! syslog(3) sends to `/dev/log`, which is what the local syslog sink sends.

/// `<PRI>` for a facility (0–23) and severity (0–7), without leading zeros.
pub fn push_pri(out: &mut Vec<u8>, facility: u8, severity: u8) {
    let pri = u16::from(facility.min(23)) * 8 + u16::from(severity.min(7));
    out.push(b'<');
    out.extend_from_slice(pri.to_string().as_bytes());
    out.push(b'>');
}

/// The local datagram for one of Dante's lines: `<PRI>` + the line without its
/// `(secs.usec) ` part and without its newline. `prefix_len` is the length of the
/// line's Dante prefix (`Mon DD HH:MM:SS (secs.usec) program[pid]: level: `); a line
/// that does not have that shape is sent whole after the PRI.
pub fn local_datagram(facility: u8, severity: u8, line: &[u8], prefix_len: usize) -> Vec<u8> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let prefix = line.get(..prefix_len).unwrap_or(line);
    let mut out = Vec::with_capacity(line.len() + 5);
    push_pri(&mut out, facility, severity);
    match (prefix.get(..16), prefix.windows(2).position(|w| w == b") ")) {
        (Some(date), Some(i)) => {
            out.extend_from_slice(date);
            out.extend_from_slice(&line[i + 2..]);
        }
        _ => out.extend_from_slice(line),
    }
    out
}

/// The fields of a full RFC 3164 message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// 0–23.
    pub facility: u8,
    /// 0–7.
    pub severity: u8,
    /// Local time: month 1–12, day, hour, minute, second.
    pub local: [u8; 5],
    /// Without the domain; `None` for the local socket.
    pub hostname: Option<&'a str>,
    /// The program name (at most 32 characters are written).
    pub tag: &'a str,
    pub pid: u32,
    pub msg: &'a [u8],
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Appends the message; its length is not limited here (RFC 3164's 1024 is the
/// transport's business).
pub fn encode(out: &mut Vec<u8>, m: &Message<'_>) {
    push_pri(out, m.facility, m.severity);
    let [month, day, h, min, s] = m.local;
    let month = MONTHS[usize::from(month.clamp(1, 12) - 1)];
    out.extend_from_slice(format!("{month} {day:>2} {h:02}:{min:02}:{s:02} ").as_bytes());
    if let Some(host) = m.hostname {
        let host = host.split('.').next().unwrap_or(host);
        out.extend(
            host.bytes()
                .map(|b| if b.is_ascii_graphic() { b } else { b'_' }),
        );
        out.push(b' ');
    }
    out.extend(m.tag.bytes().filter(u8::is_ascii_alphanumeric).take(32));
    out.extend_from_slice(format!("[{}]: ", m.pid).as_bytes());
    out.extend_from_slice(m.msg.strip_suffix(b"\n").unwrap_or(m.msg));
}
