//! `ferrosocks log stats|convert|grep`: the files, the progress bar and the output;
//! what a line means and the numbers are the `accounting` crate's.
//!
//! Every input is read to its end whatever happens in another: a file that cannot be
//! opened or that fails part-way (a truncated gzip member, an I/O error) is reported
//! with file:line like a malformed line, and the others are still read. Files are read
//! through the descriptor opened first, so one rotated or deleted while it is read is
//! read to the end it had. Exit status: 0, or 1 when an input could not be read (the
//! report is still written), 64 for a bad command line.

mod input;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use accounting::account::Options;
use accounting::decode::{decode, Context, Decoded};
use accounting::filter::{self, Cidr, Filter, TargetMatch};
use accounting::lines::{Chunk, Lines};
use accounting::render::{self, Format};
use accounting::{time, Accounting, Malformed};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{
    ConvertArgs, GrepArgs, InputArgs, LogArgs, LogCommand, StatsArgs, StatsFormat, ToFormat,
};
use crate::{complain, EX_CONFIG};

/// Exit status when an input could not be read, wholly or in part.
const EX_INPUT: u8 = 1;

pub(crate) fn run(args: &LogArgs) -> ExitCode {
    let result = match &args.command {
        LogCommand::Stats(a) => stats(a),
        LogCommand::Convert(a) => convert(a),
        LogCommand::Grep(a) => grep(a),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EX_INPUT),
        Err(Failure::Usage(msg)) => {
            complain(&msg);
            ExitCode::from(EX_CONFIG)
        }
        // A closed pipe (`| head`): the reader has what it wanted.
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Output(e)) => {
            complain(&format!("writing the output: {e}"));
            ExitCode::from(EX_INPUT)
        }
    }
}

enum Failure {
    Usage(String),
    Output(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Output(e)
    }
}

fn context() -> Context {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Context {
        year: time::year_of(now),
        now: Some(now),
    }
}

fn window(input: &InputArgs) -> Result<(Option<i64>, Option<i64>), Failure> {
    let parse = |v: &Option<String>, what: &str| {
        v.as_deref()
            .map(time::parse)
            .transpose()
            .map_err(|e| Failure::Usage(format!("--{what}: {e}")))
    };
    Ok((parse(&input.since, "since")?, parse(&input.until, "until")?))
}

