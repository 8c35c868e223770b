//! `cpu.fp`: blocked double-precision matrix multiply C = A·B (LINPACK-like); GFLOP/s.
//!
//! Contract with `image/src/kernels/cpu_fp.rs`: params [n, reps, seed, block];
//! A[i] = pattern_word(seed ^ SEED_A, i) mod 5 - 2, B likewise with SEED_B (small integers,
//! so C is exact in f64 in any summation order); checksum = fold over the bits of C, row-major;
//! records = cycles of each repetition (zero C + multiply); cycles = their sum; flags carry
//! the ISA tier ([`super::isa`]), and `results[RESULT_ISA]` must say that tier ran. C is
//! the same in every tier (exact integers), so one reference serves them all.
//!
//! Repetitions (docs/METHODOLOGY.md, "Repetitions and the per-sample value"): one repetition
//! is one product. Quick: n = 256 (about 1.5 ms), 20 repetitions with `Span::Short`, 288 with
//! `Span::CfsSafe`. Full: n = 1024 (about 160 ms, out of L2), 5 repetitions with either span:
//! the fewest a median is taken over, already past 350 ms. Metrics:
//! `dgemm` (GFLOP/s of the median repetition, the primary metric) and `dgemm.mean` (all
//! FLOPs over all cycles).

use isobench_abi::WL_CPU_FP;

use super::gen::{fold, pattern_word};
use super::{
    check, check_records, params, repeated, Better, ChecksumMismatch, Expected, Metric, Prepared,
    Profile, Sizing, Span, Workload,
};
use crate::image::{Invocation, RawRun};

pub const WORKLOAD: Workload = Workload {
    name: "cpu.fp",
    id: WL_CPU_FP,
    description:
        "blocked f64 matrix multiply in the run's ISA tier (--isa: SSE2, AVX2+FMA, AVX-512), one product per repetition (quick: 256×256, full: 1024×1024) (GFLOP/s)",
    prepare,
    interpret,
    primary: |_| "dgemm".into(),
    repeated: true,
};

const SEED_A: u64 = 0xa11c_e5a1_0000_0001;
const SEED_B: u64 = 0xb0b5_1ed0_0000_0002;
const BLOCK: u64 = 64;

/// (order n, repetitions) per sizing.
fn size(sizing: Sizing) -> (u64, u64) {
    match (sizing.profile, sizing.span) {
        (Profile::Quick, Span::Short) => (256, 20),
        (Profile::Quick, Span::CfsSafe) => (256, 288),
        (Profile::Full, Span::Short) => (1024, 5),
        (Profile::Full, Span::CfsSafe) => (1024, 5),
    }
}

/// The matrix entry the image generates at index `i`.
pub fn entry(seed: u64, i: u64) -> f64 {
    (pattern_word(seed, i) % 5) as f64 - 2.0
}

/// The reference: C = A·B by the textbook i-k-j loop, then the fold over C's bits.
pub fn reference(n: u64, seed: u64) -> u64 {
    let n = n as usize;
    let a: Vec<f64> = (0..n * n).map(|i| entry(seed ^ SEED_A, i as u64)).collect();
    let b: Vec<f64> = (0..n * n).map(|i| entry(seed ^ SEED_B, i as u64)).collect();
    let c = matmul(&a, &b, n);
    c.iter().fold(0, |h, x| fold(h, x.to_bits()))
}

/// Plain C = A·B for n×n row-major matrices.
pub fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                c[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    c
}

fn prepare(sizing: Sizing, seed: u64) -> Prepared {
    let (n, reps) = size(sizing);
    Prepared {
        span: sizing.span,
        invocation: Invocation {
            name: WORKLOAD.name,
            workload: WL_CPU_FP,
            params: params(&[n, reps, seed, BLOCK]),
            flags: 0,
        },
        work_bytes: 3 * n * n * 8,
        disk_bytes: 0,
        expected: Expected::Exact(reference(n, seed)),
    }
}

fn interpret(p: &Prepared, raw: &RawRun, tsc_hz: f64) -> Result<Vec<Metric>, ChecksumMismatch> {
    check(WORKLOAD.name, p.expected, raw.checksum)?;
    super::isa::check_ran(&p.invocation, raw)?;
    let [n, reps, ..] = p.invocation.params;
    check_records(WORKLOAD.name, raw, reps, "one per repetition")?;
    let flops = 2.0 * (n as f64).powi(3);
    Ok(repeated(
        p.span,
        "dgemm",
        "GFLOP/s",
        Better::Higher,
        &raw.records,
        |c| flops / (c / tsc_hz) / 1e9,
    )
    .into())
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
        let [n, reps, ..] = p.invocation.params;
        // 1 GHz: 2n³ FLOPs in 1 ms each, but one repetition takes 5 ms.
        let mut records = vec![1_000_000u64; reps as usize];
        records[0] = 5_000_000;
        let m = interpret(&p, &synthetic_run(&p, records), 1e9).expect("interprets");
        let gflops = 2.0 * (n as f64).powi(3) / 1e-3 / 1e9;
        assert_eq!(m[0].name, "dgemm");
        assert!((m[0].value - gflops).abs() < 1e-9, "{m:?}");
        assert_eq!(m[1].name, "dgemm.mean");
        let mean = gflops * reps as f64 / (reps as f64 + 4.0);
        assert!((m[1].value - mean).abs() < 1e-9, "{m:?}");
        let short = synthetic_run(&p, vec![1; reps as usize - 1]);
        assert!(interpret(&p, &short, 1e9).is_err());
    }

    #[test]
    fn matmul_of_a_known_product() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        let c = matmul(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], 2);
        assert_eq!(c, vec![19.0, 22.0, 43.0, 50.0]);
    }

    #[test]
    fn entries_are_small_integers_so_sums_are_exact() {
        let mut seen = [false; 5];
        for i in 0..1000 {
            let e = entry(7, i);
            assert_eq!(e, e.trunc());
            assert!((-2.0..=2.0).contains(&e));
            seen[(e + 2.0) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "all five values occur");
    }

    #[test]
    fn reference_equals_fold_over_an_independent_product() {
        // Identity-like check: with n = 4 the product computed by a j-k-i loop (another
        // summation order) folds to the same checksum.
        let n = 4usize;
        let a: Vec<f64> = (0..16).map(|i| entry(9 ^ SEED_A, i)).collect();
        let b: Vec<f64> = (0..16).map(|i| entry(9 ^ SEED_B, i)).collect();
        let mut c = [0.0; 16];
        for j in 0..n {
            for k in (0..n).rev() {
                for i in 0..n {
                    c[i * n + j] += a[i * n + k] * b[k * n + j];
                }
            }
        }
        let h = c.iter().fold(0, |h, x| fold(h, x.to_bits()));
        assert_eq!(reference(4, 9), h);
    }
}
