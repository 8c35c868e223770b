//! What every figure shares: the embedded font and text sizes, environment colours,
//! legends, the percent-rows frame of the overhead and distribution charts, axis ranges
//! and tick formatters, and the display labels of percentiles and sizes.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::stats::verdict::format_margin;

use super::PlotError;

static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const FONT_NAME: &str = "sans-serif";

pub(super) fn ensure_font() -> Result<(), PlotError> {
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

/// `envs` with their colours; a colour is picked by the position in `all` (the run's
/// environments), so an environment keeps its colour in every figure.
pub(super) fn colored(envs: &[String], all: &[String]) -> Vec<(String, RGBColor)> {
    envs.iter()
        .map(|e| {
            (
                e.clone(),
                env_color(e, all.iter().position(|a| a == e).unwrap_or(0)),
            )
        })
        .collect()
}

const BAND: RGBColor = RGBColor(120, 200, 120);
pub(super) const TITLE_PX: u32 = 26;
pub(super) const LABEL_PX: u32 = 16;
pub(super) const TICK_PX: u32 = 14;
/// Room between a chart's title and its plotting area, for the legend row.
const LEGEND_ROOM: u32 = 44;

pub(super) type DrawResult = Result<(), String>;

pub(super) fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

pub(super) fn font(px: u32) -> TextStyle<'static> {
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

/// A legend centred in `area`.
pub(super) fn legend_in<DB: DrawingBackend>(
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

/// Legend items for the percent charts: one per environment, then the shaded margin band.
pub(super) fn env_and_margin_legend(
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

/// Percent values beyond ±CAP_PCT do not stretch a percent axis; they are drawn at its edge.
pub(super) const CAP_PCT: f64 = 50.0;

/// X range for percentages: covers the data and ±2·margin, clipped to ±`cap` when the
/// data go further (clipped marks are labelled).
pub(super) fn pct_range(
    values: impl Iterator<Item = f64>,
    margin_pct: f64,
    cap: f64,
) -> (f64, f64) {
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
pub(super) fn pct_tick(span: f64) -> impl Fn(&f64) -> String {
    move |x: &f64| {
        if span < 8.0 {
            format!("{:+.1}%", x)
        } else {
            format!("{:+.0}%", x)
        }
    }
}

/// Tick label on a logarithmic axis: only the 1-2-5 values are labelled.
pub(super) fn log_tick(y: &f64) -> String {
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
pub(super) fn row_labels<
    DB: DrawingBackend,
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
>(
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

/// The frame shared by the per-metric percent charts (overhead bars, distributions): title,
/// room for a legend, one row per label, a percent x axis, the shaded ±margin band, the
/// zero line and row separators. Returns the legend area and the chart to draw rows into.
#[allow(clippy::type_complexity)]
pub(super) fn percent_rows_frame<'a, DB: DrawingBackend>(
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

/// A working-set size for an axis: `64 KiB`, `1.5 MiB`, `512 B`.
pub(super) fn bytes_label(b: f64) -> String {
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

/// A percentile for an axis: `p50`, `p99.9`.
pub(super) fn percentile_label(p: f64) -> String {
    let s = format!("{p:.2}");
    format!("p{}", s.trim_end_matches('0').trim_end_matches('.'))
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
