//! Environments: where the workload image runs. One trait, one implementation per
//! environment; the plan, the statistics and the reports never know which one produced a
//! sample (docs/ARCHITECTURE.md, "Adding an environment").

pub mod affinity;
pub mod container;
pub mod exec;
/// Test support for integration tests (the `testing` feature, which `cargo test` enables).
#[cfg(feature = "testing")]
pub mod fake;
pub mod interference;
pub mod native;
pub mod oci;
pub mod process;
pub mod runner;
pub mod threads;
pub mod vm;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::image::{Invocation, RawRun};
pub use crate::results::{EnvKind, INSTANCE_FACT_PREFIX};

/// What one environment instance needs to provide, fixed for the whole run.
#[derive(Clone, Debug)]
pub struct InstanceSpec {
    /// Bytes of working memory to map at `WORK_BASE` (the largest any selected workload needs).
    pub work_size: u64,
    /// Bytes of scratch disk the IO workloads may use (0: no disk).
    pub disk_size: u64,
    /// This run's host scratch directory; the environment creates its own entries under it
    /// and removes them in `stop`.
    pub scratch: PathBuf,
    /// Longest one invocation may run before it is stopped as a runaway.
    pub deadline: Duration,
    /// Back the working memory with transparent huge pages (`madvise(MADV_HUGEPAGE)`), or
    /// forbid them (`MADV_NOHUGEPAGE`). The same for every environment, so that the
    /// comparison is like for like.
    pub thp: bool,
    /// The CPU every measuring thread of the instance runs on: the runner process (native,
    /// container) or the thread that runs `KVM_RUN` (vm), so that unequal vCPUs of a cloud
    /// host do not mix in one sample. `None`: no pinning, the scheduler places them.
    pub cpu: Option<usize>,
    /// Threads (native, container) or vCPUs (vm) the splitting workloads run on
    /// (`--threads`; 1: one). See [`threads`].
    pub threads: u32,
    /// The CPU of each thread, thread 0's (`cpu`) first; empty when not pinned.
    pub thread_cpus: Vec<usize>,
}

/// The `cpu` fact of an environment: the CPU its measuring thread was pinned to, or `none`.
pub fn cpu_fact(cpu: Option<usize>) -> String {
    cpu.map_or_else(|| "none".to_string(), |c| c.to_string())
}

/// Why an environment could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The environment cannot run on this machine at all; the run skips it (or fails with
    /// `--strict`).
    #[error("the {env} environment is not available here: {reason}")]
    Unavailable { env: String, reason: String },
    /// Setting up or tearing down the environment failed.
    #[error("{env}: {op} failed: {source}")]
    Setup {
        env: String,
        op: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The workload died: a signal natively, a guest fault in the vm.
    #[error("workload {workload} crashed in the {env} environment: {detail}")]
    Crashed {
        env: String,
        workload: String,
        detail: String,
    },
    /// The workload ran past its deadline and was stopped.
    #[error("workload {workload} in the {env} environment ran longer than {deadline:?} and was stopped (a runaway loop, or raise --deadline)")]
    Deadline {
        env: String,
        workload: String,
        deadline: Duration,
    },
    /// The image returned an error status.
    #[error("workload {workload} in the {env} environment returned status {status}: {meaning}")]
    Status {
        env: String,
        workload: String,
        status: u32,
        meaning: String,
    },
}

impl EnvError {
    pub fn setup(
        env: &str,
        op: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        EnvError::Setup {
            env: env.to_string(),
            op: op.into(),
            source: source.into(),
        }
    }
}

/// A human meaning for an image status code.
pub fn status_meaning(status: u32) -> &'static str {
    use isobench_abi::*;
    match status {
        STATUS_OK => "ok",
        STATUS_BAD_MAGIC => "control block has a bad magic (harness/image mismatch)",
        STATUS_BAD_VERSION => "control block ABI version differs from the image's",
        STATUS_UNKNOWN_WORKLOAD => "the image does not know this workload",
        STATUS_BAD_PARAMS => "the image rejected the workload parameters",
        STATUS_HOSTCALL_FAILED => "a hostcall failed (results[15] holds the status)",
        STATUS_ISA_UNAVAILABLE => "the requested ISA tier cannot run in this environment: its CPUID lacks a feature or XCR0 lacks the register state (choose a lower --isa, or best)",
        STATUS_RUNNING => "the image never finished (status still RUNNING)",
        _ => "unknown status",
    }
}

