//! `cpu.fp`: blocked double-precision matrix multiply C = A·B (LINPACK-like, GFLOP/s).
//!
//! params: [0] n (matrix order), [1] repetitions (1 ..= record_capacity), [2] seed,
//! [3] block size (divides n, multiple of 8).
//! flags: the ISA tier (`FLAG_ISA_*`): SSE2 (two doubles per vector, multiply then add),
//! AVX2+FMA (four, fused multiply-add) or AVX-512 (eight, fused), checked with CPUID and
//! recorded in `results[RESULT_ISA]`. The same blocked loop in every tier; only the width
//! of the innermost j loop and the fusing differ. A, B, C are n×n row-major f64 at work offsets 0, 8n², 16n².
//! A and B hold small integers in -2..=2 (from the seed, untimed), so every partial sum is an
//! exact integer below 2^53: any summation order gives the same bits, and the checksum
//! (a fold over C's bits) is exact. Timed: `reps` repetitions of (zero C, multiply). records: the cycles of each
//! repetition, in order. cycles: the whole timed region, which is the sum of the records.
//! results: [RESULT_ISA] the tier that ran.
use super::{fold, pattern_word, work_f64, Laps};
use crate::abi::*;
use crate::{isa, rt};
use core::arch::x86_64::*;
use core::hint::black_box;

/// Seeds of the two input matrices, derived from the workload seed.
const SEED_A: u64 = 0xa11c_e5a1_0000_0001;
const SEED_B: u64 = 0xb0b5_1ed0_0000_0002;

/// The small-integer value of element `i` of a matrix seeded by `seed`.
#[inline(always)]
fn entry(seed: u64, i: u64) -> f64 {
    (pattern_word(seed, i) % 5) as f64 - 2.0
}

pub fn run(cb: &mut ControlBlock) -> u32 {
    let [n, reps, seed, bs, ..] = cb.params;
    if n == 0 || n > 8192 || bs == 0 || bs % 8 != 0 || n % bs != 0 {
        return STATUS_BAD_PARAMS;
    }
    if reps == 0 || reps > cb.record_capacity {
        return STATUS_BAD_PARAMS;
    }
    let nn = n * n;
    if 3 * nn * 8 > cb.work_size {
        return STATUS_BAD_PARAMS;
    }
    let tier = match isa::requested(cb) {
        Ok(t) => t,
        Err(st) => return st,
    };
    let (Some(a), Some(b), Some(c)) = (
        work_f64(cb, 0, nn),
        work_f64(cb, nn * 8, nn),
        work_f64(cb, 2 * nn * 8, nn),
    ) else {
        return STATUS_BAD_PARAMS;
    };
    for (i, x) in a.iter_mut().enumerate() {
        *x = entry(seed ^ SEED_A, i as u64);
    }
    for (i, x) in b.iter_mut().enumerate() {
        *x = entry(seed ^ SEED_B, i as u64);
    }
    let (n, bs) = (n as usize, bs as usize);
    let rec = rt::records(cb);
    let mut laps = Laps::start_synced(cb);
    for slot in rec.iter_mut().take(reps as usize) {
        c.fill(0.0);
        // SAFETY: `isa::requested` checked with CPUID and XCR0 that this environment runs
        // the tier; the slices are n² long and bs (a multiple of 8) divides n.
        unsafe {
            match tier {
                ISA_AVX512 => multiply_avx512(a, b, c, n, bs),
                ISA_AVX2 => multiply_avx2(a, b, c, n, bs),
                _ => multiply(a, b, c, n, bs),
            }
        }
        // C is written before the repetition's lap ends (no store moves across).
        black_box(&mut *c);
        *slot = laps.lap();
    }
    cb.cycles = laps.total();
    cb.records = reps;
    cb.checksum = c.iter().fold(0, |h, x| fold(h, x.to_bits()));
    STATUS_OK
}

