//! The typed results model: what `run.json`, `samples.csv` and `summary.csv` hold, and the
//! identity of environments in them (their kind, their labels and the one order they are
//! shown in). The file formats are described in `docs/ARCHITECTURE.md` ("Results").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::Better;
use crate::workload::Profile;

/// Version of the result file formats. Bump on any incompatible change; readers refuse
/// other versions with a message naming both.
///
/// 2: samples are taken in blocks (a workload in every environment back to back) and
/// `round` numbers a workload's blocks; `run.json` has `measurement`. Version 1 files (one
/// round = the whole catalogue once) read the same way: pairing by round is pairing by
/// block.
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest schema version this isobench still reads.
pub const OLDEST_READABLE_SCHEMA: u32 = 1;

/// The label of the reference environment every overhead is measured against.
pub const NATIVE: &str = "native";
/// The label of the second native instance: the A/A noise floor.
pub const NATIVE_B: &str = "native-b";

/// Prefix of environment facts that identify one instance rather than a configuration
/// (cgroup paths with a PID in them): recorded, but not compared between runs.
pub const INSTANCE_FACT_PREFIX: &str = "instance.";

/// The kinds of environment isobench knows, in order of isolation strength.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EnvKind {
    #[default]
    Native,
    Container,
    /// OCI runtimes (docs/RUNTIMES.md): runc, crun, a binary given as `oci:PATH`, gVisor.
    Runc,
    Crun,
    Oci,
    Runsc,
    Vm,
}

impl EnvKind {
    pub const ALL: [EnvKind; 7] = [
        EnvKind::Native,
        EnvKind::Container,
        EnvKind::Runc,
        EnvKind::Crun,
        EnvKind::Oci,
        EnvKind::Runsc,
        EnvKind::Vm,
    ];

    /// The kinds of a run that names none: all but `oci`, which needs a binary's path.
    pub fn defaults() -> impl Iterator<Item = EnvKind> {
        EnvKind::ALL.into_iter().filter(|k| *k != EnvKind::Oci)
    }

    pub fn name(self) -> &'static str {
        match self {
            EnvKind::Native => "native",
            EnvKind::Container => "container",
            EnvKind::Runc => "runc",
            EnvKind::Crun => "crun",
            EnvKind::Oci => "oci",
            EnvKind::Runsc => "runsc",
            EnvKind::Vm => "vm",
        }
    }

    pub fn from_name(s: &str) -> Option<EnvKind> {
        EnvKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The labels of the instances of this kind in a run: native runs twice (`native` and
    /// the A/A pair `native-b`), every other kind once, under its own name.
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            EnvKind::Native => &[NATIVE, NATIVE_B],
            EnvKind::Container => &["container"],
            EnvKind::Runc => &["runc"],
            EnvKind::Crun => &["crun"],
            EnvKind::Oci => &["oci"],
            EnvKind::Runsc => &["runsc"],
            EnvKind::Vm => &["vm"],
        }
    }
}

/// The position of an environment label in every table, chart and file: native, native-b,
/// then by isolation strength (container, runc, crun, oci, runsc, vm); labels isobench does not know come last.
/// This is the one ordering of environments; sort with [`order_labels`].
pub fn label_rank(label: &str) -> usize {
    EnvKind::ALL
        .iter()
        .flat_map(|k| k.labels().iter())
        .position(|l| *l == label)
        .unwrap_or(usize::MAX)
}

/// Labels in the one order of [`label_rank`] (unknown labels alphabetically at the end),
/// without duplicates.
pub fn order_labels<'a>(labels: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = labels.into_iter().map(str::to_string).collect();
    v.sort_by(|a, b| (label_rank(a), a).cmp(&(label_rank(b), b)));
    v.dedup();
    v
}

/// The typed fields print as the word stored in the files.
macro_rules! display_by_name {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    )*};
}
display_by_name!(EnvKind, EnvStatus, Outcome);

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
    /// `higher` or `lower` is better; empty (`None`) for counters.
    #[serde(with = "better_word")]
    pub better: Option<Better>,
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
    /// As in `samples.csv`: empty for counters.
    #[serde(with = "better_word")]
    pub better: Option<Better>,
    pub n: usize,
    pub median: f64,
    /// Median absolute deviation (unscaled).
    pub mad: f64,
    pub min: f64,
    pub max: f64,
    /// This environment's median over native's median (empty when there is no native).
    pub ratio_to_native: Option<f64>,
}

/// The `better` field in every file (CSV and JSON alike) is the word `higher` or `lower`,
/// or the empty string for counters, which have no direction.
mod better_word {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::stats::Better;

    pub fn serialize<S: Serializer>(b: &Option<Better>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => b.serialize(s),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Better>, D::Error> {
        let word = String::deserialize(d)?;
        match Better::parse(&word) {
            Some(b) => Ok(Some(b)),
            None if word.is_empty() => Ok(None),
            None => Err(serde::de::Error::custom(format!(
                "{word:?} is neither `higher` nor `lower` (nor empty, for a counter)"
            ))),
        }
    }
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
    /// Whether this host is a VM whose balloon reports free pages to its hypervisor
    /// (virtio-balloon free page reporting): page-cache pages reused after a few seconds
    /// free cost a fault in the hypervisor each (docs/METHODOLOGY.md, "IO on a VM that
    /// reports free pages"). Absent in runs before isobench recorded it.
    #[serde(default)]
    pub free_page_reporting: bool,
}

/// The image a run used.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageFacts {
    pub sha256: String,
    pub size_bytes: u64,
    pub load_address: String,
}

