//! The workload catalogue (docs/ARCHITECTURE.md, "Adding a workload"): stable names, parameters per profile, the
//! independent reference computation each checksum is verified against, and the metrics
//! derived from one invocation's raw output.
//!
//! The kernels themselves live in the freestanding image (`image/src/kernels/`); this module
//! is the harness's half of each workload's contract.

use isobench_abi::PARAM_COUNT;

use crate::image::{Invocation, RawRun};

/// How much work each workload does.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Small sizes: every workload in all three environments in a few minutes.
    Quick,
    /// Sizes that follow the benchmarks' own rules (STREAM: arrays ≥ 4× last-level cache).
    Full,
}

impl Profile {
    /// The profile's name as typed and as recorded (`quick`, `full`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Full => "full",
        }
    }
}

/// Whether a larger value of a metric is better (throughput) or worse (latency, time).
pub use crate::stats::Better;

/// One measured value of one invocation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metric {
    /// Stable metric name within the workload (`copy`, `ns_per_access@64KiB`, `read_p99_us`).
    pub name: String,
    pub value: f64,
    /// Unit as printed (`MB/s`, `GFLOP/s`, `ns`, `µs`, `IOPS`, `GUPS`).
    pub unit: String,
    pub better: Better,
}

/// A checksum that did not match its reference.
#[derive(Debug, thiserror::Error)]
#[error("workload {workload}: checksum mismatch: the image returned {got}, the reference computation expects {expected} (the kernel computed a wrong result, or skipped work)")]
pub struct ChecksumMismatch {
    pub workload: String,
    pub got: String,
    pub expected: String,
}

/// A workload ready to run: the invocation plus what it needs and what it must return.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub invocation: Invocation,
    /// Working memory the invocation uses, in bytes (from `WORK_BASE`).
    pub work_bytes: u64,
    /// Scratch disk the invocation uses, in bytes.
    pub disk_bytes: u64,
    /// Expected checksum (computed once, independently of the image).
    pub expected: Expected,
}

/// What the image's checksum is compared with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Expected {
    /// Bit-exact.
    Exact(u64),
    /// `f64::from_bits(checksum)` within a relative tolerance (STREAM-style validation).
    Approx { value: f64, rel_tol: f64 },
}

/// A workload definition in the catalogue.
#[derive(Debug)]
pub struct Workload {
    /// Stable name, the key in every result file.
    pub name: &'static str,
    /// `WL_*` id in the image.
    pub id: u32,
    /// One line for `--help` and reports.
    pub description: &'static str,
    /// Build the invocation for a profile and seed (may compute the reference checksum).
    pub prepare: fn(Profile, u64) -> Prepared,
    /// Verify the checksum and turn the raw output into metrics. `tsc_hz` converts cycles.
    pub interpret: fn(&Prepared, &RawRun, f64) -> Result<Vec<Metric>, ChecksumMismatch>,
}

/// Compare a checksum with its expectation.
pub fn check(name: &str, expected: Expected, got: u64) -> Result<(), ChecksumMismatch> {
    let ok = match expected {
        Expected::Exact(e) => e == got,
        Expected::Approx { value, rel_tol } => {
            let g = f64::from_bits(got);
            g.is_finite() && ((g - value).abs() <= rel_tol * value.abs().max(f64::MIN_POSITIVE))
        }
    };
    if ok {
        return Ok(());
    }
    let (got, expected) = match expected {
        Expected::Exact(e) => (format!("{got:#018x}"), format!("{e:#018x}")),
        Expected::Approx { value, rel_tol } => (
            format!("{}", f64::from_bits(got)),
            format!("{value} (±{rel_tol:e} relative)"),
        ),
    };
    Err(ChecksumMismatch {
        workload: name.into(),
        got,
        expected,
    })
}

/// Parameters helper: an array from a short slice.
pub fn params(p: &[u64]) -> [u64; PARAM_COUNT] {
    let mut a = [0; PARAM_COUNT];
    a[..p.len()].copy_from_slice(p);
    a
}

mod cpu_fp;
mod cpu_int;
pub mod gen;
mod io_rand;
mod io_seq;
pub mod latency;
mod mem_latency;
mod mem_random;
mod mem_stream;
mod mem_touch;
mod sys_call;

pub use latency::parse_percentile_metric;
pub use mem_latency::working_set_bytes;

/// Every workload, in report order.
pub fn catalogue() -> &'static [Workload] {
    static ALL: &[Workload] = &[
        cpu_int::WORKLOAD,
        cpu_fp::WORKLOAD,
        mem_stream::WORKLOAD,
        mem_random::WORKLOAD,
        mem_latency::WORKLOAD,
        mem_touch::WORKLOAD,
        io_seq::WORKLOAD,
        io_rand::WORKLOAD,
        sys_call::WORKLOAD,
    ];
    ALL
}

/// The pseudo-workload measuring launch-to-first-instruction of each environment: not a
/// kernel of the image, but listed and reported like one, after the catalogue.
pub const START: &str = "start";

/// The position of a workload name in every table and chart: catalogue order, then
/// `start`, then names isobench does not know.
pub fn rank(name: &str) -> usize {
    catalogue()
        .iter()
        .position(|w| w.name == name)
        .or_else(|| (name == START).then_some(catalogue().len()))
        .unwrap_or(usize::MAX)
}

/// Look a workload up by its stable name.
pub fn by_name(name: &str) -> Option<&'static Workload> {
    catalogue().iter().find(|w| w.name == name)
}
