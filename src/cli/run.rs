//! `isobench run`: validate the options, run the session with a progress bar, print the
//! plain-words caption, the verdict table and where the results are. The run itself is
//! `session::run`.

use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::Args;

use super::args::{OutputArgs, OutputFormat};
use super::progress::Bar;
use super::ExitCode;
use crate::plan::RunOptions;
use crate::results::Outcome;
use crate::session;

/// `isobench run`'s flags: the plan's options, and what to print at the end.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub options: RunOptions,

    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: &RunArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let plan = args.options.plan().context("invalid run options")?;
    let mut bar = Bar::new();
    let finished = session::run(&plan, &mut bar, interrupted)?;
    match &finished.analysis {
        Some(analysis) => super::report::print_outcome(
            analysis,
            plan.profile,
            args.output,
            &finished.run_dir,
            &[],
        )?,
        None if args.output.format == OutputFormat::Json => {
            println!("[]");
            eprintln!("results: {}", finished.run_dir.display());
        }
        None => println!("results: {}", finished.run_dir.display()),
    }
    if let Some(err) = finished.failure {
        return Err(err.context(format!(
            "the run failed; what was measured is in {}",
            finished.run_dir.display()
        )));
    }
    if finished.outcome == Outcome::Interrupted {
        eprintln!(
            "isobench: interrupted after {} measured block(s); partial results kept in {}",
            finished.blocks_done,
            finished.run_dir.display()
        );
        return Ok(ExitCode::Interrupted);
    }
    Ok(ExitCode::Success)
}
