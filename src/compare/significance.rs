//! The statistics of `compare`: a two-sample permutation test and a two-sample percentile
//! bootstrap interval, both on the difference of mean log values, both seeded. Pure: no IO.
//!
//! Method. Each side is the list of per-round log costs of one run (log of the overhead
//! ratio, or of the value, oriented so larger = worse). The statistic is
//! `T = mean(current) − mean(baseline)`, so `exp(T) − 1` is the relative change of the
//! geometric mean. Rounds of two different runs are not paired, so the test exchanges
//! round labels between the two runs (Fisher's permutation test; Good, *Permutation,
//! Parametric and Bootstrap Tests of Hypotheses*, 3rd ed., ch. 3). It is exact — every one
//! of the C(n₁+n₂, n₁) splits — when that count is at most [`EXACT_LIMIT`], and otherwise
//! a Monte Carlo test over `permutations` random splits with the p-value
//! `(1 + b) / (1 + N)` that never reports 0 (Phipson & Smyth 2010, "Permutation p-values
//! should never be zero"). The interval is the percentile bootstrap (Efron & Tibshirani
//! 1993, ch. 13) resampling each run's rounds with replacement, independently; with few
//! rounds it is narrower than it should be, so it describes the change and the decision
//! rests on the test.

use crate::stats::summary::{mean, quantile_sorted};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Splits are enumerated exactly when there are at most this many (10 vs 10 rounds: 184 756).
pub const EXACT_LIMIT: u64 = 200_000;

/// Tolerance, relative to the largest magnitude in the data, when comparing a permuted
/// statistic with the observed one, so that the observed split itself (and its mirror
/// image) always counts despite rounding.
const TIE_TOLERANCE: f64 = 1e-9;

/// How a p-value was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TestMethod {
    /// Every split of the pooled rounds was evaluated.
    Exact { splits: u64 },
    /// This many random splits were evaluated.
    MonteCarlo { permutations: u64 },
}

/// Outcome of the permutation test.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// Two-sided p-value for "both runs come from the same distribution".
    pub p_value: f64,
    /// The smallest p-value this test could report with these sample sizes; when it is not
    /// below alpha no change can be called significant.
    pub min_p_value: f64,
    pub method: TestMethod,
}

/// Number of ways to choose `k` of `n`, saturating at `u64::MAX`.
pub fn binomial(n: u64, k: u64) -> u64 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    let mut acc: u128 = 1;
    for i in 0..k {
        acc = acc * u128::from(n - i) / u128::from(i + 1);
        if acc > u128::from(u64::MAX) {
            return u64::MAX;
        }
    }
    acc as u64
}

/// `mean(current) − mean(baseline)`.
pub fn mean_difference(baseline: &[f64], current: &[f64]) -> f64 {
    mean(current) - mean(baseline)
}

/// Two-sided permutation test of `mean(current) − mean(baseline)`. Both slices must be
/// non-empty and finite (the caller guarantees it). Deterministic for a given `seed`.
pub fn permutation_test(
    baseline: &[f64],
    current: &[f64],
    permutations: u64,
    seed: u64,
) -> TestResult {
    assert!(
        !baseline.is_empty() && !current.is_empty(),
        "permutation test of an empty sample"
    );
    let n_b = baseline.len();
    let n_c = current.len();
    let pooled: Vec<f64> = baseline.iter().chain(current).copied().collect();
    let total: f64 = pooled.iter().sum();
    // With the pooled total fixed, the statistic is a function of the current group's sum.
    let stat = |current_sum: f64| current_sum / n_c as f64 - (total - current_sum) / n_b as f64;
    let observed = stat(current.iter().sum()).abs();
    // Ties are judged on the scale of the data: summing in another order moves T by a few
    // ulps of the values, so identical runs (T = 0 up to rounding) must give p = 1.
    let scale = pooled
        .iter()
        .map(|x| x.abs())
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let bar = observed - TIE_TOLERANCE * scale;

    let splits = binomial((n_b + n_c) as u64, n_c as u64);
    // When both groups have the same size every split has a mirror with the opposite sign,
    // so the most extreme |T| is reached at least twice.
    let extremes = if n_b == n_c { 2.0 } else { 1.0 };
    if splits <= EXACT_LIMIT {
        let mut at_least = 0u64;
        let mut idx: Vec<usize> = (0..n_c).collect();
        let n = pooled.len();
        loop {
            let s: f64 = idx.iter().map(|&i| pooled[i]).sum();
            if stat(s).abs() >= bar {
                at_least += 1;
            }
            // Next combination in lexicographic order.
            let Some(pos) = (0..n_c).rev().find(|&i| idx[i] < n - n_c + i) else {
                break;
            };
            idx[pos] += 1;
            for j in pos + 1..n_c {
                idx[j] = idx[j - 1] + 1;
            }
        }
        TestResult {
            p_value: at_least as f64 / splits as f64,
            min_p_value: (extremes / splits as f64).min(1.0),
            method: TestMethod::Exact { splits },
        }
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut work = pooled.clone();
        let mut at_least = 0u64;
        for _ in 0..permutations {
            // The first n_c entries after a partial shuffle are a uniform random subset.
            let (chosen, _) = work.partial_shuffle(&mut rng, n_c);
            let s: f64 = chosen.iter().sum();
            if stat(s).abs() >= bar {
                at_least += 1;
            }
        }
        TestResult {
            p_value: (1 + at_least) as f64 / (1 + permutations) as f64,
            min_p_value: 1.0 / (1 + permutations) as f64,
            method: TestMethod::MonteCarlo { permutations },
        }
    }
}

