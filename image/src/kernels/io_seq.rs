//! `io.seq`: sequential write + fsync, then sequential read, through the disk hostcalls.
//!
//! params: [0] file bytes (multiple of the chunk, ≤ disk_size), [1] chunk bytes (multiple of
//! 4096), [2] seed. Work memory: two chunk buffers (write at 0, read at chunk), then the
//! base block of the data (at 2 × chunk). The file holds the IO data of [`fill_blocks`] with
//! both seeds `seed`. `HC_DISK_DROP_CACHE` of the file (untimed, as fio's `invalidate=1`
//! before a job), so every write phase starts with none of it cached.
//! Write phase, timed as one span from before the first fill to the end
//! of the fsync: per chunk, fill the buffer with its blocks, then `HC_DISK_WRITE`; then
//! `HC_DISK_FLUSH`. `HC_DISK_DROP_CACHE` (untimed). Read phase, timed as one span from the
//! first read's start to the last fold's end: per chunk `HC_DISK_READ`, then fold the chunk
//! into the checksum with [`fold_chunk`]. Nothing between two IOs is left out of a phase, so
//! the host's readahead or writeback cannot run in untimed gaps (docs/METHODOLOGY.md, "IO:
//! bytes over the phase's elapsed time").
//! records: [write cycles × chunks, flush cycles, read cycles × chunks] (each IO alone).
//! results: [0] write-phase cycles, [1] read-phase cycles, [2] fill cycles (inside [0]),
//! [3] fold cycles (inside [1]).
//! checksum: [`fold_chunk`] over every chunk read back. cycles: both phases.
use super::{
    disk_base, disk_io, fill_blocks, flush_then_drop_cache, fold_chunk, hostcall_failed,
    work_words, BLOCK_WORDS,
};
use crate::abi::*;
use crate::rt;

pub fn run(cb: &mut ControlBlock) -> u32 {
    let [file, chunk, seed, ..] = cb.params;
    if chunk == 0
        || chunk % DISK_BLOCK != 0
        || file == 0
        || file % chunk != 0
        || file > cb.disk_size
    {
        return STATUS_BAD_PARAMS;
    }
    let chunks = file / chunk;
    if 2 * chunks + 1 > cb.record_capacity {
        return STATUS_BAD_PARAMS;
    }
    let words = chunk / 8;
    let (Some(wbuf), Some(rbuf), Some(base)) = (
        work_words(cb, 0, words),
        work_words(cb, chunk, words),
        work_words(cb, 2 * chunk, BLOCK_WORDS as u64),
    ) else {
        return STATUS_BAD_PARAMS;
    };
    disk_base(base, seed);
    let blocks_per_chunk = chunk / DISK_BLOCK;
    let (waddr, raddr) = (wbuf.as_ptr() as u64, rbuf.as_ptr() as u64);
    let rec = rt::records(cb);
    let (wrec, rest) = rec.split_at_mut(chunks as usize);
    let (frec, rest) = rest.split_at_mut(1);
    let rrec = &mut rest[..chunks as usize];

    let st = rt::hostcall(cb, HC_DISK_DROP_CACHE, [0, file, 0, 0]);
    if st < 0 {
        return hostcall_failed(cb, st);
    }
    let mut fill_cycles = 0u64;
    let write_start = rt::rdtsc();
    for (c, slot) in (0..chunks).zip(wrec.iter_mut()) {
        let f0 = rt::rdtsc();
        fill_blocks(wbuf, base, seed, c * blocks_per_chunk);
        let t0 = rt::rdtsc();
        fill_cycles += t0 - f0;
        let r = disk_io(cb, HC_DISK_WRITE, c * chunk, waddr, chunk);
        *slot = rt::rdtsc() - t0;
        if let Err(st) = r {
            return hostcall_failed(cb, st);
        }
    }
    let dt = match flush_then_drop_cache(cb, 0, file) {
        Ok(dt) => dt,
        Err(st) => return hostcall_failed(cb, st),
    };
    frec[0] = dt.flush;
    let write_cycles = dt.flush_end - write_start;

    let mut fold_cycles = 0u64;
    let mut h = seed;
    let read_start = rt::rdtsc();
    for (c, slot) in (0..chunks).zip(rrec.iter_mut()) {
        let t0 = rt::rdtsc();
        let r = disk_io(cb, HC_DISK_READ, c * chunk, raddr, chunk);
        let t1 = rt::rdtsc();
        *slot = t1 - t0;
        if let Err(st) = r {
            return hostcall_failed(cb, st);
        }
        h = fold_chunk(h, rbuf);
        fold_cycles += rt::rdtsc() - t1;
    }
    let read_cycles = rt::rdtsc() - read_start;
    cb.records = 2 * chunks + 1;
    cb.results[0] = write_cycles;
    cb.results[1] = read_cycles;
    cb.results[2] = fill_cycles;
    cb.results[3] = fold_cycles;
    cb.cycles = write_cycles + read_cycles;
    cb.checksum = h;
    STATUS_OK
}
