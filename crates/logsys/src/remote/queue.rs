//! The remote receiver's queue: messages in memory up to a bound, then on disk (when a
//! directory is given), oldest first either way, in order.
//!
//! Memory holds the oldest messages; once it is full every new message goes to disk
//! until the disk part is empty again, so that order is kept. The disk part is a run of
//! segment files `NNNNNNNNNNNNNNNNNNNN.q` (at most [`SEGMENT`] bytes each) of RFC 6587
//! frames, self-delimiting; a segment is deleted once read. Segments left by an earlier
//! run are read first at start (what a crash interrupted is delivered, possibly again).
//! A full disk part drops its oldest segment, a full memory without disk its oldest
//! message: both counted.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::format::framing::{self, Decoded};

/// Bytes per disk segment.
pub(crate) const SEGMENT: u64 = 1 << 20;
/// The first segment's number: room below it for what a stop puts in front.
const FIRST_SEGMENT: u64 = 1 << 40;
/// The longest message kept (longer ones are cut).
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

/// The bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) memory: usize,
    pub(crate) disk: u64,
}

pub(crate) struct Queue {
    bounds: Bounds,
    mem: VecDeque<Vec<u8>>,
    mem_bytes: usize,
    disk: Option<Disk>,
    /// Messages dropped since last asked.
    pub(crate) dropped: u64,
    /// Why the disk part failed, once, since last asked.
    pub(crate) disk_error: Option<String>,
}

struct Disk {
    dir: PathBuf,
    /// Segment numbers on disk, oldest first.
    segments: VecDeque<u64>,
    bytes: u64,
    /// The segment being written and its size.
    writer: Option<(u64, File, u64)>,
    /// Messages read from the oldest segment, not yet taken.
    read: VecDeque<Vec<u8>>,
    /// Messages still on disk (counted for reports).
    count: u64,
}

impl Queue {
    /// A queue; `dir` (created if missing) holds the disk part, and what an earlier run
    /// left there comes first.
    pub(crate) fn new(bounds: Bounds, dir: Option<&Path>) -> Self {
        let mut q = Self {
            bounds,
            mem: VecDeque::new(),
            mem_bytes: 0,
            disk: None,
            dropped: 0,
            disk_error: None,
        };
        if let Some(dir) = dir {
            match Disk::open(dir) {
                Ok(d) => q.disk = Some(d),
                Err(e) => q.disk_error = Some(format!("cannot use {}: {e}", dir.display())),
            }
        }
        q
    }