/// Percentile bootstrap interval of `mean(current) − mean(baseline)` at `confidence`
/// (e.g. 0.95): each side resampled with replacement, independently. Returns (low, high).
pub fn bootstrap_interval(
    baseline: &[f64],
    current: &[f64],
    resamples: u64,
    confidence: f64,
    seed: u64,
) -> (f64, f64) {
    assert!(
        !baseline.is_empty() && !current.is_empty(),
        "bootstrap of an empty sample"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let resample_mean = |v: &[f64], rng: &mut ChaCha8Rng| {
        let mut s = 0.0;
        for _ in 0..v.len() {
            s += v[rng.gen_range(0..v.len())];
        }
        s / v.len() as f64
    };
    let mut diffs: Vec<f64> = (0..resamples.max(1))
        .map(|_| resample_mean(current, &mut rng) - resample_mean(baseline, &mut rng))
        .collect();
    diffs.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    (
        quantile_sorted(&diffs, tail),
        quantile_sorted(&diffs, 1.0 - tail),
    )
}

/// The fewest rounds per run (equal on both sides) with which the test can reach
/// p < `alpha`: the smallest n with 2 / C(2n, n) < alpha.
pub fn rounds_needed(alpha: f64) -> u64 {
    (1..=64)
        .find(|&n| 2.0 / binomial(2 * n, n) as f64 <= alpha * (1.0 - 1e-12))
        .unwrap_or(64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn binomials() {
        assert_eq!(binomial(10, 5), 252);
        assert_eq!(binomial(5, 0), 1);
        assert_eq!(binomial(5, 5), 1);
        assert_eq!(binomial(40, 20), 137_846_528_820);
        assert_eq!(binomial(200, 100), u64::MAX);
    }

    #[test]
    fn exact_test_of_fully_separated_groups_reaches_its_minimum() {
        let a = [0.0, 0.01, 0.02, 0.03, 0.04];
        let b = [1.0, 1.01, 1.02, 1.03, 1.04];
        let r = permutation_test(&a, &b, 10_000, 1);
        assert_eq!(r.method, TestMethod::Exact { splits: 252 });
        assert!((r.p_value - 2.0 / 252.0).abs() < 1e-12, "{r:?}");
        assert_eq!(r.p_value, r.min_p_value);
    }

    #[test]
    fn identical_samples_give_p_one() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let r = permutation_test(&a, &a, 10_000, 1);
        assert_eq!(r.p_value, 1.0);
        // Values whose sums round differently depending on the order of addition.
        let b: Vec<f64> = (1..=8).map(|i| (f64::from(i) * 311.7).ln() * 0.1).collect();
        let r = permutation_test(&b, &b, 10_000, 1);
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn exact_p_value_matches_hand_count() {
        // Baseline {0, 1}, current {2}: splits of {0,1,2} choosing one as "current":
        // T for {0}: 0 - 1.5 = -1.5; {1}: 1 - 1 = 0; {2}: 2 - 0.5 = 1.5. |T| >= 1.5 twice.
        let r = permutation_test(&[0.0, 1.0], &[2.0], 10_000, 1);
        assert!((r.p_value - 2.0 / 3.0).abs() < 1e-12, "{r:?}");
    }

    #[test]
    fn monte_carlo_is_seeded_and_never_zero() {
        let a: Vec<f64> = (0..30).map(|i| f64::from(i) * 0.001).collect();
        let b: Vec<f64> = (0..30).map(|i| 1.0 + f64::from(i) * 0.001).collect();
        let r1 = permutation_test(&a, &b, 10_000, 7);
        let r2 = permutation_test(&a, &b, 10_000, 7);
        assert_eq!(r1, r2);
        assert_eq!(
            r1.method,
            TestMethod::MonteCarlo {
                permutations: 10_000
            }
        );
        assert!((r1.p_value - 1.0 / 10_001.0).abs() < 1e-12, "{r1:?}");
    }

    #[test]
    fn monte_carlo_agrees_with_exact_on_overlapping_groups() {
        let a = [0.0, 0.5, 0.9, 1.2, 0.3, 0.7, 1.1];
        let b = [0.4, 1.0, 1.3, 0.8, 1.5, 0.6, 1.4];
        let exact = permutation_test(&a, &b, 10_000, 3);
        assert!(matches!(exact.method, TestMethod::Exact { .. }));
        // Same data, forced through the Monte Carlo path by pretending the limit is tiny:
        // compare with an independent shuffle-based estimate.
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let pooled: Vec<f64> = a.iter().chain(&b).copied().collect();
        let obs = mean_difference(&a, &b).abs();
        let n = 200_000;
        let mut hits = 0;
        let mut w = pooled.clone();
        for _ in 0..n {
            w.shuffle(&mut rng);
            if mean_difference(&w[..7], &w[7..]).abs() >= obs - 1e-12 {
                hits += 1;
            }
        }
        let mc = hits as f64 / n as f64;
        assert!((mc - exact.p_value).abs() < 0.01, "{mc} vs {exact:?}");
    }

    #[test]
    fn bootstrap_interval_covers_the_shift_and_is_seeded() {
        let a: Vec<f64> = (0..20)
            .map(|i| (f64::from(i) * 0.37).sin() * 0.01)
            .collect();
        let b: Vec<f64> = a.iter().map(|x| x + 0.1).collect();
        let (lo, hi) = bootstrap_interval(&a, &b, 10_000, 0.95, 5);
        assert!(lo < 0.1 && 0.1 < hi && hi - lo < 0.02, "({lo}, {hi})");
        assert_eq!((lo, hi), bootstrap_interval(&a, &b, 10_000, 0.95, 5));
    }

    #[test]
    fn rounds_needed_for_alpha() {
        // 2 / C(10, 5) = 0.0079 < 0.01, 2 / C(8, 4) = 0.029.
        assert_eq!(rounds_needed(0.01), 5);
        assert_eq!(rounds_needed(0.05), 4);
    }

    proptest! {
        #[test]
        fn p_value_is_a_probability_and_symmetric(
            a in proptest::collection::vec(-5.0f64..5.0, 1..8),
            b in proptest::collection::vec(-5.0f64..5.0, 1..8),
        ) {
            let r = permutation_test(&a, &b, 2_000, 11);
            prop_assert!(r.p_value > 0.0 && r.p_value <= 1.0);
            prop_assert!(r.p_value >= r.min_p_value - 1e-12);
            let swapped = permutation_test(&b, &a, 2_000, 11);
            prop_assert!((r.p_value - swapped.p_value).abs() < 1e-9);
        }

        #[test]
        fn shifting_both_samples_changes_nothing(
            a in proptest::collection::vec(-5.0f64..5.0, 2..7),
            b in proptest::collection::vec(-5.0f64..5.0, 2..7),
            shift in -3.0f64..3.0,
        ) {
            let r = permutation_test(&a, &b, 2_000, 11);
            let sa: Vec<f64> = a.iter().map(|x| x + shift).collect();
            let sb: Vec<f64> = b.iter().map(|x| x + shift).collect();
            let s = permutation_test(&sa, &sb, 2_000, 11);
            prop_assert!((r.p_value - s.p_value).abs() < 1e-9);
        }
    }
}
