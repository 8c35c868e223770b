//! The parent side of one launched child: its handle (commands, answers, kill and reap),
//! waiting on its pipes, reading its image back, and turning its exit or status into an
//! error.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use isobench_abi::*;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::super::{
    interference, status_meaning, threads, EnvError, InstanceSpec, Invocation, RawRun,
};
use super::*;
use crate::image;

/// Parent-side handle on a launched child (a runner or a probe). Dropping it kills and
/// reaps the child unless it has already been reaped, so no child outlives its handle.
pub struct RunnerHandle {
    /// The process to kill and reap (for a container: the process isobench cloned).
    pub pid: Pid,
    pub cmd_w: OwnedFd,
    pub done_r: OwnedFd,
    pub env: String,
    /// How the child ended, once it has been reaped: its PID must not be signalled or
    /// waited for again (it may belong to another process by then).
    ended: Option<String>,
}

/// Whether `fd` became readable (or hung up) before `end`: `Ok(true)` readable,
/// `Ok(false)` a poll error (treated as the end of the pipe), `Err(())` the deadline passed.
pub(crate) fn wait_readable(fd: &OwnedFd, end: Instant) -> Result<bool, ()> {
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(());
        }
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => return Ok(true),
            Err(_) => return Ok(false),
        }
    }
}

/// Wait up to `timeout` for one byte; `Ok(None)` on EOF, `Err(())` on timeout.
pub(crate) fn wait_byte(fd: &OwnedFd, timeout: Duration) -> Result<Option<u8>, ()> {
    match wait_readable(fd, Instant::now() + timeout)? {
        true => Ok(raw_read_byte(fd.as_raw_fd())),
        false => Ok(None),
    }
}

/// Read the image back from a runner's memory at `IMAGE_BASE` (`/proc/<pid>/mem`).
pub fn read_loaded_image(pid: Pid) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem"))?;
    let mut buf = vec![0u8; image::IMAGE.len()];
    mem.read_exact_at(&mut buf, IMAGE_BASE)?;
    Ok(buf)
}

/// Describe how a child ended, for an error message.
pub fn describe_exit(status: WaitStatus) -> String {
    match status {
        WaitStatus::Signaled(_, Signal::SIGSEGV, _) => {
            "killed by SIGSEGV (the image touched memory it must not: a fault in the workload)"
                .into()
        }
        WaitStatus::Signaled(_, Signal::SIGKILL, _) => {
            "killed by SIGKILL (out of memory, a memory limit, or an external kill)".into()
        }
        WaitStatus::Signaled(_, sig, core) => {
            format!(
                "killed by {sig}{}",
                if core { " (core dumped)" } else { "" }
            )
        }
        WaitStatus::Exited(_, code) => format!("exited with code {code}"),
        other => format!("ended: {other:?}"),
    }
}

impl RunnerHandle {
    pub fn new(pid: Pid, cmd_w: OwnedFd, done_r: OwnedFd, env: &str) -> RunnerHandle {
        RunnerHandle {
            pid,
            cmd_w,
            done_r,
            env: env.to_string(),
            ended: None,
        }
    }

