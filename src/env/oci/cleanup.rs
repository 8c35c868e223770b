//! What killed runs left in the OCI runtimes: containers in isobench's state roots
//! (`/run/isobench/<runtime>`), bundles (`/run/isobench/bundles/<id>`) and cgroups
//! (`<controller>/isobench-oci/<id>`) whose isobench process is dead. Containers of a live
//! run are never touched.

use std::path::{Path, PathBuf};

use super::instance::bundles_dir;
use super::runtime::{owner_alive, owner_pid, Runtime, CGROUP_PARENT, STATE_PARENT};
use super::{find_binary, runtime_name};
use crate::env::EnvKind;

/// One thing a killed run left.
#[derive(Clone, Debug, PartialEq)]
pub enum Leftover {
    Container { runtime: String, id: String },
    Bundle(PathBuf),
    Cgroup(PathBuf),
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leftover::Container { runtime, id } => write!(f, "{runtime} container {id}"),
            Leftover::Bundle(p) => write!(f, "OCI bundle {}", p.display()),
            Leftover::Cgroup(p) => write!(f, "OCI container cgroup {}", p.display()),
        }
    }
}

fn stale(name: &str) -> bool {
    owner_pid(name).is_some_and(|p| !owner_alive(p))
}

/// The runtimes whose state roots exist, with the binary a run recorded beside each root
/// (`/run/isobench/<name>.binary`; an `oci:PATH` binary is not on PATH), else the one on PATH.
fn runtimes() -> Vec<Runtime> {
    let mut out = Vec::new();
    for kind in [EnvKind::Runc, EnvKind::Crun, EnvKind::Runsc, EnvKind::Oci] {
        let Some(name) = runtime_name(kind) else {
            continue;
        };
        if !Path::new(STATE_PARENT).join(name).exists() {
            continue;
        }
        let binary =
            std::fs::read_to_string(Path::new(STATE_PARENT).join(format!("{name}.binary")))
                .ok()
                .map(|s| PathBuf::from(s.trim()))
                .or_else(|| find_binary(name));
        if let Some(b) = binary {
            out.push(Runtime::new(name, b));
        }
    }
    out
}

fn stale_dirs(parent: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(stale))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// The cgroup directories of dead runs' containers, in every hierarchy (v1 controllers and
/// the unified one).
fn stale_cgroups(root: &Path) -> Vec<PathBuf> {
    let parent = CGROUP_PARENT.trim_start_matches('/');
    let mut dirs = stale_dirs(&root.join(parent));
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            dirs.extend(stale_dirs(&e.path().join(parent)));
        }
    }
    dirs
}

/// Everything dead runs left in the OCI runtimes.
pub fn find_leftovers() -> Vec<Leftover> {
    find_under(&runtimes(), &bundles_dir(), Path::new("/sys/fs/cgroup"))
}

fn find_under(runtimes: &[Runtime], bundles: &Path, cgroups: &Path) -> Vec<Leftover> {
    let mut found = Vec::new();
    for r in runtimes {
        for id in r.leftovers().unwrap_or_default() {
            found.push(Leftover::Container {
                runtime: r.name.clone(),
                id,
            });
        }
    }
    found.extend(stale_dirs(bundles).into_iter().map(Leftover::Bundle));
    found.extend(stale_cgroups(cgroups).into_iter().map(Leftover::Cgroup));
    found
}

/// Delete dead runs' containers (`delete --force`), then remove their bundles and any cgroup
/// a runtime did not remove. Returns what was removed.
pub fn clean_leftovers() -> Result<Vec<Leftover>, String> {
    let rts = runtimes();
    let mut removed = Vec::new();
    for l in find_under(&rts, &bundles_dir(), Path::new("/sys/fs/cgroup")) {
        match &l {
            Leftover::Container { runtime, id } => {
                let r = rts.iter().find(|r| &r.name == runtime).expect("listed");
                r.delete(id).map_err(|e| e.to_string())?;
            }
            Leftover::Bundle(p) => {
                std::fs::remove_dir_all(p).map_err(|e| format!("removing {}: {e}", p.display()))?
            }
            // Deleting the container removed its cgroup already, or the directory is empty:
            // a cgroup directory is removed with rmdir.
            Leftover::Cgroup(p) => match std::fs::remove_dir(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(format!("removing the cgroup {}: {e}", p.display()))
                }
                _ => {}
            },
        }
        removed.push(l);
    }
    super::instance::remove_empty_cgroup_parents();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_owners_bundles_and_cgroups_are_leftovers() {
        let t = tempfile::tempdir().unwrap();
        let bundles = t.path().join("bundles");
        let live = format!("isobench-{}-0-runc", std::process::id());
        // PID 1 is not isobench: its containers count as a dead run's.
        let dead = "isobench-1-0-runc";
        for d in [&live, dead, "someone-else"] {
            std::fs::create_dir_all(bundles.join(d)).unwrap();
        }
        let cg = t.path().join("cg");
        std::fs::create_dir_all(cg.join("cpu/isobench-oci").join(dead)).unwrap();
        std::fs::create_dir_all(cg.join("cpu/isobench-oci").join(&live)).unwrap();
        let found = find_under(&[], &bundles, &cg);
        assert_eq!(
            found,
            [
                Leftover::Bundle(bundles.join(dead)),
                Leftover::Cgroup(cg.join("cpu/isobench-oci").join(dead)),
            ]
        );
    }
}
