//! The claims' figure (`claims.svg` and `claims.png`): (a) claim 3's share of one CPU over
//! time under `--cpus 0.1`, from cgroup accounting and from throughput, against the limit;
//! (b) claim 6's start-up distributions per environment on a log axis, every launch a dot,
//! the trimmed mean's 95% interval a bar.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::cgroups::CpuEvidence;
use super::startup::StartDistribution;
use crate::report::plot::{env_color, register_font, FONT_FAMILY};

const W: u32 = 1400;
const H: u32 = 600;

type Drawn = Result<(), String>;

fn e<T: std::fmt::Display>(x: T) -> String {
    x.to_string()
}

fn font(px: u32) -> TextStyle<'static> {
    (FONT_FAMILY, px).into_font().color(&BLACK)
}

fn empty<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, title: &str) -> Drawn {
    area.titled(title, font(20))
        .map_err(e)?
        .draw_text("not run", &font(16), (20, 40))
        .map_err(e)
}

fn cpu_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, c: Option<&CpuEvidence>) -> Drawn {
    let title = "(a) claim 3: share of one CPU under --cpus 0.1";
    let Some(c) = c else {
        return empty(area, title);
    };
    let t_max = c
        .accounted
        .iter()
        .chain(&c.throughput)
        .map(|s| s.t_s)
        .fold(1.0, f64::max);
    let y_max = c
        .accounted
        .iter()
        .chain(&c.throughput)
        .map(|s| s.share)
        .fold(c.cpus * 2.0, f64::max)
        * 100.0
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, font(20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max * 1.02, 0.0..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the hog started")
        .y_desc("% of one CPU")
        .label_style(font(14))
        .axis_desc_style(font(16))
        .draw()
        .map_err(e)?;
    let limit = c.cpus * 100.0;
    chart
        .draw_series(LineSeries::new(
            [(0.0, limit), (t_max * 1.02, limit)],
            RGBColor(120, 120, 120).stroke_width(2),
        ))
        .map_err(e)?
        .label(format!("limit {limit:.0}%"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RGBColor(120, 120, 120)));
    let blue = RGBColor(31, 119, 180);
    let orange = RGBColor(230, 120, 20);
    chart
        .draw_series(LineSeries::new(
            c.accounted.iter().map(|s| (s.t_s, s.share * 100.0)),
            blue.stroke_width(2),
        ))
        .map_err(e)?
        .label("cgroup CPU accounting")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], blue));
    chart
        .draw_series(
            c.throughput
                .iter()
                .map(|s| Circle::new((s.t_s, s.share * 100.0), 4, orange.filled())),
        )
        .map_err(e)?
        .label("hog throughput vs unlimited")
        .legend(move |(x, y)| Circle::new((x + 10, y), 4, orange.filled()));
    chart
        .configure_series_labels()
        .label_font(font(14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)
}

fn start_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    d: &[StartDistribution],
) -> Drawn {
    let title = "(b) claim 6: launch to first instruction";
    if d.is_empty() {
        return empty(area, title);
    }
    let all = d
        .iter()
        .flat_map(|x| x.values_us.iter().copied())
        .filter(|v| *v > 0.0);
    let (lo, hi) = all.fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = (lo / 1.5, hi * 1.5);
    let n = d.len();
    let mut chart = ChartBuilder::on(area)
        .caption(title, font(20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(110)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..n as f64)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("µs (log scale)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_labels(0)
        .disable_y_mesh()
        .label_style(font(14))
        .axis_desc_style(font(16))
        .draw()
        .map_err(e)?;
    for (i, x) in d.iter().enumerate() {
        let y = n as f64 - i as f64 - 0.5;
        let color = env_color(&x.env, i);
        chart
            .draw_series(x.values_us.iter().enumerate().map(|(k, v)| {
                let jitter = ((k * 37) % 11) as f64 / 11.0 * 0.4 - 0.2;
                Circle::new((*v, y + jitter), 3, color.mix(0.6).filled())
            }))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                [(x.ci95_us.0, y - 0.3), (x.ci95_us.1, y - 0.3)],
                BLACK.stroke_width(3),
            )))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                x.env.clone(),
                (lo * 1.02, y + 0.35),
                font(15),
            )))
            .map_err(e)?;
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    cpu: Option<&CpuEvidence>,
    starts: &[StartDistribution],
) -> Drawn {
    root.fill(&WHITE).map_err(e)?;
    let (a, b) = root.split_horizontally(W / 2);
    cpu_panel(&a, cpu)?;
    start_panel(&b, starts)?;
    root.present().map_err(e)
}

/// Write `claims.svg` and `claims.png` into `dir`.
pub fn write(
    dir: &Path,
    cpu: Option<&CpuEvidence>,
    starts: &[StartDistribution],
) -> Result<Vec<PathBuf>> {
    register_font().context("drawing the claims figure")?;
    let svg = dir.join("claims.svg");
    let png = dir.join("claims.png");
    draw(
        &SVGBackend::new(&svg, (W, H)).into_drawing_area(),
        cpu,
        starts,
    )
    .map_err(|m| anyhow::anyhow!("drawing {}: {m}", svg.display()))?;
    draw(
        &BitMapBackend::new(&png, (W, H)).into_drawing_area(),
        cpu,
        starts,
    )
    .map_err(|m| anyhow::anyhow!("drawing {}: {m}", png.display()))?;
    Ok(vec![svg, png])
}
