//! What a container leaves on the host, and finding it again: the per-container state marker
//! (`/run/isobench/<id>`), and `find_leftovers` / `clean_leftovers` for what a killed run
//! left behind (cgroups, mounts and scratch directories whose owner process is dead).

use std::path::{Path, PathBuf};

use super::cgroup::{self, Layout};

/// Where state markers live.
pub const STATE_DIR: &str = "/run/isobench";

#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("writing the state marker {path}: {source} (isobench keeps one per container so `isobench clean` can find leftovers; is /run writable?)")]
    WriteMarker {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the state directory {path}: {source}")]
    ReadState {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unmounting {path}: {source} (try `umount -l {path}` by hand)")]
    Unmount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("removing {path}: {source} (remove it by hand)")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
}

/// A container's name: `isobench-<owner pid>-<n>`; unique per run, parseable by `clean`.
pub fn container_name(pid: u32, n: u64) -> String {
    format!("isobench-{pid}-{n}")
}

/// The owner PID encoded in a container name (`isobench-123-4` → 123).
pub fn owner_of(name: &str) -> Option<i32> {
    let rest = name.strip_prefix("isobench-")?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// The start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`) of a process,
/// so a marker is not fooled by a reused PID.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the owner of a marker or name is still alive (same PID and, when known, same
/// start time).
pub fn owner_alive(pid: i32, start: Option<u64>) -> bool {
    match (start_time(pid), start) {
        (None, _) => false,
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
    }
}

/// The state marker of one container: who owns it and what it created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marker {
    pub name: String,
    pub owner_pid: i32,
    pub owner_start: Option<u64>,
    /// The container's scratch directory (lower, upper, work, merged under it).
    pub dir: Option<PathBuf>,
    pub cgroups: Vec<PathBuf>,
}

impl Marker {
    pub fn render(&self) -> String {
        let mut s = format!("name={}\nowner_pid={}\n", self.name, self.owner_pid);
        if let Some(t) = self.owner_start {
            s += &format!("owner_start={t}\n");
        }
        if let Some(d) = &self.dir {
            s += &format!("dir={}\n", d.display());
        }
        for c in &self.cgroups {
            s += &format!("cgroup={}\n", c.display());
        }
        s
    }

    pub fn parse(text: &str) -> Option<Marker> {
        let mut m = Marker::default();
        for line in text.lines() {
            let (k, v) = line.split_once('=')?;
            match k {
                "name" => m.name = v.into(),
                "owner_pid" => m.owner_pid = v.parse().ok()?,
                "owner_start" => m.owner_start = v.parse().ok(),
                "dir" => m.dir = Some(v.into()),
                "cgroup" => m.cgroups.push(v.into()),
                _ => {}
            }
        }
        (m.owner_pid > 0 && !m.name.is_empty()).then_some(m)
    }

    /// Write (or rewrite) the marker atomically into `state_dir`.
    pub fn store(&self, state_dir: &Path) -> Result<PathBuf, CleanupError> {
        let path = state_dir.join(&self.name);
        let tmp = state_dir.join(format!(".{}.tmp", self.name));
        let write = || {
            std::fs::create_dir_all(state_dir)
                .and_then(|()| std::fs::write(&tmp, self.render()))
                .and_then(|()| std::fs::rename(&tmp, &path))
        };
        // Another run may remove the (then empty) state directory between our create and
        // write; once more is enough, since our temporary file then keeps it non-empty.
        write()
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => write(),
                _ => Err(e),
            })
            .map_err(|source| CleanupError::WriteMarker {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }
}

/// Something a dead run left behind.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Leftover {
    /// A mount in this mount namespace under a container's directory.
    Mount(PathBuf),
    /// A container cgroup directory.
    Cgroup(PathBuf),
    /// A container's scratch directory (lower/upper/work).
    Dir(PathBuf),
    /// The state marker itself.
    Marker(PathBuf),
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leftover::Mount(p) => write!(f, "mount {}", p.display()),
            Leftover::Cgroup(p) => write!(f, "cgroup {}", p.display()),
            Leftover::Dir(p) => write!(f, "directory {}", p.display()),
            Leftover::Marker(p) => write!(f, "state marker {}", p.display()),
        }
    }
}

/// The container name with a dead owner in a path's components, if any.
fn dead_component(p: &Path) -> Option<String> {
    p.components().find_map(|c| {
        let s = c.as_os_str().to_str()?;
        let pid = owner_of(s)?;
        (!owner_alive(pid, None)).then(|| s.to_string())
    })
}

