//! The container environment (docs/ARCHITECTURE.md), built from Linux primitives: a clone
//! into new mount, PID, UTS, IPC and network namespaces, a cgroup of its own (v1 or v2) with
//! optional limits, then a cgroup namespace, private mount propagation, an overlayfs root,
//! `pivot_root`, a fresh `/proc`, a hostname and loopback, then Docker's default capabilities,
//! `no_new_privs` and its seccomp profile (`security.rs`). The runner inside, and the loop
//! around it, are the same as native's (`process.rs`, `runner.rs`): this module is only the
//! launch ([`Launch`]). The runner is PID 1 of its PID namespace.
//!
//! Launch order: the parent creates the state marker, the container's directories and its
//! cgroup, then clones the child into the new namespaces (the child is PID 1 there); the
//! parent writes the child's PID into the cgroup and says "go"; the child unshares its cgroup
//! namespace (so its own cgroup is its root), makes `/` private, mounts the root, drops its
//! privileges ([`security::Security::apply`]) and runs.
//!
//! The runner never forks, so PID 1 has nothing to reap; it installs no signal handlers, so
//! (as PID 1 of a namespace) it ignores a terminal's SIGINT and SIGTERM: it ends only when
//! isobench tells it to, kills it, or dies (PDEATHSIG). When it exits, its namespaces, and
//! every mount made in them, go with it; `stop` then removes the cgroup and directories.
#![allow(unsafe_code)]

pub mod cgroup;
mod child;
pub mod cleanup;
pub mod exec;
#[cfg(test)]
mod inside;
pub mod namespaces;
pub mod profile;
pub mod rootfs;
pub mod security;

use child::{
    child_run, ChildPlan, STEPS, STEP_CLONED, STEP_HOST, STEP_JOINED, STEP_NAMESPACES, STEP_ROOT,
    STEP_SECURITY,
};

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::unistd::{pipe2, Pid};

pub use crate::plan::Upper;
pub use cgroup::{CgroupError, Layout, Limits};
pub use cleanup::{clean_leftovers, find_leftovers, CleanupError, Leftover};

use super::affinity;
use super::process::{self, ChildBody, RunnerMemory};
use super::runner::{self, DiskFile, Launch, Launched, Runner, RunnerPipes};
use super::{EnvError, EnvKind, Environment, InstanceSpec, Invocation, RawRun};
use crate::tsc;
use cgroup::Cgroup;
use rootfs::{Rootfs, RootfsError};
use security::Security;

/// The byte the parent sends once the child is in its cgroup.
const GO: u8 = b'G';

pub use crate::plan::ContainerOptions;

