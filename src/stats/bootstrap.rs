//! Seeded percentile bootstrap of the mean (Efron & Tibshirani, *An Introduction to the
//! Bootstrap*, 1993, ch. 13), by circular blocks when the values show dependence
//! (Künsch 1989; Politis & Romano 1992): the confidence intervals of every overhead
//! estimate. docs/METHODOLOGY.md ("Intervals") states the rules and what they achieve.
//!
//! Method: draw `resamples` resamples of the paired log ratios (ChaCha8, seeded, so the
//! same inputs and seed always give the same interval), take each resample's mean, and
//! read the interval off the sorted means at the (α/2, 1 − α/2) quantiles (linear
//! interpolation between order statistics, "type 7"). A resample is `⌈n/l⌉` blocks of `l`
//! consecutive values, each starting at a uniformly drawn position and wrapping around
//! the end (the *circular* block bootstrap), cut to `n` values. With `l = 1` that is the
//! ordinary iid bootstrap, drawing exactly the same random numbers in the same order as
//! before blocks existed, so every stored run whose block length is 1 — all runs of fewer
//! than [`BLOCK_MIN_N`] rounds, and longer ones without significant autocorrelation —
//! re-renders byte for byte.
//!
//! Why blocks: when consecutive values are positively correlated (noise on a shared host
//! comes in bursts longer than one sample), the variance of the mean is
//! `(γ(0) + 2 Σ γ(k))/n`, not the `γ(0)/n` the iid bootstrap reproduces, and iid
//! intervals are too narrow: with AR(1) noise of φ = 0.4 a nominal 95% interval covers
//! about 80%. Blocks keep the dependence within `l` lags. The block length comes from
//! [`block_length`]:
//!
//! - `l = 1` below [`BLOCK_MIN_N`] values: too few to estimate autocorrelations (their
//!   standard error is ≈ 1/√n, over 0.22), and the length of today's runs (≤ 15 rounds);
//! - otherwise the automatic choice of Politis & White (2004) for the circular block
//!   bootstrap, in the form restated by Patton, Politis & White (2009) (whose correction
//!   concerns the stationary bootstrap's constant): from flat-top lag-window estimates
//!   (Politis & Romano 1995), the block length that minimises the mean squared error of
//!   the bootstrap variance of the mean, `l = (2 Ĝ² / D̂)^(1/3) · n^(1/3)` with
//!   `Ĝ = Σ λ(k/M) |k| γ̂(k)`, `D̂ = (4/3) ĝ(0)²` and `ĝ(0) = Σ λ(k/M) γ̂(k)` (sums over
//!   |k| ≤ M = 2m̂). One deviation: m̂ may be 0 (see [`flat_top`]), so that values with no
//!   significant autocorrelation keep `l = 1`. It adapts to the data with no tuning
//!   constant of ours: 1 for independent values, ≈ 4 / 7 / 12 for AR(1) φ = 0.4 at
//!   n = 200 / 500 / 2000;
//! - rounded to the nearest integer and capped at `min(⌈3√n⌉, ⌊n/4⌋)`: PW's own cap, and
//!   at least four blocks per resample so that resamples still differ.
//!
//! Blocks cost the covariances across the joins between blocks: to first order the
//! circular block bootstrap's variance of the mean is `σ²∞/n · (1 − B/l − l/n)` with
//! `B = Σ |k| γ(k) / Σ γ(k)` (Künsch 1989; the `l/n` comes from centring on the sample
//! mean) — for φ = 0.4 (B ≈ 0.95) and PW's `l` that is 15–25% too small at 200–500
//! values, where the percentile interval covers ≈ 91% instead of 95%. So when `l > 1` the
//! resampled means are spread about the mean by `κ = (1 − B̂/l − l/n)^(−1/2)`, with
//! `B̂ = Ĝ/ĝ(0)` — the same flat-top estimates PW use for this bias term — bounded to
//! `[1, √2]` (never narrower than the plain block bootstrap), and the interval is kept
//! within the range of the values, where any mean lies.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::summary::{mean, quantile_sorted, Estimator};

