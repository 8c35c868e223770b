//! cgroup v1: one directory per hierarchy (cpu, cpuacct, cpuset, memory, blkio, pids, alone
//! or co-mounted), nested beneath this process's own path in each hierarchy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    cpu_quota_us, keyed_value, mkdir, mkdir_all, read_trimmed, read_u64, remove_dirs, write_file,
    CgroupError, Limits, Usage, CPU_PERIOD_US, PARENT, WANTED,
};

/// One mounted v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted (`/sys/fs/cgroup/memory`).
    pub mount: PathBuf,
    /// The controllers it carries that isobench uses.
    pub controllers: Vec<String>,
    /// This process's group in it, relative to the mount (`process_api/abc`).
    pub base: PathBuf,
}

impl Hierarchy {
    pub fn has(&self, c: &str) -> bool {
        self.controllers.iter().any(|x| x == c)
    }

    /// `<mount>/<base>/isobench`.
    pub fn parent_dir(&self) -> PathBuf {
        self.mount.join(&self.base).join(PARENT)
    }
}

/// Whether a container group goes into this hierarchy.
pub fn used(h: &Hierarchy) -> bool {
    h.controllers.iter().any(|c| WANTED.contains(&c.as_str()))
}

/// A container's group: one directory per used hierarchy.
#[derive(Debug)]
pub struct Group {
    dirs: Vec<(Hierarchy, PathBuf)>,
    facts: BTreeMap<String, String>,
}

impl Group {
    pub fn create(hs: &[Hierarchy], name: &str, limits: &Limits) -> Result<Group, CgroupError> {
        let mut g = Group {
            dirs: Vec::new(),
            facts: BTreeMap::new(),
        };
        match g.populate(hs, name, limits) {
            Ok(()) => Ok(g),
            Err(e) => {
                let _ = remove_dirs(&g.dirs());
                Err(e)
            }
        }
    }

