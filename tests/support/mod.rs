//! What the black-box tests of the binary share: the `isobench` command, the one run
//! directory a run leaves in its `--out`, and the lock that lets a measuring test run alone
//! within its test binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use assert_cmd::prelude::*;

/// Tests that measure a difference hold this exclusively: every run pins its instances to
/// the same CPU, so a run of another test at the same time would take half of that CPU from
/// native and container alike (and hide a CPU quota). Tests that only run isobench share it.
static MEASURING: RwLock<()> = RwLock::new(());

/// Run beside the other sharing tests of this binary, never beside a measuring one.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    MEASURING.read().unwrap_or_else(|e| e.into_inner())
}

/// Run alone among the tests of this binary.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    MEASURING.write().unwrap_or_else(|e| e.into_inner())
}

/// The `isobench` binary this workspace built.
pub fn isobench() -> Command {
    Command::cargo_bin("isobench").expect("the isobench binary is built")
}

/// The single run directory inside `out` (not `latest`, not a dot directory).
pub fn run_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir()
                && !p.is_symlink()
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        })
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "expected one run directory in {}: {dirs:?}",
        out.display()
    );
    dirs[0].clone()
}

/// The entries of `dirs` whose names start with `tag` (an isobench process's
/// `isobench-<pid>-` prefix), as paths: what a run left behind there.
pub fn tagged_entries(dirs: &[PathBuf], tag: &str) -> Vec<String> {
    dirs.iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(tag))
        .map(|e| e.path().display().to_string())
        .collect()
}
