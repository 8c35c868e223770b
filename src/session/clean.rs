//! What killed runs left behind, and removing it: container cgroups, mounts, layer
//! directories and state markers, OCI runtime containers, bundles and cgroups, and run scratch directories, whose owning isobench
//! process is dead. Nothing owned by a live run is touched.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::env::{container, oci};
use crate::scratch;

/// Everything a killed run left behind, found under the given scratch roots and in the
/// container state (cgroups, mounts, markers).
pub fn leftovers(scratch_roots: &[PathBuf]) -> Vec<String> {
    let mut found: Vec<String> = container::find_leftovers()
        .iter()
        .map(|l| l.to_string())
        .collect();
    found.extend(oci::cleanup::find_leftovers().iter().map(|l| l.to_string()));
    found.extend(
        stale_scratch(scratch_roots)
            .iter()
            .map(|d| format!("scratch directory {}", d.display())),
    );
    found
}

/// Remove everything [`leftovers`] finds; returns what was removed, as it would list it.
pub fn clean(scratch_roots: &[PathBuf]) -> Result<Vec<String>> {
    let mut removed: Vec<String> = container::clean_leftovers()
        .context("removing leftovers of killed runs (run as root)")?
        .iter()
        .map(|l| l.to_string())
        .collect();
    removed.extend(
        oci::cleanup::clean_leftovers()
            .map_err(anyhow::Error::msg)
            .context("removing OCI runtime containers of killed runs (run as root)")?
            .iter()
            .map(|l| l.to_string()),
    );
    for d in stale_scratch(scratch_roots) {
        std::fs::remove_dir_all(&d)
            .with_context(|| format!("removing the scratch directory {}", d.display()))?;
        removed.push(format!("scratch directory {}", d.display()));
    }
    Ok(removed)
}

fn stale_scratch(roots: &[PathBuf]) -> Vec<PathBuf> {
    roots.iter().flat_map(|r| scratch::stale(r)).collect()
}

/// The scratch roots of a results directory: `OUT/.scratch`, and `--scratch` if given.
pub fn scratch_roots(out: &Path, scratch: Option<&Path>) -> Vec<PathBuf> {
    let mut roots = vec![out.join(".scratch")];
    roots.extend(scratch.map(Path::to_path_buf));
    roots
}
