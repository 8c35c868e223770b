//! Pooling one quantity measured on many hosts: the DerSimonian–Laird random-effects model
//! (docs/METHODOLOGY.md, "Many hosts"). Numbers in, numbers out.
//!
//! Each host `i` gives an estimate `yᵢ` (a log overhead) with a within-host variance `vᵢ`
//! (its squared standard error). The model is `yᵢ = μ + uᵢ + εᵢ` with `uᵢ ~ N(0, τ²)` the
//! host's own deviation and `εᵢ ~ N(0, vᵢ)` its measurement error:
//!
//! - fixed-effect weights `wᵢ = 1/vᵢ`, `ȳ = Σwᵢyᵢ / Σwᵢ`;
//! - Cochran's `Q = Σwᵢ(yᵢ − ȳ)²` with `k − 1` degrees of freedom;
//! - `τ² = max(0, (Q − (k−1)) / (Σwᵢ − Σwᵢ²/Σwᵢ))` (DerSimonian & Laird 1986);
//! - random-effects weights `wᵢ* = 1/(vᵢ + τ²)`, pooled `μ = Σwᵢ*yᵢ / Σwᵢ*` with
//!   standard error `se = 1/√Σwᵢ*`;
//! - intervals from Hartung–Knapp–Sidik–Jonkman (Hartung & Knapp 2001, Sidik & Jonkman
//!   2002): `q = Σwᵢ*(yᵢ − μ)² / (k − 1)`, `μ ± t(k−1)·se·√max(1, q)`. Student's t with
//!   k − 1 degrees of freedom, and the hosts' own spread around μ, widen the interval when
//!   there are few hosts (the normal interval `μ ± z·se` of DerSimonian–Laird covers far
//!   less than its nominal 95% with 2–5 hosts). The `max(1, ·)` keeps it never narrower
//!   than the normal one (Knapp & Hartung 2003; Röver, Knapp & Friede 2015). One host: its
//!   own normal interval;
//! - `I² = max(0, (Q − (k−1)) / Q)`: the share of the spread between hosts that is not
//!   measurement noise (0 = the hosts agree within their intervals).

use super::bootstrap::Interval;
use super::student::{t95, t975};

/// One host's estimate of the pooled quantity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Study {
    /// The estimate (a log overhead).
    pub estimate: f64,
    /// Its standard error (> 0).
    pub se: f64,
}

impl Study {
    /// A study from its 95% interval `[low, high]`: the standard error is the half-width
    /// over the normal quantile. A zero-width interval gets a tiny floor so that its
    /// weight stays finite.
    pub fn from_ci95(estimate: f64, interval: Interval) -> Study {
        let z = Z95;
        let se = ((interval.high - interval.low) / (2.0 * z)).abs();
        Study {
            estimate,
            se: se.max(MIN_SE),
        }
    }
}

/// The smallest standard error a study is given (a perfectly repeatable host would
/// otherwise carry infinite weight).
pub const MIN_SE: f64 = 1e-9;

/// The random-effects pooled estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pooled {
    /// Number of studies (hosts).
    pub k: usize,
    /// Pooled estimate μ.
    pub estimate: f64,
    /// Standard error of μ (DerSimonian–Laird's, `1/√Σwᵢ*`).
    pub se: f64,
    /// The factor the intervals widen `se` by, `√max(1, q)` (Hartung–Knapp; 1 for one host).
    pub hk_scale: f64,
    pub ci95: Interval,
    pub ci90: Interval,
    /// Between-host variance τ² and its square root τ (same unit as the estimates).
    pub tau2: f64,
    pub tau: f64,
    /// Cochran's Q.
    pub q: f64,
    /// I² as a fraction in [0, 1].
    pub i2: f64,
}

