//! `mem.stream`: the four STREAM kernels (McCalpin) over three f64 arrays in work memory.
//!
//! params: [0] n (elements per array, multiple of 8), [1] ntimes (iterations, ≥ 2).
//! flags: the ISA tier (`FLAG_ISA_*`: SSE2, AVX2+FMA or AVX-512 vectors, checked with
//! CPUID, recorded in `results[RESULT_ISA]`); `FLAG_STREAM_NT_COPY`: copy with non-temporal
//! (streaming) stores, as glibc's `memcpy` does above its threshold, which is what STREAM's
//! copy loop becomes under `gcc -O3`.
//! Arrays a, b, c at work offsets 0, 8n, 16n. Initialised as STREAM does (a = 1, b = 2,
//! c = 0, then a = 2a; untimed), then `ntimes` iterations of copy (c = a), scale (b = 3c),
//! add (c = a + b), triad (a = b + 3c; a fused multiply-add in the AVX tiers, as gcc
//! contracts it), each kernel timed on its own.
//! records: 4 × ntimes cycle counts, iteration-major (copy, scale, add, triad); each kernel of
//! each iteration is one repetition.
//! results: [0..3] = bits of the compensated sums of a, b, c after the last iteration (the
//! harness checks them STREAM's way, with a relative tolerance).
//! checksum: fold over the bits of every element of a, then b, then c (untimed). The values
//! stay integers below 2^53, so every element must be bit-exact in every tier. cycles: the
//! whole timed region, all iterations, which is the sum of the records.
use super::{fold, work_f64, Laps};
use crate::abi::*;
use crate::{isa, rt};
use core::arch::asm;
use core::arch::x86_64::*;
use core::hint::black_box;

const SCALAR: f64 = 3.0;

/// An empty barrier inside every 8-element step: it keeps LLVM from turning the copy loop
/// into a `memcpy` call (`rep movsb` here), so the kernels stay the vector loops of their
/// tier.
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
    let tier = match isa::requested(cb) {
        Ok(t) => t,
        Err(st) => return st,
    };
    let nt_copy = cb.flags & FLAG_STREAM_NT_COPY != 0;
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
    let mut laps = Laps::start_synced(cb);
    for times in rec.chunks_exact_mut(4).take(ntimes as usize) {
        // SAFETY: `isa::requested` checked with CPUID and XCR0 that this environment runs
        // the tier; the three arrays are n elements each, n a multiple of 8, and 64-byte
        // aligned (WORK_BASE, offsets of 8n bytes), as the streaming stores require.
        unsafe {
            match tier {
                ISA_AVX512 => iteration_avx512(a, b, c, nt_copy, &mut laps, times),
                ISA_AVX2 => iteration_avx2(a, b, c, nt_copy, &mut laps, times),
                _ => iteration_sse2(a, b, c, nt_copy, &mut laps, times),
            }
        }
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

/// One STREAM iteration (copy, scale, add, triad, each its own lap) with one tier's vectors
/// of `$lanes` doubles; `$triad(b, s, c)` computes b + s·c.
macro_rules! stream_iteration {
    ($f:ident, $feat:literal, $lanes:literal, $load:ident, $store:ident, $stream:ident,
     $set1:ident, $add:ident, $mul:ident, $triad:expr) => {
        /// # Safety
        /// The CPU and the OS (or VMM) must support the tier's features; the slices must have
        /// equal lengths, a multiple of 8, and start 64-byte aligned.
        #[target_feature(enable = $feat)]
        unsafe fn $f(
            a: &mut [f64],
            b: &mut [f64],
            c: &mut [f64],
            nt_copy: bool,
            laps: &mut Laps,
            times: &mut [u64],
        ) {
            let n = a.len();
            let (pa, pb, pc) = (a.as_mut_ptr(), b.as_mut_ptr(), c.as_mut_ptr());
            let s = $set1(SCALAR);
            // SAFETY (all blocks below): i + k < n for every access, the pointers are valid
            // for n elements, and 64-byte alignment covers every vector width used.
            if nt_copy {
                for i in (0..n).step_by(8) {
                    for k in (0..8).step_by($lanes) {
                        unsafe { $stream(pc.add(i + k), $load(pa.add(i + k))) };
                    }
                    step_barrier();
                }
                // Streaming stores are weakly ordered: drain them inside the lap.
                _mm_sfence();
            } else {
                for i in (0..n).step_by(8) {
                    for k in (0..8).step_by($lanes) {
                        unsafe { $store(pc.add(i + k), $load(pa.add(i + k))) };
                    }
                    step_barrier();
                }
            }
            times[0] = lap(laps, c);
            for i in (0..n).step_by(8) {
                for k in (0..8).step_by($lanes) {
                    unsafe { $store(pb.add(i + k), $mul(s, $load(pc.add(i + k)))) };
                }
                step_barrier();
            }
            times[1] = lap(laps, b);
            for i in (0..n).step_by(8) {
                for k in (0..8).step_by($lanes) {
                    unsafe {
                        $store(
                            pc.add(i + k),
                            $add($load(pa.add(i + k)), $load(pb.add(i + k))),
                        )
                    };
                }
                step_barrier();
            }
            times[2] = lap(laps, c);
            for i in (0..n).step_by(8) {
                for k in (0..8).step_by($lanes) {
                    unsafe {
                        let (vb, vc) = ($load(pb.add(i + k)), $load(pc.add(i + k)));
                        $store(pa.add(i + k), $triad(vb, s, vc))
                    };
                }
                step_barrier();
            }
            times[3] = lap(laps, a);
        }
    };
}

stream_iteration!(
    iteration_sse2,
    "sse2",
    2,
    _mm_loadu_pd,
    _mm_storeu_pd,
    _mm_stream_pd,
    _mm_set1_pd,
    _mm_add_pd,
    _mm_mul_pd,
    |b, s, c| _mm_add_pd(b, _mm_mul_pd(s, c))
);
stream_iteration!(
    iteration_avx2,
    "avx2,fma",
    4,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_stream_pd,
    _mm256_set1_pd,
    _mm256_add_pd,
    _mm256_mul_pd,
    |b, s, c| _mm256_fmadd_pd(s, c, b)
);
stream_iteration!(
    iteration_avx512,
    "avx512f,avx2,fma",
    8,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_stream_pd,
    _mm512_set1_pd,
    _mm512_add_pd,
    _mm512_mul_pd,
    |b, s, c| _mm512_fmadd_pd(s, c, b)
);

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
