//! Claims 1 and 2, overheads: one run of the block protocol (`session::run`) over one
//! workload per resource axis, in every environment the run offers, read back per axis:
//! each container environment against the ±margin verdict with the A/A floor beside it
//! (claim 1), and the vm against each container environment (claim 2). Claim 6 takes the
//! same run's `start` samples (`startup.rs`). docs/CLAIMS.md explains the design.

use serde::Serialize;

use super::{Finding, Verdict};
use crate::analysis::{Analysis, Comparison, MetricAnalysis};
use crate::results::{NATIVE, NATIVE_B};
use crate::stats::verdict::{format_margin, Verdict as Answer};
use crate::workload::{self, Profile};

/// The resource axes and the workload that measures each.
pub const AXES: [(&str, &str); 4] = [
    ("CPU", "cpu.int"),
    ("memory", "mem.stream"),
    ("IO", "io.rand"),
    ("system calls", "sys.call"),
];

/// The vm's label.
pub const VM: &str = "vm";

/// One environment's overhead on one axis.
#[derive(Clone, Debug, Serialize)]
pub struct AxisOverhead {
    pub axis: String,
    pub workload: String,
    pub metric: String,
    pub env: String,
    pub n_pairs: usize,
    /// Overhead against native (fraction) and its 95% interval.
    pub estimate: Option<f64>,
    pub ci95: Option<(f64, f64)>,
    /// The run's verdict against the margin.
    pub verdict: String,
    /// The A/A floor: native-b's 95% half-width on the same metric.
    pub floor_half_width: Option<f64>,
    pub seconds_to_settle: Option<f64>,
}

/// The environments the run compared that are containers of some kind (not native, the
/// A/A instance or the vm): the built-in one and any OCI runtime the run offered.
pub fn container_envs(a: &Analysis) -> Vec<String> {
    a.envs
        .iter()
        .filter(|e| ![NATIVE, NATIVE_B, VM].contains(&e.as_str()))
        .cloned()
        .collect()
}

fn metric<'a>(a: &'a Analysis, workload: &str) -> Option<&'a MetricAnalysis> {
    let primary = (workload::by_name(workload)?.primary)(Profile::Quick);
    a.metrics
        .iter()
        .find(|m| m.workload == workload && m.metric == primary)
}

fn axis_overhead(
    axis: &str,
    m: &MetricAnalysis,
    c: &Comparison,
    floor: Option<f64>,
) -> AxisOverhead {
    AxisOverhead {
        axis: axis.into(),
        workload: m.workload.clone(),
        metric: m.metric.clone(),
        env: c.env.clone(),
        n_pairs: c.n_pairs,
        estimate: c.overhead.map(|o| o.estimate),
        ci95: c.overhead.map(|o| (o.ci95.low, o.ci95.high)),
        verdict: c.verdict.key().into(),
        floor_half_width: floor,
        seconds_to_settle: m.seconds_to_settle(c),
    }
}

/// Every (axis, environment) overhead of the run, the vm included.
pub fn overheads(a: &Analysis) -> Vec<AxisOverhead> {
    let mut out = Vec::new();
    for (axis, w) in AXES {
        let Some(m) = metric(a, w) else { continue };
        let floor = m
            .comparison(NATIVE_B)
            .and_then(|c| c.overhead)
            .map(|o| o.half_width());
        for c in &m.comparisons {
            if c.env != NATIVE_B {
                out.push(axis_overhead(axis, m, c, floor));
            }
        }
    }
    out
}

fn pct(x: f64) -> String {
    format!("{:+.2}%", x * 100.0)
}

fn evidence(o: &AxisOverhead) -> String {
    let est = match (o.estimate, o.ci95) {
        (Some(e), Some((lo, hi))) => format!("{} [{}, {}] 95% CI", pct(e), pct(lo), pct(hi)),
        _ => "no estimate".into(),
    };
    format!(
        "{} {}: {est}, n={} pairs, A/A floor ±{}",
        o.workload,
        o.metric,
        o.n_pairs,
        o.floor_half_width
            .map_or("?".into(), |f| format!("{:.2}%", f * 100.0))
    )
}

/// Claim 1 for one (axis, container environment).
pub fn claim1_verdict(o: &AxisOverhead, margin: f64) -> Verdict {
    let m = format_margin(margin);
    match o.floor_half_width {
        None => {
            return Verdict::NotTestable {
                reason: "no A/A floor (native-b) was measured on this axis".into(),
            }
        }
        Some(f) if f > margin => {
            return Verdict::NotTestable {
                reason: format!(
                    "at this precision: the A/A floor ±{:.2}% is wider than the margin ±{m}; a longer --budget or a quieter machine narrows it",
                    f * 100.0
                ),
            }
        }
        _ => {}
    }
    match o.verdict.as_str() {
        k if k == Answer::Within.key() => Verdict::Supported,
        k if k == Answer::Above.key() => Verdict::Refuted,
        k if k == Answer::Below.key() => Verdict::Inconclusive {
            settle: format!("faster than native beyond −{m}: a systematic difference (placement, caching) to explain before the claim can be judged"),
        },
        _ => Verdict::Inconclusive {
            settle: match o.seconds_to_settle {
                Some(s) => format!("about {s:.0} s more of this workload's blocks (a longer --budget)"),
                None => "the estimate sits on the margin; more blocks will not settle it".into(),
            },
        },
    }
}