/// Where the workload image runs.
///
/// Lifecycle: `start` once per run (creates the persistent instance: process, container or
/// VM, with its working memory), then any number of `invoke`s, then `stop` (also on error;
/// implementations must undo everything they created in `stop` and in `Drop`).
pub trait Environment {
    /// The label in results: `native`, `native-b`, `container`, `vm`, or a runtime's name.
    fn label(&self) -> &str;
    fn kind(&self) -> EnvKind;
    /// Create the persistent instance.
    fn start(&mut self, spec: &InstanceSpec) -> Result<(), EnvError>;
    /// Run one invocation on the instance. A crash or deadline leaves the instance stopped;
    /// the caller may `start` it again.
    fn invoke(&mut self, inv: &Invocation) -> Result<RawRun, EnvError>;
    /// Launch a fresh, separate instance, run `WL_START` in it and return the time from launch
    /// to the image's first instruction in TSC cycles, then tear it down.
    fn measure_start(&mut self, spec: &InstanceSpec) -> Result<u64, EnvError>;
    /// Facts about this environment for `run.json` (limits, page sizes, cgroup version, ...).
    /// Keys starting with [`INSTANCE_FACT_PREFIX`] name this run's own objects (cgroup paths
    /// with a PID in them): recorded, but not compared between runs.
    fn facts(&self) -> BTreeMap<String, String>;
    /// Tear the instance down, removing everything it created.
    fn stop(&mut self) -> Result<(), EnvError>;
    /// The image bytes as loaded in the running instance (read back from the runner's or the
    /// guest's memory at `IMAGE_BASE`), so a run can prove every environment ran the same
    /// bytes. `None` when this environment cannot read them back (or is not started).
    fn loaded_image(&self) -> Option<std::io::Result<Vec<u8>>> {
        None
    }
    /// Run one sample of a user's command (`isobench exec`) in the started instance. Only
    /// the command environments (`exec.rs`, `container/exec.rs`) can.
    fn run_command(
        &mut self,
        _cmd: &crate::workload::command::CommandSpec,
    ) -> Result<crate::workload::command::CommandRun, EnvError> {
        Err(EnvError::setup(
            self.label(),
            "running a command",
            "this instance runs the workload image; commands run in the environments `isobench exec` builds",
        ))
    }
    /// The ISA tiers the image can run in this environment (`--isa`). A process on this
    /// host (native, container) runs what the host's CPU and kernel offer; the vm overrides
    /// this with what its guest CPUID and XCR0 offer.
    fn isa_tiers(&mut self) -> Result<Vec<crate::workload::isa::Isa>, EnvError> {
        Ok(crate::workload::isa::Isa::host_tiers())
    }
}

/// Why an environment kind cannot run on this machine, if it cannot. An OCI runtime is
/// probed by running a minimal container; `oci` needs its binary ([`probe_planned`]).
pub fn probe(kind: EnvKind) -> Result<(), String> {
    probe_with(kind, None)
}

/// [`probe`] for the environments of `plan` (the `oci:PATH` binary comes from it).
pub fn probe_planned(kind: EnvKind, plan: &crate::plan::Plan) -> Result<(), String> {
    probe_with(kind, plan.oci_path.as_deref())
}

fn probe_with(kind: EnvKind, oci_path: Option<&std::path::Path>) -> Result<(), String> {
    match kind {
        EnvKind::Native => Ok(()),
        EnvKind::Container => container::Container::probe(),
        EnvKind::Vm => vm::Vm::probe(),
        EnvKind::Runc | EnvKind::Crun | EnvKind::Runsc | EnvKind::Oci => {
            oci::probe(&oci::runtime_for(kind, oci_path)?)
        }
    }
}

/// Build the environment `kind` labelled `label`, configured from the plan.
pub fn build(
    kind: EnvKind,
    label: &str,
    plan: &crate::plan::Plan,
) -> Result<Box<dyn Environment>, EnvError> {
    Ok(match kind {
        EnvKind::Native => Box::new(native::Native::new(label)),
        EnvKind::Vm => Box::new(vm::Vm::new(label, plan.vm)),
        EnvKind::Container => Box::new(container::Container::new(label, plan.container.clone())),
        EnvKind::Runc | EnvKind::Crun | EnvKind::Runsc | EnvKind::Oci => {
            let runtime = oci::runtime_for(kind, plan.oci_path.as_deref()).map_err(|reason| {
                EnvError::Unavailable {
                    env: label.to_string(),
                    reason,
                }
            })?;
            Box::new(oci::Oci::new(label, kind, runtime, plan.container.clone()))
        }
    })
}

/// Median microseconds of `n` calls of `f`: the cost tests of the pinning and the
/// interference reads print it.
#[cfg(test)]
pub(crate) fn median_us(mut f: impl FnMut(), n: usize) -> f64 {
    let mut t: Vec<f64> = (0..n)
        .map(|_| {
            let t0 = std::time::Instant::now();
            f();
            t0.elapsed().as_nanos() as f64 / 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[n / 2]
}
