//! The log directory on a real file system: start-up recovery of what a crash leaves
//! (`previous`, an unfinished `current`), and rotation's order with the finisher's
//! thread (every line once, in order; `previous` never left after a clean close;
//! `logdir.count` applied; a failed finish reported, kept and retried).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::SystemTime;

use super::{LogDir, Options};
use crate::format::multilog::is_rotated;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// The rotated files' names, oldest first.
fn rotated(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| is_rotated(n))
        .collect();
    names.sort();
    names
}

fn options(size: u64, count: u32) -> Options {
    Options {
        size,
        count,
        ..Options::default()
    }
}

/// A crash mid-rotation leaves `previous` (renamed, maybe not fsynced) and a new
/// `current` (0644): both become `.u`, `previous` first, with their bytes.
#[test]
fn a_previous_and_an_unfinished_current_left_by_a_crash_become_u_files_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("previous"), "older line\n").unwrap();
    std::fs::write(dir.join("current"), "newer line\n").unwrap();
    std::fs::set_permissions(dir.join("current"), std::fs::Permissions::from_mode(0o644)).unwrap();

    let d = LogDir::open(&dir, &Options::default()).unwrap();
    let names = rotated(&dir);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.ends_with(".u")), "{names:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join(&names[0])).unwrap(),
        "older line\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join(&names[1])).unwrap(),
        "newer line\n"
    );
    for n in &names {
        assert_eq!(mode(&dir.join(n)), 0o744, "{n}");
    }
    assert!(!dir.join("previous").exists());
    assert_eq!(std::fs::read(dir.join("current")).unwrap(), b"");
    assert_eq!(mode(&dir.join("current")), 0o644);
    drop(d);
}

/// A `previous` beside a cleanly finished `current` (0744): `previous` is finished as
/// `.u`, `current` is continued.
#[test]
fn a_previous_beside_a_finished_current_is_finished_and_current_continued() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("previous"), "rotated\n").unwrap();
    std::fs::write(dir.join("current"), "kept\n").unwrap();
    std::fs::set_permissions(dir.join("current"), std::fs::Permissions::from_mode(0o744)).unwrap();

    let mut d = LogDir::open(&dir, &Options::default()).unwrap();
    let names = rotated(&dir);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with(".u"));
    assert_eq!(
        std::fs::read_to_string(dir.join(&names[0])).unwrap(),
        "rotated\n"
    );
    assert_eq!(mode(&dir.join("current")), 0o644, "being written again");
    d.write(b"more\n", SystemTime::now()).unwrap();
    d.close().unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("current")).unwrap(),
        "kept\nmore\n"
    );
    assert_eq!(mode(&dir.join("current")), 0o744);
}

/// Many rotations with the finisher's thread: every line exactly once and in order
/// across the rotated files (by name) and `current`; each rotated file complete
/// (0744, at most `size`, ending a line); no `previous` after the close.
#[test]
fn rotations_finished_off_the_writer_keep_every_line_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut d = LogDir::open(&dir, &options(4096, 1000)).unwrap();
    let mut want = String::new();
    for i in 0..3000 {
        let line = format!("line {i:05} of the test, long enough to rotate often\n");
        want.push_str(&line);
        d.write(line.as_bytes(), SystemTime::now()).unwrap();
        // Sometimes a rotation right after another: the writer waits for the first.
        if i % 500 == 0 {
            d.rotate().unwrap();
        }
    }
    d.close().unwrap();
    assert!(!dir.join("previous").exists());
    let names = rotated(&dir);
    assert!(names.len() > 40, "{} rotations", names.len());
    let mut got = String::new();
    for n in &names {
        let p = dir.join(n);
        assert!(n.ends_with(".s"), "{n}");
        assert_eq!(mode(&p), 0o744, "{n}");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.len() <= 4096 && text.ends_with('\n'), "{n}");
        got.push_str(&text);
    }
    got.push_str(&std::fs::read_to_string(dir.join("current")).unwrap());
    assert!(got == want, "lines lost, doubled or out of order");
    assert_eq!(mode(&dir.join("current")), 0o744, "cleanly finished");
    drop(d);
}

/// `logdir.count` is applied by the finisher: at most `count − 1` rotated files, the
/// newest.
#[test]
fn the_finisher_keeps_count_minus_one_rotated_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut d = LogDir::open(&dir, &options(4096, 3)).unwrap();
    for i in 0..2000 {
        d.write(
            format!("line {i:05} xxxxxxxxxxxxxxxxxxxxxxxx\n").as_bytes(),
            SystemTime::now(),
        )
        .unwrap();
    }
    d.close().unwrap();
    let names = rotated(&dir);
    assert_eq!(names.len(), 2, "{names:?}");
    let last = std::fs::read_to_string(dir.join(&names[1])).unwrap();
    let current = std::fs::read_to_string(dir.join("current")).unwrap();
    assert!(
        format!("{last}{current}").ends_with("line 01999 xxxxxxxxxxxxxxxxxxxxxxxx\n"),
        "the newest files are kept"
    );
}

/// A rotation hands `previous` over and returns: `current` is new at once, and the
/// file appears under its `@` name once finished.
#[test]
fn a_rotation_renames_current_to_previous_and_the_finisher_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut d = LogDir::open(&dir, &options(4096, 10)).unwrap();
    d.write(b"first file\n", SystemTime::now()).unwrap();
    d.rotate().unwrap();
    assert_eq!(std::fs::read(dir.join("current")).unwrap(), b"");
    assert_eq!(mode(&dir.join("current")), 0o644);
    // The finisher may still hold it as `previous`; the next rotation waits for it.
    d.write(b"second file\n", SystemTime::now()).unwrap();
    d.rotate().unwrap();
    d.close().unwrap();
    let names = rotated(&dir);
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join(&names[0])).unwrap(),
        "first file\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join(&names[1])).unwrap(),
        "second file\n"
    );
    assert!(!dir.join("previous").exists());
}

/// A finish that fails (here: no `previous` to rename) is reported, kept, and tried
/// again by the next rotation's wait, which returns the error while it still fails
/// and goes on once it works.
#[test]
fn a_failed_finish_is_reported_kept_and_retried_before_the_next_rotation() {
    use super::finish::{Finisher, Job};
    use crate::format::multilog::Plan;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let f = Finisher::new(dir, std::fs::File::open(dir).unwrap());
    let data = dir.join("data");
    std::fs::write(&data, "a rotated file\n").unwrap();
    f.hand_over(Job {
        file: std::fs::File::open(&data).unwrap(),
        plan: Plan::new(4096, 10),
        ship: None,
    });
    let e = f.ready().unwrap_err().to_string();
    assert!(e.contains("cannot rename") && e.contains("previous"), "{e}");
    let notes = f.take_notes();
    assert!(
        notes.len() == 1 && notes[0].contains("tried again at the next rotation"),
        "{notes:?}"
    );
    assert!(rotated(dir).is_empty());
    // Once `previous` is there, the wait finishes it.
    std::fs::rename(&data, dir.join("previous")).unwrap();
    f.ready().unwrap();
    let names = rotated(dir);
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join(&names[0])).unwrap(),
        "a rotated file\n"
    );
    assert_eq!(mode(&dir.join(&names[0])), 0o744);
    f.ready().unwrap();
}
