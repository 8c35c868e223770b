//! The log-y line chart drawn by the `io_latency` and `mem_latency` figures: panels of
//! per-environment lines with manual x ticks, under one title and one legend.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::frame::{err, font, legend_in, log_tick, DrawResult, LABEL_PX, TICK_PX, TITLE_PX};
use super::Figure;

/// One line of a line chart.
pub(super) struct Line {
    pub(super) label: String,
    pub(super) color: RGBColor,
    pub(super) dashed: bool,
    pub(super) points: Vec<(f64, f64)>,
}

/// A panel of lines on a log-y axis with manual x ticks.
pub(super) struct LinePanel {
    pub(super) title: String,
    pub(super) x_desc: String,
    pub(super) y_desc: String,
    /// (x, label) ticks; x is already transformed to the axis (e.g. log10 bytes).
    pub(super) ticks: Vec<(f64, String)>,
    pub(super) lines: Vec<Line>,
}

/// A titled figure of line panels, two a row, under one legend of the environments.
pub(super) struct LineFigure {
    pub(super) title: String,
    pub(super) panels: Vec<LinePanel>,
    pub(super) legend: Vec<(String, RGBColor)>,
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
