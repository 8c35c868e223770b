//! `cpu.int`: integer hashing over an L1-resident buffer.
//!
//! params: [0] buffer bytes (multiple of 8, ≤ work_size), [1] passes over the buffer per
//! repetition (≥ 1), [2] seed, [3] repetitions (1 ..= record_capacity). The buffer is filled
//! from the seed (untimed), then hashed `passes` times in each repetition; one hash chain
//! runs through all repetitions (passes × repetitions passes in all).
//! records: the cycles of each repetition, in order. checksum: the final hash. cycles: the
//! whole timed region, which is the sum of the records. results: none.
use super::Laps;
use crate::abi::*;
use crate::rt;
use core::hint::black_box;

pub fn run(cb: &mut ControlBlock) -> u32 {
    let [bytes, passes, seed, reps, ..] = cb.params;
    if bytes == 0 || bytes % 8 != 0 || bytes > cb.work_size {
        return STATUS_BAD_PARAMS;
    }
    if passes == 0 || reps == 0 || reps > cb.record_capacity {
        return STATUS_BAD_PARAMS;
    }
    let words = (bytes / 8) as usize;
    let work = rt::work(cb);
    // SAFETY: work is at least `bytes` long (checked above) and 8-aligned (WORK_BASE).
    let buf = unsafe { core::slice::from_raw_parts_mut(work.as_mut_ptr() as *mut u64, words) };
    let mut x = seed;
    for w in buf.iter_mut() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *w = x;
    }
    let rec = rt::records(cb);
    let mut h: u64 = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut laps = Laps::start_synced(cb);
    for slot in rec.iter_mut().take(reps as usize) {
        for _ in 0..passes {
            for &w in buf.iter() {
                h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
                h ^= h >> 29;
            }
        }
        // The repetition's hash exists before its lap ends (no computation moves across).
        h = black_box(h);
        *slot = laps.lap();
    }
    cb.cycles = laps.total();
    cb.records = reps;
    cb.checksum = h;
    STATUS_OK
}
