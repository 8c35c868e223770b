//! Fleet runs: many hosts' runs of the same image merged into one answer
//! (docs/METHODOLOGY.md, "Many hosts"). This module owns the checks that the runs measured
//! the same thing (schema, image, isobench version), the per-host analysis, the pooling of
//! each (workload, metric, environment) overhead across hosts with a random-effects model
//! (`stats::meta`), and the fleet's verdicts. Reading the inputs (run directories,
//! directories of runs, tarballs) and `pack` are in [`inputs`]; the files in [`render`].

pub mod inputs;
pub mod render;

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use crate::analysis::{analyze, Analysis, AnalysisConfig, AnalysisError};
use crate::results::{label_rank, LoadError, RunData};
use crate::stats::bootstrap::Interval;
use crate::stats::meta::{pool, Pooled, Study};
use crate::stats::summary::Estimator;
use crate::stats::verdict::{format_margin, Verdict};
use crate::workload;

pub use inputs::{collect_runs, pack};

/// Version of `fleet.json`.
pub const FLEET_FORMAT_VERSION: u32 = 1;

/// A host's overhead enters the pool only from this many paired rounds (fewer give no
/// usable interval).
pub const MIN_PAIRS: usize = 2;

#[derive(Debug, Error)]
pub enum FleetError {
    #[error("no runs to merge: give run directories, directories of runs, or tarballs made by `isobench pack`")]
    NoRuns,
    #[error("cannot load the run {source_name}: {error}")]
    Load {
        source_name: String,
        #[source]
        error: LoadError,
    },
    #[error("cannot read {path}: {detail}")]
    Input { path: String, detail: String },
    #[error(
        "{first} and {second} are the same run ({run_id} on {hostname}): give each host's run once"
    )]
    Duplicate {
        first: String,
        second: String,
        run_id: String,
        hostname: String,
    },
    #[error("the runs do not measure the same thing: {}; merge runs of one isobench build and image, or pass --allow-mixed to pool them anyway (the report lists the differences)", .differences.join("; "))]
    Mixed { differences: Vec<String> },
    #[error("the run {source_name} names the estimator {name:?}, which this isobench does not know: merge it with the isobench version that made it")]
    Estimator { source_name: String, name: String },
    #[error("cannot analyse the run {source_name}: {error}")]
    Analyze {
        source_name: String,
        #[source]
        error: AnalysisError,
    },
    #[error("cannot write {path}: {detail} (check that the output directory is writable)")]
    Write { path: String, detail: String },
}

/// One host's run, loaded.
#[derive(Clone, Debug)]
pub struct HostRun {
    /// Where it came from (a path as given, or `TARBALL`), for messages and the report.
    pub source: String,
    pub data: RunData,
}

/// How to merge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MergeOptions {
    /// Margin of the fleet verdicts, as a fraction (0.01 = 1%).
    pub margin: f64,
    /// Pool runs of different images, isobench versions or profiles (reported).
    pub allow_mixed: bool,
    /// Bootstrap resamples of each host's analysis.
    pub resamples: usize,
}

/// One host of the fleet: the facts that explain why its overheads may differ.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleetHost {
    /// Position in the merge (rows refer to it).
    pub index: usize,
    /// `hostname` and, when the run has labels, `key=value` pairs: how tables name it.
    pub name: String,
    pub source: String,
    pub run_id: String,
    pub hostname: String,
    pub cpu_model: String,
    pub kernel: String,
    pub kvm_flavour: String,
    pub virtualized: bool,
    pub cgroup_version: String,
    pub isobench_version: String,
    pub image_sha256: String,
    pub schema_version: u32,
    pub outcome: String,
    pub labels: BTreeMap<String, String>,
}

/// One host's overhead on one row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostOverhead {
    pub host: usize,
    pub n_pairs: usize,
    /// Fractions (+0.05 = 5% worse than native).
    pub estimate: f64,
    pub ci95_low: f64,
    pub ci95_high: f64,
    /// The host's own verdict against the margin.
    pub verdict: String,
    /// Whether it entered the pool (it needs [`MIN_PAIRS`] pairs and an interval).
    pub pooled: bool,
}

