//! `isobench clean`: list or remove what killed runs left behind (`session::clean`).

use anyhow::Result;

use super::args::CleanArgs;
use super::ExitCode;
use crate::session::clean;

pub fn clean(args: &CleanArgs) -> Result<ExitCode> {
    let roots = clean::scratch_roots(&args.out, args.scratch.as_deref());
    let (verb, things) = if args.dry_run {
        ("would remove", clean::leftovers(&roots))
    } else {
        ("removed", clean::clean(&roots)?)
    };
    for t in &things {
        println!("{verb} {t}");
    }
    if things.is_empty() {
        println!("nothing left behind by earlier runs");
    }
    Ok(ExitCode::Success)
}
