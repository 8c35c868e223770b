//! `mem.stream`: the four STREAM kernels (McCalpin) over three f64 arrays in work memory.
//!
//! params: [0] n (elements per array, multiple of 8), [1] ntimes (iterations, ≥ 2).
//! Arrays a, b, c at work offsets 0, 8n, 16n. Initialised as STREAM does (a = 1, b = 2,
//! c = 0, then a = 2a; untimed), then `ntimes` iterations of copy (c = a), scale (b = 3c),
//! add (c = a + b), triad (a = b + 3c), each kernel timed on its own.
//! records: 4 × ntimes cycle counts, iteration-major (copy, scale, add, triad); each kernel of
//! each iteration is one repetition.
//! results: [0..3] = bits of the compensated sums of a, b, c after the last iteration (the
//! harness checks them STREAM's way, with a relative tolerance).
//! checksum: fold over the bits of every element of a, then b, then c (untimed). The values
//! stay integers below 2^53, so every element must be bit-exact. cycles: the whole timed
//! region, all iterations, which is the sum of the records.
use super::{fold, work_f64, Laps};
use crate::abi::*;
use crate::rt;
use core::arch::asm;
use core::hint::black_box;

const SCALAR: f64 = 3.0;

/// An empty barrier inside every 8-element step: it keeps LLVM from turning the copy loop
/// into a `memcpy` call (`rep movsb` here), so all four kernels stay plain SSE2 loops.
#[inline(always)]
fn step_barrier() {
    // SAFETY: an empty asm statement: no instructions, no memory, no flags.
    unsafe { asm!("", options(nomem, nostack, preserves_flags)) };
}

pub fn run(cb: &mut ControlBlock) -> u32 {
    let [n, ntimes, ..] = cb.params;
    if n == 0 || n % 8 != 0 || !(2..=1000).contains(&ntimes) {
        return STATUS_BAD_PARAMS;
    }
    if n.saturating_mul(24) > cb.work_size || 4 * ntimes > cb.record_capacity {
        return STATUS_BAD_PARAMS;
    }
    let (Some(a), Some(b), Some(c)) = (
        work_f64(cb, 0, n),
        work_f64(cb, 8 * n, n),
        work_f64(cb, 16 * n, n),
    ) else {
        return STATUS_BAD_PARAMS;
    };
    a.fill(1.0);
    b.fill(2.0);
    c.fill(0.0);
    for x in a.iter_mut() {
        *x *= 2.0;
    }
    let rec = rt::records(cb);
    let mut laps = Laps::start();
    for times in rec.chunks_exact_mut(4).take(ntimes as usize) {
        for (cc, aa) in c.chunks_exact_mut(8).zip(a.chunks_exact(8)) {
            for (x, y) in cc.iter_mut().zip(aa) {
                *x = *y;
            }
            step_barrier();
        }
        times[0] = lap(&mut laps, c);
        for (bb, cc) in b.chunks_exact_mut(8).zip(c.chunks_exact(8)) {
            for (x, y) in bb.iter_mut().zip(cc) {
                *x = SCALAR * *y;
            }
            step_barrier();
        }
        times[1] = lap(&mut laps, b);
        for ((cc, aa), bb) in c
            .chunks_exact_mut(8)
            .zip(a.chunks_exact(8))
            .zip(b.chunks_exact(8))
        {
            for ((x, y), z) in cc.iter_mut().zip(aa).zip(bb) {
                *x = *y + *z;
            }
            step_barrier();
        }
        times[2] = lap(&mut laps, c);
        for ((aa, bb), cc) in a
            .chunks_exact_mut(8)
            .zip(b.chunks_exact(8))
            .zip(c.chunks_exact(8))
        {
            for ((x, y), z) in aa.iter_mut().zip(bb).zip(cc) {
                *x = *y + SCALAR * *z;
            }
            step_barrier();
        }
        times[3] = lap(&mut laps, a);
    }
    cb.cycles = laps.total();
    cb.records = 4 * ntimes;
    let (sa, sb, sc) = (kahan(a), kahan(b), kahan(c));
    cb.results[0] = sa.to_bits();
    cb.results[1] = sb.to_bits();
    cb.results[2] = sc.to_bits();
    cb.checksum = [&*a, &*b, &*c]
        .iter()
        .fold(0, |h, arr| arr.iter().fold(h, |h, x| fold(h, x.to_bits())));
    STATUS_OK
}

/// End a kernel's lap once the array it wrote is written (no store moves across the read).
#[inline(always)]
fn lap(laps: &mut Laps, written: &mut [f64]) -> u64 {
    black_box(written);
    laps.lap()
}

/// Kahan-compensated sum (untimed validation): accurate to a few ulps whatever n is, so the
/// harness can use STREAM's tight relative tolerance.
fn kahan(x: &[f64]) -> f64 {
    let (mut s, mut comp) = (0.0f64, 0.0f64);
    for &v in x {
        let y = v - comp;
        let t = s + y;
        comp = (t - s) - y;
        s = t;
    }
    s
}