    /// Whether the child has been reaped (after a crash, a deadline, a kill or a quit).
    pub fn has_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// Wait for the runner's "ready" (or its setup error).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), EnvError> {
        match wait_byte(&self.done_r, timeout) {
            Ok(Some(ANS_READY)) => Ok(()),
            Ok(Some(ANS_ERROR)) => {
                let msg = self.read_rest();
                let _ = self.kill_and_reap();
                Err(EnvError::setup(&self.env, "starting the runner", msg))
            }
            Ok(_) => {
                let how = self.kill_and_reap();
                Err(EnvError::setup(
                    &self.env,
                    "starting the runner",
                    format!("the runner {how} before it was ready"),
                ))
            }
            Err(()) => {
                let _ = self.kill_and_reap();
                Err(EnvError::setup(
                    &self.env,
                    "starting the runner",
                    format!("not ready within {timeout:?}"),
                ))
            }
        }
    }

    fn read_rest(&self) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = nix::unistd::read(self.done_r.as_raw_fd(), &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Kill the runner (SIGKILL) and reap it; returns how it ended. Once reaped, only says
    /// how it ended.
    pub fn kill_and_reap(&mut self) -> String {
        if self.ended.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
        self.reap()
    }

    fn reap(&mut self) -> String {
        if let Some(how) = &self.ended {
            return how.clone();
        }
        let how = loop {
            match waitpid(self.pid, None) {
                Err(Errno::EINTR) => continue,
                Ok(st) => break describe_exit(st),
                Err(e) => break format!("could not be reaped ({e})"),
            }
        };
        self.ended = Some(how.clone());
        how
    }

    /// Wait for a start-up probe's answer and reap it; returns how it ended. A set-up error
    /// it reported, or no answer by `deadline`, is an error (the probe killed and reaped).
    pub fn wait_start_probe(&mut self, deadline: Duration) -> Result<String, EnvError> {
        match wait_byte(&self.done_r, deadline) {
            Ok(Some(ANS_ERROR)) => {
                let msg = self.read_rest();
                let _ = self.kill_and_reap();
                Err(EnvError::setup(&self.env, "starting the runner", msg))
            }
            // Done (it exits right after answering), or it ended without an answer: the
            // caller finds out which from the status the image left.
            Ok(_) => Ok(self.reap()),
            Err(()) => {
                let _ = self.kill_and_reap();
                Err(EnvError::Deadline {
                    env: self.env.clone(),
                    workload: "start".into(),
                    deadline,
                })
            }
        }
    }

    /// Ask the runner to quit and reap it (nothing to do once it has been reaped).
    pub fn quit(&mut self) {
        if self.has_ended() {
            return;
        }
        // Any byte but CMD_RUN (or the end of the command pipe) is the quit request.
        let _ = raw_write(self.cmd_w.as_raw_fd(), b"Q");
        match wait_byte(&self.done_r, Duration::from_secs(2)) {
            Ok(None) => {
                let _ = self.reap();
            }
            _ => {
                let _ = self.kill_and_reap();
            }
        }
    }

    /// Run one invocation: write the control block, signal, wait, read the outputs. The
    /// runner's interference is read with `interference` just before the command and just
    /// after the answer, outside `wall_ns`.
    pub fn invoke(
        &mut self,
        mem: &RunnerMemory,
        inv: &Invocation,
        spec: &InstanceSpec,
        interference: &mut interference::Reader,
    ) -> Result<RawRun, EnvError> {
        let deadline = spec.deadline;
        let blocks = threads::blocks(spec, inv, MODE_SYSCALL);
        // Threads 1.. first: thread 0's block is the runner's signal to start them.
        for (t, cb) in blocks.iter().enumerate().rev() {
            let mut cb = *cb;
            cb.disk_size = spec.disk_size;
            mem.write_thread_control(t as u32, &cb);
        }
        let before = interference.read();
        let t0 = Instant::now();
        if raw_write(self.cmd_w.as_raw_fd(), &[CMD_RUN]) != 1 {
            let how = self.kill_and_reap();
            return Err(EnvError::Crashed {
                env: self.env.clone(),
                workload: inv.name.into(),
                detail: format!("the runner {how}"),
            });
        }
        let answer = wait_byte(&self.done_r, deadline);
        let wall_ns = t0.elapsed().as_nanos() as u64;
        let mut counters = BTreeMap::new();
        match answer {
            Ok(Some(ANS_DONE)) => before.add_delta(&interference.read(), &mut counters),
            Ok(_) => {
                let how = self.reap();
                return Err(EnvError::Crashed {
                    env: self.env.clone(),
                    workload: inv.name.into(),
                    detail: how,
                });
            }
            Err(()) => {
                let _ = self.kill_and_reap();
                return Err(EnvError::Deadline {
                    env: self.env.clone(),
                    workload: inv.name.into(),
                    deadline,
                });
            }
        }
        if blocks.len() > 1 {
            let mut outs = Vec::new();
            for (t, cb) in blocks.iter().enumerate() {
                let out = mem.read_thread_control(t as u32);
                check_status(&self.env, inv, &out)?;
                let rec = cb.record_addr - RECORD_ADDR;
                outs.push(threads::ThreadOutput {
                    records: mem.read_records_at(rec, out.records.min(cb.record_capacity)),
                    stamps: mem.read_records_at(
                        cb.stamp_addr - RECORD_ADDR,
                        out.stamps.min(cb.stamp_capacity),
                    ),
                    cb: out,
                });
            }
            return threads::join(&self.env, inv, &blocks, outs, wall_ns, counters);
        }
        let out = mem.read_control();
        check_status(&self.env, inv, &out)?;
        Ok(RawRun {
            status: out.status,
            checksum: out.checksum,
            cycles: out.cycles,
            results: out.results,
            records: mem.read_records(out.records),
            hostcalls: out.hostcalls,
            wall_ns,
            counters,
            threads: Vec::new(),
        })
    }
}

impl Drop for RunnerHandle {
    fn drop(&mut self) {
        if !self.has_ended() {
            let _ = self.kill_and_reap();
        }
    }
}

/// Turn a non-OK image status into an error naming the workload.
pub fn check_status(env: &str, inv: &Invocation, out: &ControlBlock) -> Result<(), EnvError> {
    if out.status == STATUS_OK {
        return Ok(());
    }
    let mut meaning = status_meaning(out.status).to_string();
    if out.status == STATUS_HOSTCALL_FAILED {
        let code = out.results[RESULT_COUNT - 1] as i64;
        meaning = if let Some(what) = hostcall_error_meaning(code) {
            format!("a hostcall failed: {what}")
        } else if (-4095..0).contains(&code) {
            let errno = Errno::from_raw(-code as i32);
            let hint = if errno == Errno::ENOSPC {
                ": free space in the scratch directory or point --scratch elsewhere"
            } else {
                ""
            };
            format!("a hostcall failed with {errno} ({}){hint}", errno.desc())
        } else {
            format!("a hostcall failed with status {code}")
        };
    }
    Err(EnvError::Status {
        env: env.into(),
        workload: inv.name.into(),
        status: out.status,
        meaning,
    })
}

/// The meaning of a negated `HC_ERR_*` status (the VMM's validation failures, and short
/// transfers reported by the kernels), which would otherwise be misread as an errno.
pub fn hostcall_error_meaning(code: i64) -> Option<&'static str> {
    Some(match -code {
        HC_ERR_VERSION => "HC_ERR_VERSION (the image and the host disagree on the hostcall format)",
        HC_ERR_OP => "HC_ERR_OP (unknown hostcall operation)",
        HC_ERR_ADDRESS => "HC_ERR_ADDRESS (a buffer outside the guest's memory)",
        HC_ERR_OFFSET => "HC_ERR_OFFSET (a disk offset beyond the scratch disk)",
        HC_ERR_IO => {
            "HC_ERR_IO (a short or failed disk transfer: is the scratch disk full or truncated?)"
        }
        _ => return None,
    })
}
