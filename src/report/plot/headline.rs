//! The headline figure `headline`: one row per workload (its representative metric), one
//! mark per environment (dot: estimate, bar: 95% interval) with its verdict written beside
//! it, the A/A band (native-b's 95% interval) and the ±margin band, on a symmetric-log
//! axis so that +0.3% and 89× are both readable; the plain-words caption above.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::headline::{Headline, Row};
use crate::stats::verdict::format_margin;

use super::frame::{colored, err, font, legend_in, DrawResult, LABEL_PX, TICK_PX, TITLE_PX};
use super::Figure;

const WIDTH: u32 = 1100;
const MARK_PX: u32 = 24;
const ROW_PAD_PX: u32 = 14;
const CAPTION_LINE_PX: u32 = 22;
const BAND: RGBColor = RGBColor(120, 200, 120);
const AA: RGBColor = RGBColor(150, 150, 150);

/// The symmetric-log map of an overhead in percent: linear within ±`c`, logarithmic
/// beyond (`sign(x)·log10(1 + |x|/c)`).
pub(super) fn symlog(x_pct: f64, c: f64) -> f64 {
    x_pct.signum() * (x_pct.abs() / c).ln_1p() / std::f64::consts::LN_10
}

/// Tick positions in percent, both sides of zero, as far as an overhead reaches.
const TICKS_PCT: [f64; 23] = [
    -90.0, -50.0, -20.0, -10.0, -5.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0,
    100.0, 400.0, 900.0, 1900.0, 4900.0, 9900.0, 99900.0,
];

/// A tick label: `+5%`, `−0.5%`, `0`, and factors from 2× on (`+100%` is `2×`).
pub(super) fn tick_label(x_pct: f64) -> String {
    if x_pct == 0.0 {
        "0".into()
    } else if x_pct >= 100.0 {
        format!("{:.0}×", 1.0 + x_pct / 100.0)
    } else {
        let s = if x_pct.abs() < 1.0 {
            format!("{:.1}", x_pct.abs())
        } else {
            format!("{:.0}", x_pct.abs())
        };
        format!("{}{s}%", if x_pct > 0.0 { "+" } else { "−" })
    }
}

pub(super) struct HeadlineFigure<'a> {
    title: &'a str,
    headline: &'a Headline,
    colors: Vec<(String, RGBColor)>,
}