/// The pooled overhead of one row across hosts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PooledOverhead {
    /// Hosts pooled.
    pub hosts: usize,
    /// Fractions, mapped back from the pooled log overhead.
    pub estimate: f64,
    pub ci95_low: f64,
    pub ci95_high: f64,
    pub ci90_low: f64,
    pub ci90_high: f64,
    /// Between-host standard deviation τ of the log overhead (≈ a fraction: 0.01 = the
    /// hosts' true overheads spread by about ±1 point).
    pub tau: f64,
    /// I² in [0, 1]: the share of the hosts' spread beyond their measurement noise.
    pub i2: f64,
    /// Cochran's Q.
    pub q: f64,
    pub verdict: String,
}

/// One (workload, metric, environment) across the fleet.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleetRow {
    pub workload: String,
    pub metric: String,
    pub unit: String,
    pub env: String,
    /// The workload's representative metric (forest plots are drawn for these).
    pub headline: bool,
    pub hosts: Vec<HostOverhead>,
    /// `None` when no host has a usable overhead.
    pub pooled: Option<PooledOverhead>,
}

impl FleetRow {
    pub fn label(&self) -> String {
        format!("{}/{}", self.workload, self.metric)
    }

    pub fn host(&self, index: usize) -> Option<&HostOverhead> {
        self.hosts.iter().find(|h| h.host == index)
    }
}

/// The merged fleet: what `fleet.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fleet {
    pub format_version: u32,
    /// The isobench that merged.
    pub isobench_version: String,
    pub margin: f64,
    pub hosts: Vec<FleetHost>,
    /// Ways the runs differ (isobench version, image, schema, profile): refused unless
    /// `--allow-mixed`, always listed.
    pub differences: Vec<String>,
    /// Things worth knowing that did not stop the merge.
    pub notes: Vec<String>,
    pub rows: Vec<FleetRow>,
}

impl Fleet {
    /// Rows in one environment, or all of them.
    pub fn compared_envs(&self) -> Vec<String> {
        let mut envs: Vec<String> = Vec::new();
        for r in &self.rows {
            if !envs.contains(&r.env) {
                envs.push(r.env.clone());
            }
        }
        envs.sort_by_key(|e| (label_rank(e), e.clone()));
        envs
    }
}

/// How the runs differ in what they measured (empty: they agree).
pub fn differences(runs: &[HostRun]) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, values: Vec<String>| {
        let mut seen: Vec<(String, Vec<&str>)> = Vec::new();
        for (v, r) in values.iter().zip(runs) {
            match seen.iter_mut().find(|(x, _)| x == v) {
                Some((_, who)) => who.push(&r.source),
                None => seen.push((v.clone(), vec![&r.source])),
            }
        }
        if seen.len() > 1 {
            let parts: Vec<String> = seen
                .iter()
                .map(|(v, who)| format!("{v} ({})", who.join(", ")))
                .collect();
            out.push(format!("{what} differs: {}", parts.join(" vs ")));
        }
    };
    differ(
        "isobench version",
        runs.iter()
            .map(|r| r.data.run.isobench_version.clone())
            .collect(),
    );
    differ(
        "image",
        runs.iter()
            .map(|r| format!("sha256 {}", r.data.run.image.sha256))
            .collect(),
    );
    differ(
        "schema version",
        runs.iter()
            .map(|r| r.data.run.schema_version.to_string())
            .collect(),
    );
    differ(
        "profile",
        runs.iter()
            .map(|r| r.data.run.config.profile.name().to_string())
            .collect(),
    );
    out
}

/// The hosts' facts.
fn hosts(runs: &[HostRun]) -> Vec<FleetHost> {
    runs.iter()
        .enumerate()
        .map(|(index, r)| {
            let run = &r.data.run;
            let labels: Vec<String> = run.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let name = if labels.is_empty() {
                run.host.hostname.clone()
            } else {
                format!("{} {}", run.host.hostname, labels.join(" "))
            };
            FleetHost {
                index,
                name,
                source: r.source.clone(),
                run_id: run.run_id.clone(),
                hostname: run.host.hostname.clone(),
                cpu_model: run.host.cpu_model.clone(),
                kernel: run.host.kernel.clone(),
                kvm_flavour: run.host.kvm_flavour.clone(),
                virtualized: run.host.virtualized,
                cgroup_version: run.host.cgroup_version.clone(),
                isobench_version: run.isobench_version.clone(),
                image_sha256: run.image.sha256.clone(),
                schema_version: run.schema_version,
                outcome: run.outcome.name().to_string(),
                labels: run.labels.clone(),
            }
        })
        .collect()
}

