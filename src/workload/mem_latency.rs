//! `mem.latency`: dependent pointer chase over one random cycle of 64-byte lines, working set
//! swept in powers of two; ns per access for each size.
//!
//! Contract with `image/src/kernels/mem_latency.rs`: params [log2 min bytes, log2 max bytes,
//! steps per repetition, seed, repetitions]; per size a Sattolo cycle (SplitMix64 seeded
//! `seed ^ log2`, j = ⌊r·i/2^64⌋), min(nodes, steps) untimed warm-up steps then repetitions ×
//! steps timed ones from node 0, the chase carrying on across repetitions; records = cycles
//! per repetition, size-major (all repetitions of the smallest size first); checksum = fold of
//! the node index reached per size.
//!
//! Repetitions (docs/METHODOLOGY.md, "Repetitions and the per-sample value"): 2^12 dependent
//! loads (about 4 µs at 1 ns in L1, about 0.6 ms at 150 ns in DRAM), 16 per size with
//! `Span::Short`; with `Span::CfsSafe` 320 per size (quick) or 96 (full, whose larger sizes
//! take longer). The profile sets the sweep (quick: 16 KiB … 64 MiB, full: 16 KiB … 1 GiB).
//! The untimed warm-up before a size's first repetition is min(nodes, 2^12) steps. Metrics,
//! per size: `ns_per_access@<size>` (ns, lower is better) from the median repetition and
//! `ns_per_access@<size>.mean` from all of them. The primary metric is the largest size's,
//! which depends on the profile (`ns_per_access@64MiB` quick, `ns_per_access@1GiB` full).

use isobench_abi::WL_MEM_LATENCY;

use super::gen::{below, fold, splitmix64};
use super::{
    check, check_records, mean_companion_of, params, repeated, Better, ChecksumMismatch, Expected,
    Metric, Prepared, Profile, Sizing, Span, Workload,
};
use crate::image::{Invocation, RawRun};

pub const WORKLOAD: Workload = Workload {
    name: "mem.latency",
    id: WL_MEM_LATENCY,
    description: "dependent pointer chase, one random cycle of 64 B lines, 16 KiB … 64 MiB (quick) / 1 GiB (full), 2^12 loads per repetition (ns/access)",
    prepare,
    interpret,
    primary,
    repeated: true,
};

const LINE: u64 = 64;
/// Timed steps (dependent loads) per repetition.
const STEPS_PER_REP: u64 = 1 << 12;

/// (log2 smallest, log2 largest working set) per profile.
fn sweep(profile: Profile) -> (u64, u64) {
    match profile {
        Profile::Quick => (14, 26),
        Profile::Full => (14, 30),
    }
}

/// Repetitions per size. The long span needs fewer over full's larger sweep, whose DRAM
/// sizes take longer per repetition.
fn reps(sizing: Sizing) -> u64 {
    match (sizing.profile, sizing.span) {
        (_, Span::Short) => 16,
        (Profile::Quick, Span::CfsSafe) => 320,
        (Profile::Full, Span::CfsSafe) => 96,
    }
}

/// The largest working set's metric: the one DRAM latency shows in.
fn primary(profile: Profile) -> String {
    metric_name(1 << sweep(profile).1)
}

/// The metric of a working-set size: `ns_per_access@64KiB`.
fn metric_name(bytes: u64) -> String {
    format!("ns_per_access@{}", size_label(bytes))
}

/// A working-set size as used in metric names: `16KiB`, `4MiB`, `1GiB`.
pub fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{}GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{}MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{}KiB", bytes >> 10)
    } else {
        format!("{bytes}B")
    }
}

