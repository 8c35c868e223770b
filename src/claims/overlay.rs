//! Claim 5, union mounts: through an overlay built as the container's root is (the
//! container's `Rootfs` directories and mount options), a file is written, one modified
//! (copy-up) and one deleted (whiteout); then the upper layer is listed and the lower layer
//! hashed before and after. The cost of a copy-up (a one-byte append to a large lower file)
//! is timed against a fresh write. docs/CLAIMS.md explains the experiment.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Finding, Verdict};
use crate::env::container::rootfs::Rootfs;
use crate::plan::Upper;

/// Size of the large lower file whose copy-up is timed.
pub const BIG_BYTES: u64 = 128 << 20;
/// Copy-up trials (each on a fresh upper layer).
pub const TRIALS: usize = 5;

/// One entry of the upper layer after the operations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UpperEntry {
    pub path: String,
    /// `file (N bytes)`, `dir`, `whiteout (char 0:0)`, ...
    pub kind: String,
}

/// A time with its spread over the trials.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Timing {
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub n: usize,
}

/// What the experiment observed.
#[derive(Clone, Debug, Serialize)]
pub struct OverlayEvidence {
    pub lower_sha256_before: String,
    pub lower_sha256_after: String,
    /// The upper layer before any operation (empty) and after them.
    pub upper_before: Vec<UpperEntry>,
    pub upper_after: Vec<UpperEntry>,
    /// What the merged view showed after the operations.
    pub merged_modified_text: String,
    pub merged_deleted_present: bool,
    pub merged_new_text: String,
    /// A one-byte append to the large lower file (a copy-up of all of it).
    pub copy_up: Timing,
    /// A one-byte write to a new file through the overlay.
    pub fresh_small: Timing,
    /// Writing a new file of the large file's size through the overlay.
    pub fresh_big: Timing,
    pub big_bytes: u64,
}

const NEW: &str = "new.txt";
const MODIFIED: &str = "modified.txt";
const DELETED: &str = "deleted.txt";
const KEPT: &str = "kept.txt";
const BIG: &str = "big.bin";

/// A mounted overlay, unmounted on drop.
struct Mounted(PathBuf);

