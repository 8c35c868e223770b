//! The verdict of one overhead against a margin M (docs/METHODOLOGY.md, "Verdicts"): within / above / below /
//! inconclusive (with the rounds an answer would need) / too few rounds.
//!
//! Rules, with overheads as fractions (see `paired` for the sign convention):
//!
//! - fewer than [`MIN_ROUNDS`] paired rounds: **too few rounds**, no verdict;
//! - **within ±M** when the 90% interval lies inside (−M, +M): two one-sided tests
//!   (Schuirmann 1987), each at α = 0.05;
//! - **above +M** when the 95% interval lies wholly above +M;
//! - **below −M** (faster than native beyond the margin) when the 95% interval lies wholly
//!   below −M;
//! - otherwise **inconclusive**. The rounds an answer would need come from the observed
//!   spread `s` of the paired log ratios and the distance `δ` of the estimate from the
//!   nearest decision boundary (in log space): `n = ⌈(z · s / δ)²⌉`, with z = 1.645 when
//!   the estimate lies inside the margin (heading for *within*) and z = 1.96 outside
//!   (heading for *above*/*below*). When the estimate sits on the boundary no number of
//!   rounds settles it and none is given.

use std::fmt;

use super::bootstrap::Interval;
use super::paired::log_from_overhead;

/// No verdict is given from fewer paired rounds than this.
pub const MIN_ROUNDS: usize = 5;

/// Default margin: 1%.
pub const DEFAULT_MARGIN: f64 = 0.01;

/// The answer for one (environment, workload, metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Fewer than [`MIN_ROUNDS`] paired rounds.
    TooFewRounds {
        n: usize,
    },
    Within,
    Above,
    Below,
    /// Undecided; `rounds_needed` estimates the total paired rounds an answer would need
    /// (`None` when the estimate sits on the margin).
    Inconclusive {
        rounds_needed: Option<u64>,
    },
}

