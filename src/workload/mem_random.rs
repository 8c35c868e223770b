//! `mem.random`: HPCC RandomAccess over a table of 2^k u64; GUPS (giga-updates per second).
//!
//! Contract with `image/src/kernels/mem_random.rs`: params [k, updates in all, repetitions];
//! table T[i] = i, 128 interleaved LFSR streams that together walk x^1 .. x^updates,
//! `T[ran & (n-1)] ^= ran`, cut into repetitions of updates / repetitions updates each;
//! checksum = XOR over i of rotl(T[i], i mod 64); records = cycles per repetition;
//! cycles = their sum.
//!
//! Repetitions (docs/METHODOLOGY.md, "Repetitions and the per-sample value"): 2^17 updates
//! (about 1 ms). Quick (32 MiB table): 32 repetitions with `Span::Short` (one update per
//! entry), 480 with `Span::CfsSafe`. Full (512 MiB table): HPCC's 4 updates per entry,
//! 2048 repetitions, with either span. Metrics: `gups` (of the median repetition, the
//! primary metric) and `gups.mean` (all updates over all cycles).
//!
//! The reference needs no table: rotl is linear over XOR, so the checksum equals
//! XOR_i rotl(i, i mod 64) ^ XOR over updates of rotl(ran, (ran & (n-1)) mod 64), with the
//! sequence stepped once from 1 (which also checks the image's HPCC_starts jump-ahead).

use isobench_abi::WL_MEM_RANDOM;

use super::{
    check, check_records, params, repeated, Better, ChecksumMismatch, Expected, Metric, Prepared,
    Profile, Sizing, Span, Workload,
};
use crate::image::{Invocation, RawRun};

pub const WORKLOAD: Workload = Workload {
    name: "mem.random",
    id: WL_MEM_RANDOM,
    description:
        "HPCC RandomAccess, 2^17 updates per repetition (quick: 32 MiB table; full: 512 MiB, 4× updates) (GUPS)",
    prepare,
    interpret,
    primary: |_| "gups".into(),
    repeated: true,
};

const POLY: u64 = 7;

/// Updates per repetition.
const UPDATES_PER_REP: u64 = 1 << 17;

/// (log2 table entries, repetitions) per sizing. HPCC does 4 updates per entry (full, with
/// either span); quick's short span does 1.
fn size(sizing: Sizing) -> (u64, u64) {
    match (sizing.profile, sizing.span) {
        (Profile::Quick, Span::Short) => (22, 32),
        (Profile::Quick, Span::CfsSafe) => (22, 480),
        (Profile::Full, _) => (26, (4 << 26) / UPDATES_PER_REP),
    }
}

/// One step of HPCC's LFSR.
pub fn step(r: u64) -> u64 {
    (r << 1) ^ if (r as i64) < 0 { POLY } else { 0 }
}

/// The reference checksum, without a table.
pub fn reference(log2n: u64, updates: u64) -> u64 {
    let n = 1u64 << log2n;
    let mask = n - 1;
    let mut h = (0..n).fold(0u64, |h, i| h ^ i.rotate_left((i & 63) as u32));
    let mut ran = 1u64;
    for _ in 0..updates {
        ran = step(ran);
        h ^= ran.rotate_left(((ran & mask) & 63) as u32);
    }
    h
}

fn prepare(sizing: Sizing, _seed: u64) -> Prepared {
    let (k, reps) = size(sizing);
    let updates = reps * UPDATES_PER_REP;
    Prepared {
        span: sizing.span,
        invocation: Invocation {
            name: WORKLOAD.name,
            workload: WL_MEM_RANDOM,
            params: params(&[k, updates, reps]),
            flags: 0,
        },
        work_bytes: 8 << k,
        disk_bytes: 0,
        expected: Expected::Exact(reference(k, updates)),
    }
}

fn interpret(p: &Prepared, raw: &RawRun, tsc_hz: f64) -> Result<Vec<Metric>, ChecksumMismatch> {
    check(WORKLOAD.name, p.expected, raw.checksum)?;
    let [_, updates, reps, ..] = p.invocation.params;
    check_records(WORKLOAD.name, raw, reps, "one per repetition")?;
    let per_rep = (updates / reps) as f64;
    Ok(
        repeated(p.span, "gups", "GUPS", Better::Higher, &raw.records, |c| {
            per_rep / (c / tsc_hz) / 1e9
        })
        .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::synthetic_run;
    use super::*;

    #[test]
    fn median_ignores_an_outlier_the_mean_does_not() {
        let p = prepare(
            Sizing {
                profile: Profile::Quick,
                span: Span::Short,
            },
            1,
        );
        let reps = p.invocation.params[2];
        // 1 GHz: 2^17 updates in 2^17 ns (1 GUPS), but the last repetition takes 3×.
        let mut records = vec![UPDATES_PER_REP; reps as usize];
        records[reps as usize - 1] *= 3;
        let m = interpret(&p, &synthetic_run(&p, records), 1e9).expect("interprets");
        assert_eq!(m[0].name, "gups");
        assert!((m[0].value - 1.0).abs() < 1e-12, "{m:?}");
        assert_eq!(m[1].name, "gups.mean");
        let mean = reps as f64 / (reps as f64 + 2.0);
        assert!((m[1].value - mean).abs() < 1e-12, "{m:?}");
    }

    #[test]
    fn every_sizing_splits_into_whole_repetitions_of_all_streams() {
        for profile in [Profile::Quick, Profile::Full] {
            for span in [Span::Short, Span::CfsSafe] {
                let p = prepare(Sizing { profile, span }, 0);
                let [_, updates, reps, ..] = p.invocation.params;
                assert_eq!(updates % (128 * reps), 0, "{profile:?} {span:?}");
                assert_eq!(updates / reps, UPDATES_PER_REP);
            }
        }
    }

    /// A direct simulation with a table, for tiny sizes.
    fn with_table(log2n: u64, updates: u64) -> u64 {
        let n = 1usize << log2n;
        let mut t: Vec<u64> = (0..n as u64).collect();
        let mut ran = 1u64;
        for _ in 0..updates {
            ran = step(ran);
            t[(ran as usize) & (n - 1)] ^= ran;
        }
        t.iter()
            .enumerate()
            .fold(0, |h, (i, &x)| h ^ x.rotate_left((i & 63) as u32))
    }

    #[test]
    fn lfsr_steps_by_hand() {
        assert_eq!(step(1), 2);
        assert_eq!(step(1 << 62), 1 << 63);
        // The top bit set: shifted out, POLY folded in.
        assert_eq!(step(1 << 63), 7);
        assert_eq!(step((1 << 63) | 1), 2 ^ 7);
    }

    #[test]
    fn tableless_reference_equals_a_table_simulation() {
        for (k, u) in [(3, 0), (3, 1), (3, 200), (7, 1000), (10, 5000)] {
            assert_eq!(reference(k, u), with_table(k, u), "k={k} updates={u}");
        }
    }

    #[test]
    fn no_updates_leaves_the_identity_table() {
        // T[i] = i for n = 8: XOR of rotl(i, i) = 0^2^8^24^64^160^384^896.
        assert_eq!(reference(3, 0), 2 ^ 8 ^ 24 ^ 64 ^ 160 ^ 384 ^ 896);
    }
}
