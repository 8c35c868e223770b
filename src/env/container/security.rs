//! The container's privileges, as people run containers (docs/RELIABILITY.md, "Container
//! hygiene"): Docker's default capability set (bounding, effective, permitted; inheritable
//! and ambient empty), `no_new_privs`, and a seccomp filter equivalent to Docker's default
//! profile, built with `seccompiler`. The filter is compiled in the parent ([`Security::new`]);
//! the child applies everything with raw system calls ([`Security::apply`]) as its last
//! set-up step, after the mounts and the hostname (which need CAP_SYS_ADMIN) and before the
//! runner (or a user's command) starts.
#![allow(unsafe_code)]

use std::collections::BTreeMap;

use seccompiler::BpfProgram;

use super::profile::compile;

use crate::plan::{Caps, Seccomp};

/// Docker's default capabilities (moby `oci/caps/defaults.go`), by number and name.
pub const DOCKER_DEFAULT_CAPS: [(u32, &str); 14] = [
    (0, "CAP_CHOWN"),
    (1, "CAP_DAC_OVERRIDE"),
    (3, "CAP_FOWNER"),
    (4, "CAP_FSETID"),
    (5, "CAP_KILL"),
    (6, "CAP_SETGID"),
    (7, "CAP_SETUID"),
    (8, "CAP_SETPCAP"),
    (10, "CAP_NET_BIND_SERVICE"),
    (13, "CAP_NET_RAW"),
    (18, "CAP_SYS_CHROOT"),
    (27, "CAP_MKNOD"),
    (29, "CAP_AUDIT_WRITE"),
    (31, "CAP_SETFCAP"),
];

/// The capability names of Linux 6.x, by number.
const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The names of the capabilities in `mask`.
pub fn caps_of(mask: u64) -> Vec<&'static str> {
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// The mask of [`DOCKER_DEFAULT_CAPS`]: `CapEff` of a default Docker container.
pub const DOCKER_DEFAULT_CAP_MASK: u64 = {
    let mut m = 0u64;
    let mut i = 0;
    while i < DOCKER_DEFAULT_CAPS.len() {
        m |= 1 << DOCKER_DEFAULT_CAPS[i].0;
        i += 1;
    }
    m
};

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("building the container's seccomp filter: {0} (a bug in isobench's profile; run with --seccomp off to go on)")]
    Build(#[from] seccompiler::BackendError),
    #[error("reading {0}: {1} (is /proc mounted?)")]
    Read(&'static str, String),
}

/// What the container's first process applies before it runs: the capability mask it keeps
/// (`None`: all of root's) and the compiled seccomp filters, installed in order.
#[derive(Debug)]
pub struct Security {
    pub caps: Caps,
    pub seccomp: Seccomp,
    /// The effective capabilities the container's process has.
    mask: u64,
    /// The mask the child reduces its sets to (`None`: it keeps what it has).
    keep: Option<u64>,
    cap_last: u32,
    filters: Vec<BpfProgram>,
}

/// The effective capabilities of this process (`CapEff` in `/proc/self/status`): what a
/// container of `--caps all` keeps.
pub fn own_cap_eff() -> Result<u64, SecurityError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| SecurityError::Read("/proc/self/status", e.to_string()))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| SecurityError::Read("/proc/self/status", "no CapEff line".into()))
}

impl Security {
    /// Prepare (in the parent) what a container of these options applies.
    pub fn new(seccomp: Seccomp, caps: Caps) -> Result<Security, SecurityError> {
        const LAST: &str = "/proc/sys/kernel/cap_last_cap";
        let last =
            std::fs::read_to_string(LAST).map_err(|e| SecurityError::Read(LAST, e.to_string()))?;
        let cap_last: u32 = last
            .trim()
            .parse()
            .map_err(|e| SecurityError::Read(LAST, format!("{last:?}: {e}")))?;
        let mask = match caps {
            Caps::Default => DOCKER_DEFAULT_CAP_MASK,
            Caps::All => own_cap_eff()?,
        };
        Ok(Security {
            caps,
            seccomp,
            mask,
            keep: (caps == Caps::Default).then_some(mask),
            cap_last,
            filters: match seccomp {
                Seccomp::Default => compile(mask)?,
                Seccomp::Off => Vec::new(),
            },
        })
    }

    /// The `CapEff` the container's process has.
    pub fn cap_mask(&self) -> u64 {
        self.mask
    }

    /// BPF instructions of the installed filters, for the facts.
    pub fn filter_len(&self) -> usize {
        self.filters.iter().map(|f| f.len()).sum()
    }

