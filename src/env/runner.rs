//! The parent side of the runner, shared by every process-based environment (native,
//! container): one runner process per instance, driven through the same shared memory and
//! pipes whoever launched it, and one start-up measurement, from launch to the image's first
//! instruction. What differs between those environments is only how the child is launched,
//! a [`Launch`]: natively a plain `fork`; for the container, a marker, an overlay root and a
//! cgroup on the host, then a clone into new namespaces and the set-up inside
//! (docs/ARCHITECTURE.md).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

use isobench_abi::{ControlBlock, MODE_SYSCALL, PARAM_COUNT, WL_START};
use nix::unistd::{pipe2, Pid};

use super::process::{self, ChildBody, ChildConfig, RunnerHandle, RunnerMemory};
use super::{affinity, interference, EnvError, InstanceSpec, Invocation, RawRun};
use crate::tsc;

/// How long a runner may take to set up and say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How one environment launches its child. The runner loop ([`Runner`]) and the start-up
/// measurement ([`measure_start`]) do everything else.
pub trait Launch {
    /// What a launch creates on the host and the child needs until it is gone (the
    /// container's cgroup, overlay directories and state marker; nothing natively). Dropping
    /// it must undo it; the child is dead by then.
    type Resources;

    /// The environment's label, for errors.
    fn label(&self) -> &str;

    /// The runner's scratch disk file (asked only for a runner with a disk).
    fn disk(&self, spec: &InstanceSpec) -> Result<DiskFile, EnvError>;

    /// Why this launcher cannot run `spec` at all, found before anything is created (and
    /// before a start-up measurement's clock starts). The CPU itself is checked by the
    /// caller ([`check_cpu`]); a launcher adds its own limits (the container's cpuset).
    fn check(&self, _spec: &InstanceSpec) -> Result<(), EnvError> {
        Ok(())
    }

    /// Create what the child needs on the host, start it, and return the handle on it
    /// ([`RunnerPipes::into_handle`]). The child sets up whatever it needs, then runs
    /// `body.run()`; it must close `pipes.parent_ends()` first if it needs to see the parent
    /// close them. This is the part of the start-up that differs between environments, and
    /// all of it is timed by [`measure_start`]. On error nothing is left: no child, no
    /// resources.
    fn launch(
        &mut self,
        spec: &InstanceSpec,
        mem: &RunnerMemory,
        body: &ChildBody,
        pipes: RunnerPipes,
    ) -> Result<Launched<Self::Resources>, EnvError>;
}

/// The scratch disk file of one runner.
pub struct DiskFile {
    /// Where the child opens (creates) it, after any `pivot_root`.
    pub in_child: CString,
    /// The same file on the host, removed when the runner goes; `None` when it goes with the
    /// launch's resources (the container's overlay).
    pub on_host: Option<PathBuf>,
}

/// A launched child and what its launch created on the host. The fields drop in order: the
/// child is killed and reaped before the resources are undone.
pub struct Launched<R> {
    pub handle: RunnerHandle,
    pub resources: R,
}

/// The command and answer pipes between the parent and one child, before the child exists.
pub struct RunnerPipes {
    cmd_r: OwnedFd,
    cmd_w: OwnedFd,
    done_r: OwnedFd,
    done_w: OwnedFd,
}

impl RunnerPipes {
    pub fn new(env: &str) -> Result<RunnerPipes, EnvError> {
        let pipe = || {
            pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| EnvError::setup(env, "creating a pipe", e))
        };
        let (cmd_r, cmd_w) = pipe()?;
        let (done_r, done_w) = pipe()?;
        Ok(RunnerPipes {
            cmd_r,
            cmd_w,
            done_r,
            done_w,
        })
    }

    /// The child's read end of the command pipe.
    pub fn cmd_r(&self) -> RawFd {
        self.cmd_r.as_raw_fd()
    }

    /// The child's write end of the answer pipe.
    pub fn done_w(&self) -> RawFd {
        self.done_w.as_raw_fd()
    }

    /// The parent's ends (command write, answer read), which the child inherits.
    pub fn parent_ends(&self) -> [RawFd; 2] {
        [self.cmd_w.as_raw_fd(), self.done_r.as_raw_fd()]
    }

    /// Once the child `pid` exists: close the child's ends here, keep the parent's in a
    /// handle on it.
    pub fn into_handle(self, pid: Pid, env: &str) -> RunnerHandle {
        let RunnerPipes {
            cmd_r,
            cmd_w,
            done_r,
            done_w,
        } = self;
        drop((cmd_r, done_w));
        RunnerHandle::new(pid, cmd_w, done_r, env)
    }
}

/// Why `spec.cpu` cannot be pinned to (not online, out of range), before anything starts.
pub fn check_cpu(env: &str, spec: &InstanceSpec) -> Result<(), EnvError> {
    match spec.cpu {
        Some(cpu) => affinity::check_cpu(cpu)
            .map_err(|why| EnvError::setup(env, format!("pinning the runner to CPU {cpu}"), why)),
        None => Ok(()),
    }
}

/// Both checks before a launch: the CPU, then the launcher's own.
fn check<L: Launch>(launcher: &L, spec: &InstanceSpec) -> Result<(), EnvError> {
    check_cpu(launcher.label(), spec)?;
    launcher.check(spec)
}

fn runner_memory(env: &str) -> Result<RunnerMemory, EnvError> {
    RunnerMemory::new()
        .map_err(|e| EnvError::setup(env, "creating the shared control memory (memfd)", e))
}

