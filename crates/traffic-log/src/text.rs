//! Records as Dante's text, appended to a byte buffer.
//!
//! This is the one writer of the line format: the `Display` impls of the record types
//! go through it. It appends bytes and digits directly, without `core::fmt` and without
//! UTF-8 checks on the way (every piece is a `str` or ASCII): with `log: ioop` every I/O
//! operation is a line, written on the thread that relays, so its cost is on the data
//! path (docs/PERFORMANCE.md, "Logging cost").

use std::fmt;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use crate::record::{
    Command, Count, Endpoint, EndpointHost, Ends, Event, Leg, Proto, Record, Side, Verdict,
};

/// Appends the decimal digits of `n`.
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while n >= 100 {
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[(n % 100) as usize]);
        n /= 100;
    }
    if n >= 10 {
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[n as usize]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    out.extend_from_slice(&buf[i..]);
}

/// `"00"` to `"99"`: two digits per lookup (also for the log prefix's micros).
pub const PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// The decimal text of each octet, left-aligned in three bytes, and its length.
const OCTETS: [([u8; 3], u8); 256] = {
    let mut t = [([0u8; 3], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i < 10 {
            ([b'0' + i as u8, 0, 0], 1)
        } else if i < 100 {
            ([b'0' + (i / 10) as u8, b'0' + (i % 10) as u8, 0], 2)
        } else {
            (
                [
                    b'0' + (i / 100) as u8,
                    b'0' + (i / 10 % 10) as u8,
                    b'0' + (i % 10) as u8,
                ],
                3,
            )
        };
        i += 1;
    }
    t
};

/// Writes `n` at `at` in `buf` (room for 5 digits); returns where it ends. Two digits
/// per table lookup.
fn put_u16(buf: &mut [u8; 24], at: usize, n: u16) -> usize {
    let n = usize::from(n);
    let (hi, lo) = (n / 100, n % 100);
    if n < 10 {
        buf[at] = b'0' + n as u8;
        at + 1
    } else if n < 100 {
        buf[at..at + 2].copy_from_slice(&PAIRS[lo]);
        at + 2
    } else if n < 1000 {
        buf[at] = b'0' + hi as u8;
        buf[at + 1..at + 3].copy_from_slice(&PAIRS[lo]);
        at + 3
    } else if n < 10000 {
        buf[at..at + 2].copy_from_slice(&PAIRS[hi]);
        buf[at + 2..at + 4].copy_from_slice(&PAIRS[lo]);
        at + 4
    } else {
        buf[at] = b'0' + (hi / 100) as u8;
        buf[at + 1..at + 3].copy_from_slice(&PAIRS[hi % 100]);
        buf[at + 3..at + 5].copy_from_slice(&PAIRS[lo]);
        at + 5
    }
}

/// Appends `A.B.C.D.PORT` with one copy: the line's most frequent piece. Each octet is
/// one table lookup and a three-byte copy.
fn push_ipv4_port(out: &mut Vec<u8>, ip: Ipv4Addr, port: u16) {
    let mut buf = [0u8; 24];
    let mut at = 0;
    for octet in ip.octets() {
        let (text, len) = &OCTETS[usize::from(octet)];
        buf[at..at + 3].copy_from_slice(text);
        at += usize::from(*len);
        buf[at] = b'.';
        at += 1;
    }
    at = put_u16(&mut buf, at, port);
    out.extend_from_slice(&buf[..at]);
}

fn push_desc(out: &mut Vec<u8>, desc: Option<&str>) {
    if let Some(d) = desc {
        out.extend_from_slice(b": ");
        out.extend_from_slice(d.as_bytes());
    }
}

/// Appends the end of an I/O line, ` (BYTES)[: DATA]`, to the head that
/// [`Record::write_io_head`] wrote.
pub fn push_io_tail(out: &mut Vec<u8>, bytes: u64, data: Option<&str>) {
    out.extend_from_slice(b" (");
    push_decimal(out, bytes);
    out.push(b')');
    push_desc(out, data);
}

/// `VERDICT(N): PROTO/CMD`.
fn push_rule(out: &mut Vec<u8>, verdict: Verdict, rule: u32, proto: Proto, command: Command) {
    out.extend_from_slice(match verdict {
        Verdict::Pass => b"pass(",
        Verdict::Block => b"block(",
    });
    push_decimal(out, u64::from(rule));
    out.extend_from_slice(match proto {
        Proto::Tcp => b"): tcp/",
        Proto::Udp => b"): udp/",
    });
    out.extend_from_slice(command.as_str().as_bytes());
}

/// The head of an I/O record's line (what [`Record::write_io_head`] writes for it) from
/// endpoints it borrows: a session writes the heads of both its directions without
/// building a record, `from -> to` for bytes from the client and, with `reversed`, each
/// side's endpoints in reverse order for bytes to it.
#[derive(Debug, Clone, Copy)]
pub struct IoHead<'a> {
    pub verdict: Verdict,
    pub rule: u32,
    pub proto: Proto,
    pub command: Command,
    /// The side the bytes come from (`CLIENT PROXY-INT` for bytes from the client).
    pub from: &'a [Endpoint],
    /// The side they go to.
    pub to: &'a [Endpoint],
    /// Each side's endpoints printed last to first.
    pub reversed: bool,
}

