//! Command-line flags as typed by the user ("low" arguments); `plan.rs` validates them into
//! a run plan.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::workload::Profile;

const ABOUT: &str = "Measure what isolation costs.

isobench runs the same freestanding workload image natively, in a container it builds
itself (namespaces, cgroups, overlayfs) and in a minimal KVM guest it boots itself, in
randomised rounds, and reports each environment's overhead against native.";

const AFTER: &str = "Exit codes:
  0  success
  1  the run failed: a workload crashed, returned a wrong checksum, ran past its deadline,
     or an environment failed to start (or was unavailable with --strict)
  2  bad usage or unreadable input (flags, files, results from another version)
  130  interrupted (Ctrl-C / SIGTERM); what was measured so far is kept

Examples:
  isobench run                                 all available environments, quick profile
  isobench run --env native,vm --workload 'cpu.*' --rounds 10
  isobench run --env native,container --cpus 0.5 --memory 512M
  isobench info                                image hash, host facts, what can run here";

#[derive(Debug, Parser)]
#[command(name = "isobench", version, about = ABOUT, long_about = ABOUT, after_help = AFTER)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run workloads in environments and write results/<run-id>/.
    Run(Box<RunArgs>),
    /// Show the workload image, the host facts, the workloads, and which environments can run here.
    Info,
    /// Remove what a killed run left behind (container mounts, cgroups, scratch dirs).
    Clean(CleanArgs),
    /// Re-render a stored run's summaries, verdicts, plots and report from its files.
    Report(ReportArgs),
    /// Compare a run with a baseline: what regressed (exit 1), improved or stayed put.
    Compare(Box<super::compare::CompareArgs>),
    /// Save and list named baselines for `compare --baseline` (OUT/baselines/NAME/).
    Baseline(super::baseline::BaselineArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GuestPage {
    #[value(name = "4k")]
    FourK,
    #[value(name = "2m")]
    TwoM,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Upper {
    /// Upper and work dirs on the scratch filesystem (same as native's IO).
    Disk,
    /// Upper and work dirs on a tmpfs.
    Tmpfs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Environments, comma-separated: native, container, vm. `native` also runs a second
    /// native instance, `native-b`, as the A/A noise floor. [default: all available]
    #[arg(long, value_delimiter = ',', value_name = "ENV,...")]
    pub env: Vec<String>,

    /// Workloads, comma-separated names or globs (`mem.*`); see `isobench info`. `start`
    /// is the launch-to-first-instruction time of each environment. [default: all]
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub workload: Vec<String>,

    /// Measured rounds; each runs every (environment, workload) pair once in a seeded
    /// random order. Verdicts need at least 5. [default: 10 quick, 15 full]
    #[arg(long, value_name = "N")]
    pub rounds: Option<u32>,

    /// Warm-up rounds run first and discarded. [default: 2]
    #[arg(long, value_name = "N")]
    pub warmup: Option<u32>,

    /// Small sizes: the whole catalogue in a few minutes (the default).
    #[arg(long, conflicts_with = "full")]
    pub quick: bool,

    /// Sizes that follow the benchmarks' own rules (STREAM arrays ≥ 4× LLC); much slower.
    #[arg(long)]
    pub full: bool,

    /// Seed for the round order and the workloads' data. [default: random, recorded]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Directory the run directory is created in.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,

    /// Scratch directory for IO workloads and container layers. [default: OUT/.scratch]
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,

    /// Margin of the verdict in percent: an environment is "within" when the 90% interval
    /// of its overhead lies inside ±MARGIN.
    #[arg(long, value_name = "PERCENT", default_value_t = 1.0)]
    pub margin: f64,

    /// Fail when a requested environment cannot run here, instead of skipping it.
    #[arg(long)]
    pub strict: bool,

    /// Longest one invocation may run before it is stopped as a runaway, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub deadline: f64,

    /// Container: CPU limit in CPUs, like `docker run --cpus` (0.1 = 10% of one CPU).
    #[arg(long, value_name = "CPUS", help_heading = "Container")]
    pub cpus: Option<f64>,

    /// Container: memory limit, e.g. 512M, 2G (bytes without a suffix).
    #[arg(long, value_name = "SIZE", help_heading = "Container")]
    pub memory: Option<String>,

    /// Container: CPUs the container may use, e.g. 0 or 0-1.
    #[arg(long, value_name = "LIST", help_heading = "Container")]
    pub cpuset: Option<String>,

    /// Container: relative IO weight (1-10000 on cgroup v2; 10-1000 on v1 blkio).
    #[arg(long, value_name = "N", help_heading = "Container")]
    pub io_weight: Option<u32>,

    /// Container: where the overlay's upper and work dirs live.
    #[arg(long, value_enum, default_value_t = Upper::Disk, help_heading = "Container")]
    pub upper: Upper,

    /// VM: guest page size.
    #[arg(long, value_enum, default_value_t = GuestPage::TwoM, help_heading = "VM")]
    pub guest_page: GuestPage,

    /// Transparent huge pages for the working memory of every environment (natively and in
    /// the container by madvise, in the vm for the guest memory's host backing).
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub thp: OnOff,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run directory (results/<run-id>) or its run.json.
    pub run: PathBuf,

    /// Margin of the verdict in percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 1.0)]
    pub margin: f64,

    /// Seed for the bootstrap. [default: the run's seed, so the output is reproducible]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,

    /// The results directory whose scratch area (OUT/.scratch) is searched.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,

    /// A scratch directory given to `run --scratch`, searched as well.
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

impl RunArgs {
    pub fn profile(&self) -> Profile {
        if self.full {
            Profile::Full
        } else {
            Profile::Quick
        }
    }
}
