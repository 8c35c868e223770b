//! Test support (unit tests only): [`run_probe`] runs a function in a fresh container
//! instead of the runner, and [`report`] is such a function: facts gathered from inside with
//! raw system calls only (it runs in the child of a possibly multi-threaded process), written
//! as `key=value` lines to a pipe. Nothing here is needed to run a container.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::process::{self, raw_write, ChildBody, RunnerMemory};
use super::runner::{Launch, RunnerPipes};
use super::{Container, EnvError, InstanceSpec, Rootfs};

/// What a probe's `outside` sees after its inside function ran (the container's process has
/// exited; its directories and cgroup are still there).
pub struct ProbeView<'a> {
    pub rootfs: &'a Rootfs,
    pub cgroup_dirs: Vec<PathBuf>,
}

/// Run `inside` in a fresh container of `c`'s options instead of the runner: it gets the
/// pipe to write facts to, in a child of a possibly multi-threaded process (raw system calls
/// only). After it exits, `outside` sees the container's directories, then everything is
/// removed; the inside function's output is returned.
pub fn run_probe(
    c: &Container,
    spec: &InstanceSpec,
    inside: fn(RawFd),
    outside: &mut dyn FnMut(&ProbeView),
) -> Result<Vec<u8>, EnvError> {
    let mem =
        RunnerMemory::new().map_err(|e| c.err("creating the shared control memory (memfd)", e))?;
    let pipes = RunnerPipes::new(&c.label)?;
    let body = ChildBody::Probe {
        inside,
        done_w: pipes.done_w(),
        cpu: spec.cpu,
    };
    let mut child = c.launcher().launch(spec, &mem, &body, pipes)?;
    let output = read_until_eof(&child.handle.done_r, spec.deadline);
    let how = child.handle.kill_and_reap();
    let output = output.map_err(|()| {
        c.err(
            "running a probe",
            format!("no end within {:?}", spec.deadline),
        )
    })?;
    if output.first() == Some(&process::ANS_ERROR) {
        return Err(c.err(
            "setting up the container",
            String::from_utf8_lossy(&output[1..]).into_owned(),
        ));
    }
    let res = &mut child.resources;
    if let Some(rootfs) = res.rootfs.as_ref() {
        outside(&ProbeView {
            rootfs,
            cgroup_dirs: res.cgroup.as_ref().map(|c| c.dirs()).unwrap_or_default(),
        });
    }
    res.teardown()
        .map_err(|e| c.err(&format!("removing the container (its process {how})"), e))?;
    Ok(output)
}

/// Read a pipe to its end (all writers closed), up to `timeout`.
fn read_until_eof(fd: &OwnedFd, timeout: Duration) -> Result<Vec<u8>, ()> {
    let end = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while process::wait_readable(fd, end)? {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    Ok(out)
}

/// The file [`report`] writes inside the container (lands in the upper dir on the host).
pub const WRITTEN_FILE: &CStr = c"/scratch/written-inside";
/// What it writes there.
pub const WRITTEN_TEXT: &[u8] = b"written inside the container\n";

fn put(fd: RawFd, b: &[u8]) {
    let mut off = 0;
    while off < b.len() {
        let n = raw_write(fd, &b[off..]);
        if n <= 0 {
            return;
        }
        off += n as usize;
    }
}

fn put_u64(fd: RawFd, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    put(fd, &buf[i..]);
}

/// Copy a file's contents to the pipe.
fn copy_file(fd: RawFd, path: &CStr) {
    // SAFETY: open/read/close on a NUL-terminated path into a stack buffer.
    unsafe {
        let f = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if f < 0 {
            put(fd, b"<cannot open>\n");
            return;
        }
        let mut buf = [0u8; 4096];
        loop {
            let n = libc::read(f, buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            put(fd, &buf[..n as usize]);
        }
        libc::close(f);
    }
}

/// Write the names in a directory, space-separated (getdents64).
fn list_dir(fd: RawFd, path: &CStr) {
    // SAFETY: getdents64 fills the stack buffer with linux_dirent64 records; each record's
    // name starts at offset 19 and is NUL-terminated within its reclen.
    unsafe {
        let d = libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if d < 0 {
            put(fd, b"<cannot open>");
            return;
        }
        let mut buf = [0u8; 8192];
        loop {
            let n = libc::syscall(libc::SYS_getdents64, d, buf.as_mut_ptr(), buf.len());
            if n <= 0 {
                break;
            }
            let mut off = 0usize;
            while off < n as usize {
                let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
                let name = &buf[off + 19..off + reclen];
                let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                let name = &name[..len];
                if name != b"." && name != b".." {
                    put(fd, name);
                    put(fd, b" ");
                }
                off += reclen;
            }
        }
        libc::close(d);
    }
}

/// The probe: pid, hostname, what `/` and `/proc` hold, whether lo is up, a file written
/// inside, and the mount table (last, to the end of the output).
pub fn report(fd: RawFd) {
    put(fd, b"pid=");
    // SAFETY: getpid has no preconditions.
    put_u64(fd, unsafe { libc::getpid() } as u64);
    put(fd, b"\nhostname=");
    // SAFETY: uname fills a zeroed utsname on the stack; nodename is NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) == 0 {
            let name = CStr::from_ptr(u.nodename.as_ptr());
            put(fd, name.to_bytes());
        }
    }
    put(fd, b"\nroot=");
    list_dir(fd, c"/");
    put(fd, b"\nproc_pids=");
    // Only numeric entries matter; the reader filters.
    list_dir(fd, c"/proc");
    put(fd, b"\nlo_up=");
    let up = super::namespaces::loopback_flags().is_some_and(|f| f & libc::IFF_UP as i16 != 0);
    put(fd, if up { b"1" } else { b"0" });
    put(fd, b"\nwrote=");
    // SAFETY: open/write/close on a NUL-terminated path.
    let ok = unsafe {
        let f = libc::open(
            WRITTEN_FILE.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        );
        f >= 0 && {
            let n = libc::write(f, WRITTEN_TEXT.as_ptr().cast(), WRITTEN_TEXT.len());
            libc::close(f);
            n == WRITTEN_TEXT.len() as isize
        }
    };
    put(fd, if ok { b"1" } else { b"0" });
    put(fd, b"\ncgroup=");
    copy_file(fd, c"/proc/self/cgroup");
    put(fd, b"mountinfo=\n");
    copy_file(fd, c"/proc/self/mountinfo");
}