impl IoHead<'_> {
    /// Appends `VERDICT(N): PROTO/CMD -: FROM -> TO`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.write_marked(out);
    }

    /// [`Self::write_to`], returning where in `out` the rule, `FROM` and `TO` are.
    pub fn write_marked(&self, out: &mut Vec<u8>) -> HeadMarks {
        let start = out.len();
        push_rule(out, self.verdict, self.rule, self.proto, self.command);
        let rule = start..out.len();
        out.extend_from_slice(b" -: ");
        let from_start = out.len();
        push_endpoints(out, self.from, self.reversed);
        let from = from_start..out.len();
        out.extend_from_slice(b" -> ");
        let to_start = out.len();
        push_endpoints(out, self.to, self.reversed);
        HeadMarks {
            rule,
            from,
            to: to_start..out.len(),
        }
    }
}

impl IoHead<'_> {
    /// [`Self::write_marked`], then the head of the other direction (`to` and `from`
    /// swapped, each side's endpoints in the other order), made from the first's text:
    /// no endpoint is rendered twice. Returns the first head's marks.
    pub fn write_both(&self, out: &mut Vec<u8>) -> HeadMarks {
        /// Endpoints of both sides copied rather than rendered again; a session with
        /// more (a long chain) renders the second head anew.
        const MAX: usize = 8;
        let (nf, n) = (self.from.len(), self.from.len() + self.to.len());
        if n > MAX {
            let marks = self.write_marked(out);
            IoHead {
                from: self.to,
                to: self.from,
                reversed: !self.reversed,
                ..*self
            }
            .write_to(out);
            return marks;
        }
        let mut spans = [(0usize, 0usize); MAX];
        let start = out.len();
        push_rule(out, self.verdict, self.rule, self.proto, self.command);
        let rule = start..out.len();
        out.extend_from_slice(b" -: ");
        let from_start = out.len();
        push_endpoints_marked(out, self.from, self.reversed, &mut spans[..nf]);
        let from = from_start..out.len();
        out.extend_from_slice(b" -> ");
        let to_start = out.len();
        push_endpoints_marked(out, self.to, self.reversed, &mut spans[nf..n]);
        let to = to_start..out.len();
        out.extend_from_within(rule.clone());
        out.extend_from_slice(b" -: ");
        copy_reversed(out, &spans[nf..n]);
        out.extend_from_slice(b" -> ");
        copy_reversed(out, &spans[..nf]);
        HeadMarks { rule, from, to }
    }
}

/// Appends the texts at `spans` of `out` itself, last to first, separated by spaces.
fn copy_reversed(out: &mut Vec<u8>, spans: &[(usize, usize)]) {
    for (i, &(start, end)) in spans.iter().rev().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_within(start..end);
    }
}

/// Where [`IoHead::write_marked`] wrote each piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadMarks {
    /// `VERDICT(N): PROTO/CMD`.
    pub rule: std::ops::Range<usize>,
    pub from: std::ops::Range<usize>,
    pub to: std::ops::Range<usize>,
}

/// Appends `endpoints` separated by spaces, last to first when `reversed`.
fn push_endpoints(out: &mut Vec<u8>, endpoints: &[Endpoint], reversed: bool) {
    push_endpoints_marked(out, endpoints, reversed, &mut []);
}

