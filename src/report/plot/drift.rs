//! The figure `drift`: per metric, each environment's samples against their round, as %
//! worse than native's median, so a trend or a slow start shows.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::analysis::{MetricAnalysis, NATIVE};

use super::frame::{
    colored, err, font, legend_in, pct_tick, DrawResult, LABEL_PX, TICK_PX, TITLE_PX,
};
use super::Figure;

/// One environment's line in a drift panel: (env, colour, (round, % worse)).
type DriftLine = (String, RGBColor, Vec<(f64, f64)>);
/// A drift panel: (title, lines).
type DriftPanel = (String, Vec<DriftLine>);

/// The `drift` figure: one panel per metric, three panels a row.
pub(super) struct Drift {
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

/// The samples of `metrics` (each with native samples of a positive median) over rounds,
/// one line per environment in `envs` (the run's environments) that has samples.
pub(super) fn figure(metrics: &[&MetricAnalysis], envs: &[String]) -> Drift {
    Drift {
        legend: colored(envs, envs),
        panels: metrics
            .iter()
            .map(|m| {
                let nm = m.samples_of(NATIVE).map_or(1.0, |s| s.median);
                let lines = colored(envs, envs)
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
    }
}
