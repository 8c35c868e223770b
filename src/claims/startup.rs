//! Claim 6, containers start faster than virtual machines: the `start` samples of the
//! claims' run (launch to the image's first instruction, a fresh instance each, in every
//! environment), summarised per environment with intervals, and judged under both readings
//! of "virtual machine": the kernel-less guest isobench boots, and a Linux guest's boot,
//! which this host cannot measure. docs/CLAIMS.md explains the experiment.

use serde::Serialize;

use super::{Finding, Verdict};
use crate::analysis::Analysis;
use crate::results::NATIVE_B;
use crate::stats::bootstrap;
use crate::stats::summary::{quantile_sorted, Estimator};
use crate::workload::START;

/// One environment's start-up times.
#[derive(Clone, Debug, Serialize)]
pub struct StartDistribution {
    pub env: String,
    /// Every launch, µs, in round order.
    pub values_us: Vec<f64>,
    /// 20% trimmed mean and its 95% interval, µs.
    pub estimate_us: f64,
    pub ci95_us: (f64, f64),
    pub median_us: f64,
    pub p10_us: f64,
    pub p90_us: f64,
}

/// The start-up distributions of the run, in its environment order (native-b left out: it
/// launches exactly as native does).
pub fn distributions(a: &Analysis, seed: u64) -> Vec<StartDistribution> {
    let Some(m) = a.metrics.iter().find(|m| m.workload == START) else {
        return Vec::new();
    };
    m.samples
        .iter()
        .filter(|s| s.env != NATIVE_B && !s.values.is_empty())
        .map(|s| {
            let values: Vec<f64> = s.values.iter().map(|(_, v)| *v).collect();
            let e = bootstrap::estimate(
                Estimator::BLOCKS_DEFAULT,
                &values,
                2000,
                bootstrap::stream_seed(seed, &s.env),
            );
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            StartDistribution {
                env: s.env.clone(),
                estimate_us: e.mean,
                ci95_us: (e.ci95.low, e.ci95.high),
                median_us: quantile_sorted(&sorted, 0.5),
                p10_us: quantile_sorted(&sorted, 0.1),
                p90_us: quantile_sorted(&sorted, 0.9),
                values_us: values,
            }
        })
        .collect()
}

fn describe(d: &StartDistribution) -> String {
    format!(
        "{} {:.0} µs [{:.0}, {:.0}] (20% trimmed mean, 95% CI; median {:.0}, p10–p90 {:.0}–{:.0}, n={})",
        d.env,
        d.estimate_us,
        d.ci95_us.0,
        d.ci95_us.1,
        d.median_us,
        d.p10_us,
        d.p90_us,
        d.values_us.len()
    )
}

/// Claim 6's findings: each container environment against the kernel-less vm, and the
/// Linux-guest reading.
pub fn findings(d: &[StartDistribution], containers: &[String]) -> Vec<Finding> {
    let mut f = Vec::new();
    let vm = d.iter().find(|x| x.env == super::overhead::VM);
    let reference = d
        .iter()
        .filter(|x| x.env == crate::results::NATIVE)
        .map(describe)
        .next()
        .unwrap_or_default();
    let cs: Vec<&StartDistribution> = d.iter().filter(|x| containers.contains(&x.env)).collect();
    match (vm, cs.is_empty()) {
        (Some(vm), false) => {
            for c in cs {
                let verdict = if c.ci95_us.1 < vm.ci95_us.0 {
                    Verdict::Supported
                } else if c.ci95_us.0 > vm.ci95_us.1 {
                    Verdict::Refuted
                } else {
                    Verdict::Inconclusive {
                        settle: "the intervals overlap: the run takes 30 launches per environment, so a quieter machine (less spread), not a longer budget, would separate them".into(),
                    }
                };
                f.push(Finding {
                    subject: format!("{} vs the kernel-less vm", c.env),
                    evidence: format!("{}; {}; reference {reference}", describe(c), describe(vm)),
                    verdict,
                });
            }
        }
        _ => f.push(Finding {
            subject: "containers vs the kernel-less vm".into(),
            evidence: d.iter().map(describe).collect::<Vec<_>>().join("; "),
            verdict: Verdict::NotTestable {
                reason: "the run had no vm or no container environment to launch".into(),
            },
        }),
    }
    f.push(Finding {
        subject: "containers vs a Linux guest's boot (the blog's VM)".into(),
        evidence: "isobench's vm is a kernel-less guest entered directly in ring 3: its start is a VM's creation, not a guest OS boot".into(),
        verdict: Verdict::NotTestable {
            reason: "a Linux guest boot is not measured: isobench has no Linux-guest tier yet, and under kvm_pvm (this host) a stock kernel does not boot in useful time because guest ring 0 is emulated (docs/KVM.md)".into(),
        },
    });
    f
}
