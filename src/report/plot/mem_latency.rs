//! The figure `mem_latency`: `mem.latency`'s dependent-load latency (median over rounds of
//! the median-based `ns_per_access@<size>`) against working-set size per environment, both
//! axes logarithmic.

use crate::analysis::Analysis;
use crate::workload::working_set_bytes;

use super::frame::{bytes_label, colored, env_color};
use super::line_chart::{Line, LineFigure, LinePanel};

/// The latency curves of `mem.latency`'s `ns_per_access@<size>` metrics; `None` without any.
pub(super) fn figure(analysis: &Analysis) -> Option<LineFigure> {
    let mut lines: Vec<Line> = Vec::new();
    let mut sizes: Vec<f64> = Vec::new();
    let mut unit = String::new();
    for m in analysis
        .shown_metrics()
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
