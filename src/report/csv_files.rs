//! `summary.csv` and `overhead.csv` as bytes (exact, reproducible output: the same
//! analysis always gives the same bytes).

use serde::Serialize;

use crate::analysis::{summarize, Analysis, NATIVE};
use crate::results::{SampleRow, SummaryRow};

/// One row of `overhead.csv`: one environment against native on one metric.
///
/// `overhead` and the interval bounds are fractions (+0.05 = 5% worse than native; see
/// `stats::paired`); empty when there is no paired round. `verdict` is `within`, `above`,
/// `below`, `inconclusive` or `too-few-rounds`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OverheadRow {
    pub workload: String,
    pub metric: String,
    pub unit: String,
    pub better: String,
    pub env: String,
    pub n_pairs: usize,
    pub native_median: Option<f64>,
    pub env_median: f64,
    pub overhead: Option<f64>,
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
    pub ci90_low: Option<f64>,
    pub ci90_high: Option<f64>,
    pub verdict: String,
    pub rounds_needed: Option<u64>,
    /// Outliers among this environment's samples (modified z-score, kept in the data).
    pub outliers: usize,
    /// Whether this environment's first rounds were significantly worse than the rest.
    pub warmup_slow: bool,
    pub margin: f64,
    pub resamples: usize,
    pub seed: u64,
}

/// The rows of `overhead.csv` for `analysis`.
pub fn overhead_rows(analysis: &Analysis) -> Vec<OverheadRow> {
    let mut rows = Vec::new();
    for m in &analysis.metrics {
        let native_median = m.samples_of(NATIVE).map(|s| s.median);
        for c in &m.comparisons {
            let Some(s) = m.samples_of(&c.env) else {
                continue;
            };
            let o = c.overhead;
            rows.push(OverheadRow {
                workload: m.workload.clone(),
                metric: m.metric.clone(),
                unit: m.unit.clone(),
                better: m.better.as_str().to_string(),
                env: c.env.clone(),
                n_pairs: c.n_pairs,
                native_median,
                env_median: s.median,
                overhead: o.map(|o| o.estimate),
                ci95_low: o.map(|o| o.ci95.low),
                ci95_high: o.map(|o| o.ci95.high),
                ci90_low: o.map(|o| o.ci90.low),
                ci90_high: o.map(|o| o.ci90.high),
                verdict: c.verdict.key().to_string(),
                rounds_needed: c.verdict.rounds_needed(),
                outliers: s.outliers,
                warmup_slow: s.warmup.is_some(),
                margin: analysis.config.margin,
                resamples: analysis.config.resamples,
                seed: analysis.config.seed,
            });
        }
    }
    rows
}

/// Serialises `rows` after `header` (written by hand so that an empty table still names its
/// columns; a test checks it matches the serde field names).
fn to_csv<T: Serialize>(rows: &[T], header: &[&str]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        w.serialize(r)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

const OVERHEAD_HEADER: &[&str] = &[
    "workload",
    "metric",
    "unit",
    "better",
    "env",
    "n_pairs",
    "native_median",
    "env_median",
    "overhead",
    "ci95_low",
    "ci95_high",
    "ci90_low",
    "ci90_high",
    "verdict",
    "rounds_needed",
    "outliers",
    "warmup_slow",
    "margin",
    "resamples",
    "seed",
];

const SUMMARY_HEADER: &[&str] = &[
    "env",
    "workload",
    "metric",
    "unit",
    "better",
    "n",
    "median",
    "mad",
    "min",
    "max",
    "ratio_to_native",
];

/// `overhead.csv`.
pub fn overhead_csv(analysis: &Analysis) -> Result<Vec<u8>, csv::Error> {
    to_csv(&overhead_rows(analysis), OVERHEAD_HEADER)
}

/// `summary.csv`: the simple per-(environment, workload, metric) summaries of
/// `analysis::summarize`, counters included.
pub fn summary_csv(samples: &[SampleRow]) -> Result<Vec<u8>, csv::Error> {
    let rows: Vec<SummaryRow> = summarize(samples);
    to_csv(&rows, SUMMARY_HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_header<T: Serialize>(row: &T) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(row).unwrap();
        let bytes = w.into_inner().unwrap();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string()
    }

    #[test]
    fn hand_written_headers_match_serde() {
        let s = SummaryRow {
            env: String::new(),
            workload: String::new(),
            metric: String::new(),
            unit: String::new(),
            better: None,
            n: 0,
            median: 0.0,
            mad: 0.0,
            min: 0.0,
            max: 0.0,
            ratio_to_native: None,
        };
        assert_eq!(serde_header(&s), SUMMARY_HEADER.join(","));
        let o = OverheadRow {
            workload: String::new(),
            metric: String::new(),
            unit: String::new(),
            better: String::new(),
            env: String::new(),
            n_pairs: 0,
            native_median: None,
            env_median: 0.0,
            overhead: None,
            ci95_low: None,
            ci95_high: None,
            ci90_low: None,
            ci90_high: None,
            verdict: String::new(),
            rounds_needed: None,
            outliers: 0,
            warmup_slow: false,
            margin: 0.0,
            resamples: 0,
            seed: 0,
        };
        assert_eq!(serde_header(&o), OVERHEAD_HEADER.join(","));
    }
}