impl HeadlineFigure<'_> {
    /// The linear half-width of the axis around zero, in percent: half the margin.
    fn c(&self) -> f64 {
        (self.headline.margin * 100.0 / 2.0).max(1e-3)
    }

    fn color(&self, env: &str) -> RGBColor {
        self.colors
            .iter()
            .find(|(e, _)| e == env)
            .map_or(BLACK, |(_, c)| *c)
    }

    fn row_px(&self) -> u32 {
        MARK_PX * self.headline.envs.len().max(1) as u32 + ROW_PAD_PX
    }

    /// The caption wrapped to the figure's width (at most ~120 characters a line).
    fn caption_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for line in &self.headline.caption {
            let mut cur = String::new();
            for word in line.split(' ') {
                if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > 132 {
                    out.push(std::mem::take(&mut cur));
                    cur.push_str("    ");
                }
                if !cur.is_empty() && !cur.ends_with("    ") {
                    cur.push(' ');
                }
                cur.push_str(word);
            }
            out.push(cur);
        }
        out
    }

    /// The x range (transformed): the data, ±2·margin and the A/A bands, padded.
    fn x_range(&self) -> (f64, f64) {
        let c = self.c();
        let m = self.headline.margin * 100.0;
        let (mut lo, mut hi) = (symlog(-2.0 * m, c), symlog(2.0 * m, c));
        let mut see = |v: f64| {
            if v.is_finite() {
                let t = symlog(v * 100.0, c);
                lo = lo.min(t);
                hi = hi.max(t);
            }
        };
        for r in &self.headline.rows {
            for o in
                r.aa.iter()
                    .chain(r.marks.iter().filter_map(|k| k.overhead.as_ref()))
            {
                see(o.estimate);
                see(o.ci95.low);
                see(o.ci95.high);
            }
        }
        let pad = (hi - lo) * 0.04;
        // Room on the right for the verdict text of the rightmost mark.
        (lo - pad, hi + (hi - lo) * 0.22)
    }

    fn draw_row<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        chart: &mut ChartContext<
            DB,
            Cartesian2d<
                plotters::coord::types::RangedCoordf64,
                plotters::coord::types::RangedCoordf64,
            >,
        >,
        row: &Row,
        yc_row: f64,
        (x0, x1): (f64, f64),
    ) -> DrawResult {
        let c = self.c();
        let t = |v: f64| symlog(v * 100.0, c);
        if let Some(aa) = row.aa {
            chart
                .draw_series([Rectangle::new(
                    [
                        (t(aa.ci95.low), yc_row - 0.45),
                        (t(aa.ci95.high), yc_row + 0.45),
                    ],
                    AA.mix(0.35).filled(),
                )])
                .map_err(err)?;
        }
        let k = self.headline.envs.len().max(1);
        let slot = 0.86 / k as f64;
        let text_style = font(TICK_PX);
        let (_, right_px) = {
            let (px, _) = chart.backend_coord(&(x1, 0.0));
            ((), px)
        };
        for mark in &row.marks {
            let j = self
                .headline
                .envs
                .iter()
                .position(|e| *e == mark.env)
                .unwrap_or(0);
            let yc = yc_row + 0.43 - slot * (j as f64 + 0.5);
            let color = self.color(&mark.env);
            let label = format!("{}: {}", mark.env, mark.text);
            let Some(o) = mark.overhead else {
                let (px, py) = chart.backend_coord(&(0.0, yc));
                root.draw(&Text::new(
                    label,
                    (px + 8, py),
                    text_style.pos(Pos::new(HPos::Left, VPos::Center)),
                ))
                .map_err(err)?;
                continue;
            };
            let (lo, est, hi) = (
                t(o.ci95.low).clamp(x0, x1),
                t(o.estimate).clamp(x0, x1),
                t(o.ci95.high).clamp(x0, x1),
            );
            let h = slot * 0.25;
            let stroke = color.stroke_width(3);
            chart
                .draw_series([
                    PathElement::new(vec![(lo, yc), (hi, yc)], stroke),
                    PathElement::new(vec![(lo, yc - h), (lo, yc + h)], stroke),
                    PathElement::new(vec![(hi, yc - h), (hi, yc + h)], stroke),
                ])
                .map_err(err)?;
            chart
                .draw_series([Circle::new((est, yc), 5, color.filled())])
                .map_err(err)?;
            // The verdict beside the interval: right of it, or left when it would not fit.
            let (hx, py) = chart.backend_coord(&(hi, yc));
            let (lx, _) = chart.backend_coord(&(lo, yc));
            let (w, _) = root.estimate_text_size(&label, &text_style).map_err(err)?;
            let (x, anchor) = if hx + 10 + w as i32 <= right_px {
                (hx + 10, HPos::Left)
            } else {
                (lx - 10, HPos::Right)
            };
            root.draw(&Text::new(
                label,
                (x, py),
                text_style.color(&BLACK).pos(Pos::new(anchor, VPos::Center)),
            ))
            .map_err(err)?;
        }
        Ok(())
    }
}

