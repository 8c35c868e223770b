//! The workload kernels, one module per workload. Each `run` reads its parameters from the
//! control block, times its steady-state region with `rt::rdtsc`, and leaves a checksum that
//! the harness verifies against an independent computation (`src/workload/`).
//!
//! Also the few helpers the kernels share: the deterministic generators the harness
//! re-implements independently, and the hostcall-failure convention.

pub mod cpu_fp;
pub mod cpu_int;
pub mod io_rand;
pub mod io_seq;
pub mod mem_latency;
pub mod mem_random;
pub mod mem_stream;
pub mod mem_touch;
pub mod sys_call;

use crate::abi::*;

/// SplitMix64 (Steele, Lea, Flood 2014): the generator behind every deterministic data
/// pattern and random choice in the kernels. The harness has its own copy.
#[inline(always)]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The data word at word index `i` of a pattern seeded by `seed` (stateless SplitMix64).
#[inline(always)]
pub fn pattern_word(seed: u64, i: u64) -> u64 {
    let mut s = seed ^ i.wrapping_mul(0xd6e8_feb8_6659_fd93);
    splitmix64(&mut s)
}

/// Mixed into the seed of the per-block stamps of the disk data.
pub const STAMP: u64 = 0x2545_f491_4f6c_dd1d;
/// Words per disk block.
pub const BLOCK_WORDS: usize = (DISK_BLOCK / 8) as usize;

/// The IO workloads' data (docs/METHODOLOGY.md, "IO: the data"): word j of disk block b is
/// `base[j] ^ pattern_word(stamp_seed ^ STAMP, b)`, where `base[j] = pattern_word(base_seed,
/// j)` is one block computed once ([`disk_base`]). Every block differs from every other by
/// its stamp, so a block written, read or placed wrongly changes the checksum, while making
/// a block costs one stamp and one xor per word: a write phase is the IO, as fio's is, not
/// the generation of its data. Fill `dst` (whole blocks) with blocks `first_block`, … .
#[inline(always)]
pub fn fill_blocks(dst: &mut [u64], base: &[u64], stamp_seed: u64, first_block: u64) {
    for (k, block) in dst.chunks_exact_mut(BLOCK_WORDS).enumerate() {
        let stamp = pattern_word(stamp_seed ^ STAMP, first_block + k as u64);
        for (d, b) in block.iter_mut().zip(base) {
            *d = b ^ stamp;
        }
    }
}

/// The base block of [`fill_blocks`]: `base[j] = pattern_word(base_seed, j)`.
pub fn disk_base(base: &mut [u64], base_seed: u64) {
    for (j, w) in base.iter_mut().enumerate() {
        *w = pattern_word(base_seed, j as u64);
    }
}

/// The running hash over data words that IO checksums use.
#[inline(always)]
pub fn fold(h: u64, w: u64) -> u64 {
    let h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
    h ^ (h >> 29)
}

/// The checksum of one buffer of data read back (a multiple of 4 words): four interleaved
/// [`fold`] lanes, seeded `h ^ 0..3`, folded into `h` in lane order at the end. Four
/// independent chains run about four times faster than one, so checking the data costs
/// little next to the IO it verifies. The words are read volatile: a hostcall wrote them
/// behind the compiler's back.
#[inline(always)]
pub fn fold_chunk(h: u64, words: &[u64]) -> u64 {
    let mut l = [h, h ^ 1, h ^ 2, h ^ 3];
    for q in words.chunks_exact(4) {
        for (lane, w) in l.iter_mut().zip(q) {
            // SAFETY: `w` is a valid reference into the buffer; the volatile read folds what
            // the hostcall left in memory.
            *lane = fold(*lane, unsafe { core::ptr::read_volatile(w) });
        }
    }
    l.iter().fold(h, |h, &x| fold(h, x))
}

/// Times back-to-back repetitions with one chain of TSC reads: each lap ends at the read
/// that starts the next, so the laps add up exactly to the whole timed region
/// (docs/METHODOLOGY.md, "Repetitions and the per-sample value").
///
/// On several threads ([`Laps::start_synced`]) every lap starts at a barrier all threads
/// meet at, and each thread stamps its TSC when it leaves the barrier before the lap and
/// when it leaves the barrier after it (all threads done): the joint repetition on this
/// thread's own clock. The harness takes the longest over the threads, the one from the
/// first thread's start to the last one's end, without comparing TSCs of different CPUs.
pub struct Laps {
    start: u64,
    last: u64,
    /// Threads that meet at the barrier before each lap (≤ 1: none).
    threads: u64,
    sync: u64,
    stamps: *mut u64,
    stamp_capacity: u64,
    stamp_count: *mut u64,
}

impl Laps {
    /// Start the chain: the first lap is measured from here.
    #[inline(always)]
    pub fn start() -> Laps {
        let t = crate::rt::rdtsc();
        Laps {
            start: t,
            last: t,
            threads: 1,
            sync: 0,
            stamps: core::ptr::null_mut(),
            stamp_capacity: 0,
            stamp_count: core::ptr::null_mut(),
        }
    }

