//! The plots of a run, drawn with `plotters` once per backend (SVG and PNG): overhead bars
//! (the headline), per-sample distributions, IO latency percentiles, memory latency
//! against working-set size, and samples over rounds. Text uses the DejaVu Sans font
//! embedded from `assets/fonts` (no system font lookup, no system libraries).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use thiserror::Error;

use crate::analysis::{Analysis, MetricAnalysis, NATIVE};
use crate::stats::summary::median;
use crate::stats::verdict::format_margin;
use crate::workload::{parse_percentile_metric, working_set_bytes};

use super::table::fmt_overhead;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FONT_NAME: &str = "sans-serif";

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

fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_NAME, FontStyle::Normal, FONT).is_ok()
            && plotters::style::register_font(FONT_NAME, FontStyle::Bold, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::LoadFont)
    }
}

/// Colour of an environment: fixed for the known ones, a palette for the rest.
pub fn env_color(env: &str, index: usize) -> RGBColor {
    match env {
        "native" => RGBColor(70, 70, 70),
        "native-b" => RGBColor(160, 160, 160),
        "container" => RGBColor(31, 119, 180),
        "vm" => RGBColor(230, 120, 20),
        _ => {
            const OTHER: [RGBColor; 4] = [
                RGBColor(44, 160, 44),
                RGBColor(148, 103, 189),
                RGBColor(140, 86, 75),
                RGBColor(23, 190, 207),
            ];
            OTHER[index % OTHER.len()]
        }
    }
}

const BAND: RGBColor = RGBColor(120, 200, 120);
const TITLE_PX: u32 = 26;
const LABEL_PX: u32 = 16;
const TICK_PX: u32 = 14;
/// Room between a chart's title and its plotting area, for the legend row.
const LEGEND_ROOM: u32 = 44;

type DrawResult = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
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

fn font(px: u32) -> TextStyle<'static> {
    (FONT_NAME, px).into_font().color(&BLACK)
}

/// A legend row of coloured squares and names, starting at `(x, y)` (pixels).
fn legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    items: &[(String, RGBColor, f64)],
    x: i32,
    y: i32,
) -> DrawResult {
    let style = font(LABEL_PX).pos(Pos::new(HPos::Left, VPos::Center));
    let mut cx = x;
    for (label, color, alpha) in items {
        root.draw(&Rectangle::new(
            [(cx, y - 7), (cx + 14, y + 7)],
            color.mix(*alpha).filled(),
        ))
        .map_err(err)?;
        root.draw(&Text::new(label.clone(), (cx + 20, y), style.clone()))
            .map_err(err)?;
        let (w, _) = root.estimate_text_size(label, &style).map_err(err)?;
        cx += 20 + w as i32 + 24;
    }
    Ok(())
}

/// X range for percentages: covers the data and ±2·margin, clipped to ±`cap` when the
/// data go further (clipped marks are labelled).
fn pct_range(values: impl Iterator<Item = f64>, margin_pct: f64, cap: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (-2.0 * margin_pct, 2.0 * margin_pct);
    // Values beyond the cap are drawn at the edge; they do not stretch the axis.
    for v in values.filter(|v| v.is_finite() && v.abs() <= cap) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let pad = (hi - lo) * 0.06;
    (lo - pad, hi + pad)
}

/// Tick label for a percentage axis, with decimals only when the range is narrow.
fn pct_tick(span: f64) -> impl Fn(&f64) -> String {
    move |x: &f64| {
        if span < 8.0 {
            format!("{:+.1}%", x)
        } else {
            format!("{:+.0}%", x)
        }
    }
}

/// Tick label on a logarithmic axis: only the 1-2-5 values are labelled.
fn log_tick(y: &f64) -> String {
    if y.is_nan() || *y <= 0.0 {
        return String::new();
    }
    let exp = y.log10().floor();
    let lead = y / 10f64.powf(exp);
    let on = |d: f64| (lead - d).abs() < 1e-6 * d;
    if !(on(1.0) || on(2.0) || on(5.0)) {
        return String::new();
    }
    if *y >= 1.0 {
        format!("{y:.0}")
    } else {
        let digits = (-exp) as usize;
        format!("{y:.digits$}")
    }
}

