//! Regression tracking: compare a current run with a baseline run, per (environment,
//! workload, metric), and decide which changes are regressions. Pure: the inputs are loaded
//! runs, the output is a [`Comparison`] value that the renderers in [`format`] (and the
//! plots) turn into text.
//!
//! What is compared. For every environment other than `native`, the **overhead**: the
//! per-round ratio to native in the same round, oriented so larger = worse (`env/native`
//! for lower-is-better metrics, `native/env` for higher-is-better ones). For `native`, the
//! **value** itself (so a slower kernel shows up even when overheads stay put). An
//! environment whose run has no native samples for a metric is compared by value.
//! `counter.*` metrics are accounting, not performance, and are skipped.
//!
//! How. Per round the log cost (log of the oriented overhead ratio, or ±log of the value,
//! again larger = worse); the change is `exp(mean_current − mean_baseline) − 1`, the
//! relative change of the geometric mean of the cost, so **positive = worse** whatever the
//! metric's direction (for a throughput, a 10% drop is a +11.1% change in cost). The
//! significance test and the interval are in [`significance`]. A change is **regressed**
//! when p < alpha AND the change exceeds +threshold, **improved** when p < alpha AND it is
//! below −threshold, otherwise **unchanged**; keys only in the baseline are **missing**,
//! keys only in the current run are **new**.

pub mod format;
pub mod significance;
pub mod thresholds;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::results::{load_run, LoadError, RunData};
pub use thresholds::{AppliedThreshold, ThresholdError, Thresholds};

use crate::results::{label_rank, Outcome, RunFile, SampleRow, INSTANCE_FACT_PREFIX, NATIVE};
use crate::stats::bootstrap::stream_seed;
use crate::stats::Better;
use significance::TestResult;

/// Version of the JSON written by `compare --format json`.
pub const COMPARISON_FORMAT_VERSION: u32 = 1;

/// Default significance level.
pub const DEFAULT_ALPHA: f64 = 0.01;
/// Default noise threshold (5%).
pub const DEFAULT_THRESHOLD: f64 = 0.05;
/// Default random permutations when the exact test would be too large.
pub const DEFAULT_PERMUTATIONS: u64 = 10_000;
/// Default bootstrap resamples.
pub const DEFAULT_RESAMPLES: u64 = 10_000;
/// Confidence level of the reported interval.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;
/// Default seed, so that the same inputs give the same report unless asked otherwise.
pub const DEFAULT_SEED: u64 = 0x150b_e7c4;

/// How to compare.
#[derive(Clone, Debug)]
pub struct Options {
    pub alpha: f64,
    pub thresholds: Thresholds,
    pub permutations: u64,
    pub resamples: u64,
    pub confidence: f64,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            alpha: DEFAULT_ALPHA,
            thresholds: Thresholds::uniform(DEFAULT_THRESHOLD),
            permutations: DEFAULT_PERMUTATIONS,
            resamples: DEFAULT_RESAMPLES,
            confidence: DEFAULT_CONFIDENCE,
            seed: DEFAULT_SEED,
        }
    }
}

/// What a row compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// The per-round ratio to native, oriented so > 1 = slower than native.
    Overhead,
    /// The metric's value itself (native, or an environment without native samples).
    Value,
}

/// The verdict on one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Regressed,
    Improved,
    Unchanged,
    New,
    Missing,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Regressed => "regressed",
            Status::Improved => "improved",
            Status::Unchanged => "unchanged",
            Status::New => "new",
            Status::Missing => "missing",
        }
    }
}

/// One run's side of a row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// Rounds used (for overheads: rounds with both the environment and native).
    pub rounds: usize,
    /// Geometric mean over the rounds: the oriented overhead ratio (1.05 = 5% slower than
    /// native), or the value in `unit`.
    pub estimate: f64,
}

/// The change from baseline to current.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Relative change of the cost, positive = worse (0.10 = 10% worse).
    pub relative: f64,
    /// Bootstrap interval of `relative` at `Comparison::method.confidence`.
    pub low: f64,
    pub high: f64,
    pub test: TestResult,
}

/// One compared (environment, workload, metric).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub env: String,
    pub workload: String,
    pub metric: String,
    pub quantity: Quantity,
    /// Unit of the metric (the overhead itself is a ratio).
    pub unit: String,
    pub better: Better,
    pub baseline: Option<Side>,
    pub current: Option<Side>,
    /// Present when both sides are.
    pub change: Option<Change>,
    pub threshold: AppliedThreshold,
    pub status: Status,
    /// Row-specific caveats (few rounds, unit changed...).
    pub notes: Vec<String>,
}