/// [`push_endpoints`], keeping in `spans` (as far as it goes) where each endpoint's
/// text is, in the order written.
fn push_endpoints_marked(
    out: &mut Vec<u8>,
    endpoints: &[Endpoint],
    reversed: bool,
    spans: &mut [(usize, usize)],
) {
    let mut write = |i: usize, e: &Endpoint| {
        if i > 0 {
            out.push(b' ');
        }
        let start = out.len();
        e.write_to(out);
        if let Some(span) = spans.get_mut(i) {
            *span = (start, out.len());
        }
    };
    if reversed {
        endpoints
            .iter()
            .rev()
            .enumerate()
            .for_each(|(i, e)| write(i, e));
    } else {
        endpoints.iter().enumerate().for_each(|(i, e)| write(i, e));
    }
}

impl Record {
    /// For an I/O record, appends its line up to the byte count, `VERDICT(N): PROTO/CMD
    /// -: ENDS`, which every I/O line of one direction of a session shares: write it
    /// once and complete each line with [`push_io_tail`]. Other records: the whole line.
    pub fn write_io_head(&self, out: &mut Vec<u8>) {
        match &self.event {
            Event::Io { ends, .. } => {
                self.write_rule(out);
                out.extend_from_slice(b" -: ");
                ends.write_to(out);
            }
            _ => self.write_to(out),
        }
    }

    /// `VERDICT(N): PROTO/CMD`.
    fn write_rule(&self, out: &mut Vec<u8>) {
        push_rule(out, self.verdict, self.rule, self.proto, self.command);
    }

    /// Appends the record's line (without prefix or newline).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.write_rule(out);
        match &self.event {
            Event::Start { ends, desc } => {
                out.extend_from_slice(b" [: ");
                ends.write_to(out);
                push_desc(out, desc.as_deref());
            }
            Event::Io { ends, bytes, data } => {
                out.extend_from_slice(b" -: ");
                ends.write_to(out);
                push_io_tail(out, *bytes, data.as_deref());
            }
            Event::Transient { ends, desc } => {
                out.extend_from_slice(b" -: ");
                ends.write_to(out);
                push_desc(out, desc.as_deref());
            }
            Event::Stop { ends, desc } => {
                out.extend_from_slice(b" ]: ");
                ends.write_to(out);
                push_desc(out, desc.as_deref());
            }
            Event::Summary { summary, desc } => {
                out.extend_from_slice(b" ]: ");
                summary.client.write_to(out);
                if let Some(t) = &summary.target {
                    out.extend_from_slice(b", ");
                    t.write_to(out);
                }
                // Dante 1.2.3 printed no description on chained summaries.
                push_desc(out, Some(desc.as_str()).filter(|d| !d.is_empty()));
            }
            Event::Interim {
                summary,
                duration_secs,
            } => {
                out.extend_from_slice(b" -: ");
                summary.client.side.write_to(out);
                if let Some(t) = &summary.target {
                    out.extend_from_slice(b" -> ");
                    t.side.write_to(out);
                }
                out.extend_from_slice(b": interim: ");
                summary.client.written.write_to(out);
                out.extend_from_slice(b" -> client -> ");
                summary.client.read.write_to(out);
                if let Some(t) = &summary.target {
                    out.extend_from_slice(b", ");
                    t.written.write_to(out);
                    out.extend_from_slice(b" -> target -> ");
                    t.read.write_to(out);
                }
                out.extend_from_slice(b".  Session duration: ");
                push_decimal(out, *duration_secs);
                out.push(b's');
            }
        }
    }
}

impl Ends {
    /// Appends `SRC[ -> DST]`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.src.write_to(out);
        if let Some(dst) = &self.dst {
            out.extend_from_slice(b" -> ");
            dst.write_to(out);
        }
    }
}

impl Side {
    /// Appends the endpoints, separated by spaces.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        push_endpoints(out, &self.0, false);
    }
}

impl Endpoint {
    /// Appends `[METHOD%NAME@]HOST.PORT`, in brackets when bracketed.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if self.bracketed {
            out.push(b'[');
        }
        if let Some(a) = &self.auth {
            out.extend_from_slice(a.method.as_bytes());
            out.push(b'%');
            out.extend_from_slice(a.name.as_bytes());
            out.push(b'@');
        }
        match &self.host {
            EndpointHost::Ip(IpAddr::V4(ip)) => push_ipv4_port(out, *ip, self.port),
            host => {
                match host {
                    // Writing to a Vec cannot fail.
                    EndpointHost::Ip(ip) => drop(write!(out, "{ip}")),
                    EndpointHost::Name(n) => out.extend_from_slice(n.as_bytes()),
                }
                out.push(b'.');
                push_decimal(out, u64::from(self.port));
            }
        }
        if self.bracketed {
            out.push(b']');
        }
    }
}

