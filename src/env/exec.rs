//! A user's own command in the environments (`isobench exec`, docs/METHODOLOGY.md, "Your
//! own command"): one run of a command ([`run_one`]: spawn, wait with a deadline, `wait4`
//! rusage of the process tree), its output files in the run directory, the `native`
//! environment for commands, and which environment kinds can run a command at all. The
//! container's side is `container/exec.rs`; an OCI runtime is one more [`Environment`]
//! whose `run_command` hands the same [`Spawn`] to a process inside its container.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{EnvError, EnvKind, Environment, InstanceSpec, Invocation, RawRun};
use crate::workload::command::{CommandRun, CommandSpec, Exit, SETUP_DEADLINE};

/// Bytes of a sample's output read back for its metrics (the file itself keeps the tail).
const READ_LIMIT: u64 = 64 << 20;

/// One run of a command, as the process that forks it gets it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spawn {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub deadline_ms: u64,
    /// Pin the command to this CPU (natively; the container's process is pinned already).
    pub cpu: Option<usize>,
}

impl Spawn {
    pub fn new(spec: &CommandSpec, argv: Vec<String>, deadline: Duration) -> Spawn {
        Spawn {
            argv,
            cwd: spec.cwd.clone(),
            env: spec.env.clone(),
            deadline_ms: deadline.as_millis() as u64,
            cpu: None,
        }
    }
}

/// How one run ended and what it used.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Ended {
    pub exit: Exit,
    pub wall_ns: u64,
    pub user_ns: u64,
    pub sys_ns: u64,
    pub max_rss_bytes: u64,
    /// Involuntary context switches of the command and its waited-for descendants: how
    /// often something else took their CPU (docs/METHODOLOGY.md, "Interference").
    pub nivcsw: u64,
}

/// Run `s` with stdin from `/dev/null` (at EOF at once) and its output in `stdout`/`stderr`, wait for it (killing it
/// at the deadline), and return how it ended with the `wait4` rusage of it and every
/// descendant it waited for. The wall time runs from just before the fork to the reap.
pub fn run_one(s: &Spawn, stdout: File, stderr: File) -> std::io::Result<Ended> {
    let (prog, args) = s
        .argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("an empty command"))?;
    if !s.cwd.is_dir() {
        return Err(std::io::Error::other(format!(
            "the working directory {} does not exist here: in the container only the lower layer's own filesystem is visible (the host's / without the mounts under it); run isobench from a directory on that filesystem, or give --rootfs",
            s.cwd.display()
        )));
    }
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args)
        .current_dir(&s.cwd)
        .env_clear()
        .envs(s.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    if let Some(cpu) = s.cpu {
        // SAFETY: the closure runs in the forked child before exec and only calls
        // sched_setaffinity on a stack-allocated set, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                let mut set = nix::sched::CpuSet::new();
                set.set(cpu).map_err(std::io::Error::from)?;
                nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
                    .map_err(std::io::Error::from)
            });
        }
    }
    let t0 = Instant::now();
    let child = cmd.spawn().map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "starting `{prog}` in {}: {e} (is it installed and on PATH there?)",
                s.cwd.display()
            ),
        )
    })?;
    let pid = child.id() as libc::pid_t;
    // SAFETY: pidfd_open on our own unreaped child; the result is a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let pidfd = (fd >= 0).then(|| {
        // SAFETY: fd is a fresh descriptor we own.
        unsafe { OwnedFd::from_raw_fd(fd as i32) }
    });
    let mut timed_out = false;
    if let Some(pidfd) = &pidfd {
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let deadline = Duration::from_millis(s.deadline_ms);
        loop {
            let left = deadline.saturating_sub(t0.elapsed());
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r > 0 {
                break;
            }
            if r == 0 && t0.elapsed() >= deadline {
                timed_out = true;
                // SAFETY: signalling our own unreaped child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                break;
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
        }
    }
    let mut status = 0;
    // SAFETY: rusage is plain data the kernel fills in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waiting for our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(std::io::Error::other(format!("waiting for `{prog}`: {e}")));
        }
    }
    let wall_ns = t0.elapsed().as_nanos() as u64;
    drop(child);
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    let exit = if timed_out {
        Exit::Deadline
    } else if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else {
        Exit::Signal(libc::WTERMSIG(status))
    };
    Ok(Ended {
        exit,
        wall_ns,
        user_ns: tv(ru.ru_utime),
        sys_ns: tv(ru.ru_stime),
        max_rss_bytes: ru.ru_maxrss as u64 * 1024,
        nivcsw: ru.ru_nivcsw as u64,
    })
}

