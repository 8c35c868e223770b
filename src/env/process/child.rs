//! The child side of the runner: what it runs right after `fork` (map, pin, serve commands,
//! or a start-up probe), with raw system calls only (see the module above).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::RawFd;

use isobench_abi::*;
use nix::errno::Errno;

use super::super::affinity;
use super::*;
use crate::image;

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
pub(crate) fn child_map_image_and_control(control_fd: RawFd, done_w: RawFd) {
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

pub(crate) fn child_enter_image() {
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
    let disk_fd = child_prepare(cfg);
    if raw_write(cfg.done_w, &[ANS_READY]) != 1 {
        // SAFETY: see child_fail.
        unsafe { libc::_exit(102) }
    }
    loop {
        match raw_read_byte(cfg.cmd_r) {
            Some(CMD_RUN) => {
                // SAFETY: the parent wrote a control block and waits for our answer.
                unsafe { (*(CONTROL_ADDR as *mut ControlBlock)).disk_fd = disk_fd };
                super::workers::run_invocation();
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

/// The runner's set-up: map the image, the control page, the record buffer and the working
/// memory at their fixed addresses, open (and size) the scratch disk. Returns the disk's fd
/// (-1 without a disk). A failure is reported on `cfg.done_w` and ends the process
/// ([`child_fail`]). Shared by the forked runner and the exec'd one of the OCI runtimes.
pub(crate) fn child_prepare(cfg: &ChildConfig) -> i64 {
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
    disk_fd
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