impl Leg {
    /// Appends `WRITTEN -> SIDE -> READ`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.written.write_to(out);
        out.extend_from_slice(b" -> ");
        self.side.write_to(out);
        out.extend_from_slice(b" -> ");
        self.read.write_to(out);
    }
}

impl Count {
    /// Appends `BYTES[/PACKETS]`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        push_decimal(out, self.bytes);
        if let Some(p) = self.packets {
            out.push(b'/');
            push_decimal(out, p);
        }
    }
}

/// `Display` through `write_to`, so that there is one writer of the format.
macro_rules! display_via_write_to {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut s = Vec::new();
                self.write_to(&mut s);
                // Every piece written is a `str` or ASCII.
                f.write_str(&String::from_utf8_lossy(&s))
            }
        }
    )*};
}

display_via_write_to!(Record, Ends, Side, Endpoint, Leg, Count);

#[cfg(test)]
mod tests {
    use crate::record::*;

    /// Every digit count, each power of ten and its neighbours, and the extremes.
    #[test]
    fn decimals_as_display_writes_them() {
        let mut values = vec![0u64, 1, 9, u64::MAX, u64::MAX - 1];
        let mut p = 10u64;
        loop {
            values.extend([p - 1, p, p + 1, p + p / 2]);
            match p.checked_mul(10) {
                Some(next) => p = next,
                None => break,
            }
        }
        for n in values {
            let mut out = b"x".to_vec();
            super::push_decimal(&mut out, n);
            assert_eq!(&out[1..], n.to_string().as_bytes(), "{n}");
        }
    }

    #[test]
    fn addresses_and_counts_at_their_limits() {
        for (ip, port, text) in [
            ("0.0.0.0", 0, "0.0.0.0.0"),
            ("255.255.255.255", 65535, "255.255.255.255.65535"),
            ("10.0.100.9", 1080, "10.0.100.9.1080"),
            ("::1", 22, "::1.22"),
        ] {
            let e = Endpoint::ip(ip.parse().unwrap(), port);
            assert_eq!(e.to_string(), text);
        }
        let c = Count {
            bytes: u64::MAX,
            packets: Some(0),
        };
        assert_eq!(c.to_string(), format!("{}/0", u64::MAX));
        assert_eq!(Count::bytes(0).to_string(), "0");
    }

    /// The table writers agree with `Display` on every octet and every port.
    #[test]
    fn every_octet_and_port_is_written_as_display_writes_it() {
        for n in 0..=255u8 {
            let ip = std::net::Ipv4Addr::new(n, 255 - n, n / 2, 7);
            let mut out = Vec::new();
            super::push_ipv4_port(&mut out, ip, 80);
            assert_eq!(String::from_utf8(out).unwrap(), format!("{ip}.80"));
        }
        for n in (0..=100_000u64).chain([u64::MAX, u64::MAX / 7, 10u64.pow(19), 99, 100]) {
            let mut out = Vec::new();
            super::push_decimal(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
        for port in 0..=u16::MAX {
            let mut out = Vec::new();
            super::push_ipv4_port(&mut out, std::net::Ipv4Addr::LOCALHOST, port);
            assert_eq!(String::from_utf8(out).unwrap(), format!("127.0.0.1.{port}"));
        }
    }

    /// `write_to` appends: what was in the buffer stays.
    #[test]
    fn write_to_appends() {
        let line =
            "pass(1): tcp/connect -: 127.0.0.1.1 127.0.0.1.2 -> 127.0.0.1.3 127.0.0.1.4 (32)";
        let r = Record::parse(line).unwrap();
        let mut s = b"prefix: ".to_vec();
        r.write_to(&mut s);
        assert_eq!(s, format!("prefix: {line}").into_bytes());
    }

    /// Head and tail make the same line as the whole record.
    #[test]
    fn io_head_and_tail() {
        let line = "pass(3): tcp/connect -: username%bob@127.0.0.1.1 127.0.0.1.2 -> 127.0.0.1.3 [::1.4] (1460): x\\001";
        let r = Record::parse(line).unwrap();
        let mut s = Vec::new();
        r.write_io_head(&mut s);
        let Event::Io { bytes, data, .. } = &r.event else {
            panic!("an I/O record")
        };
        super::push_io_tail(&mut s, *bytes, data.as_deref());
        assert_eq!(String::from_utf8(s).unwrap(), line);
        assert_eq!(r.to_string(), line);
    }

    /// A borrowed head with `r`'s rule between these endpoints.
    fn head_of<'a>(
        r: &Record,
        from: &'a [Endpoint],
        to: &'a [Endpoint],
        reversed: bool,
    ) -> super::IoHead<'a> {
        super::IoHead {
            verdict: r.verdict,
            rule: r.rule,
            proto: r.proto,
            command: r.command,
            from,
            to,
            reversed,
        }
    }