/// The output files of one sample: `<dir>/<label>/<n>.stdout` and `.stderr`.
pub struct Outputs {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Outputs {
    /// Create the files of sample `tag` of environment `label`.
    pub fn create(dir: &Path, label: &str, tag: &str) -> std::io::Result<(Outputs, File, File)> {
        let d = dir.join(label);
        std::fs::create_dir_all(&d)?;
        let o = Outputs {
            stdout: d.join(format!("{tag}.stdout")),
            stderr: d.join(format!("{tag}.stderr")),
        };
        let out = File::create(&o.stdout)?;
        let err = File::create(&o.stderr)?;
        Ok((o, out, err))
    }

    /// Read both files back (up to [`READ_LIMIT`] each, the end when longer) and cut each to
    /// its last `cap` bytes.
    pub fn collect(&self, cap: u64) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
        Ok((keep_tail(&self.stdout, cap)?, keep_tail(&self.stderr, cap)?))
    }
}

fn keep_tail(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(READ_LIMIT)))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    if len > cap {
        let note = format!("[isobench: the first {} bytes were cut]\n", len - cap);
        let tail = &bytes[bytes.len().saturating_sub(cap as usize)..];
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(note.as_bytes())?;
        f.write_all(tail)?;
    }
    Ok(bytes)
}

/// Run one sample of `spec` through `run` (which forks it here or in a container), with its
/// output in the run directory, and assemble the [`CommandRun`].
pub fn sample(
    spec: &CommandSpec,
    label: &str,
    tag: &str,
    run: impl FnOnce(File, File) -> Result<Ended, EnvError>,
) -> Result<CommandRun, EnvError> {
    let (outputs, out, err) = Outputs::create(&spec.output_dir, label, tag).map_err(|e| {
        EnvError::setup(
            label,
            format!(
                "creating the output files under {}",
                spec.output_dir.display()
            ),
            e,
        )
    })?;
    let ended = run(out, err)?;
    let (stdout, stderr) = outputs
        .collect(spec.output_cap)
        .map_err(|e| EnvError::setup(label, "reading the command's output back", e))?;
    Ok(CommandRun {
        exit: Some(ended.exit),
        wall_ns: ended.wall_ns,
        user_ns: ended.user_ns,
        sys_ns: ended.sys_ns,
        max_rss_bytes: ended.max_rss_bytes,
        stdout,
        stderr,
        stdout_path: outputs.stdout,
        counters: BTreeMap::from([("nivcsw".to_string(), ended.nivcsw)]),
    })
}

/// Run the `--setup` commands of `spec` through `run`, once per instance before its first
/// sample, untimed; a failure is an error with the command's output.
pub fn run_setup(
    spec: &CommandSpec,
    label: &str,
    mut run: impl FnMut(&Spawn, File, File) -> Result<Ended, EnvError>,
) -> Result<(), EnvError> {
    for (i, cmd) in spec.setup.iter().enumerate() {
        let s = Spawn::new(
            spec,
            vec!["/bin/sh".into(), "-c".into(), cmd.clone()],
            SETUP_DEADLINE,
        );
        let r = sample(spec, label, &format!("setup-{i}"), |o, e| run(&s, o, e))?;
        if r.exit != Some(Exit::Code(0)) {
            let tail = String::from_utf8_lossy(&r.stderr[r.stderr.len().saturating_sub(800)..])
                .into_owned();
            return Err(EnvError::setup(
                label,
                format!("the set-up command `{cmd}`"),
                format!(
                    "it ended with {:?} (output in {}); fix it and run again. stderr ends with: {}",
                    r.exit.unwrap_or(Exit::Code(-1)),
                    r.stdout_path.display(),
                    tail.trim_end()
                ),
            ));
        }
    }
    Ok(())
}

/// Why an environment kind cannot run a command here, if it cannot.
pub fn probe(kind: EnvKind) -> Result<(), String> {
    match kind {
        EnvKind::Native => Ok(()),
        EnvKind::Container => super::container::Container::probe(),
        EnvKind::Vm => Err("the vm runs only the freestanding workload image (it has no Linux kernel), so it cannot run a Linux program on this host".into()),
        EnvKind::Runc | EnvKind::Crun | EnvKind::Runsc | EnvKind::Oci => Err(format!(
            "isobench exec does not run commands under {} yet: use --env native,container",
            kind.name()
        )),
    }
}

/// Build the command environment `kind` labelled `label`.
pub fn build(
    kind: EnvKind,
    label: &str,
    plan: &crate::plan::Plan,
) -> Result<Box<dyn Environment>, EnvError> {
    let deadline = plan.deadline;
    Ok(match kind {
        EnvKind::Native => Box::new(NativeExec::new(label, deadline)),
        EnvKind::Container => Box::new(super::container::exec::ExecContainer::new(
            label,
            plan.container.clone(),
            plan.exec_rootfs(),
            deadline,
        )),
        EnvKind::Vm | EnvKind::Runc | EnvKind::Crun | EnvKind::Runsc | EnvKind::Oci => {
            return Err(EnvError::Unavailable {
                env: label.into(),
                reason: probe(kind).unwrap_err(),
            })
        }
    })
}

