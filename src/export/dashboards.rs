//! The benchmark-dashboard exports: github-action-benchmark's custom JSON and Bencher
//! Metric Format. Both carry each environment's overhead against native in percent
//! (positive = worse than native, so smaller is better whatever the metric's direction),
//! named `ENV/WORKLOAD/METRIC` so a series keeps its name from run to run.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ExportError, OverheadRecord};

/// One entry of github-action-benchmark's custom JSON (the `customSmallerIsBetter` tool):
/// `{name, unit, value, range, extra}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GithubBenchmarkEntry {
    pub name: String,
    pub unit: String,
    pub value: f64,
    /// Half the 95% interval, in the unit: `±0.42`.
    pub range: String,
    /// The interval, the verdict and the medians, for the tooltip.
    pub extra: String,
}

fn series_name(r: &OverheadRecord) -> String {
    format!("{}/{}/{}", r.env, r.workload, r.metric)
}

fn encode<T: Serialize>(format: &'static str, value: &T) -> Result<Vec<u8>, ExportError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| ExportError::Encode {
        format,
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The github-action-benchmark entries: one per record with an estimate (records without
/// paired blocks have no value to chart and are left out).
pub fn github_action_benchmark_entries(records: &[OverheadRecord]) -> Vec<GithubBenchmarkEntry> {
    records
        .iter()
        .filter_map(|r| {
            let (v, lo, hi) = (r.overhead_pct?, r.ci95_low_pct?, r.ci95_high_pct?);
            let medians = match (r.native_median, r.env_median) {
                (Some(n), Some(e)) => format!("; medians native {n:.6} / {} {e:.6} {}", r.env, r.unit),
                _ => String::new(),
            };
            Some(GithubBenchmarkEntry {
                name: format!("{} overhead", series_name(r)),
                unit: "%".into(),
                value: round3(v),
                range: format!("±{:.3}", (hi - lo) / 2.0),
                extra: format!(
                    "95% interval [{lo:+.3}%, {hi:+.3}%]; verdict: {}; {} paired blocks; {} better{medians}",
                    r.verdict_text, r.n_pairs, r.better
                ),
            })
        })
        .collect()
}

/// `github-action-benchmark` JSON (feed it with `tool: customSmallerIsBetter`).
pub fn github_action_benchmark(records: &[OverheadRecord]) -> Result<Vec<u8>, ExportError> {
    encode(
        "github-action-benchmark",
        &github_action_benchmark_entries(records),
    )
}

/// One Bencher metric: value with its 95% interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
struct BencherMetric {
    value: f64,
    lower_value: f64,
    upper_value: f64,
}

/// Bencher Metric Format: `{"ENV/WORKLOAD/METRIC": {"overhead-pct": {value, lower_value,
/// upper_value}}}` (the measure `overhead-pct`, in percent).
pub fn bencher(records: &[OverheadRecord]) -> Result<Vec<u8>, ExportError> {
    let mut out: BTreeMap<String, BTreeMap<&'static str, BencherMetric>> = BTreeMap::new();
    for r in records {
        let (Some(v), Some(lo), Some(hi)) = (r.overhead_pct, r.ci95_low_pct, r.ci95_high_pct)
        else {
            continue;
        };
        out.entry(series_name(r)).or_default().insert(
            "overhead-pct",
            BencherMetric {
                value: round3(v),
                lower_value: round3(lo),
                upper_value: round3(hi),
            },
        );
    }
    encode("bencher", &out)
}
