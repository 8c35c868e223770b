//! When a series of paired log ratios is precise enough to stop taking blocks: a
//! fixed-width sequential stopping rule (docs/METHODOLOGY.md, "Stopping rule").
//!
//! A scheduler takes blocks of a workload one after another and, every few blocks, asks
//! [`StoppingRule::reached`]: stop once the 95% half-width of the mean log ratio is at most
//! the target and at least `min_n` values are in. That is the fixed-width procedure of
//! Chow & Robbins (1965), which is asymptotically valid — the interval at the random
//! stopping time keeps its nominal coverage as the target shrinks — when the variance
//! estimate behind the half-width is consistent (Chow & Robbins for iid values; Glynn &
//! Whitt 1992 and Jones, Haran, Caffo & Neath 2006 for dependent ones, with batch
//! means). The minimum sample size keeps the rule from stopping on an early run of
//! values that happen to agree, and leaves the block bootstrap enough values to see the
//! dependence it has to keep (see [`DEFAULT_MIN_N`]).
//!
//! The half-width here is a cheap one for scheduling decisions, O(n) per call; the
//! interval that is reported is the circular block bootstrap's
//! (`bootstrap::estimate_mean`). It uses **batch means** (Jones et al. 2006): the `n`
//! values are cut into `a` batches of `b = ⌊√n⌋` consecutive values (the oldest
//! `n − a·b` are left out of the variance), the long-run variance is
//! `σ̂² = b/(a − 1) · Σ (Ȳ_j − Ȳ)²` over the batch means `Ȳ_j`, and the half-width is
//! `t_{a−1, 0.975} · σ̂ / √n`. Batches longer than the dependence makes their means
//! nearly independent, so positively autocorrelated noise widens the half-width as it
//! should (an iid standard error would be too small by √((1 + φ)/(1 − φ)) for AR(1)
//! noise, ≈ 1.5 at φ = 0.4). The batch size grows as √n, which makes the estimate
//! consistent (the condition for validity above), and the t quantile with `a − 1`
//! degrees of freedom keeps small samples from looking precise.

use super::summary::{mean, Estimator};

/// Default minimum number of values before the rule may stop. Not the half-width's
/// need (it works from 2 values) but the final interval's: the block bootstrap can only
/// keep autocorrelation it can see, and PW's test sees AR(1) φ = 0.4 in about 4 series of
/// 5 at n = 100 but in 1 of 5 at n = 30. On a quiet host whose noise is still
/// autocorrelated (φ 0.3–0.5, sd 0.5–3% per sample, target 1%), stopping at 30 gave 83%
/// coverage for a nominal 95%, at 100 88%, at 200 92% (1000 seeded trials); 100 is the
/// compromise with the time a quiet metric would otherwise not need.
pub const DEFAULT_MIN_N: usize = 100;

/// Default target half-width of the 95% interval on the log scale: 0.01 (≈ ±1%).
pub const DEFAULT_TARGET_HALF_WIDTH: f64 = 0.01;

/// When a series of paired log ratios is precise enough to stop taking blocks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoppingRule {
    /// Target half-width of the 95% interval of the mean log ratio (log scale: 0.01 is
    /// ≈ ±1% on the overhead).
    pub target_half_width: f64,
    /// No stop before this many values.
    pub min_n: usize,
}

impl Default for StoppingRule {
    fn default() -> StoppingRule {
        StoppingRule {
            target_half_width: DEFAULT_TARGET_HALF_WIDTH,
            min_n: DEFAULT_MIN_N,
        }
    }
}

impl StoppingRule {
    /// A rule for `target_half_width` (log scale) with the default minimum.
    pub fn new(target_half_width: f64) -> StoppingRule {
        StoppingRule {
            target_half_width,
            min_n: DEFAULT_MIN_N,
        }
    }

    /// True when `values` hold at least `min_n` (and at least 2) values and their
    /// [`half_width`] is at most the target.
    pub fn reached(&self, values: &[f64]) -> bool {
        values.len() >= self.min_n
            && half_width(values).is_some_and(|hw| hw <= self.target_half_width)
    }
}

/// A cheap 95% half-width of the mean of `values` on their own (log) scale, robust to
/// autocorrelation: batch means with batches of `⌊√n⌋` and a t quantile (see the module
/// documentation). For scheduling decisions while measuring; the final interval is the
/// bootstrap's. `None` for fewer than 2 values or any non-finite value.
pub fn half_width(values: &[f64]) -> Option<f64> {
    half_width_of(Estimator::Mean, values)
}

/// [`half_width`] of any [`Estimator`]: the batches' own estimates take the place of the
/// batch means (for a trimmed mean, each batch is trimmed), so the width follows the
/// estimator the analysis will use.
pub fn half_width_of(estimator: Estimator, values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let b = (n as f64).sqrt().floor() as usize;
    let a = n / b;
    let used = &values[n - a * b..];
    let batch_means: Vec<f64> = used
        .chunks_exact(b)
        .map(|c| estimator.apply(&mut c.to_vec()))
        .collect();
    let grand = mean(&batch_means);
    let ss: f64 = batch_means.iter().map(|m| (m - grand) * (m - grand)).sum();
    let long_run_variance = b as f64 * ss / (a - 1) as f64;
    Some(super::student::t975(a - 1) * (long_run_variance / n as f64).sqrt())
}

