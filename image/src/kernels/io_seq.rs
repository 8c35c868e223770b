//! `io.seq`: sequential write + fsync, then sequential read, through the disk hostcalls.
//!
//! params: [0] file bytes (multiple of the chunk, ≤ disk_size), [1] chunk bytes (multiple of
//! 4096), [2] seed. Work memory: two chunk buffers (write at 0, read at chunk).
//! Write phase: per chunk, fill the buffer with `pattern_word(seed, word index in file)`
//! (untimed), then `HC_DISK_WRITE` (timed); then `HC_DISK_FLUSH` (timed, part of the write
//! phase). `HC_DISK_DROP_CACHE` (untimed). Read phase: per chunk `HC_DISK_READ` (timed),
//! then fold the words into the checksum (untimed).
//! records: [write cycles × chunks, flush cycles, read cycles × chunks].
//! results: [0] write-phase cycles (writes + flush), [1] read-phase cycles.
//! checksum: fold over every word read back. cycles: both phases.
use super::{disk_io, flush_then_drop_cache, fold, hostcall_failed, pattern_word, work_words};
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
    let (Some(wbuf), Some(rbuf)) = (work_words(cb, 0, words), work_words(cb, chunk, words)) else {
        return STATUS_BAD_PARAMS;
    };
    let (waddr, raddr) = (wbuf.as_ptr() as u64, rbuf.as_ptr() as u64);
    let rec = rt::records(cb);
    let (wrec, rest) = rec.split_at_mut(chunks as usize);
    let (frec, rest) = rest.split_at_mut(1);
    let rrec = &mut rest[..chunks as usize];

    let mut write_cycles = 0u64;
    for (c, slot) in (0..chunks).zip(wrec.iter_mut()) {
        for (i, w) in wbuf.iter_mut().enumerate() {
            *w = pattern_word(seed, c * words + i as u64);
        }
        let t0 = rt::rdtsc();
        let r = disk_io(cb, HC_DISK_WRITE, c * chunk, waddr, chunk);
        let dt = rt::rdtsc() - t0;
        if let Err(st) = r {
            return hostcall_failed(cb, st);
        }
        *slot = dt;
        write_cycles += dt;
    }
    let dt = match flush_then_drop_cache(cb) {
        Ok(dt) => dt,
        Err(st) => return hostcall_failed(cb, st),
    };
    frec[0] = dt;
    write_cycles += dt;

    let mut read_cycles = 0u64;
    let mut h = seed;
    for (c, slot) in (0..chunks).zip(rrec.iter_mut()) {
        let t0 = rt::rdtsc();
        let r = disk_io(cb, HC_DISK_READ, c * chunk, raddr, chunk);
        let dt = rt::rdtsc() - t0;
        if let Err(st) = r {
            return hostcall_failed(cb, st);
        }
        *slot = dt;
        read_cycles += dt;
        // SAFETY: the hostcall wrote the buffer behind the compiler's back; a volatile read
        // per word makes sure we fold what is in memory now.
        h = rbuf
            .iter()
            .fold(h, |h, w| fold(h, unsafe { core::ptr::read_volatile(w) }));
    }
    cb.records = 2 * chunks + 1;
    cb.results[0] = write_cycles;
    cb.results[1] = read_cycles;
    cb.cycles = write_cycles + read_cycles;
    cb.checksum = h;
    STATUS_OK
}
