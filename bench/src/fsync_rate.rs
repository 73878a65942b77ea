//! The wall under a log directory: how many rotations per second this disk does.
//!
//! A rotation of a default-size (`logdir.size` 99999) file needs its ~98 KB on disk and
//! its new name recorded: the measurement writes that many bytes to `current`, fsyncs
//! it, renames it to a new `@` name and fsyncs the directory, in a loop (one fsync of
//! each, the fewest multilog's guarantee allows: multilog itself fsyncs only the file);
//! then the same with the old rotation's extra directory fsync, and a bare fsync of an
//! unchanged file. The temporary directory is on the same file system as the bench's
//! log directories (`tempfile`'s).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes in a rotated file at the default size (multilog rotates past `size − 2000`).
pub const FILE_BYTES: usize = 98_000;

/// One kind of loop: what a round does.
#[derive(Clone, Copy)]
enum Round {
    /// write, fsync file, rename, fsync dir.
    Rotation,
    /// write, fsync file, fsync dir, rename, fsync dir (before this work).
    RotationTwoDirSyncs,
    /// write, fsync file, rename: multilog's (no directory fsync).
    Multilog,
    /// fsync of a file with nothing new.
    BareFsync,
}

fn round(dir: &Path, dirfd: &File, n: u64, data: &[u8], kind: Round) -> std::io::Result<()> {
    let current = dir.join("current");
    match kind {
        Round::BareFsync => return dirfd.sync_all(),
        Round::Rotation | Round::RotationTwoDirSyncs | Round::Multilog => {}
    }
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&current)?;
    f.write_all(data)?;
    f.sync_all()?;
    if matches!(kind, Round::RotationTwoDirSyncs) {
        dirfd.sync_all()?;
    }
    std::fs::rename(&current, dir.join(format!("@{n:024x}.s")))?;
    if !matches!(kind, Round::Multilog) {
        dirfd.sync_all()?;
    }
    // Keep the directory small, as `logdir.count` does.
    if n >= 10 {
        let _ = std::fs::remove_file(dir.join(format!("@{:024x}.s", n - 10)));
    }
    Ok(())
}

/// Prints the rates, and the lines per second they allow at the bench's line length.
/// The kinds take turns, one round each, so that a change in the machine's load
/// (it is shared) falls on all of them alike.
pub fn report(time: Duration) {
    // The bench's Dante traffic line, prefix included.
    let line_bytes = 155.0;
    let lines_per_file = FILE_BYTES as f64 / line_bytes;
    let kinds = [
        (
            "rotation (write 98 KB, fsync, rename, fsync dir)",
            Round::Rotation,
        ),
        (
            "rotation with a second dir fsync (before the rename)",
            Round::RotationTwoDirSyncs,
        ),
        (
            "multilog's rotation (write 98 KB, fsync, rename)",
            Round::Multilog,
        ),
        ("bare fsync (nothing to write)", Round::BareFsync),
    ];
    let dirs: Vec<_> = kinds
        .iter()
        .map(|_| {
            let tmp = tempfile::tempdir().expect("a temporary directory");
            let fd = File::open(tmp.path()).expect("the directory");
            (tmp, fd)
        })
        .collect();
    let data = vec![b'x'; FILE_BYTES];
    let mut spent = vec![Duration::ZERO; kinds.len()];
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < time {
        for (i, (_, kind)) in kinds.iter().enumerate() {
            let t = Instant::now();
            round(dirs[i].0.path(), &dirs[i].1, n, &data, *kind).expect("a round");
            spent[i] += t.elapsed();
        }
        n += 1;
    }
    for (i, (name, _)) in kinds.iter().enumerate() {
        let r = n as f64 / spent[i].as_secs_f64();
        println!(
            "fsync-rate: {name}: {r:.0}/s = {:.2} ms each ({n} rounds); a writer doing this every {lines_per_file:.0} lines ({line_bytes} bytes each) tops out at {:.0} lines/s",
            1000.0 / r,
            r * lines_per_file
        );
    }
}