/// Pools `studies` (at least one, every `se` finite and > 0) with DerSimonian–Laird.
/// Returns `None` for an empty slice or a study with a non-finite estimate or se.
pub fn pool(studies: &[Study]) -> Option<Pooled> {
    if studies.is_empty()
        || studies
            .iter()
            .any(|s| !s.estimate.is_finite() || !s.se.is_finite() || s.se <= 0.0)
    {
        return None;
    }
    let k = studies.len();
    let w: Vec<f64> = studies.iter().map(|s| 1.0 / (s.se * s.se)).collect();
    let sw: f64 = w.iter().sum();
    let sw2: f64 = w.iter().map(|x| x * x).sum();
    let fixed: f64 = w
        .iter()
        .zip(studies)
        .map(|(w, s)| w * s.estimate)
        .sum::<f64>()
        / sw;
    let q: f64 = w
        .iter()
        .zip(studies)
        .map(|(w, s)| w * (s.estimate - fixed).powi(2))
        .sum();
    let df = (k - 1) as f64;
    let c = sw - sw2 / sw;
    let tau2 = if k > 1 && c > 0.0 {
        ((q - df) / c).max(0.0)
    } else {
        0.0
    };
    let ws: Vec<f64> = studies.iter().map(|s| 1.0 / (s.se * s.se + tau2)).collect();
    let sws: f64 = ws.iter().sum();
    let estimate = ws
        .iter()
        .zip(studies)
        .map(|(w, s)| w * s.estimate)
        .sum::<f64>()
        / sws;
    let se = (1.0 / sws).sqrt();
    let (hk_scale, q95, q90) = if k > 1 {
        let spread = ws
            .iter()
            .zip(studies)
            .map(|(w, s)| w * (s.estimate - estimate).powi(2))
            .sum::<f64>()
            / df;
        (spread.max(1.0).sqrt(), t975(k - 1), t95(k - 1))
    } else {
        (1.0, Z95, Z90)
    };
    let around = |t: f64| Interval {
        low: estimate - t * se * hk_scale,
        high: estimate + t * se * hk_scale,
    };
    let i2 = if k > 1 && q > df { (q - df) / q } else { 0.0 };
    Some(Pooled {
        k,
        estimate,
        se,
        hk_scale,
        ci95: around(q95),
        ci90: around(q90),
        tau2,
        tau: tau2.sqrt(),
        q,
        i2,
    })
}

