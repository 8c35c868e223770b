//! One container of an OCI runtime from bundle to deletion ([`Launched`], reusable by any
//! caller that runs a program under a runtime), and the three things the OCI environments do
//! with one: the availability probe, the persistent runner instance ([`Instance`]) and the
//! start-up measurement. Every path out (success, error, a dropped value during Ctrl-C)
//! deletes the container with `delete --force` and removes its bundle.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use isobench_abi::*;
use nix::unistd::Pid;

use super::bundle::{Bind, Bundle, BundleSpec, Privileges, Resources};
use super::runner::{self, ServeArgs, CMD_IMAGE, CONTROL_BYTES};
use super::runtime::{self, last_message, Runtime, CGROUP_PARENT, STATE_PARENT};
use crate::env::process::{self, ANS_DONE, ANS_ERROR, ANS_READY, CMD_RUN};
use crate::env::{interference, threads, EnvError, InstanceSpec, Invocation, RawRun};
use crate::{image, tsc};

/// How long a runtime may take to start the runner and have it say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the runner may take to quit once its stdin closes, before it is killed.
const QUIT_GRACE: Duration = Duration::from_secs(3);
/// The container's path inside the runtime's root filesystem for the scratch bind mount.
const SCRATCH_IN_CONTAINER: &str = "/scratch";

/// Where bundles live: `/run/isobench/bundles/<container id>`.
pub fn bundles_dir() -> PathBuf {
    Path::new(STATE_PARENT).join("bundles")
}

/// What an OCI environment's launches share.
#[derive(Clone, Debug)]
pub struct Plan {
    pub env: String,
    pub runtime: Runtime,
    /// The isobench binary, bind-mounted read-only as the runner.
    pub program: PathBuf,
    pub resources: Resources,
    /// `--caps` and `--seccomp`, as Docker hands them to the runtime.
    pub privileges: Privileges,
}

/// A container started with `<runtime> run` in the foreground: its id, its bundle, the
/// runtime process and its stderr log. Dropping it (or [`Launched::end`]) ends the runtime
/// process, deletes the container (`delete --force`) and removes the bundle.
pub struct Launched {
    pub runtime: Runtime,
    pub id: String,
    pub bundle: Bundle,
    pub child: Option<Child>,
    /// The runtime's stderr, in the bundle (read for error messages before it goes).
    pub log: PathBuf,
    /// Where the runtime writes the container's first process's host PID.
    pub pid_file: PathBuf,
    ended: bool,
}

impl Launched {
    /// Write the bundle of `spec` under `/run/isobench/bundles/<id>` (`id` from
    /// [`runtime::new_id`], so that `isobench clean` recognises it) and start
    /// `<runtime> run` on it with `stdin`/`stdout` (stderr goes to the log). `before_spawn`
    /// runs just before the runtime process is spawned (a start-up clock).
    pub fn spawn(
        runtime: &Runtime,
        id: &str,
        spec: &BundleSpec,
        stdin: Stdio,
        stdout: Stdio,
        before_spawn: impl FnOnce(),
    ) -> Result<Launched, String> {
        let bundle = Bundle::write(&bundles_dir().join(id), spec).map_err(|e| e.to_string())?;
        Launched::run(runtime, id, bundle, stdin, stdout, None, before_spawn)
    }

    /// Start `<runtime> run` on a bundle already written (and owned from here on: it is
    /// removed with the container), `preserve` handed to the container's process as fd 3.
    pub fn run(
        runtime: &Runtime,
        id: &str,
        bundle: Bundle,
        stdin: Stdio,
        stdout: Stdio,
        preserve: Option<std::os::fd::RawFd>,
        before_spawn: impl FnOnce(),
    ) -> Result<Launched, String> {
        let id = id.to_string();
        let log = bundle.dir.join("runtime.log");
        let pid_file = bundle.dir.join("pid");
        let mut l = Launched {
            runtime: runtime.clone(),
            id,
            bundle,
            child: None,
            log,
            pid_file,
            ended: false,
        };
        let stderr = std::fs::File::create(&l.log)
            .map_err(|e| format!("creating {}: {e}", l.log.display()))?;
        before_spawn();
        let child = runtime
            .spawn_run(
                &l.bundle.dir,
                &l.id,
                &l.pid_file,
                stdin,
                stdout,
                stderr.into(),
                preserve,
            )
            .map_err(|e| e.to_string())?;
        l.child = Some(child);
        Ok(l)
    }

