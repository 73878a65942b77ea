//! Opening `ferrosocks log` inputs: files or standard input, plain, gzip (several
//! members, as logrotate's `delaycompress` + `cat` make) or zstd, told by their first
//! bytes rather than their names; the bytes read feed the progress bar.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use indicatif::ProgressBar;

/// gzip's magic number.
const GZIP: [u8; 2] = [0x1f, 0x8b];
/// zstd's magic number.
const ZSTD: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A reader that moves a progress bar by the (compressed) bytes it reads.
struct Counted<R> {
    inner: R,
    bar: Option<ProgressBar>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(b) = &self.bar {
            b.inc(n as u64);
        }
        Ok(n)
    }
}

/// The compression of a stream, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

pub(crate) fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&GZIP) {
        Compression::Gzip
    } else if head.starts_with(&ZSTD) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Opens `path` (`-`: standard input) for reading lines, decompressing as needed.
pub(crate) fn open(path: &Path, bar: Option<ProgressBar>) -> io::Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = if path == Path::new("-") {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path)?)
    };
    let mut buffered = BufReader::with_capacity(1 << 16, Counted { inner: raw, bar });
    let compression = sniff(buffered.fill_buf()?);
    Ok(match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(buffered),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            1 << 16,
            zstd::stream::read::Decoder::with_buffer(buffered)?,
        )),
    })
}

/// The size of a file, for the progress bar's total (0 for standard input and what
/// cannot be read: the error comes when it is opened).
pub(crate) fn size(path: &Path) -> u64 {
    if path == Path::new("-") {
        return 0;
    }
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_by_magic() {
        assert_eq!(sniff(b"\x1f\x8b\x08\x00"), Compression::Gzip);
        assert_eq!(sniff(b"\x28\xb5\x2f\xfd\x00"), Compression::Zstd);
        assert_eq!(sniff(b"Nov 21"), Compression::None);
        assert_eq!(sniff(b""), Compression::None);
    }
}
