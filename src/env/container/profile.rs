//! Docker's default seccomp profile for x86-64 (moby `profiles/seccomp/default.json`), as
//! `seccompiler` rules for a given capability set, and its compilation to BPF
//! (docs/RELIABILITY.md, "Container hygiene"). Applied by `security.rs`.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::security::SecurityError;

/// Capability numbers the profile's conditional rules refer to.
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_MODULE: u32 = 16;
const CAP_SYS_RAWIO: u32 = 17;
const CAP_SYS_CHROOT: u32 = 18;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_PACCT: u32 = 20;
pub const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_BOOT: u32 = 22;
const CAP_SYS_NICE: u32 = 23;
const CAP_SYS_TIME: u32 = 25;
const CAP_SYS_TTY_CONFIG: u32 = 26;
const CAP_SYSLOG: u32 = 34;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// x86-64 system call numbers newer than the `libc` crate's table.
const SYS_IO_PGETEVENTS: i64 = 333;
const SYS_CACHESTAT: i64 = 451;
const SYS_MAP_SHADOW_STACK: i64 = 453;
const SYS_FUTEX_WAKE: i64 = 454;
const SYS_FUTEX_WAIT: i64 = 455;
const SYS_FUTEX_REQUEUE: i64 = 456;

/// A system call of the profile: its number, and the path of its `SYS_` constant, whose
/// tail is the call's name (for the OCI form of the profile, which names calls).
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub nr: i64,
    path: &'static str,
}

impl Call {
    /// The call's name as seccomp profiles write it (`libc::SYS_openat` → `openat`).
    pub fn name(&self) -> String {
        self.path
            .rsplit("SYS_")
            .next()
            .unwrap_or(self.path)
            .trim()
            .to_ascii_lowercase()
    }
}

/// `calls![libc::SYS_read, SYS_CACHESTAT]`: the calls with their numbers and names.
macro_rules! calls {
    ($($c:path),* $(,)?) => {
        &[$(Call { nr: $c, path: stringify!($c) }),*]
    };
}