/// Parse the probe's output into (key, value) pairs; `mountinfo` gets the rest.
pub fn parse(out: &[u8]) -> std::collections::BTreeMap<String, String> {
    let text = String::from_utf8_lossy(out);
    let mut map = std::collections::BTreeMap::new();
    let (head, mounts) = text.split_once("mountinfo=\n").unwrap_or((&text, ""));
    let (head, cg) = head.split_once("cgroup=").unwrap_or((head, ""));
    for line in head.lines() {
        if let Some((k, v)) = line.split_once('=') {
            map.insert(k.to_string(), v.trim().to_string());
        }
    }
    map.insert("cgroup".into(), cg.to_string());
    map.insert("mountinfo".into(), mounts.to_string());
    map
}

/// Put `name=<errno>` (0 on success) for a system call's raw return value.
fn put_errno(fd: RawFd, name: &[u8], ret: libc::c_long) {
    put(fd, name);
    put(fd, b"=");
    // SAFETY: reading errno right after the call, in this thread.
    let e = if ret < 0 {
        unsafe { *libc::__errno_location() }
    } else {
        0
    };
    put_u64(fd, e as u64);
    put(fd, b"\n");
}

/// The hygiene probe: what forbidden calls return (errno numbers, 0 = allowed), the
/// process's capability, no_new_privs and seccomp lines of `/proc/self/status`, and the
/// network interfaces (`/proc/net/dev`, to the end of the output). Each call is harmless
/// where it is allowed: the mount is a tmpfs in the container's own mount namespace, the
/// `kexec_load` carries an invalid flag (EINVAL once the permission check passes) and the
/// `clone3` a null argument (EFAULT/EINVAL once the filter lets it through).
pub fn security_report(fd: RawFd) {
    // SAFETY: NUL-terminated strings; a mount in this process's own mount namespace.
    let r = unsafe {
        libc::mount(
            c"isobench-probe".as_ptr(),
            c"/tmp".as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    put_errno(fd, b"mount", r as libc::c_long);
    // SAFETY: kexec_load with no segments and the invalid flag 0x100: refused (EPERM) without
    // CAP_SYS_BOOT or by the filter, EINVAL otherwise; it never loads or unloads an image.
    let r = unsafe { libc::syscall(libc::SYS_kexec_load, 0usize, 0usize, 0usize, 0x100usize) };
    put_errno(fd, b"kexec_load", r);
    // SAFETY: clone3 with a null argument never creates a process.
    let r = unsafe { libc::syscall(libc::SYS_clone3, 0usize, 0usize) };
    put_errno(fd, b"clone3", r);
    // SAFETY: getppid has no preconditions; it is the call `sys.call` makes.
    let r = unsafe { libc::syscall(libc::SYS_getppid) };
    put_errno(fd, b"getppid", r);
    put(fd, b"status=\n");
    copy_file(fd, c"/proc/self/status");
    put(fd, b"netdev=\n");
    copy_file(fd, c"/proc/net/dev");
}

/// Parse [`security_report`]'s output: the `name=errno` lines, the status fields
/// (`CapEff`, `NoNewPrivs`, `Seccomp`, ...) and `netdev` (the interface names).
pub fn parse_security(out: &[u8]) -> std::collections::BTreeMap<String, String> {
    let text = String::from_utf8_lossy(out);
    let mut map = std::collections::BTreeMap::new();
    let (head, net) = text.split_once("netdev=\n").unwrap_or((&text, ""));
    let (calls, status) = head.split_once("status=\n").unwrap_or((head, ""));
    for line in calls.lines() {
        if let Some((k, v)) = line.split_once('=') {
            map.insert(k.to_string(), v.trim().to_string());
        }
    }
    for line in status.lines() {
        if let Some((k, v)) = line.split_once(':') {
            map.insert(k.to_string(), v.trim().to_string());
        }
    }
    let ifaces: Vec<&str> = net
        .lines()
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()))
        .collect();
    map.insert("netdev".into(), ifaces.join(" "));
    map
}