    fn populate(
        &mut self,
        hs: &[Hierarchy],
        name: &str,
        limits: &Limits,
    ) -> Result<(), CgroupError> {
        self.facts.insert("cgroup.version".into(), "v1".into());
        for h in hs.iter().filter(|h| used(h)) {
            let parent = h.parent_dir();
            mkdir_all(&parent)?;
            if h.has("cpuset") {
                inherit_cpuset(&parent)?;
            }
            let dir = parent.join(name);
            mkdir(&dir)?;
            self.dirs.push((h.clone(), dir.clone()));
            if h.has("cpuset") {
                let cpus = match &limits.cpuset {
                    Some(c) => c.clone(),
                    None => read_trimmed(&parent.join("cpuset.cpus"))?,
                };
                // Both must be set before any task can join (v1 rule).
                write_file(&dir.join("cpuset.cpus"), &cpus)?;
                let mems = read_trimmed(&parent.join("cpuset.mems"))?;
                write_file(&dir.join("cpuset.mems"), &mems)?;
                if limits.cpuset.is_some() {
                    self.facts.insert("cgroup.cpuset".into(), cpus);
                }
            }
            if h.has("cpu") {
                if let Some(c) = limits.cpus {
                    write_file(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    let quota = cpu_quota_us(c);
                    write_file(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
                    self.facts.insert(
                        "cgroup.cpu_limit".into(),
                        format!("cpu.cfs_quota_us={quota} cpu.cfs_period_us={CPU_PERIOD_US}"),
                    );
                }
            }
            if h.has("memory") {
                if let Some(m) = limits.memory {
                    write_file(&dir.join("memory.limit_in_bytes"), &m.to_string())?;
                    // memory+swap at the same value: no escape into swap where it is accounted.
                    // Availability is read from the parent: the kernel gives every group the
                    // same files, and a fixture tree can plant them there.
                    let swap = if parent.join("memory.memsw.limit_in_bytes").exists() {
                        write_file(&dir.join("memory.memsw.limit_in_bytes"), &m.to_string())?;
                        "memory.memsw.limit_in_bytes set equal (no swap)"
                    } else {
                        "swap not accounted by this kernel"
                    };
                    self.facts.insert(
                        "cgroup.memory_limit".into(),
                        format!("memory.limit_in_bytes={m}; {swap}"),
                    );
                }
            }
            if h.has("blkio") {
                if let Some(w) = limits.io_weight {
                    let file = ["blkio.weight", "blkio.bfq.weight"]
                        .into_iter()
                        .find(|f| parent.join(f).exists())
                        .map(|f| dir.join(f));
                    let fact = match file {
                        Some(p) => {
                            // v1 weights range 10..=1000.
                            let v = w.clamp(10, 1000);
                            write_file(&p, &v.to_string())?;
                            format!("{}={v}", p.file_name().unwrap_or_default().to_string_lossy())
                        }
                        None => "not available (no blkio.weight in the v1 blkio hierarchy: the block scheduler has no weights)".into(),
                    };
                    self.facts.insert("cgroup.io_weight".into(), fact);
                }
            }
        }
        let has = |c: &str| self.dirs.iter().any(|(h, _)| h.has(c));
        if limits.io_weight.is_some() && !has("blkio") {
            self.facts.insert(
                "cgroup.io_weight".into(),
                "not available (no v1 blkio hierarchy)".into(),
            );
        }
        for (c, what) in [
            ("cpu", limits.cpus.map(|_| "--cpus")),
            ("memory", limits.memory.map(|_| "--memory")),
            ("cpuset", limits.cpuset.as_ref().map(|_| "--cpuset")),
        ] {
            if let Some(what) = what {
                if !has(c) {
                    return Err(CgroupError::ControllerMissing {
                        controller: c.into(),
                        what: what.into(),
                        reason: "no v1 hierarchy carries it".into(),
                    });
                }
            }
        }
        self.facts.insert(
            "instance.cgroup_paths".into(),
            self.dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
        );
        Ok(())
    }

    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        for (_, d) in &self.dirs {
            write_file(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn dir_with(&self, c: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(h, _)| h.has(c))
            .map(|(_, d)| d.as_path())
    }

    pub fn usage(&self) -> Usage {
        let mem = self.dir_with("memory");
        Usage {
            cpu_ns: self
                .dir_with("cpuacct")
                .and_then(|d| read_u64(&d.join("cpuacct.usage"))),
            memory_peak_bytes: mem.and_then(|d| read_u64(&d.join("memory.max_usage_in_bytes"))),
            oom_kills: mem.and_then(oom_kills),
        }
    }

    pub fn reset_peak(&self) {
        if let Some(d) = self.dir_with("memory") {
            let _ = write_file(&d.join("memory.max_usage_in_bytes"), "0");
        }
    }

    pub fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.clone()).collect()
    }

    pub fn facts(&self) -> BTreeMap<String, String> {
        self.facts.clone()
    }
}

/// OOM kills in a v1 memory group: `oom_kill` in memory.oom_control (kernel ≥ 4.13); older
/// kernels only say the limit was hit (`memory.failcnt`), counted as a hint of one.
fn oom_kills(dir: &Path) -> Option<u64> {
    keyed_value(&dir.join("memory.oom_control"), "oom_kill")
        .or_else(|| read_u64(&dir.join("memory.failcnt")).map(|f| u64::from(f > 0)))
}

/// A v1 cpuset parent starts with empty `cpuset.cpus`/`cpuset.mems`; copy them from the
/// nearest ancestor that has them.
fn inherit_cpuset(parent: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let here = parent.join(file);
        if std::fs::read_to_string(&here).is_ok_and(|s| !s.trim().is_empty()) {
            continue;
        }
        let value = parent
            .ancestors()
            .skip(1)
            .find_map(|a| {
                std::fs::read_to_string(a.join(file))
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            })
            .ok_or_else(|| CgroupError::Read {
                path: here.clone(),
                source: std::io::Error::other("no ancestor has a non-empty value"),
            })?;
        write_file(&here, &value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture tree shaped like this machine: separate hierarchies, memory nested.
    fn fixture(root: &Path) -> Vec<Hierarchy> {
        let mk = |name: &str, base: &str| {
            let mount = root.join(name);
            std::fs::create_dir_all(mount.join(base)).unwrap();
            Hierarchy {
                mount,
                controllers: vec![name.to_string()],
                base: base.into(),
            }
        };
        let hs = vec![
            mk("cpu", ""),
            mk("cpuacct", ""),
            mk("cpuset", ""),
            mk("memory", "process_api/abc"),
            mk("blkio", ""),
        ];
        std::fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
        hs
    }

    #[test]
    fn limits_land_in_the_v1_files() {
        let t = tempfile::tempdir().unwrap();
        let hs = fixture(t.path());
        // The kernel creates memsw in every memory group; the fixture says swap is accounted.
        let memdir = t
            .path()
            .join("memory/process_api/abc/isobench/isobench-7-0");
        let limits = Limits {
            cpus: Some(0.1),
            memory: Some(64 << 20),
            cpuset: Some("1".into()),
            io_weight: Some(500),
        };
        let g = Group::create(&hs, "isobench-7-0", &limits).unwrap();
        let rd = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
        assert_eq!(rd("cpu/isobench/isobench-7-0/cpu.cfs_quota_us"), "10000");
        assert_eq!(rd("cpu/isobench/isobench-7-0/cpu.cfs_period_us"), "100000");
        assert_eq!(
            rd("memory/process_api/abc/isobench/isobench-7-0/memory.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
        // cpuset: parent inherited from the root, child as asked, mems copied.
        assert_eq!(rd("cpuset/isobench/cpuset.cpus"), "0-1");
        assert_eq!(rd("cpuset/isobench/cpuset.mems"), "0");
        assert_eq!(rd("cpuset/isobench/isobench-7-0/cpuset.cpus"), "1");
        assert_eq!(rd("cpuset/isobench/isobench-7-0/cpuset.mems"), "0");
        // No blkio.weight in the fixture: reported, not failed.
        assert!(g.facts()["cgroup.io_weight"].starts_with("not available"));
        assert_eq!(g.dirs().len(), 5);
        assert!(g.dirs().contains(&memdir));

        g.add_pid(4242).unwrap();
        assert_eq!(rd("cpu/isobench/isobench-7-0/cgroup.procs"), "4242");

        // Accounting read back from the kernel's file formats.
        std::fs::write(
            t.path().join("cpuacct/isobench/isobench-7-0/cpuacct.usage"),
            "123456789\n",
        )
        .unwrap();
        std::fs::write(memdir.join("memory.max_usage_in_bytes"), "1048576\n").unwrap();
        std::fs::write(
            memdir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(
            g.usage(),
            Usage {
                cpu_ns: Some(123_456_789),
                memory_peak_bytes: Some(1 << 20),
                oom_kills: Some(2)
            }
        );
        g.reset_peak();
        assert_eq!(
            std::fs::read_to_string(memdir.join("memory.max_usage_in_bytes")).unwrap(),
            "0"
        );
    }

    #[test]
    fn memsw_and_blkio_weight_are_written_when_the_kernel_has_them() {
        let t = tempfile::tempdir().unwrap();
        let hs = fixture(t.path());
        // The kernel shows the same files in every group: plant them in the parents.
        let memparent = t.path().join("memory/process_api/abc/isobench");
        std::fs::create_dir_all(&memparent).unwrap();
        std::fs::write(memparent.join("memory.memsw.limit_in_bytes"), "max\n").unwrap();
        std::fs::create_dir_all(t.path().join("blkio/isobench")).unwrap();
        std::fs::write(t.path().join("blkio/isobench/blkio.weight"), "100\n").unwrap();
        let limits = Limits {
            memory: Some(64 << 20),
            io_weight: Some(5000),
            ..Default::default()
        };
        let g = Group::create(&hs, "isobench-7-1", &limits).unwrap();
        let rd = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(
            rd(memparent.join("isobench-7-1/memory.memsw.limit_in_bytes")),
            (64u64 << 20).to_string()
        );
        // v1 weights top out at 1000.
        assert_eq!(
            rd(t.path().join("blkio/isobench/isobench-7-1/blkio.weight")),
            "1000"
        );
        assert_eq!(g.facts()["cgroup.io_weight"], "blkio.weight=1000");
    }

    #[test]
    fn a_failed_create_removes_what_it_made() {
        let t = tempfile::tempdir().unwrap();
        let hs = fixture(t.path());
        let memdir = t
            .path()
            .join("memory/process_api/abc/isobench/isobench-7-3");
        std::fs::create_dir_all(&memdir).unwrap();
        let err = Group::create(&hs, "isobench-7-3", &Limits::default()).unwrap_err();
        assert!(matches!(err, CgroupError::Create { .. }), "{err}");
        // cpu and cpuacct groups were made before the memory one failed; they are gone.
        // (The fixture's cpuset group holds plain files, which rmdir cannot remove, exactly
        // as it could not remove a real group with tasks; so only the empty ones are checked.)
        assert!(!t.path().join("cpu/isobench/isobench-7-3").exists());
        assert!(!t.path().join("cpuacct/isobench/isobench-7-3").exists());
    }

    #[test]
    fn a_limit_without_its_controller_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let hs: Vec<Hierarchy> = fixture(t.path())
            .into_iter()
            .filter(|h| !h.has("memory"))
            .collect();
        let err = Group::create(
            &hs,
            "isobench-7-2",
            &Limits {
                memory: Some(64 << 20),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("memory controller"), "{err}");
        assert!(!t.path().join("cpu/isobench/isobench-7-2").exists());
    }

    #[test]
    fn oom_kills_fall_back_to_failcnt() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("memory.failcnt"), "3\n").unwrap();
        assert_eq!(oom_kills(t.path()), Some(1));
    }
}