/// Claim 1's findings: every container environment on every axis.
pub fn claim1(all: &[AxisOverhead], containers: &[String], margin: f64) -> Vec<Finding> {
    if containers.is_empty() {
        return vec![Finding {
            subject: "containers".into(),
            evidence: String::new(),
            verdict: Verdict::NotTestable {
                reason: "no container environment could run here (see the notes of the run: root, overlayfs and namespaces are needed)".into(),
            },
        }];
    }
    all.iter()
        .filter(|o| containers.contains(&o.env))
        .map(|o| Finding {
            subject: format!("{} · {}", o.axis, o.env),
            evidence: evidence(o),
            verdict: claim1_verdict(o, margin),
        })
        .collect()
}

/// Claim 2's findings: the vm's overhead against each container environment's, per axis:
/// supported when the vm's 95% interval lies wholly above the container's; refuted when it
/// lies wholly below, or when both are within the margin of native (the vm then costs no
/// more on that axis); otherwise inconclusive.
pub fn claim2(all: &[AxisOverhead], containers: &[String]) -> Vec<Finding> {
    let vms: Vec<&AxisOverhead> = all.iter().filter(|o| o.env == VM).collect();
    if vms.is_empty() || containers.is_empty() {
        return vec![Finding {
            subject: "vm against containers".into(),
            evidence: String::new(),
            verdict: Verdict::NotTestable {
                reason: "the run had no vm or no container environment (the vm needs read-write /dev/kvm)".into(),
            },
        }];
    }
    let mut f = Vec::new();
    for v in vms {
        for c in all
            .iter()
            .filter(|o| o.axis == v.axis && containers.contains(&o.env))
        {
            let verdict = match (v.ci95, c.ci95) {
                (Some((vlo, vhi)), Some((clo, chi))) => {
                    let within = Answer::Within.key();
                    if vlo > chi {
                        Verdict::Supported
                    } else if vhi < clo || (v.verdict == within && c.verdict == within) {
                        // Cheaper than the container, or as cheap: both within the margin
                        // of native, so the vm costs no more on this axis.
                        Verdict::Refuted
                    } else {
                        Verdict::Inconclusive {
                            settle: "the two intervals overlap: a longer --budget narrows them"
                                .into(),
                        }
                    }
                }
                _ => Verdict::Inconclusive {
                    settle: "an overhead has no interval: a longer --budget".into(),
                },
            };
            f.push(Finding {
                subject: format!("{} · vm vs {}", v.axis, c.env),
                evidence: format!("vm {}; {} {}", evidence(v), c.env, evidence(c)),
                verdict,
            });
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(verdict: &str, floor: Option<f64>) -> AxisOverhead {
        AxisOverhead {
            axis: "CPU".into(),
            workload: "cpu.int".into(),
            metric: "hash".into(),
            env: "container".into(),
            n_pairs: 40,
            estimate: Some(0.004),
            ci95: Some((-0.002, 0.01)),
            verdict: verdict.into(),
            floor_half_width: floor,
            seconds_to_settle: Some(30.0),
        }
    }

    #[test]
    fn claim_1_needs_a_floor_inside_the_margin_before_the_runs_verdict_counts() {
        let m = 0.01;
        assert_eq!(
            claim1_verdict(&o("within", Some(0.004)), m),
            Verdict::Supported
        );
        assert_eq!(
            claim1_verdict(&o("above", Some(0.004)), m),
            Verdict::Refuted
        );
        assert!(matches!(
            claim1_verdict(&o("within", Some(0.03)), m),
            Verdict::NotTestable { reason } if reason.contains("A/A floor ±3.00%")
        ));
        assert!(matches!(
            claim1_verdict(&o("inconclusive", Some(0.004)), m),
            Verdict::Inconclusive { settle } if settle.contains("30 s")
        ));
        assert!(matches!(
            claim1_verdict(&o("within", None), m),
            Verdict::NotTestable { .. }
        ));
    }

    #[test]
    fn claim_2_is_decided_by_disjoint_intervals() {
        let mut vm = o("above", Some(0.004));
        vm.env = VM.into();
        vm.ci95 = Some((0.5, 0.9));
        let c = o("within", Some(0.004));
        let f = claim2(&[vm.clone(), c.clone()], &["container".into()]);
        assert_eq!(f[0].verdict, Verdict::Supported);
        vm.ci95 = Some((-0.5, -0.1));
        let f = claim2(&[vm.clone(), c.clone()], &["container".into()]);
        assert_eq!(f[0].verdict, Verdict::Refuted);
        vm.ci95 = Some((0.0, 0.02));
        let f = claim2(&[vm.clone(), c.clone()], &["container".into()]);
        assert!(matches!(f[0].verdict, Verdict::Inconclusive { .. }));
        // Both within the margin of native: the vm costs no more on this axis.
        vm.ci95 = Some((-0.003, 0.005));
        vm.verdict = "within".into();
        let f = claim2(&[vm, c], &["container".into()]);
        assert_eq!(f[0].verdict, Verdict::Refuted);
        assert!(matches!(
            claim2(&[], &[])[0].verdict,
            Verdict::NotTestable { .. }
        ));
    }
}
