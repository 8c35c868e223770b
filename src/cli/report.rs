//! `isobench report DIR`: re-render a stored run's summaries, verdicts, plots and report.

use anyhow::{Context, Result};

use super::args::ReportArgs;
use super::ExitCode;
use crate::report;

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
    println!(
        "{}",
        report::terminal_table(&rendered.analysis, report::stdout_color_wanted())
    );
    for f in &rendered.files {
        println!("wrote {}", f.display());
    }
    Ok(ExitCode::Success)
}
