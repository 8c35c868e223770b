//! The runner process shared by the native and container environments: it maps the image,
//! the control page, the record buffer and the working memory at the fixed addresses of
//! `isobench-abi`, then runs one invocation per command from the parent. The parent-side
//! loop around it (launch, invoke, stop, start-up measurement) is in `runner.rs`.
//!
//! The child side ([`ChildBody`]: `child_main`, `child_start_probe`) runs right after `fork`
//! in a process that may have had other threads, so it only makes raw system calls: no
//! allocation, no locks, errors reported as static strings over the pipe.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use isobench_abi::*;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::{affinity, interference, status_meaning, EnvError, Invocation, RawRun};
use crate::image;

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

/// What the child needs to set itself up. Plain data, prepared before `fork`.
pub struct ChildConfig<'a> {
    pub control_fd: RawFd,
    pub records_fd: RawFd,
    pub work_size: u64,
    /// The scratch disk file, opened (created) by the child after any `pivot_root`.
    pub disk_path: Option<&'a CStr>,
    /// Size the disk file is set to (as the vm's raw disk is), so every environment starts
    /// from the same file.
    pub disk_size: u64,
    /// `madvise` the working memory with MADV_HUGEPAGE (true) or MADV_NOHUGEPAGE (false).
    pub thp: bool,
    /// The CPU the runner pins itself to before anything else (`InstanceSpec::cpu`).
    pub cpu: Option<usize>,
    pub cmd_r: RawFd,
    pub done_w: RawFd,
}

/// Child side: report a setup error to the parent (answer `E` plus the message on the done
/// pipe) and exit. Raw system calls only, safe after `fork`.
pub fn child_fail(done_w: RawFd, msg: &str) -> ! {
    let _ = raw_write(done_w, &[ANS_ERROR]);
    let _ = raw_write(done_w, msg.as_bytes());
    // SAFETY: _exit is async-signal-safe and ends only this child.
    unsafe { libc::_exit(101) }
}

/// `write(2)` without allocation (safe after `fork`).
pub fn raw_write(fd: RawFd, buf: &[u8]) -> isize {
    // SAFETY: buf is a valid slice for its length; fd is owned by this process.
    unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) }
}

/// Read one byte, retrying on EINTR (safe after `fork`); `None` on EOF or error.
pub fn raw_read_byte(fd: RawFd) -> Option<u8> {
    let mut b = 0u8;
    loop {
        // SAFETY: reads one byte into a local.
        let n = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
        if n == 1 {
            return Some(b);
        }
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        return None;
    }
}

/// Map `len` bytes at the fixed `addr`; anonymous private when `fd` is None.
fn map_fixed(addr: u64, len: usize, prot: i32, fd: Option<RawFd>) -> bool {
    let flags = libc::MAP_FIXED_NOREPLACE
        | match fd {
            Some(_) => libc::MAP_SHARED,
            None => libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        };
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; the kernel checks fd.
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            prot,
            flags,
            fd.unwrap_or(-1),
            0,
        )
    };
    p as u64 == addr
}

/// Map and load the image at IMAGE_BASE and the control pages at CONTROL_ADDR.
fn child_map_image_and_control(control_fd: RawFd, done_w: RawFd) {
    let image_len = (image::IMAGE_MEM_SIZE as usize).next_multiple_of(4096);
    if !map_fixed(
        IMAGE_BASE,
        image_len,
        libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
        None,
    ) {
        child_fail(
            done_w,
            "mmap of the image at IMAGE_BASE failed (address in use?)",
        );
    }
    // SAFETY: the mapping just made is image_len >= IMAGE.len() bytes, writable, ours.
    unsafe {
        std::ptr::copy_nonoverlapping(
            image::IMAGE.as_ptr(),
            IMAGE_BASE as *mut u8,
            image::IMAGE.len(),
        )
    };
    if !map_fixed(
        CONTROL_ADDR,
        CONTROL_MAP_SIZE,
        libc::PROT_READ | libc::PROT_WRITE,
        Some(control_fd),
    ) {
        child_fail(done_w, "mmap of the control page at CONTROL_ADDR failed");
    }
}