/// How many values a series with the spread of `values` would need for a 95% half-width
/// of `target_half_width`, as `⌈n · (hw / target)²⌉` (the half-width shrinks as 1/√n),
/// saturating at `u64::MAX`. Below `n` when the target is already reached. `None` when
/// [`half_width`] has no answer or the target is not a positive number. A planning
/// figure that assumes the spread stays the same, not a guarantee.
pub fn n_needed(values: &[f64], target_half_width: f64) -> Option<u64> {
    if !target_half_width.is_finite() || target_half_width <= 0.0 {
        return None;
    }
    let hw = half_width(values)?;
    let n = values.len() as f64 * (hw / target_half_width).powi(2);
    // `as` saturates: +∞ and anything above u64::MAX become u64::MAX.
    Some(n.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::stats::series::ar1;

    #[test]
    fn edge_cases() {
        assert_eq!(half_width(&[]), None);
        assert_eq!(half_width(&[1.0]), None);
        assert_eq!(half_width(&[1.0, f64::NAN, 2.0]), None);
        assert_eq!(half_width(&[0.3; 50]), Some(0.0));
        // Two values: two batches of one, t with 1 df.
        let hw = half_width(&[0.0, 1.0]).unwrap();
        assert!((hw - 12.706204736 * 0.5).abs() < 1e-12, "{hw}");
        assert_eq!(n_needed(&[1.0], 0.01), None);
        assert_eq!(n_needed(&[0.0, 1.0], 0.0), None);
        assert_eq!(n_needed(&[0.0, 1.0], f64::NAN), None);
        assert_eq!(n_needed(&[0.0, 1.0], 1e-300), Some(u64::MAX));
        assert_eq!(n_needed(&[0.3; 50], 0.01), Some(0));
    }

    #[test]
    fn the_rule_waits_for_min_n() {
        let rule = StoppingRule::default();
        assert_eq!(rule.min_n, DEFAULT_MIN_N);
        assert_eq!(rule.target_half_width, DEFAULT_TARGET_HALF_WIDTH);
        // Identical values are as precise as can be, but not before min_n of them.
        assert!(!rule.reached(&[0.02; DEFAULT_MIN_N - 1]));
        assert!(rule.reached(&[0.02; DEFAULT_MIN_N]));
        let rule = StoppingRule {
            min_n: 2,
            ..StoppingRule::default()
        };
        assert!(rule.reached(&[0.02; 2]));
        assert!(!rule.reached(&[0.02]));
        assert!(!StoppingRule::new(0.01).reached(&ar1(40, 0.0, 1)));
    }

    #[test]
    fn iid_half_width_is_about_the_t_interval() {
        // Uniform(−1, 1): sd 1/√3; at n = 10 000 the half-width ≈ 1.96/√3/100.
        let v = ar1(10_000, 0.0, 3);
        let hw = half_width(&v).unwrap();
        let expected = 1.96 / 3f64.sqrt() / 100.0;
        assert!((hw / expected - 1.0).abs() < 0.25, "{hw} vs {expected}");
    }

    #[test]
    fn autocorrelation_widens_the_half_width() {
        let mean_hw = |phi: f64| {
            (0..40)
                .map(|s| half_width(&ar1(4000, phi, s)).unwrap())
                .sum::<f64>()
                / 40.0
        };
        // AR(1) φ = 0.4 with innovations of sd 1/√3: the long-run sd is 1/√3/(1 − φ).
        let phi = 0.4;
        let expected = 1.96 / 3f64.sqrt() / (1.0 - phi) / 4000f64.sqrt();
        let hw = mean_hw(phi);
        assert!((hw / expected - 1.0).abs() < 0.1, "{hw} vs {expected}");
        // Against iid values of the same marginal sd (1/√3/√(1 − φ²)), the half-width is
        // √((1 + φ)/(1 − φ)) ≈ 1.53 times wider.
        let iid_like = mean_hw(0.0) / (1.0 - phi * phi).sqrt();
        let ratio = hw / iid_like;
        assert!((1.4..1.7).contains(&ratio), "{ratio}");
    }

    #[test]
    fn n_needed_scales_with_the_square_of_the_ratio() {
        let v = ar1(400, 0.3, 5);
        let hw = half_width(&v).unwrap();
        assert_eq!(n_needed(&v, hw), Some(400));
        assert_eq!(n_needed(&v, hw / 2.0), Some(1600));
        let quarter = n_needed(&v, hw * 2.0).unwrap();
        assert!((100..=101).contains(&quarter), "{quarter}");
    }
}
