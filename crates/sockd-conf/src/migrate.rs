//! `ferrosocks migrate --from-dante`: a Dante `sockd.conf` rewritten as a file ferrosocks
//! runs unchanged. Pure: text in, text out.
//!
//! The file is parsed as it is. Errors that are not about the keyword table (bad
//! syntax, wrong values: files Dante refuses too) are all reported and nothing is
//! written. What the table refuses as "not supported yet" or ignores is commented out
//! (`#|` lines) below a `# ferrosocks:` comment that gives the table's reason, and the
//! file is parsed again until it parses: a refusal ends the parser's line, so a second
//! pass may find more on it.
//!
//! The rewrite never lets in what Dante would refuse:
//!
//! - a `pass` rule that uses something ferrosocks cannot apply is left out whole (what it
//!   matched goes to the rules after it, as for a request that does not match it in
//!   Dante); a `block` rule loses only that keyword, so it blocks at least what it did;
//! - an authentication method ferrosocks does not offer is dropped from its list; a rule
//!   whose list is left empty could match no session and is left out, and so is every
//!   `client pass` rule relying on a server `clientmethod:` left empty;
//! - server settings are commented out with the table's reason, which says when that
//!   lets in what Dante refuses (`srchost:`): the caller shows those notes.
//!
//! A file without `internal:` (Debian's shipped `danted.conf`, which Dante does not start
//! with either) gets ferrosocks' loopback listener.

use crate::error::{Diagnostic, Errors};
use crate::keywords::{self, Status, SPECIALS};
use crate::lexer::{tokenize, Pos, Tok, Token};
use crate::model::{Action, RuleKind};
use crate::parse::parse;

/// The rewritten file and what the rewrite did.
#[derive(Debug, Clone)]
pub struct Migrated {
    /// The configuration for ferrosocks.
    pub text: String,
    /// One line per change, `FILE:LINE:COL: what and why`, in file order.
    pub notes: Vec<String>,
}

/// What is added when the Dante file has no `internal:`.
pub const LOOPBACK_INTERNAL: &str = "internal: 127.0.0.1 port = 1080";

/// Prefix of the comment lines that explain a change.
const WHY: &str = "# ferrosocks: ";
/// Prefix of a commented-out Dante line.
const CUT: &str = "#| ";
/// Comment lines are wrapped before this column.
const WIDTH: usize = 92;
/// A refusal ends the parser's line; a line holds only so many keywords.
const MAX_ROUNDS: usize = 64;

/// Rewrites the Dante configuration `text` (`file` names it in notes and errors).
pub fn from_dante(file: &str, text: &str) -> Result<Migrated, Errors> {
    let src = Source::new(text);
    let (marks, work) = find_marks(file, &src)?;
    let blocks = src.blocks();
    // The blanked text parses: it is what ferrosocks will run (less the comments).
    let config = parse(file, &work).map(|p| p.config).ok();
    let cuts = plan(&src, &blocks, &marks, config.as_ref());
    Ok(render(file, &src, &blocks, &cuts, config.as_ref()))
}

// === finding what to comment out ===

/// A span of the file the table refuses or ignores, and the table's messages about it.
#[derive(Debug, Clone)]
struct Mark {
    pos: Pos,
    start: usize,
    end: usize,
    /// A whole `keyword: values` statement (else one value of a list).
    statement: bool,
    /// The statement's values were all refused (a list left empty).
    emptied: bool,
    /// The keyword's name in the table (`clientmethod` for `method:` in a client rule).
    keyword: String,
    messages: Vec<String>,
}

