//! Claim 3's freezer: a busy process in a group of its own in the freezer hierarchy (v1
//! `freezer.state`, or v2 `cgroup.freeze`), its CPU time running, frozen and thawed.
//! docs/CLAIMS.md explains the experiment.
#![allow(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::env::container::cgroup::{self as cg, parse_mountinfo, parse_self_cgroup};

#[derive(Clone, Debug, Serialize)]
pub struct FreezerEvidence {
    /// `v1` (`freezer.state`) or `v2` (`cgroup.freeze`).
    pub interface: String,
    pub group: PathBuf,
    /// CPU time the busy process got in each phase, ms, over `phase_ms` each.
    pub running_ms: f64,
    pub frozen_ms: f64,
    pub thawed_ms: f64,
    pub phase_ms: f64,
}

/// A busy process, killed and reaped on drop.
struct Spinner(i32);

impl Spinner {
    fn start() -> Result<Spinner> {
        // SAFETY: the child only spins (no allocation, no locks) until it is killed.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => bail!(
                "fork for the freezer's busy process failed: {}",
                std::io::Error::last_os_error()
            ),
            0 => loop {
                std::hint::spin_loop();
            },
            pid => Ok(Spinner(pid)),
        }
    }

    /// CPU time so far, ns (first field of /proc/PID/schedstat).
    fn cpu_ns(&self) -> Result<u64> {
        let p = format!("/proc/{}/schedstat", self.0);
        std::fs::read_to_string(&p)
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("reading {p} (the kernel needs schedstats)"))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    }
}

/// A cgroup directory removed on drop (after its tasks are killed).
struct Group(PathBuf);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = cg::remove_dirs(std::slice::from_ref(&self.0));
    }
}

/// Where a freezer group can be made: (interface, parent directory).
fn freezer_parent() -> Result<(String, PathBuf)> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    let sc = std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    let mounts = parse_mountinfo(&mi);
    let member = parse_self_cgroup(&sc);
    let place = |m: &cg::MountEntry, path: &str| {
        let rel = path
            .strip_prefix(m.root.trim_end_matches('/'))
            .unwrap_or(path);
        m.mount_point.join(rel.trim_start_matches('/'))
    };
    if let Some(m) = mounts
        .iter()
        .find(|m| m.fstype == "cgroup" && m.super_opts.split(',').any(|o| o == "freezer"))
    {
        let path = member
            .iter()
            .find(|(c, _)| c.split(',').any(|x| x == "freezer"))
            .map(|(_, p)| p.as_str())
            .unwrap_or("/");
        return Ok(("v1".into(), place(m, path)));
    }
    if let Some(m) = mounts.iter().find(|m| m.fstype == "cgroup2") {
        let path = member
            .iter()
            .find(|(c, _)| c.is_empty())
            .map(|(_, p)| p.as_str())
            .unwrap_or("/");
        return Ok(("v2".into(), place(m, path)));
    }
    bail!("no freezer: neither a cgroup v1 hierarchy with the freezer controller nor a cgroup2 mount (cgroup.freeze) is mounted")
}

/// A busy process's CPU time running, frozen and thawed. `Err`: no freezer here, or the
/// experiment failed.
pub fn observe() -> Result<FreezerEvidence> {
    let (interface, parent) = freezer_parent()?;
    let group = Group(parent.join(format!("isobench-claim3-{}", std::process::id())));
    cg::mkdir(&group.0)?;
    let (file, frozen, thawed) = if interface == "v1" {
        ("freezer.state", "FROZEN", "THAWED")
    } else {
        ("cgroup.freeze", "1", "0")
    };
    let control = group.0.join(file);
    if !control.exists() {
        bail!(
            "{} has no {file}: the kernel's freezer is missing (cgroup v2 needs Linux 5.2)",
            group.0.display()
        );
    }
    let spinner = Spinner::start()?;
    cg::write_file(&group.0.join("cgroup.procs"), &spinner.0.to_string())?;
    let phase = Duration::from_millis(700);
    let cpu_over = |d: Duration| -> Result<f64> {
        let a = spinner.cpu_ns()?;
        std::thread::sleep(d);
        Ok((spinner.cpu_ns()? - a) as f64 / 1e6)
    };
    let running_ms = cpu_over(phase)?;
    cg::write_file(&control, frozen)?;
    // Freezing completes asynchronously: wait until the group says so (v1: FROZEN; v2:
    // `frozen 1` in cgroup.events).
    let t0 = Instant::now();
    loop {
        let done = if interface == "v1" {
            cg::read_trimmed(&control)? == "FROZEN"
        } else {
            cg::keyed_value(&group.0.join("cgroup.events"), "frozen") == Some(1)
        };
        if done {
            break;
        }
        if t0.elapsed() > Duration::from_secs(5) {
            bail!(
                "the group {} did not report frozen within 5 s",
                group.0.display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let frozen_ms = cpu_over(phase)?;
    cg::write_file(&control, thawed)?;
    let thawed_ms = cpu_over(phase)?;
    drop(spinner);
    drop(group);
    Ok(FreezerEvidence {
        interface,
        group: parent,
        running_ms,
        frozen_ms,
        thawed_ms,
        phase_ms: phase.as_secs_f64() * 1e3,
    })
}

/// The name prefix of claim 3's groups: `isobench-claim3-<pid of isobench>`.
pub const GROUP_PREFIX: &str = "isobench-claim3-";

/// Claim 3's freezer groups whose `isobench claims` process is dead (killed mid-experiment),
/// in every cgroup v1 freezer hierarchy and cgroup2 mount. A live run's group is not listed.
pub fn leftovers() -> Vec<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let roots = parse_mountinfo(&mi).into_iter().filter(|m| {
        m.fstype == "cgroup2"
            || (m.fstype == "cgroup" && m.super_opts.split(',').any(|o| o == "freezer"))
    });
    let mut found = Vec::new();
    for m in roots {
        find_groups(&m.mount_point, 0, &mut found);
    }
    found.sort();
    found.dedup();
    found
}

/// Dead owners' claim 3 groups under `dir`, at most a few levels down (the group is made
/// in the cgroup isobench runs in, near the top).
fn find_groups(dir: &std::path::Path, depth: u32, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = e.file_name();
        let owner = name
            .to_str()
            .and_then(|n| n.strip_prefix(GROUP_PREFIX))
            .and_then(|p| p.parse::<i32>().ok());
        match owner {
            Some(pid) if !crate::env::container::cleanup::owner_alive(pid, None) => {
                found.push(e.path())
            }
            Some(_) => {}
            None if depth < 4 => find_groups(&e.path(), depth + 1, found),
            None => {}
        }
    }
}

/// Remove [`leftovers`]: thaw each group (a frozen task cannot die), kill its tasks and
/// remove it. Returns the groups removed.
pub fn clean_leftovers() -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for g in leftovers() {
        for (file, thawed) in [("freezer.state", "THAWED"), ("cgroup.freeze", "0")] {
            let control = g.join(file);
            if control.exists() {
                cg::write_file(&control, thawed)?;
            }
        }
        cg::remove_dirs(std::slice::from_ref(&g))
            .with_context(|| format!("removing claim 3's freezer group {}", g.display()))?;
        removed.push(g);
    }
    Ok(removed)
}
