//! The OCI runtime environments: `runc`, `crun`, `runsc` (gVisor) and `oci:PATH` for any
//! other binary that follows the OCI runtime command line. Each runs the same image through
//! an exec'd runner (`runner.rs`) in a bundle isobench writes (`bundle.rs`), driven through
//! the runtime's command line (`runtime.rs`); everything it creates is deleted on every exit
//! path, and `isobench clean` finds what a killed run left (`cleanup.rs`). See
//! docs/RUNTIMES.md.

pub mod bundle;
pub mod cleanup;
pub mod exec;
pub mod instance;
pub mod runner;
pub mod runtime;
pub mod seccomp;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use bundle::{Bind, Bundle, BundleError, BundleSpec, Resources};
pub use runtime::{Runtime, RuntimeError};

use super::{EnvError, EnvKind, Environment, InstanceSpec, Invocation, RawRun};
use crate::env::container::security::{caps_of, Security};
use crate::plan::{ContainerOptions, Seccomp};
use instance::Instance;

/// The runtime name of an OCI kind (`oci` for a binary given by path).
pub fn runtime_name(kind: EnvKind) -> Option<&'static str> {
    Some(match kind {
        EnvKind::Runc => "runc",
        EnvKind::Crun => "crun",
        EnvKind::Runsc => "runsc",
        EnvKind::Oci => "oci",
        _ => return None,
    })
}

/// Find `name` on `PATH` (and in the sbin directories, where Debian puts runc).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The runtime of an OCI `kind`; `oci_path` is the binary of `oci:PATH`.
pub fn runtime_for(kind: EnvKind, oci_path: Option<&Path>) -> Result<Runtime, String> {
    let name = runtime_name(kind).ok_or_else(|| format!("{kind} is not an OCI runtime"))?;
    if kind == EnvKind::Oci {
        let p = oci_path
            .ok_or("the oci environment needs the runtime's binary: --env oci:/path/to/runtime")?;
        if !is_executable(p) {
            return Err(format!(
                "{} is not an executable file (give --env oci:PATH the path of an OCI runtime binary)",
                p.display()
            ));
        }
        return Ok(Runtime::new(name, p));
    }
    let binary = find_binary(name).ok_or_else(|| {
        format!(
            "{name} is not installed (scripts/setup installs it as root: apt-get install {name})"
        )
    })?;
    Ok(Runtime::new(name, binary))
}

/// The isobench binary that runs as the runner inside the container: this executable, or
/// (from a test binary of this crate, which has no runner) the `isobench` beside its
/// `deps/` directory. `ISOBENCH_RUNNER` overrides both.
pub fn runner_program() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ISOBENCH_RUNNER") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()
        .map_err(|e| format!("finding the isobench executable (/proc/self/exe): {e}"))?;
    if exe.file_name().is_some_and(|n| n == "isobench") {
        return Ok(exe);
    }
    let beside = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("isobench"))
        .filter(|p| is_executable(p));
    beside.ok_or_else(|| {
        format!(
            "{} is not the isobench binary and no isobench is beside it: build it (cargo build --release) or set ISOBENCH_RUNNER",
            exe.display()
        )
    })
}

/// Why `runtime` cannot run containers here, if it cannot: not root, or the runtime's own
/// reason for refusing a minimal bundle like the real one (crun on hybrid cgroups: "cgroups
/// in hybrid mode not supported").
pub fn probe(runtime: &Runtime) -> Result<(), String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err(format!(
            "{} needs root here (run isobench as root)",
            runtime.name
        ));
    }
    let program = runner_program()?;
    instance::probe(runtime, &program)
}

/// The CPUs an instance of `spec` runs on: one per thread with `--threads`, else the
/// measured CPU (none when not pinned).
fn instance_cpus(spec: &InstanceSpec) -> Vec<usize> {
    if spec.threads > 1 && !spec.thread_cpus.is_empty() {
        spec.thread_cpus.clone()
    } else {
        spec.cpu.into_iter().collect()
    }
}