fn child_enter_image() {
    // SAFETY: IMAGE_BASE holds the image's entry (build.rs checks the ELF entry is there),
    // mapped executable; CONTROL_ADDR holds a control block the parent prepared, and the
    // work and record regions it describes are mapped.
    unsafe {
        let entry: unsafe extern "sysv64" fn(*mut ControlBlock) =
            std::mem::transmute(IMAGE_BASE as usize);
        entry(CONTROL_ADDR as *mut ControlBlock);
    }
}

/// The runner's main loop, in the child after `fork` (and, for the container, after the
/// namespaces and the root are set up). Never returns.
pub fn child_main(cfg: &ChildConfig) -> ! {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only affects this process: if isobench dies, so do we.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    child_map_image_and_control(cfg.control_fd, cfg.done_w);
    if !map_fixed(
        RECORD_ADDR,
        RECORD_SIZE as usize,
        libc::PROT_READ | libc::PROT_WRITE,
        Some(cfg.records_fd),
    ) {
        child_fail(
            cfg.done_w,
            "mmap of the record buffer at RECORD_ADDR failed",
        );
    }
    if cfg.work_size > 0
        && !map_fixed(
            WORK_BASE,
            cfg.work_size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            None,
        )
    {
        child_fail(
            cfg.done_w,
            "mmap of the working memory at WORK_BASE failed (too large for this machine?)",
        );
    }
    if cfg.work_size > 0 {
        let advice = if cfg.thp {
            libc::MADV_HUGEPAGE
        } else {
            libc::MADV_NOHUGEPAGE
        };
        // SAFETY: advice on the mapping just made; it changes no contents.
        if unsafe {
            libc::madvise(
                WORK_BASE as *mut libc::c_void,
                cfg.work_size as usize,
                advice,
            )
        } != 0
        {
            child_fail(cfg.done_w, "madvise of the working memory failed (is THP disabled in this kernel? use --thp off)");
        }
    }
    let mut disk_fd: i64 = -1;
    if let Some(path) = cfg.disk_path {
        // SAFETY: path is a valid NUL-terminated string.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
                0o600,
            )
        };
        if fd < 0 {
            child_fail(
                cfg.done_w,
                "cannot open the scratch disk file (is the scratch directory writable?)",
            );
        }
        // Only a regular file is sized (a device node, as a test uses, has its own size).
        // SAFETY: `stat` is plain old data, for which all-zero bytes are a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes into the local above; fd is the one just opened.
        let stat_ok = unsafe { libc::fstat(fd, &mut st) } == 0;
        let regular = stat_ok && st.st_mode & libc::S_IFMT == libc::S_IFREG;
        // SAFETY (the block below): ftruncate on the fd just opened, owned by this process.
        if regular && unsafe { libc::ftruncate(fd, cfg.disk_size as libc::off_t) } != 0 {
            child_fail(
                cfg.done_w,
                "cannot size the scratch disk file (is the scratch filesystem full?)",
            );
        }
        disk_fd = fd as i64;
    }
    if raw_write(cfg.done_w, &[ANS_READY]) != 1 {
        // SAFETY: see child_fail.
        unsafe { libc::_exit(102) }
    }
    loop {
        match raw_read_byte(cfg.cmd_r) {
            Some(CMD_RUN) => {
                // SAFETY: the parent wrote a control block and waits for our answer.
                unsafe { (*(CONTROL_ADDR as *mut ControlBlock)).disk_fd = disk_fd };
                child_enter_image();
                if raw_write(cfg.done_w, &[ANS_DONE]) != 1 {
                    // SAFETY: see child_fail.
                    unsafe { libc::_exit(103) }
                }
            }
            // Quit on request or when the parent closes the pipe.
            _ => {
                // SAFETY: see child_fail.
                unsafe { libc::_exit(0) }
            }
        }
    }
}

/// The child side of a start-up probe: map the image and the control page, enter the image
/// with the `WL_START` block the parent prepared, exit. Never returns.
pub fn child_start_probe(control_fd: RawFd, done_w: RawFd) -> ! {
    child_map_image_and_control(control_fd, done_w);
    child_enter_image();
    let _ = raw_write(done_w, &[ANS_DONE]);
    // SAFETY: see child_fail.
    unsafe { libc::_exit(0) }
}

