//! Outlier flags (modified z-score) and the warm-up check (first rounds systematically
//! worse). Outliers are flagged and counted, never dropped.
//!
//! Modified z-score (Iglewicz & Hoaglin, *How to Detect and Handle Outliers*, 1993):
//! `M_i = 0.6745 · (x_i − median) / MAD`; a value is an outlier when `|M_i| > 3.5`.
//! When MAD = 0 (more than half the values equal) the score falls back to the mean
//! absolute deviation from the median: `M_i = (x_i − median) / (1.253314 · MeanAD)`
//! (1.253314 = √(π/2) makes MeanAD estimate σ for normal data, as 1/0.6745 does for MAD).
//! When MeanAD is 0 too, all values are equal and nothing is flagged.
//!
//! Warm-up check: the first third of the rounds against the rest, with a one-sided
//! Mann–Whitney U test (normal approximation) at α = 0.01 on the sign-adjusted values.
//! With 9 rounds the test can only fire when every early round is worse than every later
//! one; it needs at least [`WARMUP_MIN_ROUNDS`] rounds to say anything.

use super::paired::Better;
use super::summary::{mad, median};

/// Threshold on |M| above which a value is an outlier.
pub const OUTLIER_THRESHOLD: f64 = 3.5;

/// Fewest rounds the warm-up check looks at.
pub const WARMUP_MIN_ROUNDS: usize = 9;

/// Modified z-scores of `values` (empty in, empty out); all 0 when every value is equal.
pub fn modified_z_scores(values: &[f64]) -> Vec<f64> {
    if values.is_empty() {
        return Vec::new();
    }
    let med = median(values);
    let mad = mad(values);
    if mad > 0.0 {
        return values.iter().map(|x| 0.6745 * (x - med) / mad).collect();
    }
    let mean_ad = values.iter().map(|x| (x - med).abs()).sum::<f64>() / values.len() as f64;
    if mean_ad > 0.0 {
        values
            .iter()
            .map(|x| (x - med) / (1.253314 * mean_ad))
            .collect()
    } else {
        vec![0.0; values.len()]
    }
}

/// Whether each value is an outlier (|M| > 3.5).
pub fn outlier_flags(values: &[f64]) -> Vec<bool> {
    modified_z_scores(values)
        .into_iter()
        .map(|m| m.abs() > OUTLIER_THRESHOLD)
        .collect()
}

/// Number of outliers in `values`.
pub fn count_outliers(values: &[f64]) -> usize {
    outlier_flags(values).into_iter().filter(|f| *f).count()
}

/// The first rounds are worse than the rest (warm-up too short).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmupDrift {
    /// Rounds in the early group (the first third).
    pub early_rounds: usize,
    /// How much worse the early group's median is than the rest's, as a fraction.
    pub early_worse_by: f64,
    /// Mann–Whitney z of "early worse than late".
    pub z: f64,
}

/// Checks values given in round order for a slow start; `None` when there are too few
/// rounds or no significant difference.
pub fn warmup_drift(values_in_round_order: &[f64], better: Better) -> Option<WarmupDrift> {
    let n = values_in_round_order.len();
    if n < WARMUP_MIN_ROUNDS {
        return None;
    }
    // Sign-adjust so that larger = worse.
    let worse: Vec<f64> = values_in_round_order
        .iter()
        .map(|x| match better {
            Better::Higher => -x,
            Better::Lower => *x,
        })
        .collect();
    let k = n / 3;
    let (early, late) = worse.split_at(k);
    let mut u = 0.0;
    for e in early {
        for l in late {
            if e > l {
                u += 1.0;
            } else if e == l {
                u += 0.5;
            }
        }
    }
    let (k, r) = (early.len() as f64, late.len() as f64);
    let sd = (k * r * (k + r + 1.0) / 12.0).sqrt();
    let z = (u - k * r / 2.0) / sd;
    if z <= 2.326 {
        return None;
    }
    let early_med = median(&values_in_round_order[..early.len()]);
    let late_med = median(&values_in_round_order[early.len()..]);
    let early_worse_by = better.relative_worse(late_med, early_med) - 1.0;
    Some(WarmupDrift {
        early_rounds: early.len(),
        early_worse_by,
        z,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_the_far_value() {
        let v = [10.0, 10.1, 9.9, 10.05, 9.95, 10.0, 30.0];
        assert_eq!(
            outlier_flags(&v),
            vec![false, false, false, false, false, false, true]
        );
        assert_eq!(count_outliers(&v), 1);
    }

    #[test]
    fn mad_zero_falls_back_to_mean_abs_dev() {
        // MAD = 0 (most values equal); the single deviating value is flagged.
        let v = [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 9.0];
        let z = modified_z_scores(&v);
        assert_eq!(z[0], 0.0);
        assert!(z[6] > OUTLIER_THRESHOLD, "{z:?}");
        // All equal: nothing flagged.
        assert_eq!(count_outliers(&[3.0; 8]), 0);
        assert!(modified_z_scores(&[]).is_empty());
    }

    #[test]
    fn warmup() {
        // Throughput ramping up in the first rounds.
        let mut v = vec![80.0, 85.0, 90.0, 91.0];
        v.extend([100.0, 101.0, 99.0, 100.5, 99.5, 100.2, 100.1, 99.9]);
        let w = warmup_drift(&v, Better::Higher).expect("slow start detected");
        assert_eq!(w.early_rounds, 4);
        assert!(w.early_worse_by > 0.05);
        // Same shape for a latency metric: lower is better, early values higher.
        let lat: Vec<f64> = v.iter().map(|x| 10_000.0 / x).collect();
        assert!(warmup_drift(&lat, Better::Lower).is_some());
        // Early rounds faster is not a warm-up problem.
        assert!(warmup_drift(&lat, Better::Higher).is_none());
        // Stationary data and short runs: no note.
        let flat: Vec<f64> = (0..12)
            .map(|i| 100.0 + ((i * 7) % 5) as f64 * 0.1)
            .collect();
        assert!(warmup_drift(&flat, Better::Higher).is_none());
        assert!(warmup_drift(&v[..8], Better::Higher).is_none());
    }
}
