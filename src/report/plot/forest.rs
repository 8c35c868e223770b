//! The forest plot of a fleet (`isobench merge`): for one metric, one row per host with
//! each environment's overhead and 95% interval, and the pooled estimate across hosts as a
//! diamond in the bottom row, on the percent-rows frame with the ±margin band.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{
    colored, env_and_margin_legend, err, legend_in, pct_range, percent_rows_frame, row_labels,
    DrawResult, CAP_PCT,
};
use super::{ensure_font, write_figure, Figure, Plot, PlotError};

/// An estimate and its 95% interval, in percent.
pub type PctInterval = (f64, f64, f64);

/// What a forest plot shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Forest {
    pub title: String,
    /// One label per host row.
    pub hosts: Vec<String>,
    /// The compared environments, in order.
    pub envs: Vec<String>,
    /// Per host, per environment.
    pub points: Vec<Vec<Option<PctInterval>>>,
    /// Per environment: the pooled estimate and its 95% interval.
    pub pooled: Vec<Option<PctInterval>>,
    pub margin_pct: f64,
}

struct ForestFigure<'a> {
    forest: &'a Forest,
    labels: Vec<String>,
    envs: Vec<(String, RGBColor)>,
}

impl Figure for ForestFigure<'_> {
    fn size(&self) -> (u32, u32) {
        let row = 10 + 16 * self.envs.len().max(1) as u32;
        (1000, 190 + row * self.labels.len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let f = self.forest;
        let n = self.labels.len();
        let k = self.envs.len().max(1);
        let values = f
            .points
            .iter()
            .flatten()
            .chain(f.pooled.iter())
            .flatten()
            .flat_map(|(e, l, h)| [*e, *l, *h]);
        let (x0, x1) = pct_range(values, f.margin_pct, CAP_PCT);
        let (legend_row, mut chart) = percent_rows_frame(
            root,
            &f.title,
            &self.labels,
            (x0, x1),
            "overhead vs native, % (markers: each host, whiskers: 95% interval; diamond: pooled across hosts)",
            f.margin_pct,
        )?;
        let clip = |v: f64| v.clamp(x0, x1);
        let slot = 0.8 / k as f64;
        let rows = f.points.iter().map(|r| (r, false));
        let pooled_row = std::iter::once((&f.pooled, true));
        for (i, (per_env, is_pooled)) in rows.chain(pooled_row).enumerate() {
            let yc_row = (n - 1 - i) as f64;
            for (j, point) in per_env.iter().enumerate() {
                let Some((est, lo, hi)) = *point else {
                    continue;
                };
                let yc = yc_row + 0.4 - slot * (j as f64 + 0.5);
                let h = slot * 0.42;
                let color = self.envs[j].1;
                if is_pooled {
                    chart
                        .draw_series([Polygon::new(
                            vec![
                                (clip(lo), yc),
                                (clip(est), yc + h),
                                (clip(hi), yc),
                                (clip(est), yc - h),
                            ],
                            color.filled(),
                        )])
                        .map_err(err)?;
                } else {
                    let whisker = color.stroke_width(2);
                    chart
                        .draw_series([
                            PathElement::new(vec![(clip(lo), yc), (clip(hi), yc)], whisker),
                            PathElement::new(
                                vec![(clip(lo), yc - h * 0.6), (clip(lo), yc + h * 0.6)],
                                whisker,
                            ),
                            PathElement::new(
                                vec![(clip(hi), yc - h * 0.6), (clip(hi), yc + h * 0.6)],
                                whisker,
                            ),
                        ])
                        .map_err(err)?;
                    chart
                        .draw_series([Rectangle::new(
                            [
                                (clip(est) - (x1 - x0) * 0.004, yc - h * 0.6),
                                (clip(est) + (x1 - x0) * 0.004, yc + h * 0.6),
                            ],
                            color.filled(),
                        )])
                        .map_err(err)?;
                }
            }
        }
        row_labels(root, &chart, x0, &self.labels)?;
        let items = env_and_margin_legend(&self.envs, f.margin_pct);
        legend_in(&legend_row, &items)
    }
}

/// Draws `forest` into `dir/<name>.svg` and `.png`.
pub fn render_forest(
    forest: &Forest,
    dir: &Path,
    name: &str,
    caption: &str,
) -> Result<Plot, PlotError> {
    ensure_font()?;
    std::fs::create_dir_all(dir).map_err(|source| PlotError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut labels = forest.hosts.clone();
    labels.push("pooled (random effects)".into());
    let fig = ForestFigure {
        forest,
        labels,
        envs: colored(&forest.envs, &forest.envs),
    };
    write_figure(&fig, dir, name, &forest.title, caption)
}
