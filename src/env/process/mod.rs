//! The runner process shared by the native and container environments: it maps the image,
//! the control page, the record buffer and the working memory at the fixed addresses of
//! `isobench-abi`, then runs one invocation per command from the parent. The parent-side
//! loop around it (launch, invoke, stop, start-up measurement) is in `runner.rs`.
//!
//! The child side ([`ChildBody`]: `child_main`, `child_start_probe`) runs right after `fork`
//! in a process that may have had other threads, so it only makes raw system calls: no
//! allocation, no locks, errors reported as static strings over the pipe.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use isobench_abi::*;
use nix::errno::Errno;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

/// Size of the shared control mapping: the control and hostcall pages of every thread, and
/// the threads' sync page.
pub const CONTROL_MAP_SIZE: usize = (CONTROL_END - CONTROL_ADDR) as usize;

/// Command bytes on the command pipe, and answers on the done pipe.
pub const CMD_RUN: u8 = b'R';
pub const ANS_READY: u8 = b'r';
pub const ANS_DONE: u8 = b'D';
pub const ANS_ERROR: u8 = b'E';

/// A memfd mapped shared into the parent; the runner maps the same fd at a fixed address.
pub struct SharedRegion {
    fd: OwnedFd,
    ptr: NonNull<u8>,
    len: usize,
}

impl SharedRegion {
    pub fn new(name: &CStr, len: usize) -> Result<SharedRegion, Errno> {
        let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MemFdCreateFlag::empty())?;
        nix::unistd::ftruncate(&fd, len as i64)?;
        // SAFETY: a fresh shared mapping of our own memfd at an address the kernel chooses;
        // it is unmapped in Drop and never handed out beyond this struct's lifetime.
        let ptr = unsafe {
            mmap(
                None,
                NonZeroUsize::new(len).ok_or(Errno::EINVAL)?,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )?
        };
        Ok(SharedRegion {
            fd,
            ptr: ptr.cast(),
            len,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The parent's mapping. A forked child inherits it, shared: the container's set-up
    /// writes its step timestamps there.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly the mapping created in `new`, unmapped only here.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// The memory the parent shares with one runner: control page and record buffer.
pub struct RunnerMemory {
    pub control: SharedRegion,
    pub records: SharedRegion,
}

impl RunnerMemory {
    pub fn new() -> Result<RunnerMemory, Errno> {
        Ok(RunnerMemory {
            control: SharedRegion::new(c"isobench-control", CONTROL_MAP_SIZE)?,
            records: SharedRegion::new(c"isobench-records", RECORD_SIZE as usize)?,
        })
    }

    pub fn write_control(&self, cb: &ControlBlock) {
        self.write_thread_control(0, cb);
    }

    pub fn read_control(&self) -> ControlBlock {
        self.read_thread_control(0)
    }

    /// The host pointer of the control block of thread `t` (< `MAX_THREADS`).
    fn thread_control(&self, t: u32) -> *mut ControlBlock {
        let off = thread_control_addr(t as u64) - CONTROL_ADDR;
        assert!(
            off < SYNC_ADDR - CONTROL_ADDR,
            "thread {t} is beyond MAX_THREADS"
        );
        // SAFETY: `off` lies inside the control mapping (CONTROL_MAP_SIZE covers every
        // thread's pages), page-aligned.
        unsafe { self.control.ptr.as_ptr().add(off as usize).cast() }
    }

    /// Write thread `t`'s control block, and with thread 0's, zero the threads' barrier.
    pub fn write_thread_control(&self, t: u32, cb: &ControlBlock) {
        // SAFETY: page-aligned (so aligned for ControlBlock) inside the mapping, and the
        // runner does not touch it while no command is outstanding.
        unsafe { std::ptr::write_volatile(self.thread_control(t), *cb) };
        if t == 0 {
            let sync = (SYNC_ADDR - CONTROL_ADDR) as usize;
            // SAFETY: the sync page is the mapping's last page; the runner is idle.
            unsafe {
                std::ptr::write_volatile(
                    self.control.ptr.as_ptr().add(sync).cast::<SyncBlock>(),
                    SyncBlock::default(),
                )
            };
        }
    }

    pub fn read_thread_control(&self, t: u32) -> ControlBlock {
        // SAFETY: as in `write_thread_control`; the runner has answered, so it is not writing.
        unsafe { std::ptr::read_volatile(self.thread_control(t)) }
    }

    /// Copy `n` u64s out from byte offset `off` of the record buffer (clamped to it).
    pub fn read_records_at(&self, off: u64, n: u64) -> Vec<u64> {
        let off = off.min(RECORD_SIZE);
        let n = n.min((RECORD_SIZE - off) / 8) as usize;
        // SAFETY: [off, off + 8n) lies inside the records mapping (clamped above), which is
        // page-aligned, and the runner is idle while we read.
        let words = unsafe {
            std::slice::from_raw_parts(self.records.ptr.as_ptr().add(off as usize).cast::<u64>(), n)
        };
        words.to_vec()
    }

    /// Copy the first `n` records out (n is clamped to the buffer's capacity).
    pub fn read_records(&self, n: u64) -> Vec<u64> {
        let n = n.min(RECORD_CAPACITY) as usize;
        // SAFETY: the records mapping holds RECORD_CAPACITY u64s, page-aligned, and the runner
        // is idle while we read.
        let words =
            unsafe { std::slice::from_raw_parts(self.records.ptr.as_ptr().cast::<u64>(), n) };
        words.to_vec()
    }
}

mod child;
mod handle;
mod workers;

pub use child::*;
pub use handle::*;
pub(crate) use workers::run_invocation;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{EnvError, Invocation};

    fn failed_with(code: i64) -> String {
        let mut cb = ControlBlock::new(MODE_SYSCALL, WL_IO_SEQ);
        cb.status = STATUS_HOSTCALL_FAILED;
        cb.results[RESULT_COUNT - 1] = code as u64;
        let inv = Invocation {
            name: "io.seq",
            workload: WL_IO_SEQ,
            params: [0; PARAM_COUNT],
            flags: 0,
        };
        match check_status("native", &inv, &cb) {
            Err(EnvError::Status { meaning, .. }) => meaning,
            other => panic!("expected a status error, got {other:?}"),
        }
    }

    #[test]
    fn hostcall_failures_decode_errno_and_hc_err() {
        assert!(failed_with(-28).contains("ENOSPC"));
        assert!(failed_with(-HC_ERR_IO).contains("HC_ERR_IO"));
        assert!(failed_with(-HC_ERR_ADDRESS).contains("HC_ERR_ADDRESS"));
        assert!(failed_with(-99_999).contains("status -99999"));
    }
}