/// What a launched child runs once its environment is set up (natively: at once; in a
/// container: after the namespaces, the cgroup and the root). Prepared before the fork.
pub enum ChildBody<'a> {
    /// The runner loop ([`child_main`]).
    Runner(ChildConfig<'a>),
    /// One start-up probe ([`child_start_probe`]): enter the image with the `WL_START` block
    /// at `control_fd`, answer on `done_w`, exit. Pinned to `cpu` first, like the runner.
    StartProbe {
        control_fd: RawFd,
        done_w: RawFd,
        cpu: Option<usize>,
    },
    /// A test's probe instead of the runner: `inside` writes what it finds to `done_w`, then
    /// the child exits. Raw system calls only, like everything here.
    #[cfg(test)]
    Probe {
        inside: fn(RawFd),
        done_w: RawFd,
        cpu: Option<usize>,
    },
}

/// What the child reports when it cannot pin itself (a static string: the child may not
/// allocate). The parent has already checked that the CPU exists and is online.
const PIN_FAILED: &str = "pinning the runner to its CPU (sched_setaffinity) failed: that CPU is outside the CPUs the runner may use (the container's --cpuset, taskset, or the cgroup cpuset isobench runs in); pick another --cpu";

impl ChildBody<'_> {
    /// The pipe the child answers on; set-up errors go there too ([`child_fail`]).
    pub fn done_w(&self) -> RawFd {
        match self {
            ChildBody::Runner(cfg) => cfg.done_w,
            ChildBody::StartProbe { done_w, .. } => *done_w,
            #[cfg(test)]
            ChildBody::Probe { done_w, .. } => *done_w,
        }
    }

    /// The CPU the child pins itself to before it runs the body.
    pub fn cpu(&self) -> Option<usize> {
        match self {
            ChildBody::Runner(cfg) => cfg.cpu,
            ChildBody::StartProbe { cpu, .. } => *cpu,
            #[cfg(test)]
            ChildBody::Probe { cpu, .. } => *cpu,
        }
    }

    /// Child side: pin to the body's CPU, then run the body. Raw system calls only (safe
    /// after `fork`); never returns. Every body is pinned here, in one place, once the child
    /// is where it will run: in the container that is after it joined its cgroup, because
    /// joining a cpuset cgroup resets a task's affinity to the cgroup's CPUs.
    pub fn run(&self) -> ! {
        if let Some(cpu) = self.cpu() {
            if !affinity::pin_child(cpu) {
                child_fail(self.done_w(), PIN_FAILED);
            }
        }
        match self {
            ChildBody::Runner(cfg) => child_main(cfg),
            ChildBody::StartProbe {
                control_fd, done_w, ..
            } => child_start_probe(*control_fd, *done_w),
            #[cfg(test)]
            ChildBody::Probe { inside, done_w, .. } => {
                inside(*done_w);
                // SAFETY: see child_fail.
                unsafe { libc::_exit(0) }
            }
        }
    }
}

/// Parent-side handle on a launched child (a runner or a probe). Dropping it kills and
/// reaps the child unless it has already been reaped, so no child outlives its handle.
pub struct RunnerHandle {
    /// The process to kill and reap (for a container: the process isobench cloned).
    pub pid: Pid,
    pub cmd_w: OwnedFd,
    pub done_r: OwnedFd,
    pub env: String,
    /// How the child ended, once it has been reaped: its PID must not be signalled or
    /// waited for again (it may belong to another process by then).
    ended: Option<String>,
}

/// Whether `fd` became readable (or hung up) before `end`: `Ok(true)` readable,
/// `Ok(false)` a poll error (treated as the end of the pipe), `Err(())` the deadline passed.
pub(crate) fn wait_readable(fd: &OwnedFd, end: Instant) -> Result<bool, ()> {
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(());
        }
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => return Ok(true),
            Err(_) => return Ok(false),
        }
    }
}

/// Wait up to `timeout` for one byte; `Ok(None)` on EOF, `Err(())` on timeout.
pub(crate) fn wait_byte(fd: &OwnedFd, timeout: Duration) -> Result<Option<u8>, ()> {
    match wait_readable(fd, Instant::now() + timeout)? {
        true => Ok(raw_read_byte(fd.as_raw_fd())),
        false => Ok(None),
    }
}

