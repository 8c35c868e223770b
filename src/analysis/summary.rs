//! The simple per-(environment, workload, metric) summaries of `summary.csv` and `run.json`.

use std::collections::BTreeMap;

use crate::results::{label_rank, SampleRow, SummaryRow, NATIVE};
use crate::stats::summary::{mad, median};

/// Simple summaries of every (env, workload, metric) in `samples` (n, median, MAD, min,
/// max, ratio of medians to native), for `summary.csv` and `run.json`, in a stable order:
/// workload, metric, then environment in the one label order. Counters are included.
pub fn summarize(samples: &[SampleRow]) -> Vec<SummaryRow> {
    let mut groups: BTreeMap<(String, String, String), Vec<&SampleRow>> = BTreeMap::new();
    for s in samples {
        groups
            .entry((s.workload.clone(), s.metric.clone(), s.env.clone()))
            .or_default()
            .push(s);
    }
    let mut rows: Vec<SummaryRow> = groups
        .iter()
        .map(|((workload, metric, env), rows)| {
            let values: Vec<f64> = rows.iter().map(|r| r.value).collect();
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let native_median = groups
                .get(&(workload.clone(), metric.clone(), NATIVE.to_string()))
                .map(|n| median(&n.iter().map(|r| r.value).collect::<Vec<_>>()));
            let med = median(&values);
            SummaryRow {
                env: env.clone(),
                workload: workload.clone(),
                metric: metric.clone(),
                unit: rows[0].unit.clone(),
                better: rows[0].better,
                n: values.len(),
                median: med,
                mad: mad(&values),
                min,
                max,
                ratio_to_native: native_median.filter(|m| *m != 0.0).map(|m| med / m),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (
            a.workload.as_str(),
            a.metric.as_str(),
            label_rank(&a.env),
            a.env.as_str(),
        )
            .cmp(&(
                b.workload.as_str(),
                b.metric.as_str(),
                label_rank(&b.env),
                b.env.as_str(),
            ))
    });
    rows
}