/// Analyse one host's run as its own report would (its seed, its estimator).
fn analyze_host(r: &HostRun, options: &MergeOptions) -> Result<Analysis, FleetError> {
    let run = &r.data.run;
    let estimator = match run.config.options.get("estimator") {
        // Runs before blocks (schema 1) record no estimator: theirs was the mean.
        None => Estimator::Mean,
        Some(name) => Estimator::parse(name).ok_or_else(|| FleetError::Estimator {
            source_name: r.source.clone(),
            name: name.clone(),
        })?,
    };
    let config = AnalysisConfig {
        margin: options.margin,
        seed: run.config.seed,
        resamples: options.resamples,
        estimator,
    };
    analyze(&r.data.samples, config).map_err(|error| FleetError::Analyze {
        source_name: r.source.clone(),
        error,
    })
}

/// The verdict of a pooled overhead against ±`margin`, by the rules of one run's verdicts
/// (docs/METHODOLOGY.md, "Verdicts") applied to the pooled intervals: within when the 90%
/// interval lies inside ±M, above/below when the 95% interval lies wholly beyond.
pub fn fleet_verdict(ci90: Interval, ci95: Interval, margin: f64) -> Verdict {
    if ci90.low > -margin && ci90.high < margin {
        Verdict::Within
    } else if ci95.low > margin {
        Verdict::Above
    } else if ci95.high < -margin {
        Verdict::Below
    } else {
        Verdict::Inconclusive {
            rounds_needed: None,
        }
    }
}

/// Words for a fleet verdict.
pub fn describe_fleet_verdict(v: Verdict, margin: f64) -> String {
    match v {
        Verdict::Inconclusive { .. } => "inconclusive (more rounds or hosts needed)".into(),
        other => other.describe(margin),
    }
}

/// Pools the hosts' overheads of one row.
fn pool_row(hosts: &[HostOverhead], margin: f64) -> Option<PooledOverhead> {
    let log = |x: f64| x.ln_1p();
    let studies: Vec<Study> = hosts
        .iter()
        .filter(|h| h.pooled)
        .map(|h| {
            Study::from_ci95(
                log(h.estimate),
                Interval {
                    low: log(h.ci95_low),
                    high: log(h.ci95_high),
                },
            )
        })
        .collect();
    let p: Pooled = pool(&studies)?;
    let back = |i: Interval| i.map(f64::exp_m1);
    let (ci95, ci90) = (back(p.ci95), back(p.ci90));
    Some(PooledOverhead {
        hosts: p.k,
        estimate: p.estimate.exp_m1(),
        ci95_low: ci95.low,
        ci95_high: ci95.high,
        ci90_low: ci90.low,
        ci90_high: ci90.high,
        tau: p.tau,
        i2: p.i2,
        q: p.q,
        verdict: describe_fleet_verdict(fleet_verdict(ci90, ci95, margin), margin),
    })
}

