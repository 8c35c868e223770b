//! The freestanding workload image: entry point, dispatch to the kernels, and the runtime
//! they share (timer, hostcalls, the libc memory functions the compiler expects).
//!
//! Built by the harness's `build.rs` with `$RUSTC` directly (no cargo, no std, no libc),
//! linked at `IMAGE_BASE` by `link.ld`, flattened and embedded in the `isobench` binary.
//! The same bytes run natively, in the container and in the vm guest at ring 3.
#![no_std]
#![no_main]

#[path = "../../abi/src/lib.rs"]
#[allow(dead_code)]
mod abi;
mod isa;
mod kernels;
mod rt;

use abi::*;

/// The image's only entry point, placed first in `.text` so it sits at `IMAGE_BASE`.
///
/// # Safety
/// `cb` must point to a valid, writable [`ControlBlock`], and the memory it describes
/// (work, records) must be mapped read-write.
#[no_mangle]
#[link_section = ".text.entry"]
pub unsafe extern "sysv64" fn isobench_entry(cb: *mut ControlBlock) {
    // The very first thing: the `start` workload's timestamp.
    let t0 = rt::rdtsc();
    // SAFETY: the caller guarantees `cb` is valid and exclusively ours for this call.
    let cb = unsafe { &mut *cb };
    cb.ran = cb.thread as u64 + 1;
    cb.status = run(cb, t0);
    if cb.mode == MODE_PORTIO {
        rt::done(cb);
    }
}

fn run(cb: &mut ControlBlock, t0: u64) -> u32 {
    if cb.magic != CONTROL_MAGIC {
        return STATUS_BAD_MAGIC;
    }
    if cb.abi_version != ABI_VERSION {
        return STATUS_BAD_VERSION;
    }
    cb.checksum = 0;
    cb.cycles = 0;
    cb.results = [0; RESULT_COUNT];
    cb.records = 0;
    cb.hostcalls = 0;
    cb.stamps = 0;
    let threaded = matches!(cb.workload, WL_CPU_INT | WL_CPU_FP | WL_MEM_STREAM);
    if cb.threads > 1 && (!threaded || cb.thread >= cb.threads) || cb.threads as u64 > MAX_THREADS {
        return STATUS_SINGLE_THREADED;
    }
    let status = match cb.workload {
        WL_START => {
            cb.results[0] = t0;
            cb.checksum = t0;
            STATUS_OK
        }
        WL_CPU_INT => kernels::cpu_int::run(cb),
        WL_CPU_FP => kernels::cpu_fp::run(cb),
        WL_MEM_STREAM => kernels::mem_stream::run(cb),
        WL_MEM_RANDOM => kernels::mem_random::run(cb),
        WL_MEM_LATENCY => kernels::mem_latency::run(cb),
        WL_MEM_TOUCH => kernels::mem_touch::run(cb),
        WL_IO_SEQ => kernels::io_seq::run(cb),
        WL_IO_RAND => kernels::io_rand::run(cb),
        WL_SYS_CALL => kernels::sys_call::run(cb),
        WL_TEST_FAULT => {
            // SAFETY: not safe at all, on purpose: address 8 is never mapped (the low
            // 4 MiB are reserved), so this faults. The harness expects the fault.
            unsafe { core::ptr::write_volatile(8 as *mut u64, 1) };
            STATUS_OK
        }
        WL_TEST_SPIN => loop {
            core::hint::spin_loop();
        },
        WL_TEST_HOSTCALL => {
            let p = cb.params;
            let r = rt::hostcall(cb, p[0] as u16, [p[1], p[2], p[3], p[4]]);
            cb.results[0] = r as u64;
            STATUS_OK
        }
        _ => STATUS_UNKNOWN_WORKLOAD,
    };
    if cb.flags & FLAG_CORRUPT_CHECKSUM != 0 {
        cb.checksum ^= 1;
    }
    status
}

/// The precompiled `core` (built for panic=unwind) references this symbol from the landing
/// pads of its panic/formatting paths, which bounds checks in the kernels pull in. Nothing
/// ever unwinds here (the panic handler faults and never returns), so no landing pad runs and
/// the personality routine is never called; it only has to exist for the link.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // No panics are expected (kernels avoid indexing that can fail); if one happens, fault
    // loudly rather than return garbage: the harness reports the crash with the workload.
    // SAFETY: deliberately faults on the reserved, never-mapped low page.
    unsafe { core::ptr::write_volatile(16 as *mut u64, 0xdead) };
    loop {
        core::hint::spin_loop();
    }
}