/// What became of one environment of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvStatus {
    /// Started and measured.
    #[default]
    Ran,
    /// Not available on this machine (the reason is recorded).
    Skipped,
    /// Failed to start, or the run failed while it was up.
    Failed,
}

impl EnvStatus {
    pub fn name(self) -> &'static str {
        match self {
            EnvStatus::Ran => "ran",
            EnvStatus::Skipped => "skipped",
            EnvStatus::Failed => "failed",
        }
    }
}

/// One environment of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvRecord {
    pub label: String,
    pub kind: EnvKind,
    pub status: EnvStatus,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// SHA-256 of the image bytes this environment ran (must equal `image.sha256`).
    pub image_sha256: String,
    /// Environment facts (limits, page sizes, THP, cgroup version...).
    pub facts: BTreeMap<String, String>,
}

/// The run configuration as given and as resolved (seed included).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub environments: Vec<EnvKind>,
    pub workloads: Vec<String>,
    pub profile: Profile,
    pub rounds: u32,
    pub warmup: u32,
    pub seed: u64,
    pub scratch: String,
    pub command_line: Vec<String>,
    /// The run options (`container.cpus`, `vm.guest_page`, ...), each as its typed value's
    /// serde name (see `plan::RunOptions::record`).
    pub options: BTreeMap<String, String>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            environments: Vec::new(),
            workloads: Vec::new(),
            profile: Profile::Quick,
            rounds: 0,
            warmup: 0,
            seed: 0,
            scratch: String::new(),
            command_line: Vec::new(),
            options: BTreeMap::new(),
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Still measuring (or killed before it could say otherwise: `run.json` is rewritten
    /// with the outcome when the run ends).
    #[default]
    Running,
    Complete,
    /// Stopped by Ctrl-C / SIGTERM; what was measured is kept.
    Interrupted,
    Failed,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Complete => "complete",
            Outcome::Interrupted => "interrupted",
            Outcome::Failed => "failed",
        }
    }
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
    pub outcome: Outcome,
    pub host: HostFacts,
    pub config: RunConfig,
    pub image: ImageFacts,
    pub environments: Vec<EnvRecord>,
    pub summaries: Vec<SummaryRow>,
    /// Problems met during the run that did not stop it.
    pub warnings: Vec<String>,
    /// How the measurement went (absent in version 1 files and before it ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<Measurement>,
    /// `run --label KEY=VALUE` pairs (node pool, instance type...); absent when none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `run --keep-going`: the workloads that failed in an environment and were dropped
    /// from the rest of the run (their complete blocks are in `samples.csv`); absent when
    /// none failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
}

/// A workload that failed in one environment and was dropped (`run --keep-going`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub workload: String,
    pub env: String,
    /// The error, with its causes, on one line.
    pub error: String,
}

/// How the measurement went: why it stopped, how long it took, how many blocks each
/// workload got.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// `fixed` (all blocks of `--rounds` taken), `reached` (every estimate met the
    /// precision target), `budget-spent`, or `interrupted`.
    pub stop: String,
    /// Seconds from the first warm-up block to the end.
    pub elapsed_s: f64,
    /// Measured blocks per workload.
    pub blocks: BTreeMap<String, u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_have_one_order() {
        assert_eq!(
            order_labels(["vm", "zz", "container", "native-b", "native", "aa", "vm"]),
            ["native", "native-b", "container", "vm", "aa", "zz"]
        );
        assert_eq!(
            order_labels(["vm", "runsc", "runc", "container", "native"]),
            ["native", "container", "runc", "runsc", "vm"]
        );
        let mut kinds = vec![EnvKind::Vm, EnvKind::Runsc, EnvKind::Runc, EnvKind::Native];
        kinds.sort();
        assert_eq!(
            kinds,
            [EnvKind::Native, EnvKind::Runc, EnvKind::Runsc, EnvKind::Vm]
        );
        assert_eq!(serde_json::to_string(&EnvKind::Runsc).unwrap(), "\"runsc\"");
        assert!(label_rank("native") < label_rank("native-b"));
    }

    #[test]
    fn typed_fields_keep_their_file_names() {
        assert_eq!(
            serde_json::to_string(&Outcome::Interrupted).unwrap(),
            "\"interrupted\""
        );
        assert_eq!(
            serde_json::to_string(&EnvStatus::Skipped).unwrap(),
            "\"skipped\""
        );
        assert_eq!(serde_json::to_string(&EnvKind::Vm).unwrap(), "\"vm\"");
        assert_eq!(serde_json::to_string(&Profile::Quick).unwrap(), "\"quick\"");
        for o in [
            Outcome::Running,
            Outcome::Complete,
            Outcome::Interrupted,
            Outcome::Failed,
        ] {
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.name())
            );
        }
    }
}
