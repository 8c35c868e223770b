//! Named baselines under `OUT/baselines/NAME/` (a validated copy of a run's `run.json` and
//! `samples.csv`, replaced atomically), finding the newest run, and the `OUT/latest`
//! symlink to the last run.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::results::{load_run, LoadError};
use crate::results::{EnvStatus, RUN_JSON, SAMPLES_CSV};

/// Directory under the results directory that holds the baselines.
pub const BASELINES_DIR: &str = "baselines";
/// Name of the symlink to the newest run.
pub const LATEST_LINK: &str = "latest";
/// Longest baseline name.
pub const MAX_NAME_LEN: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("invalid baseline name {name:?}: {problem}")]
    InvalidName { name: String, problem: &'static str },
    #[error("baseline {name:?} already exists in {path}: pass --force to replace it")]
    Exists { name: String, path: PathBuf },
    #[error("no baseline {name:?} in {dir}: {hint}")]
    NotFound {
        name: String,
        dir: PathBuf,
        hint: String,
    },
    #[error("no run directory (one holding run.json) under {out}: run `isobench run` first, or name the run to save")]
    NoRuns { out: PathBuf },
    #[error("the run to save is unreadable: {0}")]
    Load(#[from] LoadError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} exists and is not a symlink: move it away so isobench can point `latest` at the newest run")]
    LatestNotALink { path: PathBuf },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BaselineError {
    let path = path.to_path_buf();
    move |source| BaselineError::Io { op, path, source }
}

/// Check a baseline name: 1..=100 characters of `A-Z a-z 0-9 . _ -`, not starting with a
/// dot or a dash (so no `.`/`..`, no hidden directories, no option look-alikes).
pub fn validate_name(name: &str) -> Result<(), BaselineError> {
    let bad = |problem| {
        Err(BaselineError::InvalidName {
            name: name.into(),
            problem,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 100 characters");
    }
    if name.contains('/') {
        return bad("it contains a slash (use '-' instead, e.g. feature-x for feature/x)");
    }
    if name.starts_with('.') {
        return bad("it starts with a dot (names like '.', '..' or hidden names are not allowed)");
    }
    if name.starts_with('-') {
        return bad("it starts with a dash");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return bad("use only letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// `OUT/baselines`.
pub fn baselines_dir(out: &Path) -> PathBuf {
    out.join(BASELINES_DIR)
}

/// The directory of an existing baseline.
pub fn resolve(out: &Path, name: &str) -> Result<PathBuf, BaselineError> {
    validate_name(name)?;
    let dir = baselines_dir(out).join(name);
    if dir.join(RUN_JSON).is_file() {
        return Ok(dir);
    }
    let names: Vec<String> = list(out)
        .unwrap_or_default()
        .into_iter()
        .map(|b| b.name)
        .collect();
    Err(BaselineError::NotFound {
        name: name.into(),
        dir: baselines_dir(out),
        hint: if names.is_empty() {
            format!("there are none yet; save one with `isobench baseline save {name} [RUN]`")
        } else {
            format!("the baselines are {}", names.join(", "))
        },
    })
}

/// The newest run directory under `out`: real directories (not symlinks, not hidden, not
/// `baselines`) holding a readable `run.json`, newest by `started_at`, then by name.
pub fn newest_run(out: &Path) -> Result<PathBuf, BaselineError> {
    let entries = fs::read_dir(out).map_err(io_err("listing", out))?;
    let mut best: Option<(chrono::DateTime<chrono::FixedOffset>, String, PathBuf)> = None;
    for entry in entries {
        let entry = entry.map_err(io_err("listing", out))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ft = entry
            .file_type()
            .map_err(io_err("inspecting", &entry.path()))?;
        if !ft.is_dir() || name.starts_with('.') || name == BASELINES_DIR {
            continue;
        }
        let Ok(run) = crate::results::read_run(&entry.path().join(RUN_JSON)) else {
            continue;
        };
        let Ok(started) = chrono::DateTime::parse_from_rfc3339(&run.started_at) else {
            continue;
        };
        let key = (started, name.clone());
        if best.as_ref().is_none_or(|(s, n, _)| key > (*s, n.clone())) {
            best = Some((key.0, key.1, entry.path()));
        }
    }
    best.map(|(_, _, p)| p)
        .ok_or_else(|| BaselineError::NoRuns { out: out.into() })
}

/// Copy a file's bytes and fsync the copy.
fn copy_synced(from: &Path, to: &Path) -> Result<(), BaselineError> {
    let bytes = fs::read(from).map_err(io_err("reading", from))?;
    let mut f = fs::File::create(to).map_err(io_err("creating", to))?;
    io::Write::write_all(&mut f, &bytes).map_err(io_err("writing", to))?;
    f.sync_all().map_err(io_err("syncing", to))
}

/// Removes a temporary directory unless disarmed.
struct TempDir(Option<PathBuf>);
impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// Save `run` (a run directory or its run.json) as baseline `name` under `out`. The run is
/// validated first (both files must load); the copy is built in a hidden sibling directory
/// and renamed into place, so a baseline is always whole. Returns the baseline directory.
pub fn save(out: &Path, name: &str, run: &Path, force: bool) -> Result<PathBuf, BaselineError> {
    validate_name(name)?;
    let data = load_run(run)?;
    let src_dir = data
        .run_json
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let dir = baselines_dir(out);
    fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    let target = dir.join(name);
    if target.exists() && !force {
        return Err(BaselineError::Exists {
            name: name.into(),
            path: target,
        });
    }
    let tmp_path = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp_path);
    fs::create_dir(&tmp_path).map_err(io_err("creating", &tmp_path))?;
    let mut tmp = TempDir(Some(tmp_path.clone()));
    copy_synced(&data.run_json, &tmp_path.join(RUN_JSON))?;
    copy_synced(&src_dir.join(SAMPLES_CSV), &tmp_path.join(SAMPLES_CSV))?;
    fs::File::open(&tmp_path)
        .and_then(|f| f.sync_all())
        .map_err(io_err("syncing", &tmp_path))?;
    if target.exists() {
        // Swap the new copy and the old baseline in one step, then drop the old one (now
        // at the temporary path, removed by the guard).
        nix::fcntl::renameat2(
            None,
            &tmp_path,
            None,
            &target,
            nix::fcntl::RenameFlags::RENAME_EXCHANGE,
        )
        .map_err(|e| io_err("replacing", &target)(io::Error::from(e)))?;
    } else {
        fs::rename(&tmp_path, &target).map_err(io_err("renaming into", &target))?;
        tmp.0 = None;
    }
    fs::File::open(&dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err("syncing", &dir))?;
    Ok(target)
}

/// One stored baseline, for `baseline list`.
#[derive(Clone, Debug, PartialEq)]
pub struct BaselineInfo {
    pub name: String,
    pub path: PathBuf,
    /// The run's id, start time, host and profile, or why it cannot be read.
    pub summary: Result<RunSummary, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub run_id: String,
    pub started_at: String,
    pub hostname: String,
    pub profile: String,
    pub rounds: u32,
    pub environments: Vec<String>,
    pub isobench_version: String,
}

/// The baselines under `out`, sorted by name (none when the directory does not exist).
pub fn list(out: &Path) -> Result<Vec<BaselineInfo>, BaselineError> {
    let dir = baselines_dir(out);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", &dir)(e)),
    };
    let mut out_list = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("listing", &dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        let summary = load_run(&entry.path())
            .map(|d| RunSummary {
                run_id: d.run.run_id,
                started_at: d.run.started_at,
                hostname: d.run.host.hostname,
                profile: d.run.config.profile.name().to_string(),
                rounds: d.run.config.rounds,
                environments: d
                    .run
                    .environments
                    .iter()
                    .filter(|e| e.status == EnvStatus::Ran)
                    .map(|e| e.label.clone())
                    .collect(),
                isobench_version: d.run.isobench_version,
            })
            .map_err(|e| e.to_string());
        out_list.push(BaselineInfo {
            name,
            path: entry.path(),
            summary,
        });
    }
    out_list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out_list)
}

/// Point `out/latest` at `run_dir` (by its name, relative, so the results directory can be
/// moved), replacing any previous link atomically (a new link is renamed over the old one).
/// Call after each run once its run.json is written. Refuses to replace a non-symlink.
pub fn update_latest_link(out: &Path, run_dir: &Path) -> Result<(), BaselineError> {
    let name = run_dir.file_name().ok_or_else(|| {
        io_err("linking", run_dir)(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the run directory has no name",
        ))
    })?;
    let link = out.join(LATEST_LINK);
    match fs::symlink_metadata(&link) {
        Ok(m) if !m.file_type().is_symlink() => {
            return Err(BaselineError::LatestNotALink { path: link })
        }
        _ => {}
    }
    let tmp = out.join(format!(".{LATEST_LINK}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(name, &tmp).map_err(io_err("creating the symlink", &tmp))?;
    if let Err(e) = fs::rename(&tmp, &link) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("replacing", &link)(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{write_atomic, RunFile, SCHEMA_VERSION};

    fn make_run(out: &Path, id: &str, started: &str) -> PathBuf {
        let dir = out.join(id);
        fs::create_dir_all(&dir).unwrap();
        let run = RunFile {
            schema_version: SCHEMA_VERSION,
            run_id: id.into(),
            started_at: started.into(),
            ..Default::default()
        };
        write_atomic(&dir.join(RUN_JSON), &serde_json::to_vec(&run).unwrap()).unwrap();
        fs::write(
            dir.join(SAMPLES_CSV),
            "round,env,workload,metric,value,unit,better,cycles,wall_ns\n0,native,cpu.int,hash,1.5,MB/s,higher,1,2\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn names() {
        for ok in ["main", "release-1.2", "a_b", "v1.0"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "...", "a/b", ".hidden", "-x", "a b", "é"] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn save_refuses_overwrite_then_replaces_with_force() {
        let out = tempfile::tempdir().unwrap();
        let a = make_run(out.path(), "A", "2025-01-01T00:00:00+00:00");
        let b = make_run(out.path(), "B", "2025-01-02T00:00:00+00:00");
        let saved = save(out.path(), "main", &a, false).unwrap();
        assert_eq!(load_run(&saved).unwrap().run.run_id, "A");
        let e = save(out.path(), "main", &b, false).unwrap_err().to_string();
        assert!(e.contains("--force"), "{e}");
        save(out.path(), "main", &b.join(RUN_JSON), true).unwrap();
        assert_eq!(load_run(&saved).unwrap().run.run_id, "B");
        // No temporary directories are left behind.
        let names: Vec<String> = fs::read_dir(baselines_dir(out.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["main"]);
        let l = list(out.path()).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].summary.as_ref().unwrap().run_id, "B");
        assert_eq!(resolve(out.path(), "main").unwrap(), saved);
        let e = resolve(out.path(), "nope").unwrap_err().to_string();
        assert!(e.contains("the baselines are main"), "{e}");
    }

    #[test]
    fn save_refuses_a_broken_run() {
        let out = tempfile::tempdir().unwrap();
        let a = make_run(out.path(), "A", "2025-01-01T00:00:00+00:00");
        fs::write(a.join(SAMPLES_CSV), "nonsense\n").unwrap();
        let e = save(out.path(), "main", &a, false).unwrap_err().to_string();
        assert!(e.contains("samples.csv"), "{e}");
        assert!(!baselines_dir(out.path()).join("main").exists());
    }

    #[test]
    fn newest_run_and_latest_link() {
        let out = tempfile::tempdir().unwrap();
        assert!(matches!(
            newest_run(out.path()),
            Err(BaselineError::NoRuns { .. })
        ));
        make_run(out.path(), "20250102T000000Z", "2025-01-02T00:00:00+00:00");
        let newer = make_run(out.path(), "20250101T000000Z", "2025-01-03T00:00:00+00:00");
        fs::create_dir_all(out.path().join(".scratch")).unwrap();
        assert_eq!(newest_run(out.path()).unwrap(), newer);
        update_latest_link(out.path(), &newer).unwrap();
        let link = out.path().join(LATEST_LINK);
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("20250101T000000Z"));
        let other = out.path().join("20250102T000000Z");
        update_latest_link(out.path(), &other).unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("20250102T000000Z"));
        assert_eq!(load_run(&link).unwrap().run.run_id, "20250102T000000Z");
        // The symlink is not itself a run.
        assert_eq!(newest_run(out.path()).unwrap(), newer);
        fs::remove_file(&link).unwrap();
        fs::create_dir(&link).unwrap();
        assert!(matches!(
            update_latest_link(out.path(), &other),
            Err(BaselineError::LatestNotALink { .. })
        ));
    }
}
