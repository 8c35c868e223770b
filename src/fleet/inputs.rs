//! Runs that travel: `pack` writes one run directory as a gzip tarball (to stdout, a log
//! or an artifact store), and [`collect_runs`] reads what `merge` is given — run
//! directories, directories of runs, and tarballs — into the merge's `hosts/` directory.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use super::{FleetError, HostRun};
use crate::results::{load_run, RUN_JSON, SAMPLES_CSV};

/// Where `merge` keeps a copy of every run it pooled, inside its output directory.
pub const HOSTS_DIR: &str = "hosts";

fn input_err(path: &Path, detail: impl Into<String>) -> FleetError {
    FleetError::Input {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

/// Writes the run in `run_dir` (a run directory or its run.json) as a gzip tarball to `out`:
/// one top-level directory named after the run id, with every file of the run (run.json,
/// samples.csv, the report and plots). The run is loaded first, so a broken run is refused
/// here rather than at the merge.
pub fn pack(run_dir: &Path, out: impl Write) -> Result<(), FleetError> {
    let data = load_run(run_dir).map_err(|error| FleetError::Load {
        source_name: run_dir.display().to_string(),
        error,
    })?;
    let dir = data
        .run_json
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = fs::canonicalize(dir).map_err(|e| input_err(dir, e.to_string()))?;
    let id: String = data
        .run
        .run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = if id.is_empty() || id.starts_with('.') {
        "run".to_string()
    } else {
        id
    };
    let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::default()));
    tar.append_dir_all(&name, &dir)
        .map_err(|e| input_err(&dir, format!("packing it failed: {e}")))?;
    let gz = tar
        .into_inner()
        .map_err(|e| input_err(&dir, format!("finishing the tarball failed: {e}")))?;
    let mut w = gz
        .finish()
        .map_err(|e| input_err(&dir, format!("finishing the tarball failed: {e}")))?;
    w.flush()
        .map_err(|e| input_err(&dir, format!("writing the tarball failed: {e}")))
}

/// Whether `path` is a tarball (by its first bytes: gzip, or a ustar header).
fn is_tarball(path: &Path) -> bool {
    let mut head = [0u8; 263];
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    (n >= 2 && head[..2] == [0x1f, 0x8b]) || (n >= 262 && &head[257..262] == b"ustar")
}

