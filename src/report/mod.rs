//! Reports of a stored run: re-reads `run.json` and `samples.csv`, analyses them and
//! writes `summary.csv`, `overhead.csv`, `report.md`, `report.html` and the plots; also the
//! terminal table. Everything is derived from the stored files alone.

pub mod content;
pub mod csv_files;
pub mod document;
pub mod headline;
pub mod html;
pub mod markdown;
pub mod plot;
pub mod precision;
pub mod table;

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::analysis::{analyze, Analysis, AnalysisConfig, AnalysisError};
use crate::results::{load_run, LoadError, SUMMARY_CSV};
use crate::stats::bootstrap::DEFAULT_RESAMPLES;
use crate::stats::summary::Estimator;
use crate::stats::verdict::DEFAULT_MARGIN;

pub use plot::Plot;
pub use table::{color_wanted, stdout_color_wanted, terminal_table};

/// `overhead.csv`: one row per (workload, metric, environment) with estimate, intervals
/// and verdict.
pub const OVERHEAD_CSV: &str = "overhead.csv";
pub const REPORT_MD: &str = "report.md";
pub const REPORT_HTML: &str = "report.html";
/// Directory of the plots inside the run directory.
pub const PLOT_DIR: &str = "plots";

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("cannot read the stored run: {0}")]
    ReadRun(#[from] LoadError),
    #[error("cannot analyse the run: {0}")]
    Analyze(#[from] AnalysisError),
    #[error("cannot encode {file}: {source}")]
    EncodeCsv {
        file: &'static str,
        source: csv::Error,
    },
    #[error("cannot write {path}: {source} (check that the run directory is writable)")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the run names the estimator {name:?}, which this isobench does not know: render it with the isobench version that made it")]
    Estimator { name: String },
    #[error("cannot render the plots: {0}")]
    Plot(#[from] plot::PlotError),
}

/// What [`render`] produced.
#[derive(Debug)]
pub struct Rendered {
    /// The analysis (pass it to [`terminal_table`]).
    pub analysis: Analysis,
    /// The headline: one representative metric per workload and the plain-words caption.
    pub headline: headline::Headline,
    /// Every file written, in the order written.
    pub files: Vec<PathBuf>,
}

/// Options of [`render`] beyond the stored files.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RenderOptions {
    /// Margin as a fraction (default 1%).
    pub margin: Option<f64>,
    /// Bootstrap seed (default: the run's seed, so a re-render reproduces the files).
    pub seed: Option<u64>,
    /// Bootstrap resamples (default 10 000).
    pub resamples: Option<usize>,
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
/// `results::write_atomic` with this module's error.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    crate::results::write_atomic(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Re-renders everything of the run in `dir` from its `run.json` and `samples.csv`:
/// `summary.csv`, `overhead.csv`, `report.md`, `report.html` and `plots/*.{svg,png}`.
/// `margin` is a fraction (0.01 = 1%, the default); `seed` defaults to the run's seed.
/// Rendering the same stored run with the same margin and seed gives byte-identical
/// summary files.
pub fn render(dir: &Path, margin: Option<f64>, seed: Option<u64>) -> Result<Rendered, ReportError> {
    render_with(
        dir,
        RenderOptions {
            margin,
            seed,
            resamples: None,
        },
    )
}

/// A stored run and its analysis, with the run's own estimator, margin and seed unless
/// `options` say otherwise: what [`render_with`] and the exports start from.
#[derive(Debug)]
pub struct Analyzed {
    pub run: crate::results::RunFile,
    pub samples: Vec<crate::results::SampleRow>,
    pub analysis: Analysis,
}

/// Loads the run in `dir` and analyses it (no file is written).
pub fn analyze_stored(dir: &Path, options: RenderOptions) -> Result<Analyzed, ReportError> {
    let stored = load_run(dir)?;
    let (run, samples) = (stored.run, stored.samples);
    // Runs before blocks (schema 1) record no estimator: theirs was the mean.
    let estimator = match run.config.options.get("estimator") {
        None => Estimator::Mean,
        Some(name) => {
            Estimator::parse(name).ok_or_else(|| ReportError::Estimator { name: name.clone() })?
        }
    };
    let config = AnalysisConfig {
        margin: options.margin.unwrap_or(DEFAULT_MARGIN),
        seed: options.seed.unwrap_or(run.config.seed),
        resamples: options.resamples.unwrap_or(DEFAULT_RESAMPLES),
        estimator,
    };
    let analysis = analyze(&samples, config)?;
    Ok(Analyzed {
        run,
        samples,
        analysis,
    })
}

/// [`render`] with every option.
pub fn render_with(dir: &Path, options: RenderOptions) -> Result<Rendered, ReportError> {
    let Analyzed {
        run,
        samples,
        analysis,
    } = analyze_stored(dir, options)?;
    let mut files = Vec::new();

    let summary = csv_files::summary_csv(&samples).map_err(|source| ReportError::EncodeCsv {
        file: SUMMARY_CSV,
        source,
    })?;
    let overhead = csv_files::overhead_csv(&analysis).map_err(|source| ReportError::EncodeCsv {
        file: OVERHEAD_CSV,
        source,
    })?;
    for (name, bytes) in [(SUMMARY_CSV, summary), (OVERHEAD_CSV, overhead)] {
        let path = dir.join(name);
        write_atomic(&path, &bytes)?;
        files.push(path);
    }

    let head = headline::headline(&analysis, run.config.profile);
    let mut plots = vec![plot::render_headline(
        &head,
        &analysis.envs,
        &dir.join(PLOT_DIR),
    )?];
    plots.extend(plot::render_plots(&analysis, &dir.join(PLOT_DIR))?);
    for p in &plots {
        files.push(p.svg_path.clone());
        files.push(p.png_path.clone());
    }

    let doc = content::document(&run, &analysis, &head, &plots, PLOT_DIR);
    for (name, text) in [
        (REPORT_MD, markdown::markdown(&doc)),
        (REPORT_HTML, html::html(&doc)),
    ] {
        let path = dir.join(name);
        write_atomic(&path, text.as_bytes())?;
        files.push(path);
    }
    Ok(Rendered {
        analysis,
        headline: head,
        files,
    })
}
