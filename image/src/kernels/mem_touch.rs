//! `mem.touch`: first touch of memory, apart from steady state (docs/METHODOLOGY.md, "First touch and steady state").
//!
//! params: [0] bytes (multiple of 4096, ≤ work_size), [1] seed. `HC_DISCARD` gives the
//! region back to the host (untimed), so the next access to each page is a first touch;
//! then, timed: write `pattern_word(seed, page)` into the first word of every 4 KiB page
//! (the first touch, page faults included), then, timed separately: rotate that word left by
//! one in every page (steady state: the pages are mapped now). records: [first-touch cycles,
//! steady cycles]. checksum: fold over the pages' first words (untimed). cycles: first touch.
use super::{fold, hostcall_failed, pattern_word};
use crate::abi::*;
use crate::rt;
use core::ptr::{read_volatile, write_volatile};

const PAGE: u64 = 4096;

pub fn run(cb: &mut ControlBlock) -> u32 {
    let [bytes, seed, ..] = cb.params;
    if bytes == 0 || bytes % PAGE != 0 || bytes > cb.work_size || cb.record_capacity < 2 {
        return STATUS_BAD_PARAMS;
    }
    let base = cb.work_addr;
    let pages = bytes / PAGE;
    let st = rt::hostcall(cb, HC_DISCARD, [base, bytes, 0, 0]);
    if st < 0 {
        return hostcall_failed(cb, st);
    }
    let word = |p: u64| (base + p * PAGE) as *mut u64;
    let t0 = rt::rdtsc();
    for p in 0..pages {
        // SAFETY: page p < pages lies inside the work memory (bytes ≤ work_size), 8-aligned.
        // Volatile so the store is not merged with the second pass's.
        unsafe { write_volatile(word(p), pattern_word(seed, p)) };
    }
    let t1 = rt::rdtsc();
    for p in 0..pages {
        // SAFETY: as above.
        unsafe { write_volatile(word(p), read_volatile(word(p)).rotate_left(1)) };
    }
    let t2 = rt::rdtsc();
    let rec = rt::records(cb);
    rec[0] = t1 - t0;
    rec[1] = t2 - t1;
    cb.records = 2;
    cb.cycles = t1 - t0;
    // SAFETY: as above.
    cb.checksum = (0..pages).fold(0, |h, p| fold(h, unsafe { read_volatile(word(p)) }));
    STATUS_OK
}
