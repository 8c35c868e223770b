//! cgroup v2: one group in the unified hierarchy, under an `isobench` parent whose
//! controllers are enabled through `cgroup.subtree_control`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    cpu_quota_us, keyed_value, mkdir, mkdir_all, read_trimmed, read_u64, remove_dirs, write_file,
    CgroupError, Limits, Usage, CPU_PERIOD_US, PARENT,
};

/// The controllers a container group asks for on v2, when the hierarchy offers them.
const V2_WANTED: [&str; 5] = ["cpu", "cpuset", "memory", "io", "pids"];

/// The mounted unified hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    /// This process's group, relative to the mount.
    pub base: PathBuf,
}

impl Hierarchy {
    /// `<mount>/<base>/isobench`.
    pub fn parent_dir(&self) -> PathBuf {
        self.mount.join(&self.base).join(PARENT)
    }
}

/// A container's group in the unified hierarchy.
#[derive(Debug)]
pub struct Group {
    dir: PathBuf,
    facts: BTreeMap<String, String>,
}

fn controllers(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Enable `wanted ∩ available` for the children of `dir`.
fn enable_for_children(dir: &Path, wanted: &[String]) -> Result<(), CgroupError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let line = wanted
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    write_file(&dir.join("cgroup.subtree_control"), &line)
}

impl Group {
    pub fn create(h: &Hierarchy, name: &str, limits: &Limits) -> Result<Group, CgroupError> {
        // Nest beneath our own group; a non-root group that holds processes cannot give its
        // children controllers (the "no internal processes" rule: EBUSY), so fall back to
        // the hierarchy's root, which is exempt.
        let own = h.mount.join(&h.base);
        let mut attempt = Self::create_under(&own, name, limits);
        if attempt.is_err() && own != h.mount {
            attempt = Self::create_under(&h.mount, name, limits);
        }
        attempt
    }

    fn create_under(base: &Path, name: &str, limits: &Limits) -> Result<Group, CgroupError> {
        let available = controllers(base);
        let wanted: Vec<String> = V2_WANTED
            .iter()
            .filter(|c| available.iter().any(|a| a == *c))
            .map(|c| c.to_string())
            .collect();
        for (c, what) in [
            ("cpu", limits.cpus.map(|_| "--cpus")),
            ("memory", limits.memory.map(|_| "--memory")),
            ("cpuset", limits.cpuset.as_ref().map(|_| "--cpuset")),
        ] {
            if let Some(what) = what {
                if !wanted.iter().any(|w| w == c) {
                    return Err(CgroupError::ControllerMissing {
                        controller: c.into(),
                        what: what.into(),
                        reason: format!(
                            "{} does not list it in cgroup.controllers (enable it in the parent's cgroup.subtree_control)",
                            base.display()
                        ),
                    });
                }
            }
        }
        enable_for_children(base, &wanted)?;
        let parent = base.join(PARENT);
        mkdir_all(&parent)?;
        enable_for_children(&parent, &wanted)?;
        let dir = parent.join(name);
        mkdir(&dir)?;
        let mut g = Group {
            dir,
            facts: BTreeMap::new(),
        };
        match g.apply(limits, &wanted) {
            Ok(()) => Ok(g),
            Err(e) => {
                let _ = remove_dirs(&[g.dir.clone()]);
                Err(e)
            }
        }
    }