/// The cgroup limits asked for by the container's options.
fn limits(opts: &ContainerOptions) -> Limits {
    Limits {
        cpus: opts.cpus,
        memory: opts.memory,
        cpuset: opts.cpuset.clone(),
        io_weight: opts.io_weight,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Cleanup(#[from] CleanupError),
    #[error("creating a pipe: {0} (too many open files?)")]
    Pipe(#[source] Errno),
    #[error("clone into new mount/PID/UTS/IPC/network namespaces: {0} (the container environment needs root and a kernel with namespaces)")]
    Clone(#[source] Errno),
    #[error("moving the container's first process into its cgroup: {0}")]
    JoinCgroup(#[source] CgroupError),
    #[error("the container's set-up failed: {0}")]
    ChildSetup(String),
    #[error("{0}")]
    Security(String),
}

/// Per-process counter for unique container names.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Everything one container created on the host; undone in `teardown` and in `Drop`.
/// The runner must be dead before (its namespaces, and the mounts in them, go with it).
struct Resources {
    name: String,
    rootfs: Option<Rootfs>,
    cgroup: Option<Cgroup>,
    marker: Option<PathBuf>,
}

impl Resources {
    fn teardown(&mut self) -> Result<(), ContainerError> {
        let mut first: Option<ContainerError> = None;
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.remove() {
                first.get_or_insert(e.into());
            }
        }
        if let Some(r) = self.rootfs.take() {
            if let Err(e) = r.remove() {
                first.get_or_insert(e.into());
            }
        }
        // Keep the marker when something stayed behind, so `isobench clean` can finish.
        if first.is_none() {
            if let Some(m) = self.marker.take() {
                let _ = std::fs::remove_file(&m);
                // The state directory goes when the last marker does (remove_dir only
                // removes an empty directory, so a concurrent run's markers are safe).
                if let Some(dir) = m.parent() {
                    let _ = std::fs::remove_dir(dir);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// A pinned CPU outside the container's cpuset is a clear error at start, naming both and
/// the fix. (A cpuset that is not a CPU list is left to the cgroup write, which names it.)
fn check_cpu_in_cpuset(
    env: &str,
    cpu: Option<usize>,
    cpuset: Option<&str>,
) -> Result<(), EnvError> {
    let (Some(cpu), Some(list)) = (cpu, cpuset) else {
        return Ok(());
    };
    match affinity::parse_cpu_list(list) {
        Some(set) if !set.contains(&cpu) => Err(EnvError::setup(
            env,
            format!("pinning the runner to CPU {cpu}"),
            format!(
                "CPU {cpu} (--cpu) is outside the container's cpuset {list} (--cpuset): pick a --cpu inside the set ({}), or widen --cpuset to include CPU {cpu}",
                affinity::format_cpu_list(&set)
            ),
        )),
        _ => Ok(()),
    }
}

/// Host-side timestamps of one launch (TSC), after its start.
#[derive(Clone, Copy, Debug, Default)]
struct LaunchMarks {
    dirs: u64,
    cgroup: u64,
    clone: u64,
}

/// The container environment.
pub struct Container {
    label: String,
    opts: ContainerOptions,
    instance: Option<Runner<Resources>>,
    /// What the container's process applies last (compiled once), or why it cannot be built.
    security: Result<Security, String>,
    last_start: Vec<(&'static str, u64)>,
    /// The CPU the runner of the last `start` was pinned to.
    cpu: Option<usize>,
}

impl Container {
    /// A container environment labelled `label` (normally `container`) with `opts`.
    pub fn new(label: &str, opts: ContainerOptions) -> Container {
        Container {
            label: label.to_string(),
            security: Security::new(opts.seccomp, opts.caps).map_err(|e| e.to_string()),
            opts,
            instance: None,
            last_start: Vec::new(),
            cpu: None,
        }
    }

    pub fn options(&self) -> &ContainerOptions {
        &self.opts
    }

    /// Why the container environment cannot run here, if it cannot.
    pub fn probe() -> Result<(), String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("the container environment needs root (namespaces, mounts and cgroups); run isobench as root".into());
        }
        let fs = std::fs::read_to_string("/proc/filesystems")
            .map_err(|e| format!("cannot read /proc/filesystems ({e}); is /proc mounted?"))?;
        if !fs
            .lines()
            .any(|l| l.split_whitespace().last() == Some("overlay"))
        {
            return Err(
                "overlayfs is not in /proc/filesystems; load it with `modprobe overlay`".into(),
            );
        }
        for ns in ["mnt", "pid", "uts", "ipc", "net", "cgroup"] {
            if !std::path::Path::new("/proc/self/ns").join(ns).exists() {
                return Err(format!(
                    "the kernel has no {ns} namespaces (/proc/self/ns/{ns} is missing)"
                ));
            }
        }
        Layout::detect().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The last `measure_start`'s steps, in TSC cycles each, in order.
    pub fn last_start_breakdown(&self) -> &[(&'static str, u64)] {
        &self.last_start
    }

    fn err(&self, op: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> EnvError {
        EnvError::setup(&self.label, op, e)
    }

    fn launcher(&self) -> Launcher<'_> {
        Launcher {
            label: &self.label,
            opts: &self.opts,
            security: self.security.as_ref(),
            marks: LaunchMarks::default(),
        }
    }

    /// The running instance's first process (the runner, PID 1 inside), as seen from the
    /// host: what `nsenter -t PID` would be given. `None` when not started.
    pub fn runner_pid(&self) -> Option<i32> {
        self.instance.as_ref().map(|r| r.pid().as_raw())
    }

    /// The running instance's directories on the host (lower, upper, work, merged) and its
    /// hostname (the container's name). `None` when not started.
    pub fn instance_dirs(&self) -> Option<(&Rootfs, &str)> {
        let res = self.instance.as_ref()?.resources();
        Some((res.rootfs.as_ref()?, res.name.as_str()))
    }

    /// The running instance's cgroup directories (one per v1 hierarchy, one on v2).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        self.instance
            .as_ref()
            .and_then(|r| r.resources().cgroup.as_ref())
            .map(|c| c.dirs())
            .unwrap_or_default()
    }

    fn teardown_instance(&mut self) -> Result<(), EnvError> {
        if let Some(mut runner) = self.instance.take() {
            runner.stop();
            runner
                .resources_mut()
                .teardown()
                .map_err(|e| self.err("removing the container", e))?;
        }
        Ok(())
    }
}

/// The container's launch: the host-side resources, then a clone into new namespaces whose
/// child sets up the container before it runs its body.
struct Launcher<'a> {
    label: &'a str,
    opts: &'a ContainerOptions,
    security: Result<&'a Security, &'a String>,
    /// When the launch's host-side steps ended (read by the start-up breakdown).
    marks: LaunchMarks,
}

impl Launcher<'_> {
    /// Create the host-side resources and clone the child. On success the child is in its
    /// cgroup and has been told to go; on error everything is undone.
    fn launch_container(
        &mut self,
        spec: &InstanceSpec,
        mem: &RunnerMemory,
        body: &ChildBody,
        pipes: RunnerPipes,
    ) -> Result<Launched<Resources>, ContainerError> {
        let security = self
            .security
            .map_err(|e| ContainerError::Security(e.clone()))?;
        let pid = std::process::id();
        let layout = Layout::detect()?;
        let mut res = None;
        for _ in 0..16 {
            let name = cleanup::container_name(pid, NEXT_ID.fetch_add(1, Ordering::Relaxed));
            if !spec.scratch.join(&name).exists() {
                res = Some(Resources {
                    name,
                    rootfs: None,
                    cgroup: None,
                    marker: None,
                });
                break;
            }
        }
        let mut res = res.ok_or_else(|| {
            ContainerError::Rootfs(RootfsError::CreateDir {
                path: spec.scratch.clone(),
                source: std::io::Error::other("no free container name"),
            })
        })?;
        let mut marker = cleanup::Marker {
            name: res.name.clone(),
            owner_pid: pid as i32,
            owner_start: cleanup::start_time(pid as i32),
            dir: Some(spec.scratch.join(&res.name)),
            cgroups: layout.group_dirs(&res.name),
        };
        res.marker = Some(marker.store(std::path::Path::new(cleanup::STATE_DIR))?);
        let rootfs = Rootfs::prepare(&spec.scratch, &res.name, self.opts.upper)?;
        let root = rootfs.plan()?;
        res.rootfs = Some(rootfs);
        self.marks.dirs = tsc::now();
        let cg = Cgroup::create(&layout, &res.name, &limits(self.opts))?;
        if cg.dirs() != marker.cgroups {
            marker.cgroups = cg.dirs();
            marker.store(std::path::Path::new(cleanup::STATE_DIR))?;
        }
        res.cgroup = Some(cg);
        self.marks.cgroup = tsc::now();

        let (sync_r, sync_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ContainerError::Pipe)?;
        let hostname = CString::new(res.name.clone())
            .map_err(|_| ContainerError::ChildSetup("container name has a NUL byte".into()))?;
        let self_join = res.cgroup.as_ref().and_then(|c| c.self_join_files());
        let join = self_join
            .iter()
            .flatten()
            .map(|p| CString::new(p.as_os_str().as_encoded_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ContainerError::ChildSetup("a cgroup path has a NUL byte".into()))?;
        let [cmd_w, done_r] = pipes.parent_ends();
        let plan = ChildPlan {
            join,
            sync_r: sync_r.as_raw_fd(),
            close: [sync_w.as_raw_fd(), cmd_w, done_r],
            root,
            hostname,
            security,
            steps: mem.records.as_ptr().cast(),
            body,
        };
        self.marks.clone = tsc::now();
        // SAFETY: the child runs only `child_run`: raw system calls on data prepared above,
        // no allocation, no locks; it never returns.
        let child = match unsafe { namespaces::clone_into_namespaces(namespaces::CLONE_NAMESPACES) }
            .map_err(ContainerError::Clone)?
        {
            namespaces::Cloned::Child => child_run(&plan),
            namespaces::Cloned::Parent { child } => child,
        };
        drop(plan);
        drop(sync_r);
        let mut handle = pipes.into_handle(Pid::from_raw(child), self.label);
        let joined = match (&res.cgroup, &self_join) {
            (Some(cg), None) => cg.add_pid(child).map_err(ContainerError::JoinCgroup),
            _ => Ok(()),
        };
        if let Err(e) = joined {
            handle.kill_and_reap();
            return Err(e);
        }
        if process::raw_write(sync_w.as_raw_fd(), &[GO]) != 1 {
            let how = handle.kill_and_reap();
            return Err(ContainerError::ChildSetup(format!(
                "the container's first process {how} before it could start"
            )));
        }
        drop(sync_w);
        Ok(Launched {
            handle,
            resources: res,
        })
    }
}

impl Launch for Launcher<'_> {
    type Resources = Resources;

    fn label(&self) -> &str {
        self.label
    }

    /// A pinned container needs its CPU inside its `--cpuset`: joining the cpuset cgroup
    /// confines the runner to those CPUs, and the kernel then refuses any other.
    /// So do the CPUs of its other threads (`--threads`).
    fn check(&self, spec: &InstanceSpec) -> Result<(), EnvError> {
        check_cpu_in_cpuset(self.label, spec.cpu, self.opts.cpuset.as_deref())?;
        let list = self.opts.cpuset.as_deref();
        match (list.and_then(affinity::parse_cpu_list), list) {
            (Some(set), Some(list)) if spec.threads > 1 => {
                match spec.thread_cpus.iter().find(|c| !set.contains(c)) {
                    Some(cpu) => Err(EnvError::setup(
                        self.label,
                        format!("pinning a runner thread to CPU {cpu}"),
                        format!(
                            "--threads {} puts a thread on CPU {cpu}, outside the container's cpuset {list} (--cpuset): widen --cpuset to CPUs {}, or use fewer --threads",
                            spec.threads,
                            spec.thread_cpus
                                .iter()
                                .map(|c| c.to_string())
                                .collect::<Vec<_>>()
                                .join(",")
                        ),
                    )),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// The disk is in the container's own `/scratch`: on the overlay's upper layer, removed
    /// with it.
    fn disk(&self, _spec: &InstanceSpec) -> Result<DiskFile, EnvError> {
        Ok(DiskFile {
            in_child: rootfs::DISK_PATH.to_owned(),
            on_host: None,
        })
    }

    fn launch(
        &mut self,
        spec: &InstanceSpec,
        mem: &RunnerMemory,
        body: &ChildBody,
        pipes: RunnerPipes,
    ) -> Result<Launched<Resources>, EnvError> {
        self.launch_container(spec, mem, body, pipes)
            .map_err(|e| EnvError::setup(self.label, "starting the container", e))
    }
}

impl Environment for Container {
    fn label(&self) -> &str {
        &self.label
    }

    fn kind(&self) -> EnvKind {
        EnvKind::Container
    }

    fn start(&mut self, spec: &InstanceSpec) -> Result<(), EnvError> {
        self.stop()?;
        self.cpu = spec.cpu;
        self.instance = Some(Runner::start(&mut self.launcher(), spec)?);
        Ok(())
    }

    fn invoke(&mut self, inv: &Invocation) -> Result<RawRun, EnvError> {
        let Some(runner) = self.instance.as_mut() else {
            return Err(self.err("invoking a workload", "the environment was not started"));
        };
        let cg = runner.resources().cgroup.as_ref();
        let before = cg.map(|c| c.usage()).unwrap_or_default();
        if let Some(c) = cg {
            c.reset_peak();
        }
        let r = runner.invoke(inv);
        let after = runner
            .resources()
            .cgroup
            .as_ref()
            .map(|c| c.usage())
            .unwrap_or_default();
        match r {
            Ok(mut raw) => {
                if let (Some(a), Some(b)) = (after.cpu_ns, before.cpu_ns) {
                    raw.counters
                        .insert("cgroup.cpu_usage_ns".into(), a.saturating_sub(b));
                }
                if let Some(p) = after.memory_peak_bytes {
                    raw.counters.insert("cgroup.memory_peak_bytes".into(), p);
                }
                Ok(raw)
            }
            Err(e) => {
                // Any error ends the instance: the runner is gone (a crash or a deadline,
                // already reaped) or is stopped here (a bad status); then the rest goes.
                let oom = after.oom_kills.unwrap_or(0) > before.oom_kills.unwrap_or(0);
                let e = match (e, oom) {
                    (EnvError::Crashed { env, workload, detail }, true) => EnvError::Crashed {
                        env,
                        workload,
                        detail: format!(
                            "killed by the container's memory limit ({} bytes): the OOM killer ended the runner ({detail}); raise the container's memory limit or run a smaller workload",
                            self.opts.memory.map_or("?".into(), |m| m.to_string())
                        ),
                    },
                    (e, _) => e,
                };
                if let Some(mut runner) = self.instance.take() {
                    runner.stop();
                    let _ = runner.resources_mut().teardown();
                }
                Err(e)
            }
        }
    }

    fn measure_start(&mut self, spec: &InstanceSpec) -> Result<u64, EnvError> {
        let mut launcher = self.launcher();
        // On error the probe has been reaped and its container removed (dropped).
        let mut m = runner::measure_start(&mut launcher, spec)?;
        let marks = launcher.marks;
        m.resources
            .teardown()
            .map_err(|e| self.err("removing the start-up probe's container", e))?;
        let first = m.first_instruction;
        let steps = m.mem.read_records(STEPS as u64);
        let points = [
            ("marker + directories", marks.dirs),
            ("cgroup create + limits", marks.cgroup),
            ("pipes, plan", marks.clone),
            ("clone (mnt pid uts ipc net namespaces)", steps[STEP_CLONED]),
            ("child joins its cgroup", steps[STEP_JOINED]),
            (
                "cgroup namespace, private propagation",
                steps[STEP_NAMESPACES],
            ),
            ("overlay, /dev binds, pivot_root, /proc", steps[STEP_ROOT]),
            ("hostname, loopback up", steps[STEP_HOST]),
            ("caps, no_new_privs, seccomp", steps[STEP_SECURITY]),
            ("map image + control, enter image", first),
        ];
        let mut prev = m.launched;
        self.last_start = points
            .iter()
            .map(|&(name, t)| {
                let d = t.saturating_sub(prev);
                prev = t.max(prev);
                (name, d)
            })
            .collect();
        Ok(m.cycles())
    }

    fn facts(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        f.insert("namespaces".into(), namespaces::NAMESPACE_NAMES.into());
        f.insert(
            "rootfs".into(),
            format!(
                "overlayfs; lower: read-only skeleton; upper+work: {}",
                match self.opts.upper {
                    Upper::Disk => "scratch directory (same filesystem as native)",
                    Upper::Tmpfs => "tmpfs inside the container",
                }
            ),
        );
        f.insert("upper".into(), self.opts.upper.name().into());
        match &self.security {
            Ok(s) => f.extend(s.facts()),
            Err(e) => {
                f.insert("seccomp".into(), format!("unavailable: {e}"));
            }
        }
        let show = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        f.insert("cpus".into(), show(self.opts.cpus.map(|c| c.to_string())));
        f.insert(
            "memory_bytes".into(),
            show(self.opts.memory.map(|m| m.to_string())),
        );
        f.insert("cpuset".into(), show(self.opts.cpuset.clone()));
        f.insert("cpu".into(), super::cpu_fact(self.cpu));
        f.insert(
            "io_weight".into(),
            show(self.opts.io_weight.map(|w| w.to_string())),
        );
        match Layout::detect() {
            Ok(l) => f.insert("cgroup_version".into(), l.version().into()),
            Err(e) => f.insert("cgroup_version".into(), format!("unknown ({e})")),
        };
        if let Some(cg) = self
            .instance
            .as_ref()
            .and_then(|r| r.resources().cgroup.as_ref())
        {
            f.extend(cg.facts());
        }
        f
    }

    fn stop(&mut self) -> Result<(), EnvError> {
        self.teardown_instance()
    }

    fn loaded_image(&self) -> Option<std::io::Result<Vec<u8>>> {
        Some(self.instance.as_ref()?.loaded_image())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod security_tests;