/// Docker's default profile, x86-64: the calls allowed whatever the capabilities (its first,
/// unconditional group, less the names that exist only on 32-bit ABIs; `ptrace` and
/// `process_vm_*` are in its kernel >= 4.8 group). The io_uring calls are not here: current
/// Docker (25 and later) removed them from the default profile.
const ALWAYS: &[Call] = calls![
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_access,
    libc::SYS_adjtimex,
    libc::SYS_alarm,
    libc::SYS_bind,
    libc::SYS_brk,
    SYS_CACHESTAT,
    libc::SYS_capget,
    libc::SYS_capset,
    libc::SYS_chdir,
    libc::SYS_chmod,
    libc::SYS_chown,
    libc::SYS_clock_adjtime,
    libc::SYS_clock_getres,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_connect,
    libc::SYS_copy_file_range,
    libc::SYS_creat,
    libc::SYS_dup,
    libc::SYS_dup2,
    libc::SYS_dup3,
    libc::SYS_epoll_create,
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_ctl_old,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_wait_old,
    libc::SYS_eventfd,
    libc::SYS_eventfd2,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_fadvise64,
    libc::SYS_fallocate,
    libc::SYS_fanotify_mark,
    libc::SYS_fchdir,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_fchmodat2,
    libc::SYS_fchown,
    libc::SYS_fchownat,
    libc::SYS_fcntl,
    libc::SYS_fdatasync,
    libc::SYS_fgetxattr,
    libc::SYS_flistxattr,
    libc::SYS_flock,
    libc::SYS_fork,
    libc::SYS_fremovexattr,
    libc::SYS_fsetxattr,
    libc::SYS_fstat,
    libc::SYS_fstatfs,
    libc::SYS_fsync,
    libc::SYS_ftruncate,
    libc::SYS_futex,
    SYS_FUTEX_REQUEUE,
    SYS_FUTEX_WAIT,
    libc::SYS_futex_waitv,
    SYS_FUTEX_WAKE,
    libc::SYS_futimesat,
    libc::SYS_getcpu,
    libc::SYS_getcwd,
    libc::SYS_getdents,
    libc::SYS_getdents64,
    libc::SYS_getegid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getgroups,
    libc::SYS_getitimer,
    libc::SYS_getpeername,
    libc::SYS_getpgid,
    libc::SYS_getpgrp,
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_getpriority,
    libc::SYS_getrandom,
    libc::SYS_getresgid,
    libc::SYS_getresuid,
    libc::SYS_getrlimit,
    libc::SYS_get_robust_list,
    libc::SYS_getrusage,
    libc::SYS_getsid,
    libc::SYS_getsockname,
    libc::SYS_getsockopt,
    libc::SYS_get_thread_area,
    libc::SYS_gettid,
    libc::SYS_gettimeofday,
    libc::SYS_getuid,
    libc::SYS_getxattr,
    libc::SYS_inotify_add_watch,
    libc::SYS_inotify_init,
    libc::SYS_inotify_init1,
    libc::SYS_inotify_rm_watch,
    libc::SYS_io_cancel,
    libc::SYS_ioctl,
    libc::SYS_io_destroy,
    libc::SYS_io_getevents,
    SYS_IO_PGETEVENTS,
    libc::SYS_ioprio_get,
    libc::SYS_ioprio_set,
    libc::SYS_io_setup,
    libc::SYS_io_submit,
    libc::SYS_kill,
    libc::SYS_landlock_add_rule,
    libc::SYS_landlock_create_ruleset,
    libc::SYS_landlock_restrict_self,
    libc::SYS_lchown,
    libc::SYS_lgetxattr,
    libc::SYS_link,
    libc::SYS_linkat,
    libc::SYS_listen,
    libc::SYS_listxattr,
    libc::SYS_llistxattr,
    libc::SYS_lremovexattr,
    libc::SYS_lseek,
    libc::SYS_lsetxattr,
    libc::SYS_lstat,
    libc::SYS_madvise,
    SYS_MAP_SHADOW_STACK,
    libc::SYS_membarrier,
    libc::SYS_memfd_create,
    libc::SYS_memfd_secret,
    libc::SYS_mincore,
    libc::SYS_mkdir,
    libc::SYS_mkdirat,
    libc::SYS_mknod,
    libc::SYS_mknodat,
    libc::SYS_mlock,
    libc::SYS_mlock2,
    libc::SYS_mlockall,
    libc::SYS_mmap,
    libc::SYS_mprotect,
    libc::SYS_mq_getsetattr,
    libc::SYS_mq_notify,
    libc::SYS_mq_open,
    libc::SYS_mq_timedreceive,
    libc::SYS_mq_timedsend,
    libc::SYS_mq_unlink,
    libc::SYS_mremap,
    libc::SYS_msgctl,
    libc::SYS_msgget,
    libc::SYS_msgrcv,
    libc::SYS_msgsnd,
    libc::SYS_msync,
    libc::SYS_munlock,
    libc::SYS_munlockall,
    libc::SYS_munmap,
    libc::SYS_name_to_handle_at,
    libc::SYS_nanosleep,
    libc::SYS_newfstatat,
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_pause,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_send_signal,
    libc::SYS_pipe,
    libc::SYS_pipe2,
    libc::SYS_pkey_alloc,
    libc::SYS_pkey_free,
    libc::SYS_pkey_mprotect,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_prctl,
    libc::SYS_pread64,
    libc::SYS_preadv,
    libc::SYS_preadv2,
    libc::SYS_prlimit64,
    libc::SYS_process_mrelease,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pselect6,
    libc::SYS_ptrace,
    libc::SYS_pwrite64,
    libc::SYS_pwritev,
    libc::SYS_pwritev2,
    libc::SYS_read,
    libc::SYS_readahead,
    libc::SYS_readlink,
    libc::SYS_readlinkat,
    libc::SYS_readv,
    libc::SYS_recvfrom,
    libc::SYS_recvmmsg,
    libc::SYS_recvmsg,
    libc::SYS_remap_file_pages,
    libc::SYS_removexattr,
    libc::SYS_rename,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_restart_syscall,
    libc::SYS_rmdir,
    libc::SYS_rseq,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigpending,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigqueueinfo,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigsuspend,
    libc::SYS_rt_sigtimedwait,
    libc::SYS_rt_tgsigqueueinfo,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_getattr,
    libc::SYS_sched_getparam,
    libc::SYS_sched_get_priority_max,
    libc::SYS_sched_get_priority_min,
    libc::SYS_sched_getscheduler,
    libc::SYS_sched_rr_get_interval,
    libc::SYS_sched_setaffinity,
    libc::SYS_sched_setattr,
    libc::SYS_sched_setparam,
    libc::SYS_sched_setscheduler,
    libc::SYS_sched_yield,
    libc::SYS_seccomp,
    libc::SYS_select,
    libc::SYS_semctl,
    libc::SYS_semget,
    libc::SYS_semop,
    libc::SYS_semtimedop,
    libc::SYS_sendfile,
    libc::SYS_sendmmsg,
    libc::SYS_sendmsg,
    libc::SYS_sendto,
    libc::SYS_setfsgid,
    libc::SYS_setfsuid,
    libc::SYS_setgid,
    libc::SYS_setgroups,
    libc::SYS_setitimer,
    libc::SYS_setpgid,
    libc::SYS_setpriority,
    libc::SYS_setregid,
    libc::SYS_setresgid,
    libc::SYS_setresuid,
    libc::SYS_setreuid,
    libc::SYS_setrlimit,
    libc::SYS_set_robust_list,
    libc::SYS_setsid,
    libc::SYS_setsockopt,
    libc::SYS_set_thread_area,
    libc::SYS_set_tid_address,
    libc::SYS_setuid,
    libc::SYS_setxattr,
    libc::SYS_shmat,
    libc::SYS_shmctl,
    libc::SYS_shmdt,
    libc::SYS_shmget,
    libc::SYS_shutdown,
    libc::SYS_sigaltstack,
    libc::SYS_signalfd,
    libc::SYS_signalfd4,
    libc::SYS_socketpair,
    libc::SYS_splice,
    libc::SYS_stat,
    libc::SYS_statfs,
    libc::SYS_statx,
    libc::SYS_symlink,
    libc::SYS_symlinkat,
    libc::SYS_sync,
    libc::SYS_sync_file_range,
    libc::SYS_syncfs,
    libc::SYS_sysinfo,
    libc::SYS_tee,
    libc::SYS_tgkill,
    libc::SYS_time,
    libc::SYS_timer_create,
    libc::SYS_timer_delete,
    libc::SYS_timer_getoverrun,
    libc::SYS_timer_gettime,
    libc::SYS_timer_settime,
    libc::SYS_timerfd_create,
    libc::SYS_timerfd_gettime,
    libc::SYS_timerfd_settime,
    libc::SYS_times,
    libc::SYS_tkill,
    libc::SYS_truncate,
    libc::SYS_umask,
    libc::SYS_uname,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_utime,
    libc::SYS_utimensat,
    libc::SYS_utimes,
    libc::SYS_vfork,
    libc::SYS_vmsplice,
    libc::SYS_wait4,
    libc::SYS_waitid,
    libc::SYS_write,
    libc::SYS_writev,
    // The profile's amd64 group.
    libc::SYS_arch_prctl,
    libc::SYS_modify_ldt,
];

