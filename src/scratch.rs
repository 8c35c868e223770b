//! The run's scratch directory (`OUT/.scratch/<run-id>` by default): created with an owner
//! file naming the isobench process, removed when the run ends however it ends, and found
//! by `isobench clean` when a killed run (SIGKILL) could not remove it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::env::container::cleanup::{owner_alive, start_time};

/// Name of the owner file inside a run's scratch directory: `<pid> <start time>`.
pub const OWNER_FILE: &str = ".isobench-owner";

/// A run's scratch directory; removed on drop.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Create `root/<run_id>` (and `root`), record this process as its owner, and return it
    /// canonicalised.
    pub fn create(root: &Path, run_id: &str) -> io::Result<Scratch> {
        let dir = root.join(run_id);
        fs::create_dir_all(&dir)?;
        let dir = dir.canonicalize()?;
        let me = std::process::id() as i32;
        let start = start_time(me).map(|t| t.to_string()).unwrap_or_default();
        // From here on the guard removes the directory, also if writing the owner fails.
        let scratch = Scratch { dir };
        fs::write(scratch.dir.join(OWNER_FILE), format!("{me} {start}\n"))?;
        Ok(scratch)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Scratch directories under `root` whose owning isobench process is gone. Directories
/// without an owner file are not isobench's and are never listed.
pub fn stale(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.is_symlink())
        .filter(|p| {
            let Ok(text) = fs::read_to_string(p.join(OWNER_FILE)) else {
                return false;
            };
            let mut it = text.split_whitespace();
            let Some(pid) = it.next().and_then(|s| s.parse::<i32>().ok()) else {
                return false;
            };
            let start = it.next().and_then(|s| s.parse::<u64>().ok());
            !owner_alive(pid, start)
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_owners_are_stale_and_a_guard_removes_its_dir() {
        let root = tempfile::tempdir().unwrap();
        let live = Scratch::create(root.path(), "live").unwrap();
        assert!(live.path().join(OWNER_FILE).exists());
        // A run whose process is gone: PID 0 never names a user process.
        let dead = root.path().join("dead");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join(OWNER_FILE), "0 1\n").unwrap();
        // A directory that is not isobench's.
        fs::create_dir(root.path().join("someone-elses")).unwrap();
        assert_eq!(stale(root.path()), vec![dead.canonicalize().unwrap()]);
        let live_path = live.path().to_path_buf();
        drop(live);
        assert!(!live_path.exists());
    }
}
