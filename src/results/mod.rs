//! The result files of one run: the typed model (`model`), reading and loading them back
//! (`read`), and writing them safely (`write`).

mod model;
mod read;
mod write;

pub use model::*;
pub use read::*;
pub use write::*;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn row(round: u32, value: f64) -> SampleRow {
        SampleRow {
            round,
            env: "native".into(),
            workload: "cpu.int".into(),
            metric: "hash".into(),
            value,
            unit: "MB/s".into(),
            better: Some(crate::stats::Better::Higher),
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
