//! The isolation ladder: what each rung costs over the one below it (the built-in container
//! over native, runc over the container, runsc over runc, the vm over runsc), per metric,
//! with the same paired statistics as every overhead against native (`compare`).

use super::{compare, comparison_seed, Analysis, Comparison, MetricAnalysis};
use crate::results::EnvKind;

/// The rung of an environment label on the ladder: 0 native, 1 the built-in container,
/// 2 runc/crun/an `oci:PATH` runtime, 3 runsc (gVisor), 4 the vm. `None` for native-b and
/// labels isobench does not know.
pub fn tier(label: &str) -> Option<u8> {
    Some(match EnvKind::from_name(label)? {
        EnvKind::Native if label == crate::results::NATIVE => 0,
        EnvKind::Native => return None,
        EnvKind::Container => 1,
        EnvKind::Runc | EnvKind::Crun | EnvKind::Oci => 2,
        EnvKind::Runsc => 3,
        EnvKind::Vm => 4,
    })
}

/// One rung: `upper` against the environment of the next rung down that ran (`lower`).
#[derive(Clone, Debug, PartialEq)]
pub struct Rung {
    pub lower: String,
    pub upper: String,
    /// `(metric label, upper against lower)`, in the analysis' metric order.
    pub metrics: Vec<(String, Comparison)>,
}

/// Every rung above the first (the first, against native, is the run's main comparison):
/// each environment against the nearest lower rung present in the run (runc against the
/// container when both ran, else against native...). Environments on the same rung (runc
/// and crun) are both compared with the rung below.
pub fn ladder(a: &Analysis) -> Vec<Rung> {
    let ranked: Vec<(&str, u8)> = a
        .envs
        .iter()
        .filter_map(|e| Some((e.as_str(), tier(e)?)))
        .collect();
    let mut rungs = Vec::new();
    for &(upper, t) in &ranked {
        let Some(&(lower, lt)) = ranked
            .iter()
            .filter(|(_, lt)| *lt < t)
            .max_by_key(|(_, lt)| *lt)
        else {
            continue;
        };
        // The first rung of the run is its comparison with native, reported already.
        if lt == 0 {
            continue;
        }
        let lower = ranked
            .iter()
            .find(|(_, x)| *x == lt)
            .map_or(lower, |(l, _)| *l);
        let metrics = a
            .shown_metrics()
            .filter_map(|m| Some((m.label(), rung_of(m, lower, upper, a)?)))
            .collect();
        rungs.push(Rung {
            lower: lower.to_string(),
            upper: upper.to_string(),
            metrics,
        });
    }
    rungs
}

fn rung_of(m: &MetricAnalysis, lower: &str, upper: &str, a: &Analysis) -> Option<Comparison> {
    let lo = m.samples_of(lower)?;
    let up = m.samples_of(upper)?;
    let seed = comparison_seed(
        a.config.seed,
        &format!("{upper} over {lower}"),
        &m.workload,
        &m.metric,
    );
    Some(compare(
        &lo.values, upper, &up.values, m.better, seed, &a.config,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{analyze, AnalysisConfig};
    use super::*;
    use crate::results::SampleRow;
    use crate::stats::paired::Better;

    fn rows(env: &str, factor: f64) -> Vec<SampleRow> {
        (0..12)
            .map(|r| SampleRow {
                round: r,
                env: env.into(),
                workload: "sys.call".into(),
                metric: "null_hostcall".into(),
                value: 100.0 * factor * (1.0 + 0.01 * ((r * 7) % 5) as f64),
                unit: "ns".into(),
                better: Some(Better::Lower),
                cycles: 0,
                wall_ns: 0,
            })
            .collect()
    }

    #[test]
    fn each_rung_is_compared_with_the_one_below() {
        let mut s = Vec::new();
        for (env, f) in [
            ("native", 1.0),
            ("native-b", 1.0),
            ("container", 1.0),
            ("runc", 1.5),
            ("runsc", 30.0),
            ("vm", 600.0),
        ] {
            s.extend(rows(env, f));
        }
        let a = analyze(&s, AnalysisConfig::new(3)).unwrap();
        let l = ladder(&a);
        let pairs: Vec<(&str, &str)> = l
            .iter()
            .map(|r| (r.upper.as_str(), r.lower.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("runc", "container"), ("runsc", "runc"), ("vm", "runsc")]
        );
        let est = |i: usize| l[i].metrics[0].1.overhead.unwrap().estimate;
        assert!((est(0) - 0.5).abs() < 1e-6, "{}", est(0));
        assert!((est(1) - 19.0).abs() < 1e-6, "{}", est(1));
        assert!((est(2) - 19.0).abs() < 1e-6, "{}", est(2));
        let ci = l[1].metrics[0].1.overhead.unwrap().ci95;
        assert!(ci.low <= est(1) && est(1) <= ci.high);
    }

    #[test]
    fn without_the_container_runc_is_the_first_rung_and_not_repeated() {
        let mut s = rows("native", 1.0);
        s.extend(rows("runc", 1.5));
        s.extend(rows("crun", 1.4));
        s.extend(rows("runsc", 30.0));
        let a = analyze(&s, AnalysisConfig::new(3)).unwrap();
        let pairs: Vec<(String, String)> =
            ladder(&a).into_iter().map(|r| (r.upper, r.lower)).collect();
        assert_eq!(pairs, [("runsc".to_string(), "runc".to_string())]);
        assert_eq!(tier("native-b"), None);
        assert_eq!(tier("fake"), None);
    }
}