/// Default number of bootstrap resamples.
pub const DEFAULT_RESAMPLES: usize = 10_000;

/// Below this many values [`block_length`] is 1 (the iid bootstrap).
pub const BLOCK_MIN_N: usize = 20;

/// A closed interval `[low, high]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn map(self, f: impl Fn(f64) -> f64) -> Interval {
        Interval {
            low: f(self.low),
            high: f(self.high),
        }
    }

    pub fn contains(self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// The bootstrap distribution of the mean of one sample.
#[derive(Clone, Debug)]
pub struct BootstrapMeans {
    /// Resampled means, ascending.
    sorted: Vec<f64>,
}

impl BootstrapMeans {
    /// Resamples `values` (non-empty) `resamples` times (at least 1) by circular blocks of
    /// `block_len` values (clamped to 1..=n) with a ChaCha8 RNG seeded with `seed`.
    pub fn new(values: &[f64], resamples: usize, seed: u64, block_len: usize) -> BootstrapMeans {
        Self::of(Estimator::Mean, values, resamples, seed, block_len)
    }

    /// [`BootstrapMeans::new`] for the estimate `estimator` of each resample (the mean's
    /// resampling is unchanged: the same draws, the same additions).
    pub fn of(
        estimator: Estimator,
        values: &[f64],
        resamples: usize,
        seed: u64,
        block_len: usize,
    ) -> BootstrapMeans {
        assert!(!values.is_empty(), "bootstrap of no values");
        let resamples = resamples.max(1);
        let n = values.len();
        let l = block_len.clamp(1, n);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut resample = Vec::with_capacity(n);
        let mut sorted: Vec<f64> = (0..resamples)
            .map(|_| {
                if let Estimator::TrimmedMean(_) = estimator {
                    resample.clear();
                    let mut left = n;
                    while left > 0 {
                        let start = rng.gen_range(0..n);
                        let take = l.min(left);
                        let first = take.min(n - start);
                        resample.extend_from_slice(&values[start..start + first]);
                        resample.extend_from_slice(&values[..take - first]);
                        left -= take;
                    }
                    return estimator.apply(&mut resample);
                }
                // One draw per block, values summed in resample order: with l = 1 this is
                // exactly the iid bootstrap's sequence of draws and additions.
                let mut sum = 0.0;
                let mut left = n;
                while left > 0 {
                    let start = rng.gen_range(0..n);
                    let take = l.min(left);
                    let first = take.min(n - start);
                    for v in &values[start..start + first] {
                        sum += v;
                    }
                    for v in &values[..take - first] {
                        sum += v;
                    }
                    left -= take;
                }
                sum / n as f64
            })
            .collect();
        sorted.sort_by(f64::total_cmp);
        BootstrapMeans { sorted }
    }

    /// The percentile interval at confidence `level` (e.g. 0.95).
    pub fn interval(&self, level: f64) -> Interval {
        let alpha = (1.0 - level).clamp(0.0, 1.0);
        Interval {
            low: quantile_sorted(&self.sorted, alpha / 2.0),
            high: quantile_sorted(&self.sorted, 1.0 - alpha / 2.0),
        }
    }
}

/// The circular block bootstrap's block length for `values` (see the module
/// documentation): 1 below [`BLOCK_MIN_N`] values, for non-finite values or no spread;
/// otherwise Politis & White's (2004, corrected 2009) automatic choice, between 1 and
/// `min(⌈3√n⌉, ⌊n/4⌋)`.
pub fn block_length(values: &[f64]) -> usize {
    let n = values.len();
    if n < BLOCK_MIN_N {
        return 1;
    }
    let Some(FlatTop { g0, big_g }) = flat_top(values) else {
        return 1;
    };
    let nf = n as f64;
    let d_cb = 4.0 / 3.0 * g0 * g0;
    let b = (2.0 * big_g * big_g / d_cb).cbrt() * nf.cbrt();
    let cap = ((3.0 * nf.sqrt()).ceil() as usize).min(n / 4);
    // `as` maps NaN to 0, which the clamp lifts to 1.
    (b.round() as usize).clamp(1, cap)
}

/// Flat-top lag-window estimates of Politis & White (2004): `g0 = Σ λ(k/M) γ̂(k)` (the
/// long-run variance `Σ γ(k)`, 2π times the spectral density at 0) and
/// `big_g = Σ λ(k/M) |k| γ̂(k)` (`Σ |k| γ(k)`), sums over |k| ≤ M.
struct FlatTop {
    g0: f64,
    big_g: f64,
}

/// The [`FlatTop`] estimates of `values`, with M = 2m̂ chosen as in PW 2004 (footnote c)
/// except that m̂ may be 0. `None` for fewer than 2 values, non-finite values, no spread,
/// or a non-positive long-run variance estimate (strong negative dependence: nothing to
/// keep together, and iid resampling then errs on the wide side).
fn flat_top(values: &[f64]) -> Option<FlatTop> {
    let n = values.len();
    if n < 2 || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let nf = n as f64;
    // PW's K_N = max(5, √log10 n) consecutive insignificant autocorrelations; 5 below
    // n = 10^25.
    const K_N: usize = 5;
    let m_max = nf.sqrt().ceil() as usize + K_N;
    let acov = autocovariances(values, m_max);
    if acov[0] <= 0.0 {
        return None;
    }
    // m̂: the smallest m after which K_N autocorrelations in a row are insignificant at
    // c·√(log10 n / n), c = 2 (PW 2004, footnote c; Politis 2003); when there is no such
    // run, the largest significant lag. PW take m̂ ≥ 1; we let it be 0 when none of the
    // first K_N is significant: no evidence of dependence, bandwidth 0, Ĝ = 0 and blocks
    // of 1. Otherwise PW's m̂ ≥ 1 turns the noise in ρ̂(1) of independent values into
    // blocks of 2–5 about half the time, which costs short series coverage.
    let critical = 2.0 * (nf.log10() / nf).sqrt();
    let small = |k: usize| (acov[k] / acov[0]).abs() < critical;
    let m_hat = (0..=m_max - K_N)
        .find(|&m| (m + 1..=m + K_N).all(small))
        .or_else(|| (1..=m_max).rev().find(|&k| !small(k)))
        .unwrap_or(0);
    let big_m = (2 * m_hat).min(m_max);
    // Flat-top lag window (Politis & Romano 1995): 1 up to M/2, then linear to 0 at M.
    let lambda = |t: f64| if t <= 0.5 { 1.0 } else { 2.0 * (1.0 - t) };
    let mut g0 = acov[0];
    let mut big_g = 0.0;
    for (k, gamma) in acov.iter().enumerate().take(big_m + 1).skip(1) {
        let w = lambda(k as f64 / big_m as f64);
        g0 += 2.0 * w * gamma;
        big_g += 2.0 * w * k as f64 * gamma;
    }
    (g0 > 0.0).then_some(FlatTop { g0, big_g })
}

/// Sample autocovariances γ̂(0..=max_lag) of `values` around their mean, each divided by n
/// (the usual biased estimator, positive semi-definite); lags past n − 1 are 0.
fn autocovariances(values: &[f64], max_lag: usize) -> Vec<f64> {
    let n = values.len();
    if n == 0 {
        return vec![0.0; max_lag + 1];
    }
    let m = mean(values);
    let centred: Vec<f64> = values.iter().map(|v| v - m).collect();
    (0..=max_lag)
        .map(|k| {
            if k >= n {
                return 0.0;
            }
            let s: f64 = centred[..n - k]
                .iter()
                .zip(&centred[k..])
                .map(|(a, b)| a * b)
                .sum();
            s / n as f64
        })
        .collect()
}

/// 64-bit FNV-1a of `bytes` (stable across platforms and versions).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The seed of one comparison's own random stream: the run's `seed` mixed with a key naming
/// the comparison, so that a result depends only on the seed and its own data, not on which
/// other comparisons were made.
pub fn stream_seed(seed: u64, key: &str) -> u64 {
    seed ^ fnv1a64(key.as_bytes())
}

/// Mean of `values` with its 95% and 90% percentile-bootstrap intervals, all from one
/// set of resamples (widened by κ when blocks are longer than 1; see the module
/// documentation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanEstimate {
    pub mean: f64,
    pub ci95: Interval,
    pub ci90: Interval,
    /// Block length of the circular block bootstrap (1: iid resampling).
    pub block_len: usize,
}