    /// Facts recorded in `run.json` for the container.
    pub fn facts(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        f.insert("caps".into(), self.caps.name().into());
        f.insert("cap_eff".into(), format!("{:016x}", self.cap_mask()));
        f.insert("no_new_privs".into(), "1".into());
        f.insert(
            "seccomp".into(),
            match self.seccomp {
                Seccomp::Default => format!(
                    "docker-default profile (seccompiler, {} filter(s), {} BPF instructions)",
                    self.filters.len(),
                    self.filter_len()
                ),
                Seccomp::Off => "off".into(),
            },
        );
        f
    }

    /// Child side, the container's last set-up step: drop the capabilities outside the kept
    /// set from the bounding set, clear the ambient set, set effective = permitted = kept and
    /// inheritable = none, set `no_new_privs`, install the filters. Raw system calls only.
    pub fn apply(&self) -> Result<(), &'static str> {
        if let Some(keep) = self.keep {
            for cap in 0..=self.cap_last.min(63) {
                if keep & (1u64 << cap) == 0 {
                    // SAFETY: prctl on this process only.
                    if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }
                        != 0
                    {
                        return Err("dropping a capability from the bounding set (prctl PR_CAPBSET_DROP) failed: the container needs CAP_SETPCAP (run isobench as root)");
                    }
                }
            }
            // SAFETY: as above.
            unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                    0,
                    0,
                    0,
                )
            };
            let header = CapHeader {
                version: LINUX_CAPABILITY_VERSION_3,
                pid: 0,
            };
            let data = [
                CapData {
                    effective: keep as u32,
                    permitted: keep as u32,
                    inheritable: 0,
                },
                CapData {
                    effective: (keep >> 32) as u32,
                    permitted: (keep >> 32) as u32,
                    inheritable: 0,
                },
            ];
            // SAFETY: capset reads one header and two data structs of the v3 layout.
            if unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) } != 0 {
                return Err("setting the container's capabilities (capset) failed");
            }
        }
        // SAFETY: prctl on this process only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err("prctl(PR_SET_NO_NEW_PRIVS) failed");
        }
        for f in &self.filters {
            // apply_filter makes two system calls (prctl, seccomp) and allocates nothing.
            if seccompiler::apply_filter(f).is_err() {
                return Err("installing the container's seccomp filter failed (does the kernel have CONFIG_SECCOMP_FILTER? run with --seccomp off to go on without it)");
            }
        }
        Ok(())
    }
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[cfg(test)]
mod tests {
    use super::super::profile::{compile, profile_rules};
    use super::*;

    #[test]
    fn docker_default_caps_have_dockers_cap_eff() {
        assert_eq!(DOCKER_DEFAULT_CAP_MASK, 0x0000_0000_a804_25fb);
    }

    #[test]
    fn the_profile_refuses_what_docker_refuses_and_follows_the_caps() {
        let default = profile_rules(DOCKER_DEFAULT_CAP_MASK).unwrap();
        for nr in [
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_kexec_load,
            libc::SYS_kexec_file_load,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_init_module,
            libc::SYS_reboot,
            libc::SYS_open_by_handle_at,
            libc::SYS_iopl,
        ] {
            assert!(
                !default.contains_key(&nr),
                "syscall {nr} allowed by default"
            );
        }
        for nr in [
            libc::SYS_getppid,
            libc::SYS_pread64,
            libc::SYS_pwrite64,
            libc::SYS_fsync,
            libc::SYS_fadvise64,
            libc::SYS_madvise,
            libc::SYS_chroot,
        ] {
            assert!(default.contains_key(&nr), "syscall {nr} refused by default");
        }
        // clone is allowed only without namespace flags.
        assert_eq!(default[&libc::SYS_clone].len(), 1);
        let all = profile_rules(u64::MAX).unwrap();
        assert!(all.contains_key(&libc::SYS_mount));
        assert!(all[&libc::SYS_clone].is_empty());
        // kexec_load stays out even with every capability, as in Docker's profile.
        assert!(!all.contains_key(&libc::SYS_kexec_load));
    }

    #[test]
    fn the_filters_compile_within_the_kernels_limit() {
        for mask in [DOCKER_DEFAULT_CAP_MASK, u64::MAX] {
            let f = compile(mask).unwrap();
            assert!(f.iter().all(|p| !p.is_empty() && p.len() <= 4096));
        }
        assert_eq!(compile(DOCKER_DEFAULT_CAP_MASK).unwrap().len(), 2);
        assert_eq!(compile(u64::MAX).unwrap().len(), 1);
    }
}