    /// The container's first process's host PID (once the runtime has written it).
    pub fn pid(&self) -> Option<Pid> {
        let text = std::fs::read_to_string(&self.pid_file).ok()?;
        text.trim().parse().ok().map(Pid::from_raw)
    }

    /// The runtime's reason, from its log, once its process has ended (waited up to
    /// `wait`): how it exited and its last message.
    pub fn failure(&mut self, wait: Duration) -> String {
        let status = match self.child.take() {
            Some(c) => match runtime::wait_bounded(c, "runtime", wait) {
                Ok(out) => out.status.to_string(),
                Err(e) => e.to_string(),
            },
            None => "ended".into(),
        };
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!(
            "`{} run` {status}: {}",
            self.runtime.name,
            last_message(&log)
        )
    }

    /// Wait up to `grace` for the runtime process to finish on its own, then kill the
    /// container and the runtime process; delete the container and remove the bundle.
    pub fn end(mut self, grace: Duration) -> Result<(), String> {
        self.finish(grace)
    }

    fn finish(&mut self, grace: Duration) -> Result<(), String> {
        if self.ended {
            return Ok(());
        }
        self.ended = true;
        if let Some(mut c) = self.child.take() {
            let end = Instant::now() + grace;
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(2));
            }
            if matches!(c.try_wait(), Ok(None)) {
                self.runtime.kill(&self.id);
                let end = Instant::now() + Duration::from_secs(2);
                while matches!(c.try_wait(), Ok(None)) && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        let deleted = self.runtime.delete(&self.id).map_err(|e| e.to_string());
        let removed = self
            .bundle
            .remove()
            .map_err(|e| format!("removing {}: {e}", self.bundle.dir.display()));
        remove_empty_cgroup_parents();
        deleted.and(removed)
    }
}

/// Remove the shared `/isobench-oci` parent cgroup from every hierarchy where it is empty
/// (the runtime creates it with the first container and leaves it behind). `rmdir` of a
/// cgroup that still holds a child fails, so another run's containers keep theirs; the
/// runtime creates the parent again for the next container. As the built-in container
/// does with its `isobench` parent.
pub fn remove_empty_cgroup_parents() {
    let parent = CGROUP_PARENT.trim_start_matches('/');
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    // cgroup v2 (unified at the root) holds the parent directly; v1 one per controller.
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(parent));
    for h in hierarchies.flatten() {
        let _ = std::fs::remove_dir(h.path().join(parent));
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        let _ = self.finish(Duration::ZERO);
    }
}

/// Availability: run a minimal runner bundle (`__oci-runner probe`) like the real one and
/// return the runtime's own reason when it refuses.
pub fn probe(runtime: &Runtime, program: &Path) -> Result<(), String> {
    let id = runtime::new_id(&runtime.name);
    let spec = BundleSpec {
        program: program.to_path_buf(),
        args: runner::probe_args(),
        binds: Vec::new(),
        resources: Resources::default(),
        cgroups_path: Some(format!("{CGROUP_PARENT}/{id}")),
        hostname: "isobench".into(),
        privileges: None,
    };
    let mut l = Launched::spawn(runtime, &id, &spec, Stdio::null(), Stdio::piped(), || {})
        .map_err(|e| format!("{}: {e}", runtime.name))?;
    let child = l.child.take().ok_or("no runtime process")?;
    let out = runtime::wait_bounded(child, &format!("{} run", runtime.name), READY_TIMEOUT);
    let log = std::fs::read_to_string(&l.log).unwrap_or_default();
    let cleanup = l.end(Duration::ZERO);
    let out = out.map_err(|e| e.to_string())?;
    if out.status.success() && out.stdout == runner::PROBE_OK {
        return cleanup.map_err(|e| format!("cleaning up its probe container: {e}"));
    }
    Err(format!(
        "{} could not run a container here ({}): {}",
        runtime.name,
        out.status,
        last_message(&log)
    ))
}

/// The CPU the runner pins itself to inside the container. gVisor numbers the sandbox's
/// CPUs itself (a one-CPU cpuset is its CPU 0), so there the pinning is the cpuset of the
/// sandbox's cgroup alone ([`Resources::cpuset`]), which holds the Sentry too.
fn inner_cpu(plan: &Plan, cpu: Option<usize>) -> Option<usize> {
    cpu.filter(|_| pins_inside(plan))
}

