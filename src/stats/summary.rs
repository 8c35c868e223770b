//! Simple per-(environment, workload, metric) summaries: n, median, MAD, min, max and the
//! ratio of medians to native.

use std::collections::BTreeMap;

use crate::results::{SampleRow, SummaryRow};

/// Median of a non-empty slice (sorted copy; the mean of the two middle values when even).
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "median of no values");
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median absolute deviation from the median (unscaled).
pub fn mad(values: &[f64]) -> f64 {
    let m = median(values);
    let dev: Vec<f64> = values.iter().map(|x| (x - m).abs()).collect();
    median(&dev)
}

/// Summaries of every (env, workload, metric) in `samples`, in a stable order (workload,
/// metric, env as first seen in `env_order`, then alphabetical). Counters are included.
pub fn summarize(samples: &[SampleRow], env_order: &[String]) -> Vec<SummaryRow> {
    let mut groups: BTreeMap<(String, String, String), Vec<&SampleRow>> = BTreeMap::new();
    for s in samples {
        groups
            .entry((s.workload.clone(), s.metric.clone(), s.env.clone()))
            .or_default()
            .push(s);
    }
    let rank = |env: &str| {
        env_order
            .iter()
            .position(|e| e == env)
            .unwrap_or(usize::MAX)
    };
    let mut rows: Vec<SummaryRow> = groups
        .iter()
        .map(|((workload, metric, env), rows)| {
            let values: Vec<f64> = rows.iter().map(|r| r.value).collect();
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let native_median = groups
                .get(&(workload.clone(), metric.clone(), "native".to_string()))
                .map(|n| median(&n.iter().map(|r| r.value).collect::<Vec<_>>()));
            let med = median(&values);
            SummaryRow {
                env: env.clone(),
                workload: workload.clone(),
                metric: metric.clone(),
                unit: rows[0].unit.clone(),
                better: rows[0].better.clone(),
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
            rank(&a.env),
            a.env.as_str(),
        )
            .cmp(&(
                b.workload.as_str(),
                b.metric.as_str(),
                rank(&b.env),
                b.env.as_str(),
            ))
    });
    rows
}