/// The profile's capability groups: calls allowed only when the container holds the
/// capability.
const BY_CAPABILITY: &[(u32, &[Call])] = &[
    (CAP_DAC_READ_SEARCH, calls![libc::SYS_open_by_handle_at]),
    (
        CAP_SYS_ADMIN,
        calls![
            libc::SYS_bpf,
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_fanotify_init,
            libc::SYS_fsconfig,
            libc::SYS_fsmount,
            libc::SYS_fsopen,
            libc::SYS_fspick,
            libc::SYS_lookup_dcookie,
            libc::SYS_mount,
            libc::SYS_mount_setattr,
            libc::SYS_move_mount,
            libc::SYS_open_tree,
            libc::SYS_perf_event_open,
            libc::SYS_quotactl,
            libc::SYS_quotactl_fd,
            libc::SYS_setdomainname,
            libc::SYS_sethostname,
            libc::SYS_setns,
            libc::SYS_syslog,
            libc::SYS_umount2,
            libc::SYS_unshare,
        ],
    ),
    (CAP_SYS_BOOT, calls![libc::SYS_reboot]),
    (CAP_SYS_CHROOT, calls![libc::SYS_chroot]),
    (
        CAP_SYS_MODULE,
        calls![
            libc::SYS_delete_module,
            libc::SYS_init_module,
            libc::SYS_finit_module,
        ],
    ),
    (CAP_SYS_PACCT, calls![libc::SYS_acct]),
    (
        CAP_SYS_PTRACE,
        calls![
            libc::SYS_kcmp,
            libc::SYS_pidfd_getfd,
            libc::SYS_process_madvise,
        ],
    ),
    (CAP_SYS_RAWIO, calls![libc::SYS_iopl, libc::SYS_ioperm]),
    (
        CAP_SYS_TIME,
        calls![libc::SYS_settimeofday, libc::SYS_clock_settime],
    ),
    (CAP_SYS_TTY_CONFIG, calls![libc::SYS_vhangup]),
    (
        CAP_SYS_NICE,
        calls![
            libc::SYS_get_mempolicy,
            libc::SYS_mbind,
            libc::SYS_set_mempolicy,
            libc::SYS_set_mempolicy_home_node,
        ],
    ),
    (CAP_SYSLOG, calls![libc::SYS_syslog]),
    (CAP_BPF, calls![libc::SYS_bpf]),
    (CAP_PERFMON, calls![libc::SYS_perf_event_open]),
];