/// Read the image back from a runner's memory at `IMAGE_BASE` (`/proc/<pid>/mem`).
pub fn read_loaded_image(pid: Pid) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem"))?;
    let mut buf = vec![0u8; image::IMAGE.len()];
    mem.read_exact_at(&mut buf, IMAGE_BASE)?;
    Ok(buf)
}

/// Describe how a child ended, for an error message.
pub fn describe_exit(status: WaitStatus) -> String {
    match status {
        WaitStatus::Signaled(_, Signal::SIGSEGV, _) => {
            "killed by SIGSEGV (the image touched memory it must not: a fault in the workload)"
                .into()
        }
        WaitStatus::Signaled(_, Signal::SIGKILL, _) => {
            "killed by SIGKILL (out of memory, a memory limit, or an external kill)".into()
        }
        WaitStatus::Signaled(_, sig, core) => {
            format!(
                "killed by {sig}{}",
                if core { " (core dumped)" } else { "" }
            )
        }
        WaitStatus::Exited(_, code) => format!("exited with code {code}"),
        other => format!("ended: {other:?}"),
    }
}

impl RunnerHandle {
    pub fn new(pid: Pid, cmd_w: OwnedFd, done_r: OwnedFd, env: &str) -> RunnerHandle {
        RunnerHandle {
            pid,
            cmd_w,
            done_r,
            env: env.to_string(),
            ended: None,
        }
    }

    /// Whether the child has been reaped (after a crash, a deadline, a kill or a quit).
    pub fn has_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// Wait for the runner's "ready" (or its setup error).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), EnvError> {
        match wait_byte(&self.done_r, timeout) {
            Ok(Some(ANS_READY)) => Ok(()),
            Ok(Some(ANS_ERROR)) => {
                let msg = self.read_rest();
                let _ = self.kill_and_reap();
                Err(EnvError::setup(&self.env, "starting the runner", msg))
            }
            Ok(_) => {
                let how = self.kill_and_reap();
                Err(EnvError::setup(
                    &self.env,
                    "starting the runner",
                    format!("the runner {how} before it was ready"),
                ))
            }
            Err(()) => {
                let _ = self.kill_and_reap();
                Err(EnvError::setup(
                    &self.env,
                    "starting the runner",
                    format!("not ready within {timeout:?}"),
                ))
            }
        }
    }

    fn read_rest(&self) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = nix::unistd::read(self.done_r.as_raw_fd(), &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Kill the runner (SIGKILL) and reap it; returns how it ended. Once reaped, only says
    /// how it ended.
    pub fn kill_and_reap(&mut self) -> String {
        if self.ended.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
        self.reap()
    }

    fn reap(&mut self) -> String {
        if let Some(how) = &self.ended {
            return how.clone();
        }
        let how = loop {
            match waitpid(self.pid, None) {
                Err(Errno::EINTR) => continue,
                Ok(st) => break describe_exit(st),
                Err(e) => break format!("could not be reaped ({e})"),
            }
        };
        self.ended = Some(how.clone());
        how
    }

    /// Wait for a start-up probe's answer and reap it; returns how it ended. A set-up error
    /// it reported, or no answer by `deadline`, is an error (the probe killed and reaped).
    pub fn wait_start_probe(&mut self, deadline: Duration) -> Result<String, EnvError> {
        match wait_byte(&self.done_r, deadline) {
            Ok(Some(ANS_ERROR)) => {
                let msg = self.read_rest();
                let _ = self.kill_and_reap();
                Err(EnvError::setup(&self.env, "starting the runner", msg))
            }
            // Done (it exits right after answering), or it ended without an answer: the
            // caller finds out which from the status the image left.
            Ok(_) => Ok(self.reap()),
            Err(()) => {
                let _ = self.kill_and_reap();
                Err(EnvError::Deadline {
                    env: self.env.clone(),
                    workload: "start".into(),
                    deadline,
                })
            }
        }
    }

    /// Ask the runner to quit and reap it (nothing to do once it has been reaped).
    pub fn quit(&mut self) {
        if self.has_ended() {
            return;
        }
        // Any byte but CMD_RUN (or the end of the command pipe) is the quit request.
        let _ = raw_write(self.cmd_w.as_raw_fd(), b"Q");
        match wait_byte(&self.done_r, Duration::from_secs(2)) {
            Ok(None) => {
                let _ = self.reap();
            }
            _ => {
                let _ = self.kill_and_reap();
            }
        }
    }

    /// Run one invocation: write the control block, signal, wait, read the outputs. The
    /// runner's interference is read with `interference` just before the command and just
    /// after the answer, outside `wall_ns`.
    pub fn invoke(
        &mut self,
        mem: &RunnerMemory,
        inv: &Invocation,
        work_size: u64,
        disk_size: u64,
        deadline: Duration,
        interference: &mut interference::Reader,
    ) -> Result<RawRun, EnvError> {
        let mut cb = ControlBlock::new(MODE_SYSCALL, inv.workload);
        cb.params = inv.params;
        cb.flags = inv.flags;
        cb.work_size = work_size;
        cb.disk_size = disk_size;
        mem.write_control(&cb);
        let before = interference.read();
        let t0 = Instant::now();
        if raw_write(self.cmd_w.as_raw_fd(), &[CMD_RUN]) != 1 {
            let how = self.kill_and_reap();
            return Err(EnvError::Crashed {
                env: self.env.clone(),
                workload: inv.name.into(),
                detail: format!("the runner {how}"),
            });
        }
        let answer = wait_byte(&self.done_r, deadline);
        let wall_ns = t0.elapsed().as_nanos() as u64;
        let mut counters = BTreeMap::new();
        match answer {
            Ok(Some(ANS_DONE)) => before.add_delta(&interference.read(), &mut counters),
            Ok(_) => {
                let how = self.reap();
                return Err(EnvError::Crashed {
                    env: self.env.clone(),
                    workload: inv.name.into(),
                    detail: how,
                });
            }
            Err(()) => {
                let _ = self.kill_and_reap();
                return Err(EnvError::Deadline {
                    env: self.env.clone(),
                    workload: inv.name.into(),
                    deadline,
                });
            }
        }
        let out = mem.read_control();
        check_status(&self.env, inv, &out)?;
        Ok(RawRun {
            status: out.status,
            checksum: out.checksum,
            cycles: out.cycles,
            results: out.results,
            records: mem.read_records(out.records),
            hostcalls: out.hostcalls,
            wall_ns,
            counters,
        })
    }
}

