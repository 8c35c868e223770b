//! The container's own cgroup: finding the hierarchies at run time (v1, hybrid or v2, from
//! `/proc/self/mountinfo` and `/proc/self/cgroup`), creating one group per container under
//! an `isobench` parent with the requested limits, and reading its accounting back.
//!
//! Every function takes the hierarchy roots as data ([`Layout`]), so the tests run the same
//! code against fake control files in a temporary directory.

pub mod v1;
pub mod v2;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name of the parent group every container's group is created under.
pub const PARENT: &str = "isobench";

/// The controllers a container's group uses when the hierarchy has them.
pub const WANTED: [&str; 6] = ["cpu", "cpuacct", "cpuset", "memory", "blkio", "pids"];

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("reading {path}: {source} (isobench finds the cgroup hierarchies through /proc; is /proc mounted?)")]
    ReadProc {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no usable cgroup hierarchy in /proc/self/mountinfo: need cgroup v1 with the cpu and memory controllers, or cgroup2 (mount one, or run without the container environment)")]
    NoHierarchy,
    #[error("creating cgroup {path}: {source} (the container environment needs root and a writable cgroup tree)")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {value:?} to {path}: {source} (check the limit's value and that the controller is enabled for this cgroup)")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("reading {path}: {source} (is the controller enabled for this cgroup?)")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the {controller} controller is needed for {what} but is not available here: {reason}"
    )]
    ControllerMissing {
        controller: String,
        what: String,
        reason: String,
    },
    #[error(
        "removing cgroup {path}: {source} (a task may still be in it; `isobench clean` retries)"
    )]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid limit {what} = {value}: {reason}")]
    BadLimit {
        what: &'static str,
        value: String,
        reason: String,
    },
}

/// Limits for one container's group. `None`: no limit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    /// CPUs' worth of time per period, like `docker run --cpus` (0.1 = 10% of one CPU).
    pub cpus: Option<f64>,
    /// Memory limit in bytes (swap is not allowed beyond it where the kernel accounts swap).
    pub memory: Option<u64>,
    /// CPUs the container may run on, in the kernel's list syntax (`0`, `0-1`, `0,2`).
    pub cpuset: Option<String>,
    /// Relative IO weight, 1..=10000 on v2 (v1 blkio: 10..=1000).
    pub io_weight: Option<u16>,
}

/// The CFS period used for `cpus` (the kernel's and Docker's default).
pub const CPU_PERIOD_US: u64 = 100_000;

impl Limits {
    /// Check the values before touching any cgroup.
    pub fn validate(&self) -> Result<(), CgroupError> {
        if let Some(c) = self.cpus {
            if !(c.is_finite() && c > 0.0) || cpu_quota_us(c) < 1000 {
                return Err(CgroupError::BadLimit {
                    what: "cpus",
                    value: c.to_string(),
                    reason: "must be a positive number of CPUs of at least 0.01".into(),
                });
            }
        }
        if let Some(m) = self.memory {
            if m < (4 << 20) {
                return Err(CgroupError::BadLimit {
                    what: "memory",
                    value: m.to_string(),
                    reason: "must be at least 4 MiB (the runner alone needs more)".into(),
                });
            }
        }
        if let Some(s) = &self.cpuset {
            let ok = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == '-');
            if !ok {
                return Err(CgroupError::BadLimit {
                    what: "cpuset",
                    value: s.clone(),
                    reason: "must be a CPU list like 0 or 0-1 or 0,2".into(),
                });
            }
        }
        if let Some(w) = self.io_weight {
            if !(1..=10000).contains(&w) {
                return Err(CgroupError::BadLimit {
                    what: "io weight",
                    value: w.to_string(),
                    reason: "must be between 1 and 10000".into(),
                });
            }
        }
        Ok(())
    }
}

/// The CFS quota for `cpus` CPUs at [`CPU_PERIOD_US`].
pub fn cpu_quota_us(cpus: f64) -> u64 {
    (cpus * CPU_PERIOD_US as f64).round() as u64
}

/// Which cgroup hierarchies this process lives in.
#[derive(Clone, Debug, PartialEq)]
pub enum Layout {
    /// cgroup v1 (also the "hybrid" layout: v1 controllers plus an empty cgroup2).
    V1(Vec<v1::Hierarchy>),
    /// The unified hierarchy with its controllers.
    V2(v2::Hierarchy),
}