/// What identifies a run in the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub path: String,
    pub run_id: String,
    pub started_at: String,
    pub outcome: String,
    pub hostname: String,
    pub isobench_version: String,
    pub git_commit: String,
    pub rounds: u32,
}

/// A fact that differs between the two runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub what: String,
    pub baseline: String,
    pub current: String,
}

/// The method, echoed into every report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Method {
    pub alpha: f64,
    pub default_threshold: f64,
    pub permutations: u64,
    pub exact_limit: u64,
    pub resamples: u64,
    pub confidence: f64,
    pub seed: u64,
    pub test: String,
    pub interval: String,
    pub rule: String,
}

/// The result of [`compare`]: everything the renderers and plots need.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub format_version: u32,
    pub baseline: RunInfo,
    pub current: RunInfo,
    pub method: Method,
    /// Host, image and configuration facts that differ: the comparison may be unfair.
    pub differences: Vec<Difference>,
    pub warnings: Vec<String>,
    pub rows: Vec<Row>,
}

/// Counts of rows per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub regressed: usize,
    pub improved: usize,
    pub unchanged: usize,
    pub new: usize,
    pub missing: usize,
}

impl Comparison {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.rows {
            match r.status {
                Status::Regressed => c.regressed += 1,
                Status::Improved => c.improved += 1,
                Status::Unchanged => c.unchanged += 1,
                Status::New => c.new += 1,
                Status::Missing => c.missing += 1,
            }
        }
        c
    }

    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|r| r.status == Status::Regressed)
    }
}

/// Key of a series: (env, workload, metric, quantity).
type Key = (String, String, String, Quantity);

/// The per-round log costs of one run, per key.
struct Series {
    unit: String,
    better: Better,
    /// Log cost per round, in round order.
    log_costs: Vec<f64>,
}

/// Build the series of one run.
fn series(samples: &[SampleRow]) -> BTreeMap<Key, Series> {
    // (env, workload, metric) -> round -> row
    let mut by: BTreeMap<(&str, &str, &str), BTreeMap<u32, &SampleRow>> = BTreeMap::new();
    for s in samples.iter().filter(|s| !s.is_counter()) {
        by.entry((&s.env, &s.workload, &s.metric))
            .or_default()
            .insert(s.round, s);
    }
    let mut out = BTreeMap::new();
    for (&(env, workload, metric), rounds) in &by {
        let first = rounds.values().next().map(|r| (*r).clone());
        let Some(first) = first else { continue };
        // The loader has checked that every performance row has a direction.
        let Some(better) = first.better else { continue };
        let sign = match better {
            Better::Lower => 1.0,
            Better::Higher => -1.0,
        };
        let native = by.get(&(NATIVE, workload, metric));
        let (quantity, log_costs) = match native {
            Some(native) if env != NATIVE => {
                let costs: Vec<f64> = rounds
                    .iter()
                    .filter_map(|(round, row)| {
                        native
                            .get(round)
                            .map(|n| sign * (row.value.ln() - n.value.ln()))
                    })
                    .collect();
                (Quantity::Overhead, costs)
            }
            _ => (
                Quantity::Value,
                rounds.values().map(|r| sign * r.value.ln()).collect(),
            ),
        };
        if log_costs.is_empty() {
            continue;
        }
        out.insert(
            (
                env.to_string(),
                workload.to_string(),
                metric.to_string(),
                quantity,
            ),
            Series {
                unit: first.unit.clone(),
                better,
                log_costs,
            },
        );
    }
    out
}

/// The natural-orientation estimate of a side from its log costs.
fn estimate(quantity: Quantity, better: Better, log_costs: &[f64]) -> f64 {
    let m = log_costs.iter().sum::<f64>() / log_costs.len() as f64;
    match (quantity, better) {
        (Quantity::Overhead, _) | (Quantity::Value, Better::Lower) => m.exp(),
        (Quantity::Value, Better::Higher) => (-m).exp(),
    }
}

fn run_info(data: &RunData) -> RunInfo {
    let r = &data.run;
    RunInfo {
        path: data.run_json.display().to_string(),
        run_id: r.run_id.clone(),
        started_at: r.started_at.clone(),
        outcome: r.outcome.name().to_string(),
        hostname: r.host.hostname.clone(),
        isobench_version: r.isobench_version.clone(),
        git_commit: r.git_commit.clone(),
        rounds: r.config.rounds,
    }
}

