//! The native environment: a plain child process that maps the image and its memory at the
//! fixed addresses and runs it (docs/ARCHITECTURE.md). `native-b` is a second instance of the
//! same, the A/A noise floor. The runner loop is `runner.rs`'s; all native adds is the
//! launch: a `fork`, nothing else.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use nix::unistd::{fork, ForkResult};

use super::process::{ChildBody, RunnerMemory};
use super::runner::{self, DiskFile, Launch, Launched, Runner, RunnerPipes};
use super::{EnvError, EnvKind, Environment, InstanceSpec, Invocation, RawRun};

/// The native launch: fork, and the child runs its body straight away.
struct Fork<'a> {
    label: &'a str,
}

impl Launch for Fork<'_> {
    type Resources = ();

    fn label(&self) -> &str {
        self.label
    }

    fn disk(&self, spec: &InstanceSpec) -> Result<DiskFile, EnvError> {
        let on_host = spec.scratch.join(format!("{}.disk", self.label));
        let in_child = CString::new(on_host.as_os_str().as_bytes())
            .map_err(|e| EnvError::setup(self.label, "naming the scratch disk", e))?;
        Ok(DiskFile {
            in_child,
            on_host: Some(on_host),
        })
    }

    fn launch(
        &mut self,
        _spec: &InstanceSpec,
        _mem: &RunnerMemory,
        body: &ChildBody,
        pipes: RunnerPipes,
    ) -> Result<Launched<()>, EnvError> {
        // SAFETY: the child only runs `body` (the runner loop or the start-up probe), which
        // makes raw system calls and never allocates or takes locks, so forking a possibly
        // multi-threaded process is sound.
        match unsafe { fork() }.map_err(|e| EnvError::setup(self.label, "fork", e))? {
            ForkResult::Child => body.run(),
            ForkResult::Parent { child } => Ok(Launched {
                handle: pipes.into_handle(child, self.label),
                resources: (),
            }),
        }
    }
}

pub struct Native {
    label: String,
    runner: Option<Runner<()>>,
    /// The CPU the runner of the last `start` was pinned to.
    cpu: Option<usize>,
}

impl Native {
    /// A native environment labelled `label` (`native` or `native-b`).
    pub fn new(label: &str) -> Native {
        Native {
            label: label.to_string(),
            runner: None,
            cpu: None,
        }
    }

    fn launcher(&self) -> Fork<'_> {
        Fork { label: &self.label }
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
        self.cpu = spec.cpu;
        self.runner = Some(Runner::start(&mut self.launcher(), spec)?);
        Ok(())
    }

    fn invoke(&mut self, inv: &Invocation) -> Result<RawRun, EnvError> {
        let Some(runner) = self.runner.as_mut() else {
            return Err(EnvError::setup(
                &self.label,
                "invoking a workload",
                "the environment was not started",
            ));
        };
        let r = runner.invoke(inv);
        // After a crash or a deadline the runner has been killed and reaped: forget it (which
        // removes its disk). After a bad status it is alive and idle, and stays usable.
        if !runner.is_running() {
            self.runner = None;
        }
        r
    }

    fn measure_start(&mut self, spec: &InstanceSpec) -> Result<u64, EnvError> {
        Ok(runner::measure_start(&mut self.launcher(), spec)?.cycles())
    }

    fn facts(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "runner".to_string(),
                "forked process, image at fixed addresses".to_string(),
            ),
            ("cpu".to_string(), super::cpu_fact(self.cpu)),
        ])
    }

    fn loaded_image(&self) -> Option<std::io::Result<Vec<u8>>> {
        Some(self.runner.as_ref()?.loaded_image())
    }

    fn stop(&mut self) -> Result<(), EnvError> {
        if let Some(mut runner) = self.runner.take() {
            runner.stop();
        }
        Ok(())
    }
}

impl Drop for Native {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use isobench_abi::WL_CPU_INT;
    use nix::sys::signal::{kill, Signal};

    use super::*;
    use crate::env::affinity::{self, observe};
    use crate::env::interference;
    use crate::workload;