/// Labels rows of a category chart at the left of the plotting area.
fn row_labels<DB: DrawingBackend, X: plotters::coord::ranged1d::Ranged<ValueType = f64>>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    x_left: f64,
    labels: &[String],
) -> DrawResult {
    let n = labels.len();
    let style = font(TICK_PX).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, l) in labels.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(x_left, (n - 1 - i) as f64));
        root.draw(&Text::new(l.clone(), (px - 8, py), style.clone()))
            .map_err(err)?;
    }
    Ok(())
}

fn max_label_width<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    labels: &[String],
) -> Result<u32, String> {
    let style = font(TICK_PX);
    let mut w = 0;
    for l in labels {
        w = w.max(root.estimate_text_size(l, &style).map_err(err)?.0);
    }
    Ok(w)
}

/// Legend items for the percent charts: one per environment, then the shaded margin band.
fn env_and_margin_legend(
    envs: &[(String, RGBColor)],
    margin_pct: f64,
) -> Vec<(String, RGBColor, f64)> {
    let mut items: Vec<(String, RGBColor, f64)> =
        envs.iter().map(|(e, c)| (e.clone(), *c, 1.0)).collect();
    items.push((
        format!("±{} margin", format_margin(margin_pct / 100.0)),
        BAND,
        0.35,
    ));
    items
}

/// The frame shared by the per-metric percent charts (overhead bars, distributions): title,
/// room for a legend, one row per label, a percent x axis, the shaded ±margin band, the
/// zero line and row separators. Returns the legend area and the chart to draw rows into.
#[allow(clippy::type_complexity)]
fn percent_rows_frame<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    labels: &[String],
    (x0, x1): (f64, f64),
    x_desc: &str,
    margin_pct: f64,
) -> Result<
    (
        DrawingArea<DB, Shift>,
        ChartContext<
            'a,
            DB,
            Cartesian2d<
                plotters::coord::types::RangedCoordf64,
                plotters::coord::types::RangedCoordf64,
            >,
        >,
    ),
    String,
> {
    let n = labels.len();
    let label_w = max_label_width(root, labels)?;
    let body = root.titled(title, font(TITLE_PX)).map_err(err)?;
    let (legend_row, chart_area) = body.split_vertically(LEGEND_ROOM);
    let mut chart = ChartBuilder::on(&chart_area)
        .margin_top(4)
        .margin_right(30)
        .margin_left(10)
        .x_label_area_size(55)
        .y_label_area_size(label_w + 20)
        .build_cartesian_2d(x0..x1, -0.5..(n as f64 - 0.5))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(10)
        .x_label_formatter(&pct_tick(x1 - x0))
        .x_desc(x_desc)
        .label_style(font(TICK_PX))
        .axis_desc_style(font(LABEL_PX))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    let (ylo, yhi) = (-0.5, n as f64 - 0.5);
    chart
        .draw_series([Rectangle::new(
            [(-margin_pct, ylo), (margin_pct, yhi)],
            BAND.mix(0.25).filled(),
        )])
        .map_err(err)?;
    chart
        .draw_series([PathElement::new(
            vec![(0.0, ylo), (0.0, yhi)],
            BLACK.stroke_width(1),
        )])
        .map_err(err)?;
    for i in 1..n {
        let y = i as f64 - 0.5;
        chart
            .draw_series([PathElement::new(
                vec![(x0, y), (x1, y)],
                RGBColor(225, 225, 225).stroke_width(1),
            )])
            .map_err(err)?;
    }
    Ok((legend_row, chart))
}

// ---------------------------------------------------------------------------------------
// (a) overhead bars

struct OverheadBars<'a> {
    title: &'a str,
    labels: Vec<String>,
    envs: Vec<(String, RGBColor)>,
    /// Per label, per env: (estimate, low, high) in percent.
    bars: Vec<Vec<Option<(f64, f64, f64)>>>,
    margin_pct: f64,
}

const CAP_PCT: f64 = 50.0;