    /// Messages waiting, in memory and on disk.
    pub(crate) fn len(&self) -> u64 {
        self.mem.len() as u64 + self.disk.as_ref().map_or(0, |d| d.count)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a message.
    pub(crate) fn push(&mut self, msg: Vec<u8>) {
        let on_disk = self.disk.as_ref().is_some_and(|d| d.count > 0);
        if !on_disk && self.mem_bytes + msg.len() <= self.bounds.memory {
            self.mem_bytes += msg.len();
            self.mem.push_back(msg);
            return;
        }
        let disk_bound = self.bounds.disk;
        if let Some(d) = self.disk.as_mut() {
            match d.append(&msg, disk_bound) {
                Ok(dropped) => {
                    self.dropped += dropped;
                    return;
                }
                Err(e) => {
                    if self.disk_error.is_none() {
                        self.disk_error = Some(format!("cannot write to {}: {e}", d.dir.display()));
                    }
                }
            }
        }
        // No disk part (or it fails): the oldest message in memory goes.
        if let Some(old) = self.mem.pop_front() {
            self.mem_bytes -= old.len();
            self.dropped += 1;
        }
        self.mem_bytes += msg.len();
        self.mem.push_back(msg);
    }

    /// Puts messages taken but not delivered back in front, in their order.
    pub(crate) fn unget(&mut self, msgs: impl DoubleEndedIterator<Item = Vec<u8>>) {
        for m in msgs.rev() {
            self.mem_bytes += m.len();
            self.mem.push_front(m);
        }
    }

    /// At stop: what waits in memory goes to the front of the disk part, for the next
    /// run. Without a disk part it is lost: returns how many.
    pub(crate) fn persist(&mut self) -> u64 {
        if self.mem.is_empty() {
            return 0;
        }
        let Some(d) = self.disk.as_mut() else {
            return self.mem.len() as u64;
        };
        let mut older: Vec<Vec<u8>> = self.mem.drain(..).collect();
        self.mem_bytes = 0;
        d.count -= d.read.len() as u64;
        older.extend(d.read.drain(..));
        match d.prepend(&older) {
            Ok(()) => 0,
            Err(e) => {
                self.disk_error = Some(format!("cannot write to {}: {e}", d.dir.display()));
                older.len() as u64
            }
        }
    }

    /// Takes the oldest message.
    pub(crate) fn pop(&mut self) -> Option<Vec<u8>> {
        if let Some(m) = self.mem.pop_front() {
            self.mem_bytes -= m.len();
            return Some(m);
        }
        let d = self.disk.as_mut()?;
        match d.pop() {
            Ok(m) => m,
            Err(e) => {
                if self.disk_error.is_none() {
                    self.disk_error = Some(format!("cannot read {}: {e}", d.dir.display()));
                }
                None
            }
        }
    }
}

impl Disk {
    fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut segments: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| {
                let n = e.ok()?.file_name().into_string().ok()?;
                n.strip_suffix(".q")?.parse().ok()
            })
            .collect();
        segments.sort_unstable();
        let mut d = Self {
            dir: dir.to_path_buf(),
            segments: segments.into_iter().collect(),
            bytes: 0,
            writer: None,
            read: VecDeque::new(),
            count: 0,
        };
        for &s in &d.segments {
            let data = std::fs::read(d.path(s))?;
            d.bytes += data.len() as u64;
            d.count += frames(&data).len() as u64;
        }
        Ok(d)
    }

    fn path(&self, seg: u64) -> PathBuf {
        self.dir.join(format!("{seg:020}.q"))
    }

    /// Appends one frame; returns how many messages a full disk dropped for it.
    fn append(&mut self, msg: &[u8], bound: u64) -> std::io::Result<u64> {
        let mut frame = Vec::with_capacity(msg.len() + 8);
        framing::encode(&mut frame, msg);
        let mut dropped = 0;
        while self.bytes + frame.len() as u64 > bound && self.segments.len() > 1 {
            dropped += self.drop_oldest()?;
        }
        let fits = frame.len() as u64;
        let need_new = !matches!(&self.writer, Some((_, _, size)) if size + fits <= SEGMENT);
        if need_new {
            let seg = self.segments.back().map_or(FIRST_SEGMENT, |s| s + 1);
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(seg))?;
            self.segments.push_back(seg);
            self.writer = Some((seg, f, 0));
        }
        let (_, f, size) = self.writer.as_mut().expect("opened above");
        f.write_all(&frame)?;
        *size += frame.len() as u64;
        self.bytes += frame.len() as u64;
        self.count += 1;
        Ok(dropped)
    }

    /// Writes messages older than everything on disk as a new first segment.
    fn prepend(&mut self, msgs: &[Vec<u8>]) -> std::io::Result<()> {
        let seg = self
            .segments
            .front()
            .map_or(FIRST_SEGMENT, |f| f.saturating_sub(1));
        let mut buf = Vec::new();
        for m in msgs {
            framing::encode(&mut buf, m);
        }
        let mut f = File::create(self.path(seg))?;
        f.write_all(&buf)?;
        f.sync_all()?;
        self.segments.push_front(seg);
        self.bytes += buf.len() as u64;
        self.count += msgs.len() as u64;
        Ok(())
    }

    /// Deletes the oldest segment (or what is left of it in `read`): its messages.
    fn drop_oldest(&mut self) -> std::io::Result<u64> {
        if !self.read.is_empty() {
            let n = self.read.len() as u64;
            self.read.clear();
            self.count -= n;
            return Ok(n);
        }
        let Some(seg) = self.segments.pop_front() else {
            return Ok(0);
        };
        let data = std::fs::read(self.path(seg)).unwrap_or_default();
        let n = frames(&data).len() as u64;
        self.bytes = self.bytes.saturating_sub(data.len() as u64);
        self.count -= n.min(self.count);
        std::fs::remove_file(self.path(seg))?;
        if self.writer.as_ref().is_some_and(|(s, _, _)| *s == seg) {
            self.writer = None;
        }
        Ok(n)
    }

    fn pop(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.read.is_empty() {
            let Some(&seg) = self.segments.front() else {
                return Ok(None);
            };
            if self.writer.as_ref().is_some_and(|(s, _, _)| *s == seg) {
                // The segment being written is read whole: start a new one for writes.
                self.writer = None;
            }
            let mut data = Vec::new();
            File::open(self.path(seg))?.read_to_end(&mut data)?;
            std::fs::remove_file(self.path(seg))?;
            self.segments.pop_front();
            self.bytes = self.bytes.saturating_sub(data.len() as u64);
            self.read = frames(&data).into_iter().collect();
        }
        let m = self.read.pop_front();
        if m.is_some() {
            self.count -= 1;
        }
        Ok(m)
    }
}

/// The messages of a segment (a torn last frame, after a crash, is left out).
fn frames(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        match framing::decode(&data[at..], MAX_MESSAGE + 64) {
            Ok(Decoded::Frame { start, len, used }) => {
                out.push(data[at + start..at + start + len].to_vec());
                at += used;
            }
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_to_disk_in_order_and_drops_oldest_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::new(
            Bounds {
                memory: 100,
                disk: 3 * SEGMENT,
            },
            Some(dir.path()),
        );
        for i in 0..10_000u32 {
            q.push(format!("message {i:05}").into_bytes());
        }
        assert_eq!(q.len(), 10_000);
        let first: Vec<Vec<u8>> = (0..3).map(|_| q.pop().unwrap()).collect();
        q.unget(first.into_iter());
        // Another run finds what is on disk.
        let mut got = Vec::new();
        while let Some(m) = q.pop() {
            got.push(String::from_utf8(m).unwrap());
        }
        let expected: Vec<String> = (0..10_000).map(|i| format!("message {i:05}")).collect();
        assert_eq!(got, expected);
        assert_eq!(q.dropped, 0);

        let mut q = Queue::new(
            Bounds {
                memory: 10,
                disk: 0,
            },
            None,
        );
        for i in 0..5u8 {
            q.push(vec![b'a' + i; 4]);
        }
        assert_eq!(q.dropped, 3);
        assert_eq!(q.pop(), Some(vec![b'd'; 4]));
    }

    #[test]
    fn a_restart_reads_what_was_left_on_disk_first() {
        let dir = tempfile::tempdir().unwrap();
        let b = Bounds {
            memory: 0,
            disk: 10 * SEGMENT,
        };
        let mut q = Queue::new(b, Some(dir.path()));
        for i in 0..100u32 {
            q.push(i.to_string().into_bytes());
        }
        drop(q);
        let mut q = Queue::new(b, Some(dir.path()));
        assert_eq!(q.len(), 100);
        q.push(b"new".to_vec());
        let got: Vec<Vec<u8>> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(got.len(), 101);
        assert_eq!(got[0], b"0");
        assert_eq!(got[100], b"new");
    }
}
