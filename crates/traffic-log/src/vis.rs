//! strvis(3)-style escaping, as Dante applies it to logged names and data.
//!
//! Dante calls `strvisx(…, VIS_SP | VIS_TAB | VIS_NL | VIS_CSTYLE | VIS_OCTAL)`: graphic
//! ASCII stays as it is, a backslash is doubled, the C escapes `\n \r \t \b \a \v \f`
//! are used, space becomes `\s`, NUL `\0` (or `\000` before an octal digit), and every
//! other byte becomes a three-digit octal escape.

/// Appends the vis-encoding of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x07 => out.push_str("\\a"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            b' ' => out.push_str("\\s"),
            0 if !bytes.get(i + 1).is_some_and(|n| (b'0'..=b'7').contains(n)) => {
                out.push_str("\\0")
            }
            b if b.is_ascii_graphic() => out.push(char::from(b)),
            b => {
                out.push('\\');
                out.push(char::from(b'0' + (b >> 6)));
                out.push(char::from(b'0' + ((b >> 3) & 7)));
                out.push(char::from(b'0' + (b & 7)));
            }
        }
    }
}

/// The vis-encoding of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    encode_into(bytes, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_strvisx() {
        assert_eq!(encode(b"GET / HTTP/1.1\r\n"), "GET\\s/\\sHTTP/1.1\\r\\n");
        assert_eq!(encode(b"a\\b"), "a\\\\b");
        assert_eq!(
            encode(&[0, b'x', 0, b'1', 0xff, 0x1b]),
            "\\0x\\0001\\377\\033"
        );
        assert_eq!(encode(b"\t\x07\x08\x0b\x0c"), "\\t\\a\\b\\v\\f");
    }
}
