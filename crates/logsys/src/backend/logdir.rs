//! A log directory as a sink (`logdir: DIR`): each batch in as few writes as
//! multilog's rotation rule allows; a directory that cannot be opened is retried with
//! each batch (its lines counted as lost meanwhile, and reported).

use std::sync::PoisonError;

use super::{Backend, Lines, Tally};
use crate::logdir::{self, Shared};
use crate::LogDirTarget;

pub(crate) struct LogDirBackend {
    target: LogDirTarget,
    waker: super::Waker,
    dir: Option<Shared>,
    /// Why the directory could not be opened, until it can.
    open_error: Option<String>,
    /// A line has been written: the sink is in the routing, its reports are heard.
    live: bool,
}

impl LogDirBackend {
    pub(crate) fn open(target: LogDirTarget, waker: super::Waker) -> Self {
        let mut me = Self {
            target,
            waker,
            dir: None,
            open_error: None,
            live: false,
        };
        me.try_open();
        me
    }

    fn try_open(&mut self) {
        match logdir::shared(&self.target.path, &self.target.options) {
            Ok(d) => {
                d.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .set_waker(self.waker.clone());
                self.dir = Some(d);
                self.open_error = None;
            }
            Err(e) => self.open_error = Some(e.to_string()),
        }
    }
}

impl Backend for LogDirBackend {
    fn describe(&self) -> String {
        format!("log directory {}", self.target.path.display())
    }

    fn write(&mut self, lines: Lines<'_>, tally: &mut dyn Tally) {
        self.live = true;
        if self.dir.is_none() {
            self.try_open();
        }
        let Some(dir) = self.dir.as_ref() else {
            let e = self.open_error.clone().unwrap_or_default();
            tally.wrote(lines.len() as u64, Err(std::io::Error::other(e)));
            return;
        };
        let mut d = dir.lock().unwrap_or_else(PoisonError::into_inner);
        let r = if d.stamps() {
            // Each line is stamped with the time it was logged.
            d.write_lines(lines.iter().map(|(line, m)| (line, m.time)))
        } else {
            d.write(lines.bytes(), std::time::SystemTime::now())
        };
        tally.wrote(
            lines.len() as u64,
            r.map_err(|e| std::io::Error::other(e.to_string())),
        );
        for note in d.take_notes() {
            tally.note(note);
        }
    }

    fn poll(&mut self, tally: &mut dyn Tally) {
        // Before the first line the sink may not be in the routing yet: its reports
        // wait for that line.
        if !self.live {
            return;
        }
        if let Some(dir) = &self.dir {
            let notes = dir
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take_notes();
            for note in notes {
                tally.note(note);
            }
        }
    }
}