impl Figure for HeadlineFigure<'_> {
    fn size(&self) -> (u32, u32) {
        let caption = CAPTION_LINE_PX * self.caption_lines().len() as u32;
        let rows = self.row_px() * self.headline.rows.len().max(1) as u32;
        (WIDTH, 60 + caption + 44 + rows + 70)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let n = self.headline.rows.len().max(1);
        let c = self.c();
        let lines = self.caption_lines();
        let body = root
            .margin(10, 0, 0, 0)
            .titled(self.title, font(TITLE_PX))
            .map_err(err)?;
        let (caption_area, rest) = body.split_vertically(CAPTION_LINE_PX * lines.len() as u32 + 6);
        for (i, l) in lines.iter().enumerate() {
            caption_area
                .draw(&Text::new(
                    l.clone(),
                    (20, (i as u32 * CAPTION_LINE_PX) as i32 + 2),
                    font(LABEL_PX).pos(Pos::new(HPos::Left, VPos::Top)),
                ))
                .map_err(err)?;
        }
        let (legend_row, chart_area) = rest.split_vertically(44);
        let labels: Vec<String> = self.headline.rows.iter().map(Row::label).collect();
        let style = font(TICK_PX);
        let mut label_w = 0;
        for l in &labels {
            label_w = label_w.max(root.estimate_text_size(l, &style).map_err(err)?.0);
        }
        let (x0, x1) = self.x_range();
        let mut chart = ChartBuilder::on(&chart_area)
            .margin_top(4)
            .margin_right(20)
            .margin_left(10)
            .x_label_area_size(60)
            .y_label_area_size(label_w + 20)
            .build_cartesian_2d(x0..x1, -0.5..(n as f64 - 0.5))
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_desc("overhead vs native (right = worse; symmetric-log axis: linear within ±half the margin)")
            .axis_desc_style(font(LABEL_PX))
            .draw()
            .map_err(err)?;
        let (ylo, yhi) = (-0.5, n as f64 - 0.5);
        let m = self.headline.margin * 100.0;
        chart
            .draw_series([Rectangle::new(
                [(symlog(-m, c), ylo), (symlog(m, c), yhi)],
                BAND.mix(0.3).filled(),
            )])
            .map_err(err)?;
        // Ticks: grid lines and labels, leaving out labels too close to the last one.
        let mut last_px: Option<i32> = None;
        for v in TICKS_PCT {
            let x = symlog(v, c);
            if x < x0 || x > x1 {
                continue;
            }
            let grid = if v == 0.0 {
                BLACK.stroke_width(1)
            } else {
                RGBColor(225, 225, 225).stroke_width(1)
            };
            chart
                .draw_series([PathElement::new(vec![(x, ylo), (x, yhi)], grid)])
                .map_err(err)?;
            let (px, py) = chart.backend_coord(&(x, ylo));
            if last_px.is_some_and(|l| px - l < 46) {
                continue;
            }
            last_px = Some(px);
            root.draw(&Text::new(
                tick_label(v),
                (px, py + 8),
                font(TICK_PX).pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(err)?;
        }
        for i in 1..n {
            let y = i as f64 - 0.5;
            chart
                .draw_series([PathElement::new(
                    vec![(x0, y), (x1, y)],
                    RGBColor(200, 200, 200).stroke_width(1),
                )])
                .map_err(err)?;
        }
        for (i, row) in self.headline.rows.iter().enumerate() {
            let yc_row = (n - 1 - i) as f64;
            self.draw_row(root, &mut chart, row, yc_row, (x0, x1))?;
            let (px, py) = chart.backend_coord(&(x0, yc_row));
            root.draw(&Text::new(
                labels[i].clone(),
                (px - 8, py),
                style.pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(err)?;
        }
        let mut items: Vec<(String, RGBColor, f64)> = self
            .colors
            .iter()
            .map(|(e, c)| (e.clone(), *c, 1.0))
            .collect();
        items.push((
            format!("±{} margin", format_margin(self.headline.margin)),
            BAND,
            0.4,
        ));
        items.push(("A/A: native-b's 95% interval".into(), AA, 0.45));
        legend_in(&legend_row, &items)
    }
}

/// The headline figure of `headline`, environments coloured by their position in
/// `all_envs` (the run's environments).
pub(super) fn figure<'a>(
    title: &'a str,
    headline: &'a Headline,
    all_envs: &[String],
) -> HeadlineFigure<'a> {
    HeadlineFigure {
        title,
        headline,
        colors: colored(&headline.envs, all_envs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlog_reads_small_and_huge_overheads() {
        let c = 0.5;
        assert_eq!(symlog(0.0, c), 0.0);
        assert!(
            (symlog(-5.0, c) + symlog(5.0, c)).abs() < 1e-12,
            "symmetric"
        );
        // +0.3% sits visibly off zero, and 89× still fits on a few decades.
        assert!(symlog(0.3, c) > 0.2);
        assert!(symlog(8800.0, c) < 4.5);
        assert!(symlog(1.0, c) < symlog(2.0, c));
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(0.5), "+0.5%");
        assert_eq!(tick_label(-20.0), "−20%");
        assert_eq!(tick_label(100.0), "2×");
        assert_eq!(tick_label(9900.0), "100×");
    }
}