/// `personality(2)` values the profile allows (Linux, READ_IMPLIES_EXEC-free variants, query).
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The namespace flags `clone` may not carry without CAP_SYS_ADMIN (the profile's mask
/// 0x7E020000: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET).
const CLONE_NAMESPACE_MASK: u64 = 0x7E02_0000;

/// `AF_VSOCK`: the one socket family the profile refuses.
const AF_VSOCK: u64 = 40;

/// A condition on a call's first argument, as Docker's profile writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg0 {
    Eq(u64),
    Ne(u64),
    /// `arg & mask == value`.
    MaskedEq {
        mask: u64,
        value: u64,
    },
}

/// The profile for a container holding the capabilities in `mask`, as data: syscall number →
/// the call, and the conditions on its first argument of which one must hold (none: the call
/// is allowed whatever its arguments). Everything else fails with EPERM. The one source of
/// both the built-in container's filter ([`compile`]) and the OCI runtimes' (`linux.seccomp`,
/// `env/oci/seccomp.rs`).
pub fn allowed(mask: u64) -> BTreeMap<i64, (Call, Vec<Arg0>)> {
    let holds = |cap: u32| mask & (1u64 << cap) != 0;
    let mut calls: BTreeMap<i64, (Call, Vec<Arg0>)> = BTreeMap::new();
    let mut allow = |call: &Call, when: Vec<Arg0>| {
        calls.insert(call.nr, (*call, when));
    };
    for call in ALWAYS {
        allow(call, Vec::new());
    }
    for &(cap, group) in BY_CAPABILITY {
        if holds(cap) {
            for call in group {
                allow(call, Vec::new());
            }
        }
    }
    allow(
        &calls![libc::SYS_personality][0],
        PERSONALITIES.iter().map(|&p| Arg0::Eq(p)).collect(),
    );
    allow(&calls![libc::SYS_socket][0], vec![Arg0::Ne(AF_VSOCK)]);
    if !holds(CAP_SYS_ADMIN) {
        allow(
            &calls![libc::SYS_clone][0],
            vec![Arg0::MaskedEq {
                mask: CLONE_NAMESPACE_MASK,
                value: 0,
            }],
        );
    }
    calls
}

/// Whether `clone3` fails with ENOSYS for a container holding `mask` (without CAP_SYS_ADMIN,
/// as Docker's profile does, so that glibc falls back to `clone`, whose flags it can check).
pub fn clone3_enosys(mask: u64) -> bool {
    mask & (1u64 << CAP_SYS_ADMIN) == 0
}

/// The `seccompiler` rules of [`allowed`]: syscall number → rules (an empty list allows the
/// call whatever its arguments).
pub fn profile_rules(mask: u64) -> Result<BTreeMap<i64, Vec<SeccompRule>>, SecurityError> {
    let arg0 = |op, value| SeccompCondition::new(0, SeccompCmpArgLen::Qword, op, value);
    let mut rules = BTreeMap::new();
    for (nr, (_, when)) in allowed(mask) {
        let any_of = when
            .iter()
            .map(|c| {
                let cond = match *c {
                    Arg0::Eq(v) => arg0(SeccompCmpOp::Eq, v),
                    Arg0::Ne(v) => arg0(SeccompCmpOp::Ne, v),
                    Arg0::MaskedEq { mask, value } => arg0(SeccompCmpOp::MaskedEq(mask), value),
                }?;
                SeccompRule::new(vec![cond])
            })
            .collect::<Result<_, _>>()?;
        rules.insert(nr, any_of);
    }
    Ok(rules)
}

/// Compile the filter(s) for a container holding `mask`: the profile (everything not allowed
/// fails with EPERM, Docker's `defaultErrnoRet`), then, without CAP_SYS_ADMIN, a second filter
/// that makes `clone3` fail with ENOSYS as Docker's does, so that glibc falls back to `clone`
/// (when several filters answer ERRNO, the kernel takes the last installed one's errno).
pub fn compile(mask: u64) -> Result<Vec<BpfProgram>, SecurityError> {
    let arch = TargetArch::x86_64;
    let main = SeccompFilter::new(
        profile_rules(mask)?,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )?;
    let mut filters = vec![BpfProgram::try_from(main)?];
    if clone3_enosys(mask) {
        let clone3 = SeccompFilter::new(
            BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )?;
        filters.push(BpfProgram::try_from(clone3)?);
    }
    Ok(filters)
}
