//! What a run's samples cost in time and what disturbed them: the wall time of one block of
//! each workload (so that "blocks needed" reads as time), the run's measuring time, and per
//! environment the samples disturbed by steal time or by waiting for their CPU
//! (docs/METHODOLOGY.md, "Interference").

use std::collections::BTreeMap;

use crate::results::SampleRow;

/// A sample is disturbed when its thread waited for its CPU longer than this fraction of
/// the sample's wall time, or when the hypervisor stole any time from its CPU.
pub const DISTURBED_RUN_DELAY: f64 = 0.05;

/// Disturbed samples of one environment. They are kept in the data (the statistics are
/// robust to a few), and counted so a reader can judge the host.
#[derive(Clone, Debug, PartialEq)]
pub struct Disturbance {
    pub env: String,
    /// Samples with interference accounting (`counter.run_delay_ns` or
    /// `counter.steal_ticks`).
    pub accounted: usize,
    pub disturbed: usize,
    /// Samples whose CPU had steal time.
    pub stolen: usize,
}

/// One invocation: (env, workload, round).
type SampleKey<'a> = (&'a str, &'a str, u32);

/// Wall time of every sample (one invocation), from its performance rows.
fn sample_walls(samples: &[SampleRow]) -> BTreeMap<SampleKey<'_>, u64> {
    let mut walls = BTreeMap::new();
    for s in samples.iter().filter(|s| !s.is_counter()) {
        walls
            .entry((s.env.as_str(), s.workload.as_str(), s.round))
            .or_insert(s.wall_ns);
    }
    walls
}

/// Mean seconds one block of each workload took (every environment once), from the samples'
/// wall times (the harness's own time between samples is not in it).
pub(super) fn block_seconds(samples: &[SampleRow]) -> BTreeMap<String, f64> {
    // workload -> round -> summed wall
    let mut blocks: BTreeMap<&str, BTreeMap<u32, u64>> = BTreeMap::new();
    for ((_, w, r), wall) in sample_walls(samples) {
        *blocks.entry(w).or_default().entry(r).or_default() += wall;
    }
    blocks
        .into_iter()
        .map(|(w, rounds)| {
            let total: u64 = rounds.values().sum();
            (w.to_string(), total as f64 / 1e9 / rounds.len() as f64)
        })
        .collect()
}

/// Seconds all samples took together.
pub(super) fn measured_seconds(samples: &[SampleRow]) -> f64 {
    sample_walls(samples).values().sum::<u64>() as f64 / 1e9
}

/// Disturbed samples per environment (environments with no accounting are left out).
pub(super) fn disturbances(samples: &[SampleRow], envs: &[String]) -> Vec<Disturbance> {
    let walls = sample_walls(samples);
    // (env, workload, round) -> (run_delay_ns, steal_ticks)
    let mut acct: BTreeMap<SampleKey, (Option<f64>, Option<f64>)> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.is_counter()) {
        let key = (s.env.as_str(), s.workload.as_str(), s.round);
        match s.metric.as_str() {
            "counter.run_delay_ns" => acct.entry(key).or_default().0 = Some(s.value),
            "counter.steal_ticks" => acct.entry(key).or_default().1 = Some(s.value),
            _ => {}
        }
    }
    envs.iter()
        .filter_map(|env| {
            let mut d = Disturbance {
                env: env.clone(),
                accounted: 0,
                disturbed: 0,
                stolen: 0,
            };
            for (key, (delay, steal)) in acct.iter().filter(|(k, _)| k.0 == env) {
                d.accounted += 1;
                let wall = walls.get(key).copied().unwrap_or(0) as f64;
                let stolen = steal.is_some_and(|t| t > 0.0);
                let waited = delay.is_some_and(|ns| wall > 0.0 && ns > DISTURBED_RUN_DELAY * wall);
                d.stolen += usize::from(stolen);
                d.disturbed += usize::from(stolen || waited);
            }
            (d.accounted > 0).then_some(d)
        })
        .collect()
}

/// A duration for people: `40 s`, `12 min`, `3.5 h`.
pub fn fmt_duration(secs: f64) -> String {
    if secs < 1.0 {
        "under 1 s".to_string()
    } else if secs < 90.0 {
        format!("{secs:.0} s")
    } else if secs < 90.0 * 60.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

/// How long `secs` more seconds of measuring are, said against `reference` (the run's own
/// measuring time): never an absurd figure, but "more than 100× this run's measuring time".
pub fn time_needed_text(secs: f64, reference: f64) -> String {
    if reference > 0.0 && secs > 100.0 * reference {
        format!(
            "more than 100× this run's measuring time of {}",
            fmt_duration(reference)
        )
    } else {
        match fmt_duration(secs) {
            under if secs < 1.0 => format!("{under} more"),
            d => format!("≈{d} more"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Better;

    fn row(env: &str, round: u32, metric: &str, value: f64, wall_ns: u64) -> SampleRow {
        SampleRow {
            round,
            env: env.into(),
            workload: "cpu.int".into(),
            metric: metric.into(),
            value,
            unit: "u".into(),
            better: (!metric.starts_with("counter.")).then_some(Better::Higher),
            cycles: 0,
            wall_ns,
        }
    }

    #[test]
    fn blocks_cost_their_samples_wall_time() {
        let rows = vec![
            row("native", 0, "hash", 1.0, 10_000_000),
            row("native", 0, "hash.mean", 1.0, 10_000_000),
            row("vm", 0, "hash", 1.0, 30_000_000),
            row("native", 1, "hash", 1.0, 20_000_000),
            row("vm", 1, "hash", 1.0, 40_000_000),
        ];
        let b = block_seconds(&rows);
        assert!((b["cpu.int"] - 0.05).abs() < 1e-12, "{b:?}");
        assert!((measured_seconds(&rows) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn steal_or_long_waits_disturb_a_sample() {
        let rows = vec![
            row("vm", 0, "hash", 1.0, 10_000_000),
            row("vm", 0, "counter.run_delay_ns", 100_000.0, 0), // 1%: fine
            row("vm", 0, "counter.steal_ticks", 0.0, 0),
            row("vm", 1, "hash", 1.0, 10_000_000),
            row("vm", 1, "counter.run_delay_ns", 900_000.0, 0), // 9%: disturbed
            row("vm", 2, "hash", 1.0, 10_000_000),
            row("vm", 2, "counter.steal_ticks", 1.0, 0), // stolen
            row("native", 0, "hash", 1.0, 10_000_000),
        ];
        let d = disturbances(&rows, &["native".into(), "vm".into()]);
        assert_eq!(
            d,
            vec![Disturbance {
                env: "vm".into(),
                accounted: 3,
                disturbed: 2,
                stolen: 1
            }]
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_duration(40.0), "40 s");
        assert_eq!(fmt_duration(0.2), "under 1 s");
        assert_eq!(time_needed_text(0.2, 60.0), "under 1 s more");
        assert_eq!(fmt_duration(720.0), "12 min");
        assert_eq!(fmt_duration(3.5 * 3600.0), "3.5 h");
        assert_eq!(time_needed_text(120.0, 60.0), "≈2 min more");
        assert_eq!(
            time_needed_text(1e9, 60.0),
            "more than 100× this run's measuring time of 60 s"
        );
    }
}
