//! Exports of a stored run for the dashboards and notebooks CI users already have:
//! `github-action-benchmark` JSON, Bencher Metric Format, JUnit XML, and the overhead table
//! as CSV or JSON with pandas-friendly column names (docs/EXPORTS.md). Every exporter
//! returns bytes, derived from the stored run alone, so its output can be compared exactly.

mod dashboards;
mod junit;

use std::path::Path;

use serde::Serialize;
use thiserror::Error;

use crate::analysis::{Analysis, NATIVE};
use crate::compare::{self, RunData};
use crate::report::headline::representatives;
use crate::report::{analyze_stored, Analyzed, RenderOptions, ReportError};
use crate::stats::verdict::format_margin;
use crate::workload::Profile;

pub use dashboards::{bencher, github_action_benchmark, GithubBenchmarkEntry};
pub use junit::junit;

/// The export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON list `{name, unit, value, range, extra}` for github-action-benchmark's
    /// `customSmallerIsBetter` tool: one entry per environment and metric, the overhead in %.
    GithubActionBenchmark,
    /// Bencher Metric Format JSON: `{benchmark: {overhead-pct: {value, lower_value, upper_value}}}`.
    Bencher,
    /// JUnit XML: one test case per verdict (failure when *above* the margin) and, with
    /// --baseline, per regression check (failure when *regressed*).
    Junit,
    /// The overhead table as CSV (one row per environment and metric).
    Csv,
    /// The overhead table as a JSON list of records (pandas.read_json reads it as is).
    Json,
}

#[derive(Debug, Error)]
pub enum ExportError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("cannot read the baseline run {path}: {source}")]
    Baseline {
        path: String,
        source: crate::results::LoadError,
    },
    #[error("cannot encode the {format} export: {message}")]
    Encode {
        format: &'static str,
        message: String,
    },
}

/// One row of the overhead table: one environment against native on one metric.
/// Percentages are in percent (`overhead_pct` = 5.0 is 5% worse than native).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OverheadRecord {
    pub workload: String,
    pub metric: String,
    pub unit: String,
    /// `higher` or `lower` (which values of the metric are better).
    pub better: String,
    pub env: String,
    /// Whether this metric is its workload's representative one (a row of the headline).
    pub headline: bool,
    pub n_pairs: usize,
    pub native_median: Option<f64>,
    pub env_median: Option<f64>,
    pub overhead_pct: Option<f64>,
    pub ci95_low_pct: Option<f64>,
    pub ci95_high_pct: Option<f64>,
    pub ci90_low_pct: Option<f64>,
    pub ci90_high_pct: Option<f64>,
    /// `within`, `above`, `below`, `inconclusive`, `too-few-rounds`.
    pub verdict: String,
    /// The verdict in words, with the margin (`within ±1%`).
    pub verdict_text: String,
    pub margin_pct: f64,
}

/// The overhead table of `analysis` (a run of `profile`): every shown metric, every
/// compared environment (native-b included, as the A/A floor), in report order.
pub fn overhead_records(analysis: &Analysis, profile: Profile) -> Vec<OverheadRecord> {
    let margin = analysis.config.margin;
    let heads: Vec<(String, String)> = representatives(analysis, profile)
        .into_iter()
        .map(|m| (m.workload.clone(), m.metric.clone()))
        .collect();
    let pct = |x: f64| x * 100.0;
    let mut out = Vec::new();
    for m in analysis.shown_metrics() {
        let native_median = m.samples_of(NATIVE).map(|s| s.median);
        for c in &m.comparisons {
            let o = c.overhead;
            out.push(OverheadRecord {
                workload: m.workload.clone(),
                metric: m.metric.clone(),
                unit: m.unit.clone(),
                better: m.better.to_string(),
                env: c.env.clone(),
                headline: heads.contains(&(m.workload.clone(), m.metric.clone())),
                n_pairs: c.n_pairs,
                native_median,
                env_median: m.samples_of(&c.env).map(|s| s.median),
                overhead_pct: o.map(|o| pct(o.estimate)),
                ci95_low_pct: o.map(|o| pct(o.ci95.low)),
                ci95_high_pct: o.map(|o| pct(o.ci95.high)),
                ci90_low_pct: o.map(|o| pct(o.ci90.low)),
                ci90_high_pct: o.map(|o| pct(o.ci90.high)),
                verdict: c.verdict.key().to_string(),
                verdict_text: c.verdict.describe(margin),
                margin_pct: pct(margin),
            });
        }
    }
    out
}