/// Parses, blanks what the table refuses or ignores, and parses again until nothing
/// more is found; every other error is collected (positions stay those of the file,
/// because blanking keeps every character's place).
fn find_marks(file: &str, src: &Source) -> Result<(Vec<Mark>, String), Errors> {
    let mut work: Vec<char> = src.text.chars().collect();
    let mut marks: Vec<Mark> = Vec::new();
    let mut fatal: Vec<Diagnostic> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let text: String = work.iter().collect();
        let found: Vec<Diagnostic> = match parse(file, &text) {
            Ok(p) => p
                .warnings
                .into_iter()
                .filter(|d| d.message.contains(" is ignored"))
                .collect(),
            Err(e) => {
                let (table, other): (Vec<_>, Vec<_>) =
                    e.0.into_iter()
                        .partition(|d| d.message.contains(" is not supported yet"));
                for d in other {
                    if !fatal.contains(&d) {
                        fatal.push(d);
                    }
                }
                table
            }
        };
        let mut new = false;
        for d in found {
            if marks
                .iter()
                .any(|m| m.start <= src.offset(d.pos) && src.offset(d.pos) < m.end)
            {
                continue;
            }
            let m = src.mark(&d);
            blank(&mut work, src, m.start, m.end);
            marks.push(m);
            new = true;
        }
        if !new {
            break;
        }
    }
    if !fatal.is_empty() {
        fatal.sort_by_key(|d| d.pos);
        return Err(Errors(fatal));
    }
    marks.sort_by_key(|m| m.start);
    Ok((marks, work.into_iter().collect()))
}

/// Replaces `start..end` (byte offsets of the file) with spaces, keeping newlines and
/// line continuations, so that every other token keeps its line and column.
fn blank(work: &mut [char], src: &Source, start: usize, end: usize) {
    let first = src.text[..start].chars().count();
    let chars: Vec<char> = src.text[start..end].chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let continuation = *c == '\\' && chars.get(i + 1) == Some(&'\n');
        if *c != '\n' && !continuation {
            work[first + i] = ' ';
        }
    }
}

// === the file: offsets, tokens, blocks ===

struct Source<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    toks: Vec<Token>,
}

/// A rule or route: its kind, where it is, and its number among its kind.
#[derive(Debug, Clone)]
struct Block {
    kind: BlockKind,
    action: Option<Action>,
    start: usize,
    end: usize,
    pos: Pos,
    number: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Rule(RuleKind),
    Route,
}

