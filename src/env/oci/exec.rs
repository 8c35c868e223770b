//! `isobench exec -- CMD` under an OCI runtime (`runc`, `crun`, `oci:PATH`; docs/RUNTIMES.md,
//! "Your own command under a runtime"). The bundle's process is the exec container's own
//! init (`isobench __exec-init 3 PLAN`, `container/exec/`), its socket handed over with
//! `--preserve-fds 1`. The runtime makes the namespaces, the cgroup with the limits and the
//! skeleton root; inside it the init mounts an overlay whose read-only lower layer is the
//! host's `/` (or `--rootfs DIR`, bind-mounted without the mounts under it) and whose upper
//! layer is a scratch directory bound in (or a tmpfs), pivots into it, drops to the image's
//! container's privileges and takes commands as in the built-in container. Every exit path
//! deletes the container (`delete --force`), its bundle and its upper layer; `isobench clean`
//! finds what a killed run left (`cleanup.rs`).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde_json::{json, Value};

use super::bundle::{Bind, Bundle, BundleSpec, Resources};
use super::instance::{bundles_dir, cgroup_cpu_ns, Launched, ScratchDir};
use super::runtime::{self, Runtime, CGROUP_PARENT, PRESERVED_FD};
use crate::env::container::exec::{
    request, wait_ready, InitPlan, RootMounts, SecurityPlan, INIT_SUBCOMMAND,
};
use crate::env::container::security::{caps_of, own_cap_eff, Security};
use crate::env::exec::{self as cmdexec, Ended, Spawn};
use crate::env::{EnvError, EnvKind, Environment, InstanceSpec, Invocation, RawRun};
use crate::plan::{ContainerOptions, Upper};
use crate::workload::command::{CommandRun, CommandSpec};

/// Where the lower layer, the upper layer's directory and the merged root are in the
/// runtime's container (mount points in the bundle's skeleton root).
const LOWER: &str = "/lower";
const LAYERS: &str = "/layers";
const MERGED: &str = "/merged";

/// How long the init may take to quit once its socket closes, before the container is
/// killed.
const QUIT_GRACE: Duration = Duration::from_secs(3);

/// The capabilities isobench itself has (`CapEff`; a sandboxed host may lack some, and a
/// runtime cannot give what its caller has not): what the init starts with.
fn own_caps() -> Vec<&'static str> {
    let eff = own_cap_eff().unwrap_or(crate::env::container::security::DOCKER_DEFAULT_CAP_MASK);
    caps_of(eff)
}

/// The changes to the image bundle's `config.json` for the exec init (pure, testable):
/// isobench's own capabilities (the init drops them itself, `security.rs`), and the lower layer
/// bind-mounted read-only without the mounts under it.
pub fn patch_config(config: &mut Value, lower: &Path, caps: &[&str]) {
    let caps = json!(caps);
    config["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
    });
    if let Some(m) = config["mounts"].as_array_mut() {
        m.push(json!({
            "destination": LOWER,
            "type": "bind",
            "source": lower,
            "options": ["bind", "ro"],
        }));
    }
}