    fn spec(scratch: &Path, disk_size: u64) -> InstanceSpec {
        InstanceSpec {
            work_size: 16 * 1024,
            disk_size,
            scratch: scratch.to_path_buf(),
            deadline: Duration::from_secs(60),
            thp: true,
            cpu: None,
            threads: 1,
            thread_cpus: Vec::new(),
        }
    }

    fn cpu_int() -> Invocation {
        Invocation {
            name: "cpu.int",
            workload: WL_CPU_INT,
            params: workload::params(&[16 * 1024, 10, 7, 1]),
            flags: 0,
        }
    }

    #[test]
    fn a_killed_runner_is_a_crash_and_is_forgotten_with_its_disk() {
        let t = tempfile::tempdir().unwrap();
        let mut n = Native::new("native");
        n.start(&spec(t.path(), 1 << 20)).unwrap();
        let disk = t.path().join("native.disk");
        assert_eq!(std::fs::metadata(&disk).unwrap().len(), 1 << 20);
        n.invoke(&cpu_int()).unwrap();
        let pid = n.runner.as_ref().unwrap().pid();
        kill(pid, Signal::SIGKILL).unwrap();
        let err = n.invoke(&cpu_int()).unwrap_err();
        assert!(matches!(err, EnvError::Crashed { .. }), "{err}");
        assert!(err.to_string().contains("SIGKILL"), "{err}");
        assert!(n.runner.is_none());
        assert!(!disk.exists());
        // It starts again, and stop removes the disk too.
        n.start(&spec(t.path(), 1 << 20)).unwrap();
        n.invoke(&cpu_int()).unwrap();
        n.stop().unwrap();
        assert!(!disk.exists());
    }

    #[test]
    fn a_failed_start_leaves_no_disk() {
        let t = tempfile::tempdir().unwrap();
        let mut n = Native::new("native");
        // The runner creates the disk file, then cannot size it.
        let err = n.start(&spec(t.path(), 1 << 62)).unwrap_err();
        assert!(err.to_string().contains("scratch disk"), "{err}");
        assert!(n.runner.is_none());
        assert!(!t.path().join("native.disk").exists());
    }

    /// The CPUs this test may pin to.
    fn cpus_here() -> Vec<usize> {
        affinity::current_thread_cpus()
            .unwrap()
            .into_iter()
            .collect()
    }

    fn pinned(scratch: &Path, cpu: usize) -> InstanceSpec {
        InstanceSpec {
            cpu: Some(cpu),
            ..spec(scratch, 0)
        }
    }

    /// About 0.2 s of cpu.int: long enough to watch the runner while it works.
    fn long_cpu_int() -> Invocation {
        Invocation {
            params: workload::params(&[16 * 1024, 50_000, 7, 1]),
            ..cpu_int()
        }
    }

    #[test]
    fn a_pinned_runner_runs_on_its_cpu_and_nowhere_else() {
        let t = tempfile::tempdir().unwrap();
        // Every CPU in turn, so a runner that merely happened to be on the CPU fails.
        for cpu in cpus_here() {
            let mut n = Native::new("native");
            n.start(&pinned(t.path(), cpu)).unwrap();
            assert_eq!(n.facts()["cpu"], cpu.to_string());
            let pid = n.runner.as_ref().unwrap().pid().as_raw();
            let (run, seen) = observe::sample_while(pid, pid, || n.invoke(&long_cpu_int()));
            let run = run.unwrap();
            assert!(seen.len() >= 20, "only {} samples", seen.len());
            let want = observe::Placement {
                allowed: [cpu].into(),
                on: cpu,
            };
            assert!(seen.iter().all(|p| *p == want), "CPU {cpu}: {seen:?}");
            has_interference_counters(&run);
            n.stop().unwrap();
        }
        // Unpinned, as before: the runner may run anywhere this process may.
        let mut n = Native::new("native");
        n.start(&spec(t.path(), 0)).unwrap();
        assert_eq!(n.facts()["cpu"], "none");
        let pid = n.runner.as_ref().unwrap().pid().as_raw();
        let p = observe::placement(pid, pid).unwrap();
        assert_eq!(p.allowed, affinity::current_thread_cpus().unwrap());
        has_interference_counters(&n.invoke(&cpu_int()).unwrap());
    }

