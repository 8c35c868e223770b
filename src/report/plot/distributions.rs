//! The figure `distributions`: per metric, every sample of every environment as % worse
//! than native's median, with each environment's median, on the percent-rows frame.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::analysis::{MetricAnalysis, NATIVE};
use crate::stats::summary::median;

use super::frame::{
    colored, env_and_margin_legend, err, legend_in, pct_range, percent_rows_frame, row_labels,
    DrawResult, CAP_PCT,
};
use super::Figure;

/// The `distributions` figure: one row per metric, one strip of dots per environment.
pub(super) struct Distributions {
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

/// The samples of `metrics` (each with native samples of a positive median) for every
/// environment in `envs` (the run's environments).
pub(super) fn figure(
    metrics: &[&MetricAnalysis],
    envs: &[String],
    margin_pct: f64,
) -> Distributions {
    Distributions {
        labels: metrics.iter().map(|m| m.label()).collect(),
        envs: colored(envs, envs),
        points: metrics
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
    }
}
