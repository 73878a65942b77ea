//! `ferrosocks migrate --from-dante FILE`: reads a Dante configuration, prints the
//! configuration ferrosocks runs instead (the rewrite is `sockd_conf::migrate`, pure),
//! and says on stderr what it changed. Nothing is written when the file has errors.
//!
//! The result is parsed again before it is written (a rewrite that does not parse would
//! be a bug: exit 70), and the start-up checks of `-V` are run on it, reported as notes:
//! a migration may well be run on another host than the one that will serve.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::cli::MigrateArgs;
use crate::{complain, EX_CONFIG};

/// Exit status for a rewrite that does not parse (sysexits EX_SOFTWARE).
const EX_SOFTWARE: u8 = 70;

pub(crate) fn run(args: &MigrateArgs) -> ExitCode {
    match migrate(&args.from_dante, args.output.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            complain(&msg);
            ExitCode::from(code)
        }
    }
}

fn migrate(from: &Path, output: Option<&Path>) -> Result<(), (u8, String)> {
    let name = from.display().to_string();
    let text = std::fs::read(from)
        .map_err(|e| (EX_CONFIG, format!("{name}: {e}")))
        .and_then(|b| {
            String::from_utf8(b).map_err(|_| (EX_CONFIG, format!("{name}: not UTF-8 text")))
        })?;
    let migrated = sockd_conf::migrate::from_dante(&name, &text).map_err(|e| {
        (
            EX_CONFIG,
            format!("{e}\n{name}: the file has errors; nothing written"),
        )
    })?;
    let out_name = output.map_or_else(|| "<stdout>".to_owned(), |p| p.display().to_string());
    let parsed = sockd_conf::parse(&out_name, &migrated.text).map_err(|e| {
        (
            EX_SOFTWARE,
            format!("{e}\n{name}: the rewritten configuration does not parse (a bug in ferrosocks migrate); nothing written"),
        )
    })?;
    for note in &migrated.notes {
        complain(&format!("note: {note}"));
    }
    for w in &parsed.warnings {
        complain(&format!("warning: {w}"));
    }
    for p in server::preflight::check(&parsed.config) {
        complain(&format!("note: on this host -V would say: {p}"));
    }
    match output {
        Some(path) => std::fs::write(path, &migrated.text)
            .map_err(|e| (EX_CONFIG, format!("cannot write {}: {e}", path.display()))),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(migrated.text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| (EX_CONFIG, format!("cannot write to stdout: {e}")))
        }
    }
}