/// Two-sided normal quantiles of the 95% and 90% intervals.
pub const Z95: f64 = 1.959_963_984_540_054;
pub const Z90: f64 = 1.644_853_626_951_472_2;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr_normal::normal;

    /// A standard normal draw (Box–Muller), so the tests need no extra crate.
    mod rand_distr_normal {
        use rand::Rng;
        pub fn normal(rng: &mut impl Rng) -> f64 {
            let u: f64 = rng.gen_range(f64::EPSILON..1.0);
            let v: f64 = rng.gen_range(0.0..1.0);
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    #[test]
    fn a_study_from_its_interval() {
        let s = Study::from_ci95(
            0.1,
            Interval {
                low: 0.1 - Z95 * 0.02,
                high: 0.1 + Z95 * 0.02,
            },
        );
        assert!((s.se - 0.02).abs() < 1e-12);
        let flat = Study::from_ci95(
            0.1,
            Interval {
                low: 0.1,
                high: 0.1,
            },
        );
        assert_eq!(flat.se, MIN_SE);
    }

    #[test]
    fn textbook_example() {
        // Three studies by hand: y = (0, 0.1, 0.3), se = 0.1 each: w = 100,
        // ȳ = 0.1333, Q = 100·(0.01778 + 0.00111 + 0.02778) = 4.667, C = 300 − 30000/300
        // = 200, τ² = (4.667 − 2)/200 = 0.01333, I² = 2.667/4.667 = 0.5714.
        let s = |y| Study {
            estimate: y,
            se: 0.1,
        };
        let p = pool(&[s(0.0), s(0.1), s(0.3)]).unwrap();
        assert!((p.q - 4.666_667).abs() < 1e-5, "{p:?}");
        assert!((p.tau2 - 0.013_333).abs() < 1e-5, "{p:?}");
        assert!((p.i2 - 0.571_429).abs() < 1e-5, "{p:?}");
        assert!((p.estimate - 0.133_333).abs() < 1e-5, "{p:?}");
        // Equal weights: se = √((0.01 + τ²)/3).
        assert!((p.se - ((0.01 + p.tau2) / 3.0).sqrt()).abs() < 1e-12);
        // Hartung–Knapp: w* = 1/(0.01 + τ²) = 42.857, Σw*(y − μ)² = 42.857 · 0.046667 = 2,
        // over k − 1 = 2: q = 1, so the scale is 1 and the 95% interval is μ ± t(2)·se,
        // t(2) = 4.302653.
        assert!((p.hk_scale - 1.0).abs() < 1e-9, "{p:?}");
        assert!(
            (p.ci95.high - p.estimate - 4.302_652_73 * p.se).abs() < 1e-9,
            "{p:?}"
        );
        assert!(
            (p.estimate - p.ci90.low - 2.919_985_58 * p.se).abs() < 1e-9,
            "{p:?}"
        );
    }

    #[test]
    fn few_hosts_that_scatter_widen_the_interval_beyond_the_normal_one() {
        // Three hosts, each sure of itself (se 0.001), scattered by 0.02: DL's normal interval
        // would be about ±0.023; Hartung–Knapp's t(2) interval is wider, and it still holds
        // the hosts' mean.
        let s = |y| Study {
            estimate: y,
            se: 0.001,
        };
        let p = pool(&[s(0.00), s(0.02), s(0.04)]).unwrap();
        let normal = Z95 * p.se;
        let half = (p.ci95.high - p.ci95.low) / 2.0;
        assert!(half > 2.0 * normal, "{half} vs {normal}: {p:?}");
        assert!(p.ci95.contains(0.02));
        // Its scale: the hosts' spread around μ relative to their weights.
        assert!(p.hk_scale >= 1.0);
    }

    /// The point of the change: with 3 hosts whose true overheads spread (τ = 0.02) and
    /// each measured to se 0.005, the 95% interval holds the true mean in about 95% of
    /// fleets (the normal DerSimonian–Laird interval held it in far fewer).
    #[test]
    fn coverage_with_three_hosts_is_near_nominal() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let trials = 4000;
        let (mut hk, mut dl) = (0, 0);
        for _ in 0..trials {
            let studies: Vec<Study> = (0..3)
                .map(|_| Study {
                    estimate: 0.05 + 0.02 * normal(&mut rng) + 0.005 * normal(&mut rng),
                    se: 0.005,
                })
                .collect();
            let p = pool(&studies).unwrap();
            hk += usize::from(p.ci95.contains(0.05));
            dl += usize::from((p.estimate - 0.05).abs() <= Z95 * p.se);
        }
        let (hk, dl) = (hk as f64 / trials as f64, dl as f64 / trials as f64);
        println!("coverage of 95% intervals, 3 hosts: Hartung–Knapp {hk:.3}, normal {dl:.3}");
        assert!(hk > 0.93, "Hartung–Knapp coverage {hk}");
        assert!(dl < hk - 0.05, "DL {dl} against HK {hk}");
    }

    #[test]
    fn bad_input_pools_nothing() {
        assert_eq!(pool(&[]), None);
        let bad = Study {
            estimate: f64::NAN,
            se: 0.1,
        };
        assert_eq!(pool(&[bad]), None);
        let zero = Study {
            estimate: 0.1,
            se: 0.0,
        };
        assert_eq!(pool(&[zero]), None);
    }

    #[test]
    fn one_host_is_its_own_estimate() {
        let p = pool(&[Study {
            estimate: 0.02,
            se: 0.005,
        }])
        .unwrap();
        assert_eq!((p.estimate, p.se, p.tau2, p.i2), (0.02, 0.005, 0.0, 0.0));
    }

    #[test]
    fn known_spread_is_recovered() {
        // 400 hosts whose true overheads spread with τ = 0.03 around 0.05, each measured
        // with se = 0.005: DL recovers τ and μ.
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let studies: Vec<Study> = (0..400)
            .map(|_| {
                let truth = 0.05 + 0.03 * normal(&mut rng);
                Study {
                    estimate: truth + 0.005 * normal(&mut rng),
                    se: 0.005,
                }
            })
            .collect();
        let p = pool(&studies).unwrap();
        assert!((p.tau - 0.03).abs() < 0.004, "τ {}", p.tau);
        assert!((p.estimate - 0.05).abs() < 0.005, "μ {}", p.estimate);
        assert!(p.i2 > 0.9, "I² {}", p.i2);
    }

    proptest! {
        #[test]
        fn identical_hosts_pool_to_the_host(y in -1.0f64..1.0, se in 1e-4f64..0.5, k in 1usize..30) {
            let p = pool(&vec![Study { estimate: y, se }; k]).unwrap();
            prop_assert!((p.estimate - y).abs() < 1e-12);
            prop_assert!(p.i2.abs() < 1e-12 && p.tau2.abs() < 1e-12);
            prop_assert!((p.se - se / (k as f64).sqrt()).abs() < 1e-9 * se.max(1.0));
            prop_assert!(p.ci95.low <= p.ci90.low && p.ci90.high <= p.ci95.high);
        }

        #[test]
        fn pooled_lies_within_the_hosts(ys in prop::collection::vec((-1.0f64..1.0, 1e-3f64..0.3), 1..20)) {
            let studies: Vec<Study> = ys.iter().map(|&(estimate, se)| Study { estimate, se }).collect();
            let p = pool(&studies).unwrap();
            let lo = ys.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
            let hi = ys.iter().map(|s| s.0).fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(p.estimate >= lo - 1e-9 && p.estimate <= hi + 1e-9);
            prop_assert!((0.0..=1.0).contains(&p.i2));
            prop_assert!(p.tau2 >= 0.0 && p.q >= 0.0);
            prop_assert!(p.ci95.contains(p.estimate));
        }

        #[test]
        fn shifting_every_host_shifts_the_pool(ys in prop::collection::vec((-1.0f64..1.0, 1e-3f64..0.3), 2..20), d in -1.0f64..1.0) {
            let a: Vec<Study> = ys.iter().map(|&(estimate, se)| Study { estimate, se }).collect();
            let b: Vec<Study> = a.iter().map(|s| Study { estimate: s.estimate + d, ..*s }).collect();
            let (pa, pb) = (pool(&a).unwrap(), pool(&b).unwrap());
            prop_assert!((pb.estimate - pa.estimate - d).abs() < 1e-9);
            prop_assert!((pb.tau2 - pa.tau2).abs() < 1e-9 * pa.tau2.max(1.0));
            prop_assert!((pb.i2 - pa.i2).abs() < 1e-9);
        }
    }
}
