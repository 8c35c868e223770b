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

/// How long one invocation should run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// Short invocations (tens of milliseconds) of many ~1 ms repetitions: the most
    /// precision per second of machine time.
    Short,
    /// At least ~350 ms (several 100 ms CFS periods) of timed work per invocation, so a
    /// container CPU quota (`--cpus`) cannot be escaped; the same repetitions, more of them.
    CfsSafe,
}

impl Span {
    /// The name recorded in `run.json` (`short`, `cfs-safe`).
    pub fn name(self) -> &'static str {
        match self {
            Span::Short => "short",
            Span::CfsSafe => "cfs-safe",
        }
    }
}

/// What a workload is prepared for: the problem sizes (the profile) and how long one
/// invocation runs (the span). Sizes are in work units, never measured time, so the same
/// sizing gives the same invocation in every environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizing {
    pub profile: Profile,
    pub span: Span,
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
    /// How long the invocation runs; under a CPU quota ([`Span::CfsSafe`]) the per-sample
    /// value is mean-based (see [`repeated`]).
    pub span: Span,
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
    /// Build the invocation for a sizing and seed (may compute the reference checksum).
    pub prepare: fn(Sizing, u64) -> Prepared,
    /// Verify the checksum and turn the raw output into metrics. `tsc_hz` converts cycles.
    pub interpret: fn(&Prepared, &RawRun, f64) -> Result<Vec<Metric>, ChecksumMismatch>,
    /// The representative metric for a profile: the one a scheduler targets and a headline
    /// shows (docs/METHODOLOGY.md, "Repetitions and the per-sample value"). A function of the
    /// profile because `mem.latency`'s largest working set depends on it.
    pub primary: fn(Profile) -> String,
    /// Whether one invocation is many short timed repetitions (a steady-state kernel whose
    /// precision more blocks buy), or one long operation (large sequential IO, a latency
    /// histogram of single operations, first touch) that keeps its own design.
    pub repeated: bool,
}

/// The suffix of a repeated metric's mean-based companion (`hash.mean`).
pub const MEAN_SUFFIX: &str = ".mean";

/// The name of the mean-based companion of the repeated metric `base` (`hash` → `hash.mean`).
pub fn mean_companion(base: &str) -> String {
    format!("{base}{MEAN_SUFFIX}")
}

/// The base metric of a mean-based companion (`hash.mean` → `hash`); `None` for any other
/// name. Name parsers strip it first, so a companion parses like its base.
pub fn mean_companion_of(metric: &str) -> Option<&str> {
    metric.strip_suffix(MEAN_SUFFIX).filter(|b| !b.is_empty())
}

/// The median of per-repetition cycle counts (the mean of the middle two for an even count);
/// 0 for none.
pub fn median_cycles(cycles: &[u64]) -> f64 {
    let mut s = cycles.to_vec();
    s.sort_unstable();
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2] as f64,
        n => (s[n / 2 - 1] as f64 + s[n / 2] as f64) / 2.0,
    }
}

/// A repeated metric and its mean-based companion from the cycles of its repetitions, each
/// of the same work (docs/METHODOLOGY.md, "Repetitions and the per-sample value").
/// `value` maps cycles per repetition to the metric's value; `name` gets the median
/// repetition's value, `name.mean` the value of the mean repetition (total work over total
/// cycles).
///
/// Under a CPU quota (`span` is [`Span::CfsSafe`]) `name` is the mean-based value too: a
/// repetition is far shorter than a CFS period, so the median repetition is one that ran
/// between two throttled stretches, and the time the quota takes away — the cost being
/// measured — would be left out.
pub fn repeated(
    span: Span,
    name: &str,
    unit: &str,
    better: Better,
    reps: &[u64],
    value: impl Fn(f64) -> f64,
) -> [Metric; 2] {
    let mean = reps.iter().sum::<u64>() as f64 / reps.len().max(1) as f64;
    let metric = |name: String, cycles: f64| Metric {
        name,
        value: value(cycles),
        unit: unit.into(),
        better,
    };
    let main = match span {
        Span::Short => median_cycles(reps),
        Span::CfsSafe => mean,
    };
    [
        metric(name.into(), main),
        metric(mean_companion(name), mean),
    ]
}

