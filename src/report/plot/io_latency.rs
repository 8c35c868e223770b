//! The figure `io_latency`: per IO workload and operation, each environment's latency
//! percentiles (median over rounds), x spaced by nines, y logarithmic.

use crate::analysis::Analysis;
use crate::workload::parse_percentile_metric;

use super::frame::{colored, env_color, percentile_label};
use super::line_chart::{Line, LineFigure, LinePanel};

/// One environment's percentile curve: (env, (percentile, µs)).
type EnvCurve = (String, Vec<(f64, f64)>);
/// One IO panel: ((workload, op), curves).
type IoPanel = ((String, String), Vec<EnvCurve>);

/// The percentile curves of every `<op>_p<percentile>_us` metric; `None` without any.
pub(super) fn figure(analysis: &Analysis) -> Option<LineFigure> {
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
