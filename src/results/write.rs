//! Writing result files safely: atomic replace for whole files, and `samples.csv` appended
//! as blocks finish (and forced to disk every second and at the end), so an interrupted
//! run keeps what it measured.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use super::read::SAMPLE_COLUMNS;
use super::SampleRow;

/// Receives each measured block's samples as soon as the block ends.
pub trait SampleSink {
    fn round_done(&mut self, rows: &[SampleRow]) -> io::Result<()>;
}

impl SampleSink for Vec<SampleRow> {
    fn round_done(&mut self, rows: &[SampleRow]) -> io::Result<()> {
        self.extend_from_slice(rows);
        Ok(())
    }
}

/// Replace `path` with `bytes` atomically: write a temporary sibling, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Appends samples to `samples.csv`, flushed to disk after every round.
/// How often `samples.csv` is forced to disk while samples arrive (each block is written
/// at once; the fsync is what costs, and blocks can be a few milliseconds apart).
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub struct SamplesWriter {
    file: File,
    last_sync: std::time::Instant,
}

impl SamplesWriter {
    /// Create `samples.csv` (failing if it exists: a run directory is never reused).
    pub fn create(path: &Path) -> io::Result<SamplesWriter> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(format!("{}\n", SAMPLE_COLUMNS.join(",")).as_bytes())?;
        file.sync_data()?;
        Ok(SamplesWriter {
            file,
            last_sync: std::time::Instant::now(),
        })
    }
}

impl Drop for SamplesWriter {
    /// Whatever was written reaches the disk, however the run ends.
    fn drop(&mut self) {
        let _ = self.file.sync_data();
    }
}

impl SampleSink for SamplesWriter {
    fn round_done(&mut self, rows: &[SampleRow]) -> io::Result<()> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        for r in rows {
            w.serialize(r).map_err(io::Error::other)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.file.write_all(&bytes)?;
        if self.last_sync.elapsed() >= SYNC_EVERY {
            self.file.sync_data()?;
            self.last_sync = std::time::Instant::now();
        }
        Ok(())
    }
}
