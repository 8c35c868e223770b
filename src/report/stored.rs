//! Reading a stored run back (`run.json`, `samples.csv`) so that reports can be re-rendered
//! from the files alone. The readers themselves live in `results.rs`.

use std::path::Path;

use crate::results::{
    read_run, read_samples, ReadError, RunFile, SampleRow, RUN_JSON, SAMPLES_CSV,
};

/// Reads `dir/run.json` and `dir/samples.csv`.
pub fn read_run_dir(dir: &Path) -> Result<(RunFile, Vec<SampleRow>), ReadError> {
    let run = read_run(&dir.join(RUN_JSON))?;
    let samples = read_samples(&dir.join(SAMPLES_CSV))?;
    Ok((run, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_samples_with_empty_better_and_names_missing_files() {
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
        assert!(rows[1].is_counter());
        let missing = read_run_dir(dir.path()).unwrap_err().to_string();
        assert!(missing.contains("run.json"), "{missing}");
    }
}