    /// Start the chain of a kernel that runs on `cb.threads` threads: meet the others at the
    /// barrier first. On one thread, the same as [`Laps::start`].
    #[inline(always)]
    pub fn start_synced(cb: &mut ControlBlock) -> Laps {
        let threads = cb.threads as u64;
        if threads > 1 {
            crate::rt::barrier(cb.sync_addr, threads);
        }
        if threads > 1 && cb.flags & FLAG_TEST_FAULT_LAST_THREAD != 0 && cb.thread + 1 == cb.threads
        {
            // SAFETY: not safe at all, on purpose (tests only): address 8 is never mapped.
            unsafe { core::ptr::write_volatile(8 as *mut u64, 1) };
        }
        let mut laps = Laps::start();
        if threads > 1 {
            laps.threads = threads;
            laps.sync = cb.sync_addr;
            laps.stamps = cb.stamp_addr as *mut u64;
            laps.stamp_capacity = cb.stamp_capacity;
            laps.stamp_count = core::ptr::addr_of_mut!(cb.stamps);
        }
        laps
    }

    /// End the current lap (and start the next): its cycles.
    #[inline(always)]
    pub fn lap(&mut self) -> u64 {
        let t = crate::rt::rdtsc();
        let d = t - self.last;
        if self.threads > 1 {
            // Wait for every thread to end its lap; the read after the barrier ends the joint
            // repetition as this thread sees it, on its own clock, and starts the next.
            crate::rt::barrier(self.sync, self.threads);
            let next = crate::rt::rdtsc();
            // SAFETY: `stamp_count` points into this thread's control block and `stamps` to
            // `stamp_capacity` u64s the harness maps for this thread alone (checked below).
            unsafe {
                let k = *self.stamp_count;
                if k + 2 <= self.stamp_capacity {
                    *self.stamps.add(k as usize) = self.last;
                    *self.stamps.add(k as usize + 1) = next;
                    *self.stamp_count = k + 2;
                }
            }
            self.last = next;
        } else {
            self.last = t;
        }
        d
    }

    /// Cycles from `start` to the end of the last lap: the sum of the laps.
    pub fn total(&self) -> u64 {
        self.last - self.start
    }
}

/// Record a failed hostcall: its status goes to `results[15]` for the harness to decode.
pub fn hostcall_failed(cb: &mut ControlBlock, status: i64) -> u32 {
    cb.results[RESULT_COUNT - 1] = status as u64;
    STATUS_HOSTCALL_FAILED
}

/// Issue a disk transfer hostcall and insist that all `len` bytes moved; a short transfer
/// is reported as `-HC_ERR_IO`.
pub fn disk_io(cb: &mut ControlBlock, op: u16, offset: u64, buf: u64, len: u64) -> Result<(), i64> {
    let st = crate::rt::hostcall(cb, op, [offset, buf, len, 0]);
    if st < 0 {
        Err(st)
    } else if st as u64 != len {
        Err(-HC_ERR_IO)
    } else {
        Ok(())
    }
}

/// When the fsync that ends a write phase ran: its cycles, and the TSC at its end (the end
/// of the write phase).
pub struct Flushed {
    pub flush: u64,
    pub flush_end: u64,
}

/// End a write phase: fsync the disk (timed), then drop the file `[offset, offset + len)`
/// from the host page cache (untimed) so the read phase reads from the device.
pub fn flush_then_drop_cache(cb: &mut ControlBlock, offset: u64, len: u64) -> Result<Flushed, i64> {
    let t0 = crate::rt::rdtsc();
    let st = crate::rt::hostcall(cb, HC_DISK_FLUSH, [0; 4]);
    let flush_end = crate::rt::rdtsc();
    if st < 0 {
        return Err(st);
    }
    let st = crate::rt::hostcall(cb, HC_DISK_DROP_CACHE, [offset, len, 0, 0]);
    if st < 0 {
        return Err(st);
    }
    Ok(Flushed {
        flush: flush_end - t0,
        flush_end,
    })
}

/// The working memory viewed as `n` u64 words starting at byte offset `off`, if it fits.
pub fn work_words(cb: &mut ControlBlock, off: u64, n: u64) -> Option<&'static mut [u64]> {
    let end = n.checked_mul(8)?.checked_add(off)?;
    if end > cb.work_size || off % 8 != 0 {
        return None;
    }
    let work = crate::rt::work(cb);
    // SAFETY: [off, off + 8n) lies inside the work memory (checked above), which is 8-aligned
    // (WORK_BASE) and mapped read-write for this invocation.
    Some(unsafe {
        core::slice::from_raw_parts_mut(work.as_mut_ptr().add(off as usize) as *mut u64, n as usize)
    })
}

/// The working memory viewed as `n` f64 values starting at byte offset `off`, if it fits.
pub fn work_f64(cb: &mut ControlBlock, off: u64, n: u64) -> Option<&'static mut [f64]> {
    let w = work_words(cb, off, n)?;
    // SAFETY: same memory, same length; f64 and u64 have the same size and alignment, and
    // every bit pattern is a valid f64.
    Some(unsafe { core::slice::from_raw_parts_mut(w.as_mut_ptr() as *mut f64, w.len()) })
}