/// The working-set size in bytes of a `ns_per_access@<size>` metric name (for plots of
/// latency against working-set size), or of its mean-based companion
/// `ns_per_access@<size>.mean` (the same size; a plot that wants one curve skips companions
/// with [`mean_companion_of`]); `None` for any other name.
pub fn working_set_bytes(metric: &str) -> Option<u64> {
    let metric = mean_companion_of(metric).unwrap_or(metric);
    let label = metric.strip_prefix("ns_per_access@")?;
    let (digits, shift) = if let Some(d) = label.strip_suffix("GiB") {
        (d, 30)
    } else if let Some(d) = label.strip_suffix("MiB") {
        (d, 20)
    } else if let Some(d) = label.strip_suffix("KiB") {
        (d, 10)
    } else {
        (label.strip_suffix('B')?, 0)
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Sattolo's algorithm: a permutation of 0..nodes that is one single cycle.
pub fn sattolo(nodes: usize, seed: u64) -> Vec<u32> {
    let mut perm: Vec<u32> = (0..nodes as u32).collect();
    let mut st = seed;
    for i in (1..nodes).rev() {
        let j = below(splitmix64(&mut st), i as u64) as usize;
        perm.swap(i, j);
    }
    perm
}

/// The node reached after `steps` steps from node 0.
pub fn chase(perm: &[u32], steps: u64) -> u32 {
    let mut p = 0u32;
    for _ in 0..steps {
        p = perm[p as usize];
    }
    p
}

/// The reference checksum of a whole sweep.
pub fn reference(lo: u64, hi: u64, steps: u64, reps: u64, seed: u64) -> u64 {
    (lo..=hi).fold(0, |h, log2| {
        let nodes = (1u64 << log2) / LINE;
        let perm = sattolo(nodes as usize, seed ^ log2);
        fold(h, chase(&perm, nodes.min(steps) + reps * steps) as u64)
    })
}

fn prepare(sizing: Sizing, seed: u64) -> Prepared {
    let (lo, hi) = sweep(sizing.profile);
    let (steps, reps) = (STEPS_PER_REP, reps(sizing));
    Prepared {
        span: sizing.span,
        invocation: Invocation {
            name: WORKLOAD.name,
            workload: WL_MEM_LATENCY,
            params: params(&[lo, hi, steps, seed, reps]),
            flags: 0,
        },
        // The chased lines; the image shuffles its u32 permutation inside them.
        work_bytes: 1 << hi,
        disk_bytes: 0,
        expected: Expected::Exact(reference(lo, hi, steps, reps, seed)),
    }
}

fn interpret(p: &Prepared, raw: &RawRun, tsc_hz: f64) -> Result<Vec<Metric>, ChecksumMismatch> {
    check(WORKLOAD.name, p.expected, raw.checksum)?;
    let [lo, hi, steps, _, reps, ..] = p.invocation.params;
    check_records(
        WORKLOAD.name,
        raw,
        (hi - lo + 1) * reps,
        &format!("{} sizes × {reps} repetitions", hi - lo + 1),
    )?;
    Ok((lo..=hi)
        // `max(1)`: no chunks, rather than a panic, for a (never prepared) zero count.
        .zip(raw.records.chunks_exact(reps.max(1) as usize))
        .flat_map(|(log2, cycles)| {
            repeated(
                p.span,
                &metric_name(1 << log2),
                "ns",
                Better::Lower,
                cycles,
                |c| c / tsc_hz * 1e9 / steps as f64,
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::synthetic_run;
    use super::*;

    #[test]
    fn sattolo_gives_one_cycle_through_every_node() {
        for nodes in [2usize, 3, 5, 64, 1000] {
            let perm = sattolo(nodes, 42);
            let mut seen = vec![false; nodes];
            let mut p = 0usize;
            for _ in 0..nodes {
                assert!(!seen[p], "node {p} visited twice: more than one cycle");
                seen[p] = true;
                p = perm[p] as usize;
            }
            assert_eq!(p, 0, "back at the start after exactly {nodes} steps");
        }
    }

    #[test]
    fn chase_by_hand() {
        // 0 -> 2 -> 1 -> 0
        let perm = [2u32, 0, 1];
        assert_eq!(chase(&perm, 0), 0);
        assert_eq!(chase(&perm, 1), 2);
        assert_eq!(chase(&perm, 2), 1);
        assert_eq!(chase(&perm, 3), 0);
        // Two nodes: Sattolo's only cycle is the swap.
        assert_eq!(sattolo(2, 7), vec![1, 0]);
    }

    #[test]
    fn size_labels() {
        assert_eq!(size_label(16 << 10), "16KiB");
        assert_eq!(size_label(64 << 20), "64MiB");
        assert_eq!(size_label(1 << 30), "1GiB");
        assert_eq!(size_label(100), "100B");
        for log2 in 7..=30 {
            let name = format!("ns_per_access@{}", size_label(1 << log2));
            assert_eq!(working_set_bytes(&name), Some(1 << log2), "{name}");
        }
        assert_eq!(working_set_bytes("ns_per_access@64KiB"), Some(65536));
        assert_eq!(working_set_bytes("ns_per_access@1GiB"), Some(1 << 30));
        assert_eq!(working_set_bytes("ns_per_access"), None);
        assert_eq!(working_set_bytes("gups"), None);
        assert_eq!(working_set_bytes("ns_per_access@12XB"), None);
        // A mean-based companion names the same size.
        assert_eq!(working_set_bytes("ns_per_access@64KiB.mean"), Some(65536));
        assert_eq!(working_set_bytes("gups.mean"), None);
    }

    #[test]
    fn the_primary_metric_is_the_largest_size_of_the_profile() {
        assert_eq!(primary(Profile::Quick), "ns_per_access@64MiB");
        assert_eq!(primary(Profile::Full), "ns_per_access@1GiB");
    }

    #[test]
    fn median_ignores_an_outlier_the_mean_does_not_per_size() {
        let (lo, hi, steps, reps) = (14u64, 15u64, 1000u64, 4u64);
        let p = Prepared {
            span: Span::Short,
            invocation: Invocation {
                name: WORKLOAD.name,
                workload: WL_MEM_LATENCY,
                params: params(&[lo, hi, steps, 9, reps]),
                flags: 0,
            },
            work_bytes: 1 << hi,
            disk_bytes: 0,
            expected: Expected::Exact(reference(lo, hi, steps, reps, 9)),
        };
        // 1 GHz: 16 KiB at 1 ns per load, 32 KiB at 2 ns, one repetition of 32 KiB 9× slower.
        let records = vec![1000, 1000, 1000, 1000, 2000, 2000, 18_000, 2000];
        let m = interpret(&p, &synthetic_run(&p, records), 1e9).expect("interprets");
        let names: Vec<&str> = m.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ns_per_access@16KiB",
                "ns_per_access@16KiB.mean",
                "ns_per_access@32KiB",
                "ns_per_access@32KiB.mean"
            ]
        );
        let values: Vec<f64> = m.iter().map(|x| x.value).collect();
        assert_eq!(values, [1.0, 1.0, 2.0, 6.0]);
        let e = interpret(&p, &synthetic_run(&p, vec![1000; 2]), 1e9)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 sizes × 4 repetitions"), "{e}");
    }
}