    /// The borrowed head writes what the record's head writes, in both directions.
    #[test]
    fn an_io_head_from_borrowed_sides_is_the_records_head() {
        let up = "pass(3): tcp/connect -: username%bob@127.0.0.1.1 127.0.0.1.2 -> 127.0.0.1.3 [10.0.0.9.1080] www.example.com.443 (5)";
        let down = "pass(3): tcp/connect -: www.example.com.443 [10.0.0.9.1080] 127.0.0.1.3 -> 127.0.0.1.2 username%bob@127.0.0.1.1 (5)";
        let r = Record::parse(up).unwrap();
        let Event::Io { ends, .. } = &r.event else {
            panic!("an I/O record")
        };
        let (src, dst) = (&ends.src.0, &ends.dst.as_ref().unwrap().0);
        for (line, from, to, reversed) in [(up, src, dst, false), (down, dst, src, true)] {
            let mut got = Vec::new();
            head_of(&r, from, to, reversed).write_to(&mut got);
            let mut want = Vec::new();
            Record::parse(line).unwrap().write_io_head(&mut want);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }

    /// Both heads written at once are the two heads written apart, whatever the number
    /// of endpoints (past the copied maximum too) and the first head's order.
    #[test]
    fn both_heads_at_once_are_the_two_heads_apart() {
        let line = "pass(3): tcp/connect -: username%bob@127.0.0.1.1 127.0.0.1.2 -> 127.0.0.1.3 [10.0.0.9.1080] www.example.com.443 (5)";
        let r = Record::parse(line).unwrap();
        let Event::Io { ends, .. } = &r.event else {
            panic!("an I/O record")
        };
        let (src, dst) = (&ends.src.0, &ends.dst.as_ref().unwrap().0);
        let long: Vec<_> = dst.iter().cycle().take(7).cloned().collect();
        for (from, to) in [
            (&src[..], &dst[..]),
            (&src[..1], &dst[..1]),
            (&src[..], &long[..]),
        ] {
            for reversed in [false, true] {
                let head = |from, to, reversed| head_of(&r, from, to, reversed);
                let mut want = b"x".to_vec();
                let want_marks = head(from, to, reversed).write_marked(&mut want);
                head(to, from, !reversed).write_to(&mut want);
                let mut got = b"x".to_vec();
                let marks = head(from, to, reversed).write_both(&mut got);
                assert_eq!(
                    String::from_utf8(got).unwrap(),
                    String::from_utf8(want).unwrap()
                );
                assert_eq!(marks, want_marks);
            }
        }
    }

    /// Every port and every octet, against std's formatting.
    #[test]
    fn every_port_and_octet() {
        for port in 0..=u16::MAX {
            // Octets hi, lo, hi, lo of the port: every value in every position.
            let ip = std::net::Ipv4Addr::from(u32::from(port) * 0x0001_0001);
            let mut s = Vec::new();
            super::push_ipv4_port(&mut s, ip, port);
            assert_eq!(String::from_utf8(s).unwrap(), format!("{ip}.{port}"));
        }
        for octet in 0..=u8::MAX {
            let ip = std::net::Ipv4Addr::new(octet, octet, 255 - octet, octet / 2);
            let mut s = Vec::new();
            super::push_ipv4_port(&mut s, ip, 7);
            assert_eq!(String::from_utf8(s).unwrap(), format!("{ip}.7"));
        }
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 9, 10, 99, 100, 255, 65535, 1_000_000, u64::MAX] {
            let mut s = Vec::new();
            super::push_decimal(&mut s, n);
            assert_eq!(s, n.to_string().into_bytes());
        }
    }
}