/// Whether the runner pins itself (and its threads) inside the container: not under gVisor.
fn pins_inside(plan: &Plan) -> bool {
    plan.runtime.name != "runsc"
}

/// The bundle of one of the environment's containers; its cgroup is `/isobench-oci/<id>`.
fn bundle_spec(plan: &Plan, args: Vec<String>, binds: Vec<Bind>, id: &str) -> BundleSpec {
    BundleSpec {
        program: plan.program.clone(),
        args,
        binds,
        resources: plan.resources.clone(),
        cgroups_path: Some(format!("{CGROUP_PARENT}/{id}")),
        hostname: "isobench".into(),
        privileges: Some(plan.privileges.clone()),
    }
}

/// The cgroup CPU time of container `id` (ns), v1 (`cpuacct.usage`) or v2 (`cpu.stat`).
pub fn cgroup_cpu_ns(id: &str) -> Option<u64> {
    let rel = format!("{}/{id}", CGROUP_PARENT.trim_start_matches('/'));
    if let Ok(s) = std::fs::read_to_string(format!("/sys/fs/cgroup/cpuacct/{rel}/cpuacct.usage")) {
        return s.trim().parse().ok();
    }
    let s = std::fs::read_to_string(format!("/sys/fs/cgroup/{rel}/cpu.stat")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|us| us * 1000)
}

/// A persistent runner in a runtime's container.
pub struct Instance {
    env: String,
    launched: Launched,
    cmd: ChildStdin,
    ans: OwnedFd,
    spec: InstanceSpec,
    /// The scratch directory bind-mounted at `/scratch` (on the native scratch filesystem).
    scratch: ScratchDir,
    interference: Option<interference::Reader>,
    /// Whether the runner pins itself and its threads inside the container (not under
    /// gVisor: [`inner_cpu`]).
    pins_inside: bool,
}

