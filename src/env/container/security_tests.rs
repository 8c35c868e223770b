//! The container's hygiene seen from inside (docs/RELIABILITY.md): for each `--seccomp` and
//! `--caps` choice, what `mount`, `kexec_load` and `clone3` return, the capability sets,
//! `no_new_privs`, the seccomp mode, and the network interfaces. Real containers: root,
//! overlayfs, namespaces and cgroups (CI has them).

use super::tests::{assert_clean, require_container, serial, spec};
use super::*;
use crate::plan::{Caps, Seccomp};

const EPERM: &str = "1";
const ENOSYS: &str = "38";

fn probe(seccomp: Seccomp, caps: Caps) -> std::collections::BTreeMap<String, String> {
    let t = tempfile::tempdir().unwrap();
    let c = Container::new(
        "container",
        ContainerOptions {
            seccomp,
            caps,
            ..Default::default()
        },
    );
    let out = inside::run_probe(
        &c,
        &spec(t.path(), 0, 0),
        inside::security_report,
        &mut |_| {},
    )
    .unwrap();
    assert_clean(t.path());
    let f = inside::parse_security(&out);
    println!("seccomp {seccomp:?}, caps {caps:?}: {f:?}");
    // Whatever the options: no_new_privs, loopback only, the workload's call allowed.
    assert_eq!(f["NoNewPrivs"], "1", "{f:?}");
    assert_eq!(f["netdev"], "lo", "network interfaces other than lo: {f:?}");
    assert_eq!(f["getppid"], "0", "{f:?}");
    f
}

#[test]
fn the_default_container_refuses_mount_and_kexec_and_has_dockers_capabilities() {
    let _g = serial();
    require_container();
    let f = probe(Seccomp::Default, Caps::Default);
    assert_eq!(f["mount"], EPERM, "{f:?}");
    assert_eq!(f["kexec_load"], EPERM, "{f:?}");
    // Docker's answer to clone3, so that glibc falls back to clone.
    assert_eq!(f["clone3"], ENOSYS, "{f:?}");
    let docker = format!("{:016x}", security::DOCKER_DEFAULT_CAP_MASK);
    assert_eq!(docker, "00000000a80425fb");
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(f[set], docker, "{set}: {f:?}");
    }
    assert_eq!(f["CapInh"], "0000000000000000", "{f:?}");
    assert_eq!(f["CapAmb"], "0000000000000000", "{f:?}");
    assert_eq!(f["Seccomp"], "2", "seccomp filter mode: {f:?}");
}

#[test]
fn without_the_filter_the_capabilities_still_refuse_mount_and_kexec() {
    let _g = serial();
    require_container();
    let f = probe(Seccomp::Off, Caps::Default);
    assert_eq!(f["Seccomp"], "0", "{f:?}");
    assert_eq!(f["mount"], EPERM, "no CAP_SYS_ADMIN: {f:?}");
    // EPERM without CAP_SYS_BOOT; ENOSYS where the kernel has no kexec at all.
    assert!(
        [EPERM, ENOSYS].contains(&f["kexec_load"].as_str()),
        "kexec_load not refused without CAP_SYS_BOOT: {f:?}"
    );
    assert_ne!(f["clone3"], ENOSYS, "clone3 reached the kernel: {f:?}");
    assert_eq!(f["CapEff"], "00000000a80425fb", "{f:?}");
}

#[test]
fn with_all_capabilities_the_filter_follows_them_as_dockers_does() {
    let _g = serial();
    require_container();
    let f = probe(Seccomp::Default, Caps::All);
    assert_eq!(f["Seccomp"], "2", "{f:?}");
    // CAP_SYS_ADMIN unlocks mount in the profile (a tmpfs in the container's namespace).
    assert_eq!(f["mount"], "0", "{f:?}");
    // kexec_load is refused by the filter whatever the capabilities.
    assert_eq!(f["kexec_load"], EPERM, "{f:?}");
    // Every capability of the process that started it.
    let own = security::own_cap_eff().unwrap();
    assert_eq!(f["CapEff"], format!("{own:016x}"), "{f:?}");
}

#[test]
fn the_runner_runs_under_the_filter_and_records_it() {
    let _g = serial();
    require_container();
    let t = tempfile::tempdir().unwrap();
    let mut c = Container::new("container", ContainerOptions::default());
    c.start(&spec(t.path(), 1 << 20, 1 << 20)).unwrap();
    let facts = c.facts();
    assert_eq!(facts["cap_eff"], "00000000a80425fb");
    assert!(facts["seccomp"].starts_with("docker-default"), "{facts:?}");
    c.stop().unwrap();
    assert_clean(t.path());
}
