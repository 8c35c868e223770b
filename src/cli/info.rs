//! `isobench info`: the image, the host facts, the workloads, and which environments can run.

use anyhow::Result;

use super::ExitCode;
use crate::env::Environment;
use crate::env::{self, EnvKind};
use crate::plan::VmOptions;
use crate::workload::isa;
use crate::{host, image, workload};

/// The ISA tiers an environment kind offers on this host, or why they cannot be read. Every
/// kind but the vm runs the image as a process on this host's CPU and kernel.
fn tiers(kind: EnvKind) -> String {
    let tiers = match kind {
        EnvKind::Vm => env::vm::Vm::new("vm", VmOptions::default()).isa_tiers(),
        _ => Ok(isa::Isa::host_tiers()),
    };
    let host = isa::Isa::host_tiers();
    match tiers {
        Ok(t) if t.len() < host.len() => format!(
            "{} (this KVM's supported CPUID offers no more; the host runs {})",
            isa::list(&t),
            isa::list(&host)
        ),
        Ok(t) => isa::list(&t),
        Err(err) => format!("unknown ({err})"),
    }
}

pub fn info() -> Result<ExitCode> {
    let h = host::facts();
    println!(
        "isobench {} (commit {})",
        env!("CARGO_PKG_VERSION"),
        env!("ISOBENCH_GIT_COMMIT")
    );
    println!();
    println!("workload image");
    println!(
        "  size          {} bytes ({} bytes loaded, incl. bss)",
        image::IMAGE.len(),
        image::IMAGE_MEM_SIZE
    );
    println!("  load address  {:#x}", isobench_abi::IMAGE_BASE);
    println!("  sha256        {}", image::sha256_hex());
    println!("  abi version   {}", isobench_abi::ABI_VERSION);
    println!();
    println!("host");
    println!("  cpu           {} ({} cores)", h.cpu_model, h.cores);
    println!(
        "  memory        {:.1} GiB",
        h.memory_bytes as f64 / (1u64 << 30) as f64
    );
    println!("  kernel        {}", h.kernel);
    println!(
        "  virtualized   {}",
        if h.virtualized {
            "yes (hypervisor CPUID bit set)"
        } else {
            "no"
        }
    );
    println!("  kvm           {}", h.kvm_flavour);
    println!("  cgroups       {}", h.cgroup_version);
    println!("  THP           {}", h.thp);
    println!("  clocksource   {}", h.clocksource);
    if h.free_page_reporting {
        println!("  balloon       reports free pages to the hypervisor: page-cache IO throughput swings with timing (docs/METHODOLOGY.md, \"IO on a VM that reports free pages\")");
    }
    println!(
        "  TSC           {:.3} GHz ({})",
        h.tsc_hz / 1e9,
        h.tsc_source
    );
    println!();
    println!("environments");
    for kind in EnvKind::defaults() {
        match env::probe(kind) {
            Ok(()) => println!(
                "  {:<10} available; ISA tiers: {}",
                kind.name(),
                tiers(kind)
            ),
            Err(reason) => println!("  {:<10} not available: {reason}", kind.name()),
        }
    }
    println!(
        "  (--isa best runs the highest tier every selected environment offers, for {})",
        isa::TIERED.join(" and ")
    );
    println!();
    println!("workloads");
    for w in workload::catalogue() {
        println!("  {:<12} {}", w.name, w.description);
    }
    println!(
        "  {:<12} launch of a fresh instance to the image's first instruction (µs)",
        crate::workload::START
    );
    println!("  {}", stream_copy_line());
    Ok(ExitCode::Success)
}

/// How `mem.stream --full`'s copy stores here by default (`--stream-copy auto`), and why.
fn stream_copy_line() -> String {
    use crate::workload::stream_copy;
    let llc =
        workload::last_level_cache_bytes(std::path::Path::new("/sys/devices/system/cpu/cpu0"));
    let full = workload::stream_array_bytes(workload::Profile::Full);
    let (_, why) = stream_copy::decide(
        stream_copy::CopyChoice::Auto,
        full,
        stream_copy::threshold(llc).as_ref(),
    );
    format!("(mem.stream --full copy, one thread: {why})")
}
