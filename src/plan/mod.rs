//! The run plan: every option of `isobench run` in its one typed form, from the parser
//! (these structs are the clap arguments) through the environments to `run.json` (each
//! option recorded under its serde name), and the validation that turns them into a
//! [`Plan`], so a measurement never starts on a bad configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::results::EnvKind;
use crate::stats::summary::Estimator;
use crate::workload::isa::{self, IsaChoice};
use crate::workload::stream_copy::{self, CopyChoice};
use crate::workload::{self, Profile, Workload, START};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "unknown environment '{0}': choose from native, container, runc, crun, runsc, vm, oci:PATH"
    )]
    UnknownEnv(String),
    #[error("'{0}': name an OCI runtime binary as oci:PATH (e.g. --env oci:/usr/local/bin/youki), one path per run; runc, crun and runsc have names of their own")]
    BadOciEnv(String),
    #[error("no workload matches '{pattern}'; known workloads: {known}")]
    NoWorkloadMatches { pattern: String, known: String },
    #[error("'{pattern}' is not a valid workload pattern: {reason}")]
    BadPattern { pattern: String, reason: String },
    #[error("--margin must be a percentage above 0 and below 100, got {0}")]
    BadMargin(f64),
    #[error("--rounds must be at least 1 (5 or more for a verdict)")]
    NoRounds,
    #[error("--deadline must be a positive number of seconds, got {0}")]
    BadDeadline(f64),
    #[error("--precision must be a percentage above 0 and below 100, got {0}")]
    BadPrecision(f64),
    #[error("{0}")]
    Exec(String),
    #[error("--env was given but names no environment: choose from native, container, runc, crun, runsc, vm, oci:PATH (comma-separated), or leave --env out for all available")]
    EmptyEnv,
    #[error("--workload was given but names no workload: give names or globs (e.g. cpu.int,'mem.*'; see `isobench info`), or leave --workload out for all")]
    EmptyWorkload,
    /// `--cpu N` names a CPU this process may not use (checked when the run starts).
    #[error(
        "--cpu {cpu}: isobench may only use CPU(s) {allowed}: choose one of them, or --cpu none"
    )]
    CpuNotAllowed { cpu: usize, allowed: String },
}

mod env_options;
mod exec;
mod parse;
pub use env_options::{Caps, ContainerOptions, GuestPageSize, Seccomp, Thp, Upper, VmOptions};
pub use exec::ExecOptions;
pub use parse::{
    parse_cpu_choice, parse_duration, parse_injection, parse_isa_tier, parse_label, parse_size,
    parse_threads,
};

/// Everything `isobench run` accepts, as the user typed it (after parsing).
#[derive(Args, Clone, Debug)]
pub struct RunOptions {
    /// Environments, comma-separated: native, container, runc, crun, runsc, vm, or oci:PATH
    /// (any OCI runtime binary). `native` also runs a second native instance, `native-b`, as
    /// the A/A noise floor. [default: all available; runtimes that do not work here are
    /// skipped with their reason]
    #[arg(long, value_delimiter = ',', value_name = "ENV,...")]
    pub env: Vec<String>,

    /// Workloads, comma-separated names or globs (`mem.*`); see `isobench info`. `start`
    /// is the launch-to-first-instruction time of each environment. [default: all]
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub workload: Vec<String>,

    /// Time for the whole measurement (warm-up included), e.g. 90s, 3m, 1h: the blocks go
    /// where the intervals are widest, and the run stops early when every estimate has
    /// reached --precision. [default: 3m quick, 30m full]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "rounds")]
    pub budget: Option<Duration>,

    /// Precision target in percent: the 95% interval half-width every overhead (and the A/A
    /// floor) should reach within the budget.
    #[arg(long, value_name = "PERCENT", default_value_t = 1.0)]
    pub precision: f64,

    /// A fixed design instead of a budget: exactly N measured blocks per workload (a block is
    /// the workload once in every environment, back to back). Verdicts need at least 5.
    #[arg(long, value_name = "N")]
    pub rounds: Option<u32>,

