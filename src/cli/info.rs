//! `isobench info`: the image, the host facts, the workloads, and which environments can run.

use anyhow::Result;

use super::ExitCode;
use crate::env::{self, EnvKind};
use crate::{host, image, workload};

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
    println!(
        "  TSC           {:.3} GHz ({})",
        h.tsc_hz / 1e9,
        h.tsc_source
    );
    println!();
    println!("environments");
    for kind in EnvKind::defaults() {
        match env::probe(kind) {
            Ok(()) => println!("  {:<10} available", kind.name()),
            Err(reason) => println!("  {:<10} not available: {reason}", kind.name()),
        }
    }
    println!();
    println!("workloads");
    for w in workload::catalogue() {
        println!("  {:<12} {}", w.name, w.description);
    }
    println!(
        "  {:<12} launch of a fresh instance to the image's first instruction (µs)",
        crate::workload::START
    );
    Ok(ExitCode::Success)
}
