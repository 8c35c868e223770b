//! `mem.latency`: dependent pointer chase over one random cycle of 64-byte lines, working set
//! swept in powers of two; ns per access for each size.
//!
//! Contract with `image/src/kernels/mem_latency.rs`: params [log2 min bytes, log2 max bytes,
//! steps, seed]; per size a Sattolo cycle (SplitMix64 seeded `seed ^ log2`, j = ⌊r·i/2^64⌋),
//! min(nodes, steps) untimed warm-up steps then `steps` timed ones from node 0;
//! records = cycles per size, smallest first; checksum = fold of the node index reached per
//! size. Metrics `ns_per_access@<size>` (ns, lower is better), one per size.

use isobench_abi::WL_MEM_LATENCY;

use super::gen::{below, fold, splitmix64};
use super::{
    check, params, Better, ChecksumMismatch, Expected, Metric, Prepared, Profile, Workload,
};
use crate::image::{Invocation, RawRun};

pub const WORKLOAD: Workload = Workload {
    name: "mem.latency",
    id: WL_MEM_LATENCY,
    description: "dependent pointer chase, one random cycle of 64 B lines, 16 KiB … 64 MiB (quick) / 1 GiB (full) (ns/access)",
    prepare,
    interpret,
};

const LINE: u64 = 64;

/// (log2 smallest, log2 largest working set, timed steps per size) per profile.
fn sweep(profile: Profile) -> (u64, u64, u64) {
    match profile {
        Profile::Quick => (14, 26, 1 << 17),
        Profile::Full => (14, 30, 1 << 20),
    }
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
/// latency against working-set size); `None` for any other name.
pub fn working_set_bytes(metric: &str) -> Option<u64> {
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
pub fn reference(lo: u64, hi: u64, steps: u64, seed: u64) -> u64 {
    (lo..=hi).fold(0, |h, log2| {
        let nodes = (1u64 << log2) / LINE;
        let perm = sattolo(nodes as usize, seed ^ log2);
        fold(h, chase(&perm, nodes.min(steps) + steps) as u64)
    })
}

fn prepare(profile: Profile, seed: u64) -> Prepared {
    let (lo, hi, steps) = sweep(profile);
    Prepared {
        invocation: Invocation {
            name: WORKLOAD.name,
            workload: WL_MEM_LATENCY,
            params: params(&[lo, hi, steps, seed]),
            flags: 0,
        },
        // The chased lines; the image shuffles its u32 permutation inside them.
        work_bytes: 1 << hi,
        disk_bytes: 0,
        expected: Expected::Exact(reference(lo, hi, steps, seed)),
    }
}

fn interpret(p: &Prepared, raw: &RawRun, tsc_hz: f64) -> Result<Vec<Metric>, ChecksumMismatch> {
    check(WORKLOAD.name, p.expected, raw.checksum)?;
    let [lo, hi, steps, ..] = p.invocation.params;
    if raw.records.len() as u64 != hi - lo + 1 {
        return Err(ChecksumMismatch {
            workload: WORKLOAD.name.into(),
            got: format!("{} per-size records", raw.records.len()),
            expected: format!("{} (one per size)", hi - lo + 1),
        });
    }
    Ok((lo..=hi)
        .zip(&raw.records)
        .map(|(log2, &cycles)| Metric {
            name: format!("ns_per_access@{}", size_label(1 << log2)),
            value: cycles as f64 / tsc_hz * 1e9 / steps as f64,
            unit: "ns".into(),
            better: Better::Lower,
        })
        .collect())
}

#[cfg(test)]
mod tests {
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
    }
}