/// C += A·B, blocked by `bs` in i, k and j; the inner loop takes four k at a time so each
/// C element is loaded and stored once per four multiply-adds. All slices are n² long and
/// `bs` divides n, so every index below is in bounds by construction.
fn multiply(a: &[f64], b: &[f64], c: &mut [f64], n: usize, bs: usize) {
    for ii in (0..n).step_by(bs) {
        for kk in (0..n).step_by(bs) {
            for jj in (0..n).step_by(bs) {
                for i in ii..ii + bs {
                    let arow = &a[i * n + kk..i * n + kk + bs];
                    let crow = &mut c[i * n + jj..i * n + jj + bs];
                    for (k4, a4) in arow.chunks_exact(4).enumerate() {
                        let k = kk + 4 * k4;
                        let b0 = &b[k * n + jj..k * n + jj + bs];
                        let b1 = &b[(k + 1) * n + jj..(k + 1) * n + jj + bs];
                        let b2 = &b[(k + 2) * n + jj..(k + 2) * n + jj + bs];
                        let b3 = &b[(k + 3) * n + jj..(k + 3) * n + jj + bs];
                        let (a0, a1, a2, a3) = (a4[0], a4[1], a4[2], a4[3]);
                        for ((((cj, x0), x1), x2), x3) in
                            crow.iter_mut().zip(b0).zip(b1).zip(b2).zip(b3)
                        {
                            *cj += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3;
                        }
                    }
                }
            }
        }
    }
}

/// The AVX2+FMA and AVX-512 forms of [`multiply`]: the same blocks and the same four k at a
/// time, with the j loop in vectors of `$lanes` doubles and
/// c = fma(a3, b3, fma(a2, b2, fma(a1, b1, fma(a0, b0, c)))). The products and partial sums
/// are exact small integers, so C is bit-identical to the SSE2 form's.
macro_rules! multiply_wide {
    ($f:ident, $feat:literal, $lanes:literal, $load:ident, $store:ident, $set1:ident,
     $fma:ident) => {
        /// # Safety
        /// The CPU and the OS (or VMM) must support the tier's features; all slices n² long,
        /// `bs` a multiple of 8 dividing n.
        #[target_feature(enable = $feat)]
        unsafe fn $f(a: &[f64], b: &[f64], c: &mut [f64], n: usize, bs: usize) {
            for ii in (0..n).step_by(bs) {
                for kk in (0..n).step_by(bs) {
                    for jj in (0..n).step_by(bs) {
                        for i in ii..ii + bs {
                            let arow = &a[i * n + kk..i * n + kk + bs];
                            let crow = &mut c[i * n + jj..i * n + jj + bs];
                            for (k4, a4) in arow.chunks_exact(4).enumerate() {
                                let k = kk + 4 * k4;
                                let b0 = &b[k * n + jj..k * n + jj + bs];
                                let b1 = &b[(k + 1) * n + jj..(k + 1) * n + jj + bs];
                                let b2 = &b[(k + 2) * n + jj..(k + 2) * n + jj + bs];
                                let b3 = &b[(k + 3) * n + jj..(k + 3) * n + jj + bs];
                                let (a0, a1, a2, a3) =
                                    ($set1(a4[0]), $set1(a4[1]), $set1(a4[2]), $set1(a4[3]));
                                let pc = crow.as_mut_ptr();
                                for j in (0..bs).step_by($lanes) {
                                    // SAFETY: j + lanes ≤ bs, the length of crow and of
                                    // every b row slice; unaligned loads and stores.
                                    unsafe {
                                        let mut acc = $load(pc.add(j));
                                        acc = $fma(a0, $load(b0.as_ptr().add(j)), acc);
                                        acc = $fma(a1, $load(b1.as_ptr().add(j)), acc);
                                        acc = $fma(a2, $load(b2.as_ptr().add(j)), acc);
                                        acc = $fma(a3, $load(b3.as_ptr().add(j)), acc);
                                        $store(pc.add(j), acc);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
}

multiply_wide!(
    multiply_avx2,
    "avx2,fma",
    4,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_set1_pd,
    _mm256_fmadd_pd
);
multiply_wide!(
    multiply_avx512,
    "avx512f,avx2,fma",
    8,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_set1_pd,
    _mm512_fmadd_pd
);