impl<'a> Source<'a> {
    fn new(text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            text,
            line_starts,
            toks: tokenize(text),
        }
    }

    /// The byte offset of `pos`.
    fn offset(&self, pos: Pos) -> usize {
        let Some(&line_start) = self.line_starts.get(pos.line.saturating_sub(1) as usize) else {
            return self.text.len();
        };
        let line = &self.text[line_start..];
        line.char_indices()
            .nth(pos.col.saturating_sub(1) as usize)
            .map_or(self.text.len(), |(i, _)| line_start + i)
    }

    /// Where token `i` ends (byte offset).
    fn tok_end(&self, i: usize) -> usize {
        let t = &self.toks[i];
        let len = match &t.tok {
            Tok::Word(w) => w.len(),
            Tok::Op(o) => o.len(),
            Tok::Open | Tok::Close | Tok::Newline => 1,
            Tok::Eof => 0,
        };
        self.offset(t.pos) + len
    }

    /// The token whose text holds byte offset `at`.
    fn tok_at(&self, at: usize) -> Option<usize> {
        (0..self.toks.len()).find(|&i| {
            let start = self.offset(self.toks[i].pos);
            start <= at && at < self.tok_end(i).max(start + 1)
        })
    }

    /// The mark for a diagnostic of the table: a keyword's statement, or one value of a
    /// list (with every other refused value of the same list; the whole statement when
    /// that is all of them).
    fn mark(&self, d: &Diagnostic) -> Mark {
        let at = self.offset(d.pos);
        let i = self.tok_at(at).unwrap_or(0);
        let special = value_special(&d.message);
        let Some(s) = special else {
            let (start, end) = self.statement(i, at);
            let keyword = self.keyword_name(i).unwrap_or_default();
            return Mark {
                pos: d.pos,
                start,
                end,
                statement: true,
                emptied: false,
                keyword,
                messages: vec![d.message.clone()],
            };
        };
        // A value: find its keyword, then every value of the statement.
        let k = (0..=i)
            .rev()
            .take_while(|&j| matches!(self.toks[j].tok, Tok::Word(_)))
            .find(|&j| self.keyword_name(j).is_some())
            .unwrap_or(i);
        let (start, end) = self.statement(k, self.offset(self.toks[k].pos));
        let mut values = Vec::new();
        for j in k..self.toks.len() {
            if self.offset(self.toks[j].pos) >= end {
                break;
            }
            let Tok::Word(w) = &self.toks[j].tok else {
                continue;
            };
            let mut vstart = self.offset(self.toks[j].pos);
            let mut word = w.as_str();
            if j == k {
                // `socksmethod:pam`: the value glued to the keyword.
                match w.split_once(':') {
                    Some((key, rest)) if !rest.is_empty() => {
                        vstart += key.len() + 1;
                        word = rest;
                    }
                    _ => continue,
                }
            }
            values.push((vstart, vstart + word.len(), word.to_owned()));
        }
        let refused: Vec<&(usize, usize, String)> = values
            .iter()
            .filter(|(_, _, w)| {
                keywords::special_value(s.keyword, w).is_some_and(|x| x.status == s.status)
            })
            .collect();
        let written = self.keyword_name(k).unwrap_or_default();
        let messages: Vec<String> = refused
            .iter()
            .filter_map(|(_, _, w)| keywords::special_value(s.keyword, w))
            .map(|x| x.message(&written_key(&written, &d.message)))
            .collect();
        if refused.len() == values.len() {
            return Mark {
                pos: self.toks[k].pos,
                start,
                end,
                statement: true,
                emptied: true,
                keyword: s.keyword.to_owned(),
                messages,
            };
        }
        // Only this value; another refused value of the list is found next round.
        Mark {
            pos: d.pos,
            start: at,
            end: at
                + refused
                    .iter()
                    .find(|(vs, _, _)| *vs == at)
                    .map_or(0, |(vs, ve, _)| ve - vs),
            statement: false,
            emptied: false,
            keyword: s.keyword.to_owned(),
            messages: vec![d.message.clone()],
        }
    }

    /// `keyword` of a word `keyword:` / `keyword:value` (or `redirect`, a keyword Dante
    /// writes without a colon), if the table knows it.
    fn keyword_name(&self, i: usize) -> Option<String> {
        let Tok::Word(w) = &self.toks[i].tok else {
            return None;
        };
        let key = w.split_once(':').map_or(w.as_str(), |(k, _)| k);
        let known = keywords::lookup(key).is_some();
        (known
            && (w.contains(':')
                || keywords::lookup(key).is_some_and(|k| k.status == Status::NotYet)))
        .then(|| key.to_owned())
    }

    /// The statement starting at token `i` (from byte `at`): up to the end of the line,
    /// a brace, or the next keyword. A keyword written without a colon (`redirect
    /// from: …`) takes the next one with it.
    fn statement(&self, i: usize, at: usize) -> (usize, usize) {
        let mut end = self.tok_end(i);
        let bare = matches!(&self.toks[i].tok, Tok::Word(w) if !w.contains(':'));
        let mut took_next = !bare;
        for j in i + 1..self.toks.len() {
            match &self.toks[j].tok {
                Tok::Newline | Tok::Eof | Tok::Open | Tok::Close => break,
                Tok::Word(_) if self.keyword_name(j).is_some() => {
                    if took_next {
                        break;
                    }
                    took_next = true;
                }
                _ => {}
            }
            end = self.tok_end(j);
        }
        (at, end)
    }

    /// The server settings (outside rules and routes) of `keyword` (its old name
    /// `method` counting as `socksmethod`): position and extent.
    fn settings(&self, blocks: &[Block], keyword: &str) -> Vec<(Pos, usize, usize)> {
        (0..self.toks.len())
            .filter(|&i| {
                let at = self.offset(self.toks[i].pos);
                let name = self.keyword_name(i);
                (name.as_deref() == Some(keyword)
                    || (keyword == "socksmethod" && name.as_deref() == Some("method")))
                    && (i == 0 || self.toks[i - 1].tok == Tok::Newline)
                    && !blocks.iter().any(|b| b.start <= at && at < b.end)
            })
            .map(|i| {
                let at = self.offset(self.toks[i].pos);
                let (start, end) = self.statement(i, at);
                (self.toks[i].pos, start, end)
            })
            .collect()
    }

    /// Whether a later server setting of the same keyword replaces the one `m` marks.
    fn overridden(&self, blocks: &[Block], m: &Mark) -> bool {
        self.settings(blocks, &m.keyword)
            .iter()
            .any(|&(_, start, _)| start > m.start)
    }

    /// Every rule and route, with its extent.
    fn blocks(&self) -> Vec<Block> {
        let word = |i: usize| match self.toks.get(i).map(|t| &t.tok) {
            Some(Tok::Word(w)) => Some(w.as_str()),
            _ => None,
        };
        let mut out: Vec<Block> = Vec::new();
        let (mut clients, mut socks, mut routes) = (0, 0, 0);
        let mut i = 0;
        let mut at_start = true;
        while i < self.toks.len() {
            let tok = &self.toks[i].tok;
            if at_start {
                let (kind, action_at) = match word(i) {
                    Some("client") => (Some(BlockKind::Rule(RuleKind::Client)), i + 1),
                    Some("socks") => (Some(BlockKind::Rule(RuleKind::Socks)), i + 1),
                    Some("pass" | "block") => (Some(BlockKind::Rule(RuleKind::Socks)), i),
                    Some("route") => (Some(BlockKind::Route), i),
                    _ => (None, i),
                };
                let open = (i..self.toks.len()).find(|&j| self.toks[j].tok == Tok::Open);
                let close = open
                    .and_then(|o| (o..self.toks.len()).find(|&j| self.toks[j].tok == Tok::Close));
                if let (Some(kind), Some(close)) = (kind, close) {
                    let action = match (kind, word(action_at)) {
                        (BlockKind::Route, _) => None,
                        (_, Some("block")) => Some(Action::Block),
                        _ => Some(Action::Pass),
                    };
                    let number = match kind {
                        BlockKind::Rule(RuleKind::Client) => &mut clients,
                        BlockKind::Rule(RuleKind::Socks) => &mut socks,
                        BlockKind::Route => &mut routes,
                    };
                    *number += 1;
                    out.push(Block {
                        kind,
                        action,
                        start: self.offset(self.toks[i].pos),
                        end: self.tok_end(close),
                        pos: self.toks[i].pos,
                        number: *number,
                    });
                    i = close + 1;
                    continue;
                }
            }
            at_start = matches!(tok, Tok::Newline | Tok::Close);
            i += 1;
        }
        out
    }
}