    /// Warm-up blocks per workload, run first and discarded. [default: 2]
    #[arg(long, value_name = "N")]
    pub warmup: Option<u32>,

    /// The CPU every measured instance runs on (the vm's vCPU included); the harness runs on
    /// the others. `none` pins nothing. [default: the last CPU isobench may use, when it may
    /// use two or more]
    #[arg(long, value_name = "N|none", value_parser = parse_cpu_choice, default_value = "auto")]
    pub cpu: CpuChoice,

    /// Validation only: make ENV's timed cycles PERCENT slower (e.g. container=2), to check
    /// that isobench finds a known slowdown on this machine. Recorded in run.json.
    #[arg(long, value_name = "ENV=PERCENT", value_parser = parse_injection, hide = true)]
    pub inject_slowdown: Option<Injection>,

    /// Small sizes: the whole catalogue in a few minutes (the default).
    #[arg(long, conflicts_with = "full")]
    pub quick: bool,

    /// Sizes that follow the benchmarks' own rules (STREAM arrays ≥ 4× LLC); much slower.
    #[arg(long)]
    pub full: bool,

    /// Seed for the round order and the workloads' data. [default: random, recorded]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Directory the run directory is created in. `-` writes the run as one gzip tarball
    /// to stdout instead (as `isobench pack` would; the table goes to stderr).
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

    /// When a workload fails in an environment (crash, guest fault, deadline, wrong
    /// checksum, full scratch disk), record the failure, drop that workload from the rest of
    /// the run (its complete blocks are kept), start the environment again and go on with
    /// the others; the run still ends failed (exit 1), naming each failure. With `exec`, a
    /// failed sample of the command (non-zero exit, a metric not printed) is also recorded
    /// and the command goes on.
    #[arg(long)]
    pub keep_going: bool,

    /// Longest one invocation may run before it is stopped as a runaway, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub deadline: f64,

    /// ISA tier of the vector kernels (cpu.fp, mem.stream): sse2, avx2 (AVX2+FMA), avx512,
    /// or best, the highest tier every selected environment runs here (`isobench info` lists
    /// them per environment). Every environment runs the same tier: a run never compares
    /// different tiers.
    #[arg(long, value_name = "TIER", value_parser = isa::parse_choice, default_value = "best")]
    pub isa: IsaChoice,

    /// mem.stream's copy stores: auto, as glibc's memcpy (what gcc makes of stream.c's copy
    /// loop) would for the size each thread copies on this host (non-temporal at or above
    /// glibc's threshold, cached below); cached; or nt. run.json's mem.stream.copy says which
    /// ran and why.
    #[arg(long, value_name = "KIND", value_parser = stream_copy::parse_choice, default_value = "auto")]
    pub stream_copy: CopyChoice,

    /// Run cpu.int, cpu.fp and mem.stream on N threads natively, in the container and under
    /// the OCI runtimes (one per CPU, pinned; gVisor's sandbox gets the CPUs as its cpuset),
    /// on N vCPUs in the vm: the work is split between them and timed from the first
    /// thread's start to the last one's end. The other workloads run on one thread. At most
    /// the CPUs isobench may use.
    #[arg(long, value_name = "N", value_parser = parse_threads, default_value_t = 1)]
    pub threads: u32,

    #[command(flatten)]
    pub container: ContainerOptions,

    #[command(flatten)]
    pub vm: VmOptions,

    /// A label recorded in run.json (`labels`), e.g. `--label pool=gpu --label
    /// instance=m5.large`: what `isobench merge` shows per host. Repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

/// Which CPU the measured instances run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuChoice {
    /// The last CPU isobench may use, when it may use two or more; otherwise none.
    Auto,
    /// No pinning.
    None,
    /// This CPU.
    Cpu(usize),
}

impl CpuChoice {
    /// The option's value as typed and as recorded.
    pub fn name(self) -> String {
        match self {
            CpuChoice::Auto => "auto".into(),
            CpuChoice::None => "none".into(),
            CpuChoice::Cpu(n) => n.to_string(),
        }
    }
}

