//! `mem.latency`: dependent pointer chase over one random cycle, working set swept in powers
//! of two (ns per access).
//!
//! params: [0] log2 of the smallest working set in bytes (≥ 7), [1] log2 of the largest,
//! [2] timed steps per repetition, [3] seed, [4] repetitions per size (≥ 1; sizes ×
//! repetitions ≤ record_capacity). For each size S: S/64 nodes, one per 64-byte line; a
//! compact u32 array (in the first bytes of the region) holds i at i, Sattolo's shuffle over
//! it (SplitMix64 seeded with `seed ^ log2(S)`, j = ⌊r·i / 2^64⌋, for i = nodes-1 down to 1)
//! makes it one cycle, and the first word of node i gets the address of node perm[i];
//! min(nodes, steps) warm-up steps (untimed), then `reps` timed repetitions of `steps` steps
//! of `p = *p`, the chase carrying on from one repetition to the next.
//! records: size-major, smallest size first: the cycles of each repetition of each size
//! (record s·reps + r is repetition r of the s-th size). checksum: fold of the node index
//! reached after each size's warm-up + reps × steps timed steps. cycles: sum of the timed
//! chases (the records; the set-up between sizes is not timed).
use super::{fold, splitmix64, Laps};
use crate::abi::*;
use crate::rt;
use core::hint::black_box;

const LINE: u64 = 64;

pub fn run(cb: &mut ControlBlock) -> u32 {
    let [lo, hi, steps, seed, reps, ..] = cb.params;
    if lo < 7 || hi < lo || hi > 36 || steps == 0 || reps == 0 {
        return STATUS_BAD_PARAMS;
    }
    if (hi - lo + 1).saturating_mul(reps) > cb.record_capacity {
        return STATUS_BAD_PARAMS;
    }
    if (1u64 << hi) > cb.work_size {
        return STATUS_BAD_PARAMS;
    }
    let base = cb.work_addr;
    let rec = rt::records(cb);
    let mut h = 0u64;
    let mut total = 0u64;
    for (slots, log2) in rec.chunks_exact_mut(reps as usize).zip(lo..=hi) {
        let nodes = (1u64 << log2) / LINE;
        // The permutation is built compactly (u32 per node) in the first sixteenth of the
        // region, so the random swaps stay in cache and no memory beyond the lines is needed.
        // SAFETY: nodes·4 ≤ 2^log2 ≤ work_size bytes at the 8-aligned work base, mapped
        // read-write; the slice ends before the raw node writes below.
        let perm = unsafe { core::slice::from_raw_parts_mut(base as *mut u32, nodes as usize) };
        for (i, x) in perm.iter_mut().enumerate() {
            *x = i as u32;
        }
        let mut st = seed ^ log2;
        for i in (1..perm.len()).rev() {
            let j = ((splitmix64(&mut st) as u128 * i as u128) >> 64) as usize;
            perm.swap(i, j);
        }
        // Expand in place, highest node first: node i's word (bytes 64i..64i+8) only
        // overlaps perm entries 16i and 16i+1, which are ≥ i and so already consumed (perm[0]
        // is read before node 0 is written).
        for i in (0..nodes).rev() {
            // SAFETY: perm entry i (4i) and node i (64i, i < nodes) both lie inside the first
            // 2^log2 ≤ work_size bytes of the work memory.
            unsafe {
                let x = *((base + 4 * i) as *const u32);
                *((base + i * LINE) as *mut u64) = base + x as u64 * LINE;
            }
        }
        let mut p = base as *const u64;
        for _ in 0..nodes.min(steps) {
            // SAFETY: p is always the address of a node (they only hold node addresses).
            p = unsafe { *p } as *const u64;
        }
        let mut laps = Laps::start();
        for slot in slots.iter_mut() {
            for _ in 0..steps {
                // SAFETY: as above.
                p = unsafe { *p } as *const u64;
            }
            // The repetition's last load is done before its lap ends.
            p = black_box(p);
            *slot = laps.lap();
        }
        total += laps.total();
        h = fold(h, (p as u64 - base) / LINE);
    }
    cb.records = (hi - lo + 1) * reps;
    cb.cycles = total;
    cb.checksum = h;
    STATUS_OK
}