impl Layout {
    /// Find the layout of the calling process.
    pub fn detect() -> Result<Layout, CgroupError> {
        let read = |p: &str| {
            std::fs::read_to_string(p).map_err(|source| CgroupError::ReadProc {
                path: p.into(),
                source,
            })
        };
        Layout::from_proc(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?)
    }

    /// Decide the layout from the texts of `/proc/self/mountinfo` and `/proc/self/cgroup`.
    /// v1 wins when a v1 hierarchy carries the cpu or memory controller (hybrid hosts); the
    /// unified hierarchy is used when it is the only one.
    pub fn from_proc(mountinfo: &str, self_cgroup: &str) -> Result<Layout, CgroupError> {
        let mounts = parse_mountinfo(mountinfo);
        let memberships = parse_self_cgroup(self_cgroup);
        let mut v1s = Vec::new();
        let mut v2 = None;
        for m in &mounts {
            match m.fstype.as_str() {
                "cgroup" => {
                    let controllers: Vec<String> = m
                        .super_opts
                        .split(',')
                        .filter(|o| WANTED.contains(o))
                        .map(str::to_string)
                        .collect();
                    if controllers.is_empty() {
                        continue;
                    }
                    let path = memberships
                        .iter()
                        .find(|(ctrls, _)| {
                            let set: Vec<&str> = ctrls.split(',').collect();
                            controllers.iter().all(|c| set.contains(&c.as_str()))
                        })
                        .map(|(_, p)| p.as_str())
                        .unwrap_or("/");
                    v1s.push(v1::Hierarchy {
                        mount: m.mount_point.clone(),
                        controllers,
                        base: relative_base(&m.root, path),
                    });
                }
                "cgroup2" if v2.is_none() => {
                    let path = memberships
                        .iter()
                        .find(|(ctrls, _)| ctrls.is_empty())
                        .map(|(_, p)| p.as_str())
                        .unwrap_or("/");
                    v2 = Some(v2::Hierarchy {
                        mount: m.mount_point.clone(),
                        base: relative_base(&m.root, path),
                    });
                }
                _ => {}
            }
        }
        let has = |c: &str| v1s.iter().any(|h| h.controllers.iter().any(|x| x == c));
        if has("cpu") || has("memory") {
            return Ok(Layout::V1(v1s));
        }
        v2.map(Layout::V2).ok_or(CgroupError::NoHierarchy)
    }

    pub fn version(&self) -> &'static str {
        match self {
            Layout::V1(_) => "v1",
            Layout::V2(_) => "v2",
        }
    }

    /// Every directory a container group named `name` would have (one per hierarchy), and
    /// the `isobench` parents they sit in, for the state marker and for leftover scans.
    pub fn group_dirs(&self, name: &str) -> Vec<PathBuf> {
        self.parent_dirs().iter().map(|p| p.join(name)).collect()
    }

    /// The `isobench` parent directories containers are created in.
    pub fn parent_dirs(&self) -> Vec<PathBuf> {
        match self {
            Layout::V1(hs) => hs
                .iter()
                .filter(|h| v1::used(h))
                .map(|h| h.parent_dir())
                .collect(),
            Layout::V2(h) => vec![h.parent_dir()],
        }
    }

    /// Places where a leftover `isobench-*` group may be: the parents under this process's
    /// own cgroup and directly under each hierarchy's root.
    pub fn scan_dirs(&self) -> Vec<PathBuf> {
        let mut v = self.parent_dirs();
        match self {
            Layout::V1(hs) => v.extend(hs.iter().map(|h| h.mount.join(PARENT))),
            Layout::V2(h) => v.push(h.mount.join(PARENT)),
        }
        v.sort();
        v.dedup();
        v
    }
}

/// The path of the group's place relative to the mount: `/proc/self/cgroup`'s path with the
/// mount's own root (a bind-mounted subtree) removed.
fn relative_base(mount_root: &str, path: &str) -> PathBuf {
    let rel = path
        .strip_prefix(mount_root.trim_end_matches('/'))
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .unwrap_or(path);
    PathBuf::from(rel.trim_start_matches('/'))
}

/// One line of mountinfo, the fields we use.
#[derive(Clone, Debug, PartialEq)]
pub struct MountEntry {
    pub root: String,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub super_opts: String,
}

/// Parse `/proc/self/mountinfo` (octal escapes in paths decoded).
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split_whitespace().collect();
            let r: Vec<&str> = right.split_whitespace().collect();
            if l.len() < 5 || r.len() < 3 {
                return None;
            }
            Some(MountEntry {
                root: unescape(l[3]),
                mount_point: PathBuf::from(unescape(l[4])),
                fstype: r[0].to_string(),
                super_opts: r[2].to_string(),
            })
        })
        .collect()
}

