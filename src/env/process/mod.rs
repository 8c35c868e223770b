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

/// Size of the shared control mapping: the control block page and the hostcall page.
pub const CONTROL_MAP_SIZE: usize = (HOSTCALL_ADDR - CONTROL_ADDR) as usize + 4096;

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
        // SAFETY: the control mapping is at least one page, page-aligned (so aligned for
        // ControlBlock), and the runner does not touch it while no command is outstanding.
        unsafe { std::ptr::write_volatile(self.control.ptr.as_ptr().cast::<ControlBlock>(), *cb) };
    }

    pub fn read_control(&self) -> ControlBlock {
        // SAFETY: as in `write_control`; the runner has answered, so it is not writing.
        unsafe { std::ptr::read_volatile(self.control.ptr.as_ptr().cast::<ControlBlock>()) }
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

pub use child::*;
pub use handle::*;

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
