//! The container's first process after the clone: join the cgroup, enter the namespaces
//! and the root, drop privileges, then run the body. Raw system calls only: it runs in the
//! child of a possibly multi-threaded process.

use std::ffi::CString;
use std::os::fd::RawFd;

use super::rootfs::{self, RootPlan};
use super::security::Security;
use super::{namespaces, GO};
use crate::env::process::{self, ChildBody};
use crate::tsc;

/// Child-side inputs, all prepared before the clone.
pub(super) struct ChildPlan<'a> {
    pub(super) sync_r: RawFd,
    /// The parent's pipe ends, closed in the child.
    pub(super) close: [RawFd; 3],
    /// v1: the cgroup `tasks` files the child writes "0" to, moving itself in.
    pub(super) join: Vec<CString>,
    pub(super) root: RootPlan,
    pub(super) hostname: CString,
    /// Capabilities, no_new_privs and seccomp, applied last.
    pub(super) security: &'a Security,
    /// Step timestamps, in the parent's shared record mapping (inherited by the child).
    pub(super) steps: *mut u64,
    /// What the child runs once its container is set up.
    pub(super) body: &'a ChildBody<'a>,
}

/// Child-side step indices in `ChildPlan::steps`.
pub(super) const STEP_CLONED: usize = 0;
pub(super) const STEP_JOINED: usize = 1;
pub(super) const STEP_NAMESPACES: usize = 2;
pub(super) const STEP_ROOT: usize = 3;
pub(super) const STEP_HOST: usize = 4;
pub(super) const STEP_SECURITY: usize = 5;
pub(super) const STEPS: usize = 6;

fn mark(p: &ChildPlan, i: usize) {
    // SAFETY: steps points at the start of the records mapping (16 MiB), STEPS words fit,
    // and the parent does not read them until the child has answered.
    unsafe { std::ptr::write_volatile(p.steps.add(i), tsc::now()) };
}

/// The child after the clone: PID 1 of the new PID namespace. Raw system calls only.
pub(super) fn child_run(p: &ChildPlan) -> ! {
    mark(p, STEP_CLONED);
    // SAFETY: prctl/close only affect this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        for fd in p.close {
            if fd >= 0 {
                libc::close(fd);
            }
        }
    }
    // Wait until the parent has put us into our cgroup.
    if process::raw_read_byte(p.sync_r) != Some(GO) {
        // SAFETY: _exit ends only this child.
        unsafe { libc::_exit(1) }
    }
    // SAFETY: as above.
    unsafe { libc::close(p.sync_r) };
    let done_w = p.body.done_w();
    for file in &p.join {
        if !write_zero(file) {
            process::child_fail(
                done_w,
                "moving the container's first process into its cgroup (writing 0 to tasks) failed",
            );
        }
    }
    mark(p, STEP_JOINED);
    let setup = namespaces::unshare_cgroup()
        .and_then(|()| rootfs::make_private())
        .map(|()| mark(p, STEP_NAMESPACES))
        .and_then(|()| rootfs::enter_root(&p.root))
        .map(|()| mark(p, STEP_ROOT))
        .and_then(|()| namespaces::set_hostname(&p.hostname))
        .and_then(|()| namespaces::loopback_up());
    if let Err(msg) = setup {
        process::child_fail(done_w, msg);
    }
    mark(p, STEP_HOST);
    if let Err(msg) = p.security.apply() {
        process::child_fail(done_w, msg);
    }
    mark(p, STEP_SECURITY);
    p.body.run()
}

/// Child side: write "0" (the calling thread) to a cgroup file.
pub(super) fn write_zero(file: &CString) -> bool {
    // SAFETY: open/write/close on a NUL-terminated path; no allocation.
    unsafe {
        let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
        libc::close(fd);
        ok
    }
}
