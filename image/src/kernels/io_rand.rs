//! `io.rand`: 4 KiB random writes, then 4 KiB random reads, at random block offsets of a
//! file the kernel prepares itself.
//!
//! params: [0] file bytes (multiple of [4]), [1] writes, [2] reads, [3] seed, [4] fill chunk
//! bytes (multiple of 4096, ≥ 8192), [5] where the file starts on the disk (a multiple of
//! 4096; the file ends inside disk_size). Block b is at disk offset [5] + 4096·b; only the
//! file's range is ever dropped from the cache, so other workloads' pages stay as they were. Work memory: one fill chunk, then the
//! base block of the data (at the fill chunk's end). The data is [`fill_blocks`]'s with base
//! seed `seed`; generation 0 of every block has stamp seed `seed`, write k (0-based) writes
//! generation k+1, stamp seed `seed ^ (k+1)·GEN`.
//! Untimed: fill the file with generation 0, flush, drop the cache. Write phase, timed as
//! one span from before the first block's fill to the end of the fsync: write k picks block
//! b = ⌊r·blocks / 2^64⌋ (r from SplitMix64 seeded with `seed ^ OFFSETS`), fills its
//! generation k+1 and writes it; then `HC_DISK_FLUSH`. Drop the cache (untimed). Read phase,
//! timed as one span from the first read's start to the last fold's end: blocks from the
//! same generator, continuing; the data read is folded into the checksum, so it verifies
//! the writes too. Like fio's elapsed time, nothing between two operations is left out
//! (docs/METHODOLOGY.md, "IO: bytes over the phase's elapsed time").
//! records: [write cycles × writes, flush cycles, read cycles × reads] (each IO alone).
//! results: [0] write-phase cycles (fills, writes, flush), [1] read-phase cycles.
use super::{
    disk_base, disk_io, fill_blocks, flush_then_drop_cache, fold, hostcall_failed, splitmix64,
    work_words, BLOCK_WORDS,
};
use crate::abi::*;
use crate::rt;

/// Mixed into the seed for the offset generator and per write generation.
const OFFSETS: u64 = 0x0ff5_e7a1_1234_5678;
const GEN: u64 = 0x5851_f42d_4c95_7f2d;

pub fn run(cb: &mut ControlBlock) -> u32 {
    let [file, writes, reads, seed, fill, at, ..] = cb.params;
    if fill < 2 * DISK_BLOCK
        || fill % DISK_BLOCK != 0
        || file == 0
        || file % fill != 0
        || at % DISK_BLOCK != 0
        || at.checked_add(file).is_none_or(|end| end > cb.disk_size)
    {
        return STATUS_BAD_PARAMS;
    }
    if writes.saturating_add(reads).saturating_add(1) > cb.record_capacity {
        return STATUS_BAD_PARAMS;
    }
    let (Some(buf), Some(base)) = (
        work_words(cb, 0, fill / 8),
        work_words(cb, fill, BLOCK_WORDS as u64),
    ) else {
        return STATUS_BAD_PARAMS;
    };
    disk_base(base, seed);
    let addr = buf.as_ptr() as u64;
    let blocks = file / DISK_BLOCK;

    // Untimed: the file's generation 0, made durable and cold.
    let fill_blocks_n = fill / DISK_BLOCK;
    for c in 0..file / fill {
        fill_blocks(buf, base, seed, c * fill_blocks_n);
        if let Err(st) = disk_io(cb, HC_DISK_WRITE, at + c * fill, addr, fill) {
            return hostcall_failed(cb, st);
        }
    }
    for (op, args) in [
        (HC_DISK_FLUSH, [0; 4]),
        (HC_DISK_DROP_CACHE, [at, file, 0, 0]),
    ] {
        let st = rt::hostcall(cb, op, args);
        if st < 0 {
            return hostcall_failed(cb, st);
        }
    }

    let rec = rt::records(cb);
    let (wrec, rest) = rec.split_at_mut(writes as usize);
    let (frec, rest) = rest.split_at_mut(1);
    let rrec = &mut rest[..reads as usize];
    let (block_buf, _) = buf.split_at_mut(BLOCK_WORDS);
    let mut rng = seed ^ OFFSETS;

    let write_start = rt::rdtsc();
    for (k, slot) in (0..writes).zip(wrec.iter_mut()) {
        let b = ((splitmix64(&mut rng) as u128 * blocks as u128) >> 64) as u64;
        let gen_seed = seed ^ (k + 1).wrapping_mul(GEN);
        fill_blocks(block_buf, base, gen_seed, b);
        let t0 = rt::rdtsc();
        let r = disk_io(cb, HC_DISK_WRITE, at + b * DISK_BLOCK, addr, DISK_BLOCK);
        let dt = rt::rdtsc() - t0;
        if let Err(st) = r {
            return hostcall_failed(cb, st);
        }
        *slot = dt;
    }
    let dt = match flush_then_drop_cache(cb, at, file) {
        Ok(dt) => dt,
        Err(st) => return hostcall_failed(cb, st),
    };
    frec[0] = dt.flush;
    let write_cycles = dt.flush_end - write_start;

    let mut h = seed;
    let read_start = rt::rdtsc();
    for slot in rrec.iter_mut() {
        let b = ((splitmix64(&mut rng) as u128 * blocks as u128) >> 64) as u64;
        let t0 = rt::rdtsc();
        let r = disk_io(cb, HC_DISK_READ, at + b * DISK_BLOCK, addr, DISK_BLOCK);
        let dt = rt::rdtsc() - t0;
        if let Err(st) = r {
            return hostcall_failed(cb, st);
        }
        *slot = dt;
        h = block_buf.iter().fold(fold(h, b), |h, w| {
            // SAFETY: `w` is a valid reference into the buffer; the hostcall filled it behind
            // the compiler's back, so a volatile read folds what is in memory now.
            fold(h, unsafe { core::ptr::read_volatile(w) })
        });
    }
    let read_cycles = rt::rdtsc() - read_start;
    cb.records = writes + 1 + reads;
    cb.results[0] = write_cycles;
    cb.results[1] = read_cycles;
    cb.cycles = write_cycles + read_cycles;
    cb.checksum = h;
    STATUS_OK
}