/// Reads every input's lines in turn: `line` gets each, `failed` each input that could
/// not be read (line 0: not opened). Returns whether every input was read whole.
fn each_line(
    input: &InputArgs,
    mut line: impl FnMut(&str, u64, Chunk<'_>) -> Result<(), Failure>,
    mut failed: impl FnMut(&str, u64, String),
) -> Result<bool, Failure> {
    let bar = progress(input);
    let mut all_read = true;
    for path in &input.files {
        let origin = path.display().to_string();
        if let Some(b) = &bar {
            let name = path
                .file_name()
                .map_or_else(|| origin.clone(), |n| n.to_string_lossy().into_owned());
            b.set_message(name);
        }
        let reader = match input::open(path, bar.clone()) {
            Ok(r) => r,
            Err(e) => {
                failed(&origin, 0, format!("cannot read: {e}"));
                all_read = false;
                continue;
            }
        };
        let mut lines = Lines::new(reader);
        loop {
            let n = lines.lineno() + 1;
            match lines.next_line() {
                Ok(Some(chunk)) => line(&origin, n, chunk)?,
                Ok(None) => break,
                Err(e) => {
                    failed(
                        &origin,
                        n,
                        format!("read error, the rest of the file is not read: {e}"),
                    );
                    all_read = false;
                    break;
                }
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(all_read)
}

/// A progress bar on standard error, for several files on a terminal.
fn progress(input: &InputArgs) -> Option<ProgressBar> {
    if input.no_progress || input.files.len() < 2 || !io::stderr().is_terminal() {
        return None;
    }
    let total: u64 = input.files.iter().map(|p| input::size(p)).sum();
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

fn stats(args: &StatsArgs) -> Result<bool, Failure> {
    let (since, until) = window(&args.input)?;
    let mut acc = Accounting::new(Options {
        by: args.by.iter().map(|b| b.dimension()).collect(),
        since,
        until,
        context: context(),
    });
    let mut failures = Vec::new();
    let all_read = each_line(
        &args.input,
        |origin, n, chunk| {
            match chunk {
                Chunk::Line { text, complete } => acc.feed_line(origin, n, text, complete),
                Chunk::TooLong(len) => acc.too_long(origin, n, len),
            }
            Ok(())
        },
        |origin, n, e| failures.push((origin.to_owned(), n, e)),
    )?;
    for (origin, n, e) in failures {
        acc.failed(&origin, n, e);
    }
    let mut report = acc.finish();
    render::order(&mut report, args.sort.sort(), args.top);
    let format = match args.format {
        StatsFormat::Table => Format::Table,
        StatsFormat::Csv => Format::Csv,
        StatsFormat::Json => Format::Json,
    };
    let mut out = io::stdout().lock();
    out.write_all(render::render(&report, format).as_bytes())?;
    out.flush()?;
    eprint!("{}", render::summary(&report));
    Ok(all_read)
}

fn convert(args: &ConvertArgs) -> Result<bool, Failure> {
    let (since, until) = window(&args.input)?;
    let ctx = context();
    let mut malformed = Malformed::default();
    let mut failures = Vec::new();
    let mut skipped = 0u64;
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    if args.to == ToFormat::Csv {
        writeln!(out, "{}", accounting::convert::CSV_FIELDS.join(","))?;
    }
    let mut scratch = String::new();
    let all_read = each_line(
        &args.input,
        |origin, n, chunk| {
            let (text, complete) = match chunk {
                Chunk::Line { text, complete } => (text, complete),
                Chunk::TooLong(len) => {
                    malformed.note(origin, n, || {
                        format!(
                            "line of {len} bytes, longer than {} (skipped)",
                            accounting::lines::MAX_LINE
                        )
                    });
                    return Ok(());
                }
            };
            let line = decode(text, &ctx);
            if line
                .time
                .is_some_and(|t| since.is_some_and(|s| t < s) || until.is_some_and(|u| t >= u))
            {
                return Ok(());
            }
            let record = match &line.decoded {
                Decoded::Record(r) => Some(r),
                Decoded::Malformed(why) => {
                    malformed.note(origin, n, || {
                        if complete {
                            why.clone()
                        } else {
                            format!("{why} (last line, no newline: truncated?)")
                        }
                    });
                    None
                }
                _ => None,
            };
            match (record, args.to) {
                (Some(r), ToFormat::Json) => {
                    writeln!(out, "{}", accounting::convert::json_line(&line, Some(r)))?;
                }
                (Some(r), ToFormat::Csv) => {
                    writeln!(out, "{}", accounting::convert::csv_row(&line, r))?;
                }
                (None, ToFormat::Json) if !args.strict => {
                    // The message as it was, even when it was not UTF-8.
                    scratch.clear();
                    scratch.push_str(&String::from_utf8_lossy(text));
                    let mut l = line.clone();
                    if l.msg.is_empty() && !text.is_empty() {
                        l.msg = &scratch;
                    }
                    writeln!(out, "{}", accounting::convert::json_line(&l, None))?;
                }
                (None, _) => skipped += 1,
            }
            Ok(())
        },
        |origin, n, e| failures.push((origin.to_owned(), n, e)),
    )?;
    for (origin, n, e) in failures {
        malformed.note_failure(&origin, n, e);
    }
    out.flush()?;
    if skipped > 0 {
        eprintln!("{skipped} lines that are not traffic records skipped");
    }
    if malformed.count + malformed.failures > 0 {
        eprint!("{}", malformed.report());
    }
    Ok(all_read)
}

fn usage<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, Failure> {
    r.map_err(|e| Failure::Usage(format!("--{what}: {e}")))
}

fn grep(args: &GrepArgs) -> Result<bool, Failure> {
    let (since, until) = window(&args.input)?;
    let f = Filter {
        user: args.user.clone(),
        client: args
            .client
            .as_deref()
            .map(Cidr::parse)
            .transpose()
            .map_err(|e| Failure::Usage(format!("--client: {e}")))?,
        target: args.target.as_deref().map(TargetMatch::parse),
        port: args.port,
        verdict: args
            .verdict
            .as_deref()
            .map(filter::verdict)
            .map_or(Ok(None), |r| usage("verdict", r).map(Some))?,
        rule: args.rule,
        command: args
            .command
            .as_deref()
            .map(filter::command)
            .map_or(Ok(None), |r| usage("command", r).map(Some))?,
        phase: args
            .phase
            .as_deref()
            .map(filter::phase)
            .map_or(Ok(None), |r| usage("phase", r).map(Some))?,
    };
    let ctx = context();
    let mut malformed = Malformed::default();
    let mut failures = Vec::new();
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let all_read = each_line(
        &args.input,
        |origin, n, chunk| {
            let text = match chunk {
                Chunk::Line { text, .. } => text,
                Chunk::TooLong(len) => {
                    malformed.note(origin, n, || {
                        format!(
                            "line of {len} bytes, longer than {} (skipped)",
                            accounting::lines::MAX_LINE
                        )
                    });
                    return Ok(());
                }
            };
            let line = decode(text, &ctx);
            match &line.decoded {
                Decoded::Record(r) if f.matches(r) => {
                    if line.time.is_some_and(|t| {
                        since.is_some_and(|s| t < s) || until.is_some_and(|u| t >= u)
                    }) {
                        return Ok(());
                    }
                    if args.json {
                        writeln!(out, "{}", accounting::convert::json_line(&line, Some(r)))?;
                    } else {
                        out.write_all(text)?;
                        out.write_all(b"\n")?;
                    }
                }
                Decoded::Malformed(why) => malformed.note(origin, n, || why.clone()),
                _ => {}
            }
            Ok(())
        },
        |origin, n, e| failures.push((origin.to_owned(), n, e)),
    )?;
    for (origin, n, e) in failures {
        malformed.note_failure(&origin, n, e);
    }
    out.flush()?;
    if malformed.count + malformed.failures > 0 {
        eprint!("{}", malformed.report());
    }
    Ok(all_read)
}