impl Figure for OverheadBars<'_> {
    fn size(&self) -> (u32, u32) {
        let row = 10 + 16 * self.envs.len().max(1) as u32;
        (1100, 190 + row * self.labels.len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let n = self.labels.len();
        let k = self.envs.len().max(1);
        let values = self
            .bars
            .iter()
            .flatten()
            .flatten()
            .flat_map(|(e, l, h)| [*e, *l, *h]);
        let (x0, x1) = pct_range(values, self.margin_pct, CAP_PCT);
        let (legend_row, mut chart) = percent_rows_frame(
            root,
            self.title,
            &self.labels,
            (x0, x1),
            "overhead vs native, % (positive = worse than native; whiskers: 95% interval)",
            self.margin_pct,
        )?;
        let slot = 0.8 / k as f64;
        let clip = |v: f64| v.clamp(x0, x1);
        let value_style = font(12).color(&BLACK);
        for (i, per_env) in self.bars.iter().enumerate() {
            let yc_row = (n - 1 - i) as f64;
            for (j, bar) in per_env.iter().enumerate() {
                let Some((est, lo, hi)) = *bar else { continue };
                // First environment at the top of the row.
                let yc = yc_row + 0.4 - slot * (j as f64 + 0.5);
                let h = slot * 0.42;
                let color = self.envs[j].1;
                chart
                    .draw_series([Rectangle::new(
                        [(0.0, yc - h), (clip(est), yc + h)],
                        color.filled(),
                    )])
                    .map_err(err)?;
                let whisker = BLACK.stroke_width(2);
                chart
                    .draw_series([
                        PathElement::new(vec![(clip(lo), yc), (clip(hi), yc)], whisker),
                        PathElement::new(
                            vec![(clip(lo), yc - h * 0.8), (clip(lo), yc + h * 0.8)],
                            whisker,
                        ),
                        PathElement::new(
                            vec![(clip(hi), yc - h * 0.8), (clip(hi), yc + h * 0.8)],
                            whisker,
                        ),
                    ])
                    .map_err(err)?;
                if est > x1 || est < x0 {
                    // Clipped bar: print its value inside the plot near the edge.
                    let (px, py) = chart.backend_coord(&(clip(est), yc));
                    let (anchor, dx) = if est > x1 {
                        (HPos::Right, -6)
                    } else {
                        (HPos::Left, 6)
                    };
                    let value = fmt_overhead(est / 100.0);
                    let text = if est > x1 {
                        format!("{value} ▸")
                    } else {
                        format!("◂ {value}")
                    };
                    root.draw(&Text::new(
                        text,
                        (px + dx, py),
                        value_style.pos(Pos::new(anchor, VPos::Center)),
                    ))
                    .map_err(err)?;
                }
            }
        }
        row_labels(root, &chart, x0, &self.labels)?;
        let items = env_and_margin_legend(&self.envs, self.margin_pct);
        legend_in(&legend_row, &items)
    }
}

/// The per-environment overhead entries of `m` in the order of `envs`.
fn overhead_entries(m: &MetricAnalysis, envs: &[String]) -> Vec<Option<(f64, f64, f64)>> {
    envs.iter()
        .map(|e| {
            m.comparison(e)
                .and_then(|c| c.overhead)
                .map(|o| (o.estimate * 100.0, o.ci95.low * 100.0, o.ci95.high * 100.0))
        })
        .collect()
}

