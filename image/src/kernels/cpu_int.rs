//! `cpu.int`: integer hashing over an L1-resident buffer.
//!
//! params: [0] buffer bytes (multiple of 8, ≤ work_size), [1] passes over the buffer,
//! [2] seed. The buffer is filled from the seed (untimed), then hashed `passes` times.
//! checksum: the final hash. results: none.
use crate::abi::*;
use crate::rt;

pub fn run(cb: &mut ControlBlock) -> u32 {
    let bytes = cb.params[0];
    let passes = cb.params[1];
    let seed = cb.params[2];
    if bytes == 0 || bytes % 8 != 0 || bytes > cb.work_size {
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
    let t0 = rt::rdtsc();
    let mut h: u64 = seed ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..passes {
        for &w in buf.iter() {
            h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
            h ^= h >> 29;
        }
    }
    cb.cycles = rt::rdtsc() - t0;
    cb.checksum = h;
    STATUS_OK
}
