//! Descriptive statistics of a slice of numbers: mean, standard deviation, median, MAD and
//! quantiles. Every other module takes these from here.

/// Median of a non-empty slice (sorted copy; the mean of the two middle values when even).
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "median of no values");
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median absolute deviation from the median (unscaled).
pub fn mad(values: &[f64]) -> f64 {
    let m = median(values);
    let dev: Vec<f64> = values.iter().map(|x| (x - m).abs()).collect();
    median(&dev)
}

/// Arithmetic mean of a non-empty slice.
pub fn mean(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "mean of no values");
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample standard deviation (n − 1); 0 for fewer than two values.
pub fn std_dev(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    let ss: f64 = values.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (values.len() - 1) as f64).sqrt()
}

/// Quantile `q` in [0, 1] of an ascending non-empty slice (linear interpolation, type 7).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "quantile of no values");
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// The location estimate of a sample: the mean, or the mean of the middle after trimming a
/// fraction from each end (Wilcox 2012, "Introduction to Robust Estimation", ch. 3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Estimator {
    Mean,
    /// Trims this fraction (in [0, 0.5)) of the values from each end.
    TrimmedMean(f64),
}

impl Estimator {
    /// The estimator of runs made since blocks: the 20% trimmed mean (see
    /// docs/METHODOLOGY.md, "The overhead estimate").
    pub const BLOCKS_DEFAULT: Estimator = Estimator::TrimmedMean(0.2);

    /// `values`' estimate; `scratch` is reordered (it is the caller's buffer, so repeated
    /// calls allocate nothing). Non-empty input.
    pub fn apply(self, values: &mut [f64]) -> f64 {
        match self {
            Estimator::Mean => mean(values),
            Estimator::TrimmedMean(trim) => trimmed_mean(values, trim),
        }
    }

    /// The name recorded in `run.json` (`mean`, `trimmed-mean-20`).
    pub fn name(self) -> String {
        match self {
            Estimator::Mean => "mean".into(),
            Estimator::TrimmedMean(t) => format!("trimmed-mean-{:.0}", t * 100.0),
        }
    }

    /// The estimator a name records; `None` for a name isobench does not know.
    pub fn parse(name: &str) -> Option<Estimator> {
        if name == "mean" {
            return Some(Estimator::Mean);
        }
        let pct: f64 = name.strip_prefix("trimmed-mean-")?.parse().ok()?;
        (0.0..50.0)
            .contains(&pct)
            .then_some(Estimator::TrimmedMean(pct / 100.0))
    }
}

/// The mean of `values` after dropping `⌊trim·n⌋` values from each end (reorders `values`;
/// linear time). Non-empty input, `trim` in [0, 0.5).
pub fn trimmed_mean(values: &mut [f64], trim: f64) -> f64 {
    assert!(!values.is_empty(), "trimmed mean of no values");
    let n = values.len();
    let k = ((trim.clamp(0.0, 0.499) * n as f64).floor() as usize).min((n - 1) / 2);
    if k == 0 {
        return mean(values);
    }
    values.select_nth_unstable_by(k, f64::total_cmp);
    let rest = &mut values[k..];
    rest.select_nth_unstable_by(n - 2 * k - 1, f64::total_cmp);
    let middle = &rest[..n - 2 * k];
    middle.iter().sum::<f64>() / middle.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptive() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(mad(&[1.0, 2.0, 3.0, 4.0, 100.0]), 1.0);
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
        assert_eq!(std_dev(&[1.0]), 0.0);
        assert!((std_dev(&[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn trimming() {
        let mut v = [5.0, 1.0, 100.0, 2.0, 4.0, 3.0, -50.0, 6.0, 7.0, 8.0];
        // 20% of 10: drop 2 from each end (-50, 1 and 8, 100): mean of 2..=7.
        assert_eq!(trimmed_mean(&mut v, 0.2), 4.5);
        assert_eq!(trimmed_mean(&mut [3.0], 0.2), 3.0);
        assert_eq!(trimmed_mean(&mut [1.0, 9.0], 0.2), 5.0);
        assert_eq!(
            Estimator::parse("trimmed-mean-20"),
            Some(Estimator::TrimmedMean(0.2))
        );
        assert_eq!(
            Estimator::parse(&Estimator::Mean.name()),
            Some(Estimator::Mean)
        );
        assert_eq!(Estimator::parse("median"), None);
    }
}
