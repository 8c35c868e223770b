//! The image's runtime: the timer, the two hostcall paths, and the memory functions that
//! the compiler emits calls to on the gnu target.

use crate::abi::*;
use core::arch::asm;

/// Serialised TSC read: `lfence` keeps earlier instructions from drifting past it.
#[inline(always)]
pub fn rdtsc() -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: lfence and rdtsc have no memory effects; rdtsc is allowed at CPL 3 (CR4.TSD
    // is clear natively and the VMM leaves it clear).
    unsafe {
        asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack));
    }
    ((hi as u64) << 32) | lo as u64
}

/// Linux x86-64 syscall numbers used by the syscall path.
mod nr {
    pub const PREAD64: u64 = 17;
    pub const PWRITE64: u64 = 18;
    pub const MADVISE: u64 = 28;
    pub const FSYNC: u64 = 74;
    pub const GETPPID: u64 = 110;
    pub const FADVISE64: u64 = 221;
}
const MADV_DONTNEED: u64 = 4;
const POSIX_FADV_DONTNEED: u64 = 4;

#[inline(always)]
fn syscall4(n: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    let ret: i64;
    // SAFETY: a raw Linux syscall; the kernel validates every argument. rcx and r11 are
    // clobbered by the `syscall` instruction itself.
    unsafe {
        asm!("syscall", inlateout("rax") n as i64 => ret, in("rdi") a1, in("rsi") a2,
             in("rdx") a3, in("r10") a4, lateout("rcx") _, lateout("r11") _,
             options(nostack));
    }
    ret
}

/// Issue one hostcall and return its status (`>= 0` success, `< 0` error).
///
/// The request is always written one page above the control block first (`HOSTCALL_ADDR`
/// for thread 0), in both modes, so the format is
/// exercised the same way everywhere; the syscall path then translates it.
#[inline(never)]
pub fn hostcall(cb: &mut ControlBlock, op: u16, args: [u64; 4]) -> i64 {
    cb.hostcalls += 1;
    let req = request_addr(cb) as *mut HostcallRequest;
    // SAFETY: the page above each control block is one the harness maps read-write in every
    // environment (`HOSTCALL_OFFSET`).
    unsafe {
        core::ptr::write_volatile(
            req,
            HostcallRequest {
                version: HOSTCALL_VERSION,
                op,
                reserved: 0,
                args,
                status: -1,
            },
        );
    }
    if cb.mode == MODE_PORTIO {
        // SAFETY: IOPL is 3 in vm mode, so `out` from ring 3 exits to the VMM, which writes
        // `status` into the request before resuming us.
        unsafe {
            asm!("out dx, eax", in("dx") HOSTCALL_PORT, in("eax") req as u64 as u32,
                 options(nostack, preserves_flags));
            return core::ptr::read_volatile(core::ptr::addr_of!((*req).status));
        }
    }
    let fd = cb.disk_fd as u64;
    let status = match op {
        HC_NULL => {
            let r = syscall4(nr::GETPPID, 0, 0, 0, 0);
            if r < 0 {
                r
            } else {
                0
            }
        }
        HC_DISK_READ => syscall4(nr::PREAD64, fd, args[1], args[2], args[0]),
        HC_DISK_WRITE => syscall4(nr::PWRITE64, fd, args[1], args[2], args[0]),
        HC_DISK_FLUSH => syscall4(nr::FSYNC, fd, 0, 0, 0),
        HC_DISK_DROP_CACHE => syscall4(nr::FADVISE64, fd, args[0], args[1], POSIX_FADV_DONTNEED),
        HC_DISCARD => syscall4(nr::MADVISE, args[0], args[1], MADV_DONTNEED, 0),
        HC_DONE => 0,
        _ => -(HC_ERR_OP),
    };
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!((*req).status), status) };
    status
}