/// Find what dead runs left: markers with a dead owner (and what they list), cgroups named
/// `isobench-<pid>-<n>` with a dead `<pid>` in the layout's parents, and mounts whose path
/// contains such a name.
pub fn find_leftovers_in(
    state_dir: &Path,
    layout: Option<&Layout>,
    mountinfo: &str,
) -> Vec<Leftover> {
    let mut out = Vec::new();
    let mut dead_names = Vec::new();
    if let Ok(rd) = std::fs::read_dir(state_dir) {
        for e in rd.flatten() {
            let path = e.path();
            let Some(m) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| Marker::parse(&t))
            else {
                continue;
            };
            if owner_alive(m.owner_pid, m.owner_start) {
                continue;
            }
            if let Some(d) = &m.dir {
                if d.exists() {
                    out.push(Leftover::Dir(d.clone()));
                }
                for mi in cgroup::parse_mountinfo(mountinfo) {
                    if mi.mount_point.starts_with(d) {
                        out.push(Leftover::Mount(mi.mount_point));
                    }
                }
            }
            out.extend(
                m.cgroups
                    .iter()
                    .filter(|c| c.exists())
                    .map(|c| Leftover::Cgroup(c.clone())),
            );
            dead_names.push(m.name.clone());
            out.push(Leftover::Marker(path));
        }
    }
    if let Some(layout) = layout {
        for parent in layout.scan_dirs() {
            let Ok(rd) = std::fs::read_dir(&parent) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = owner_of(&name) {
                    if e.path().is_dir() && !owner_alive(pid, None) {
                        out.push(Leftover::Cgroup(e.path()));
                    }
                }
            }
        }
    }
    for mi in cgroup::parse_mountinfo(mountinfo) {
        if dead_component(&mi.mount_point).is_some() {
            out.push(Leftover::Mount(mi.mount_point));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// What a dead run left, seen from this process (state markers in [`STATE_DIR`], the cgroup
/// trees found at run time, this mount namespace). For a new run to warn about.
pub fn find_leftovers() -> Vec<Leftover> {
    let layout = Layout::detect().ok();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    find_leftovers_in(Path::new(STATE_DIR), layout.as_ref(), &mountinfo)
}

/// Remove what [`find_leftovers_in`] finds: mounts (deepest first, lazily), cgroups (their
/// tasks killed first), directories, then the markers. Returns what was removed; keeps going
/// past a failure and reports the first one.
pub fn clean_leftovers_in(
    state_dir: &Path,
    layout: Option<&Layout>,
    mountinfo: &str,
) -> Result<Vec<Leftover>, CleanupError> {
    let mut found = find_leftovers_in(state_dir, layout, mountinfo);
    // Deepest mounts first; then cgroups, dirs, markers (the enum's order).
    found.sort_by(|a, b| match (a, b) {
        (Leftover::Mount(x), Leftover::Mount(y)) => {
            y.components().count().cmp(&x.components().count())
        }
        _ => a.cmp(b),
    });
    let mut first_err = None;
    let mut removed = Vec::new();
    for l in found {
        let r = match &l {
            Leftover::Mount(p) => nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH)
                .or_else(|e| {
                    if e == nix::errno::Errno::EINVAL {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|source| CleanupError::Unmount {
                    path: p.clone(),
                    source,
                }),
            Leftover::Cgroup(p) => cgroup::remove_dirs(std::slice::from_ref(p)).map_err(Into::into),
            Leftover::Dir(p) => remove_tree(p),
            Leftover::Marker(p) => std::fs::remove_file(p).map_err(|source| CleanupError::Remove {
                path: p.clone(),
                source,
            }),
        };
        match r {
            Ok(()) => removed.push(l),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    // Only an empty state directory is removed: live runs keep theirs.
    let _ = std::fs::remove_dir(state_dir);
    first_err.map_or(Ok(removed), Err)
}

/// `isobench clean`: remove every leftover of dead runs on this host.
pub fn clean_leftovers() -> Result<Vec<Leftover>, CleanupError> {
    let layout = Layout::detect().ok();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    clean_leftovers_in(Path::new(STATE_DIR), layout.as_ref(), &mountinfo)
}

/// Remove a directory tree; gone already is fine.
pub fn remove_tree(p: &Path) -> Result<(), CleanupError> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CleanupError::Remove {
            path: p.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_encode_the_owner() {
        assert_eq!(container_name(12, 3), "isobench-12-3");
        assert_eq!(owner_of("isobench-12-3"), Some(12));
        assert_eq!(owner_of("isobench-12"), None);
        assert_eq!(owner_of("isobench"), None);
        assert_eq!(owner_of("other-12-3"), None);
    }

    #[test]
    fn markers_round_trip() {
        let m = Marker {
            name: "isobench-5-0".into(),
            owner_pid: 5,
            owner_start: Some(99),
            dir: Some("/tmp/x/isobench-5-0".into()),
            cgroups: vec!["/sys/fs/cgroup/cpu/isobench/isobench-5-0".into()],
        };
        assert_eq!(Marker::parse(&m.render()), Some(m));
        assert_eq!(Marker::parse("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_dead() {
        let me = std::process::id() as i32;
        assert!(owner_alive(me, start_time(me)));
        assert!(!owner_alive(me, start_time(me).map(|t| t + 1)));
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id() as i32;
        c.wait().unwrap();
        assert!(!owner_alive(pid, None));
    }
}