impl Instance {
    /// Write the bundle, `run` it, wait for the runner's "ready".
    pub fn start(plan: &Plan, spec: &InstanceSpec) -> Result<Instance, EnvError> {
        let env = plan.env.clone();
        let setup = |op: &str, e: String| EnvError::setup(&env, op, e);
        let dir = spec
            .scratch
            .join(format!("{}-{}", plan.env, std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| {
            setup(
                "creating its scratch directory",
                format!("{}: {e}", dir.display()),
            )
        })?;
        let scratch = ScratchDir(dir);
        let args = ServeArgs {
            work_size: spec.work_size,
            disk_size: spec.disk_size,
            disk: (spec.disk_size > 0).then(|| format!("{SCRATCH_IN_CONTAINER}/disk")),
            thp: spec.thp,
            cpu: inner_cpu(plan, spec.cpu),
        }
        .to_args();
        let binds = vec![Bind {
            host: scratch.0.clone(),
            container: SCRATCH_IN_CONTAINER.into(),
            read_only: false,
        }];
        let id = runtime::new_id(&plan.runtime.name);
        let started = Launched::spawn(
            &plan.runtime,
            &id,
            &bundle_spec(plan, args, binds, &id),
            Stdio::piped(),
            Stdio::piped(),
            || {},
        );
        let mut launched =
            started.map_err(|e| setup("writing the bundle and starting the container", e))?;
        let child = launched.child.as_mut().expect("spawned");
        let cmd = child.stdin.take().expect("piped stdin");
        let ans: OwnedFd = child.stdout.take().expect("piped stdout").into();
        let mut inst = Instance {
            env: env.clone(),
            launched,
            cmd,
            ans,
            spec: spec.clone(),
            scratch,
            interference: None,
            pins_inside: pins_inside(plan),
        };
        let mut b = [0u8; 1];
        match runner::read_exact_until(&inst.ans, &mut b, Instant::now() + READY_TIMEOUT) {
            Ok(()) if b[0] == ANS_READY => {}
            Ok(()) if b[0] == ANS_ERROR => {
                let msg = runner::read_rest(&inst.ans, Duration::from_secs(2));
                return Err(setup("starting the runner in the container", msg));
            }
            Ok(()) => {
                return Err(setup(
                    "starting the runner in the container",
                    format!("unexpected answer byte {:#x}", b[0]),
                ))
            }
            Err(true) => {
                return Err(setup(
                    "starting the runner in the container",
                    format!("not ready within {READY_TIMEOUT:?}"),
                ))
            }
            Err(false) => {
                let why = inst.launched.failure(Duration::from_secs(10));
                return Err(setup("starting the container", why));
            }
        }
        // Under runc and crun the PID file names the runner itself; gVisor's names its
        // sandbox, whose threads are not the runner's, so it gets no per-task counters.
        if inst.launched.runtime.name != "runsc" {
            if let Some(pid) = inst.launched.pid() {
                inst.interference = Some(interference::Reader::for_task(pid, pid, spec.cpu));
            }
        }
        Ok(inst)
    }

    fn crashed(&mut self, inv: &Invocation, what: &str) -> EnvError {
        let why = self.launched.failure(Duration::from_secs(5));
        EnvError::Crashed {
            env: self.env.clone(),
            workload: inv.name.into(),
            detail: format!("{what}; {why}"),
        }
    }

    /// Run one invocation over the pipes.
    pub fn invoke(&mut self, inv: &Invocation) -> Result<RawRun, EnvError> {
        // One block per thread (`--threads`), as the forked runner gets them; under gVisor
        // the threads are not pinned inside (the sandbox numbers its CPUs itself).
        let mut blocks = threads::blocks(&self.spec, inv, MODE_SYSCALL);
        let mut msg = vec![CMD_RUN];
        for cb in &mut blocks {
            cb.disk_size = self.spec.disk_size;
            if !self.pins_inside {
                cb.host_cpu = u64::MAX;
            }
            msg.extend_from_slice(&runner::control_to_bytes(cb));
        }
        let id = self.launched.id.clone();
        let cpu_before = cgroup_cpu_ns(&id);
        let before = self.interference.as_mut().map(|r| r.read());
        let t0 = Instant::now();
        if self.cmd.write_all(&msg).is_err() {
            return Err(self.crashed(inv, "the runner's stdin closed"));
        }
        let end = t0 + self.spec.deadline;
        let mut done = [0u8; 1];
        match runner::read_exact_until(&self.ans, &mut done, end) {
            Ok(()) if done[0] == ANS_DONE => {}
            Ok(()) => return Err(self.crashed(inv, "the runner answered out of protocol")),
            Err(true) => {
                return Err(EnvError::Deadline {
                    env: self.env.clone(),
                    workload: inv.name.into(),
                    deadline: self.spec.deadline,
                })
            }
            Err(false) => return Err(self.crashed(inv, "the runner ended")),
        }
        let mut outs = Vec::with_capacity(blocks.len());
        for sent in &blocks {
            let mut head = [0u8; CONTROL_BYTES];
            let late = end + Duration::from_secs(10);
            if runner::read_exact_until(&self.ans, &mut head, late).is_err() {
                return Err(self.crashed(inv, "the runner ended while sending its results"));
            }
            let out = runner::control_from_bytes(&head);
            let (n_rec, n_st) = runner::output_counts(sent, &out);
            let mut raw = vec![0u8; ((n_rec + n_st) * 8) as usize];
            if runner::read_exact_until(&self.ans, &mut raw, late).is_err() {
                return Err(self.crashed(inv, "the runner ended while sending its records"));
            }
            let mut words: Vec<u64> = raw
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect();
            let stamps = words.split_off(n_rec as usize);
            outs.push(threads::ThreadOutput {
                cb: out,
                records: words,
                stamps,
            });
        }
        let wall_ns = t0.elapsed().as_nanos() as u64;
        let mut counters = BTreeMap::new();
        if let (Some(b), Some(r)) = (before, self.interference.as_mut()) {
            b.add_delta(&r.read(), &mut counters);
        }
        if let (Some(a), Some(b)) = (cgroup_cpu_ns(&id), cpu_before) {
            counters.insert("cgroup.cpu_usage_ns".into(), a.saturating_sub(b));
        }
        for o in &outs {
            process::check_status(&self.env, inv, &o.cb)?;
        }
        if outs.len() > 1 {
            return threads::join(&self.env, inv, &blocks, outs, wall_ns, counters);
        }
        let o = outs.pop().expect("one thread");
        Ok(RawRun {
            status: o.cb.status,
            checksum: o.cb.checksum,
            cycles: o.cb.cycles,
            results: o.cb.results,
            records: o.records,
            hostcalls: o.cb.hostcalls,
            wall_ns,
            counters,
            threads: Vec::new(),
        })
    }

    /// The image bytes the runner reads back at its own `IMAGE_BASE`.
    pub fn loaded_image(&self) -> std::io::Result<Vec<u8>> {
        let broken = |what: &str| std::io::Error::other(format!("the runner {what}"));
        (&self.cmd).write_all(&[CMD_IMAGE])?;
        let mut buf = vec![0u8; 1 + image::IMAGE.len()];
        runner::read_exact_until(
            &self.ans,
            &mut buf,
            Instant::now() + Duration::from_secs(30),
        )
        .map_err(|_| broken("did not send its image back"))?;
        if buf[0] != CMD_IMAGE {
            return Err(broken("answered out of protocol"));
        }
        buf.remove(0);
        Ok(buf)
    }

    /// This instance's own objects (recorded, not compared between runs).
    pub fn facts(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        let p = crate::env::INSTANCE_FACT_PREFIX;
        f.insert(format!("{p}container_id"), self.launched.id.clone());
        f.insert(
            format!("{p}bundle"),
            self.launched.bundle.dir.display().to_string(),
        );
        f
    }

    /// Close the runner's stdin (it quits), delete the container, remove the bundle and the
    /// scratch directory.
    pub fn stop(self) -> Result<(), EnvError> {
        let Instance {
            env,
            launched,
            cmd,
            scratch,
            ..
        } = self;
        drop(cmd);
        let ended = launched.end(QUIT_GRACE);
        let removed = scratch.remove();
        ended
            .and(removed)
            .map_err(|e| EnvError::setup(&env, "deleting the container", e))
    }
}

/// A directory removed when dropped (the instance's scratch directory, on every exit path).
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn remove(&self) -> Result<(), String> {
        match std::fs::remove_dir_all(&self.0) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("removing {}: {e}", self.0.display()))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// Start a fresh container whose runner enters the image once with `WL_START`, and time
/// it from the runtime command's launch to the image's first instruction (TSC cycles). The
/// bundle is written before the clock starts: a user of a runtime has theirs ready too.
pub fn measure_start(plan: &Plan, spec: &InstanceSpec) -> Result<u64, EnvError> {
    let env = plan.env.clone();
    let id = runtime::new_id(&plan.runtime.name);
    let bspec = bundle_spec(
        plan,
        runner::start_args(inner_cpu(plan, spec.cpu)),
        Vec::new(),
        &id,
    );
    let mut launched_at = 0;
    let mut l = Launched::spawn(
        &plan.runtime,
        &id,
        &bspec,
        Stdio::null(),
        Stdio::piped(),
        || launched_at = tsc::now(),
    )
    .map_err(|e| EnvError::setup(&env, "starting the start-up probe's container", e))?;
    let ans: OwnedFd = l
        .child
        .as_mut()
        .and_then(|c| c.stdout.take())
        .expect("piped stdout")
        .into();
    let end = Instant::now() + spec.deadline;
    let mut first = [0u8; 1];
    let mut cb = [0u8; CONTROL_BYTES];
    let out = match runner::read_exact_until(&ans, &mut first, end) {
        Ok(()) if first[0] == ANS_DONE && runner::read_exact_until(&ans, &mut cb, end).is_ok() => {
            runner::control_from_bytes(&cb)
        }
        Ok(()) if first[0] == ANS_ERROR => {
            let msg = runner::read_rest(&ans, Duration::from_secs(2));
            return Err(EnvError::setup(&env, "the start-up probe", msg));
        }
        Err(true) => {
            return Err(EnvError::Deadline {
                env,
                workload: "start".into(),
                deadline: spec.deadline,
            })
        }
        _ => {
            let why = l.failure(Duration::from_secs(10));
            return Err(EnvError::setup(&env, "the start-up probe", why));
        }
    };
    let inv = Invocation {
        name: "start",
        workload: WL_START,
        params: [0; PARAM_COUNT],
        flags: 0,
    };
    process::check_status(&env, &inv, &out)?;
    l.end(QUIT_GRACE)
        .map_err(|e| EnvError::setup(&env, "deleting the start-up probe's container", e))?;
    Ok(out.results[0].saturating_sub(launched_at))
}