impl Verdict {
    /// Stable machine-readable name (used in CSV files).
    pub fn key(self) -> &'static str {
        match self {
            Verdict::TooFewRounds { .. } => "too-few-rounds",
            Verdict::Within => "within",
            Verdict::Above => "above",
            Verdict::Below => "below",
            Verdict::Inconclusive { .. } => "inconclusive",
        }
    }

    pub fn rounds_needed(self) -> Option<u64> {
        match self {
            Verdict::Inconclusive { rounds_needed } => rounds_needed,
            _ => None,
        }
    }

    /// Plain words for reports, with the margin given as a fraction.
    pub fn describe(self, margin: f64) -> String {
        let m = format_margin(margin);
        match self {
            Verdict::TooFewRounds { n } => {
                format!("too few rounds (n<{MIN_ROUNDS}; {n} paired)")
            }
            Verdict::Within => format!("within ±{m}"),
            Verdict::Above => format!("above +{m}"),
            Verdict::Below => format!("below −{m}"),
            Verdict::Inconclusive {
                rounds_needed: Some(r),
            } => {
                format!("inconclusive (≈{r} rounds needed)")
            }
            Verdict::Inconclusive {
                rounds_needed: None,
            } => "inconclusive (estimate on the margin)".to_string(),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Formats a margin fraction as a percentage without trailing zeros (0.01 → "1%").
pub fn format_margin(margin: f64) -> String {
    let pct = margin * 100.0;
    let s = format!("{pct:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// What the verdict is computed from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VerdictInput {
    /// Paired rounds.
    pub n: usize,
    /// Point estimate of the mean log ratio.
    pub log_estimate: f64,
    /// Sample standard deviation of the paired log ratios.
    pub log_sd: f64,
    /// 95% and 90% intervals of the overhead (fractions, not logs).
    pub ci95: Interval,
    pub ci90: Interval,
}

/// Decides the verdict for `margin` (a fraction, e.g. 0.01; must be in (0, 1)).
pub fn decide(input: &VerdictInput, margin: f64) -> Verdict {
    if input.n < MIN_ROUNDS {
        return Verdict::TooFewRounds { n: input.n };
    }
    if input.ci90.low > -margin && input.ci90.high < margin {
        return Verdict::Within;
    }
    if input.ci95.low > margin {
        return Verdict::Above;
    }
    if input.ci95.high < -margin {
        return Verdict::Below;
    }
    Verdict::Inconclusive {
        rounds_needed: rounds_needed(input, margin),
    }
}

/// The total paired rounds the current spread would need to settle the question.
fn rounds_needed(input: &VerdictInput, margin: f64) -> Option<u64> {
    let upper = log_from_overhead(margin);
    let lower = log_from_overhead(-margin);
    let d = input.log_estimate;
    let (z, distance) = if d > upper {
        (1.96, d - upper)
    } else if d < lower {
        (1.96, lower - d)
    } else {
        (1.645, (upper - d).min(d - lower))
    };
    if distance.is_nan() || distance <= 1e-12 || !input.log_sd.is_finite() {
        return None;
    }
    let n = (z * input.log_sd / distance).powi(2).ceil();
    if !n.is_finite() || n > 1e12 {
        return None;
    }
    // The observed spread already failed at n rounds: more than n are needed.
    Some((n as u64).max(input.n as u64 + 1).max(MIN_ROUNDS as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(n: usize, est: f64, sd: f64, ci95: (f64, f64), ci90: (f64, f64)) -> VerdictInput {
        VerdictInput {
            n,
            log_estimate: log_from_overhead(est),
            log_sd: sd,
            ci95: Interval {
                low: ci95.0,
                high: ci95.1,
            },
            ci90: Interval {
                low: ci90.0,
                high: ci90.1,
            },
        }
    }

    #[test]
    fn rules() {
        let m = 0.01;
        let v = |i| decide(&i, m);
        assert_eq!(
            v(input(4, 0.0, 0.0, (0.0, 0.0), (0.0, 0.0))),
            Verdict::TooFewRounds { n: 4 }
        );
        assert_eq!(
            v(input(5, 0.0, 0.0, (0.0, 0.0), (0.0, 0.0))),
            Verdict::Within
        );
        // 95% crosses the margin but 90% is inside: TOST says within.
        assert_eq!(
            v(input(9, 0.0, 0.01, (-0.011, 0.011), (-0.009, 0.009))),
            Verdict::Within
        );
        assert_eq!(
            v(input(9, 0.05, 0.01, (0.04, 0.06), (0.042, 0.058))),
            Verdict::Above
        );
        assert_eq!(
            v(input(9, -0.05, 0.01, (-0.06, -0.04), (-0.058, -0.042))),
            Verdict::Below
        );
        let inc = v(input(10, 0.015, 0.02, (0.002, 0.03), (0.004, 0.027)));
        assert_eq!(inc.key(), "inconclusive");
        // δ = ln 1.015 − ln 1.01 ≈ 0.00494: (1.96·0.02/0.00494)² ≈ 63.
        let r = inc.rounds_needed().unwrap();
        assert!((60..=66).contains(&r), "{r}");
    }

    #[test]
    fn inconclusive_on_the_margin_has_no_round_count() {
        let i = input(10, 0.01, 0.02, (-0.01, 0.03), (-0.005, 0.025));
        assert_eq!(
            decide(&i, 0.01),
            Verdict::Inconclusive {
                rounds_needed: None
            }
        );
    }

    #[test]
    fn words() {
        assert_eq!(format_margin(0.01), "1%");
        assert_eq!(format_margin(0.025), "2.5%");
        assert_eq!(Verdict::Within.describe(0.01), "within ±1%");
        assert!(Verdict::TooFewRounds { n: 3 }
            .describe(0.01)
            .starts_with("too few rounds (n<5"));
    }
}
