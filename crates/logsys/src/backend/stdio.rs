//! Standard output and standard error: one write of the whole batch.

use std::io::Write;

use super::{Backend, Lines, Tally};

pub(crate) enum Stdio {
    Out,
    Err,
}

impl Backend for Stdio {
    fn describe(&self) -> String {
        match self {
            Self::Out => "stdout".into(),
            Self::Err => "stderr".into(),
        }
    }

    fn write(&mut self, lines: Lines<'_>, tally: &mut dyn Tally) {
        let r = match self {
            Self::Out => std::io::stdout().lock().write_all(lines.bytes()),
            Self::Err => std::io::stderr().lock().write_all(lines.bytes()),
        };
        tally.wrote(lines.len() as u64, r);
    }
}
