//! Splits configuration text into tokens with their positions.
//!
//! Dante's scanner ends list keywords at end of line, so newlines are tokens. A word is
//! a run of anything but white space, braces, `#` and the comparison characters
//! `= ! < >`, which form operator tokens; so `port=80` and `port = 80` read alike. A
//! backslash before a newline joins the lines. `keyword:` stays one word: the parser
//! splits it, because only it knows when a keyword can stand there (`fe80::1` is not one).

/// A position in the file: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Word(String),
    Op(&'static str),
    Open,
    Close,
    Newline,
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Word(w) => format!("\"{w}\""),
            Self::Op(o) => format!("\"{o}\""),
            Self::Open => "\"{\"".into(),
            Self::Close => "\"}\"".into(),
            Self::Newline => "end of line".into(),
            Self::Eof => "end of file".into(),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: Pos,
}

pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let (mut line, mut col) = (1u32, 1u32);
    let mut word = String::new();
    let mut word_pos = Pos::default();
    macro_rules! flush {
        () => {
            if !word.is_empty() {
                out.push(Token {
                    tok: Tok::Word(std::mem::take(&mut word)),
                    pos: word_pos,
                });
            }
        };
    }
    while let Some(c) = chars.next() {
        let pos = Pos { line, col };
        col += 1;
        match c {
            '\n' => {
                flush!();
                out.push(Token {
                    tok: Tok::Newline,
                    pos,
                });
                line += 1;
                col = 1;
            }
            '\\' if chars.peek() == Some(&'\n') => {
                flush!();
                chars.next();
                line += 1;
                col = 1;
            }
            '#' => {
                flush!();
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            c if c.is_whitespace() => flush!(),
            '{' | '}' => {
                flush!();
                let tok = if c == '{' { Tok::Open } else { Tok::Close };
                out.push(Token { tok, pos });
            }
            '=' | '!' | '<' | '>' => {
                flush!();
                let op = match (c, chars.peek()) {
                    ('!', Some('=')) | ('<', Some('=')) | ('>', Some('=')) => {
                        chars.next();
                        col += 1;
                        match c {
                            '!' => "!=",
                            '<' => "<=",
                            _ => ">=",
                        }
                    }
                    ('=', _) => "=",
                    ('<', _) => "<",
                    ('>', _) => ">",
                    _ => "!",
                };
                out.push(Token {
                    tok: Tok::Op(op),
                    pos,
                });
            }
            c => {
                if word.is_empty() {
                    word_pos = pos;
                }
                word.push(c);
            }
        }
    }
    flush!();
    out.push(Token {
        tok: Tok::Eof,
        pos: Pos { line, col },
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Tok> {
        tokenize(text).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn splits_words_operators_and_lines() {
        assert_eq!(
            words("to: ::1/128 port>=1024 # c\nx\\\ny{}"),
            vec![
                Tok::Word("to:".into()),
                Tok::Word("::1/128".into()),
                Tok::Word("port".into()),
                Tok::Op(">="),
                Tok::Word("1024".into()),
                Tok::Newline,
                Tok::Word("x".into()),
                Tok::Word("y".into()),
                Tok::Open,
                Tok::Close,
                Tok::Eof,
            ]
        );
        let toks = tokenize("a\n  bb");
        assert_eq!(toks[2].pos, Pos { line: 2, col: 3 });
    }
}
