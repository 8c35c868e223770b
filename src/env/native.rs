//! The native environment: a plain child process that maps the image and its memory at the
//! fixed addresses and runs it (DESIGN §3 "native"). `native-b` is a second instance of the
//! same, the A/A noise floor.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use isobench_abi::*;
use nix::unistd::{fork, pipe2, ForkResult};

use super::process::{self, ChildConfig, RunnerHandle, RunnerMemory};
use super::{EnvError, EnvKind, Environment, InstanceSpec, Invocation, RawRun};
use crate::tsc;

/// How long a runner may take to map its memory and say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

struct Instance {
    mem: RunnerMemory,
    handle: RunnerHandle,
    spec: InstanceSpec,
    disk_path: Option<PathBuf>,
}

pub struct Native {
    label: String,
    instance: Option<Instance>,
}

impl Native {
    /// A native environment labelled `label` (`native` or `native-b`).
    pub fn new(label: &str) -> Native {
        Native {
            label: label.to_string(),
            instance: None,
        }
    }

    fn spawn(&self, spec: &InstanceSpec) -> Result<Instance, EnvError> {
        let env = self.label.as_str();
        let mem = RunnerMemory::new()
            .map_err(|e| EnvError::setup(env, "creating the shared control memory (memfd)", e))?;
        let disk_path =
            (spec.disk_size > 0).then(|| spec.scratch.join(format!("{}.disk", self.label)));
        let disk_c = disk_path
            .as_ref()
            .map(|p| CString::new(p.as_os_str().as_bytes()))
            .transpose()
            .map_err(|e| EnvError::setup(env, "naming the scratch disk", e))?;
        let (cmd_r, cmd_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| EnvError::setup(env, "creating a pipe", e))?;
        let (done_r, done_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| EnvError::setup(env, "creating a pipe", e))?;
        let cfg = ChildConfig {
            control_fd: mem.control.raw_fd(),
            records_fd: mem.records.raw_fd(),
            work_size: spec.work_size,
            disk_path: disk_c.as_deref(),
            disk_size: spec.disk_size,
            thp: spec.thp,
            cmd_r: cmd_r.as_raw_fd(),
            done_w: done_w.as_raw_fd(),
        };
        // SAFETY: the child only runs `child_main`, which makes raw system calls and never
        // allocates or takes locks, so forking a possibly multi-threaded process is sound.
        match unsafe { fork() }.map_err(|e| EnvError::setup(env, "fork", e))? {
            ForkResult::Child => process::child_main(&cfg),
            ForkResult::Parent { child } => {
                drop(cmd_r);
                drop(done_w);
                let mut handle = RunnerHandle::new(child, cmd_w, done_r, &self.label);
                handle.wait_ready(READY_TIMEOUT)?;
                Ok(Instance {
                    mem,
                    handle,
                    spec: spec.clone(),
                    disk_path,
                })
            }
        }
    }
}

impl Environment for Native {
    fn label(&self) -> &str {
        &self.label
    }

    fn kind(&self) -> EnvKind {
        EnvKind::Native
    }

    fn start(&mut self, spec: &InstanceSpec) -> Result<(), EnvError> {
        self.stop()?;
        self.instance = Some(self.spawn(spec)?);
        Ok(())
    }

    fn invoke(&mut self, inv: &Invocation) -> Result<RawRun, EnvError> {
        let Some(inst) = self.instance.as_mut() else {
            return Err(EnvError::setup(
                &self.label,
                "invoking a workload",
                "the environment was not started",
            ));
        };
        let r = inst.handle.invoke(
            &inst.mem,
            inv,
            inst.spec.work_size,
            inst.spec.disk_size,
            inst.spec.deadline,
        );
        // After a crash or a deadline the runner has been killed and reaped: forget it. After
        // a bad status it is alive and idle, and stays usable.
        if matches!(r, Err(EnvError::Crashed { .. } | EnvError::Deadline { .. })) {
            if let Some(inst) = self.instance.take() {
                remove_disk(&inst.disk_path);
            }
        }
        r
    }

    fn measure_start(&mut self, spec: &InstanceSpec) -> Result<u64, EnvError> {
        let env = self.label.as_str();
        let mem = RunnerMemory::new()
            .map_err(|e| EnvError::setup(env, "creating the shared control memory (memfd)", e))?;
        mem.write_control(&ControlBlock::new(MODE_SYSCALL, WL_START));
        let (done_r, done_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| EnvError::setup(env, "creating a pipe", e))?;
        let (_unused_r, cmd_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| EnvError::setup(env, "creating a pipe", e))?;
        let control_fd = mem.control.raw_fd();
        let done_w_raw = done_w.as_raw_fd();
        let t_launch = tsc::now();
        // SAFETY: the child only runs `child_start_probe` (raw system calls, no allocation).
        let child = match unsafe { fork() }.map_err(|e| EnvError::setup(env, "fork", e))? {
            ForkResult::Child => process::child_start_probe(control_fd, done_w_raw),
            ForkResult::Parent { child } => child,
        };
        drop(done_w);
        let mut handle = RunnerHandle::new(child, cmd_w, done_r, &self.label);
        let inv = Invocation {
            name: "start",
            workload: WL_START,
            params: [0; PARAM_COUNT],
            flags: 0,
        };
        // The probe answers like an invocation; reuse the wait, then reap.
        let how = handle.wait_done_then_reap(spec.deadline);
        let out = mem.read_control();
        process::check_status(&self.label, &inv, &out).map_err(|_| EnvError::Crashed {
            env: self.label.clone(),
            workload: "start".into(),
            detail: how,
        })?;
        Ok(out.results[0].saturating_sub(t_launch))
    }

    fn facts(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(
            "runner".to_string(),
            "forked process, image at fixed addresses".to_string(),
        )])
    }

    fn loaded_image(&self) -> Option<std::io::Result<Vec<u8>>> {
        let inst = self.instance.as_ref()?;
        Some(process::read_loaded_image(inst.handle.pid))
    }

    fn stop(&mut self) -> Result<(), EnvError> {
        if let Some(mut inst) = self.instance.take() {
            inst.handle.quit();
            remove_disk(&inst.disk_path);
        }
        Ok(())
    }
}

impl Drop for Native {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn remove_disk(path: &Option<PathBuf>) {
    if let Some(p) = path {
        let _ = std::fs::remove_file(p);
    }
}
