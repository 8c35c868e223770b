//! `isobench clean`: remove what a killed run left behind (container cgroups, mounts,
//! layer directories and state markers whose owning isobench process is dead).

use anyhow::{Context, Result};

use super::args::CleanArgs;
use super::ExitCode;
use crate::env::container;

pub fn clean(args: &CleanArgs) -> Result<ExitCode> {
    if args.dry_run {
        let found = container::find_leftovers();
        if found.is_empty() {
            println!("nothing left behind by earlier runs");
        }
        for l in &found {
            println!("would remove {l}");
        }
        return Ok(ExitCode::Success);
    }
    let removed =
        container::clean_leftovers().context("removing leftovers of killed runs (run as root)")?;
    if removed.is_empty() {
        println!("nothing left behind by earlier runs");
    }
    for l in &removed {
        println!("removed {l}");
    }
    Ok(ExitCode::Success)
}