/// One OCI runtime environment.
pub struct Oci {
    label: String,
    kind: EnvKind,
    runtime: Runtime,
    opts: ContainerOptions,
    instance: Option<Instance>,
    /// The CPUs the measured instance runs on: the pinned CPU, or with `--threads` one per
    /// thread (empty: not pinned).
    cpus: Vec<usize>,
    version: String,
    platform: Option<String>,
}

impl Oci {
    pub fn new(label: &str, kind: EnvKind, runtime: Runtime, opts: ContainerOptions) -> Oci {
        let version = runtime
            .version()
            .unwrap_or_else(|e| format!("unknown ({e})"));
        let platform = runtime.platform();
        Oci {
            label: label.to_string(),
            kind,
            runtime,
            opts,
            instance: None,
            cpus: Vec::new(),
            version,
            platform,
        }
    }

    fn err(&self, op: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> EnvError {
        EnvError::setup(&self.label, op, e)
    }

    /// The bundle's limits: the container options', and the pinned CPUs (the measured one,
    /// or one per `--threads` thread) as the cpuset when no `--cpuset` is given (so that
    /// gVisor's Sentry runs on them too).
    fn resources(&self, cpus: &[usize]) -> Resources {
        let mut set = cpus.to_vec();
        set.sort_unstable();
        set.dedup();
        let list = set.iter().map(usize::to_string).collect::<Vec<_>>();
        Resources {
            cpus: self.opts.cpus,
            memory: self.opts.memory,
            cpuset: self
                .opts
                .cpuset
                .clone()
                .or_else(|| (!list.is_empty()).then(|| list.join(","))),
            io_weight: self.opts.io_weight.filter(|_| self.io_weight_applies()),
        }
    }

    /// runsc writes a v1 IO weight to `blkio.weight` only, which hosts whose block layer
    /// schedules with BFQ do not have (it fails to start the sandbox); runc and crun also
    /// use `blkio.bfq.weight`.
    fn io_weight_applies(&self) -> bool {
        self.runtime.name != "runsc"
            || !Path::new("/sys/fs/cgroup/blkio").is_dir()
            || Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
    }

    /// The runner's privileges, as Docker gives a container's process: the capabilities of
    /// `--caps`, and with `--seccomp default` Docker's profile for them in `linux.seccomp`,
    /// which the runtime installs (the same calls as the built-in container's filter).
    fn privileges(&self) -> Result<bundle::Privileges, EnvError> {
        let sec = Security::new(self.opts.seccomp, self.opts.caps)
            .map_err(|e| self.err("building the seccomp profile", e))?;
        let seccomp = match self.opts.seccomp {
            Seccomp::Default => Some(
                seccomp::linux_seccomp(sec.cap_mask())
                    .map_err(|e| self.err("building the OCI seccomp profile", e))?,
            ),
            Seccomp::Off => None,
        };
        Ok(bundle::Privileges {
            capabilities: caps_of(sec.cap_mask())
                .into_iter()
                .map(String::from)
                .collect(),
            seccomp,
        })
    }

    /// What `run.json` says of the seccomp filter: who installs it, or why none is.
    fn seccomp_fact(&self) -> String {
        match (self.opts.seccomp, self.runtime.name.as_str()) {
            (Seccomp::Off, _) => "off".into(),
            // Debian's runsc reads linux.seccomp only with --oci-seccomp, which Docker does
            // not pass to it either.
            (_, "runsc") => "docker-default profile in config.json, not applied: runsc installs OCI seccomp filters only with --oci-seccomp (as under Docker)".into(),
            _ => format!(
                "docker-default profile in config.json (linux.seccomp), installed by {} (libseccomp)",
                self.runtime.name
            ),
        }
    }

    fn plan(&self, spec: &InstanceSpec) -> Result<instance::Plan, EnvError> {
        super::runner::check_cpu(&self.label, spec)?;
        let program = runner_program().map_err(|e| self.err("finding the runner", e))?;
        Ok(instance::Plan {
            env: self.label.clone(),
            runtime: self.runtime.clone(),
            program,
            resources: self.resources(&instance_cpus(spec)),
            privileges: self.privileges()?,
        })
    }
}

impl Environment for Oci {
    fn label(&self) -> &str {
        &self.label
    }