fn colored(envs: &[String], all: &[String]) -> Vec<(String, RGBColor)> {
    envs.iter()
        .map(|e| {
            (
                e.clone(),
                env_color(e, all.iter().position(|a| a == e).unwrap_or(0)),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// (b) per-sample distributions

struct Distributions {
    labels: Vec<String>,
    envs: Vec<(String, RGBColor)>,
    /// Per label, per env: the samples as % worse than native's median.
    points: Vec<Vec<Vec<f64>>>,
    margin_pct: f64,
}

impl Figure for Distributions {
    fn size(&self) -> (u32, u32) {
        let row = 10 + 12 * self.envs.len().max(1) as u32;
        (1100, 190 + row * self.labels.len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let n = self.labels.len();
        let k = self.envs.len().max(1);
        let (x0, x1) = pct_range(
            self.points.iter().flatten().flatten().copied(),
            self.margin_pct,
            CAP_PCT,
        );
        let (legend_row, mut chart) = percent_rows_frame(
            root,
            "Samples relative to native's median",
            &self.labels,
            (x0, x1),
            "each sample vs native's median, % (positive = worse; points beyond the axis drawn at its edge)",
            self.margin_pct,
        )?;
        let slot = 0.8 / k as f64;
        for (i, per_env) in self.points.iter().enumerate() {
            let yc_row = (n - 1 - i) as f64;
            for (j, pts) in per_env.iter().enumerate() {
                let yc = yc_row + 0.4 - slot * (j as f64 + 0.5);
                let color = self.envs[j].1;
                let count = pts.len().max(1);
                chart
                    .draw_series(pts.iter().enumerate().map(|(r, v)| {
                        // Deterministic vertical jitter within the slot, by sample index.
                        let jitter = ((r * 7919) % count) as f64 / count as f64 - 0.5;
                        let y = yc + jitter * slot * 0.6;
                        let x = v.clamp(x0, x1);
                        let style = if *v == x {
                            color.mix(0.75).filled()
                        } else {
                            color.stroke_width(2)
                        };
                        Circle::new((x, y), 3, style)
                    }))
                    .map_err(err)?;
                if !pts.is_empty() {
                    let med = median(pts).clamp(x0, x1);
                    chart
                        .draw_series([PathElement::new(
                            vec![(med, yc - slot * 0.45), (med, yc + slot * 0.45)],
                            BLACK.stroke_width(2),
                        )])
                        .map_err(err)?;
                }
            }
        }
        row_labels(root, &chart, x0, &self.labels)?;
        let mut items = env_and_margin_legend(&self.envs, self.margin_pct);
        items.push(("black tick: median".to_string(), BLACK, 0.0));
        legend_in(&legend_row, &items)
    }
}

// ---------------------------------------------------------------------------------------
// (c) IO latency percentiles and (d) memory latency: log-log line charts

/// One line of a line chart.
struct Line {
    label: String,
    color: RGBColor,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// A panel of lines on a log-y axis with manual x ticks.
struct LinePanel {
    title: String,
    x_desc: String,
    y_desc: String,
    /// (x, label) ticks; x is already transformed to the axis (e.g. log10 bytes).
    ticks: Vec<(f64, String)>,
    lines: Vec<Line>,
}

struct LineFigure {
    title: String,
    panels: Vec<LinePanel>,
    legend: Vec<(String, RGBColor)>,
}

impl LinePanel {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult {
        let xs = self.lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
        let ys: Vec<f64> = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .filter(|y| *y > 0.0)
            .collect();
        let (mut xlo, mut xhi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
        if !xlo.is_finite() {
            (xlo, xhi) = (0.0, 1.0);
        }
        if xhi - xlo < 1e-9 {
            (xlo, xhi) = (xlo - 0.5, xhi + 0.5);
        }
        let pad = (xhi - xlo) * 0.05;
        let ylo = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let yhi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (ylo, yhi) = if ylo.is_finite() {
            (ylo / 1.5, yhi * 1.5)
        } else {
            (0.1, 10.0)
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, font(LABEL_PX + 2))
            .margin(12)
            .margin_right(25)
            .x_label_area_size(60)
            .y_label_area_size(75)
            .build_cartesian_2d((xlo - pad)..(xhi + pad), (ylo..yhi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(0)
            .disable_x_mesh()
            .y_desc(&self.y_desc)
            .x_desc(&self.x_desc)
            .y_labels(30)
            .y_label_formatter(&log_tick)
            .label_style(font(TICK_PX))
            .axis_desc_style(font(LABEL_PX))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        let tick_style = font(TICK_PX).pos(Pos::new(HPos::Center, VPos::Top));
        for (x, label) in &self.ticks {
            chart
                .draw_series([PathElement::new(
                    vec![(*x, ylo), (*x, yhi)],
                    RGBColor(225, 225, 225).stroke_width(1),
                )])
                .map_err(err)?;
            let (px, py) = chart.backend_coord(&(*x, ylo));
            area.draw(&Text::new(
                label.clone(),
                (
                    px - area.get_base_pixel().0,
                    py - area.get_base_pixel().1 + 8,
                ),
                tick_style.clone(),
            ))
            .map_err(err)?;
        }
        for l in &self.lines {
            let pts: Vec<(f64, f64)> = l.points.iter().copied().filter(|p| p.1 > 0.0).collect();
            if l.dashed {
                chart
                    .draw_series(DashedLineSeries::new(
                        pts.clone(),
                        8,
                        5,
                        l.color.stroke_width(2),
                    ))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(pts.clone(), l.color.stroke_width(2)))
                    .map_err(err)?;
            }
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 4, l.color.filled())))
                .map_err(err)?;
        }
        Ok(())
    }
}

impl Figure for LineFigure {
    fn size(&self) -> (u32, u32) {
        let cols = self.panels.len().clamp(1, 2) as u32;
        let rows = self.panels.len().div_ceil(2).max(1) as u32;
        (if cols == 1 { 900 } else { 1300 }, 110 + rows * 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let body = root.titled(&self.title, font(TITLE_PX)).map_err(err)?;
        let (top, rest) = body.split_vertically(50);
        let items: Vec<(String, RGBColor, f64)> = self
            .legend
            .iter()
            .map(|(l, c)| (l.clone(), *c, 1.0))
            .collect();
        legend_in(&top, &items)?;
        let cols = self.panels.len().clamp(1, 2);
        let rows = self.panels.len().div_ceil(2).max(1);
        let areas = rest.split_evenly((rows, cols));
        for (p, a) in self.panels.iter().zip(areas.iter()) {
            p.draw(a)?;
        }
        Ok(())
    }
}

/// A legend centred in `area`.
fn legend_in<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, RGBColor, f64)],
) -> DrawResult {
    let style = font(LABEL_PX);
    let mut total = 0i32;
    for (l, _, _) in items {
        total += 20 + area.estimate_text_size(l, &style).map_err(err)?.0 as i32 + 24;
    }
    let (w, h) = area.dim_in_pixel();
    legend(area, items, ((w as i32 - total) / 2).max(10), h as i32 / 2)
}

// ---------------------------------------------------------------------------------------
// (e) samples over rounds

/// One environment's line in a drift panel: (env, colour, (round, % worse)).
type DriftLine = (String, RGBColor, Vec<(f64, f64)>);
/// A drift panel: (title, lines).
type DriftPanel = (String, Vec<DriftLine>);

struct Drift {
    panels: Vec<DriftPanel>,
    legend: Vec<(String, RGBColor)>,
}

const DRIFT_COLS: usize = 3;

impl Figure for Drift {
    fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(DRIFT_COLS).max(1) as u32;
        (1300, 110 + rows * 260)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let body = root
            .titled("Samples over rounds (drift)", font(TITLE_PX))
            .map_err(err)?;
        let (top, rest) = body.split_vertically(62);
        let items: Vec<(String, RGBColor, f64)> = self
            .legend
            .iter()
            .map(|(l, c)| (l.clone(), *c, 1.0))
            .collect();
        let (legend_row, note_row) = top.split_vertically(28);
        legend_in(&legend_row, &items)?;
        let note = font(TICK_PX).pos(Pos::new(HPos::Center, VPos::Center));
        let (w, _) = note_row.dim_in_pixel();
        note_row
            .draw(&Text::new(
                "y: each sample as % worse than native's median (+ = worse); x: measured round",
                (w as i32 / 2, 10),
                note,
            ))
            .map_err(err)?;
        let rows = self.panels.len().div_ceil(DRIFT_COLS).max(1);
        let areas = rest.split_evenly((rows, DRIFT_COLS));
        for ((title, lines), area) in self.panels.iter().zip(areas.iter()) {
            let all = lines.iter().flat_map(|l| l.2.iter().copied());
            let (mut xlo, mut xhi, mut ylo, mut yhi) = all.fold(
                (
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                ),
                |a, (x, y)| (a.0.min(x), a.1.max(x), a.2.min(y), a.3.max(y)),
            );
            if !xlo.is_finite() {
                (xlo, xhi, ylo, yhi) = (0.0, 1.0, -1.0, 1.0);
            }
            if xhi - xlo < 1.0 {
                xhi = xlo + 1.0;
            }
            let pad = ((yhi - ylo) * 0.1).max(0.5);
            let mut chart = ChartBuilder::on(area)
                .caption(title, font(LABEL_PX))
                .margin(8)
                .margin_right(20)
                .x_label_area_size(38)
                .y_label_area_size(62)
                .build_cartesian_2d(xlo..xhi, (ylo - pad)..(yhi + pad))
                .map_err(err)?;
            let span = yhi - ylo + 2.0 * pad;
            chart
                .configure_mesh()
                .x_labels(6)
                .y_labels(5)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&pct_tick(span))
                .x_desc("round")
                .label_style(font(12))
                .axis_desc_style(font(13))
                .light_line_style(RGBColor(238, 238, 238))
                .draw()
                .map_err(err)?;
            for (_, color, pts) in lines {
                chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(err)?;
                chart
                    .draw_series(pts.iter().map(|p| Circle::new(*p, 2, color.filled())))
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Building the figures from an analysis

fn bytes_label(b: f64) -> String {
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (u, m) in units {
        if b >= m as f64 {
            let v = b / m as f64;
            return if (v - v.round()).abs() < 1e-9 {
                format!("{v:.0} {u}")
            } else {
                format!("{v:.1} {u}")
            };
        }
    }
    format!("{b:.0} B")
}

fn percentile_label(p: f64) -> String {
    let s = format!("{p:.2}");
    format!("p{}", s.trim_end_matches('0').trim_end_matches('.'))
}

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
        .metrics
        .iter()
        .filter(|m| parse_percentile_metric(&m.metric).is_none())
        .collect();

    // (a)
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
        let fig = OverheadBars {
            title: &title,
            labels: with_overhead.iter().map(|m| m.label()).collect(),
            envs: colored(&compared, &analysis.envs),
            bars: with_overhead
                .iter()
                .map(|m| overhead_entries(m, &compared))
                .collect(),
            margin_pct,
        };
        plots.push(write_figure(
            &fig,
            dir,
            "overhead",
            &title,
            "Overhead of each environment against native (estimate from paired per-round log ratios, \
             whiskers: 95% bootstrap interval); the shaded band is the ±margin; native-b is the A/A noise floor.",
        )?);
    }

    // (b)
    let with_native: Vec<&MetricAnalysis> = main
        .iter()
        .copied()
        .filter(|m| m.samples_of(NATIVE).is_some_and(|s| s.median > 0.0))
        .collect();
    if !with_native.is_empty() {
        let envs = analysis.envs.clone();
        let fig = Distributions {
            labels: with_native.iter().map(|m| m.label()).collect(),
            envs: colored(&envs, &analysis.envs),
            points: with_native
                .iter()
                .map(|m| {
                    let nm = m.samples_of(NATIVE).map_or(1.0, |s| s.median);
                    envs.iter()
                        .map(|e| {
                            m.samples_of(e).map_or_else(Vec::new, |s| {
                                s.values
                                    .iter()
                                    .filter(|(_, v)| *v > 0.0)
                                    .map(|(_, v)| (m.better.relative_worse(nm, *v) - 1.0) * 100.0)
                                    .collect()
                            })
                        })
                        .collect()
                })
                .collect(),
            margin_pct,
        };
        plots.push(write_figure(
            &fig,
            dir,
            "distributions",
            "Samples relative to native's median",
            "Every sample of every environment, as % worse than native's median (one dot per round; \
             black tick: the environment's median).",
        )?);
    }

    // (c)
    if let Some(fig) = io_percentile_figure(analysis) {
        plots.push(write_figure(
            &fig,
            dir,
            "io_latency",
            &fig.title.clone(),
            "IO latency percentiles (median over rounds) per environment; x spaced by nines, y logarithmic.",
        )?);
    }

    // (d)
    if let Some(fig) = mem_latency_figure(analysis) {
        plots.push(write_figure(
            &fig,
            dir,
            "mem_latency",
            &fig.title.clone(),
            "Dependent-load latency (median over rounds) against working-set size per environment; both axes logarithmic.",
        )?);
    }

    // (e)
    if !with_native.is_empty() {
        let envs = analysis.envs.clone();
        let fig = Drift {
            legend: colored(&envs, &analysis.envs),
            panels: with_native
                .iter()
                .map(|m| {
                    let nm = m.samples_of(NATIVE).map_or(1.0, |s| s.median);
                    let lines = colored(&envs, &analysis.envs)
                        .into_iter()
                        .filter_map(|(e, c)| {
                            let s = m.samples_of(&e)?;
                            let pts = s
                                .values
                                .iter()
                                .filter(|(_, v)| *v > 0.0)
                                .map(|(r, v)| {
                                    (
                                        f64::from(*r),
                                        (m.better.relative_worse(nm, *v) - 1.0) * 100.0,
                                    )
                                })
                                .collect();
                            Some((e, c, pts))
                        })
                        .collect();
                    (m.label(), lines)
                })
                .collect(),
        };
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

/// One environment's percentile curve: (env, (percentile, µs)).
type EnvCurve = (String, Vec<(f64, f64)>);
/// One IO panel: ((workload, op), curves).
type IoPanel = ((String, String), Vec<EnvCurve>);

fn io_percentile_figure(analysis: &Analysis) -> Option<LineFigure> {
    // (workload, op) -> env -> [(percentile, median µs)]
    let mut panels: Vec<IoPanel> = Vec::new();
    for m in &analysis.metrics {
        let Some((op, p)) = parse_percentile_metric(&m.metric) else {
            continue;
        };
        let key = (m.workload.clone(), op);
        let idx = match panels.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                panels.push((key, Vec::new()));
                panels.len() - 1
            }
        };
        for s in &m.samples {
            let env_lines = &mut panels[idx].1;
            let li = match env_lines.iter().position(|(e, _)| *e == s.env) {
                Some(i) => i,
                None => {
                    env_lines.push((s.env.clone(), Vec::new()));
                    env_lines.len() - 1
                }
            };
            env_lines[li].1.push((p, s.median));
        }
    }
    if panels.is_empty() {
        return None;
    }
    let nines = |p: f64| -(1.0 - p / 100.0).log10();
    let panels = panels
        .into_iter()
        .map(|((workload, op), env_lines)| {
            let mut ps: Vec<f64> = env_lines
                .iter()
                .flat_map(|(_, v)| v.iter().map(|x| x.0))
                .collect();
            ps.sort_by(f64::total_cmp);
            ps.dedup();
            LinePanel {
                title: format!("{workload} {op}"),
                x_desc: "percentile".into(),
                y_desc: "latency, µs (log)".into(),
                ticks: ps
                    .iter()
                    .map(|p| (nines(*p), percentile_label(*p)))
                    .collect(),
                lines: env_lines
                    .into_iter()
                    .map(|(env, mut pts)| {
                        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                        Line {
                            color: env_color(
                                &env,
                                analysis.envs.iter().position(|e| *e == env).unwrap_or(0),
                            ),
                            label: env,
                            dashed: false,
                            points: pts.into_iter().map(|(p, v)| (nines(p), v)).collect(),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    Some(LineFigure {
        title: "IO latency percentiles".into(),
        panels,
        legend: colored(&analysis.envs, &analysis.envs),
    })
}

fn mem_latency_figure(analysis: &Analysis) -> Option<LineFigure> {
    let mut lines: Vec<Line> = Vec::new();
    let mut sizes: Vec<f64> = Vec::new();
    let mut unit = String::new();
    for m in analysis
        .metrics
        .iter()
        .filter(|m| m.workload == "mem.latency")
    {
        let Some(bytes) = working_set_bytes(&m.metric).map(|b| b as f64) else {
            continue;
        };
        unit = m.unit.clone();
        sizes.push(bytes);
        for s in &m.samples {
            let li = match lines.iter().position(|l| l.label == s.env) {
                Some(i) => i,
                None => {
                    let color = env_color(
                        &s.env,
                        analysis.envs.iter().position(|e| *e == s.env).unwrap_or(0),
                    );
                    lines.push(Line {
                        label: s.env.clone(),
                        color,
                        dashed: s.env == "native-b",
                        points: Vec::new(),
                    });
                    lines.len() - 1
                }
            };
            lines[li].points.push((bytes.log2(), s.median));
        }
    }
    if lines.is_empty() {
        return None;
    }
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    // At most ~10 tick labels: keep every k-th size.
    let step = sizes.len().div_ceil(10).max(1);
    let ticks = sizes
        .iter()
        .step_by(step)
        .map(|b| (b.log2(), bytes_label(*b)))
        .collect();
    for l in &mut lines {
        l.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Some(LineFigure {
        title: "Memory latency against working-set size".into(),
        panels: vec![LinePanel {
            title: "mem.latency (dependent loads)".into(),
            x_desc: "working set (log scale)".into(),
            y_desc: format!("latency, {unit} (log)"),
            ticks,
            lines,
        }],
        legend: colored(&analysis.envs, &analysis.envs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_labels() {
        assert_eq!(bytes_label(65536.0), "64 KiB");
        assert_eq!(percentile_label(99.9), "p99.9");
        assert_eq!(percentile_label(50.0), "p50");
    }
}