/// Decode mountinfo's `\040`-style octal escapes.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            let v = oct.iter().try_fold(0u32, |acc, c| {
                (b'0'..=b'7')
                    .contains(c)
                    .then(|| acc * 8 + u32::from(c - b'0'))
            });
            if let Some(v) = v.and_then(|v| u8::try_from(v).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse `/proc/self/cgroup` into (controller list, path) pairs; cgroup2 has an empty list.
pub fn parse_self_cgroup(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            Some((ctrls.to_string(), path.to_string()))
        })
        .collect()
}

/// Resource use read back from a group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Total CPU time of the group's tasks, in ns.
    pub cpu_ns: Option<u64>,
    /// Highest memory use seen (since creation, or since the last `reset_peak` on v1).
    pub memory_peak_bytes: Option<u64>,
    /// How many times the OOM killer killed a task of the group.
    pub oom_kills: Option<u64>,
}

/// A created container group (one directory per hierarchy on v1).
#[derive(Debug)]
pub enum Cgroup {
    V1(v1::Group),
    V2(v2::Group),
}

impl Cgroup {
    /// Create the group `name` with `limits` under the `isobench` parent. On error, whatever
    /// was created is removed again.
    pub fn create(layout: &Layout, name: &str, limits: &Limits) -> Result<Cgroup, CgroupError> {
        limits.validate()?;
        match layout {
            Layout::V1(hs) => v1::Group::create(hs, name, limits).map(Cgroup::V1),
            Layout::V2(h) => v2::Group::create(h, name, limits).map(Cgroup::V2),
        }
    }

    /// Move a process (and so its future children) into the group.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        match self {
            Cgroup::V1(g) => g.add_pid(pid),
            Cgroup::V2(g) => g.add_pid(pid),
        }
    }

    /// The files a process writes "0" to in order to move itself in (v1 `tasks`): moving
    /// only the calling thread skips the global threadgroup lock and the RCU grace period a
    /// move by PID (`cgroup.procs`) waits for (10-20 ms on this machine). `None` on v2, where
    /// the parent writes the PID to `cgroup.procs`.
    pub fn self_join_files(&self) -> Option<Vec<PathBuf>> {
        match self {
            Cgroup::V1(g) => Some(g.dirs().into_iter().map(|d| d.join("tasks")).collect()),
            Cgroup::V2(_) => None,
        }
    }

    pub fn usage(&self) -> Usage {
        match self {
            Cgroup::V1(g) => g.usage(),
            Cgroup::V2(g) => g.usage(),
        }
    }

    /// Start a new peak-memory window (v1 only: v2's memory.peak is per group lifetime).
    pub fn reset_peak(&self) {
        if let Cgroup::V1(g) = self {
            g.reset_peak()
        }
    }

    /// The group's directories.
    pub fn dirs(&self) -> Vec<PathBuf> {
        match self {
            Cgroup::V1(g) => g.dirs(),
            Cgroup::V2(g) => vec![g.dir().to_path_buf()],
        }
    }

    /// Facts for run.json: version, paths, the limits as written, what was not available.
    pub fn facts(&self) -> BTreeMap<String, String> {
        match self {
            Cgroup::V1(g) => g.facts(),
            Cgroup::V2(g) => g.facts(),
        }
    }

    /// Kill whatever is left in the group and remove its directories.
    pub fn remove(self) -> Result<(), CgroupError> {
        remove_dirs(&self.dirs())
    }
}