/// A synthetic slowdown of one environment (`--inject-slowdown`).
#[derive(Clone, Debug, PartialEq)]
pub struct Injection {
    pub env: String,
    /// Fraction (0.02 = 2% slower).
    pub fraction: f64,
}

/// How many blocks each workload gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Design {
    /// Exactly this many measured blocks per workload (`--rounds`).
    Fixed { blocks: u32 },
    /// As many as the budget allows, where the intervals are widest, stopping early when
    /// every estimate reaches `precision` (95% half-width, fraction).
    Budget { budget: Duration, precision: f64 },
}

impl Design {
    /// The measured blocks every workload gets at least.
    pub fn min_blocks(self) -> u32 {
        match self {
            Design::Fixed { blocks } => blocks,
            Design::Budget { .. } => MIN_BLOCKS,
        }
    }
}

/// Measured blocks every workload gets under a budget before the scheduler picks by
/// precision (enough for a verdict and a first estimate of the spread).
pub const MIN_BLOCKS: u32 = 10;

/// Measured blocks a one-operation task (`start`, `io.seq`, `io.rand`, `mem.touch`) takes
/// under a budget: its samples are long or its effects large, and more blocks would buy
/// little precision for much time.
pub const ONE_OPERATION_BLOCKS: u32 = 30;

/// A validated run plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Environment kinds in isolation order (native first when present).
    pub envs: Vec<EnvKind>,
    /// Whether the user named the environments (otherwise: all available).
    pub envs_explicit: bool,
    pub workloads: Vec<&'static Workload>,
    /// Whether the `start` pseudo-workload was selected.
    pub start: bool,
    pub profile: Profile,
    pub design: Design,
    /// Warm-up blocks per workload.
    pub warmup: u32,
    pub seed: u64,
    pub cpu: CpuChoice,
    pub inject: Option<Injection>,
    /// Margin of the verdicts, as a fraction (0.01 = 1%).
    pub margin: f64,
    pub out: PathBuf,
    pub scratch: Option<PathBuf>,
    pub strict: bool,
    /// `--keep-going`: a failed workload is dropped and the run goes on.
    pub keep_going: bool,
    pub deadline: Duration,
    /// `--isa`: resolved to one tier once the environments are known (`session`).
    pub isa: IsaChoice,
    /// `--threads`: threads (vCPUs) of the splitting workloads.
    pub threads: u32,
    /// `--stream-copy`: resolved per run against this host's glibc (`session`).
    pub stream_copy: CopyChoice,
    pub container: ContainerOptions,
    /// The vm's options; `vm.thp` applies to every environment's working memory.
    pub vm: VmOptions,
    /// `isobench exec`: the user's command, the run's only workload.
    pub exec: Option<crate::workload::command::CommandWorkload>,
    /// `isobench exec --rootfs`: the command container's lower layer (default: `/`).
    pub exec_rootfs: Option<PathBuf>,
    /// `--label KEY=VALUE` pairs, recorded in `run.json` (a repeated key keeps the last).
    pub labels: BTreeMap<String, String>,
    /// The runtime binary of `--env oci:PATH`.
    pub oci_path: Option<PathBuf>,
}

/// Resolve workload names and globs into catalogue entries (and whether `start` is in).
pub fn select_workloads(patterns: &[String]) -> Result<(Vec<&'static Workload>, bool), PlanError> {
    let catalogue = workload::catalogue();
    if patterns.is_empty() {
        return Ok((catalogue.iter().collect(), true));
    }
    if patterns.iter().all(|p| p.trim().is_empty()) {
        return Err(PlanError::EmptyWorkload);
    }
    let mut chosen = vec![false; catalogue.len()];
    let mut start = false;
    for p in patterns.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let pat = glob::Pattern::new(p).map_err(|e| PlanError::BadPattern {
            pattern: p.into(),
            reason: e.to_string(),
        })?;
        let mut any = false;
        for (i, w) in catalogue.iter().enumerate() {
            if pat.matches(w.name) {
                chosen[i] = true;
                any = true;
            }
        }
        if pat.matches(START) {
            start = true;
            any = true;
        }
        if !any {
            let mut known: Vec<&str> = catalogue.iter().map(|w| w.name).collect();
            known.push(START);
            return Err(PlanError::NoWorkloadMatches {
                pattern: p.into(),
                known: known.join(", "),
            });
        }
    }
    Ok((
        catalogue
            .iter()
            .zip(chosen)
            .filter(|(_, c)| *c)
            .map(|(w, _)| w)
            .collect(),
        start,
    ))
}