/// Merges the hosts' runs into a [`Fleet`]: checks that they measured the same thing,
/// analyses each host, and pools every (workload, metric, environment) across hosts.
pub fn merge(runs: &[HostRun], options: &MergeOptions) -> Result<Fleet, FleetError> {
    if runs.is_empty() {
        return Err(FleetError::NoRuns);
    }
    for (i, a) in runs.iter().enumerate() {
        let key = |r: &HostRun| {
            let run = &r.data.run;
            (
                run.run_id.clone(),
                run.host.hostname.clone(),
                run.started_at.clone(),
            )
        };
        if let Some(b) = runs[i + 1..].iter().find(|b| key(b) == key(a)) {
            return Err(FleetError::Duplicate {
                first: a.source.clone(),
                second: b.source.clone(),
                run_id: a.data.run.run_id.clone(),
                hostname: a.data.run.host.hostname.clone(),
            });
        }
    }
    let differences = differences(runs);
    if !differences.is_empty() && !options.allow_mixed {
        return Err(FleetError::Mixed { differences });
    }
    let mut notes = Vec::new();
    for r in runs {
        let outcome = r.data.run.outcome;
        if outcome != crate::results::Outcome::Complete {
            notes.push(format!(
                "{} ended {}: what it measured is pooled",
                r.source,
                outcome.name()
            ));
        }
    }
    if runs.len() < 3 {
        notes.push(format!(
            "{} host(s): τ and I² from fewer than 3 hosts say little about a fleet",
            runs.len()
        ));
    }
    let analyses = runs
        .iter()
        .map(|r| analyze_host(r, options))
        .collect::<Result<Vec<_>, _>>()?;

    // Every (workload, metric, env) any host has, in report order.
    let mut keys: Vec<(String, String, String, String)> = Vec::new();
    for a in &analyses {
        for m in a.shown_metrics() {
            for c in &m.comparisons {
                let key = (
                    m.workload.clone(),
                    m.metric.clone(),
                    c.env.clone(),
                    m.unit.clone(),
                );
                if !keys
                    .iter()
                    .any(|k| k.0 == key.0 && k.1 == key.1 && k.2 == key.2)
                {
                    keys.push(key);
                }
            }
        }
    }
    let first_seen: Vec<(String, String)> =
        keys.iter()
            .map(|k| (k.0.clone(), k.1.clone()))
            .fold(Vec::new(), |mut v, k| {
                if !v.contains(&k) {
                    v.push(k);
                }
                v
            });
    keys.sort_by_key(|(w, m, e, _)| {
        (
            workload::rank(w),
            w.clone(),
            first_seen
                .iter()
                .position(|k| &k.0 == w && &k.1 == m)
                .unwrap_or(usize::MAX),
            label_rank(e),
            e.clone(),
        )
    });

    let rows = keys
        .into_iter()
        .map(|(w, m, env, unit)| {
            let hosts: Vec<HostOverhead> = analyses
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    let ma = a
                        .metrics
                        .iter()
                        .find(|x| x.workload == w && x.metric == m)?;
                    let c = ma.comparison(&env)?;
                    let o = c.overhead?;
                    let usable = c.n_pairs >= MIN_PAIRS
                        && [o.estimate, o.ci95.low, o.ci95.high]
                            .iter()
                            .all(|x| x.is_finite() && *x > -1.0);
                    Some(HostOverhead {
                        host: i,
                        n_pairs: c.n_pairs,
                        estimate: o.estimate,
                        ci95_low: o.ci95.low,
                        ci95_high: o.ci95.high,
                        verdict: c.verdict.describe(options.margin),
                        pooled: usable,
                    })
                })
                .collect();
            let headline = is_headline(runs, &w, &m);
            FleetRow {
                pooled: pool_row(&hosts, options.margin),
                workload: w,
                metric: m,
                unit,
                env,
                headline,
                hosts,
            }
        })
        .collect();
    Ok(Fleet {
        format_version: FLEET_FORMAT_VERSION,
        isobench_version: env!("CARGO_PKG_VERSION").into(),
        margin: options.margin,
        hosts: hosts(runs),
        differences,
        notes,
        rows,
    })
}

/// Whether `metric` is `workload`'s representative metric in the first run's profile
/// (`start` has one metric per environment; all of its metrics are headlines).
fn is_headline(runs: &[HostRun], workload: &str, metric: &str) -> bool {
    if workload == workload::START {
        return true;
    }
    let profile = runs[0].data.run.config.profile;
    workload::by_name(workload).is_some_and(|w| (w.primary)(profile) == metric)
}

/// One line per pooled row: the fleet table `merge` prints.
pub fn fleet_table(fleet: &Fleet) -> String {
    let pct = |x: f64| format!("{:+.2}%", x * 100.0);
    let mut out = format!(
        "{} host(s), margin ±{}\n{:<28} {:<10} {:>9} {:>22} {:>7} {:>5} {:>5}  verdict\n",
        fleet.hosts.len(),
        format_margin(fleet.margin),
        "workload/metric",
        "env",
        "pooled",
        "95% interval",
        "τ",
        "I²",
        "hosts"
    );
    for r in &fleet.rows {
        let Some(p) = &r.pooled else { continue };
        out.push_str(&format!(
            "{:<28} {:<10} {:>9} {:>22} {:>7} {:>5} {:>5}  {}\n",
            r.label(),
            r.env,
            pct(p.estimate),
            format!("[{}, {}]", pct(p.ci95_low), pct(p.ci95_high)),
            format!("{:.2}%", p.tau * 100.0),
            format!("{:.0}%", p.i2 * 100.0),
            p.hosts,
            p.verdict
        ));
    }
    out
}

#[cfg(test)]
mod tests;