/// Unpacks the tarball `path` into `dest` (entries may not leave it).
fn unpack(path: &Path, dest: &Path) -> Result<(), FleetError> {
    let mut head = [0u8; 2];
    let gz = File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|_| head == [0x1f, 0x8b])
        .map_err(|e| input_err(path, e.to_string()))?;
    let file = File::open(path).map_err(|e| input_err(path, e.to_string()))?;
    let reader: Box<dyn Read> = if gz {
        Box::new(GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    fs::create_dir_all(dest).map_err(|e| input_err(dest, e.to_string()))?;
    tar::Archive::new(reader).unpack(dest).map_err(|e| {
        input_err(
            path,
            format!("it is not a readable tarball ({e}): give a tarball made by `isobench pack RUN_DIR`"),
        )
    })
}

/// Run directories inside `dir` (itself, or its children, or their children).
fn runs_within(dir: &Path, depth: usize) -> Vec<PathBuf> {
    if dir.join(RUN_JSON).is_file() {
        return vec![dir.to_path_buf()];
    }
    if depth == 0 {
        return Vec::new();
    }
    let mut children: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    children.sort();
    children
        .into_iter()
        .filter(|p| p.is_dir() && !is_skipped(p))
        .flat_map(|p| runs_within(&p, depth - 1))
        .collect()
}

/// Entries of a results directory that are not runs of their own: hidden ones (scratch),
/// symlinks (`latest` points at a run listed anyway), `baselines/` and a merge's `hosts/`.
fn is_skipped(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.as_deref().unwrap_or("");
    name.starts_with('.')
        || name == "baselines"
        || name == HOSTS_DIR
        || p.symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
}

/// One thing to load: a run directory or run.json to copy, or a tarball to unpack.
enum Source {
    Run(PathBuf),
    Tarball(PathBuf),
}

/// What `path` names, expanded: a run, a directory of runs and tarballs, or a tarball.
fn expand(path: &Path) -> Result<Vec<Source>, FleetError> {
    if !path.exists() {
        return Err(input_err(path, "it does not exist: give a run directory (results/<run-id>), a directory of runs, or a tarball made by `isobench pack`"));
    }
    if path.is_file() {
        return Ok(vec![if is_tarball(path) {
            Source::Tarball(path.to_path_buf())
        } else {
            Source::Run(path.to_path_buf())
        }]);
    }
    if path.join(RUN_JSON).is_file() {
        return Ok(vec![Source::Run(path.to_path_buf())]);
    }
    let mut children: Vec<PathBuf> = fs::read_dir(path)
        .map_err(|e| input_err(path, e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| !is_skipped(p))
        .collect();
    children.sort();
    let found: Vec<Source> = children
        .into_iter()
        .filter_map(|p| {
            if p.is_dir() && p.join(RUN_JSON).is_file() {
                Some(Source::Run(p))
            } else if p.is_file() && is_tarball(&p) {
                Some(Source::Tarball(p))
            } else {
                None
            }
        })
        .collect();
    if found.is_empty() {
        return Err(input_err(
            path,
            "it holds no run: no sub-directory with a run.json and no tarball made by `isobench pack`",
        ));
    }
    Ok(found)
}

/// Copies a run's two files into `dest`.
fn copy_run(run_json: &Path, dest: &Path) -> Result<(), FleetError> {
    fs::create_dir_all(dest).map_err(|e| input_err(dest, e.to_string()))?;
    let dir = run_json
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for (from, name) in [
        (run_json.to_path_buf(), RUN_JSON),
        (dir.join(SAMPLES_CSV), SAMPLES_CSV),
    ] {
        fs::copy(&from, dest.join(name)).map_err(|e| input_err(&from, e.to_string()))?;
    }
    Ok(())
}

/// Loads every run `paths` name into `hosts` (`OUT/hosts`): run directories are copied
/// there (run.json and samples.csv), tarballs unpacked there, so the merge's output
/// holds every input it pooled. Each run is validated by the one loader of runs.
pub fn collect_runs(paths: &[PathBuf], hosts: &Path) -> Result<Vec<HostRun>, FleetError> {
    let mut runs = Vec::new();
    let sources = paths
        .iter()
        .map(|p| expand(p))
        .collect::<Result<Vec<_>, _>>()?;
    for source in sources.into_iter().flatten() {
        let n = runs.len();
        match source {
            Source::Run(path) => {
                let data = load_run(&path).map_err(|error| FleetError::Load {
                    source_name: path.display().to_string(),
                    error,
                })?;
                let dest = hosts.join(format!("{n:03}"));
                copy_run(&data.run_json, &dest)?;
                runs.push(HostRun {
                    source: path.display().to_string(),
                    data,
                });
            }
            Source::Tarball(path) => {
                let dest = hosts.join(format!("{n:03}"));
                unpack(&path, &dest)?;
                let found = runs_within(&dest, 2);
                if found.is_empty() {
                    return Err(input_err(
                        &path,
                        "the tarball holds no run.json: give a tarball made by `isobench pack RUN_DIR`",
                    ));
                }
                for dir in found {
                    let data = load_run(&dir).map_err(|error| FleetError::Load {
                        source_name: path.display().to_string(),
                        error,
                    })?;
                    runs.push(HostRun {
                        source: path.display().to_string(),
                        data,
                    });
                }
            }
        }
    }
    if runs.is_empty() {
        return Err(FleetError::NoRuns);
    }
    Ok(runs)
}
