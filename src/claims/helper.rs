//! A forked helper process for the claims' experiments: it runs a short function in a
//! single-threaded child (so it may `setns` into a mount namespace, which a multi-threaded
//! process may not) and hands its output back through a pipe, with a deadline.
//!
//! The child of a possibly multi-threaded process may only make async-signal-safe calls:
//! the functions run here use raw system calls on data prepared before the fork, and never
//! allocate.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{pipe2, Pid};

/// What a helper returned: its exit code and everything it wrote.
pub struct HelperOutput {
    pub exit_code: i32,
    pub output: Vec<u8>,
}

/// Fork, run `body(write_fd)` in the child (its return value is the exit code), and collect
/// the child's output until it exits or `deadline` passes (then it is killed: an error).
///
/// `body` must keep to raw system calls (see the module documentation).
pub fn run(
    what: &str,
    deadline: Duration,
    body: impl FnOnce(RawFd) -> i32,
) -> Result<HelperOutput> {
    let (r, w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .with_context(|| format!("creating a pipe for the {what} helper (too many open files?)"))?;
    // SAFETY: the child runs only `body`, which keeps to raw system calls on data prepared
    // before this fork (the contract of this function), then `_exit`s without unwinding.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        bail!(
            "fork for the {what} helper failed: {} (too many processes?)",
            std::io::Error::last_os_error()
        );
    }
    if pid == 0 {
        let code = body(w.as_raw_fd());
        // SAFETY: _exit ends only this child, without running the parent's destructors.
        unsafe { libc::_exit(code) }
    }
    drop(w);
    let child = Pid::from_raw(pid);
    let end = Instant::now() + deadline;
    let mut output = Vec::new();
    let mut buf = [0u8; 4096];
    let mut timed_out = false;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        let ms = u16::try_from(left.as_millis().min(10_000)).unwrap_or(10_000);
        let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                let _ = kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                bail!("waiting for the {what} helper: poll failed: {e}");
            }
        }
        match nix::unistd::read(r.as_raw_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => output.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    if timed_out {
        let _ = kill(child, Signal::SIGKILL);
    }
    let status = loop {
        match waitpid(child, Some(WaitPidFlag::empty())) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    if timed_out {
        bail!("the {what} helper did not finish within {deadline:?} and was killed");
    }
    match status {
        Ok(WaitStatus::Exited(_, code)) => Ok(HelperOutput {
            exit_code: code,
            output,
        }),
        Ok(other) => bail!("the {what} helper ended abnormally: {other:?}"),
        Err(e) => bail!("waiting for the {what} helper: {e}"),
    }
}

/// Write all of `b` to `fd` (raw `write`; child side).
pub fn put(fd: RawFd, b: &[u8]) {
    let mut off = 0;
    while off < b.len() {
        // SAFETY: the slice is valid for its length.
        let n = unsafe { libc::write(fd, b[off..].as_ptr().cast(), b.len() - off) };
        if n <= 0 {
            return;
        }
        off += n as usize;
    }
}

/// Read a small file into `buf` (raw; child side). `None` when it cannot be opened.
pub fn read_file<'a>(path: &CStr, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    // SAFETY: open/read/close on a NUL-terminated path into the caller's buffer.
    unsafe {
        let f = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if f < 0 {
            return None;
        }
        let n = libc::read(f, buf.as_mut_ptr().cast(), buf.len());
        libc::close(f);
        (n >= 0).then(|| &buf[..n as usize])
    }
}

/// Create (truncate) a file and write `text` to it (raw; child side).
pub fn write_file(path: &CStr, text: &[u8]) -> bool {
    // SAFETY: open/write/close on a NUL-terminated path.
    unsafe {
        let f = libc::open(
            path.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        );
        if f < 0 {
            return false;
        }
        let n = libc::write(f, text.as_ptr().cast(), text.len());
        libc::close(f);
        n == text.len() as isize
    }
}

/// `setns(fd, nstype)` (raw; child side).
pub fn setns(fd: RawFd, nstype: libc::c_int) -> bool {
    // SAFETY: setns only changes this (single-threaded) process's namespaces.
    unsafe { libc::setns(fd, nstype) == 0 }
}

/// The node name of the current UTS namespace, written to `fd` (raw; child side).
pub fn put_hostname(fd: RawFd) {
    // SAFETY: uname fills a zeroed utsname on the stack; nodename is NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) == 0 {
            put(fd, CStr::from_ptr(u.nodename.as_ptr()).to_bytes());
        }
    }
}
