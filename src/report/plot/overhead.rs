//! The headline figure `overhead`: per metric, each environment's overhead against native
//! as a bar with its 95% interval, on the percent-rows frame with the ±margin band.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::analysis::MetricAnalysis;
use crate::report::table::fmt_overhead;

use super::frame::{
    colored, env_and_margin_legend, err, font, legend_in, pct_range, percent_rows_frame,
    row_labels, DrawResult, CAP_PCT,
};
use super::Figure;

/// The `overhead` figure: one row per metric, one bar per compared environment.
pub(super) struct OverheadBars<'a> {
    title: &'a str,
    labels: Vec<String>,
    envs: Vec<(String, RGBColor)>,
    /// Per label, per env: (estimate, low, high) in percent.
    bars: Vec<Vec<Option<(f64, f64, f64)>>>,
    margin_pct: f64,
}

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

/// The bars of `metrics` for the `compared` environments, coloured by their position in
/// `all_envs` (the run's environments).
pub(super) fn figure<'a>(
    title: &'a str,
    metrics: &[&MetricAnalysis],
    compared: &[String],
    all_envs: &[String],
    margin_pct: f64,
) -> OverheadBars<'a> {
    OverheadBars {
        title,
        labels: metrics.iter().map(|m| m.label()).collect(),
        envs: colored(compared, all_envs),
        bars: metrics
            .iter()
            .map(|m| overhead_entries(m, compared))
            .collect(),
        margin_pct,
    }
}
