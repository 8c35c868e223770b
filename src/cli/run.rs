//! `isobench run`: validate the options, run the session with a progress bar, print the
//! verdict table and where the results are. The run itself is `session::run`.

use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};

use super::progress::Bar;
use super::ExitCode;
use crate::plan::{Plan, RunOptions};
use crate::report;
use crate::results::Outcome;
use crate::session;

pub fn run(args: &RunOptions, interrupted: &AtomicBool) -> Result<ExitCode> {
    let plan = args.plan().context("invalid run options")?;
    run_plan(&plan, interrupted)
}

/// Run a validated plan (`run`, `exec`) with a progress bar and print the outcome.
pub fn run_plan(plan: &Plan, interrupted: &AtomicBool) -> Result<ExitCode> {
    let mut bar = Bar::new();
    let finished = session::run(plan, &mut bar, interrupted)?;
    if let Some(analysis) = &finished.analysis {
        println!(
            "{}",
            report::terminal_table(analysis, report::stdout_color_wanted())
        );
    }
    println!("results: {}", finished.run_dir.display());
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