impl Drop for RunnerHandle {
    fn drop(&mut self) {
        if !self.has_ended() {
            let _ = self.kill_and_reap();
        }
    }
}

/// Turn a non-OK image status into an error naming the workload.
pub fn check_status(env: &str, inv: &Invocation, out: &ControlBlock) -> Result<(), EnvError> {
    if out.status == STATUS_OK {
        return Ok(());
    }
    let mut meaning = status_meaning(out.status).to_string();
    if out.status == STATUS_HOSTCALL_FAILED {
        let code = out.results[RESULT_COUNT - 1] as i64;
        meaning = if let Some(what) = hostcall_error_meaning(code) {
            format!("a hostcall failed: {what}")
        } else if (-4095..0).contains(&code) {
            let errno = Errno::from_raw(-code as i32);
            let hint = if errno == Errno::ENOSPC {
                ": free space in the scratch directory or point --scratch elsewhere"
            } else {
                ""
            };
            format!("a hostcall failed with {errno} ({}){hint}", errno.desc())
        } else {
            format!("a hostcall failed with status {code}")
        };
    }
    Err(EnvError::Status {
        env: env.into(),
        workload: inv.name.into(),
        status: out.status,
        meaning,
    })
}

/// The meaning of a negated `HC_ERR_*` status (the VMM's validation failures, and short
/// transfers reported by the kernels), which would otherwise be misread as an errno.
pub fn hostcall_error_meaning(code: i64) -> Option<&'static str> {
    Some(match -code {
        HC_ERR_VERSION => "HC_ERR_VERSION (the image and the host disagree on the hostcall format)",
        HC_ERR_OP => "HC_ERR_OP (unknown hostcall operation)",
        HC_ERR_ADDRESS => "HC_ERR_ADDRESS (a buffer outside the guest's memory)",
        HC_ERR_OFFSET => "HC_ERR_OFFSET (a disk offset beyond the scratch disk)",
        HC_ERR_IO => {
            "HC_ERR_IO (a short or failed disk transfer: is the scratch disk full or truncated?)"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
