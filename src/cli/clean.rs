//! `isobench clean`: remove what a killed run left behind.

use anyhow::Result;

use super::args::CleanArgs;
use super::ExitCode;

pub fn clean(args: &CleanArgs) -> Result<ExitCode> {
    let _ = args.dry_run;
    println!("nothing to clean: this build has no container environment yet");
    Ok(ExitCode::Success)
}
