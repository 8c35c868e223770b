//! `mem.random`: HPCC RandomAccess (GUPS) over a table of 2^k u64 in work memory.
//!
//! params: [0] k = log2 of the table length (3..=33), [1] updates in all (a multiple of
//! 128 × repetitions), [2] repetitions (1 ..= record_capacity).
//! The table is set to T[i] = i (untimed); then, as in HPCC's reference RandomAccess, 128
//! interleaved streams of the 64-bit LFSR `ran = (ran << 1) ^ (ran < 0 ? POLY : 0)`, stream j
//! starting at `HPCC_starts(updates / 128 * j)`, each do `T[ran & (n-1)] ^= ran` (timed).
//! Together the streams walk the sequence x^1 .. x^updates exactly once. The update loop is
//! cut into `reps` equal repetitions of updates / reps updates (every stream advances
//! updates / (128 · reps) steps in each); the streams carry on from one to the next.
//! records: the cycles of each repetition, in order. checksum: XOR over i of
//! rotl(T[i], i mod 64) (untimed), which the harness reproduces without a table. cycles: the
//! whole update loop, which is the sum of the records.
use super::Laps;
use crate::abi::*;
use crate::rt;
use core::hint::black_box;

const POLY: u64 = 0x7;
const PERIOD: u64 = 1_317_624_576_693_539_401;
const STREAMS: usize = 128;

#[inline(always)]
fn step(r: u64) -> u64 {
    (r << 1) ^ if (r as i64) < 0 { POLY } else { 0 }
}

/// HPCC's `HPCC_starts(n)`: the LFSR state after n steps from 1, by repeated squaring in
/// GF(2)[x] / (x^64 + POLY).
fn hpcc_starts(mut n: u64) -> u64 {
    n %= PERIOD;
    if n == 0 {
        return 1;
    }
    let mut m2 = [0u64; 64];
    let mut temp = 1u64;
    for m in m2.iter_mut() {
        *m = temp;
        temp = step(step(temp));
    }
    let mut i = 62i32;
    while i >= 0 && (n >> i) & 1 == 0 {
        i -= 1;
    }
    let mut ran = 2u64;
    while i > 0 {
        let mut t = 0u64;
        for (j, m) in m2.iter().enumerate() {
            if (ran >> j) & 1 != 0 {
                t ^= *m;
            }
        }
        ran = t;
        i -= 1;
        if (n >> i) & 1 != 0 {
            ran = step(ran);
        }
    }
    ran
}

pub fn run(cb: &mut ControlBlock) -> u32 {
    let [log2n, updates, reps, ..] = cb.params;
    if !(3..=33).contains(&log2n) || reps == 0 || reps > cb.record_capacity {
        return STATUS_BAD_PARAMS;
    }
    let chunk = reps.saturating_mul(STREAMS as u64);
    if updates == 0 || updates % chunk != 0 {
        return STATUS_BAD_PARAMS;
    }
    let n = 1u64 << log2n;
    let Some(table) = super::work_words(cb, 0, n) else {
        return STATUS_BAD_PARAMS;
    };
    for (i, t) in table.iter_mut().enumerate() {
        *t = i as u64;
    }
    let per_stream = updates / STREAMS as u64;
    let mut ran = [0u64; STREAMS];
    for (j, r) in ran.iter_mut().enumerate() {
        *r = hpcc_starts(per_stream * j as u64);
    }
    let per_rep = per_stream / reps;
    let mask = n - 1;
    let base = table.as_mut_ptr();
    let rec = rt::records(cb);
    let mut laps = Laps::start();
    for slot in rec.iter_mut().take(reps as usize) {
        for _ in 0..per_rep {
            for r in ran.iter_mut() {
                let v = step(*r);
                *r = v;
                // SAFETY: `v & mask` < n = table.len(), so the access is inside the table.
                unsafe { *base.add((v & mask) as usize) ^= v };
            }
        }
        // The repetition's updates are issued before its lap ends (no store moves across).
        black_box(base);
        *slot = laps.lap();
    }
    cb.cycles = laps.total();
    cb.records = reps;
    cb.checksum = table
        .iter()
        .enumerate()
        .fold(0, |h, (i, &t)| h ^ t.rotate_left(i as u32 & 63));
    STATUS_OK
}
