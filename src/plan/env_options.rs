//! The environments' own options: the container's (`--cpus`, `--memory`, `--cpuset`,
//! `--io-weight`, `--upper`, `--seccomp`, `--caps`) and the vm's (`--guest-page`, `--thp`,
//! the ISA offered to the guest), as clap arguments validated while they are parsed.

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use super::{parse_isa_tier, parse_size};
use crate::workload::isa::Isa;

/// Where the container's overlay upper and work dirs live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upper {
    /// Upper and work dirs on the scratch filesystem, the same as native's IO, so an IO
    /// comparison measures overlay itself.
    #[default]
    Disk,
    /// Upper and work dirs on a tmpfs inside the container.
    Tmpfs,
}

impl Upper {
    /// The option's value as typed and as recorded.
    pub fn name(self) -> &'static str {
        match self {
            Upper::Disk => "disk",
            Upper::Tmpfs => "tmpfs",
        }
    }
}

/// The container's seccomp filter (`--seccomp`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seccomp {
    /// A filter equivalent to Docker's default profile for the container's capabilities
    /// (docs/RELIABILITY.md): forbidden calls fail with EPERM.
    #[default]
    Default,
    /// No filter: to measure what the filter costs (a two-run compare, docs/RELIABILITY.md).
    Off,
}

impl Seccomp {
    /// The option's value as typed and as recorded.
    pub fn name(self) -> &'static str {
        match self {
            Seccomp::Default => "default",
            Seccomp::Off => "off",
        }
    }
}

/// The container's capabilities (`--caps`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Caps {
    /// Docker's default set of 14 (CapEff 00000000a80425fb), bounding set reduced to it.
    #[default]
    Default,
    /// Every capability isobench itself has (like `docker run --cap-add ALL`); the seccomp
    /// filter then allows the calls those capabilities unlock, as Docker's does.
    All,
}

impl Caps {
    /// The option's value as typed and as recorded.
    pub fn name(self) -> &'static str {
        match self {
            Caps::Default => "default",
            Caps::All => "all",
        }
    }
}

/// Guest page size of the vm's identity mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
pub enum GuestPageSize {
    /// 4 KiB pages (a 4-level walk to a PTE).
    #[value(name = "4k")]
    #[serde(rename = "4k")]
    Size4K,
    /// 2 MiB pages (leaves in the page directory).
    #[value(name = "2m")]
    #[serde(rename = "2m")]
    Size2M,
}

impl GuestPageSize {
    pub fn bytes(self) -> u64 {
        match self {
            GuestPageSize::Size4K => 4 << 10,
            GuestPageSize::Size2M => 2 << 20,
        }
    }

    /// The name used in options and facts: `4k` or `2m`.
    pub fn name(self) -> &'static str {
        match self {
            GuestPageSize::Size4K => "4k",
            GuestPageSize::Size2M => "2m",
        }
    }
}

/// Transparent huge pages for the working memory of every environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Thp {
    /// `madvise(MADV_HUGEPAGE)`: huge pages where the kernel's policy allows (`always` or
    /// `madvise`).
    On,
    /// `madvise(MADV_NOHUGEPAGE)`: 4 KiB host pages only.
    Off,
}

impl Thp {
    pub fn name(self) -> &'static str {
        match self {
            Thp::On => "on",
            Thp::Off => "off",
        }
    }
}

/// The container's options (`--cpus`, `--memory`, `--cpuset`, `--io-weight`, `--upper`,
/// `--seccomp`, `--caps`),
/// validated as they are parsed.
#[derive(Args, Clone, Debug, Default, PartialEq)]
#[command(next_help_heading = "Container")]
pub struct ContainerOptions {
    /// Container: CPU limit in CPUs, like `docker run --cpus` (0.1 = 10% of one CPU).
    #[arg(long, value_name = "CPUS", value_parser = parse_cpus)]
    pub cpus: Option<f64>,

    /// Container: memory limit, e.g. 512M, 2G (bytes without a suffix).
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    pub memory: Option<u64>,

    /// Container: CPUs the container may use, e.g. 0 or 0-1.
    #[arg(long, value_name = "LIST", value_parser = parse_cpuset)]
    pub cpuset: Option<String>,

    /// Container: relative IO weight (1-10000 on cgroup v2; 10-1000 on v1 blkio).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub io_weight: Option<u16>,

    /// Container: where the overlay's upper and work dirs live.
    #[arg(long, value_enum, default_value_t = Upper::Disk)]
    pub upper: Upper,

    /// Container: the seccomp filter, Docker's default profile or none (to measure its cost).
    #[arg(long, value_enum, default_value_t = Seccomp::Default)]
    pub seccomp: Seccomp,

    /// Container: capabilities, Docker's default 14 or all that isobench has.
    #[arg(long, value_enum, default_value_t = Caps::Default)]
    pub caps: Caps,
}

/// How the vm's guest is built.
#[derive(Args, Clone, Copy, Debug, PartialEq, Eq)]
#[command(next_help_heading = "VM")]
pub struct VmOptions {
    /// VM: guest page size.
    #[arg(long, value_enum, default_value_t = GuestPageSize::Size2M)]
    pub guest_page: GuestPageSize,

    /// Transparent huge pages for the working memory of every environment (natively and in
    /// the container by madvise, in the vm for the guest memory's host backing).
    #[arg(long, value_enum, default_value_t = Thp::On, help_heading = None)]
    pub thp: Thp,

    /// Testing: hide the ISA tiers above this one from the guest's CPUID and XCR0, as a
    /// KVM that does not offer them would.
    #[arg(long, value_name = "TIER", value_parser = parse_isa_tier, hide = true)]
    pub vm_max_isa: Option<Isa>,

    /// VM: offer the guest the host's ISA tiers even where KVM's supported CPUID does not
    /// list them. Under kvm_pvm the guest's ring-3 code runs on the host CPU with the host's
    /// XCR0, so AVX2 and AVX-512 run there (the image still checks CPUID, and every
    /// checksum is verified); on hardware KVM the image refuses a tier KVM does not give.
    #[arg(long)]
    pub vm_host_isa: bool,
}

impl Default for VmOptions {
    /// 2 MiB guest pages on THP-backed memory: the fewest TLB misses on both levels.
    fn default() -> Self {
        VmOptions {
            guest_page: GuestPageSize::Size2M,
            thp: Thp::On,
            vm_max_isa: None,
            vm_host_isa: false,
        }
    }
}

fn parse_memory(s: &str) -> Result<u64, String> {
    parse_size(s).ok_or_else(|| {
        format!("--memory '{s}' is not a size: use bytes or a number with K, M or G (e.g. 512M)")
    })
}

fn parse_cpus(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(c) if c.is_finite() && c > 0.0 => Ok(c),
        _ => Err(format!(
            "--cpus must be a positive number of CPUs (e.g. 0.5), got {s}"
        )),
    }
}

pub(super) fn parse_cpuset(s: &str) -> Result<String, String> {
    let valid = !s.is_empty()
        && s.split(',').all(|part| {
            let mut ends = part.splitn(2, '-');
            let a = ends.next().is_some_and(|x| x.parse::<u32>().is_ok());
            let b = ends.next().is_none_or(|x| x.parse::<u32>().is_ok());
            a && b
        });
    if valid {
        Ok(s.to_string())
    } else {
        Err(format!(
            "--cpuset '{s}' is not a CPU list: use numbers and ranges like 0 or 0-1,3"
        ))
    }
}
