//! The host side of KVM: opening `/dev/kvm` with an error that says how to fix access,
//! the probe that says why the vm environment cannot run, the KVM flavour (`kvm_intel`,
//! `kvm_amd`, `kvm_pvm`), whether this host is itself a guest, and the TSC frequency.

use std::path::Path;

use kvm_bindings::{CpuId, KVM_API_VERSION, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Cap, Kvm};

/// The device KVM is reached through.
pub const KVM_DEVICE: &str = "/dev/kvm";

/// Why talking to KVM on the host failed.
#[derive(Debug, thiserror::Error)]
pub enum KvmError {
    #[error("{KVM_DEVICE} does not exist: load the KVM module (kvm_intel, kvm_amd or kvm_pvm) or run on a host with virtualization enabled")]
    Missing,
    #[error("the vm environment needs read-write {KVM_DEVICE} (run as root or join group kvm)")]
    Permission,
    #[error("opening {KVM_DEVICE} failed: {0}")]
    Open(#[source] kvm_ioctls::Error),
    #[error("KVM API version {found}, this VMM needs {KVM_API_VERSION}: update the host kernel")]
    ApiVersion { found: i32 },
    #[error("KVM lacks the capability {0}: the vm environment needs it (a newer host kernel)")]
    MissingCap(&'static str),
    #[error("KVM_GET_SUPPORTED_CPUID failed: {0}")]
    SupportedCpuid(#[source] kvm_ioctls::Error),
    #[error("measuring the TSC frequency through KVM ({op}) failed: {source}")]
    TscKhz {
        op: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
}

/// An open KVM system fd and what this VMM caches from it (host properties, not per VM).
pub struct HostKvm {
    pub kvm: Kvm,
    pub cpuid: CpuId,
}

impl HostKvm {
    /// Open `/dev/kvm`, check the API version and capabilities, read the supported CPUID.
    pub fn open() -> Result<HostKvm, KvmError> {
        let kvm = open_kvm()?;
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(KvmError::SupportedCpuid)?;
        Ok(HostKvm { kvm, cpuid })
    }
}

fn open_kvm() -> Result<Kvm, KvmError> {
    if !Path::new(KVM_DEVICE).exists() {
        return Err(KvmError::Missing);
    }
    let kvm = Kvm::new().map_err(|e| match e.errno() {
        libc::EACCES | libc::EPERM => KvmError::Permission,
        libc::ENOENT | libc::ENXIO | libc::ENODEV => KvmError::Missing,
        _ => KvmError::Open(e),
    })?;
    let found = kvm.get_api_version();
    if found != KVM_API_VERSION as i32 {
        return Err(KvmError::ApiVersion { found });
    }
    for (cap, name) in [
        (Cap::UserMemory, "KVM_CAP_USER_MEMORY"),
        (Cap::GetTscKhz, "KVM_CAP_GET_TSC_KHZ"),
        (Cap::ExtCpuid, "KVM_CAP_EXT_CPUID"),
    ] {
        if !kvm.check_extension(cap) {
            return Err(KvmError::MissingCap(name));
        }
    }
    Ok(kvm)
}

/// Why the vm environment cannot run here, or `Ok(())` when it can.
pub fn probe() -> Result<(), String> {
    HostKvm::open().map(|_| ()).map_err(|e| e.to_string())
}

/// The TSC frequency in kHz as KVM gives it to a guest (`KVM_GET_TSC_KHZ` on a scratch vCPU).
pub fn tsc_khz() -> Result<u32, KvmError> {
    let kvm = open_kvm()?;
    let vm = kvm.create_vm().map_err(|source| KvmError::TscKhz {
        op: "KVM_CREATE_VM",
        source,
    })?;
    let vcpu = vm.create_vcpu(0).map_err(|source| KvmError::TscKhz {
        op: "KVM_CREATE_VCPU",
        source,
    })?;
    vcpu.get_tsc_khz().map_err(|source| KvmError::TscKhz {
        op: "KVM_GET_TSC_KHZ",
        source,
    })
}

/// Which KVM implementation the host runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KvmFlavour {
    /// VT-x.
    Intel,
    /// AMD-V / SVM.
    Amd,
    /// Pagetable-based virtual machine: a nested, paging-based hypervisor that emulates guest
    /// ring 0 (docs/ARCHITECTURE.md, "The guest runs the image in ring 3").
    Pvm,
    /// No KVM module loaded.
    None,
}

impl KvmFlavour {
    /// `kvm_intel`, `kvm_amd`, `kvm_pvm` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            KvmFlavour::Intel => "kvm_intel",
            KvmFlavour::Amd => "kvm_amd",
            KvmFlavour::Pvm => "kvm_pvm",
            KvmFlavour::None => "none",
        }
    }
}

/// Detect the KVM flavour from `/sys/module` (and `/proc/modules` where it exists).
pub fn detect_flavour() -> KvmFlavour {
    detect_flavour_in(Path::new("/sys/module"), Path::new("/proc/modules"))
}

/// As [`detect_flavour`], reading the given directory and file (for tests). `kvm_pvm` wins
/// when several vendor modules are loaded: it is the one `/dev/kvm` is served by when present.
pub fn detect_flavour_in(sys_module: &Path, proc_modules: &Path) -> KvmFlavour {
    let listed = std::fs::read_to_string(proc_modules).unwrap_or_default();
    let loaded = |name: &str| {
        sys_module.join(name).is_dir()
            || listed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name))
    };
    if loaded("kvm_pvm") {
        KvmFlavour::Pvm
    } else if loaded("kvm_intel") {
        KvmFlavour::Intel
    } else if loaded("kvm_amd") {
        KvmFlavour::Amd
    } else {
        KvmFlavour::None
    }
}

/// Whether this host is itself a virtual machine (CPUID leaf 1, ECX bit 31: hypervisor present).
pub fn host_is_nested() -> bool {
    let leaf1 = std::arch::x86_64::__cpuid(1);
    leaf1.ecx & (1 << 31) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavour_from_sys_module_and_proc_modules() {
        let d = tempfile::tempdir().unwrap();
        let sys = d.path().join("module");
        std::fs::create_dir(&sys).unwrap();
        let pm = d.path().join("modules");
        assert_eq!(detect_flavour_in(&sys, &pm), KvmFlavour::None);
        std::fs::write(
            &pm,
            "kvm_amd 200704 0 - Live 0x0\nkvm 1 1 kvm_amd, Live 0x0\n",
        )
        .unwrap();
        assert_eq!(detect_flavour_in(&sys, &pm), KvmFlavour::Amd);
        std::fs::create_dir(sys.join("kvm_intel")).unwrap();
        assert_eq!(detect_flavour_in(&sys, &pm), KvmFlavour::Intel);
        std::fs::create_dir(sys.join("kvm_pvm")).unwrap();
        assert_eq!(detect_flavour_in(&sys, &pm), KvmFlavour::Pvm);
        assert_eq!(KvmFlavour::Pvm.name(), "kvm_pvm");
    }

    #[test]
    fn permission_error_says_how_to_fix_it() {
        let msg = KvmError::Permission.to_string();
        assert!(msg.contains("read-write /dev/kvm"), "{msg}");
        assert!(msg.contains("group kvm"), "{msg}");
    }
}