/// Host, image and configuration facts that differ between two runs (hostnames, seeds,
/// round counts and timestamps are expected to differ and are not listed).
pub fn differences(baseline: &RunFile, current: &RunFile) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut check = |what: &str, b: String, c: String| {
        if b != c {
            out.push(Difference {
                what: what.into(),
                baseline: b,
                current: c,
            });
        }
    };
    let (hb, hc) = (&baseline.host, &current.host);
    check("CPU model", hb.cpu_model.clone(), hc.cpu_model.clone());
    check("CPU cores", hb.cores.to_string(), hc.cores.to_string());
    check(
        "memory",
        format!("{} MiB", hb.memory_bytes >> 20),
        format!("{} MiB", hc.memory_bytes >> 20),
    );
    check("kernel", hb.kernel.clone(), hc.kernel.clone());
    check(
        "KVM flavour",
        hb.kvm_flavour.clone(),
        hc.kvm_flavour.clone(),
    );
    check(
        "host virtualized",
        hb.virtualized.to_string(),
        hc.virtualized.to_string(),
    );
    check(
        "cgroup version",
        hb.cgroup_version.clone(),
        hc.cgroup_version.clone(),
    );
    check("transparent huge pages", hb.thp.clone(), hc.thp.clone());
    check(
        "clock source",
        hb.clocksource.clone(),
        hc.clocksource.clone(),
    );
    check(
        "image sha256",
        baseline.image.sha256.clone(),
        current.image.sha256.clone(),
    );
    check(
        "isobench version",
        baseline.isobench_version.clone(),
        current.isobench_version.clone(),
    );
    check(
        "profile",
        baseline.config.profile.name().to_string(),
        current.config.profile.name().to_string(),
    );
    check(
        "warm-up rounds",
        baseline.config.warmup.to_string(),
        current.config.warmup.to_string(),
    );
    let absent = || "(not set)".to_string();
    let keys: std::collections::BTreeSet<&String> = baseline
        .config
        .options
        .keys()
        .chain(current.config.options.keys())
        .collect();
    for k in keys {
        check(
            &format!("option {k}"),
            baseline
                .config
                .options
                .get(k)
                .cloned()
                .unwrap_or_else(absent),
            current
                .config
                .options
                .get(k)
                .cloned()
                .unwrap_or_else(absent),
        );
    }
    for eb in &baseline.environments {
        let Some(ec) = current.environments.iter().find(|e| e.label == eb.label) else {
            continue;
        };
        let status = |e: &crate::results::EnvRecord| match &e.reason {
            Some(r) => format!("{} ({r})", e.status.name()),
            None => e.status.name().to_string(),
        };
        check(
            &format!("environment {} status", eb.label),
            status(eb),
            status(ec),
        );
        // Per-instance facts (paths with a PID in them) differ in every run by design.
        let keys: std::collections::BTreeSet<&String> = eb
            .facts
            .keys()
            .chain(ec.facts.keys())
            .filter(|k| !k.starts_with(INSTANCE_FACT_PREFIX))
            .collect();
        for k in keys {
            check(
                &format!("environment {} {k}", eb.label),
                eb.facts.get(k).cloned().unwrap_or_else(absent),
                ec.facts.get(k).cloned().unwrap_or_else(absent),
            );
        }
    }
    out
}

