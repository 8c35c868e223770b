//! The analysis of one run's samples: groups `samples.csv` rows by workload and metric,
//! and drives the pure statistics (`stats::*`) to get, per environment, the overhead
//! against native with bootstrap intervals, the verdict against the margin, outlier counts
//! and warm-up notes. No IO, no plotting: reports render an [`Analysis`].
//!
//! Statistical choices (stated once, used everywhere):
//! - overhead = "how much worse than native" (`stats::paired`): `native/env − 1` for
//!   higher-is-better metrics, `env/native − 1` for lower-is-better ones;
//! - point estimate = `exp(mean of the paired per-round log ratios) − 1` (a geometric-mean
//!   ratio);
//! - intervals = seeded percentile bootstrap of that mean (`stats::bootstrap`), 10 000
//!   resamples by default, 95% shown, 90% used for the *within* test; in circular blocks
//!   when the log ratios are autocorrelated (iid resampling, as always, below 20 rounds);
//! - verdicts as in `stats::verdict`; outliers as in `stats::outliers` (flagged and counted
//!   over each environment's own samples, never dropped);
//! - `counter.*` rows and rows without a `better` direction are excluded from overhead.
//!
//! Each comparison bootstraps with its own ChaCha8 stream, seeded with
//! `seed XOR fnv1a64(env NUL workload NUL metric)`, so a result depends only on the run's
//! seed and its own samples — not on which other workloads or environments ran.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::results::{order_labels, SampleRow};
mod cost;
mod ladder;
mod summary;

pub use crate::results::{NATIVE, NATIVE_B};
use crate::stats::bootstrap::{estimate, stream_seed, Interval, DEFAULT_RESAMPLES};
use crate::stats::outliers::{count_outliers, warmup_drift, WarmupDrift};
use crate::stats::paired::{overhead_from_log, pair, Better};
use crate::stats::summary::{mad, median, std_dev, Estimator};
use crate::stats::verdict::{decide, Verdict, VerdictInput, DEFAULT_MARGIN};
use crate::workload;
pub use cost::{fmt_duration, time_needed_text, Disturbance, DISTURBED_RUN_DELAY};
pub use ladder::{ladder, tier, Rung};
pub use summary::summarize;

#[derive(Debug, Error, PartialEq)]
pub enum AnalysisError {
    #[error("invalid margin {margin}: give a fraction between 0 and 1 exclusive (0.01 = 1%)")]
    InvalidMargin { margin: f64 },
    #[error("invalid resample count 0: use at least 1 (the default is {DEFAULT_RESAMPLES})")]
    NoResamples,
}

/// Parameters of an analysis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnalysisConfig {
    /// Margin M as a fraction (0.01 = 1%).
    pub margin: f64,
    /// Bootstrap seed (by default the run's seed).
    pub seed: u64,
    /// Bootstrap resamples.
    pub resamples: usize,
    /// The location estimate of the paired log ratios (the run records which).
    pub estimator: Estimator,
}

impl AnalysisConfig {
    /// Default margin (1%) and resamples (10 000) with the given seed.
    pub fn new(seed: u64) -> AnalysisConfig {
        AnalysisConfig {
            margin: DEFAULT_MARGIN,
            seed,
            resamples: DEFAULT_RESAMPLES,
            estimator: Estimator::Mean,
        }
    }

    fn validate(&self) -> Result<(), AnalysisError> {
        if !(self.margin > 0.0 && self.margin < 1.0) {
            return Err(AnalysisError::InvalidMargin {
                margin: self.margin,
            });
        }
        if self.resamples == 0 {
            return Err(AnalysisError::NoResamples);
        }
        Ok(())
    }
}

/// One environment's samples of one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvSamples {
    pub env: String,
    /// `(round, value)`, ascending by round.
    pub values: Vec<(u32, f64)>,
    pub median: f64,
    pub mad: f64,
    /// Values flagged by the modified z-score (kept in the data).
    pub outliers: usize,
    /// Set when the first third of the rounds is significantly worse than the rest.
    pub warmup: Option<WarmupDrift>,
}

/// Overhead estimate of one environment for one metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Overhead {
    /// Point estimate (fraction; +0.05 = 5% worse than native).
    pub estimate: f64,
    pub ci95: Interval,
    pub ci90: Interval,
    /// Standard deviation of the paired log ratios.
    pub log_sd: f64,
    /// Block length of the bootstrap behind the intervals (1: iid resampling).
    pub block_len: usize,
}