/// Insist on the number of records an invocation's params imply; the error says what they
/// were for, like a checksum mismatch (the image did not do the work it was asked for).
pub fn check_records(
    name: &str,
    raw: &RawRun,
    expected: u64,
    what: &str,
) -> Result<(), ChecksumMismatch> {
    if raw.records.len() as u64 == expected {
        return Ok(());
    }
    Err(ChecksumMismatch {
        workload: name.into(),
        got: format!("{} records", raw.records.len()),
        expected: format!("{expected} ({what})"),
    })
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

pub mod command;
mod cpu_fp;
mod cpu_int;
pub mod gen;
mod io_rand;
mod io_seq;
pub mod isa;
pub mod latency;
mod mem_latency;
mod mem_random;
mod mem_stream;
pub use mem_stream::array_bytes as stream_array_bytes;
pub use mem_stream::last_level_cache_bytes;
pub use mem_stream::set_copy as set_stream_copy;
mod mem_touch;
pub mod stream_copy;
mod sys_call;
pub mod threads;

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

/// A run of `p` as the image would return it, with `records` and the expected checksum:
/// the synthetic input of the workloads' `interpret` tests.
#[cfg(test)]
fn synthetic_run(p: &Prepared, records: Vec<u64>) -> RawRun {
    let checksum = match p.expected {
        Expected::Exact(e) => e,
        Expected::Approx { value, .. } => value.to_bits(),
    };
    let mut results = [0; isobench_abi::RESULT_COUNT];
    if isa::TIERED.contains(&p.invocation.name) {
        results[isobench_abi::RESULT_ISA] = isa::Isa::of_invocation(&p.invocation).code() + 1;
    }
    RawRun {
        checksum,
        cycles: records.iter().sum(),
        records,
        results,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_companions_name_their_base() {
        assert_eq!(mean_companion("hash"), "hash.mean");
        assert_eq!(mean_companion_of("hash.mean"), Some("hash"));
        assert_eq!(
            mean_companion_of("ns_per_access@64KiB.mean"),
            Some("ns_per_access@64KiB")
        );
        assert_eq!(mean_companion_of("hash"), None);
        assert_eq!(mean_companion_of(".mean"), None);
        assert_eq!(mean_companion_of("read_p99.9_us"), None);
    }

    #[test]
    fn medians_of_odd_even_and_empty_counts() {
        assert_eq!(median_cycles(&[5, 1, 3]), 3.0);
        assert_eq!(median_cycles(&[4, 1, 3, 2]), 2.5);
        assert_eq!(median_cycles(&[]), 0.0);
    }

    #[test]
    fn repeated_gives_the_median_and_the_mean_repetition() {
        // Nine repetitions of 100 cycles and one of 1000: the median ignores the outlier,
        // the mean (total over count: 190) does not.
        let mut reps = vec![100u64; 9];
        reps.push(1000);
        let [m, mean] = repeated(Span::Short, "x", "u", Better::Lower, &reps, |c| c);
        assert_eq!((m.name.as_str(), m.value), ("x", 100.0));
        assert_eq!((mean.name.as_str(), mean.value), ("x.mean", 190.0));
        assert_eq!(mean.unit, "u");
        assert_eq!(mean.better, Better::Lower);
        // Under a CPU quota the throttled stretches are the cost: the value is mean-based.
        let [m, _] = repeated(Span::CfsSafe, "x", "u", Better::Lower, &reps, |c| c);
        assert_eq!(m.value, 190.0);
    }

    #[test]
    fn every_primary_metric_is_a_base_name() {
        for w in catalogue() {
            for profile in [Profile::Quick, Profile::Full] {
                let p = (w.primary)(profile);
                assert!(!p.is_empty(), "{}", w.name);
                assert_eq!(mean_companion_of(&p), None, "{}: {p}", w.name);
            }
        }
    }
}
