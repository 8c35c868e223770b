//! Loading one stored run for `compare`: find `run.json` and the `samples.csv` beside it,
//! read both, and reject malformed, truncated or foreign files with a message naming the
//! file, the line and the field.

use std::path::{Path, PathBuf};

use crate::results::{self, ReadError, RunFile, SampleRow, RUN_JSON, SAMPLES_CSV};

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
    match results::read_run(path) {
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
    results::read_samples(path).map_err(|e| match e {
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
            schema_version: results::SCHEMA_VERSION,
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
