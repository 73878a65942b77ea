//! socklog's `ucspi` conversion, streaming: what `socklog ucspi TCPREMOTEIP` writes for
//! what a sender sends.
//!
//! Observed on Debian's socklog 2.1.0 (and compared line for line by the collector's
//! tests): every line gets `IP: ` in front; a line starting with `<N>` (one to three
//! digits, N ≥ 1) has it replaced by `facility.priority: ` with syslog.h's names
//! (`user.notice`, `user.warn`, `mark.alert` for 193); a facility syslog.h does not name
//! (12–15, above 24) gives `unknown.priority: ` and keeps the `<N>`; `<0>` and other
//! texts pass unchanged. A newline or a NUL ends a line; empty lines are dropped; a last
//! line without a newline gets one. Lines of any length pass through whole: the
//! converter holds at most the five bytes that decide a `<N>`, never a line.

/// syslog.h's name for a facility code, as socklog prints it (first match of
/// `facilitynames`).
fn facility_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0 => "kern",
        1 => "user",
        2 => "mail",
        3 => "daemon",
        4 => "auth",
        5 => "syslog",
        6 => "lpr",
        7 => "news",
        8 => "uucp",
        9 => "cron",
        10 => "authpriv",
        11 => "ftp",
        16..=23 => [
            "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
        ][code as usize - 16],
        24 => "mark",
        _ => return None,
    })
}

/// syslog.h's name for a priority, as socklog prints it (`warn`, not `warning`).
const PRIORITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];

/// Converts one connection's bytes.
#[derive(Debug, Clone)]
pub struct Converter {
    prefix: Vec<u8>,
    /// The first bytes of a line, while they may still be a `<N>`.
    head: Vec<u8>,
    in_line: bool,
}

impl Converter {
    /// A converter for a sender at `ip` (written as given, then `: `).
    pub fn new(ip: &str) -> Self {
        let mut prefix = ip.as_bytes().to_vec();
        prefix.extend_from_slice(b": ");
        Self {
            prefix,
            head: Vec::with_capacity(5),
            in_line: false,
        }
    }

    /// Appends the conversion of `input` to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while !rest.is_empty() {
            if self.in_line {
                match rest.iter().position(|&b| b == b'\n' || b == 0) {
                    Some(i) => {
                        out.extend_from_slice(&rest[..i]);
                        out.push(b'\n');
                        self.in_line = false;
                        rest = &rest[i + 1..];
                    }
                    None => {
                        out.extend_from_slice(rest);
                        return;
                    }
                }
                continue;
            }
            let b = rest[0];
            rest = &rest[1..];
            if b == b'\n' || b == 0 {
                if !self.head.is_empty() {
                    self.start_line(out);
                    out.push(b'\n');
                    self.in_line = false;
                }
                continue;
            }
            self.head.push(b);
            if decided(&self.head) {
                self.start_line(out);
            }
        }
    }

    /// Ends the input: a last line without a newline gets one.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.head.is_empty() {
            self.start_line(out);
        }
        if self.in_line {
            out.push(b'\n');
            self.in_line = false;
        }
    }

    /// Writes the prefix and the converted head; the rest of the line follows as is.
    fn start_line(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        match pri(&self.head) {
            Some((n, len)) => {
                let pr = PRIORITY_NAMES[(n & 7) as usize];
                match facility_name(n >> 3) {
                    Some(f) => {
                        out.extend_from_slice(f.as_bytes());
                        out.push(b'.');
                        out.extend_from_slice(pr.as_bytes());
                        out.extend_from_slice(b": ");
                        out.extend_from_slice(&self.head[len..]);
                    }
                    None => {
                        out.extend_from_slice(b"unknown.");
                        out.extend_from_slice(pr.as_bytes());
                        out.extend_from_slice(b": ");
                        out.extend_from_slice(&self.head);
                    }
                }
            }
            None => out.extend_from_slice(&self.head),
        }
        self.head.clear();
        self.in_line = true;
    }
}

/// Whether the head of a line says all there is to say about a `<N>`: it is one, or it
/// cannot become one.
fn decided(head: &[u8]) -> bool {
    if head[0] != b'<' {
        return true;
    }
    match head[1..].iter().position(|b| !b.is_ascii_digit()) {
        Some(_) => true,
        None => head.len() > 4,
    }
}

/// A leading `<N>` (1 to 3 digits, N ≥ 1): its value and length.
fn pri(head: &[u8]) -> Option<(u32, usize)> {
    let body = head.strip_prefix(b"<")?;
    let digits = body.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=3).contains(&digits) || body.get(digits) != Some(&b'>') {
        return None;
    }
    let n = body[..digits]
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    (n > 0).then_some((n, digits + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(input: &[u8], chunk: usize) -> String {
        let mut c = Converter::new("10.1.2.3");
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            c.feed(piece, &mut out);
        }
        c.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// What Debian's `socklog ucspi TCPREMOTEIP` printed for these lines.
    #[test]
    fn as_socklog_prints() {
        let input = b"<13>msg 13\n<0>msg 0\n<96>msg 96\n<193>m\n<200>m\n<999>m\n<012>m\n<0013>m\n<13 >m\n<x>m\n\n\nplain\0\0after nul\n<13";
        let expected = "10.1.2.3: user.notice: msg 13\n10.1.2.3: <0>msg 0\n10.1.2.3: unknown.emerg: <96>msg 96\n10.1.2.3: mark.alert: m\n10.1.2.3: unknown.emerg: <200>m\n10.1.2.3: unknown.debug: <999>m\n10.1.2.3: user.warn: m\n10.1.2.3: <0013>m\n10.1.2.3: <13 >m\n10.1.2.3: <x>m\n10.1.2.3: plain\n10.1.2.3: after nul\n10.1.2.3: <13\n";
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(convert(input, chunk), expected, "chunks of {chunk}");
        }
    }
}
