//! Reading stored results back: validating readers for `run.json` and `samples.csv`, and
//! the one loader of a run directory that `report`, `compare` and `baseline` all use.
//! Errors name the file, the line and the field, and the fix.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::{RunFile, SampleRow, OLDEST_READABLE_SCHEMA, SCHEMA_VERSION};

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
    #[error("{path} has schema_version {found}, this isobench ({version}) reads schema_version {OLDEST_READABLE_SCHEMA} to {expected}: use the isobench version that wrote it, or re-run")]
    Schema {
        path: PathBuf,
        found: u64,
        expected: u32,
        version: &'static str,
    },
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
    let better_column = headers.iter().position(|h| h == "better");
    for rec in reader.records() {
        let record = rec.map_err(|e| malformed(csv_row_problem(&headers, e)))?;
        // Line of this record: the header is line 1, and isobench writes one line per row.
        let line = rows.len() as u64 + 2;
        let bad = |field: &str, problem: String| {
            malformed(format!("line {line}: field `{field}`: {problem}"))
        };
        // The direction is an enum: say which field is wrong, which serde's error would not.
        if let Some(word) = better_column.and_then(|i| record.get(i)) {
            if !word.is_empty() && crate::stats::Better::parse(word).is_none() {
                return Err(bad(
                    "better",
                    format!("{word:?} is neither `higher` nor `lower`"),
                ));
            }
        }
        let row: SampleRow = record
            .deserialize(Some(&headers))
            .map_err(|e| malformed(csv_row_problem(&headers, e)))?;
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
            if row.better.is_none() {
                return Err(bad(
                    "better",
                    "is empty: a performance metric says `higher` or `lower` is better".into(),
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
    if !(u64::from(OLDEST_READABLE_SCHEMA)..=u64::from(SCHEMA_VERSION)).contains(&found) {
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

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path} does not exist: give a run directory (results/<run-id>), its run.json, or results/latest")]
    NotFound { path: PathBuf },
    #[error("{path} has no run.json: give a run directory (results/<run-id>) or its run.json, not the results directory itself")]
    NoRunJson { path: PathBuf },
    #[error("reading run.json: {0}")]
    Run(#[from] ReadError),
    #[error("{path} is not a valid isobench results file: field `{field}`: {detail}")]
    RunField {
        path: PathBuf,
        field: String,
        detail: String,
    },
    #[error("cannot read {path}: {source} (samples.csv must sit beside run.json)")]
    SamplesIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Samples(ReadError),
}

/// One stored run: its `run.json` and its samples.
#[derive(Clone, Debug)]
pub struct RunData {
    /// The run.json path as given or found.
    pub run_json: PathBuf,
    pub run: RunFile,
    pub samples: Vec<SampleRow>,
}

/// `path` as a run.json path: a directory means the run.json inside it.
pub fn run_json_path(path: &Path) -> Result<PathBuf, LoadError> {
    if !path.exists() {
        return Err(LoadError::NotFound { path: path.into() });
    }
    if path.is_dir() {
        let json = path.join(RUN_JSON);
        if !json.is_file() {
            return Err(LoadError::NoRunJson { path: path.into() });
        }
        Ok(json)
    } else {
        Ok(path.into())
    }
}

/// Load a run directory or run.json.
pub fn load_run(path: &Path) -> Result<RunData, LoadError> {
    let run_json = run_json_path(path)?;
    let run = read_run_json(&run_json)?;
    let samples_path = run_json
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(SAMPLES_CSV);
    let samples = read_samples_csv(&samples_path)?;
    Ok(RunData {
        run_json,
        run,
        samples,
    })
}

/// `results::read_run`, with the JSON path of the offending field when the shape is wrong.
pub fn read_run_json(path: &Path) -> Result<RunFile, LoadError> {
    match read_run(path) {
        Ok(run) => Ok(run),
        Err(ReadError::Malformed { path, detail }) => {
            // Syntax errors already carry line and column; for a wrong shape, find the field.
            let located = std::fs::read_to_string(&path).ok().and_then(|text| {
                let mut de = serde_json::Deserializer::from_str(&text);
                match serde_path_to_error::deserialize::<_, RunFile>(&mut de) {
                    Err(e) if !e.inner().is_syntax() && !e.inner().is_eof() => {
                        Some((e.path().to_string(), e.inner().to_string()))
                    }
                    _ => None,
                }
            });
            Err(match located {
                Some((field, detail)) if field != "." => LoadError::RunField {
                    path,
                    field,
                    detail,
                },
                _ => LoadError::Run(ReadError::Malformed { path, detail }),
            })
        }
        Err(e) => Err(LoadError::Run(e)),
    }
}

/// `results::read_samples` (which validates every row), with the IO error telling where
/// samples.csv is expected.
pub fn read_samples_csv(path: &Path) -> Result<Vec<SampleRow>, LoadError> {
    read_samples(path).map_err(|e| match e {
        ReadError::Io { path, source } => LoadError::SamplesIo { path, source },
        other => LoadError::Samples(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const HEADER: &str = "round,env,workload,metric,value,unit,better,cycles,wall_ns\n";

    #[test]
    fn samples_problems_name_line_and_field() {
        let d = tempfile::tempdir().unwrap();
        let err = |text: &str| {
            let p = write(d.path(), "samples.csv", text);
            read_samples_csv(&p).unwrap_err().to_string()
        };
        let e = err(&format!(
            "{HEADER}0,native,cpu.int,hash,fast,MB/s,higher,1,2\n"
        ));
        assert!(e.contains("line 2") && e.contains("field `value`"), "{e}");
        let e = err(&format!(
            "{HEADER}0,native,cpu.int,hash,1.0,MB/s,higher,1,2\n0,native,cpu.in"
        ));
        assert!(e.contains("line 3") && e.contains("truncated"), "{e}");
        let e = err("name,age\nbob,3\n");
        assert!(e.contains("lacks column(s) round"), "{e}");
        let e = err("");
        assert!(e.contains("lacks column(s)"), "{e}");
        let e = err(&format!(
            "{HEADER}0,native,cpu.int,hash,1.0,MB/s,sideways,1,2\n"
        ));
        assert!(e.contains("field `better`"), "{e}");
        let e = err(&format!(
            "{HEADER}0,native,cpu.int,hash,-1.0,MB/s,higher,1,2\n"
        ));
        assert!(e.contains("field `value`") && e.contains("positive"), "{e}");
        let e = err(&format!(
            "{HEADER}0,native,cpu.int,hash,1.0,MB/s,higher,1,2\n0,native,cpu.int,hash,1.0,MB/s,higher,1,2\n"
        ));
        assert!(e.contains("line 3") && e.contains("second sample"), "{e}");
        // Counters may be zero and have no direction.
        let p = write(
            d.path(),
            "samples.csv",
            &format!("{HEADER}0,native,cpu.int,counter.hostcalls,0,count,,1,2\n"),
        );
        assert_eq!(read_samples_csv(&p).unwrap().len(), 1);
    }

    #[test]
    fn run_json_problems_name_the_field() {
        let d = tempfile::tempdir().unwrap();
        let run = RunFile {
            schema_version: SCHEMA_VERSION,
            ..Default::default()
        };
        let mut v = serde_json::to_value(&run).unwrap();
        v["host"]["cores"] = serde_json::json!("two");
        let p = write(d.path(), "run.json", &v.to_string());
        let e = read_run_json(&p).unwrap_err().to_string();
        assert!(e.contains("run.json") && e.contains("`host.cores`"), "{e}");
        let text = serde_json::to_string_pretty(&run).unwrap();
        let p = write(d.path(), "run.json", &text[..text.len() / 2]);
        let e = read_run_json(&p).unwrap_err().to_string();
        assert!(e.contains("run.json") && e.contains("EOF"), "{e}");
    }

    #[test]
    fn paths_resolve() {
        let d = tempfile::tempdir().unwrap();
        let e = load_run(&d.path().join("nope")).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        let e = load_run(d.path()).unwrap_err().to_string();
        assert!(e.contains("has no run.json"), "{e}");
    }
}