/// A running runner: its process, the memory shared with it, its disk file and what its
/// launch created on the host. Dropping it stops the runner (asks it to quit, or kills it),
/// removes the disk file, then drops the resources.
pub struct Runner<R> {
    handle: RunnerHandle,
    mem: RunnerMemory,
    spec: InstanceSpec,
    disk: Option<PathBuf>,
    resources: R,
    /// The runner's interference counters (its only thread, its CPU's steal).
    interference: interference::Reader,
}

impl<R> Runner<R> {
    /// Launch a runner for `spec` with `launcher` and wait until it is ready.
    pub fn start<L>(launcher: &mut L, spec: &InstanceSpec) -> Result<Runner<R>, EnvError>
    where
        L: Launch<Resources = R>,
    {
        check(launcher, spec)?;
        let env = launcher.label().to_string();
        let mem = runner_memory(&env)?;
        let disk = match spec.disk_size {
            0 => None,
            _ => Some(launcher.disk(spec)?),
        };
        let pipes = RunnerPipes::new(&env)?;
        let body = ChildBody::Runner(ChildConfig {
            control_fd: mem.control.raw_fd(),
            records_fd: mem.records.raw_fd(),
            work_size: spec.work_size,
            disk_path: disk.as_ref().map(|d| d.in_child.as_c_str()),
            disk_size: spec.disk_size,
            thp: spec.thp,
            cpu: spec.cpu,
            cmd_r: pipes.cmd_r(),
            done_w: pipes.done_w(),
        });
        let Launched { handle, resources } = launcher.launch(spec, &mem, &body, pipes)?;
        // The runner never makes threads: its PID is its measuring thread's id.
        let interference = interference::Reader::for_task(handle.pid, handle.pid, spec.cpu);
        let mut runner = Runner {
            handle,
            mem,
            spec: spec.clone(),
            disk: disk.and_then(|d| d.on_host),
            resources,
            interference,
        };
        // On failure wait_ready has killed and reaped the runner; dropping `runner` removes
        // its disk file and the launch's resources.
        runner.handle.wait_ready(READY_TIMEOUT)?;
        Ok(runner)
    }

    /// Run one invocation. After a crash or a deadline the runner has been killed and reaped
    /// ([`Runner::is_running`] is false); after a bad status it is alive, idle and usable.
    pub fn invoke(&mut self, inv: &Invocation) -> Result<RawRun, EnvError> {
        self.handle
            .invoke(&self.mem, inv, &self.spec, &mut self.interference)
    }

    /// Whether the runner process is still there (not yet reaped).
    pub fn is_running(&self) -> bool {
        !self.handle.has_ended()
    }

    /// The runner's PID, as seen from the host.
    pub fn pid(&self) -> Pid {
        self.handle.pid
    }

    /// The image bytes in the runner's memory at `IMAGE_BASE`.
    pub fn loaded_image(&self) -> std::io::Result<Vec<u8>> {
        process::read_loaded_image(self.handle.pid)
    }

    pub fn resources(&self) -> &R {
        &self.resources
    }

    /// The launch's resources, to undo them (once the runner is stopped) and see errors.
    pub fn resources_mut(&mut self) -> &mut R {
        &mut self.resources
    }

    /// Ask the runner to quit and reap it (if it is still there), and remove its disk file.
    /// The resources stay until the runner is dropped.
    pub fn stop(&mut self) {
        self.handle.quit();
        if let Some(p) = self.disk.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl<R> Drop for Runner<R> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One start-up measurement (all times TSC).
pub struct StartMeasurement<R> {
    /// When the launch began.
    pub launched: u64,
    /// When the image ran its first instruction (the `WL_START` probe's reading).
    pub first_instruction: u64,
    /// The probe's shared memory: a launch may have left its own timestamps in the record
    /// buffer.
    pub mem: RunnerMemory,
    /// What the launch created; the probe has been reaped, so the caller may undo them.
    pub resources: R,
}

impl<R> StartMeasurement<R> {
    /// Cycles from launch to the image's first instruction.
    pub fn cycles(&self) -> u64 {
        self.first_instruction.saturating_sub(self.launched)
    }
}

/// Launch a fresh child with `launcher` that enters the image once with `WL_START`, and time
/// it from launch (the launcher's first step) to the image's first instruction. The shared
/// memory and the pipes are made before the clock starts: they are the same for every
/// launcher.
pub fn measure_start<L: Launch>(
    launcher: &mut L,
    spec: &InstanceSpec,
) -> Result<StartMeasurement<L::Resources>, EnvError> {
    check(launcher, spec)?;
    let env = launcher.label().to_string();
    let mem = runner_memory(&env)?;
    mem.write_control(&ControlBlock::new(MODE_SYSCALL, WL_START));
    let pipes = RunnerPipes::new(&env)?;
    // A pinned probe pins itself in the child before it enters the image (`ChildBody::run`),
    // so its move onto the CPU is part of the measured start-up, as it is part of starting a
    // pinned instance.
    let body = ChildBody::StartProbe {
        control_fd: mem.control.raw_fd(),
        done_w: pipes.done_w(),
        cpu: spec.cpu,
    };
    let launched = tsc::now();
    let mut child = launcher.launch(spec, &mem, &body, pipes)?;
    let how = child.handle.wait_start_probe(spec.deadline)?;
    let out = mem.read_control();
    let inv = Invocation {
        name: "start",
        workload: WL_START,
        params: [0; PARAM_COUNT],
        flags: 0,
    };
    process::check_status(&env, &inv, &out).map_err(|_| EnvError::Crashed {
        env: env.clone(),
        workload: "start".into(),
        detail: how,
    })?;
    Ok(StartMeasurement {
        launched,
        first_instruction: out.results[0],
        mem,
        resources: child.resources,
    })
}
