//! `isobench export DIR --format FMT`: a stored run's verdicts and overheads for CI
//! dashboards and notebooks, on stdout or into a file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::ExitCode;
use crate::export::{export as export_run, Format};
use crate::results::write_atomic;

const AFTER: &str = "Formats:
  github-action-benchmark  JSON for benchmark-action/github-action-benchmark, tool
                           customSmallerIsBetter: each environment's overhead vs native in %
  bencher                  Bencher Metric Format (measure overhead-pct, with the 95% interval)
  junit                    JUnit XML: a failing test case per verdict above the margin, and
                           with --baseline one per regression
  csv, json                the overhead table, one row per environment and metric

Examples:
  isobench export results/2026-11-28T10-00-00Z --format junit --output isobench.xml
  isobench export results/latest --format github-action-benchmark > bench.json
  isobench export results/new --format junit --baseline results/old";

#[derive(Debug, Args)]
#[command(after_help = AFTER)]
pub struct ExportArgs {
    /// The run directory (results/<run-id>) or its run.json.
    pub run: PathBuf,

    /// The export format.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Format,

    /// Write to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// A baseline run directory: the JUnit export adds one test case per compared series,
    /// failing where `isobench compare` would call it regressed.
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,
}

fn run_dir(p: &std::path::Path) -> PathBuf {
    if p.file_name().is_some_and(|n| n == crate::results::RUN_JSON) {
        p.parent().map(|p| p.to_path_buf()).unwrap_or_default()
    } else {
        p.to_path_buf()
    }
}

pub fn export(args: &ExportArgs) -> Result<ExitCode> {
    if args.baseline.is_some() && args.format != Format::Junit {
        anyhow::bail!(
            "--baseline only applies to --format junit (the other formats export one run): drop it, or use `isobench compare`"
        );
    }
    let dir = run_dir(&args.run);
    let baseline = args.baseline.as_deref().map(run_dir);
    let bytes = export_run(&dir, args.format, baseline.as_deref())
        .with_context(|| format!("exporting the run in {}", dir.display()))?;
    match &args.output {
        Some(path) => write_atomic(path, &bytes).with_context(|| {
            format!(
                "writing {} (check that its directory exists and is writable)",
                path.display()
            )
        })?,
        None => std::io::stdout()
            .lock()
            .write_all(&bytes)
            .context("writing the export to stdout")?,
    }
    Ok(ExitCode::Success)
}
