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

// ---------------------------------------------------------------------------------------
// Writing and reading.
// ---------------------------------------------------------------------------------------

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File names inside a run directory.
pub const RUN_JSON: &str = "run.json";
pub const SAMPLES_CSV: &str = "samples.csv";
pub const SUMMARY_CSV: &str = "summary.csv";

/// Errors reading stored results.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a valid isobench results file: {detail}")]
    Malformed { path: PathBuf, detail: String },
    #[error("{path} has schema_version {found}, this isobench ({version}) reads schema_version {expected}: use the isobench version that wrote it, or re-run")]
    Schema {
        path: PathBuf,
        found: u64,
        expected: u32,
        version: &'static str,
    },
}

/// Replace `path` with `bytes` atomically: write a temporary sibling, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Appends samples to `samples.csv`, flushed to disk after every round.
pub struct SamplesWriter {
    file: File,
}

impl SamplesWriter {
    /// Create `samples.csv` (failing if it exists: a run directory is never reused).
    pub fn create(path: &Path) -> io::Result<SamplesWriter> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(b"round,env,workload,metric,value,unit,better,cycles,wall_ns\n")?;
        Ok(SamplesWriter { file })
    }
}

impl crate::measure::SampleSink for SamplesWriter {
    fn round_done(&mut self, rows: &[SampleRow]) -> io::Result<()> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        for r in rows {
            w.serialize(r).map_err(io::Error::other)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.file.write_all(&bytes)?;
        self.file.sync_data()
    }
}

/// Columns `samples.csv` must have.
pub const SAMPLE_COLUMNS: [&str; 9] = [
    "round", "env", "workload", "metric", "value", "unit", "better", "cycles", "wall_ns",
];

/// Read and validate `samples.csv`: the header, every field, positive finite values of
/// performance metrics (the statistics take their logarithms), `better` of
/// `higher`/`lower`, no duplicate samples. Errors name the file, the line and the field.
pub fn read_samples(path: &Path) -> Result<Vec<SampleRow>, ReadError> {
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: path.into(),
        source,
    })?;
    let malformed = |detail: String| ReadError::Malformed {
        path: path.into(),
        detail,
    };
    let mut reader = csv::Reader::from_reader(file);
    let headers = reader
        .headers()
        .map_err(|e| malformed(format!("its header cannot be read: {e}")))?
        .clone();
    let missing: Vec<&str> = SAMPLE_COLUMNS
        .iter()
        .copied()
        .filter(|c| !headers.iter().any(|h| h == *c))
        .collect();
    if !missing.is_empty() {
        return Err(malformed(format!(
            "the header lacks column(s) {} (expected {})",
            missing.join(", "),
            SAMPLE_COLUMNS.join(",")
        )));
    }
    let mut rows = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for rec in reader.deserialize::<SampleRow>() {
        let row = rec.map_err(|e| malformed(csv_row_problem(&headers, e)))?;
        // Line of this record: the header is line 1, and isobench writes one line per row.
        let line = rows.len() as u64 + 2;
        let bad = |field: &str, problem: String| {
            malformed(format!("line {line}: field `{field}`: {problem}"))
        };
        for (field, v) in [
            ("env", &row.env),
            ("workload", &row.workload),
            ("metric", &row.metric),
        ] {
            if v.is_empty() {
                return Err(bad(field, "is empty".into()));
            }
        }
        if !row.is_counter() {
            if !(row.value.is_finite() && row.value > 0.0) {
                return Err(bad(
                    "value",
                    format!("{} is not a positive finite number (performance metrics are rates or times)", row.value),
                ));
            }
            if row.better != "higher" && row.better != "lower" {
                return Err(bad(
                    "better",
                    format!("{:?} is neither `higher` nor `lower`", row.better),
                ));
            }
            let key = (
                row.round,
                row.env.clone(),
                row.workload.clone(),
                row.metric.clone(),
            );
            if !seen.insert(key) {
                return Err(bad(
                    "round",
                    format!(
                        "a second sample for round {} of {} {}/{} (a run has one per round)",
                        row.round, row.env, row.workload, row.metric
                    ),
                ));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// A csv error on a data row, as "line N: field `x`: problem".
fn csv_row_problem(headers: &csv::StringRecord, e: csv::Error) -> String {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let detail = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => format!(
            "{len} field(s) where the header has {expected_len} (the file is truncated or not an isobench samples.csv)"
        ),
        csv::ErrorKind::Deserialize { err, .. } => {
            let field = err
                .field()
                .and_then(|i| headers.get(i as usize))
                .map(|h| format!("field `{h}`: "))
                .unwrap_or_default();
            format!("{field}{}", err.kind())
        }
        _ => e.to_string(),
    };
    format!("line {line}: {detail}")
}

/// Read `run.json`, refusing other schema versions with a clear message.
pub fn read_run(path: &Path) -> Result<RunFile, ReadError> {
    let text = fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: path.into(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ReadError::Malformed {
            path: path.into(),
            detail: e.to_string(),
        })?;
    let found = value
        .get("schema_version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| ReadError::Malformed {
            path: path.into(),
            detail: "field `schema_version` is missing or not a number".into(),
        })?;
    if found != u64::from(SCHEMA_VERSION) {
        return Err(ReadError::Schema {
            path: path.into(),
            found,
            expected: SCHEMA_VERSION,
            version: env!("CARGO_PKG_VERSION"),
        });
    }
    serde_json::from_value(value).map_err(|e| ReadError::Malformed {
        path: path.into(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::SampleSink;

    fn row(round: u32, value: f64) -> SampleRow {
        SampleRow {
            round,
            env: "native".into(),
            workload: "cpu.int".into(),
            metric: "hash".into(),
            value,
            unit: "MB/s".into(),
            better: "higher".into(),
            cycles: 10,
            wall_ns: 20,
        }
    }

    #[test]
    fn samples_round_trip_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SAMPLES_CSV);
        let mut w = SamplesWriter::create(&path).unwrap();
        w.round_done(&[row(0, 1.5)]).unwrap();
        w.round_done(&[row(1, 2.5)]).unwrap();
        assert_eq!(read_samples(&path).unwrap(), vec![row(0, 1.5), row(1, 2.5)]);
        assert!(
            SamplesWriter::create(&path).is_err(),
            "an existing samples.csv is never truncated"
        );
    }

    #[test]
    fn run_json_schema_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RUN_JSON);
        let run = RunFile {
            schema_version: SCHEMA_VERSION,
            run_id: "x".into(),
            ..Default::default()
        };
        write_atomic(&path, &serde_json::to_vec(&run).unwrap()).unwrap();
        assert_eq!(read_run(&path).unwrap(), run);
        fs::write(&path, r#"{"schema_version": 99}"#).unwrap();
        let err = read_run(&path).unwrap_err().to_string();
        assert!(err.contains("schema_version 99"), "{err}");
        fs::write(&path, "{").unwrap();
        assert!(matches!(read_run(&path), Err(ReadError::Malformed { .. })));
        fs::write(&path, r#"{"schema_version": 1, "run_id": 5}"#).unwrap();
        let err = read_run(&path).unwrap_err().to_string();
        assert!(err.contains("run.json"), "{err}");
    }
}
