//! `isobench clean`: remove what a killed run left behind: container cgroups, mounts,
//! layer directories and state markers, and run scratch directories, whose owning isobench
//! process is dead. Nothing owned by a live run is touched.

use anyhow::{Context, Result};

use super::args::CleanArgs;
use super::ExitCode;
use crate::env::container;
use crate::scratch;

pub fn clean(args: &CleanArgs) -> Result<ExitCode> {
    let mut roots = vec![args.out.join(".scratch")];
    roots.extend(args.scratch.clone());
    let stale_scratch: Vec<_> = roots.iter().flat_map(|r| scratch::stale(r)).collect();

    if args.dry_run {
        let found = container::find_leftovers();
        for l in &found {
            println!("would remove {l}");
        }
        for d in &stale_scratch {
            println!("would remove scratch directory {}", d.display());
        }
        if found.is_empty() && stale_scratch.is_empty() {
            println!("nothing left behind by earlier runs");
        }
        return Ok(ExitCode::Success);
    }
    let removed =
        container::clean_leftovers().context("removing leftovers of killed runs (run as root)")?;
    for l in &removed {
        println!("removed {l}");
    }
    for d in &stale_scratch {
        std::fs::remove_dir_all(d)
            .with_context(|| format!("removing the scratch directory {}", d.display()))?;
        println!("removed scratch directory {}", d.display());
    }
    if removed.is_empty() && stale_scratch.is_empty() {
        println!("nothing left behind by earlier runs");
    }
    Ok(ExitCode::Success)
}