/// The error of an image call in an environment that runs commands.
pub fn no_image(label: &str) -> EnvError {
    EnvError::setup(
        label,
        "invoking the workload image",
        "this instance runs a command (isobench exec), not the image",
    )
}

/// `native` for commands: the command is forked by isobench itself, pinned to the measured
/// CPU.
pub struct NativeExec {
    label: String,
    deadline: Duration,
    cpu: Option<usize>,
    samples: u64,
}

impl NativeExec {
    pub fn new(label: &str, deadline: Duration) -> NativeExec {
        NativeExec {
            label: label.into(),
            deadline,
            cpu: None,
            samples: 0,
        }
    }

    fn spawn(&self, s: &Spawn, out: File, err: File) -> Result<Ended, EnvError> {
        let mut s = s.clone();
        s.cpu = self.cpu;
        run_one(&s, out, err).map_err(|e| EnvError::setup(&self.label, "running the command", e))
    }
}

impl Environment for NativeExec {
    fn label(&self) -> &str {
        &self.label
    }

    fn kind(&self) -> EnvKind {
        EnvKind::Native
    }

    fn start(&mut self, spec: &InstanceSpec) -> Result<(), EnvError> {
        self.cpu = spec.cpu;
        self.samples = 0;
        Ok(())
    }

    fn invoke(&mut self, _inv: &Invocation) -> Result<RawRun, EnvError> {
        Err(no_image(&self.label))
    }

    fn measure_start(&mut self, _spec: &InstanceSpec) -> Result<u64, EnvError> {
        Err(no_image(&self.label))
    }

    fn run_command(&mut self, cmd: &CommandSpec) -> Result<CommandRun, EnvError> {
        if self.samples == 0 {
            run_setup(cmd, &self.label, |s, o, e| self.spawn(s, o, e))?;
        }
        self.samples += 1;
        let s = Spawn::new(cmd, cmd.argv.clone(), self.deadline);
        let tag = self.samples.to_string();
        sample(cmd, &self.label, &tag, |o, e| self.spawn(&s, o, e))
    }

    fn facts(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("runs".into(), "the command, forked by isobench".into()),
            ("cpu".into(), super::cpu_fact(self.cpu)),
        ])
    }

    fn stop(&mut self) -> Result<(), EnvError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn(argv: &[&str], deadline_ms: u64) -> Spawn {
        Spawn {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: "/".into(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            deadline_ms,
            cpu: None,
        }
    }

    #[test]
    fn a_run_reports_its_exit_cpu_time_and_memory() {
        let t = tempfile::tempdir().unwrap();
        let (o, out, err) = Outputs::create(t.path(), "native", "1").unwrap();
        // A CPU-bound loop in a child of the shell: the rusage includes it.
        let s = spawn(
            &[
                "sh",
                "-c",
                "sh -c 'i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done'; echo done; exit 3",
            ],
            60_000,
        );
        let e = run_one(&s, out, err).unwrap();
        assert_eq!(e.exit, Exit::Code(3));
        assert!(e.user_ns + e.sys_ns > 0, "{e:?}");
        assert!(e.max_rss_bytes > 0);
        assert!(e.wall_ns >= e.user_ns / 2);
        let (stdout, _) = o.collect(1 << 20).unwrap();
        assert_eq!(stdout, b"done\n");
    }

    #[test]
    fn a_runaway_is_killed_at_its_deadline() {
        let t = tempfile::tempdir().unwrap();
        let (_, out, err) = Outputs::create(t.path(), "native", "1").unwrap();
        let t0 = Instant::now();
        let e = run_one(&spawn(&["sleep", "30"], 200), out, err).unwrap();
        assert_eq!(e.exit, Exit::Deadline);
        assert!(t0.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn output_beyond_the_cap_keeps_its_tail() {
        let t = tempfile::tempdir().unwrap();
        let (o, mut out, _) = Outputs::create(t.path(), "x", "1").unwrap();
        out.write_all(&[b'a'; 100]).unwrap();
        out.write_all(b"END").unwrap();
        drop(out);
        let (all, _) = o.collect(10).unwrap();
        assert_eq!(all.len(), 103, "the metrics see the whole output");
        let kept = std::fs::read_to_string(&o.stdout).unwrap();
        assert!(kept.starts_with("[isobench: the first 93 bytes were cut]"));
        assert!(kept.ends_with("aaaaaaaEND"));
    }

    #[test]
    fn an_unknown_program_is_a_clear_error() {
        let t = tempfile::tempdir().unwrap();
        let (_, out, err) = Outputs::create(t.path(), "native", "1").unwrap();
        let e = run_one(&spawn(&["no-such-program-xyz"], 1000), out, err).unwrap_err();
        assert!(e.to_string().contains("is it installed"), "{e}");
    }
}