/// The cgroup v1 memory peak of container `id` (`memory.max_usage_in_bytes`), or v2's
/// `memory.peak`.
fn cgroup_memory_peak(id: &str) -> Option<u64> {
    let rel = format!("{}/{id}", CGROUP_PARENT.trim_start_matches('/'));
    [
        format!("/sys/fs/cgroup/memory/{rel}/memory.max_usage_in_bytes"),
        format!("/sys/fs/cgroup/{rel}/memory.peak"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok())
}

/// Reset the v1 memory peak, so that it is the sample's (v2's `memory.peak` is not
/// resettable on older kernels: there it is the instance's).
fn reset_memory_peak(id: &str) {
    let rel = format!("{}/{id}", CGROUP_PARENT.trim_start_matches('/'));
    let _ = std::fs::write(
        format!("/sys/fs/cgroup/memory/{rel}/memory.max_usage_in_bytes"),
        "0",
    );
}

/// A running exec container of a runtime.
struct Running {
    launched: Launched,
    sock: OwnedFd,
    /// On the host: `upper/` and `work/` of the overlay (empty with a tmpfs upper).
    layers: ScratchDir,
}

impl Running {
    /// Close the socket (the init quits), delete the container and its bundle, remove the
    /// upper layer.
    fn stop(self) -> Result<(), String> {
        let Running {
            launched,
            sock,
            layers,
        } = self;
        drop(sock);
        let ended = launched.end(QUIT_GRACE);
        let removed = layers.remove();
        ended.and(removed)
    }
}

/// The `runc`, `crun` or `oci:PATH` environment of `isobench exec`.
pub struct OciExec {
    label: String,
    kind: EnvKind,
    runtime: Runtime,
    opts: ContainerOptions,
    lower: PathBuf,
    deadline: Duration,
    running: Option<Running>,
    cpu: Option<usize>,
    samples: u64,
    version: String,
}

impl OciExec {
    pub fn new(
        label: &str,
        kind: EnvKind,
        runtime: Runtime,
        opts: ContainerOptions,
        lower: PathBuf,
        deadline: Duration,
    ) -> OciExec {
        let version = runtime
            .version()
            .unwrap_or_else(|e| format!("unknown ({e})"));
        OciExec {
            label: label.into(),
            kind,
            runtime,
            opts,
            lower,
            deadline,
            running: None,
            cpu: None,
            samples: 0,
            version,
        }
    }

    /// The overlay's upper directory on the host (a disk upper only), while running.
    pub fn upper_dir(&self) -> Option<PathBuf> {
        let r = self.running.as_ref()?;
        (self.opts.upper == Upper::Disk).then(|| r.layers.0.join("upper"))
    }

    /// The runtime's container id, while running.
    pub fn container_id(&self) -> Option<&str> {
        Some(&self.running.as_ref()?.launched.id)
    }

    fn err(&self, op: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> EnvError {
        EnvError::setup(&self.label, op, e)
    }

    fn resources(&self, cpu: Option<usize>) -> Resources {
        Resources {
            cpus: self.opts.cpus,
            memory: self.opts.memory,
            cpuset: self
                .opts
                .cpuset
                .clone()
                .or_else(|| cpu.map(|c| c.to_string())),
            io_weight: self.opts.io_weight,
        }
    }

    fn launch(&self, spec: &InstanceSpec) -> Result<Running, EnvError> {
        let e = |op: &str, x: String| self.err(op, x);
        let program = super::runner_program().map_err(|x| e("finding the isobench binary", x))?;
        let id = runtime::new_id(&self.runtime.name);
        let layers = ScratchDir(spec.scratch.join(&id));
        let tmpfs = self.opts.upper == Upper::Tmpfs;
        let dirs: &[&str] = if tmpfs { &[] } else { &["upper", "work"] };
        std::fs::create_dir_all(&layers.0)
            .and_then(|()| {
                dirs.iter()
                    .try_for_each(|d| std::fs::create_dir(layers.0.join(d)))
            })
            .map_err(|x| {
                e(
                    "creating the upper layer's directory",
                    format!("{}: {x}", layers.0.display()),
                )
            })?;
        let plan = InitPlan {
            root: Some(RootMounts {
                lower: LOWER.into(),
                upper: Path::new(LAYERS).join("upper"),
                work: Path::new(LAYERS).join("work"),
                merged: MERGED.into(),
                tmpfs: tmpfs.then(|| PathBuf::from(LAYERS)),
            }),
            hostname: None,
            cpu: spec.cpu,
            security: Some(SecurityPlan {
                seccomp: self.opts.seccomp,
                caps: self.opts.caps,
            }),
        };
        let plan_json =
            serde_json::to_string(&plan).map_err(|x| e("preparing the init", x.to_string()))?;
        let bspec = BundleSpec {
            program,
            args: vec![INIT_SUBCOMMAND.into(), PRESERVED_FD.to_string(), plan_json],
            binds: vec![Bind {
                host: layers.0.clone(),
                container: LAYERS.into(),
                read_only: false,
            }],
            resources: self.resources(spec.cpu),
            cgroups_path: Some(format!("{CGROUP_PARENT}/{id}")),
            hostname: id.clone(),
            // The init drops to `--caps` and installs the filter itself, after its mounts.
            privileges: None,
        };
        let bundle = Bundle::write(&bundles_dir().join(&id), &bspec)
            .map_err(|x| e("writing the OCI bundle", x.to_string()))?;
        if let Err(x) = self.finish_bundle(&bundle) {
            let _ = bundle.remove();
            return Err(e("writing the OCI bundle", x));
        }
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|x| e("creating the container's socket", x.to_string()))?;
        let launched = Launched::run(
            &self.runtime,
            &id,
            bundle,
            Stdio::null(),
            Stdio::null(),
            Some(theirs.as_raw_fd()),
            || {},
        )
        .map_err(|x| e("starting the container", x))?;
        drop(theirs);
        let mut running = Running {
            launched,
            sock: ours,
            layers,
        };
        if let Err(why) = wait_ready(&running.sock) {
            let runtime_says = running.launched.failure(Duration::from_secs(5));
            let _ = running.stop();
            return Err(e(
                "setting up the command container",
                format!("{why}; {runtime_says}"),
            ));
        }
        Ok(running)
    }

    /// The lower layer's mount point and the merged root's in the skeleton, and the
    /// config's changes for the init.
    fn finish_bundle(&self, bundle: &Bundle) -> Result<(), String> {
        for d in [LOWER, MERGED] {
            let p = bundle.rootfs().join(d.trim_start_matches('/'));
            std::fs::create_dir_all(&p).map_err(|x| format!("{}: {x}", p.display()))?;
        }
        let path = bundle.dir.join("config.json");
        let text =
            std::fs::read_to_string(&path).map_err(|x| format!("{}: {x}", path.display()))?;
        let mut config: Value =
            serde_json::from_str(&text).map_err(|x| format!("{}: {x}", path.display()))?;
        patch_config(&mut config, &self.lower, &own_caps());
        std::fs::write(&path, config.to_string()).map_err(|x| format!("{}: {x}", path.display()))
    }

    fn spawn(&mut self, s: &Spawn, out: File, err: File) -> Result<Ended, EnvError> {
        let Some(r) = self.running.as_ref() else {
            return Err(self.err("running the command", "the environment was not started"));
        };
        match request(&r.sock, s, out, err) {
            Ok(ended) => Ok(ended),
            Err(why) => {
                let mut r = self.running.take().expect("running");
                let runtime_says = if matches!(
                    r.launched.child.as_mut().map(|c| c.try_wait()),
                    Some(Ok(Some(_)))
                ) {
                    format!("; {}", r.launched.failure(Duration::from_secs(1)))
                } else {
                    String::new()
                };
                let _ = r.stop();
                Err(self.err(
                    "running the command in the container",
                    format!("{why}{runtime_says}"),
                ))
            }
        }
    }
}

impl Environment for OciExec {
    fn label(&self) -> &str {
        &self.label
    }

    fn kind(&self) -> EnvKind {
        self.kind
    }

    fn start(&mut self, spec: &InstanceSpec) -> Result<(), EnvError> {
        self.stop()?;
        crate::env::runner::check_cpu(&self.label, spec)?;
        self.cpu = spec.cpu;
        self.samples = 0;
        self.running = Some(self.launch(spec)?);
        Ok(())
    }

    fn invoke(&mut self, _inv: &Invocation) -> Result<RawRun, EnvError> {
        Err(cmdexec::no_image(&self.label))
    }

    fn measure_start(&mut self, _spec: &InstanceSpec) -> Result<u64, EnvError> {
        Err(cmdexec::no_image(&self.label))
    }

    fn run_command(&mut self, cmd: &CommandSpec) -> Result<CommandRun, EnvError> {
        if self.samples == 0 {
            let label = self.label.clone();
            cmdexec::run_setup(cmd, &label, |s, o, e| self.spawn(s, o, e))?;
        }
        self.samples += 1;
        let s = Spawn::new(cmd, cmd.argv.clone(), self.deadline);
        let id = self.container_id().map(str::to_string);
        let before = id.as_deref().and_then(|id| {
            reset_memory_peak(id);
            cgroup_cpu_ns(id)
        });
        let tag = self.samples.to_string();
        let label = self.label.clone();
        let mut run = cmdexec::sample(cmd, &label, &tag, |o, e| self.spawn(&s, o, e))?;
        if let Some(id) = id.as_deref() {
            if let (Some(a), Some(b)) = (cgroup_cpu_ns(id), before) {
                run.counters
                    .insert("cgroup.cpu_usage_ns".into(), a.saturating_sub(b));
            }
            if let Some(p) = cgroup_memory_peak(id) {
                run.counters.insert("cgroup.memory_peak_bytes".into(), p);
            }
        }
        Ok(run)
    }

    fn facts(&self) -> BTreeMap<String, String> {
        let show = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        let mut f = BTreeMap::from([
            ("runtime".into(), self.runtime.name.clone()),
            (
                "runtime.path".into(),
                self.runtime.binary.display().to_string(),
            ),
            ("runtime.version".into(), self.version.clone()),
            (
                "runtime.root".into(),
                self.runtime.root.display().to_string(),
            ),
            (
                "runs".into(),
                "the command, forked by isobench's exec init, the container's PID 1".into(),
            ),
            (
                "namespaces".into(),
                "mnt pid uts ipc net (runtime-made)".into(),
            ),
            (
                "rootfs".into(),
                format!(
                    "overlayfs mounted by the init; lower: {} read-only; upper+work: {}",
                    self.lower.display(),
                    match self.opts.upper {
                        Upper::Disk => "scratch directory",
                        Upper::Tmpfs => "tmpfs inside the container",
                    }
                ),
            ),
            ("upper".into(), self.opts.upper.name().into()),
            ("cpus".into(), show(self.opts.cpus.map(|c| c.to_string()))),
            (
                "memory_bytes".into(),
                show(self.opts.memory.map(|m| m.to_string())),
            ),
            ("cpuset".into(), show(self.resources(self.cpu).cpuset)),
            ("cpu".into(), crate::env::cpu_fact(self.cpu)),
        ]);
        if let Ok(s) = Security::new(self.opts.seccomp, self.opts.caps) {
            f.extend(s.facts());
        }
        if let Some(r) = &self.running {
            let p = crate::env::INSTANCE_FACT_PREFIX;
            f.insert(format!("{p}container_id"), r.launched.id.clone());
        }
        f
    }

    fn stop(&mut self) -> Result<(), EnvError> {
        if let Some(r) = self.running.take() {
            r.stop()
                .map_err(|e| self.err("deleting the command container", e))?;
        }
        Ok(())
    }
}

impl Drop for OciExec {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_gets_every_capability_and_the_lower_layer_read_only() {
        let mut c = json!({"process": {}, "mounts": []});
        patch_config(&mut c, Path::new("/srv/rootfs"), &caps_of(1 << 21 | 1 << 8));
        assert_eq!(caps_of(0x3), ["CAP_CHOWN", "CAP_DAC_OVERRIDE"]);
        let eff = c["process"]["capabilities"]["effective"]
            .as_array()
            .unwrap();
        assert!(eff.contains(&json!("CAP_SYS_ADMIN")));
        assert!(eff.contains(&json!("CAP_SETPCAP")));
        let m = &c["mounts"][0];
        assert_eq!(m["destination"], LOWER);
        assert_eq!(m["source"], "/srv/rootfs");
        assert_eq!(m["options"], json!(["bind", "ro"]));
    }
}
