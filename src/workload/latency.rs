//! Latency distributions of the IO workloads: per-operation cycle counts from the record
//! buffer into an HdrHistogram, reported as percentile metrics in µs.

use hdrhistogram::Histogram;

use super::{Better, Metric};
use crate::tsc;

/// The percentiles every IO workload reports, with their metric-name suffixes.
pub const PERCENTILES: [(f64, &str); 5] = [
    (50.0, "p50"),
    (90.0, "p90"),
    (99.0, "p99"),
    (99.9, "p99.9"),
    (99.99, "p99.99"),
];

/// Highest latency the histogram tracks: one hour in ns; longer values are clamped to it.
const MAX_NS: u64 = 3_600_000_000_000;

/// Percentile metrics `<phase>_<pNN>_us` (unit µs, lower is better) of `cycles`.
///
/// HdrHistogram with 3 significant digits, values recorded in ns. With fewer samples than
/// a percentile resolves (e.g. p99.99 of 512 operations), the value is the largest sample.
pub fn percentile_metrics(phase: &str, cycles: &[u64], tsc_hz: f64) -> Vec<Metric> {
    let ns: Vec<u64> = cycles
        .iter()
        .map(|&c| (tsc::cycles_to_ns(c, tsc_hz).round() as u64).clamp(1, MAX_NS))
        .collect();
    let values: Vec<f64> = match Histogram::<u64>::new_with_bounds(1, MAX_NS, 3) {
        Ok(mut h) => {
            for &v in &ns {
                // In bounds by the clamp above, so recording cannot fail.
                let _ = h.record(v);
            }
            PERCENTILES
                .iter()
                .map(|&(q, _)| h.value_at_percentile(q) as f64)
                .collect()
        }
        // The bounds are constants HdrHistogram accepts; kept total rather than unwrap.
        Err(_) => {
            let mut s = ns.clone();
            s.sort_unstable();
            PERCENTILES
                .iter()
                .map(|&(q, _)| nearest_rank(&s, q) as f64)
                .collect()
        }
    };
    PERCENTILES
        .iter()
        .zip(values)
        .map(|(&(_, label), v)| Metric {
            name: percentile_metric_name(phase, label),
            value: v / 1e3,
            unit: "µs".into(),
            better: Better::Lower,
        })
        .collect()
}

/// The name of a percentile metric: `<phase>_<label>_us` (`read_p99.9_us`), with `label`
/// from [`PERCENTILES`]. [`parse_percentile_metric`] reads it back.
pub fn percentile_metric_name(phase: &str, label: &str) -> String {
    format!("{phase}_{label}_us")
}

/// Parses `<op>_p<percentile>_us` (`read_p99_us`, `read_p99.9_us`, `write_p9999_us`) into
/// (op, percentile); digits without a point read as the usual shorthand (p999 = 99.9).
/// Reads back every name [`percentile_metric_name`] writes; `None` for any other metric.
pub fn parse_percentile_metric(metric: &str) -> Option<(String, f64)> {
    let stem = metric.strip_suffix("_us")?;
    let at = stem.rfind("_p")?;
    let (op, p) = (&stem[..at], &stem[at + 2..]);
    if op.is_empty() || p.is_empty() {
        return None;
    }
    let value = if p.contains('.') {
        p.parse::<f64>().ok()?
    } else {
        if !p.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let v: f64 = p.parse().ok()?;
        if p.len() > 2 {
            // "999" = 99.9, "9999" = 99.99.
            v / 10f64.powi(p.len() as i32 - 2)
        } else {
            v
        }
    };
    (value > 0.0 && value < 100.0).then(|| (op.to_string(), value))
}

fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        // 1..=1000 µs at 1 GHz (1 cycle = 1 ns): p50 = 500 µs, p90 = 900 µs, p99.99 = max.
        let cycles: Vec<u64> = (1..=1000).map(|us| us * 1000).collect();
        let m = percentile_metrics("read", &cycles, 1e9);
        let get = |n: &str| m.iter().find(|x| x.name == n).map(|x| x.value);
        let close = |a: Option<f64>, b: f64| (a.unwrap_or(f64::NAN) - b).abs() <= b * 1e-3;
        assert!(close(get("read_p50_us"), 500.0), "{m:?}");
        assert!(close(get("read_p90_us"), 900.0), "{m:?}");
        assert!(close(get("read_p99_us"), 990.0), "{m:?}");
        assert!(close(get("read_p99.99_us"), 1000.0), "{m:?}");
        assert!(m
            .iter()
            .all(|x| x.unit == "µs" && x.better == Better::Lower));
    }

    #[test]
    fn percentile_metric_names_round_trip() {
        for phase in ["read", "write", "fsync_write"] {
            for &(q, label) in &PERCENTILES {
                let name = percentile_metric_name(phase, label);
                assert_eq!(
                    parse_percentile_metric(&name),
                    Some((phase.to_string(), q)),
                    "{name}"
                );
            }
        }
        // The metrics the IO workloads report parse back to their phase and percentile.
        let cycles: Vec<u64> = (1..=100).collect();
        let metrics = percentile_metrics("write", &cycles, 1e9);
        for (m, &(q, _)) in metrics.iter().zip(&PERCENTILES) {
            assert_eq!(
                parse_percentile_metric(&m.name),
                Some(("write".to_string(), q)),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn parses_percentile_metric_names() {
        assert_eq!(
            parse_percentile_metric("read_p99_us"),
            Some(("read".into(), 99.0))
        );
        assert_eq!(
            parse_percentile_metric("read_p99.9_us"),
            Some(("read".into(), 99.9))
        );
        assert_eq!(
            parse_percentile_metric("write_p9999_us"),
            Some(("write".into(), 99.99))
        );
        assert_eq!(
            parse_percentile_metric("read_p50_us"),
            Some(("read".into(), 50.0))
        );
        assert_eq!(parse_percentile_metric("read_iops"), None);
        assert_eq!(parse_percentile_metric("start_us"), None);
    }

    #[test]
    fn nearest_rank_edges() {
        assert_eq!(nearest_rank(&[], 50.0), 0);
        assert_eq!(nearest_rank(&[7], 99.99), 7);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 50.0), 2);
    }
}
