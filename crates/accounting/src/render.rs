//! A [`Report`] as text: an aligned table, CSV with a header row, or one JSON object a
//! line. Field names (the CSV header, the JSON keys) are stable and documented in
//! docs/accounting.md: the `--by` dimensions in their order, then [`FIELDS`].

use std::fmt::Write as _;

use crate::account::{Report, Stats};
use crate::time::format_utc;

/// The numeric and time fields of every row, in order.
pub const FIELDS: [&str; 11] = [
    "sessions",
    "open_sessions",
    "blocked",
    "bytes_from_client",
    "bytes_to_client",
    "bytes_from_target",
    "bytes_to_target",
    "bytes_known",
    "duration_secs",
    "first_seen",
    "last_seen",
];

/// The output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns with a total row.
    Table,
    /// Comma-separated, header row first.
    Csv,
    /// One JSON object per group.
    Json,
}

/// The row order (`--sort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// By the group's key.
    Key,
    /// Most sessions first.
    Sessions,
    /// Most bytes (all four counts) first.
    Bytes,
    /// Most blocked requests first.
    Blocked,
}

/// Sorts the groups and keeps the first `top`.
pub fn order(report: &mut Report, sort: Sort, top: Option<usize>) {
    let by = |s: &Stats| match sort {
        Sort::Key => 0,
        Sort::Sessions => s.sessions,
        Sort::Bytes => s.bytes_total(),
        Sort::Blocked => s.blocked,
    };
    if sort != Sort::Key {
        report
            .groups
            .sort_by(|a, b| by(&b.1).cmp(&by(&a.1)).then_with(|| a.0.cmp(&b.0)));
    }
    if let Some(n) = top {
        report.groups.truncate(n);
    }
}

fn values(s: &Stats, bytes_known: bool) -> [Option<String>; 11] {
    let b = |n: u64| bytes_known.then(|| n.to_string());
    [
        Some(s.sessions.to_string()),
        Some(s.open_sessions.to_string()),
        Some(s.blocked.to_string()),
        b(s.bytes_from_client),
        b(s.bytes_to_client),
        b(s.bytes_from_target),
        b(s.bytes_to_target),
        Some(bytes_known.to_string()),
        b(s.duration_secs),
        s.first_seen.map(format_utc),
        s.last_seen.map(format_utc),
    ]
}

/// The report in `format` (groups only; see [`summary`] for the rest).
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Table => table(report),
        Format::Csv => csv(report),
        Format::Json => json(report),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv(report: &Report) -> String {
    let mut out = String::new();
    let header: Vec<&str> = report.by.iter().map(|d| d.name()).chain(FIELDS).collect();
    out.push_str(&header.join(","));
    out.push('\n');
    for (key, s) in &report.groups {
        let row: Vec<String> = key
            .iter()
            .map(|k| csv_field(k))
            .chain(
                values(s, report.bytes_known)
                    .into_iter()
                    .map(|v| v.unwrap_or_default()),
            )
            .collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

fn json(report: &Report) -> String {
    let mut out = String::new();
    for (key, s) in &report.groups {
        out.push('{');
        let mut first = true;
        let mut field = |out: &mut String, name: &str, v: String| {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "\"{name}\":{v}");
        };
        for (d, k) in report.by.iter().zip(key) {
            field(
                &mut out,
                d.name(),
                serde_json::Value::from(k.as_str()).to_string(),
            );
        }
        for (name, v) in FIELDS.iter().zip(values(s, report.bytes_known)) {
            let text = match (*name, v) {
                (_, None) => "null".to_owned(),
                ("first_seen" | "last_seen", Some(t)) => format!("\"{t}\""),
                (_, Some(n)) => n,
            };
            field(&mut out, name, text);
        }
        out.push_str("}\n");
    }
    out
}

const TABLE_HEAD: [&str; 11] = [
    "sessions",
    "open",
    "blocked",
    "from client",
    "to client",
    "from target",
    "to target",
    "bytes",
    "duration s",
    "first seen",
    "last seen",
];

fn table(report: &Report) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let head: Vec<String> = report
        .by
        .iter()
        .map(|d| d.name().to_owned())
        .chain(TABLE_HEAD.iter().map(|s| (*s).to_owned()))
        .collect();
    rows.push(head);
    let cells = |key: Vec<String>, s: &Stats| -> Vec<String> {
        let mut v = values(s, report.bytes_known);
        v[7] = Some(
            if report.bytes_known {
                "known"
            } else {
                "unknown"
            }
            .into(),
        );
        key.into_iter()
            .chain(v.into_iter().map(|c| c.unwrap_or_else(|| "-".into())))
            .collect()
    };
    for (key, s) in &report.groups {
        rows.push(cells(key.clone(), s));
    }
    let mut total_key = vec![String::new(); report.by.len()];
    if let Some(k) = total_key.first_mut() {
        *k = "total".into();
    }
    let separator_at = rows.len();
    if !report.by.is_empty() {
        rows.push(cells(total_key, &report.total));
    }
    let ncol = rows[0].len();
    let width: Vec<usize> = (0..ncol)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let keys = report.by.len();
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        if i == separator_at && !report.by.is_empty() {
            let total: usize = width.iter().sum::<usize>() + 2 * (ncol - 1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = width[c] - cell.chars().count();
            // Keys and times left-aligned, numbers right-aligned.
            if c < keys || c >= keys + 7 && c != keys + 8 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What was read: lines, records, sources, the time window, malformed lines. Printed on
/// standard error, so that standard output is only the report.
pub fn summary(report: &Report) -> String {
    let c = &report.counts;
    let mut s = format!("{} lines, {} traffic records", c.lines, c.records);
    if !report.sources.is_empty() {
        let kinds: Vec<String> = report
            .sources
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = write!(s, " (lines by prefix: {})", kinds.join(", "));
    }
    s.push('\n');
    if c.outside_window > 0 {
        let _ = writeln!(s, "{} records outside --since/--until", c.outside_window);
    }
    if c.undated > 0 {
        let _ = writeln!(s, "{} records without a time (kept)", c.undated);
    }
    if report.total.open_sessions > 0 {
        let _ = writeln!(
            s,
            "{} sessions still open at the end of the input, counted with their interim bytes",
            report.total.open_sessions
        );
    }
    if !report.bytes_known {
        s.push_str("no session summaries (\"log: disconnect\" is off?): sessions counted from start lines, bytes unknown\n");
    }
    if report.malformed.count > 0 || c.failed_files > 0 {
        s.push_str(&report.malformed.report());
    }
    s
}