/// Compare `current` with `baseline`.
pub fn compare(baseline: &RunData, current: &RunData, opts: &Options) -> Comparison {
    let sb = series(&baseline.samples);
    let sc = series(&current.samples);
    let mut warnings = Vec::new();
    for (name, data) in [("baseline", baseline), ("current", current)] {
        if data.run.outcome != Outcome::Complete {
            warnings.push(format!(
                "the {name} run {} ended \"{}\", not complete: it may have fewer rounds or workloads than planned",
                data.run_json.display(),
                data.run.outcome.name()
            ));
        }
        if data.samples.iter().all(|s| s.is_counter()) {
            warnings.push(format!(
                "the {name} run {} has no performance samples",
                data.run_json.display()
            ));
        }
    }
    let min_rounds_needed = significance::rounds_needed(opts.alpha);
    let mut keys: Vec<&Key> = sb.keys().chain(sc.keys()).collect();
    keys.sort_by(|a, b| {
        (&a.1, &a.2, label_rank(&a.0), &a.0, a.3).cmp(&(&b.1, &b.2, label_rank(&b.0), &b.0, b.3))
    });
    keys.dedup();
    let mut rows = Vec::new();
    let mut underpowered = 0usize;
    for key in keys {
        let (env, workload, metric, quantity) = key;
        let b = sb.get(key);
        let c = sc.get(key);
        let any = c.or(b);
        let Some(any) = any else { continue };
        let threshold = opts.thresholds.lookup(env, workload, metric);
        let side = |s: &Series| Side {
            rounds: s.log_costs.len(),
            estimate: estimate(*quantity, s.better, &s.log_costs),
        };
        let mut notes = Vec::new();
        let (change, status) = match (b, c) {
            (Some(b), Some(c)) => {
                if b.better != c.better {
                    notes.push(format!(
                        "direction changed from {:?} to {:?}; compared as {:?}-is-better",
                        b.better, c.better, c.better
                    ));
                }
                if *quantity == Quantity::Value && b.unit != c.unit {
                    notes.push(format!("unit changed from {} to {}", b.unit, c.unit));
                    warnings.push(format!(
                        "{env} {workload}/{metric}: the unit changed from {} to {}; its values are not comparable",
                        b.unit, c.unit
                    ));
                }
                let (bl, cl) = if b.better == c.better {
                    (b.log_costs.clone(), c.log_costs.clone())
                } else {
                    // Re-orient the baseline to the current direction.
                    (
                        b.log_costs.iter().map(|x| -x).collect(),
                        c.log_costs.clone(),
                    )
                };
                let stream = stream_seed(
                    opts.seed,
                    &format!("{env}\0{workload}\0{metric}\0{quantity:?}"),
                );
                let test = significance::permutation_test(&bl, &cl, opts.permutations, stream);
                let d = significance::mean_difference(&bl, &cl);
                let (lo, hi) = significance::bootstrap_interval(
                    &bl,
                    &cl,
                    opts.resamples,
                    opts.confidence,
                    stream.rotate_left(32) ^ 0x5eed,
                );
                if test.min_p_value >= opts.alpha {
                    underpowered += 1;
                    notes.push(format!(
                        "{} vs {} rounds: the test cannot reach p < {} (needs ≥ {} rounds each)",
                        bl.len(),
                        cl.len(),
                        opts.alpha,
                        min_rounds_needed
                    ));
                }
                let relative = d.exp_m1();
                let significant = test.p_value < opts.alpha;
                let status = if significant && relative > threshold.value {
                    Status::Regressed
                } else if significant && relative < -threshold.value {
                    Status::Improved
                } else {
                    Status::Unchanged
                };
                (
                    Some(Change {
                        relative,
                        low: lo.exp_m1(),
                        high: hi.exp_m1(),
                        test,
                    }),
                    status,
                )
            }
            (Some(_), None) => (None, Status::Missing),
            (None, _) => (None, Status::New),
        };
        rows.push(Row {
            env: env.clone(),
            workload: workload.clone(),
            metric: metric.clone(),
            quantity: *quantity,
            unit: any.unit.clone(),
            better: any.better,
            baseline: b.map(side),
            current: c.map(side),
            change,
            threshold,
            status,
            notes,
        });
    }
    if underpowered > 0 {
        warnings.push(format!(
            "{underpowered} row(s) have too few rounds for the permutation test to reach p < {}: no regression can be detected there; run at least {min_rounds_needed} rounds in both runs",
            opts.alpha
        ));
    }
    let missing = rows.iter().filter(|r| r.status == Status::Missing).count();
    if missing > 0 {
        warnings.push(format!(
            "{missing} row(s) of the baseline are missing from the current run (a workload or environment did not run)"
        ));
    }
    let unused = opts.thresholds.unused(
        rows.iter()
            .map(|r| (r.env.as_str(), r.workload.as_str(), r.metric.as_str())),
    );
    if !unused.is_empty() {
        warnings.push(format!(
            "threshold key(s) that matched no row (a typo, or not run this time): {}",
            unused.join(", ")
        ));
    }
    Comparison {
        format_version: COMPARISON_FORMAT_VERSION,
        baseline: run_info(baseline),
        current: run_info(current),
        method: Method {
            alpha: opts.alpha,
            default_threshold: opts.thresholds.default,
            permutations: opts.permutations,
            exact_limit: significance::EXACT_LIMIT,
            resamples: opts.resamples,
            confidence: opts.confidence,
            seed: opts.seed,
            test: format!(
                "two-sided permutation test of the difference of mean log values per round (exact over all splits when there are at most {} splits, otherwise {} random permutations), seed {}",
                significance::EXACT_LIMIT, opts.permutations, opts.seed
            ),
            interval: format!(
                "{:.0}% percentile bootstrap interval ({} resamples of each run's rounds), seed {}",
                opts.confidence * 100.0,
                opts.resamples,
                opts.seed
            ),
            rule: format!(
                "regressed = p < {} and change > +threshold; improved = p < {} and change < −threshold (change in cost: positive = worse)",
                opts.alpha, opts.alpha
            ),
        },
        differences: differences(&baseline.run, &current.run),
        warnings,
        rows,
    }
}

#[cfg(test)]
mod tests;
