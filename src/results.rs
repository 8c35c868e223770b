//! The result files of one run (DESIGN §7): the data model of `run.json`, `samples.csv` and
//! `summary.csv`, and writing them safely (atomic replace; samples appended and flushed as
//! rounds finish, so an interrupted run keeps what it measured).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the result file formats. Bump on any incompatible change; readers refuse
/// other versions with a message naming both.
pub const SCHEMA_VERSION: u32 = 1;

/// One row of `samples.csv`: one metric of one invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    /// Measured round, from 0 (warm-up rounds are not recorded).
    pub round: u32,
    /// Environment label: `native`, `native-b`, `container`, `vm`.
    pub env: String,
    /// Stable workload name (`cpu.int`, `start`).
    pub workload: String,
    /// Metric name within the workload; `counter.*` rows are accounting, not performance.
    pub metric: String,
    pub value: f64,
    pub unit: String,
    /// `higher` or `lower` is better; empty for counters.
    pub better: String,
    /// TSC cycles of the invocation's timed region (as measured inside the image).
    pub cycles: u64,
    /// Host wall-clock nanoseconds around the whole invocation.
    pub wall_ns: u64,
}

impl SampleRow {
    pub fn is_counter(&self) -> bool {
        self.metric.starts_with("counter.")
    }
}

/// One row of `summary.csv`: simple summaries per (environment, workload, metric).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub env: String,
    pub workload: String,
    pub metric: String,
    pub unit: String,
    pub better: String,
    pub n: usize,
    pub median: f64,
    /// Median absolute deviation (unscaled).
    pub mad: f64,
    pub min: f64,
    pub max: f64,
    /// This environment's median over native's median (empty when there is no native).
    pub ratio_to_native: Option<f64>,
}

/// Facts about the host, recorded so that runs can be compared later.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    pub hostname: String,
    pub cpu_model: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    /// `kvm_intel`, `kvm_amd`, `kvm_pvm`, or `none`.
    pub kvm_flavour: String,
    /// Whether this host is itself a virtual machine (CPUID hypervisor bit).
    pub virtualized: bool,
    /// `v1`, `v2` or `hybrid`.
    pub cgroup_version: String,
    /// `/sys/kernel/mm/transparent_hugepage/enabled`, the selected value.
    pub thp: String,
    pub clocksource: String,
    /// TSC frequency used to convert cycles, in Hz, and where it came from.
    pub tsc_hz: f64,
    pub tsc_source: String,
}

/// The image a run used.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageFacts {
    pub sha256: String,
    pub size_bytes: u64,
    pub load_address: String,
}

/// One environment of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvRecord {
    pub label: String,
    /// `native`, `container` or `vm`.
    pub kind: String,
    /// `ran`, `skipped` or `failed`.
    pub status: String,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// SHA-256 of the image bytes this environment ran (must equal `image.sha256`).
    pub image_sha256: String,
    /// Environment facts (limits, page sizes, THP, cgroup version...).
    pub facts: BTreeMap<String, String>,
}

/// The run configuration as given and as resolved (seed included).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub environments: Vec<String>,
    pub workloads: Vec<String>,
    pub profile: String,
    pub rounds: u32,
    pub warmup: u32,
    pub seed: u64,
    pub scratch: String,
    pub command_line: Vec<String>,
    /// Environment-specific options (`cpus`, `memory`, `guest_page`, ...).
    pub options: BTreeMap<String, String>,
}

/// `run.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFile {
    pub schema_version: u32,
    pub isobench_version: String,
    pub git_commit: String,
    pub run_id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `complete`, `interrupted` or `failed`.
    pub outcome: String,
    pub host: HostFacts,
    pub config: RunConfig,
    pub image: ImageFacts,
    pub environments: Vec<EnvRecord>,
    pub summaries: Vec<SummaryRow>,
    /// Problems met during the run that did not stop it.
    pub warnings: Vec<String>,
}
