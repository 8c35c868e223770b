//! Reading a stored run back (`run.json`, `samples.csv`) so that reports can be re-rendered
//! from the files alone; refuses files of another schema version.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::results::{RunFile, SampleRow, SCHEMA_VERSION};

/// File name of the run description inside a run directory.
pub const RUN_JSON: &str = "run.json";
/// File name of the samples inside a run directory.
pub const SAMPLES_CSV: &str = "samples.csv";

#[derive(Debug, Error)]
pub enum StoredError {
    #[error("cannot open {path}: {source} (is this a results/<run-id> directory?)")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {source} (the file is damaged or not written by isobench)")]
    ParseRun {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{path} has schema version {found}, this isobench reads version {expected}: \
         re-render it with the isobench version that wrote it"
    )]
    SchemaVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("cannot parse {path}: {source} (the file is damaged or not written by isobench)")]
    ParseSamples { path: PathBuf, source: csv::Error },
}

/// Reads and version-checks `run.json`.
pub fn read_run_file(path: &Path) -> Result<RunFile, StoredError> {
    let file = File::open(path).map_err(|source| StoredError::Open {
        path: path.into(),
        source,
    })?;
    // Check the version before the full parse, so an old file gets the version message
    // rather than a missing-field error.
    let value: serde_json::Value =
        serde_json::from_reader(BufReader::new(file)).map_err(|source| StoredError::ParseRun {
            path: path.into(),
            source,
        })?;
    let found = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if found != u64::from(SCHEMA_VERSION) {
        return Err(StoredError::SchemaVersion {
            path: path.into(),
            found: u32::try_from(found).unwrap_or(u32::MAX),
            expected: SCHEMA_VERSION,
        });
    }
    serde_json::from_value(value).map_err(|source| StoredError::ParseRun {
        path: path.into(),
        source,
    })
}

/// Reads `samples.csv` (with its header row).
pub fn read_samples(path: &Path) -> Result<Vec<SampleRow>, StoredError> {
    let file = File::open(path).map_err(|source| StoredError::Open {
        path: path.into(),
        source,
    })?;
    let mut reader = csv::Reader::from_reader(BufReader::new(file));
    reader
        .deserialize()
        .collect::<Result<Vec<SampleRow>, _>>()
        .map_err(|source| StoredError::ParseSamples {
            path: path.into(),
            source,
        })
}

/// Reads `dir/run.json` and `dir/samples.csv`.
pub fn read_run_dir(dir: &Path) -> Result<(RunFile, Vec<SampleRow>), StoredError> {
    let run = read_run_file(&dir.join(RUN_JSON))?;
    let samples = read_samples(&dir.join(SAMPLES_CSV))?;
    Ok((run, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_other_schema_versions_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RUN_JSON);
        let mut run = RunFile {
            schema_version: SCHEMA_VERSION + 1,
            ..Default::default()
        };
        std::fs::write(&path, serde_json::to_vec(&run).unwrap()).unwrap();
        let err = read_run_file(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
            "{err}"
        );
        assert!(
            err.contains(&format!("reads version {SCHEMA_VERSION}")),
            "{err}"
        );
        run.schema_version = SCHEMA_VERSION;
        std::fs::write(&path, serde_json::to_vec(&run).unwrap()).unwrap();
        assert_eq!(read_run_file(&path).unwrap(), run);
    }

    #[test]
    fn reads_samples_with_empty_better() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SAMPLES_CSV);
        std::fs::write(
            &path,
            "round,env,workload,metric,value,unit,better,cycles,wall_ns\n\
             0,native,cpu.int,hash,1234.5,MB/s,higher,100,200\n\
             0,native,cpu.int,counter.exits,3,,,0,0\n",
        )
        .unwrap();
        let rows = read_samples(&path).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].value, 1234.5);
        assert!(rows[1].is_counter());
        assert_eq!(rows[1].better, "");
        let missing = read_samples(&dir.path().join("nope.csv"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("nope.csv"), "{missing}");
    }
}
