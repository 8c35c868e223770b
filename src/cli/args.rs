//! The command line: subcommands and their flags. `isobench run`'s options are the plan's
//! own typed options (`plan::RunOptions`), so they have one form from here to `run.json`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "Measure what isolation costs.

isobench runs the same freestanding workload image natively, in a container it builds
itself (namespaces, cgroups, overlayfs) and in a minimal KVM guest it boots itself, in
blocks of adjacent samples pinned to one CPU, for a time budget and a precision target,
and reports each environment's overhead against native.";

const AFTER: &str = "Exit codes:
  0  success
  1  the run failed: a workload crashed, returned a wrong checksum, ran past its deadline,
     or an environment failed to start (or was unavailable with --strict)
  2  bad usage or unreadable input (flags, files, results from another version)
  130  interrupted (Ctrl-C / SIGTERM); what was measured so far is kept

Examples:
  isobench run                                 all available environments, quick profile, 3 min
  isobench run --precision 0.5 --budget 10m    a tighter answer for more time
  isobench run --env native,vm --workload 'cpu.*' --rounds 10
  isobench run --env native,container --cpus 0.5 --memory 512M
  isobench exec --better higher --metric 'eps=events per second:\\s*([0-9.]+)' \\
      -- sysbench cpu --time=1 run             your own program, natively and in the container
  isobench info                                image hash, host facts, what can run here
  isobench run --label pool=a && isobench pack results/latest > a.tar.gz
  isobench merge a.tar.gz b.tar.gz c.tar.gz --out fleet   one answer across hosts
  isobench claims --claim 4                    check one claim of the container story";

#[derive(Debug, Parser)]
#[command(name = "isobench", version, about = ABOUT, long_about = ABOUT, after_help = AFTER)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run workloads in environments and write results/<run-id>/.
    Run(Box<super::run::RunArgs>),
    /// Measure your own command natively and in each container: `isobench exec [OPTIONS] -- CMD [ARGS...]`.
    #[command(
        after_help = super::exec::AFTER,
        mut_arg("workload", |a| a.hide(true)),
        mut_arg("quick", |a| a.hide(true)),
        mut_arg("full", |a| a.hide(true)),
        mut_arg("guest_page", |a| a.hide(true)),
        mut_arg("thp", |a| a.hide(true))
    )]
    Exec(Box<super::exec::ExecArgs>),
    /// Internal: the command container's first process (started by `exec`, never by hand).
    #[command(name = "__exec-init", hide = true)]
    ExecInit { fd: i32, plan: String },
    /// Show the workload image, the host facts, the workloads, and which environments can run here.
    Info,
    /// Remove what a killed run left behind (container mounts, cgroups, scratch dirs, OCI runtime containers and bundles).
    Clean(CleanArgs),
    /// Re-render a stored run's summaries, verdicts, plots and report from its files.
    Report(ReportArgs),
    /// Compare a run with a baseline: what regressed (exit 1), improved or stayed put.
    Compare(Box<super::compare::CompareArgs>),
    /// Save and list named baselines for `compare --baseline` (OUT/baselines/NAME/).
    Baseline(super::baseline::BaselineArgs),
    /// Merge many hosts' runs into one fleet report with a pooled overhead per metric.
    Merge(Box<super::merge::MergeArgs>),
    /// Write one run as a gzip tarball to stdout (or -o FILE), for `merge` on another host.
    Pack(super::pack::PackArgs),
    /// Export a stored run for CI dashboards and notebooks (github-action-benchmark, Bencher, JUnit, CSV, JSON).
    Export(super::export::ExportArgs),
    /// Reproduce the container story's claims (1% overhead, cgroups, namespaces, overlay,
    /// start-up) with experiments and verdicts: results/claims-<time>/claims.md.
    Claims(super::claims::ClaimsArgs),
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

    /// What to print on stdout.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `run` and `report` print on stdout once the run is analysed.
#[derive(Clone, Copy, Debug, Args)]
pub struct OutputArgs {
    /// Print only the plain-words caption and the results path (no table, no file list).
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// `table`: the caption above the verdict table; `json`: the overhead table as a JSON
    /// list of records on stdout (everything else goes to stderr).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table, value_name = "FORMAT")]
    pub format: OutputFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
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