/// The overhead table as CSV.
pub fn csv(records: &[OverheadRecord]) -> Result<Vec<u8>, ExportError> {
    let encode = |e: &dyn std::fmt::Display| ExportError::Encode {
        format: "csv",
        message: e.to_string(),
    };
    let mut w = ::csv::Writer::from_writer(Vec::new());
    for r in records {
        w.serialize(r).map_err(|e| encode(&e))?;
    }
    if records.is_empty() {
        // No rows: still a header, so a notebook reads an empty table with its columns.
        w.write_record(OVERHEAD_COLUMNS).map_err(|e| encode(&e))?;
    }
    w.into_inner().map_err(|e| encode(&e))
}

/// The columns of [`OverheadRecord`], in order (a unit test keeps them in step).
pub const OVERHEAD_COLUMNS: [&str; 17] = [
    "workload",
    "metric",
    "unit",
    "better",
    "env",
    "headline",
    "n_pairs",
    "native_median",
    "env_median",
    "overhead_pct",
    "ci95_low_pct",
    "ci95_high_pct",
    "ci90_low_pct",
    "ci90_high_pct",
    "verdict",
    "verdict_text",
    "margin_pct",
];

/// The overhead table as a pretty JSON list of records, ending with a newline.
pub fn json(records: &[OverheadRecord]) -> Result<Vec<u8>, ExportError> {
    let mut bytes = serde_json::to_vec_pretty(records).map_err(|e| ExportError::Encode {
        format: "json",
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Exports the run in `dir` as `format`. `baseline` (a run directory) adds the regression
/// checks of `compare` to the JUnit export; other formats ignore it.
pub fn export(dir: &Path, format: Format, baseline: Option<&Path>) -> Result<Vec<u8>, ExportError> {
    let Analyzed { run, analysis, .. } = analyze_stored(dir, RenderOptions::default())?;
    let records = overhead_records(&analysis, run.config.profile);
    match format {
        Format::GithubActionBenchmark => github_action_benchmark(&records),
        Format::Bencher => bencher(&records),
        Format::Csv => csv(&records),
        Format::Json => json(&records),
        Format::Junit => {
            let comparison = match baseline {
                None => None,
                Some(b) => {
                    let load = |p: &Path| {
                        crate::results::load_run(p).map_err(|source| ExportError::Baseline {
                            path: p.display().to_string(),
                            source,
                        })
                    };
                    let base: RunData = load(b)?;
                    let current: RunData = crate::results::load_run(dir)
                        .map_err(|e| ExportError::Report(ReportError::ReadRun(e)))?;
                    Some(compare::compare(
                        &base,
                        &current,
                        &compare::Options::default(),
                    ))
                }
            };
            junit(
                &run.run_id,
                &records,
                comparison.as_ref(),
                &format_margin(analysis.config.margin),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listed_columns_are_the_records_fields() {
        let r = OverheadRecord {
            workload: "w".into(),
            metric: "m".into(),
            unit: "u".into(),
            better: "lower".into(),
            env: "vm".into(),
            headline: true,
            n_pairs: 1,
            native_median: None,
            env_median: None,
            overhead_pct: None,
            ci95_low_pct: None,
            ci95_high_pct: None,
            ci90_low_pct: None,
            ci90_high_pct: None,
            verdict: "x".into(),
            verdict_text: "x".into(),
            margin_pct: 1.0,
        };
        let text = String::from_utf8(csv(&[r]).unwrap()).unwrap();
        let header = text.lines().next().unwrap();
        assert_eq!(header, OVERHEAD_COLUMNS.join(","));
        let empty = String::from_utf8(csv(&[]).unwrap()).unwrap();
        assert!(empty.starts_with("workload,metric,"));
    }
}