    /// Every invocation accounts its interference.
    fn has_interference_counters(run: &RawRun) {
        for c in [
            interference::STEAL_TICKS,
            interference::RUN_DELAY_NS,
            interference::NIVCSW,
        ] {
            assert!(run.counters.contains_key(c), "{c} in {:?}", run.counters);
        }
    }

    #[test]
    fn a_competitor_on_the_runners_cpu_shows_in_its_counters() {
        let t = tempfile::tempdir().unwrap();
        let cpu = *cpus_here().last().unwrap();
        let mut n = Native::new("native");
        n.start(&pinned(t.path(), cpu)).unwrap();
        let run = {
            let _busy = observe::compete_on(cpu);
            n.invoke(&long_cpu_int()).unwrap()
        };
        eprintln!(
            "runner sharing CPU {cpu} with a spinner: {:?}",
            run.counters
        );
        // Sharing the CPU with a spinning thread, the runner waited for a good part of its
        // ~0.2 s (CFS gives each about half) and was preempted.
        let c = &run.counters;
        assert!(c[interference::RUN_DELAY_NS] > 20_000_000, "{c:?}");
        assert!(c[interference::NIVCSW] > 0, "{c:?}");
    }

    #[test]
    fn every_child_body_pins_itself_the_start_up_probe_too() {
        // `ChildBody::run` pins before any body runs (the runner, the start-up probe, a
        // test probe): a probe body shows the affinity the child had when its body began.
        let t = tempfile::tempdir().unwrap();
        for cpu in cpus_here() {
            let mem = RunnerMemory::new().unwrap();
            let pipes = RunnerPipes::new("native").unwrap();
            let body = ChildBody::Probe {
                inside: observe::report_status,
                done_w: pipes.done_w(),
                cpu: Some(cpu),
            };
            let s = pinned(t.path(), cpu);
            let mut child = Fork { label: "native" }
                .launch(&s, &mem, &body, pipes)
                .unwrap();
            let status = observe::read_status(&child.handle.done_r, Duration::from_secs(10));
            child.handle.kill_and_reap();
            assert_eq!(
                observe::allowed_in_status(&status),
                Some([cpu].into()),
                "{status}"
            );
            // And a pinned start-up measurement runs.
            let mut n = Native::new("native");
            assert!(n.measure_start(&s).unwrap() > 0);
        }
    }

    #[test]
    fn an_impossible_cpu_is_a_clear_error_before_anything_starts() {
        let t = tempfile::tempdir().unwrap();
        let mut n = Native::new("native");
        let bad = pinned(t.path(), nix::sched::CpuSet::count());
        let err = n.start(&bad).unwrap_err().to_string();
        assert!(err.contains("pinning the runner to CPU"), "{err}");
        assert!(n.runner.is_none());
        let err = n.measure_start(&bad).unwrap_err().to_string();
        assert!(err.contains("pinning the runner to CPU"), "{err}");
        if let Some(offline) = affinity::online_cpus()
            .and_then(|o| o.iter().max().map(|m| m + 1))
            .filter(|&c| c < nix::sched::CpuSet::count())
        {
            let err = n.start(&pinned(t.path(), offline)).unwrap_err().to_string();
            assert!(err.contains("not online") && err.contains("--cpu"), "{err}");
        }
    }

    #[test]
    fn measure_start_times_a_fresh_process() {
        let t = tempfile::tempdir().unwrap();
        let mut n = Native::new("native");
        let cycles = n.measure_start(&spec(t.path(), 0)).unwrap();
        let hz = crate::tsc::calibrate(Duration::from_millis(5));
        let ms = cycles as f64 / hz * 1e3;
        assert!(ms > 0.0 && ms < 5000.0, "{ms} ms");
        // A separate process: nothing of it stays.
        assert!(n.runner.is_none());
    }
}