/// vm mode: tell the VMM this invocation is finished. Never returns: the VMM does not
/// resume the vCPU after `HC_DONE` (it re-enters at the entry point for the next run).
pub fn done(cb: &ControlBlock) -> ! {
    let req = request_addr(cb) as *mut HostcallRequest;
    // SAFETY: see `hostcall`.
    unsafe {
        core::ptr::write_volatile(
            req,
            HostcallRequest {
                version: HOSTCALL_VERSION,
                op: HC_DONE,
                reserved: 0,
                args: [0; 4],
                status: -1,
            },
        );
        asm!("out dx, eax", in("dx") HOSTCALL_PORT, in("eax") req as u64 as u32,
             options(nostack, preserves_flags));
    }
    // A VMM that resumed us anyway gets a runaway loop it can see in its deadline.
    loop {
        core::hint::spin_loop();
    }
}

/// Where this control block's hostcall request goes: the page above it.
fn request_addr(cb: &ControlBlock) -> u64 {
    cb as *const ControlBlock as u64 + HOSTCALL_OFFSET
}

/// Wait until all `n` threads of the invocation have arrived at the barrier in `sync`
/// (a generation count: the last to arrive resets the count, then starts the next
/// generation, which releases the others spinning on it). An `abort` from the VMM (another
/// vCPU failed) ends every wait at once.
pub fn barrier(sync: u64, n: u64) {
    use core::sync::atomic::{AtomicU64, Ordering};
    let s = sync as *mut SyncBlock;
    // SAFETY: the harness maps the sync page read-write for every thread of the invocation
    // and zeroes it before; the two words are only ever accessed atomically meanwhile.
    let (arrived, generation, abort) = unsafe {
        (
            AtomicU64::from_ptr(core::ptr::addr_of_mut!((*s).arrived)),
            AtomicU64::from_ptr(core::ptr::addr_of_mut!((*s).generation)),
            AtomicU64::from_ptr(core::ptr::addr_of_mut!((*s).abort)),
        )
    };
    let g = generation.load(Ordering::Acquire);
    if arrived.fetch_add(1, Ordering::AcqRel) + 1 == n {
        arrived.store(0, Ordering::Relaxed);
        generation.store(g + 1, Ordering::Release);
    } else {
        while generation.load(Ordering::Acquire) == g && abort.load(Ordering::Relaxed) == 0 {
            core::hint::spin_loop();
        }
    }
}

/// Read the record buffer as a slice.
pub fn records(cb: &mut ControlBlock) -> &'static mut [u64] {
    // SAFETY: the harness maps `record_capacity` u64s at `record_addr`, read-write, for the
    // duration of the invocation, and nothing else aliases it meanwhile.
    unsafe {
        core::slice::from_raw_parts_mut(cb.record_addr as *mut u64, cb.record_capacity as usize)
    }
}

/// The working memory as a byte slice.
pub fn work(cb: &mut ControlBlock) -> &'static mut [u8] {
    // SAFETY: as for `records`, for `work_size` bytes at `work_addr`.
    unsafe { core::slice::from_raw_parts_mut(cb.work_addr as *mut u8, cb.work_size as usize) }
}

// The memory functions. `rep movsb`/`rep stosb` so LLVM cannot lower the bodies back into
// calls to themselves.

/// # Safety
/// As C `memcpy`.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees C memcpy's contract.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// As C `memmove`.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize) + n {
        // SAFETY: forward copy is correct when dst is below src or the ranges are disjoint.
        return unsafe { memcpy(dst, src, n) };
    }
    // Overlap with dst above src: copy backwards.
    // SAFETY: the caller guarantees both ranges are valid; std (DF=1) walks down.
    unsafe {
        asm!("std", "rep movsb", "cld", inout("rcx") n => _,
             inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
             options(nostack));
    }
    dst
}

/// # Safety
/// As C `memset`.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees C memset's contract.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c as u8,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// As C `memcmp`.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and the caller guarantees n readable bytes at both.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// # Safety
/// As C `bcmp`.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}
