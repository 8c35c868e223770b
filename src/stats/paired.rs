//! Paired per-round comparison of one environment against native: the sign-adjusted log
//! ratios that every overhead estimate in isobench is computed from.
//!
//! **Overhead convention (used everywhere in isobench):** overhead is "how much worse
//! than native", as a fraction:
//!
//! - higher-is-better metrics (MB/s, GFLOP/s, IOPS): `overhead = native / env − 1`;
//! - lower-is-better metrics (ns, µs): `overhead = env / native − 1`.
//!
//! So +0.05 means 5% worse than native, −0.05 means 5% better, whatever the metric's
//! direction. Per round `r` the paired statistic is `d_r = ln(1 + overhead_r)` (the log of
//! the sign-adjusted ratio); estimates and intervals are computed on the `d_r` and mapped
//! back with `exp(d) − 1`.

use std::collections::BTreeMap;
use std::fmt;

/// Which direction of a metric is better. In result files it is the word `higher` or
/// `lower`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

impl Better {
    /// The direction a result file's word names (`higher`/`lower`); `None` for anything
    /// else (counters have an empty word). The one parser of the word.
    pub fn parse(word: &str) -> Option<Better> {
        match word {
            "higher" => Some(Better::Higher),
            "lower" => Some(Better::Lower),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Better::Higher => "higher",
            Better::Lower => "lower",
        }
    }

    /// Sign-adjusted log ratio of `env` against `reference`: positive when `env` is worse.
    /// `None` when either value is not a finite positive number (no log ratio exists).
    pub fn log_overhead(self, reference: f64, env: f64) -> Option<f64> {
        let ok = |x: f64| x.is_finite() && x > 0.0;
        if !ok(reference) || !ok(env) {
            return None;
        }
        Some(match self {
            Better::Higher => (reference / env).ln(),
            Better::Lower => (env / reference).ln(),
        })
    }

    /// `value` relative to `reference`, sign-adjusted so that > 1 means worse.
    pub fn relative_worse(self, reference: f64, value: f64) -> f64 {
        match self {
            Better::Higher => reference / value,
            Better::Lower => value / reference,
        }
    }
}

impl fmt::Display for Better {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Converts a sign-adjusted log ratio to an overhead fraction (`exp(d) − 1`).
pub fn overhead_from_log(d: f64) -> f64 {
    d.exp_m1()
}

/// Converts an overhead fraction to a sign-adjusted log ratio (`ln(1 + o)`).
pub fn log_from_overhead(o: f64) -> f64 {
    o.ln_1p()
}

/// The paired log ratios of one environment against native.
#[derive(Clone, Debug, PartialEq)]
pub struct Paired {
    /// Rounds present in both, ascending.
    pub rounds: Vec<u32>,
    /// `d_r`, one per entry of `rounds`.
    pub log_ratios: Vec<f64>,
    /// Rounds present in both whose values had no log ratio (zero, negative, NaN).
    pub unusable: usize,
}

/// Pairs `env` with `native` by round (each given as `(round, value)`; at most one value per
/// round is expected — a later duplicate replaces an earlier one) and computes the
/// sign-adjusted log ratios. Rounds present on only one side are ignored.
pub fn pair(native: &[(u32, f64)], env: &[(u32, f64)], better: Better) -> Paired {
    let native: BTreeMap<u32, f64> = native.iter().copied().collect();
    let env: BTreeMap<u32, f64> = env.iter().copied().collect();
    let mut out = Paired {
        rounds: Vec::new(),
        log_ratios: Vec::new(),
        unusable: 0,
    };
    for (round, n) in &native {
        if let Some(e) = env.get(round) {
            match better.log_overhead(*n, *e) {
                Some(d) => {
                    out.rounds.push(*round);
                    out.log_ratios.push(d);
                }
                None => out.unusable += 1,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_convention() {
        // Throughput halves: 100% worse. Latency doubles: 100% worse.
        let h = Better::Higher.log_overhead(200.0, 100.0).unwrap();
        let l = Better::Lower.log_overhead(100.0, 200.0).unwrap();
        assert!((overhead_from_log(h) - 1.0).abs() < 1e-12);
        assert!((overhead_from_log(l) - 1.0).abs() < 1e-12);
        // Faster than native is negative.
        assert!(Better::Higher.log_overhead(100.0, 110.0).unwrap() < 0.0);
        assert!(Better::Lower.log_overhead(100.0, 90.0).unwrap() < 0.0);
        assert_eq!(Better::Lower.log_overhead(0.0, 1.0), None);
    }

    #[test]
    fn pairs_by_round_only() {
        let native = [(0, 100.0), (1, 100.0), (2, 100.0), (4, 0.0)];
        let env = [(1, 50.0), (2, 100.0), (3, 10.0), (4, 1.0)];
        let p = pair(&native, &env, Better::Higher);
        assert_eq!(p.rounds, vec![1, 2]);
        assert!((p.log_ratios[0] - 2f64.ln()).abs() < 1e-12);
        assert_eq!(p.log_ratios[1], 0.0);
        assert_eq!(p.unusable, 1);
    }

    #[test]
    fn spread() {}
}