/// The special of a message `"KEY: VALUE" is …`, when it is about a value.
fn value_special(message: &str) -> Option<&'static keywords::Special> {
    let quoted = message.strip_prefix('"')?.split('"').next()?;
    let (key, value) = quoted.split_once(": ")?;
    let of_value = || {
        SPECIALS
            .iter()
            .filter(move |s| s.value == Some(value) && s.message(key) == message)
    };
    // `clientmethod: pam.any` and `socksmethod: pam.any` read alike; `method:` is
    // either (the statement's place decides, which the parser already did).
    of_value()
        .find(|s| s.keyword == key)
        .or_else(|| of_value().next())
}

/// The keyword as the file writes it, from the message about one of its values.
fn written_key(fallback: &str, message: &str) -> String {
    message
        .strip_prefix('"')
        .and_then(|m| m.split(": ").next())
        .map_or_else(|| fallback.to_owned(), str::to_owned)
}

// === deciding the cuts ===

/// A span commented out, and why.
#[derive(Debug, Clone)]
struct Cut {
    pos: Pos,
    start: usize,
    end: usize,
    why: String,
    /// The rule or route it removes whole, by index in the block list.
    block: Option<usize>,
}

fn plan(
    src: &Source,
    blocks: &[Block],
    marks: &[Mark],
    config: Option<&crate::Config>,
) -> Vec<Cut> {
    let mut whole: Vec<(usize, Vec<String>)> = Vec::new();
    let mut cuts: Vec<Cut> = Vec::new();
    let add_whole = |whole: &mut Vec<(usize, Vec<String>)>, b: usize, why: String| match whole
        .iter_mut()
        .find(|(x, _)| *x == b)
    {
        Some((_, w)) => w.push(why),
        None => whole.push((b, vec![why])),
    };
    for m in marks {
        let joined = m.messages.join("; ");
        let ignored = m.messages.iter().all(|s| s.contains(" is ignored"));
        let block = blocks
            .iter()
            .position(|b| b.start <= m.start && m.start < b.end);
        let in_rule = block.and_then(|b| match blocks[b].kind {
            BlockKind::Rule(_) => Some((b, blocks[b].action)),
            BlockKind::Route => None,
        });
        match in_rule {
            Some((b, _)) if m.emptied => add_whole(
                &mut whole,
                b,
                format!("{joined}; the rule can match no session (ferrosocks offers none of its methods), so it is left out"),
            ),
            Some((b, Some(Action::Pass))) if m.statement => add_whole(
                &mut whole,
                b,
                format!("{joined}; this pass rule is left out: what it matched goes to the rules after it"),
            ),
            Some((_, _)) if m.statement => cuts.push(Cut {
                pos: m.pos,
                start: m.start,
                end: m.end,
                why: format!("{joined}; left out of this block rule, which blocks at least what it blocked"),
                block: None,
            }),
            _ => {
                let why = if !m.statement {
                    format!("{joined}; left out of the list")
                } else if ignored {
                    format!("{joined}; left out (ferrosocks ignores it)")
                } else if m.emptied && block.is_none() && src.overridden(blocks, m) {
                    format!("{joined}; a later \"{}:\" replaces it anyway", m.keyword)
                } else if m.emptied && block.is_none() && m.keyword == "socksmethod" {
                    format!("{joined}; with no method left every request is refused, as with no \"socksmethod:\"")
                } else if m.emptied && block.is_none() && m.keyword == "clientmethod" {
                    format!("{joined}; with no method left no client may connect, so the client pass rules that use the server's client methods are left out")
                } else {
                    format!("{joined}; left out")
                };
                cuts.push(Cut {
                    pos: m.pos,
                    start: m.start,
                    end: m.end,
                    why,
                    block: None,
                });
            }
        }
        let in_force = m.emptied && block.is_none() && !src.overridden(blocks, m);
        // The server's method list in force left empty: the lists it replaced in Dante
        // must not come back into force.
        if in_force {
            for (pos, start, end) in src.settings(blocks, &m.keyword) {
                if end <= m.start && !marks.iter().any(|x| x.start == start) {
                    cuts.push(Cut {
                        pos,
                        start,
                        end,
                        why: format!("replaced in Dante by line {}, whose methods ferrosocks does not offer, so left out too", m.pos.line),
                        block: None,
                    });
                }
            }
        }
        // `clientmethod:` left empty: without it ferrosocks would use `none`, letting in
        // clients Dante would have checked; the client pass rules using it go.
        if in_force && m.keyword == "clientmethod" {
            for (b, rule) in blocks.iter().enumerate() {
                let own_methods = config.and_then(|c| {
                    c.client_rules
                        .iter()
                        .find(|r| r.line == rule.pos.line)
                        .map(|r| r.clientmethods.is_some())
                });
                if rule.kind == BlockKind::Rule(RuleKind::Client)
                    && rule.action == Some(Action::Pass)
                    && own_methods != Some(true)
                {
                    add_whole(
                        &mut whole,
                        b,
                        format!("the server's \"clientmethod:\" (line {}) has no method ferrosocks offers, so this client pass rule is left out", m.pos.line),
                    );
                }
            }
        }
    }
    for (b, why) in whole {
        let block = &blocks[b];
        cuts.retain(|c| !(block.start <= c.start && c.start < block.end));
        cuts.push(Cut {
            pos: block.pos,
            start: block.start,
            end: block.end,
            why: why.join("; "),
            block: Some(b),
        });
    }
    // Marks inside a rule left out whole are said with it (above); sort in file order.
    cuts.sort_by_key(|c| c.start);
    cuts
}

