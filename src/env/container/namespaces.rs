//! The container's namespaces: the clone that creates the mount, PID, UTS, IPC and network
//! namespaces (the child is PID 1 of the new PID namespace), the cgroup namespace entered
//! once the child sits in its cgroup, the hostname, and the loopback interface.
//!
//! Everything after the clone runs in the child of a possibly multi-threaded process: raw
//! system calls only, no allocation, errors as static strings.
#![allow(unsafe_code)]

use std::ffi::CStr;

use nix::errno::Errno;

/// The namespaces created by the clone. The cgroup namespace is unshared later, by the
/// child, after the parent has moved it into its cgroup, so that its cgroup is its root.
pub const CLONE_NAMESPACES: libc::c_int = libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWNET;

/// The namespaces a container has, for facts.
pub const NAMESPACE_NAMES: &str = "mnt pid uts ipc net cgroup";

/// Where the child is, after [`clone_into_namespaces`].
pub enum Cloned {
    Parent { child: i32 },
    Child,
}

/// Fork into new namespaces: `clone(flags | SIGCHLD)` with no new stack, so the child goes
/// on from here on a copy of this stack, like `fork`.
///
/// # Safety
/// As for `fork` in a multi-threaded process: in the child, only async-signal-safe calls
/// (raw system calls, no allocation, no locks) may be made until it exits.
pub unsafe fn clone_into_namespaces(flags: libc::c_int) -> Result<Cloned, Errno> {
    // SAFETY: clone without CLONE_VM and with a null stack behaves like fork: the child gets
    // a copy of the address space and continues on its copy of this stack. The caller keeps
    // the child to raw system calls (see # Safety).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match r {
        -1 => Err(Errno::last()),
        0 => Ok(Cloned::Child),
        pid => Ok(Cloned::Parent { child: pid as i32 }),
    }
}

/// Child side: enter a new cgroup namespace rooted at the current cgroup.
pub fn unshare_cgroup() -> Result<(), &'static str> {
    // SAFETY: unshare only changes this process's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } != 0 {
        return Err("unshare(CLONE_NEWCGROUP) failed: the kernel needs cgroup namespaces (CONFIG_CGROUPS, Linux >= 4.6)");
    }
    Ok(())
}

/// Child side: set the UTS namespace's hostname.
pub fn set_hostname(name: &CStr) -> Result<(), &'static str> {
    let b = name.to_bytes();
    // SAFETY: b is valid for b.len() bytes.
    if unsafe { libc::sethostname(b.as_ptr().cast(), b.len()) } != 0 {
        return Err("sethostname in the container's UTS namespace failed");
    }
    Ok(())
}

/// `struct ifreq` reduced to the flags member (the kernel reads 40 bytes on x86-64).
#[repr(C)]
struct IfreqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Child side: bring `lo` up in the new network namespace (SIOCGIFFLAGS, set IFF_UP,
/// SIOCSIFFLAGS on a datagram socket), as `ip link set lo up` would.
pub fn loopback_up() -> Result<(), &'static str> {
    // SAFETY: a plain socket call; the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err("socket(AF_INET) in the container's network namespace failed");
    }
    let mut req = IfreqFlags {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: req is a properly sized, initialised ifreq for the flag ioctls.
    let ok = unsafe {
        libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req as *mut IfreqFlags) == 0 && {
            req.flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &req as *const IfreqFlags) == 0
        }
    };
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    if ok {
        Ok(())
    } else {
        Err("bringing up lo (SIOCSIFFLAGS) in the container's network namespace failed")
    }
}

/// Child side: read `lo`'s flags (for the isolation probe of the unit tests).
#[cfg(test)]
pub fn loopback_flags() -> Option<i16> {
    // SAFETY: as in `loopback_up`.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    let mut req = IfreqFlags {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: as in `loopback_up`.
    let r = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req as *mut IfreqFlags) };
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    (r == 0).then_some(req.flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_has_the_kernels_size() {
        assert_eq!(std::mem::size_of::<IfreqFlags>(), 40);
        assert_eq!(std::mem::offset_of!(IfreqFlags, flags), 16);
    }
}
