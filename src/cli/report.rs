//! `isobench report DIR`: re-render a stored run's summaries, verdicts, plots and report,
//! and print what `run` prints at its end (the shared [`print_outcome`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::args::{OutputArgs, OutputFormat, ReportArgs};
use super::ExitCode;
use crate::analysis::Analysis;
use crate::report;
use crate::workload::Profile;

pub fn report(args: &ReportArgs) -> Result<ExitCode> {
    let margin = crate::plan::margin_fraction(args.margin)?;
    // Accept the run directory or its run.json.
    let dir = if args
        .run
        .file_name()
        .is_some_and(|n| n == crate::results::RUN_JSON)
    {
        args.run
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default()
    } else {
        args.run.clone()
    };
    let rendered = report::render(&dir, Some(margin), args.seed)
        .with_context(|| format!("re-rendering the report of {}", dir.display()))?;
    let profile = crate::results::load_run(&dir)
        .map(|d| d.run.config.profile)
        .with_context(|| format!("reading the run in {}", dir.display()))?;
    print_outcome(
        &rendered.analysis,
        profile,
        args.output,
        &dir,
        &rendered.files,
    )?;
    Ok(ExitCode::Success)
}

/// What `run` and `report` print once a run is analysed. `table`: the plain-words caption,
/// the verdict table, the files written and the results path; `--quiet`: the caption and
/// the path; `--format json`: the overhead table as JSON on stdout, the path on stderr.
pub(super) fn print_outcome(
    analysis: &Analysis,
    profile: Profile,
    output: OutputArgs,
    run_dir: &Path,
    files: &[PathBuf],
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let write = |e: std::io::Error| anyhow::anyhow!("writing to stdout failed: {e}");
    if output.format == OutputFormat::Json {
        let records = crate::export::overhead_records(analysis, profile);
        let bytes = crate::export::json(&records).context("encoding the overhead table")?;
        out.write_all(&bytes).map_err(write)?;
        eprintln!("results: {}", run_dir.display());
        return Ok(());
    }
    let headline = report::headline::headline(analysis, profile);
    for line in &headline.caption {
        writeln!(out, "{line}").map_err(write)?;
    }
    if !output.quiet {
        writeln!(out).map_err(write)?;
        writeln!(
            out,
            "{}",
            report::terminal_table(analysis, report::stdout_color_wanted())
        )
        .map_err(write)?;
        for f in files {
            writeln!(out, "wrote {}", f.display()).map_err(write)?;
        }
    }
    writeln!(out, "results: {}", run_dir.display()).map_err(write)?;
    Ok(())
}