    fn apply(&mut self, limits: &Limits, enabled: &[String]) -> Result<(), CgroupError> {
        let dir = self.dir.clone();
        self.facts.insert("cgroup.version".into(), "v2".into());
        self.facts
            .insert("cgroup.controllers".into(), enabled.join(" "));
        self.facts
            .insert("instance.cgroup_paths".into(), dir.display().to_string());
        if let Some(c) = limits.cpus {
            let v = format!("{} {CPU_PERIOD_US}", cpu_quota_us(c));
            write_file(&dir.join("cpu.max"), &v)?;
            self.facts
                .insert("cgroup.cpu_limit".into(), format!("cpu.max={v}"));
        }
        if let Some(m) = limits.memory {
            write_file(&dir.join("memory.max"), &m.to_string())?;
            // The kernel creates memory.swap.max when it accounts swap; keep the group out
            // of swap so the limit is a limit.
            let swap = dir.join("memory.swap.max");
            let note = if swap.exists() {
                write_file(&swap, "0")?;
                "memory.swap.max=0"
            } else {
                "swap not accounted by this kernel"
            };
            self.facts.insert(
                "cgroup.memory_limit".into(),
                format!("memory.max={m}; {note}"),
            );
        }
        if let Some(cpus) = &limits.cpuset {
            write_file(&dir.join("cpuset.cpus"), cpus)?;
            self.facts.insert("cgroup.cpuset".into(), cpus.clone());
        }
        if let Some(w) = limits.io_weight {
            let fact = if enabled.iter().any(|c| c == "io") {
                let v = format!("default {w}");
                write_file(&dir.join("io.weight"), &v)?;
                format!("io.weight={v}")
            } else {
                "not available (the io controller is not enabled in this hierarchy)".into()
            };
            self.facts.insert("cgroup.io_weight".into(), fact);
        }
        Ok(())
    }

    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        write_file(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    pub fn usage(&self) -> Usage {
        Usage {
            cpu_ns: keyed_value(&self.dir.join("cpu.stat"), "usage_usec").map(|u| u * 1000),
            memory_peak_bytes: read_u64(&self.dir.join("memory.peak")),
            oom_kills: keyed_value(&self.dir.join("memory.events"), "oom_kill"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn facts(&self) -> BTreeMap<String, String> {
        self.facts.clone()
    }

    /// The current `memory.max` (test and facts helper).
    pub fn memory_max(&self) -> Result<String, CgroupError> {
        read_trimmed(&self.dir.join("memory.max"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(root: &Path, controllers: &str) -> Hierarchy {
        std::fs::write(root.join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        Hierarchy {
            mount: root.to_path_buf(),
            base: PathBuf::new(),
        }
    }

    #[test]
    fn limits_land_in_the_v2_files() {
        let t = tempfile::tempdir().unwrap();
        let h = fixture(t.path(), "cpuset cpu io memory hugetlb pids rdma misc\n");
        let limits = Limits {
            cpus: Some(0.1),
            memory: Some(64 << 20),
            cpuset: Some("0".into()),
            io_weight: Some(200),
        };
        let g = Group::create(&h, "isobench-9-0", &limits).unwrap();
        let dir = t.path().join("isobench/isobench-9-0");
        assert_eq!(g.dir(), dir);
        let rd = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(
            rd(&t.path().join("cgroup.subtree_control")),
            "+cpu +cpuset +memory +io +pids"
        );
        assert_eq!(
            rd(&t.path().join("isobench/cgroup.subtree_control")),
            "+cpu +cpuset +memory +io +pids"
        );
        assert_eq!(rd(&dir.join("cpu.max")), "10000 100000");
        assert_eq!(rd(&dir.join("memory.max")), (64u64 << 20).to_string());
        assert_eq!(g.memory_max().unwrap(), (64u64 << 20).to_string());
        assert_eq!(rd(&dir.join("cpuset.cpus")), "0");
        assert_eq!(rd(&dir.join("io.weight")), "default 200");
        assert_eq!(g.facts()["cgroup.version"], "v2");

        g.add_pid(77).unwrap();
        assert_eq!(rd(&dir.join("cgroup.procs")), "77");

        std::fs::write(
            dir.join("cpu.stat"),
            "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n",
        )
        .unwrap();
        std::fs::write(dir.join("memory.peak"), "8388608\n").unwrap();
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(
            g.usage(),
            Usage {
                cpu_ns: Some(2_500_000),
                memory_peak_bytes: Some(8 << 20),
                oom_kills: Some(1)
            }
        );
    }

    #[test]
    fn missing_io_is_reported_and_missing_memory_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let h = fixture(t.path(), "cpu memory pids\n");
        let g = Group::create(
            &h,
            "isobench-9-1",
            &Limits {
                io_weight: Some(100),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(g.facts()["cgroup.io_weight"].starts_with("not available"));

        // An empty cgroup.controllers, as in this machine's hybrid cgroup2 mount.
        let t2 = tempfile::tempdir().unwrap();
        let h2 = fixture(t2.path(), "");
        let err = Group::create(
            &h2,
            "isobench-9-2",
            &Limits {
                memory: Some(64 << 20),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("memory controller"), "{err}");
        assert!(!t2.path().join("isobench/isobench-9-2").exists());
    }

    #[test]
    fn a_busy_own_group_falls_back_to_the_root() {
        let t = tempfile::tempdir().unwrap();
        let h = fixture(t.path(), "cpu memory\n");
        // Our own group offers no controllers (as under a systemd scope without delegation).
        std::fs::create_dir_all(t.path().join("user.slice")).unwrap();
        std::fs::write(t.path().join("user.slice/cgroup.controllers"), "").unwrap();
        let h = Hierarchy {
            base: "user.slice".into(),
            ..h
        };
        let g = Group::create(
            &h,
            "isobench-9-3",
            &Limits {
                cpus: Some(0.5),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(g.dir(), t.path().join("isobench/isobench-9-3"));
        assert_eq!(
            std::fs::read_to_string(g.dir().join("cpu.max")).unwrap(),
            "50000 100000"
        );
    }
}