    fn kind(&self) -> EnvKind {
        self.kind
    }

    fn start(&mut self, spec: &InstanceSpec) -> Result<(), EnvError> {
        self.stop()?;
        self.cpus = instance_cpus(spec);
        let plan = self.plan(spec)?;
        self.instance = Some(Instance::start(&plan, spec)?);
        Ok(())
    }

    fn invoke(&mut self, inv: &Invocation) -> Result<RawRun, EnvError> {
        let Some(instance) = self.instance.as_mut() else {
            return Err(self.err("invoking a workload", "the environment was not started"));
        };
        let r = instance.invoke(inv).map_err(|e| match (e, self.opts.memory) {
            (EnvError::Crashed { env, workload, detail }, Some(limit)) => EnvError::Crashed {
                env,
                workload,
                detail: format!(
                    "{detail} (the container has a memory limit of {limit} bytes: if the OOM killer ended the runner, raise --memory or run a smaller workload)"
                ),
            },
            (e, _) => e,
        });
        if r.is_err() {
            // Any error ends the instance (as the built-in container's does).
            if let Some(i) = self.instance.take() {
                let _ = i.stop();
            }
        }
        r
    }

    fn measure_start(&mut self, spec: &InstanceSpec) -> Result<u64, EnvError> {
        let plan = self.plan(spec)?;
        instance::measure_start(&plan, spec)
    }

    fn facts(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        f.insert("runtime".into(), self.runtime.name.clone());
        f.insert(
            "runtime.path".into(),
            self.runtime.binary.display().to_string(),
        );
        f.insert("runtime.version".into(), self.version.clone());
        f.insert(
            "runtime.root".into(),
            self.runtime.root.display().to_string(),
        );
        if let Some(p) = &self.platform {
            f.insert("runtime.platform".into(), p.clone());
        }
        f.insert(
            "namespaces".into(),
            "mnt pid uts ipc net (runtime-made)".into(),
        );
        f.insert(
            "rootfs".into(),
            "read-only skeleton + /usr (ro) + the runner (ro); /scratch: bind mount of the scratch directory (same filesystem as native)".into(),
        );
        f.insert(
            "protocol".into(),
            "exec'd runner; control block, results and records over stdin/stdout".into(),
        );
        let show = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        f.insert("cpus".into(), show(self.opts.cpus.map(|c| c.to_string())));
        f.insert(
            "memory_bytes".into(),
            show(self.opts.memory.map(|m| m.to_string())),
        );
        f.insert("cpuset".into(), show(self.resources(&self.cpus).cpuset));
        f.insert("cpu".into(), super::cpu_fact(self.cpus.first().copied()));
        let io_weight = match self.opts.io_weight {
            Some(w) if !self.io_weight_applies() => {
                format!("{w} (not applied: runsc writes blkio.weight, absent on this host)")
            }
            w => show(w.map(|w| w.to_string())),
        };
        f.insert("io_weight".into(), io_weight);
        f.insert("caps".into(), self.opts.caps.name().into());
        f.insert("no_new_privs".into(), "1".into());
        f.insert("seccomp".into(), self.seccomp_fact());
        if let Some(i) = &self.instance {
            f.extend(i.facts());
        }
        f
    }

    fn stop(&mut self) -> Result<(), EnvError> {
        match self.instance.take() {
            Some(i) => i.stop(),
            None => Ok(()),
        }
    }

    fn loaded_image(&self) -> Option<std::io::Result<Vec<u8>>> {
        Some(self.instance.as_ref()?.loaded_image())
    }
}

impl Drop for Oci {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