impl Overhead {
    /// Half the width of the 95% interval, relative (a fraction): half the log-width mapped
    /// back, so that ±1% means the same at +0.1% and at 200× (the interval is computed on
    /// log ratios; for small overheads this is half the width in percentage points).
    pub fn half_width(&self) -> f64 {
        (((1.0 + self.ci95.high) / (1.0 + self.ci95.low)).ln() / 2.0).exp_m1()
    }
}

/// One environment compared with native on one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub env: String,
    /// Rounds with a usable value in both environments.
    pub n_pairs: usize,
    /// Rounds present in both whose values had no log ratio (≤ 0 or NaN).
    pub unusable: usize,
    /// `None` when there is no pair at all.
    pub overhead: Option<Overhead>,
    pub verdict: Verdict,
}

/// Everything about one (workload, metric).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricAnalysis {
    pub workload: String,
    pub metric: String,
    pub unit: String,
    pub better: Better,
    /// Per environment, in the analysis' environment order (native first when present).
    pub samples: Vec<EnvSamples>,
    /// Per non-native environment (native-b included: the A/A floor).
    pub comparisons: Vec<Comparison>,
    /// Mean seconds one block of this workload took (every environment once).
    pub block_seconds: f64,
}

impl MetricAnalysis {
    pub fn samples_of(&self, env: &str) -> Option<&EnvSamples> {
        self.samples.iter().find(|s| s.env == env)
    }

    pub fn comparison(&self, env: &str) -> Option<&Comparison> {
        self.comparisons.iter().find(|c| c.env == env)
    }

    /// `workload/metric`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.workload, self.metric)
    }

    /// Seconds the blocks an inconclusive verdict of `c` still needs would take.
    pub fn seconds_to_settle(&self, c: &Comparison) -> Option<f64> {
        let total = c.verdict.rounds_needed()?;
        Some(self.seconds_for(total.saturating_sub(c.n_pairs as u64)))
    }

    /// Seconds `blocks` more blocks of this workload would take.
    pub fn seconds_for(&self, blocks: u64) -> f64 {
        blocks as f64 * self.block_seconds
    }

    /// More blocks `c` would need for a 95% half-width of `target` (a fraction) at the
    /// spread observed, if it has not reached it.
    pub fn blocks_to_reach(&self, c: &Comparison, target: f64) -> Option<u64> {
        let o = c.overhead?;
        let hw = o.half_width();
        (hw > target && c.n_pairs > 0).then(|| {
            let n = c.n_pairs as f64;
            let need = (n * (hw / target).powi(2)).ceil() - n;
            need.min(u64::MAX as f64) as u64
        })
    }
}

/// The analysis of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub config: AnalysisConfig,
    /// Environments with samples, in the one order of `results::label_rank`.
    pub envs: Vec<String>,
    /// In canonical workload order, metrics in order of first appearance.
    pub metrics: Vec<MetricAnalysis>,
    /// `counter.*` rows left out of the overhead analysis.
    pub counter_rows: usize,
    /// Non-counter rows without a valid `better` direction, left out (`workload/metric`).
    pub undirected: Vec<String>,
    /// Seconds all samples took together (the harness's time between them left out).
    pub measured_seconds: f64,
    /// Disturbed samples per environment, where the run accounted interference.
    pub disturbances: Vec<Disturbance>,
}

impl Analysis {
    /// The metrics tables and charts show: all but the mean-based companions (`X.mean`),
    /// which the report discusses apart (intermittent costs).
    pub fn shown_metrics(&self) -> impl Iterator<Item = &MetricAnalysis> {
        self.metrics
            .iter()
            .filter(|m| workload::mean_companion_of(&m.metric).is_none())
    }

    /// Environments compared with native (all but native), in order.
    pub fn compared_envs(&self) -> Vec<&str> {
        self.envs
            .iter()
            .map(String::as_str)
            .filter(|e| *e != NATIVE)
            .collect()
    }
}

/// Seed of the bootstrap for one comparison.
pub fn comparison_seed(seed: u64, env: &str, workload: &str, metric: &str) -> u64 {
    stream_seed(seed, &format!("{env}\0{workload}\0{metric}"))
}

