//! `isobench run`: validate the options, run the session with a progress bar, print the
//! plain-words caption, the verdict table and where the results are. The run itself is
//! `session::run`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::Args;

use super::args::{OutputArgs, OutputFormat};
use super::progress::Bar;
use super::ExitCode;
use crate::plan::{Plan, RunOptions};
use crate::report;
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
    if args.options.out.as_os_str() == "-" {
        return run_to_stdout(&args.options, interrupted);
    }
    let plan = args.options.plan().context("invalid run options")?;
    run_plan(&plan, args.output, interrupted)
}

/// Run a validated plan (`run`, `exec`) with a progress bar and print the outcome as
/// `output` asks.
pub fn run_plan(plan: &Plan, output: OutputArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let mut bar = Bar::new();
    let finished = session::run(plan, &mut bar, interrupted)?;
    match &finished.analysis {
        Some(analysis) => {
            super::report::print_outcome(analysis, plan.profile, output, &finished.run_dir, &[])?
        }
        None if output.format == OutputFormat::Json => {
            println!("[]");
            eprintln!("results: {}", finished.run_dir.display());
        }
        None => println!("results: {}", finished.run_dir.display()),
    }
    let kept_in = format!("in {}", finished.run_dir.display());
    conclude(finished, &kept_in)
}

/// `run --out -`: the run goes to a hidden staging directory in the current directory
/// (the filesystem `results/` would be on), is written to stdout as one tarball, and the
/// staging directory is removed. The table goes to stderr.
fn run_to_stdout(args: &RunOptions, interrupted: &AtomicBool) -> Result<ExitCode> {
    if std::io::stdout().is_terminal() {
        anyhow::bail!("--out - writes a tarball to stdout, which is a terminal: redirect it (isobench run --out - > run.tar.gz) or give --out DIR");
    }
    let mut plan = args.plan().context("invalid run options")?;
    let staging = PathBuf::from(format!(".isobench-out-{}", std::process::id()));
    plan.out = staging.clone();
    let result = (|| {
        let mut bar = Bar::new();
        let finished = session::run(&plan, &mut bar, interrupted)?;
        if let Some(analysis) = &finished.analysis {
            eprintln!("{}", report::terminal_table(analysis, false));
        }
        crate::fleet::pack(&finished.run_dir, std::io::stdout().lock())
            .context("writing the run to stdout")?;
        eprintln!("results: written to stdout as a tarball (isobench merge reads it)");
        conclude(finished, "in the tarball on stdout")
    })();
    if let Err(e) = std::fs::remove_dir_all(&staging) {
        eprintln!(
            "isobench: warning: could not remove the staging directory {}: {e}",
            staging.display()
        );
    }
    result
}

/// The exit of a finished run: its failure, an interruption, or success.
/// `kept_in` says where what was measured is.
fn conclude(finished: session::Finished, kept_in: &str) -> Result<ExitCode> {
    if let Some(err) = finished.failure {
        return Err(err.context(format!("the run failed; what was measured is {kept_in}")));
    }
    if finished.outcome == Outcome::Interrupted {
        eprintln!(
            "isobench: interrupted after {} measured block(s); partial results kept {kept_in}",
            finished.blocks_done,
        );
        return Ok(ExitCode::Interrupted);
    }
    Ok(ExitCode::Success)
}