// === writing the result ===

fn render(
    file: &str,
    src: &Source,
    blocks: &[Block],
    cuts: &[Cut],
    config: Option<&crate::Config>,
) -> Migrated {
    let mut out = String::new();
    let mut notes = Vec::new();
    out.push_str(&format!(
        "# ferrosocks configuration migrated from the Dante configuration {file}\n\
         # by \"ferrosocks migrate --from-dante\". Check it with \"ferrosocks -V -f FILE\".\n"
    ));
    if !cuts.is_empty() {
        out.push_str(
            "# Lines starting \"#|\" are Dante's, left out because ferrosocks cannot honour them\n\
             # (yet); the \"# ferrosocks:\" comment above them says why.\n",
        );
    }
    let renumbered = renumbering(blocks, cuts);
    for line in &renumbered {
        comment(&mut out, "", line);
    }
    if config.is_some_and(|c| c.internals.is_empty()) {
        out.push('\n');
        let why = "the Dante file has no \"internal:\" (Dante does not start without one either): listening on loopback only; set your own address";
        comment(&mut out, "", why);
        out.push_str(LOOPBACK_INTERNAL);
        out.push('\n');
        notes.push(format!("{file}: {why}: added \"{LOOPBACK_INTERNAL}\""));
    }
    out.push('\n');
    for c in cuts {
        notes.push(format!(
            "{file}:{}:{}: commented out: {}",
            c.pos.line, c.pos.col, c.why
        ));
    }
    notes.extend(renumbered);

    let text = src.text;
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut line_start = 0;
    for line in body.split('\n') {
        let line_end = line_start + line.len();
        let here: Vec<&Cut> = cuts
            .iter()
            .filter(|c| c.start <= line_end && c.end > line_start && c.start < c.end)
            .collect();
        if here.is_empty() {
            out.push_str(line);
            out.push('\n');
            line_start = line_end + 1;
            continue;
        }
        let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
        let mut kept: Vec<&str> = Vec::new();
        let mut removed: Vec<&str> = Vec::new();
        let mut at = line_start;
        for c in &here {
            if c.start >= line_start && c.start <= line_end {
                if c.block.is_some() {
                    out.push('\n');
                }
                comment(&mut out, &indent, &c.why);
            }
            let (s, e) = (c.start.max(line_start), c.end.min(line_end));
            if s > at {
                kept.push(&text[at..s]);
            }
            removed.push(&text[s..e]);
            at = at.max(e);
        }
        if at < line_end {
            kept.push(&text[at..line_end]);
        }
        // Cut from its first word, with at most a comment after: the line goes as it is.
        let whole_line = here.iter().all(|c| c.start <= line_start + indent.len())
            && kept
                .iter()
                .all(|k| k.trim().is_empty() || k.trim_start().starts_with('#'));
        if whole_line {
            out.push_str(CUT);
            out.push_str(line.trim_end());
            out.push('\n');
        } else {
            for r in removed.iter().filter(|r| !r.trim().is_empty()) {
                out.push_str(&format!("{indent}{CUT}{}\n", r.trim()));
            }
        }
        // The first piece keeps its indentation; the pieces are joined by one space.
        let kept = kept
            .iter()
            .enumerate()
            .map(|(i, k)| if i == 0 { k.trim_end() } else { k.trim() })
            .filter(|k| !k.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !kept.trim().is_empty() && !whole_line {
            out.push_str(&kept);
            out.push('\n');
        }
        line_start = line_end + 1;
    }
    Migrated { text: out, notes }
}

/// Notes on rule numbers that change because rules before them were left out: log
/// lines (`pass(N)`) and the status file name rules by number.
fn renumbering(blocks: &[Block], cuts: &[Cut]) -> Vec<String> {
    let gone: Vec<usize> = cuts.iter().filter_map(|c| c.block).collect();
    let mut out = Vec::new();
    for (kind, name) in [(RuleKind::Client, "client"), (RuleKind::Socks, "socks")] {
        let mut now = 0;
        let mut moved = Vec::new();
        for (b, block) in blocks.iter().enumerate() {
            if block.kind != BlockKind::Rule(kind) || gone.contains(&b) {
                continue;
            }
            now += 1;
            if now != block.number {
                moved.push(format!("{} is {now}", block.number));
            }
        }
        if !moved.is_empty() {
            out.push(format!(
                "{name} rules left out renumber the ones after them (in log lines such as pass(N)): Dante's {name} rule {}",
                moved.join(", ")
            ));
        }
    }
    out
}

/// Appends `text` as comment lines of at most [`WIDTH`] columns.
fn comment(out: &mut String, indent: &str, text: &str) {
    let mut line = format!("{indent}{WHY}");
    let bare = line.len();
    for word in text.split_whitespace() {
        if line.len() > bare && line.len() + 1 + word.len() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = format!("{indent}#   ");
        }
        if !line.ends_with(' ') {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migrate(text: &str) -> Migrated {
        from_dante("d.conf", text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The migrated file parses without an error and without an "is ignored" warning.
    fn runs(m: &Migrated) -> crate::Config {
        let p = parse("m", &m.text).unwrap_or_else(|e| panic!("{e}\n{}", m.text));
        assert!(
            p.warnings.iter().all(|w| !w.message.contains("is ignored")),
            "{:?}",
            p.warnings
        );
        p.config
    }

    const BASE: &str = "internal: 127.0.0.1 port = 1080\nsocksmethod: none\n";

    #[test]
    fn a_supported_file_is_kept_as_it_is() {
        let text = format!("{BASE}socks pass {{ from: 0/0 to: 0/0 }}\n");
        let m = migrate(&text);
        assert!(m.text.ends_with(&format!("\n\n{text}")), "{}", m.text);
        assert!(m.notes.is_empty(), "{:?}", m.notes);
        runs(&m);
    }

    #[test]
    fn a_pass_rule_with_a_refused_keyword_is_left_out_whole() {
        let m = migrate(&format!(
            "{BASE}socks pass {{\n  from: 0/0 to: 0/0\n  group: staff\n}}\nsocks pass {{ from: 10.0.0.0/8 to: 0/0 }}\n"
        ));
        let c = runs(&m);
        assert_eq!(c.socks_rules.len(), 1);
        assert!(
            m.text
                .contains("#| socks pass {\n#|   from: 0/0 to: 0/0\n#|   group: staff\n#| }\n"),
            "{}",
            m.text
        );
        assert!(m.text.contains("# ferrosocks: \"group\" is not supported yet: without it the rule would match users"), "{}", m.text);
        assert!(m.text.contains("Dante's socks rule 2 is 1"), "{}", m.text);
        assert_eq!(m.notes.len(), 2, "{:?}", m.notes);
        assert!(
            m.notes[0].starts_with("d.conf:3:1: commented out: \"group\""),
            "{:?}",
            m.notes
        );
    }

    #[test]
    fn a_block_rule_loses_only_the_keyword() {
        let m = migrate(&format!(
            "{BASE}socks block {{ from: 0/0 to: 0/0 libwrap: spawn finger @%a\n log: connect }}\n"
        ));
        let c = runs(&m);
        assert_eq!(c.socks_rules.len(), 1);
        assert!(c.socks_rules[0].log.connect);
        let one_line = migrate(&format!(
            "{BASE}socks block {{ from: 0/0 to: 0/0 session.max: 3 }}\n"
        ));
        assert!(
            one_line
                .text
                .ends_with("#| session.max: 3\nsocks block { from: 0/0 to: 0/0 }\n"),
            "{}",
            one_line.text
        );
        assert!(
            m.text.contains(
                "#| libwrap: spawn finger @%a\nsocks block { from: 0/0 to: 0/0\n log: connect }\n"
            ),
            "{}",
            m.text
        );
    }

    #[test]
    fn refused_methods_leave_their_lists() {
        let m = migrate(&format!(
            "{BASE}socksmethod: pam username gssapi\nsocks pass {{ from: 0/0 to: 0/0\nsocksmethod: pam.any\n}}\nsocks pass {{ from: 0/0 to: 0/0 }}\n"
        ));
        let c = runs(&m);
        assert_eq!(c.socksmethods, vec![crate::AuthMethod::Username]);
        // The rule that matched only PAM sessions can match none.
        assert_eq!(c.socks_rules.len(), 1);
        assert!(m.text.contains("can match no session"), "{}", m.text);
    }

    #[test]
    fn an_empty_method_list_does_not_bring_back_the_one_it_replaced() {
        let m = migrate(&format!(
            "{BASE}socksmethod: username none\nsocksmethod: pam\nclientmethod: pam.any\nclientmethod: none\n"
        ));
        let c = runs(&m);
        assert!(c.socksmethods.is_empty(), "{}", m.text);
        assert_eq!(c.clientmethods, vec![crate::AuthMethod::None], "{}", m.text);
        assert!(m.text.contains("#| socksmethod: none\n"), "{}", m.text);
        assert!(
            m.text.contains("#| socksmethod: username none\n"),
            "{}",
            m.text
        );
        assert!(
            m.text
                .contains("a later \"clientmethod:\" replaces it anyway"),
            "{}",
            m.text
        );
    }

    #[test]
    fn an_empty_server_clientmethod_takes_the_client_pass_rules_with_it() {
        let m = migrate(&format!(
            "{BASE}clientmethod: pam.any\nclient pass {{ from: 0/0 to: 0/0 }}\nclient block {{ from: 0/0 to: 0/0 }}\nclient pass {{ from: 0/0 to: 0/0\nclientmethod: none\n}}\n"
        ));
        let c = runs(&m);
        assert_eq!(c.client_rules.len(), 2, "{}", m.text);
        assert_eq!(c.client_rules[0].action, Action::Block);
    }

    #[test]
    fn server_settings_and_ignored_keywords_are_commented() {
        let m = migrate(&format!(
            "{BASE}srchost: nodnsunknown\ncompatibility: sameport draft-5.05\nextension: bind\nchild.maxidle: yes\n"
        ));
        runs(&m);
        for cut in [
            "#| srchost: nodnsunknown",
            "#| compatibility: sameport draft-5.05",
            "#| extension: bind",
            "#| child.maxidle: yes",
        ] {
            assert!(m.text.contains(cut), "{cut}\n{}", m.text);
        }
        assert!(
            m.text
                .contains("clients and replies that Dante refuses; left out"),
            "{}",
            m.text
        );
        assert_eq!(m.notes.len(), 4, "{:?}", m.notes);
    }

    #[test]
    fn no_internal_gets_the_loopback_listener() {
        let m = migrate("logoutput: stderr\nuser.unprivileged: nobody\n");
        let c = runs(&m);
        assert_eq!(c.internals.len(), 1);
        assert!(m.text.contains(&format!("\n{LOOPBACK_INTERNAL}\n")));
    }

    #[test]
    fn every_other_error_is_reported_and_nothing_is_written() {
        let e = from_dante(
            "d.conf",
            "internal: 127.0.0.1\nsockmethod: none\nsrchost: nodnsunknown\nsocks pass { from: 10.0.0.1 to: 0/0 group: x }\nsocks pass { from: 0/0 to: 0/0 group: x log: bogus }\n",
        )
        .unwrap_err();
        let lines: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("d.conf:2:1: unknown keyword \"sockmethod\""));
        assert!(lines[1].starts_with("d.conf:4:20: no netmask"));
        // Found only once "group" was blanked: a refusal ends the parser's line.
        assert!(lines[2].starts_with("d.conf:5:"), "{lines:?}");
    }
}