/// Analyses `samples` (rows of `samples.csv`). Environments come in the one order of
/// `results::label_rank`; missing environments are simply absent.
pub fn analyze(samples: &[SampleRow], config: AnalysisConfig) -> Result<Analysis, AnalysisError> {
    config.validate()?;
    let mut counter_rows = 0;
    let mut undirected = Vec::new();
    // (workload, metric) -> (first index, unit, better, env -> values)
    type Group<'a> = (usize, &'a str, Better, BTreeMap<&'a str, Vec<(u32, f64)>>);
    let mut groups: BTreeMap<(&str, &str), Group> = BTreeMap::new();
    for (i, row) in samples.iter().enumerate() {
        if row.is_counter() {
            counter_rows += 1;
            continue;
        }
        let Some(better) = row.better else {
            let label = format!("{}/{}", row.workload, row.metric);
            if !undirected.contains(&label) {
                undirected.push(label);
            }
            continue;
        };
        let g = groups
            .entry((row.workload.as_str(), row.metric.as_str()))
            .or_insert_with(|| (i, row.unit.as_str(), better, BTreeMap::new()));
        g.3.entry(row.env.as_str())
            .or_default()
            .push((row.round, row.value));
    }

    let envs = order_labels(groups.values().flat_map(|g| g.3.keys().copied()));

    let mut ordered: Vec<_> = groups.into_iter().collect();
    ordered.sort_by_key(|((w, _), g)| (workload::rank(w), *w, g.0));

    let block_seconds = cost::block_seconds(samples);
    let metrics = ordered
        .into_iter()
        .map(|((workload, metric), (_, unit, better, by_env))| {
            let mut m = analyze_metric(workload, metric, unit, better, by_env, &envs, &config);
            m.block_seconds = block_seconds.get(workload).copied().unwrap_or(0.0);
            m
        })
        .collect();

    Ok(Analysis {
        config,
        disturbances: cost::disturbances(samples, &envs),
        envs,
        metrics,
        counter_rows,
        undirected,
        measured_seconds: cost::measured_seconds(samples),
    })
}

fn analyze_metric(
    workload: &str,
    metric: &str,
    unit: &str,
    better: Better,
    mut by_env: BTreeMap<&str, Vec<(u32, f64)>>,
    envs: &[String],
    config: &AnalysisConfig,
) -> MetricAnalysis {
    let mut samples = Vec::new();
    for env in envs {
        let Some(values) = by_env.get_mut(env.as_str()) else {
            continue;
        };
        // Stable sort: a duplicate round keeps file order (pairing uses the last one).
        values.sort_by_key(|(r, _)| *r);
        let plain: Vec<f64> = values.iter().map(|(_, v)| *v).collect();
        samples.push(EnvSamples {
            env: env.clone(),
            values: values.clone(),
            median: median(&plain),
            mad: mad(&plain),
            outliers: count_outliers(&plain),
            warmup: warmup_drift(&plain, better),
        });
    }
    let native = by_env.get(NATIVE).cloned().unwrap_or_default();
    let comparisons = envs
        .iter()
        .filter(|e| e.as_str() != NATIVE)
        .filter_map(|env| {
            let values = by_env.get(env.as_str())?;
            let seed = comparison_seed(config.seed, env, workload, metric);
            Some(compare(&native, env, values, better, seed, config))
        })
        .collect();
    MetricAnalysis {
        workload: workload.to_string(),
        metric: metric.to_string(),
        unit: unit.to_string(),
        better,
        samples,
        comparisons,
        block_seconds: 0.0,
    }
}

