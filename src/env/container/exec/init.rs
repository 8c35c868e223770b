//! The command container's first process, PID 1 of its PID namespace (`isobench
//! __exec-init FD PLAN`, exec'd by the launch in `mod.rs`): it mounts the overlay root, a
//! minimal `/dev`, a read-only `/sys` and a fresh `/proc`, pivots into them, then forks each
//! command it is sent over the socket and answers with how it ended.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use super::{InitPlan, Reply, RootMounts, MSG_MAX};
use crate::env::container::namespaces;
use crate::env::exec as cmdexec;
use crate::env::exec::Spawn;

/// Device nodes bound into the container's `/dev`.
const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The container's PID 1 (`isobench __exec-init FD PLAN`): mount the root, then run the
/// commands sent over the socket `fd` until it closes. Never returns.
pub fn init_main(fd: RawFd, plan: &str) -> ! {
    // SAFETY: the fd was left open for us by the parent's child side.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: setting close-on-exec on our own socket, so commands do not inherit it.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    let answer = |r: &Reply| {
        let bytes = serde_json::to_vec(r).unwrap_or_default();
        // SAFETY: sending our own buffer.
        unsafe { libc::send(sock.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
    };
    let set_up = serde_json::from_str::<InitPlan>(plan)
        .map_err(|e| format!("the init's plan is garbled: {e}"))
        .and_then(|p| prepare(&p).map(|()| p));
    match set_up {
        Ok(_) => answer(&Reply::Ready),
        Err(m) => {
            // SAFETY: as above.
            unsafe {
                libc::send(
                    sock.as_raw_fd(),
                    format!("E{m}").as_ptr().cast(),
                    m.len() + 1,
                    0,
                )
            };
            std::process::exit(1);
        }
    }
    let mut buf = vec![0u8; MSG_MAX];
    loop {
        let mut space = nix::cmsg_space!([RawFd; 2]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let (n, fds) = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        ) {
            Ok(m) => {
                let fds: Vec<RawFd> = m
                    .cmsgs()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| match c {
                        ControlMessageOwned::ScmRights(f) => Some(f),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                (m.bytes, fds)
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => std::process::exit(0),
        };
        if n == 0 {
            std::process::exit(0);
        }
        // SAFETY: the descriptors arrived with the message and are ours now.
        let mut files: Vec<File> = fds
            .into_iter()
            .map(|f| unsafe { File::from_raw_fd(f) })
            .collect();
        let reply = match (serde_json::from_slice::<Spawn>(&buf[..n]), files.len()) {
            (Ok(s), 2) => {
                let err = files.pop().expect("two files");
                let out = files.pop().expect("two files");
                match cmdexec::run_one(&s, out, err) {
                    Ok(e) => Reply::Ended(e),
                    Err(e) => Reply::Failed(e.to_string()),
                }
            }
            (Ok(_), k) => Reply::Failed(format!("the request came with {k} descriptors, not 2")),
            (Err(e), _) => Reply::Failed(format!("a garbled request: {e}")),
        };
        // PID 1 reaps whatever the command left orphaned.
        // SAFETY: non-blocking reaps of our own children.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
        answer(&reply);
    }
}

/// Everything before the first command: the root, the hostname and loopback (when the
/// init sets up its container itself), the pinning.
fn prepare(p: &InitPlan) -> Result<(), String> {
    if let Some(root) = &p.root {
        enter_root(root)?;
    }
    if let Some(h) = &p.hostname {
        nix::unistd::sethostname(h).map_err(|e| format!("setting the hostname: {e}"))?;
        namespaces::loopback_up().map_err(str::to_string)?;
    }
    if let Some(cpu) = p.cpu {
        let mut set = nix::sched::CpuSet::new();
        set.set(cpu).map_err(|e| format!("CPU {cpu}: {e}"))?;
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
            .map_err(|e| format!("pinning the container to CPU {cpu}: {e}"))?;
    }
    Ok(())
}

/// Mount the overlay root over the host's `/` (or the given lower), a minimal `/dev`, a
/// read-only `/sys`, pivot into it and mount a fresh `/proc`.
fn enter_root(p: &RootMounts) -> Result<(), String> {
    let m = |src: &str,
             target: &Path,
             fstype: Option<&str>,
             flags: MsFlags,
             data: Option<&str>,
             what: &str| {
        mount(Some(src), target, fstype, flags, data)
            .map_err(|e| format!("{what} ({}): {e}", target.display()))
    };
    if let Some(t) = &p.tmpfs {
        m(
            "tmpfs",
            t,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=0755"),
            "mounting the tmpfs for the upper layer",
        )?;
        for d in [&p.upper, &p.work] {
            std::fs::create_dir(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        p.lower.display(),
        p.upper.display(),
        p.work.display()
    );
    m(
        "overlay",
        &p.merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(&opts),
        "mounting the overlay root (is overlayfs available?)",
    )?;
    let r = &p.merged;
    for d in ["dev", "proc", "sys", "tmp"] {
        let _ = std::fs::create_dir(r.join(d));
    }
    let dev = r.join("dev");
    m(
        "tmpfs",
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=0755"),
        "mounting /dev",
    )?;
    for n in DEV_NODES {
        let target = dev.join(n);
        std::fs::write(&target, b"").map_err(|e| format!("creating {}: {e}", target.display()))?;
        let src = format!("/dev/{n}");
        m(
            &src,
            &target,
            None,
            MsFlags::MS_BIND,
            None,
            "binding a device node",
        )?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(link))
            .map_err(|e| format!("linking /dev/{link}: {e}"))?;
    }
    for d in ["shm", "pts"] {
        std::fs::create_dir(dev.join(d)).map_err(|e| format!("creating /dev/{d}: {e}"))?;
    }
    m(
        "tmpfs",
        &dev.join("shm"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
        "mounting /dev/shm",
    )?;
    m(
        "sysfs",
        &r.join("sys"),
        Some("sysfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
        "mounting /sys read-only",
    )?;
    std::env::set_current_dir(r).map_err(|e| format!("chdir into the root: {e}"))?;
    nix::unistd::pivot_root(".", ".")
        .map_err(|e| format!("pivot_root into the overlay root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detaching the old root: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))?;
    m(
        "proc",
        Path::new("/proc"),
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
        "mounting /proc",
    )?;
    Ok(())
}
