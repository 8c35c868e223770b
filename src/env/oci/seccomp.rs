//! The OCI form of the built-in container's seccomp profile (`linux.seccomp` in
//! `config.json`): the same calls and argument conditions (`container/profile.rs`), written
//! as Docker hands them to runc, so that the runtime installs the filter itself (runc and crun
//! through libseccomp) as it does under Docker (docs/RUNTIMES.md, "Seccomp").

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use oci_spec::OciSpecError;

use crate::env::container::profile::{self, Arg0};

/// Docker's profile for a container holding the capabilities in `mask`, as `linux.seccomp`:
/// anything not listed fails with EPERM; the unconditional calls in one entry; one entry per
/// allowed value of a conditioned call (as Docker's `default.json` writes `personality`);
/// `clone3` failing with ENOSYS when the container lacks CAP_SYS_ADMIN.
pub fn linux_seccomp(mask: u64) -> Result<LinuxSeccomp, OciSpecError> {
    let mut unconditional = Vec::new();
    let mut syscalls = Vec::new();
    for (call, when) in profile::allowed(mask).into_values() {
        if when.is_empty() {
            unconditional.push(call.name());
            continue;
        }
        for cond in when {
            let (op, value, value_two) = match cond {
                Arg0::Eq(v) => (LinuxSeccompOperator::ScmpCmpEq, v, None),
                Arg0::Ne(v) => (LinuxSeccompOperator::ScmpCmpNe, v, None),
                Arg0::MaskedEq { mask, value } => {
                    (LinuxSeccompOperator::ScmpCmpMaskedEq, mask, Some(value))
                }
            };
            let mut arg = LinuxSeccompArgBuilder::default()
                .index(0usize)
                .value(value)
                .op(op);
            if let Some(v2) = value_two {
                arg = arg.value_two(v2);
            }
            syscalls.push(allow(vec![call.name()])?.args(vec![arg.build()?]).build()?);
        }
    }
    syscalls.insert(0, allow(unconditional)?.build()?);
    if profile::clone3_enosys(mask) {
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone3".to_string()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(libc::ENOSYS as u32)
                .build()?,
        );
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(libc::EPERM as u32)
        .architectures(vec![Arch::ScmpArchX86_64])
        .syscalls(syscalls)
        .build()
}

fn allow(names: Vec<String>) -> Result<LinuxSyscallBuilder, OciSpecError> {
    Ok(LinuxSyscallBuilder::default()
        .names(names)
        .action(LinuxSeccompAction::ScmpActAllow))
}

/// The names `linux_seccomp` allows whatever the arguments, for tests and facts.
pub fn unconditional_names(s: &LinuxSeccomp) -> Vec<String> {
    s.syscalls()
        .iter()
        .flatten()
        .filter(|c: &&LinuxSyscall| {
            c.args().is_none() && c.action() == LinuxSeccompAction::ScmpActAllow
        })
        .flat_map(|c| c.names().clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::container::security::DOCKER_DEFAULT_CAP_MASK;

    #[test]
    fn the_oci_profile_names_every_call_of_the_built_in_one() {
        let s = linux_seccomp(DOCKER_DEFAULT_CAP_MASK).expect("builds");
        let json = serde_json::to_value(&s).expect("serializes");
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        assert_eq!(json["architectures"][0], "SCMP_ARCH_X86_64");
        let allowed = profile::allowed(DOCKER_DEFAULT_CAP_MASK);
        let names = unconditional_names(&s);
        let unconditional = allowed.values().filter(|(_, w)| w.is_empty()).count();
        assert_eq!(names.len(), unconditional);
        for n in [
            "read",
            "write",
            "getppid",
            "pread64",
            "fsync",
            "openat",
            "cachestat",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing");
        }
        // Names are the calls' own, lower case, no path left over.
        assert!(names.iter().all(|n| n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')));
        // Without CAP_SYS_ADMIN: mount is not allowed, clone is conditioned, clone3 is ENOSYS.
        assert!(!names.iter().any(|n| n == "mount"));
        let calls = json["syscalls"].as_array().expect("syscalls");
        let clone = calls
            .iter()
            .find(|c| c["names"][0] == "clone")
            .expect("clone");
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone["args"][0]["value"], 0x7E02_0000u64);
        assert_eq!(clone["args"][0]["valueTwo"], 0);
        let clone3 = calls
            .iter()
            .find(|c| c["names"][0] == "clone3")
            .expect("clone3");
        assert_eq!(clone3["errnoRet"], libc::ENOSYS);
        let personalities = calls
            .iter()
            .filter(|c| c["names"][0] == "personality")
            .count();
        assert_eq!(personalities, 5);
    }

    #[test]
    fn cap_sys_admin_allows_mount_and_plain_clone() {
        let s =
            linux_seccomp(DOCKER_DEFAULT_CAP_MASK | 1 << profile::CAP_SYS_ADMIN).expect("builds");
        let names = unconditional_names(&s);
        assert!(names.iter().any(|n| n == "mount"));
        let json = serde_json::to_value(&s).expect("serializes");
        assert!(!json["syscalls"]
            .as_array()
            .expect("syscalls")
            .iter()
            .any(|c| c["names"][0] == "clone3"));
    }
}