/// `env`'s `values` against the `reference` environment's, paired by round: the overhead,
/// its seeded bootstrap intervals and the verdict. The one statistics path of every
/// comparison (against native, and between rungs of the ladder, `ladder.rs`).
fn compare(
    reference: &[(u32, f64)],
    env: &str,
    values: &[(u32, f64)],
    better: Better,
    seed: u64,
    config: &AnalysisConfig,
) -> Comparison {
    let p = pair(reference, values, better);
    let n = p.log_ratios.len();
    let (overhead, verdict) = if n == 0 {
        (None, Verdict::TooFewRounds { n: 0 })
    } else {
        let est = estimate(config.estimator, &p.log_ratios, config.resamples, seed);
        let log_sd = std_dev(&p.log_ratios);
        let o = Overhead {
            estimate: overhead_from_log(est.mean),
            ci95: est.ci95.map(overhead_from_log),
            ci90: est.ci90.map(overhead_from_log),
            log_sd,
            block_len: est.block_len,
        };
        let input = VerdictInput {
            n,
            log_estimate: est.mean,
            log_sd,
            ci95: o.ci95,
            ci90: o.ci90,
        };
        (Some(o), decide(&input, config.margin))
    };
    Comparison {
        env: env.to_string(),
        n_pairs: n,
        unusable: p.unusable,
        overhead,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        round: u32,
        env: &str,
        workload: &str,
        metric: &str,
        value: f64,
        better: &str,
    ) -> SampleRow {
        SampleRow {
            round,
            env: env.into(),
            workload: workload.into(),
            metric: metric.into(),
            value,
            unit: "u".into(),
            better: Better::parse(better),
            cycles: 0,
            wall_ns: 0,
        }
    }

    #[test]
    fn groups_orders_and_excludes_counters() {
        let mut rows = Vec::new();
        for r in 0..6 {
            let x = 100.0 + r as f64;
            rows.push(row(r, "vm", "start", "start_us", x * 2.0, "lower"));
            rows.push(row(r, "native", "start", "start_us", x, "lower"));
            rows.push(row(r, "native", "cpu.int", "hash", x, "higher"));
            rows.push(row(r, "container", "cpu.int", "hash", x, "higher"));
            rows.push(row(r, "native", "cpu.int", "counter.exits", 3.0, ""));
        }
        rows.push(row(0, "native", "cpu.int", "odd", 1.0, ""));
        let a = analyze(&rows, AnalysisConfig::new(1)).unwrap();
        assert_eq!(a.envs, vec!["native", "container", "vm"]);
        assert_eq!(a.counter_rows, 6);
        assert_eq!(a.undirected, vec!["cpu.int/odd"]);
        let labels: Vec<String> = a.metrics.iter().map(|m| m.label()).collect();
        assert_eq!(labels, vec!["cpu.int/hash", "start/start_us"]);
        let start = &a.metrics[1];
        let vm = start.comparison("vm").unwrap();
        assert!((vm.overhead.unwrap().estimate - 1.0).abs() < 1e-9);
        assert_eq!(vm.verdict, Verdict::Above);
        assert!(start.comparison("container").is_none());
        let c = a.metrics[0].comparison("container").unwrap();
        assert_eq!(c.verdict, Verdict::Within);
        assert_eq!(c.overhead.unwrap().estimate, 0.0);
    }

    #[test]
    fn missing_native_gives_no_estimate() {
        let rows: Vec<_> = (0..6)
            .map(|r| row(r, "vm", "sys.call", "ns_per_call", 5.0, "lower"))
            .collect();
        let a = analyze(&rows, AnalysisConfig::new(1)).unwrap();
        let c = a.metrics[0].comparison("vm").unwrap();
        assert_eq!(c.overhead, None);
        assert_eq!(c.verdict, Verdict::TooFewRounds { n: 0 });
    }

    #[test]
    fn rejects_bad_config() {
        let mut c = AnalysisConfig::new(1);
        c.margin = 0.0;
        assert_eq!(
            analyze(&[], c),
            Err(AnalysisError::InvalidMargin { margin: 0.0 })
        );
        c.margin = 0.01;
        c.resamples = 0;
        assert_eq!(analyze(&[], c), Err(AnalysisError::NoResamples));
    }

    #[test]
    fn autocorrelated_ratios_are_bootstrapped_in_blocks() {
        // The env's slowdown wanders slowly (a deterministic AR(1)-like wave) around 5%.
        let rows = |rounds: u32| -> Vec<SampleRow> {
            (0..rounds)
                .flat_map(|r| {
                    let wave = 0.03 * (r as f64 / 6.0).sin() + 0.01 * (r as f64 * 2.7).sin();
                    [
                        row(r, "native", "sys.call", "ns", 100.0, "lower"),
                        row(r, "vm", "sys.call", "ns", 105.0 * (1.0 + wave), "lower"),
                    ]
                })
                .collect()
        };
        let block_len = |rounds| {
            let a = analyze(&rows(rounds), AnalysisConfig::new(3)).unwrap();
            let c = a.metrics[0].comparison("vm").unwrap();
            c.overhead.unwrap().block_len
        };
        assert_eq!(block_len(15), 1, "today's short runs resample as before");
        assert!(block_len(300) > 1);
    }
}
