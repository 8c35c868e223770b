//! The report's account of precision: how the measurement was spent and why it stopped,
//! per metric and environment the 95% half-width reached against the run's target (and the
//! time that would reach it at the spread observed), the samples disturbed by interference,
//! and intermittent costs seen as a gap between mean- and median-based values
//! (docs/METHODOLOGY.md, "Budget and precision").

use crate::analysis::{fmt_duration, time_needed_text, Analysis, DISTURBED_RUN_DELAY};
use crate::results::RunFile;
use crate::stats::verdict::format_margin;
use crate::workload::mean_companion_of;

use super::content::{overhead_interval_text, pct};
use super::document::{Document, Table};

/// The precision target of a run: its `--precision`, or for runs without one the margin.
pub fn target(run: &RunFile, analysis: &Analysis) -> f64 {
    run.config
        .options
        .get("precision_pct")
        .and_then(|p| p.parse::<f64>().ok())
        .map(|p| p / 100.0)
        .unwrap_or(analysis.config.margin)
}

/// The "Precision" section.
pub fn section(doc: &mut Document, run: &RunFile, analysis: &Analysis) {
    let target = target(run, analysis);
    doc.heading(1, "Precision");
    if let Some(m) = &run.measurement {
        let why = match m.stop.as_str() {
            "reached" => "every estimate reached the precision target".to_string(),
            "budget-spent" => "the budget was spent".to_string(),
            "fixed" => "the fixed number of blocks was taken".to_string(),
            other => other.to_string(),
        };
        let blocks: Vec<String> = m.blocks.iter().map(|(w, b)| format!("{w} {b}")).collect();
        doc.paragraph(format!(
            "Measuring took {} and stopped because {why}. Measured blocks per workload \
             (a block is the workload once in every environment, back to back): {}.",
            fmt_duration(m.elapsed_s),
            blocks.join(", ")
        ));
    }
    let mut reached = 0;
    let mut total = 0;
    let mut rows = Vec::new();
    for m in analysis.shown_metrics() {
        for c in &m.comparisons {
            let Some(o) = c.overhead else { continue };
            total += 1;
            match m.blocks_to_reach(c, target) {
                None => reached += 1,
                Some(more) => rows.push(vec![
                    m.label(),
                    c.env.clone(),
                    c.n_pairs.to_string(),
                    format!("±{}", pct(o.half_width()).trim_start_matches('+')),
                    time_needed_text(m.seconds_for(more), analysis.measured_seconds),
                ]),
            }
        }
    }
    doc.paragraph(format!(
        "{reached} of {total} estimates reached a 95% half-width of ±{} (the target).{}",
        format_margin(target),
        if rows.is_empty() {
            String::new()
        } else {
            " The others, with the measuring that would reach the target at the spread \
             observed:"
                .to_string()
        }
    ));
    if !rows.is_empty() {
        doc.table(Table {
            header: vec![
                "metric".into(),
                "environment".into(),
                "blocks".into(),
                "half-width".into(),
                "to reach the target".into(),
            ],
            rows,
            right_aligned: vec![2, 3],
        });
    }
    let disturbed: Vec<String> = analysis
        .disturbances
        .iter()
        .map(|d| {
            format!(
                "{} {} of {} ({} with steal time)",
                d.env, d.disturbed, d.accounted, d.stolen
            )
        })
        .collect();
    if !disturbed.is_empty() {
        doc.paragraph(format!(
            "Disturbed samples (the hypervisor stole time from the measured CPU, or the \
             measuring thread waited for it longer than {:.0}% of the sample), kept in the data \
             and counted here: {}.",
            DISTURBED_RUN_DELAY * 100.0,
            disturbed.join("; ")
        ));
    }
    let gaps = intermittent_costs(analysis);
    if !gaps.is_empty() {
        doc.paragraph(
            "Intermittent costs: where the mean-based value of a metric is worse than its \
             median-based value by more than the margin, something costs time now and then \
             (timer interrupts, VM exits, CPU-quota throttling) that the median leaves out:"
                .to_string(),
        );
        doc.list(gaps);
    }
}

/// Metrics whose mean-based overhead exceeds the median-based one by more than the margin,
/// with non-overlapping 95% intervals.
pub fn intermittent_costs(analysis: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    for mean_m in &analysis.metrics {
        let Some(base) = mean_companion_of(&mean_m.metric) else {
            continue;
        };
        let Some(median_m) = analysis
            .metrics
            .iter()
            .find(|m| m.workload == mean_m.workload && m.metric == base)
        else {
            continue;
        };
        for c in &mean_m.comparisons {
            let (Some(mo), Some(Some(bo))) =
                (c.overhead, median_m.comparison(&c.env).map(|b| b.overhead))
            else {
                continue;
            };
            if mo.estimate - bo.estimate > analysis.config.margin && mo.ci95.low > bo.ci95.high {
                out.push(format!(
                    "{} in {}: mean-based {} against median-based {}",
                    median_m.label(),
                    c.env,
                    overhead_interval_text(mo),
                    overhead_interval_text(bo)
                ));
            }
        }
    }
    out
}
