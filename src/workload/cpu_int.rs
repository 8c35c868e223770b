//! `cpu.int`: integer hashing over an L1-resident buffer; MB/s hashed.
//!
//! Contract with `image/src/kernels/cpu_int.rs`: params [buffer bytes, passes per repetition,
//! seed, repetitions]; one hash chain through passes × repetitions passes; checksum = final
//! hash; records = cycles per repetition; cycles = their sum.
//!
//! Repetitions (docs/METHODOLOGY.md, "Repetitions and the per-sample value"): 320 passes
//! over the 16 KiB buffer (5 MiB hashed, about 1 ms); 24 of them with `Span::Short`, 480 with
//! `Span::CfsSafe`. The problem (an L1-resident buffer) has no size to scale, so both
//! profiles size it alike. Metrics: `hash` (MB/s of the median repetition, the primary
//! metric) and `hash.mean` (all bytes over all cycles).

use isobench_abi::WL_CPU_INT;

use super::{
    check, check_records, params, repeated, Better, ChecksumMismatch, Expected, Metric, Prepared,
    Sizing, Span, Workload,
};
use crate::image::{Invocation, RawRun};

pub const WORKLOAD: Workload = Workload {
    name: "cpu.int",
    id: WL_CPU_INT,
    description: "integer hashing over a 16 KiB L1-resident buffer, ~1 ms repetitions (MB/s)",
    prepare,
    interpret,
    primary: |_| "hash".into(),
    repeated: true,
};

const BUFFER_BYTES: u64 = 16 * 1024;
const PASSES_PER_REP: u64 = 320;

/// Repetitions per invocation.
fn reps(span: Span) -> u64 {
    match span {
        Span::Short => 24,
        Span::CfsSafe => 480,
    }
}

/// The reference: the same hash, written independently in plain Rust.
pub fn reference(bytes: u64, passes: u64, seed: u64) -> u64 {
    let mut x = seed;
    let buf: Vec<u64> = (0..bytes / 8)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x
        })
        .collect();
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..passes {
        for w in &buf {
            h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
            h ^= h >> 29;
        }
    }
    h
}

fn prepare(sizing: Sizing, seed: u64) -> Prepared {
    let reps = reps(sizing.span);
    Prepared {
        span: sizing.span,
        invocation: Invocation {
            name: WORKLOAD.name,
            workload: WL_CPU_INT,
            params: params(&[BUFFER_BYTES, PASSES_PER_REP, seed, reps]),
            flags: 0,
        },
        work_bytes: BUFFER_BYTES,
        disk_bytes: 0,
        expected: Expected::Exact(reference(BUFFER_BYTES, PASSES_PER_REP * reps, seed)),
    }
}

fn interpret(p: &Prepared, raw: &RawRun, tsc_hz: f64) -> Result<Vec<Metric>, ChecksumMismatch> {
    check(WORKLOAD.name, p.expected, raw.checksum)?;
    let [bytes, passes, _, reps, ..] = p.invocation.params;
    check_records(WORKLOAD.name, raw, reps, "one per repetition")?;
    let bytes_per_rep = (bytes * passes) as f64;
    Ok(
        repeated(p.span, "hash", "MB/s", Better::Higher, &raw.records, |c| {
            bytes_per_rep / (c / tsc_hz) / 1e6
        })
        .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::{synthetic_run, Profile};
    use super::*;

    fn sizing(span: Span) -> Sizing {
        Sizing {
            profile: Profile::Quick,
            span,
        }
    }

    #[test]
    fn spans_differ_only_in_the_number_of_repetitions() {
        let (short, cfs) = (
            prepare(sizing(Span::Short), 3),
            prepare(sizing(Span::CfsSafe), 3),
        );
        assert_eq!(short.invocation.params[..3], cfs.invocation.params[..3]);
        let reps = cfs.invocation.params[3];
        assert!(short.invocation.params[3] < reps);
        assert_eq!(
            cfs.expected,
            Expected::Exact(reference(BUFFER_BYTES, PASSES_PER_REP * reps, 3))
        );
    }

    #[test]
    fn median_ignores_an_outlier_the_mean_does_not() {
        let p = prepare(sizing(Span::Short), 1);
        let reps = p.invocation.params[3] as usize;
        // 1 GHz: a repetition of 5 MiB in 1 ms is 5242.88 MB/s; one takes 10 ms.
        let mut records = vec![1_000_000u64; reps];
        records[3] = 10_000_000;
        let m = interpret(&p, &synthetic_run(&p, records), 1e9).expect("interprets");
        let mb = (BUFFER_BYTES * PASSES_PER_REP) as f64 / 1e6;
        assert_eq!(m[0].name, "hash");
        assert!((m[0].value - mb / 1e-3).abs() < 1e-6, "{m:?}");
        assert_eq!(m[1].name, "hash.mean");
        let mean_s = (reps as f64 - 1.0 + 10.0) * 1e-3 / reps as f64;
        assert!((m[1].value - mb / mean_s).abs() < 1e-6, "{m:?}");
        assert!(m[1].value < m[0].value);
    }

    #[test]
    fn a_wrong_record_count_is_an_error() {
        let p = prepare(sizing(Span::Short), 1);
        let e = interpret(&p, &synthetic_run(&p, vec![10]), 1e9)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1 records") && e.contains("one per repetition"),
            "{e}"
        );
    }
}