impl Mounted {
    fn new(r: &Rootfs) -> Result<Mounted> {
        let opts = r
            .plan()
            .context("planning the overlay of claim 5")?
            .overlay_opts;
        mount(
            Some("overlay"),
            &r.merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_c_str()),
        )
        .with_context(|| {
            format!(
                "mounting an overlay on {} (needs root and overlayfs; is the scratch directory on a filesystem overlayfs accepts as upper?)",
                r.merged.display()
            )
        })?;
        Ok(Mounted(r.merged.clone()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

/// The directories of claim 5, removed on drop (after the mount guard is gone).
struct Dirs(Rootfs);

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

fn write(p: &Path, b: &[u8]) -> Result<()> {
    std::fs::write(p, b).with_context(|| format!("writing {}", p.display()))
}

/// Hash every regular file under `dir` (path, size, mode, contents), in path order.
fn tree_sha256(dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut h = Sha256::new();
    for rel in files {
        let p = dir.join(&rel);
        let md =
            std::fs::symlink_metadata(&p).with_context(|| format!("reading {}", p.display()))?;
        h.update(rel.as_bytes());
        h.update(md.len().to_le_bytes());
        h.update(md.mode().to_le_bytes());
        h.update(md.mtime().to_le_bytes());
        if md.is_file() {
            h.update(std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?);
        }
    }
    Ok(format!("{:x}", h.finalize()))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e?;
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
        let ft = e.file_type()?;
        out.push(rel);
        if ft.is_dir() {
            collect(root, &p, out)?;
        }
    }
    Ok(())
}

fn list_upper(upper: &Path) -> Result<Vec<UpperEntry>> {
    let mut names = Vec::new();
    collect(upper, upper, &mut names)?;
    names.sort();
    names
        .into_iter()
        .map(|rel| {
            let md = std::fs::symlink_metadata(upper.join(&rel))?;
            let ft = md.file_type();
            let kind = if ft.is_char_device() {
                let rdev = md.rdev();
                format!(
                    "whiteout (char device {}:{})",
                    nix::sys::stat::major(rdev),
                    nix::sys::stat::minor(rdev)
                )
            } else if ft.is_dir() {
                "dir".to_string()
            } else {
                format!("file ({} bytes)", md.len())
            };
            Ok(UpperEntry { path: rel, kind })
        })
        .collect()
}

fn timing(mut ms: Vec<f64>) -> Timing {
    ms.sort_by(f64::total_cmp);
    Timing {
        median_ms: crate::stats::summary::median(&ms),
        min_ms: ms[0],
        max_ms: ms[ms.len() - 1],
        n: ms.len(),
    }
}

fn ms_of(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let t0 = Instant::now();
    f()?;
    Ok(t0.elapsed().as_secs_f64() * 1e3)
}

/// Empty the upper and work directories (between trials, with the overlay unmounted).
fn reset_upper(r: &Rootfs) -> Result<()> {
    for d in [&r.upper, &r.work] {
        std::fs::remove_dir_all(d).with_context(|| format!("removing {}", d.display()))?;
        std::fs::create_dir(d).with_context(|| format!("creating {}", d.display()))?;
    }
    Ok(())
}

/// Run the experiment in `scratch`.
pub fn observe(scratch: &Path) -> Result<OverlayEvidence> {
    let name = format!("claim5-{}", std::process::id());
    let dirs = Dirs(
        Rootfs::prepare(scratch, &name, Upper::Disk)
            .context("preparing the overlay directories of claim 5")?,
    );
    let r = &dirs.0;
    write(&r.lower.join(KEPT), b"kept\n")?;
    write(&r.lower.join(MODIFIED), b"original\n")?;
    write(&r.lower.join(DELETED), b"to be deleted\n")?;
    {
        let p = r.lower.join(BIG);
        let mut f =
            std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        let chunk = vec![0x5au8; 1 << 20];
        for _ in 0..BIG_BYTES >> 20 {
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
    }
    let lower_sha256_before = tree_sha256(&r.lower)?;
    let upper_before = list_upper(&r.upper)?;

    // The three operations, through the merged view.
    let (merged_modified_text, merged_deleted_present, merged_new_text, upper_after) = {
        let _m = Mounted::new(r)?;
        let m = &r.merged;
        write(&m.join(NEW), b"new\n")?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(m.join(MODIFIED))
            .context("opening a lower file for writing through the overlay")?;
        f.write_all(b"modified\n")?;
        drop(f);
        std::fs::remove_file(m.join(DELETED))
            .context("deleting a lower file through the overlay")?;
        let modified = std::fs::read_to_string(m.join(MODIFIED))?;
        let deleted = m.join(DELETED).exists();
        let new = std::fs::read_to_string(m.join(NEW))?;
        (modified, deleted, new, list_upper(&r.upper)?)
    };
    let lower_sha256_after = tree_sha256(&r.lower)?;

    // Copy-up cost: each trial on a fresh upper, the lower file warm in the page cache.
    let (mut up, mut small, mut big) = (Vec::new(), Vec::new(), Vec::new());
    let chunk = vec![0xa5u8; 1 << 20];
    for _ in 0..TRIALS {
        reset_upper(r)?;
        let _m = Mounted::new(r)?;
        let m = &r.merged;
        let _ = std::fs::read(r.lower.join(BIG))?.len();
        up.push(ms_of(|| {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(m.join(BIG))?;
            f.write_all(b"x")?;
            Ok(())
        })?);
        small.push(ms_of(|| {
            let mut f = std::fs::File::create(m.join("small.bin"))?;
            f.write_all(b"x")?;
            Ok(())
        })?);
        big.push(ms_of(|| {
            let mut f = std::fs::File::create(m.join("fresh.bin"))?;
            for _ in 0..BIG_BYTES >> 20 {
                f.write_all(&chunk)?;
            }
            Ok(())
        })?);
    }
    drop(dirs);
    Ok(OverlayEvidence {
        lower_sha256_before,
        lower_sha256_after,
        upper_before,
        upper_after,
        merged_modified_text,
        merged_deleted_present,
        merged_new_text,
        copy_up: timing(up),
        fresh_small: timing(small),
        fresh_big: timing(big),
        big_bytes: BIG_BYTES,
    })
}

impl OverlayEvidence {
    /// The upper entry at `path`, if any.
    pub fn upper(&self, path: &str) -> Option<&UpperEntry> {
        self.upper_after.iter().find(|e| e.path == path)
    }

    /// Whether the upper layer holds exactly the three expected changes.
    pub fn writes_only_in_upper(&self) -> bool {
        let whiteout = self
            .upper(DELETED)
            .is_some_and(|e| e.kind.starts_with("whiteout (char device 0:0)"));
        let copied = self.upper(MODIFIED).is_some();
        let new = self.upper(NEW).is_some();
        let nothing_else = self.upper_after.len() == 3;
        self.upper_before.is_empty()
            && whiteout
            && copied
            && new
            && nothing_else
            && self.lower_sha256_before == self.lower_sha256_after
            && self.merged_modified_text == "original\nmodified\n"
            && !self.merged_deleted_present
            && self.merged_new_text == "new\n"
    }
}

fn fmt_timing(t: &Timing) -> String {
    format!(
        "median {:.2} ms (min {:.2}, max {:.2}, n={})",
        t.median_ms, t.min_ms, t.max_ms, t.n
    )
}

/// The findings of claim 5.
pub fn findings(e: &OverlayEvidence) -> Vec<Finding> {
    let upper = e
        .upper_after
        .iter()
        .map(|u| format!("{} = {}", u.path, u.kind))
        .collect::<Vec<_>>()
        .join("; ");
    vec![
        Finding {
            subject: "writes land in upper, lower unchanged".into(),
            evidence: format!(
                "after write {NEW}, append to {MODIFIED}, delete {DELETED}: upper holds [{upper}]; lower sha256 {}… before and {}… after ({}); merged shows {MODIFIED} = {:?}, {DELETED} {}",
                &e.lower_sha256_before[..12],
                &e.lower_sha256_after[..12],
                if e.lower_sha256_before == e.lower_sha256_after { "unchanged" } else { "CHANGED" },
                e.merged_modified_text,
                if e.merged_deleted_present { "still present" } else { "gone" },
            ),
            verdict: if e.writes_only_in_upper() {
                Verdict::Supported
            } else {
                Verdict::Refuted
            },
        },
        Finding {
            subject: "copy-up cost".into(),
            evidence: format!(
                "appending 1 byte to a {} MiB lower file copies all of it up: {}; a 1-byte write to a new file: {}; writing a new {} MiB file: {}",
                e.big_bytes >> 20,
                fmt_timing(&e.copy_up),
                fmt_timing(&e.fresh_small),
                e.big_bytes >> 20,
                fmt_timing(&e.fresh_big),
            ),
            verdict: if e.copy_up.min_ms > e.fresh_small.max_ms {
                Verdict::Supported
            } else {
                Verdict::Inconclusive {
                    settle: "the copy-up of the large file did not take longer than a small fresh write in every trial; repeat on a quiet machine".into(),
                }
            },
        },
    ]
}
