//! The runner's extra threads for an invocation on several threads (`--threads`): thread 0
//! is the runner itself; threads 1.. are started with `clone` for the invocation, each on
//! its own stack, pinned to its CPU, entering the image with its own control block, and
//! joined through their cleared thread ids. Raw system calls only, like the rest of the
//! child side (it runs after `fork`): no allocation, no locks, no thread-local storage (the
//! threads share the runner's, so they call nothing that uses it).
#![allow(unsafe_code)]

use isobench_abi::*;

use super::super::affinity;

/// Stack of each extra thread: the image's kernels need a few KiB.
const STACK_SIZE: usize = 256 << 10;

/// Enter the image with the control block at `cb`.
fn enter_image_at(cb: u64) {
    // SAFETY: IMAGE_BASE holds the image's entry, mapped executable; `cb` is a control block
    // the parent prepared in the control mapping, and the memory it describes is mapped.
    unsafe {
        let entry: unsafe extern "sysv64" fn(*mut ControlBlock) =
            std::mem::transmute(IMAGE_BASE as usize);
        entry(cb as *mut ControlBlock);
    }
}

/// Pin the calling thread to the CPU its block asks for (`host_cpu`, `u64::MAX`: none),
/// then record the CPU it runs on in `host_cpu` (the parent compares the two: a thread
/// that could not be pinned still runs, so that its siblings never wait for it in vain).
fn pin_and_record(cb: u64) {
    let cb = cb as *mut ControlBlock;
    // SAFETY: `cb` is this thread's control block; no other thread touches it meanwhile.
    unsafe {
        let want = (*cb).host_cpu;
        if want != u64::MAX {
            affinity::pin_child(want as usize);
        }
        let mut cpu: u32 = u32::MAX;
        // Raw getcpu: glibc's sched_getcpu reads the calling thread's rseq area through
        // thread-local storage, which the extra threads share with the runner.
        libc::syscall(
            libc::SYS_getcpu,
            &mut cpu as *mut u32,
            std::ptr::null_mut::<u32>(),
            std::ptr::null_mut::<u8>(),
        );
        (*cb).host_cpu = cpu as u64;
    }
}

extern "C" fn thread_main(arg: *mut libc::c_void) -> libc::c_int {
    let cb = arg as u64;
    pin_and_record(cb);
    enter_image_at(cb);
    0
}

/// Run the invocation the parent prepared: on thread 0 alone, or on `threads` threads.
/// Returns once every thread has left the image. Thread 0 (the runner) is already pinned.
pub fn run_invocation() {
    // SAFETY: the parent wrote thread 0's block and waits for our answer.
    let threads = unsafe { (*(CONTROL_ADDR as *const ControlBlock)).threads } as u64;
    if threads <= 1 {
        enter_image_at(CONTROL_ADDR);
        return;
    }
    let threads = threads.min(MAX_THREADS) as usize;
    let mut tids = [0i32; MAX_THREADS as usize];
    let mut stacks = [std::ptr::null_mut::<libc::c_void>(); MAX_THREADS as usize];
    for t in 1..threads {
        // SAFETY: a fresh private anonymous mapping, unmapped below after the thread exited.
        let stack = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STACK_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if stack == libc::MAP_FAILED {
            break; // this thread's `ran` stays 0: the parent reports it
        }
        stacks[t] = stack;
        let flags = libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID;
        let tid_ptr = &mut tids[t] as *mut i32;
        // SAFETY: the thread runs `thread_main` on its own stack (top of the mapping); the
        // kernel sets `tids[t]` before clone returns and clears it (with a futex wake) when
        // the thread exits, and `tids` outlives the thread (we wait for it below).
        let r = unsafe {
            libc::clone(
                thread_main,
                stack.cast::<u8>().add(STACK_SIZE).cast(),
                flags,
                thread_control_addr(t as u64) as *mut libc::c_void,
                tid_ptr,
                std::ptr::null_mut::<libc::c_void>(),
                tid_ptr,
            )
        };
        if r <= 0 {
            tids[t] = 0;
        }
    }
    pin_and_record(CONTROL_ADDR);
    enter_image_at(CONTROL_ADDR);
    for t in 1..threads {
        loop {
            // SAFETY: the kernel clears this word when the thread exits; a volatile read.
            let v = unsafe { std::ptr::read_volatile(&tids[t]) };
            if v == 0 {
                break;
            }
            // SAFETY: FUTEX_WAIT on the word the kernel wakes at the thread's exit; returns
            // at once if it changed meanwhile.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    &tids[t] as *const i32,
                    libc::FUTEX_WAIT,
                    v,
                    std::ptr::null::<libc::timespec>(),
                )
            };
        }
        if !stacks[t].is_null() {
            // SAFETY: the mapping made above; its thread has exited.
            unsafe { libc::munmap(stacks[t], STACK_SIZE) };
        }
    }
}