/// Kill the tasks left in each cgroup directory and remove it (children before parents),
/// retrying briefly: a task that was just reaped can keep a group busy for a moment.
pub fn remove_dirs(dirs: &[PathBuf]) -> Result<(), CgroupError> {
    let mut first_err = None;
    for d in dirs.iter().rev() {
        if let Err(e) = remove_dir(d) {
            first_err.get_or_insert(e);
        }
    }
    // The shared parents go when they are empty; another run may still use them.
    for d in dirs {
        if let Some(p) = d.parent() {
            if p.file_name().is_some_and(|n| n == PARENT) {
                let _ = std::fs::remove_dir(p);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn remove_dir(dir: &Path) -> Result<(), CgroupError> {
    let mut last = None;
    for attempt in 0..200 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // EBUSY: tasks still inside (retry after killing them); anything else (child
            // groups, a plain directory with files) will not change by waiting.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => last = Some(e),
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
        kill_tasks(dir);
        std::thread::sleep(Duration::from_millis(if attempt < 20 { 1 } else { 10 }));
    }
    Err(CgroupError::Remove {
        path: dir.to_path_buf(),
        source: last.unwrap_or_else(|| io::Error::other("busy")),
    })
}

/// SIGKILL every process listed in `dir/cgroup.procs` (v2: `cgroup.kill` when present).
pub fn kill_tasks(dir: &Path) {
    let kill_file = dir.join("cgroup.kill");
    if kill_file.exists() {
        let _ = std::fs::write(&kill_file, "1");
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            if pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Write a control file (created if missing: the kernel's files always exist, a test's
/// fixture tree starts empty).
pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path: path.to_path_buf(),
            value: value.to_string(),
            source,
        })
}

pub(crate) fn read_trimmed(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// A `key value` line's value from a flat-keyed file (`cpu.stat`, `memory.events`).
pub(crate) fn keyed_value(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub(crate) fn mkdir(path: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir(path).map_err(|source| CgroupError::Create {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn mkdir_all(path: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(path).map_err(|source| CgroupError::Create {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
5:devices:/
4:memory:/process_api/abc
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn hybrid_layout_is_v1_with_the_nested_memory_path() {
        let l = Layout::from_proc(HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
        let Layout::V1(hs) = &l else {
            panic!("expected v1, got {l:?}")
        };
        let names: Vec<String> = hs.iter().map(|h| h.controllers.join(",")).collect();
        assert_eq!(
            names,
            ["cpu", "cpuacct", "cpuset", "memory", "blkio", "pids"]
        );
        let mem = hs.iter().find(|h| h.controllers == ["memory"]).unwrap();
        assert_eq!(mem.mount, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(mem.base, PathBuf::from("process_api/abc"));
        assert_eq!(
            l.group_dirs("isobench-1-0")[3],
            PathBuf::from("/sys/fs/cgroup/memory/process_api/abc/isobench/isobench-1-0")
        );
    }

    #[test]
    fn comounted_v1_controllers_share_one_hierarchy() {
        let mi = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                  35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let cg = "3:cpu,cpuacct:/user.slice\n2:memory:/user.slice\n";
        let Layout::V1(hs) = Layout::from_proc(mi, cg).unwrap() else {
            panic!("expected v1")
        };
        assert_eq!(hs[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(hs[0].base, PathBuf::from("user.slice"));
        assert_eq!(hs[0].mount, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
    }

    #[test]
    fn pure_v2_layout_and_a_bind_mounted_root() {
        let mi = "41 31 0:38 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let cg = "0::/kubepods/pod1/ctr\n";
        let l = Layout::from_proc(mi, cg).unwrap();
        assert_eq!(
            l,
            Layout::V2(v2::Hierarchy {
                mount: "/sys/fs/cgroup".into(),
                base: "ctr".into()
            })
        );
        assert_eq!(l.version(), "v2");
    }

    #[test]
    fn no_cgroup_mount_is_an_error() {
        let mi = "22 27 0:21 / /proc rw,relatime - proc proc rw\n";
        assert!(matches!(
            Layout::from_proc(mi, "0::/\n"),
            Err(CgroupError::NoHierarchy)
        ));
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        let e = parse_mountinfo("1 2 0:1 / /a\\040b rw - tmpfs x rw\n");
        assert_eq!(e[0].mount_point, PathBuf::from("/a b"));
    }

    #[test]
    fn the_real_layout_here_is_detected() {
        // This machine and CI: v1 hybrid. The test states what it found, and fails if the
        // detection finds nothing usable.
        let l = Layout::detect().expect("cgroup layout");
        assert!(!l.parent_dirs().is_empty());
    }

    #[test]
    fn limits_are_validated() {
        let bad = [
            Limits {
                cpus: Some(0.0),
                ..Default::default()
            },
            Limits {
                memory: Some(1000),
                ..Default::default()
            },
            Limits {
                cpuset: Some("0;1".into()),
                ..Default::default()
            },
            Limits {
                io_weight: Some(0),
                ..Default::default()
            },
        ];
        for l in bad {
            assert!(l.validate().is_err(), "{l:?}");
        }
        assert_eq!(cpu_quota_us(0.1), 10_000);
        assert_eq!(cpu_quota_us(1.5), 150_000);
    }
}
