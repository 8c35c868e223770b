//! `cpu.fp`: blocked double-precision matrix multiply C = A·B (LINPACK-like, GFLOP/s).
//!
//! params: [0] n (matrix order), [1] repetitions (1 ..= record_capacity), [2] seed,
//! [3] block size (divides n, multiple of 4). A, B, C are n×n row-major f64 at work offsets 0, 8n², 16n².
//! A and B hold small integers in -2..=2 (from the seed, untimed), so every partial sum is an
//! exact integer below 2^53: any summation order gives the same bits, and the checksum
//! (a fold over C's bits) is exact. Timed: `reps` repetitions of (zero C, multiply). records: the cycles of each
//! repetition, in order. cycles: the whole timed region, which is the sum of the records.
//! results: none.
use super::{fold, pattern_word, work_f64, Laps};
use crate::abi::*;
use crate::rt;
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
    if n == 0 || n > 8192 || bs == 0 || bs % 4 != 0 || n % bs != 0 {
        return STATUS_BAD_PARAMS;
    }
    if reps == 0 || reps > cb.record_capacity {
        return STATUS_BAD_PARAMS;
    }
    let nn = n * n;
    if 3 * nn * 8 > cb.work_size {
        return STATUS_BAD_PARAMS;
    }
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
    let mut laps = Laps::start();
    for slot in rec.iter_mut().take(reps as usize) {
        c.fill(0.0);
        multiply(a, b, c, n, bs);
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
