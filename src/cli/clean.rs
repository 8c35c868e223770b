//! `isobench clean`: list or remove what killed runs left behind (`session::clean`), and
//! what a killed `isobench claims` left (`claims::freezer`).

use anyhow::Result;

use super::args::CleanArgs;
use super::ExitCode;
use crate::claims::freezer;
use crate::session::clean;

pub fn clean(args: &CleanArgs) -> Result<ExitCode> {
    let roots = clean::scratch_roots(&args.out, args.scratch.as_deref());
    let (verb, mut things) = if args.dry_run {
        ("would remove", clean::leftovers(&roots))
    } else {
        ("removed", clean::clean(&roots)?)
    };
    // `isobench claims` leaves claim 3's freezer group behind when killed.
    let groups = if args.dry_run {
        freezer::leftovers()
    } else {
        freezer::clean_leftovers()?
    };
    things.extend(
        groups
            .iter()
            .map(|g| format!("claim 3 freezer cgroup {}", g.display())),
    );
    for t in &things {
        println!("{verb} {t}");
    }
    if things.is_empty() {
        println!("nothing left behind by earlier runs");
    }
    Ok(ExitCode::Success)
}