/// A verdict margin given in percent, checked.
pub fn margin_fraction(percent: f64) -> Result<f64, PlanError> {
    if percent.is_finite() && percent > 0.0 && percent < 100.0 {
        Ok(percent / 100.0)
    } else {
        Err(PlanError::BadMargin(percent))
    }
}

impl RunOptions {
    pub fn profile(&self) -> Profile {
        if self.full {
            Profile::Full
        } else {
            Profile::Quick
        }
    }

    /// Check everything and resolve the defaults (the seed included) into a plan.
    pub fn plan(&self) -> Result<Plan, PlanError> {
        let mut envs = Vec::new();
        let mut oci_path: Option<PathBuf> = None;
        for name in self.env.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let kind = match name.strip_prefix("oci:") {
                Some(path) => {
                    if path.is_empty() || oci_path.as_deref().is_some_and(|p| p != Path::new(path))
                    {
                        return Err(PlanError::BadOciEnv(name.into()));
                    }
                    oci_path = Some(PathBuf::from(path));
                    EnvKind::Oci
                }
                None if name == "oci" => return Err(PlanError::BadOciEnv(name.into())),
                None => {
                    EnvKind::from_name(name).ok_or_else(|| PlanError::UnknownEnv(name.into()))?
                }
            };
            if !envs.contains(&kind) {
                envs.push(kind);
            }
        }
        let envs_explicit = !envs.is_empty();
        if !self.env.is_empty() && !envs_explicit {
            return Err(PlanError::EmptyEnv);
        }
        if !envs_explicit {
            envs = EnvKind::defaults().collect();
        }
        envs.sort();
        let (workloads, start) = select_workloads(&self.workload)?;
        let profile = self.profile();
        let design = match self.rounds {
            Some(0) => return Err(PlanError::NoRounds),
            Some(blocks) => Design::Fixed { blocks },
            None => Design::Budget {
                budget: self.budget.unwrap_or(match profile {
                    Profile::Quick => Duration::from_secs(180),
                    Profile::Full => Duration::from_secs(1800),
                }),
                precision: if self.precision.is_finite()
                    && self.precision > 0.0
                    && self.precision < 100.0
                {
                    self.precision / 100.0
                } else {
                    return Err(PlanError::BadPrecision(self.precision));
                },
            },
        };
        let margin = margin_fraction(self.margin)?;
        if !(self.deadline.is_finite() && self.deadline > 0.0) {
            return Err(PlanError::BadDeadline(self.deadline));
        }
        Ok(Plan {
            envs,
            envs_explicit,
            workloads,
            start,
            profile,
            design,
            warmup: self.warmup.unwrap_or(2),
            seed: self.seed.unwrap_or_else(rand::random),
            cpu: self.cpu,
            inject: self.inject_slowdown.clone(),
            margin,
            out: self.out.clone(),
            scratch: self.scratch.clone(),
            strict: self.strict,
            keep_going: self.keep_going,
            deadline: Duration::from_secs_f64(self.deadline),
            isa: self.isa,
            threads: self.threads,
            stream_copy: self.stream_copy,
            container: self.container.clone(),
            vm: self.vm,
            exec: None,
            exec_rootfs: None,
            labels: self.labels.iter().cloned().collect(),
            oci_path,
        })
    }
}

impl Plan {
    /// The location estimator of the paired log ratios for runs of this isobench: the 20%
    /// trimmed mean (docs/METHODOLOGY.md, "The overhead estimate").
    pub fn estimator(&self) -> Estimator {
        Estimator::BLOCKS_DEFAULT
    }

