//! `isobench baseline save|list`: store named baselines for `isobench compare --baseline`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::ExitCode;
use crate::baseline::{self, BaselineError};

/// Flags of `isobench baseline`.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: BaselineCommand,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Save a run as baseline NAME (a copy of its run.json and samples.csv under
    /// OUT/baselines/NAME/).
    Save(SaveArgs),
    /// List the stored baselines.
    List(ListArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  isobench baseline save main                    the newest run under results/
  isobench baseline save main results/latest --force
  isobench compare --baseline main results/latest")]
pub struct SaveArgs {
    /// Baseline name: letters, digits, '.', '_', '-' (no slashes, not starting with a dot).
    pub name: String,

    /// The run to save: a run directory or its run.json. [default: the newest run under OUT]
    pub run: Option<PathBuf>,

    /// Results directory (holds the runs and baselines/).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,

    /// Replace an existing baseline of that name.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Results directory (holds baselines/).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
}

pub fn baseline(args: &BaselineArgs) -> Result<ExitCode> {
    let result = match &args.command {
        BaselineCommand::Save(a) => save(a),
        BaselineCommand::List(a) => list(a),
    };
    match result {
        Ok(()) => Ok(ExitCode::Success),
        Err(err) => {
            eprintln!("isobench: error: {err}");
            // Failing to write is a failure; everything else is a usage or input error.
            Ok(match err {
                BaselineError::Io { .. } => ExitCode::Failure,
                _ => ExitCode::Usage,
            })
        }
    }
}

fn save(a: &SaveArgs) -> Result<(), BaselineError> {
    baseline::validate_name(&a.name)?;
    let run = match &a.run {
        Some(r) => r.clone(),
        None => baseline::newest_run(&a.out)?,
    };
    let dir = baseline::save(&a.out, &a.name, &run, a.force)?;
    println!(
        "saved {} as baseline {:?}: {}",
        run.display(),
        a.name,
        dir.display()
    );
    Ok(())
}

fn list(a: &ListArgs) -> Result<(), BaselineError> {
    let all = baseline::list(&a.out)?;
    if all.is_empty() {
        println!(
            "no baselines in {} (save one with `isobench baseline save NAME [RUN]`)",
            baseline::baselines_dir(&a.out).display()
        );
        return Ok(());
    }
    let width = all
        .iter()
        .map(|b| b.name.chars().count())
        .max()
        .unwrap_or(0);
    for b in &all {
        match &b.summary {
            Ok(s) => println!(
                "{:<width$}  {}  started {}  on {}  {} profile, {} rounds  [{}]  isobench {}",
                b.name,
                s.run_id,
                s.started_at,
                s.hostname,
                s.profile,
                s.rounds,
                s.environments.join(","),
                s.isobench_version
            ),
            Err(e) => println!("{:<width$}  UNREADABLE: {e}", b.name),
        }
    }
    Ok(())
}