/// Estimates the mean of `values` (non-empty) with circular-block-bootstrap intervals,
/// in blocks of [`block_length`]`(values)`.
pub fn estimate_mean(values: &[f64], resamples: usize, seed: u64) -> MeanEstimate {
    estimate_mean_with_block_length(values, resamples, seed, block_length(values))
}

/// [`estimate_mean`] for any [`Estimator`]: the estimate of `values` with its
/// circular-block-bootstrap intervals (the same block length and widening as the mean's).
/// `mean` of the result holds the estimate.
pub fn estimate(estimator: Estimator, values: &[f64], resamples: usize, seed: u64) -> MeanEstimate {
    if estimator == Estimator::Mean {
        return estimate_mean(values, resamples, seed);
    }
    let block_len = block_length(values).clamp(1, values.len().max(1));
    let boot = BootstrapMeans::of(estimator, values, resamples, seed, block_len);
    let m = estimator.apply(&mut values.to_vec());
    widened(values, m, boot, block_len)
}

/// [`estimate_mean`] with a given block length (clamped to 1..=n; 1 = iid resampling,
/// exactly as before blocks existed).
pub fn estimate_mean_with_block_length(
    values: &[f64],
    resamples: usize,
    seed: u64,
    block_len: usize,
) -> MeanEstimate {
    let block_len = block_len.clamp(1, values.len().max(1));
    let boot = BootstrapMeans::new(values, resamples, seed, block_len);
    widened(values, mean(values), boot, block_len)
}