    /// Workload names in plan order, `start` last when selected, the command's last.
    pub fn workload_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.workloads.iter().map(|w| w.name.to_string()).collect();
        if self.start {
            v.push(START.into());
        }
        if let Some(c) = &self.exec {
            v.push(c.name.clone());
        }
        v
    }

    /// The command container's read-only lower layer: `--rootfs`, or the host's `/`.
    pub fn exec_rootfs(&self) -> PathBuf {
        self.exec_rootfs
            .clone()
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    /// The environment options as recorded in `run.json` (`config.options`): each typed
    /// option under its own name, its value the word the user types for it.
    pub fn recorded_options(&self) -> BTreeMap<String, String> {
        let c = &self.container;
        let or = |v: Option<String>, none: &str| v.unwrap_or_else(|| none.to_string());
        let mut o = BTreeMap::from([
            (
                "container.cpus".into(),
                or(c.cpus.map(|v| v.to_string()), "unlimited"),
            ),
            (
                "container.memory_bytes".into(),
                or(c.memory.map(|v| v.to_string()), "unlimited"),
            ),
            ("container.cpuset".into(), or(c.cpuset.clone(), "all")),
            (
                "container.io_weight".into(),
                or(c.io_weight.map(|v| v.to_string()), "default"),
            ),
            ("container.upper".into(), c.upper.name().into()),
            ("container.seccomp".into(), c.seccomp.name().into()),
            ("container.caps".into(), c.caps.name().into()),
            ("vm.guest_page".into(), self.vm.guest_page.name().into()),
            ("thp".into(), self.vm.thp.name().into()),
            ("deadline_s".into(), self.deadline.as_secs_f64().to_string()),
            ("threads".into(), self.threads.to_string()),
            ("stream_copy".into(), self.stream_copy.name().into()),
            (
                "isa_requested".into(),
                match self.isa {
                    IsaChoice::Best => "best".into(),
                    IsaChoice::Tier(t) => t.name().into(),
                },
            ),
        ]);
        if self.vm.vm_host_isa {
            o.insert("vm.host_isa".into(), "yes".into());
        }
        if let Some(t) = self.vm.vm_max_isa {
            o.insert("vm.max_isa".into(), t.name().into());
        }
        match self.design {
            Design::Fixed { blocks } => {
                o.insert("design".into(), "fixed".into());
                o.insert("blocks".into(), blocks.to_string());
            }
            Design::Budget { budget, precision } => {
                o.insert("design".into(), "budget".into());
                o.insert("budget_s".into(), budget.as_secs_f64().to_string());
                o.insert("precision_pct".into(), (precision * 100.0).to_string());
                o.insert("min_blocks".into(), MIN_BLOCKS.to_string());
                o.insert(
                    "one_operation_blocks".into(),
                    ONE_OPERATION_BLOCKS.to_string(),
                );
            }
        }
        o.insert("warmup_blocks".into(), self.warmup.to_string());
        o.insert("estimator".into(), self.estimator().name());
        if let Some(c) = &self.exec {
            o.insert("exec.command".into(), c.command_line());
            o.insert("exec.cwd".into(), c.spec.cwd.display().to_string());
            o.insert(
                "exec.env".into(),
                c.spec
                    .env
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            );
            o.insert(
                "exec.metrics".into(),
                c.metrics
                    .iter()
                    .map(|m| {
                        let how = match &m.source {
                            crate::workload::command::Source::Regex(r) => {
                                format!("regex {}", r.as_str())
                            }
                            crate::workload::command::Source::Json(p) => {
                                format!("json {}", p.join("."))
                            }
                        };
                        format!("{} ({how}, {} is better)", m.name, m.better.as_str())
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            o.insert("exec.setup".into(), c.spec.setup.join(" && "));
            o.insert(
                "exec.rootfs".into(),
                self.exec_rootfs().display().to_string(),
            );
            o.insert("exec.keep_going".into(), c.keep_going.to_string());
            o.insert(
                "exec.output_cap_bytes".into(),
                c.spec.output_cap.to_string(),
            );
        }
        if let Some(i) = &self.inject {
            o.insert(
                "inject_slowdown".into(),
                format!("{}={}%", i.env, i.fraction * 100.0),
            );
        }
        o
    }
}

#[cfg(test)]
mod tests;
