//! `isobench claims`: parse the flags, run `claims::run` with a progress bar, print the
//! checklist and where the outputs are.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::progress::Bar;
use super::ExitCode;
use crate::claims::{self, Config};
use crate::plan::{parse_cpu_choice, parse_duration, CpuChoice};

const AFTER: &str = "The claims (numbered as in the explainer):
  1  containers lose only about 1% against native (per axis: CPU, memory, IO, system calls)
  2  hypervisor virtualization (KVM) costs more than containers
  3  cgroups hold a CPU hog at --cpus 0.1 and enforce memory, cpuset, freezer and IO limits
  4  a file in a mount namespace is invisible outside, visible after setns (nsenter)
  5  overlayfs writes land only in the upper layer (copy-up, whiteouts)
  6  containers start faster than virtual machines

Claims 1, 2 and 6 share one run of the block protocol (results/claims-<time>/<run-id>/)
over every environment available here; claim 3 takes under a minute, 4 and 5 seconds. Each claim ends
supported, refuted, inconclusive (with what would settle it) or not testable here (with
the reason). Needs root for the container, /dev/kvm for the vm. docs/CLAIMS.md explains
every experiment.

Examples:
  isobench claims                        all six, about 5 minutes
  isobench claims --claim 3 --claim 5    two quick ones
  isobench claims --claim 1 --budget 10m --precision 0.5";

#[derive(Debug, Args)]
#[command(after_help = AFTER)]
pub struct ClaimsArgs {
    /// Run only this claim (1-6); repeat for several. [default: all]
    #[arg(long = "claim", value_name = "N", value_parser = clap::value_parser!(u8).range(1..=6))]
    pub claim: Vec<u8>,

    /// Time for the block-protocol run of claims 1, 2 and 6, e.g. 90s, 4m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "4m")]
    pub budget: Duration,

    /// Precision target of that run, percent (95% half-width).
    #[arg(long, value_name = "PERCENT", default_value_t = 1.0)]
    pub precision: f64,

    /// Margin of claim 1's verdict in percent (the claim's "about 1%").
    #[arg(long, value_name = "PERCENT", default_value_t = 1.0)]
    pub margin: f64,

    /// Environments for claims 1, 2 and 6, comma-separated. [default: all available]
    #[arg(long, value_delimiter = ',', value_name = "ENV,...")]
    pub env: Vec<String>,

    /// The CPU the measured instances of that run are pinned to (`none`: no pinning).
    #[arg(long, value_name = "N|none", value_parser = parse_cpu_choice, default_value = "auto")]
    pub cpu: CpuChoice,

    /// Seed for the run's order, the workloads' data and the bootstrap. [default: random]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Directory the claims directory (claims-<time>/) is created in.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,

    /// Scratch directory for container layers and overlays. [default: OUT/.scratch]
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

pub fn claims(args: &ClaimsArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let cfg = Config {
        claims: claims::select(&args.claim).context("invalid --claim")?,
        out: args.out.clone(),
        scratch: args.scratch.clone(),
        budget: args.budget,
        precision: args.precision,
        margin: args.margin,
        seed: args.seed,
        env: args.env.clone(),
        cpu: args.cpu.name(),
    };
    let mut bar = Bar::new();
    let report = claims::run(&cfg, &mut bar, interrupted)?;
    print!("{}", claims::output::checklist(&report.results));
    println!("claims: {}", report.dir.display());
    for f in &report.files {
        println!("  {}", f.display());
    }
    if let Some(d) = &report.run_dir {
        println!("run (claims 1, 2, 6): {}", d.display());
    }
    if !report.skipped.is_empty() || interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        eprintln!(
            "isobench: interrupted; claim(s) not run: {}; what ran is in {}",
            match report.skipped.len() {
                0 => "none".to_string(),
                _ => report
                    .skipped
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            report.dir.display()
        );
        return Ok(ExitCode::Interrupted);
    }
    if !report.failures.is_empty() {
        for f in &report.failures {
            eprintln!("isobench: {f}");
        }
        return Err(anyhow::anyhow!(
            "{} experiment(s) failed; their claims are marked inconclusive in {}",
            report.failures.len(),
            report.dir.display()
        ));
    }
    Ok(ExitCode::Success)
}