/// The intervals of `boot` around the estimate `m`, widened by κ when blocks are longer
/// than 1.
fn widened(values: &[f64], m: f64, boot: BootstrapMeans, block_len: usize) -> MeanEstimate {
    let (ci95, ci90) = (boot.interval(0.95), boot.interval(0.90));
    let (ci95, ci90) = if block_len == 1 {
        (ci95, ci90)
    } else {
        let kappa = block_bias_scale(values, block_len);
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let widen = |i: Interval| i.map(|x| (m + kappa * (x - m)).clamp(lo, hi));
        (widen(ci95), widen(ci90))
    };
    MeanEstimate {
        mean: m,
        ci95,
        ci90,
        block_len,
    }
}

/// κ of the module documentation: `(1 − B̂/l − l/n)^(−1/2)` with `B̂ = Ĝ/ĝ(0)`, bounded to
/// `[1, √2]`: never narrower than the plain block bootstrap (a negative B̂ is left alone),
/// and a block so short that the correction would be larger is the wrong block anyway.
/// 1 without flat-top estimates.
fn block_bias_scale(values: &[f64], l: usize) -> f64 {
    let Some(FlatTop { g0, big_g }) = flat_top(values) else {
        return 1.0;
    };
    let (l, n) = (l as f64, values.len() as f64);
    let kept = 1.0 - big_g / g0 / l - l / n;
    if kept.is_nan() {
        return 1.0;
    }
    (1.0 / kept.max(0.5)).sqrt().max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::summary::quantile_sorted;

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert_eq!(quantile_sorted(&v, 1.0), 5.0);
        assert_eq!(quantile_sorted(&v, 0.5), 3.0);
        assert!((quantile_sorted(&v, 0.125) - 1.5).abs() < 1e-12);
    }

    #[test]
    fn constant_data_gives_point_interval() {
        let e = estimate_mean(&[0.25; 7], 500, 1);
        assert_eq!(e.mean, 0.25);
        assert_eq!(
            e.ci95,
            Interval {
                low: 0.25,
                high: 0.25
            }
        );
    }

    #[test]
    fn nested_and_seeded() {
        let v: Vec<f64> = (0..20).map(|i| (i as f64 * 0.37).sin()).collect();
        let a = estimate_mean(&v, 2000, 9);
        let b = estimate_mean(&v, 2000, 9);
        let c = estimate_mean(&v, 2000, 10);
        assert_eq!(a, b);
        assert_ne!(a.ci95, c.ci95);
        assert!(a.ci95.low <= a.ci90.low && a.ci90.high <= a.ci95.high);
        assert!(a.ci90.contains(a.mean));
    }

    /// Today's (iid) output for fixed inputs, recorded before the block bootstrap existed:
    /// a run of fewer than 20 rounds must keep re-rendering byte for byte.
    #[test]
    fn iid_resampling_is_pinned() {
        let v = [
            0.03,
            0.07958324052262343,
            0.017222944898658436,
            -0.016290734116386624,
            0.054705667556930404,
            0.06992435563117452,
            -0.004993734379677116,
            -0.0009068556118516646,
            0.07295809074282479,
            0.04983702865653068,
            -0.018069874593977846,
            0.02255004870929006,
            0.07998964500713346,
            0.024568170228796187,
            -0.018589922287193167,
        ];
        assert_eq!(
            estimate_mean(&v, 2000, 0x5eed),
            MeanEstimate {
                mean: 0.029499204730991702,
                ci95: Interval {
                    low: 0.011273290898236721,
                    high: 0.04763876724599107
                },
                ci90: Interval {
                    low: 0.014080756717801875,
                    high: 0.04490688527326713
                },
                block_len: 1,
            }
        );
        let w = [
            0.1,
            0.09323273456060345,
            0.07384685587295879,
            0.0444661516741707,
            0.009067162446430969,
            -0.027559024682451295,
            -0.06045522710579293,
        ];
        assert_eq!(
            estimate_mean(&w, 10_000, 42),
            MeanEstimate {
                mean: 0.03322837896655996,
                ci95: Interval {
                    low: -0.00941266314630937,
                    high: 0.07417410991898876
                },
                ci90: Interval {
                    low: -0.0036474957413918153,
                    high: 0.06767199339447594
                },
                block_len: 1,
            }
        );
    }

    /// The iid bootstrap exactly as it was written before blocks: the reference that
    /// block length 1 must reproduce draw for draw.
    fn iid_reference(values: &[f64], resamples: usize, seed: u64) -> Vec<f64> {
        let n = values.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut means: Vec<f64> = (0..resamples)
            .map(|_| {
                let mut sum = 0.0;
                for _ in 0..n {
                    sum += values[rng.gen_range(0..n)];
                }
                sum / n as f64
            })
            .collect();
        means.sort_by(f64::total_cmp);
        means
    }

    use crate::stats::series::ar1;

    #[test]
    fn block_length_one_resamples_exactly_as_the_iid_bootstrap() {
        for (n, seed) in [(1, 3), (2, 4), (7, 5), (19, 6), (20, 7), (64, 8), (300, 9)] {
            let v = ar1(n, 0.6, seed);
            let blocked = BootstrapMeans::new(&v, 700, seed, 1);
            assert_eq!(blocked.sorted, iid_reference(&v, 700, seed), "n = {n}");
        }
    }

    #[test]
    fn block_length_is_one_below_twenty_values() {
        for n in 0..BLOCK_MIN_N {
            // Even a strongly dependent series: too short to tell.
            assert_eq!(block_length(&ar1(n, 0.9, n as u64)), 1, "n = {n}");
            assert_eq!(block_length(&vec![1.0; n]), 1);
        }
        let v = ar1(40, 0.9, 1);
        assert!(block_length(&v) > 1);
        assert_eq!(estimate_mean(&v[..19], 100, 1).block_len, 1);
    }

    #[test]
    fn block_length_follows_the_dependence() {
        // Independent values: blocks of (nearly) one.
        let mut iid: Vec<usize> = (0..40).map(|s| block_length(&ar1(900, 0.0, s))).collect();
        iid.sort();
        assert!(iid[20] == 1 && iid[39] <= 3, "{iid:?}");
        // AR(1) φ = 0.4 at n = 900: PW's asymptotic optimum is ≈ 10.7.
        let mut dep: Vec<usize> = (0..40).map(|s| block_length(&ar1(900, 0.4, s))).collect();
        dep.sort();
        assert!((7..=15).contains(&dep[20]), "{dep:?}");
        // Stronger dependence, longer blocks; the cap holds.
        assert!(block_length(&ar1(900, 0.9, 1)) > dep[20]);
        assert!(block_length(&ar1(24, 0.99, 1)) <= 6);
        assert!(block_length(&ar1(10_000, 0.999, 1)) <= 300);
        // No spread or non-finite values: iid.
        assert_eq!(block_length(&[2.5; 100]), 1);
        let mut nan = ar1(100, 0.9, 1);
        nan[3] = f64::NAN;
        assert_eq!(block_length(&nan), 1);
    }

    #[test]
    fn blocks_wrap_around_the_end() {
        // One block as long as the series: every resample is a rotation of it, so every
        // resampled mean is the mean (up to the order of additions).
        let v = ar1(50, 0.5, 2);
        let e = estimate_mean_with_block_length(&v, 300, 4, 50);
        assert_eq!(e.block_len, 50);
        assert!((e.ci95.high - e.ci95.low).abs() < 1e-12);
        assert!((e.ci95.low - e.mean).abs() < 1e-12);
        // Out-of-range block lengths are clamped, not a panic.
        assert_eq!(estimate_mean_with_block_length(&v, 10, 4, 0).block_len, 1);
        assert_eq!(estimate_mean_with_block_length(&v, 10, 4, 99).block_len, 50);
    }

    #[test]
    fn blocks_widen_the_interval_of_a_dependent_series() {
        // The long-run variance of AR(1) φ = 0.6 is (1 + φ)/(1 − φ) = 4 times γ(0): the
        // interval should be about twice as wide as the iid bootstrap's.
        let width = |e: MeanEstimate| e.ci95.high - e.ci95.low;
        let ratios: Vec<f64> = (0..20)
            .map(|s| {
                let v = ar1(400, 0.6, 100 + s);
                let blocked = estimate_mean(&v, 2000, s);
                assert!(blocked.block_len > 1);
                width(blocked) / width(estimate_mean_with_block_length(&v, 2000, s, 1))
            })
            .collect();
        let mean_ratio = mean(&ratios);
        assert!((1.8..2.2).contains(&mean_ratio), "{mean_ratio} {ratios:?}");
    }

    #[test]
    fn the_block_bias_correction_is_bounded() {
        // AR(1) φ = 0.4 with PW's block: B ≈ 0.95, so κ² ≈ 1/(1 − 0.95/l − l/n).
        let v = ar1(900, 0.4, 3);
        let l = block_length(&v);
        let kappa = block_bias_scale(&v, l);
        let expected = (1.0 / (1.0 - 0.95 / l as f64 - l as f64 / 900.0)).sqrt();
        assert!(
            (kappa - expected).abs() < 0.05,
            "{kappa} vs {expected} (l = {l})"
        );
        // Never narrower, at most √2 wider.
        assert_eq!(block_bias_scale(&ar1(900, -0.6, 3), 3), 1.0);
        assert_eq!(block_bias_scale(&ar1(900, 0.95, 3), 2), 2f64.sqrt());
        assert_eq!(block_bias_scale(&[1.0; 50], 2), 1.0);
        // The widened interval of a mean still lies within the values.
        let short: Vec<f64> = ar1(24, 0.95, 8);
        let e = estimate_mean_with_block_length(&short, 500, 1, 6);
        let lo = short.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = short.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(lo <= e.ci95.low && e.ci95.low <= e.ci90.low && e.ci90.low <= e.mean);
        assert!(e.mean <= e.ci90.high && e.ci90.high <= e.ci95.high && e.ci95.high <= hi);
    }
}
