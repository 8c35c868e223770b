//! The plots of a run, drawn with `plotters` once per backend (SVG and PNG): this module
//! owns [`render_plots`] (which figures a run gets, their names and captions), the
//! `Figure` trait and the writing of both files; each figure draws in its own file.
//! Text uses the DejaVu Sans font embedded from `assets/fonts` (no system font lookup, no
//! system libraries).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use thiserror::Error;

use crate::analysis::{Analysis, MetricAnalysis, NATIVE};
use crate::stats::verdict::format_margin;
use crate::workload::parse_percentile_metric;

mod distributions;
mod drift;
mod forest;
mod frame;
mod headline;
mod io_latency;
mod line_chart;
mod mem_latency;
mod overhead;

use frame::{ensure_font, err, DrawResult};

pub use forest::{render_forest, Forest, PctInterval};
pub use frame::env_color;

/// Register the embedded font (once) for figures drawn outside this module, which name it
/// as [`FONT_FAMILY`].
pub fn register_font() -> Result<(), PlotError> {
    ensure_font()
}

/// The font family name of the embedded font.
pub const FONT_FAMILY: &str = "sans-serif";

#[derive(Debug, Error)]
pub enum PlotError {
    #[error("cannot load the embedded plot font: the DejaVuSans.ttf bundled in assets/fonts is damaged; restore it from git")]
    LoadFont,
    #[error("cannot draw plot {name}: {message}")]
    Draw { name: String, message: String },
    #[error("cannot write plot {path}: {source} (check that the run directory is writable)")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A plot written to disk.
#[derive(Clone, Debug, PartialEq)]
pub struct Plot {
    /// File stem (`overhead`, `distributions`, ...).
    pub name: String,
    pub title: String,
    pub caption: String,
    /// The SVG text (also written to `<name>.svg`).
    pub svg: String,
    pub svg_path: PathBuf,
    pub png_path: PathBuf,
}

/// What a figure needs: its size and how to draw itself on any backend.
trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

fn write_figure<F: Figure>(
    fig: &F,
    dir: &Path,
    name: &str,
    title: &str,
    caption: &str,
) -> Result<Plot, PlotError> {
    let draw_err = |message: String| PlotError::Draw {
        name: name.to_string(),
        message,
    };
    let size = fig.size();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err).map_err(draw_err)?;
        fig.draw(&root).map_err(draw_err)?;
        root.present().map_err(err).map_err(draw_err)?;
    }
    let png_path = dir.join(format!("{name}.png"));
    {
        let root = BitMapBackend::new(&png_path, size).into_drawing_area();
        root.fill(&WHITE).map_err(err).map_err(draw_err)?;
        fig.draw(&root).map_err(draw_err)?;
        root.present().map_err(err).map_err(draw_err)?;
    }
    let svg_path = dir.join(format!("{name}.svg"));
    std::fs::write(&svg_path, &svg).map_err(|source| PlotError::Write {
        path: svg_path.clone(),
        source,
    })?;
    Ok(Plot {
        name: name.to_string(),
        title: title.to_string(),
        caption: caption.to_string(),
        svg,
        svg_path,
        png_path,
    })
}

/// Renders the headline figure (`headline.{svg,png}`) into `dir`; its caption is the
/// headline's plain-words lines.
pub fn render_headline(
    headline: &crate::report::headline::Headline,
    all_envs: &[String],
    dir: &Path,
) -> Result<Plot, PlotError> {
    ensure_font()?;
    std::fs::create_dir_all(dir).map_err(|source| PlotError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let title = "What isolation costs here: overhead vs native, one row per workload";
    let fig = headline::figure(title, headline, all_envs);
    write_figure(
        &fig,
        dir,
        HEADLINE,
        title,
        &format!(
            "Each row is a workload's representative metric (its catalogue primary); dot: \
             the estimate, bar: its 95% interval, text: the verdict at ±{}; grey: native-b's \
             95% interval (the A/A noise floor); the axis is symmetric-log.",
            format_margin(headline.margin)
        ),
    )
}

/// File stem of the headline figure.
pub const HEADLINE: &str = "headline";

/// Renders every plot the data allow into `dir` (SVG and PNG each). Plots with no data
/// (no IO percentiles, no `mem.latency` sizes) are skipped and absent from the result.
pub fn render_plots(analysis: &Analysis, dir: &Path) -> Result<Vec<Plot>, PlotError> {
    ensure_font()?;
    std::fs::create_dir_all(dir).map_err(|source| PlotError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let margin_pct = analysis.config.margin * 100.0;
    let compared: Vec<String> = analysis
        .compared_envs()
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut plots = Vec::new();

    // Metrics drawn in (a), (b) and (e): everything except IO percentiles (they have (c)).
    let main: Vec<&MetricAnalysis> = analysis
        .shown_metrics()
        .filter(|m| parse_percentile_metric(&m.metric).is_none())
        .collect();

    // (a) overhead bars
    let with_overhead: Vec<&MetricAnalysis> = main
        .iter()
        .copied()
        .filter(|m| m.comparisons.iter().any(|c| c.overhead.is_some()))
        .collect();
    if !with_overhead.is_empty() && !compared.is_empty() {
        let title = format!(
            "Overhead vs native, with the ±{} margin",
            format_margin(analysis.config.margin)
        );
        let fig = overhead::figure(
            &title,
            &with_overhead,
            &compared,
            &analysis.envs,
            margin_pct,
        );
        plots.push(write_figure(
            &fig,
            dir,
            "overhead",
            &title,
            "Overhead of each environment against native (estimate from paired per-round log ratios, \
             whiskers: 95% bootstrap interval); the shaded band is the ±margin; native-b is the A/A noise floor.",
        )?);
    }

    // (b) per-sample distributions
    let with_native: Vec<&MetricAnalysis> = main
        .iter()
        .copied()
        .filter(|m| m.samples_of(NATIVE).is_some_and(|s| s.median > 0.0))
        .collect();
    if !with_native.is_empty() {
        let fig = distributions::figure(&with_native, &analysis.envs, margin_pct);
        plots.push(write_figure(
            &fig,
            dir,
            "distributions",
            "Samples relative to native's median",
            "Every sample of every environment, as % worse than native's median (one dot per round; \
             black tick: the environment's median).",
        )?);
    }

    // (c) IO latency percentiles
    if let Some(fig) = io_latency::figure(analysis) {
        plots.push(write_figure(
            &fig,
            dir,
            "io_latency",
            &fig.title.clone(),
            "IO latency percentiles (median over rounds) per environment; x spaced by nines, y logarithmic.",
        )?);
    }

    // (d) memory latency against working-set size
    if let Some(fig) = mem_latency::figure(analysis) {
        plots.push(write_figure(
            &fig,
            dir,
            "mem_latency",
            &fig.title.clone(),
            "Dependent-load latency (median over rounds) against working-set size per environment; both axes logarithmic.",
        )?);
    }

    // (e) samples over rounds
    if !with_native.is_empty() {
        let fig = drift::figure(&with_native, &analysis.envs);
        plots.push(write_figure(
            &fig,
            dir,
            "drift",
            "Samples over rounds",
            "Each sample against its round, as % worse than native's median: a trend or a slow start shows here.",
        )?);
    }
    Ok(plots)
}
