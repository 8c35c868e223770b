//! The container for a user's command (`isobench exec`, docs/METHODOLOGY.md, "Your own
//! command"): the same namespaces, cgroup and limits as the image's container, but its root
//! is an overlay whose read-only lower layer is the host's `/` (or `--rootfs DIR`), so the
//! command finds the host's programs, and every write lands in the upper layer (scratch
//! directory or tmpfs), never in the host's files. A fresh `/proc`, a minimal `/dev` (a
//! tmpfs with null, zero, full, random, urandom, tty and a `shm` tmpfs) and a read-only
//! `/sys`.
//!
//! Launch: the parent creates the marker, the directories and the cgroup, then clones the
//! child into the namespaces; the child joins its cgroup, unshares its cgroup namespace,
//! makes `/` private and execs isobench's hidden `__exec-init` (a fresh process, PID 1 of
//! its PID namespace), which mounts the root, pivots into it and then forks each command it
//! is sent over a socket (with the output files passed as descriptors) and answers with how
//! it ended and its `wait4` rusage. Killing PID 1 ends every process of the container.
#![allow(unsafe_code)]

mod init;

pub use init::init_main;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

use super::cgroup::{Cgroup, Layout};
use super::child::write_zero;
use super::rootfs::Rootfs;
use super::{cleanup, limits, namespaces, ContainerOptions, Resources, Upper, GO};
use crate::env::exec::{self as cmdexec, Ended, Spawn};
use crate::env::process;
use crate::env::{EnvError, EnvKind, Environment, InstanceSpec, Invocation, RawRun};
use crate::workload::command::{CommandRun, CommandSpec};

/// The hidden subcommand the container's first process execs.
pub const INIT_SUBCOMMAND: &str = "__exec-init";

/// Longest the container's set-up may take before it counts as hung.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest message on the socket.
pub(super) const MSG_MAX: usize = 1 << 16;

/// What the init sets up before it takes commands, passed as JSON on its command line.
/// An OCI runtime's container (whose runtime mounts the root and sets the hostname) runs
/// the same init with `root` and `hostname` left out, and talks to it with [`request`].
#[derive(Debug, Serialize, Deserialize)]
pub struct InitPlan {
    pub root: Option<RootMounts>,
    pub hostname: Option<String>,
    pub cpu: Option<usize>,
    /// The privileges the init drops to before it takes commands (docs/RELIABILITY.md,
    /// "Container hygiene"): the image's container's, from `--seccomp` and `--caps`.
    #[serde(default)]
    pub security: Option<SecurityPlan>,
}

/// `--seccomp` and `--caps` of the exec container; the init builds and applies the
/// [`Security`](super::security::Security) of them as its last set-up step.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct SecurityPlan {
    pub seccomp: crate::plan::Seccomp,
    pub caps: crate::plan::Caps,
}

/// The overlay root the init mounts and pivots into.
#[derive(Debug, Serialize, Deserialize)]
pub struct RootMounts {
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    /// The tmpfs mount point for a tmpfs upper layer.
    pub tmpfs: Option<PathBuf>,
}

/// The init's answer to one request.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Reply {
    Ready,
    Ended(Ended),
    Failed(String),
}

/// A running command container.
struct Instance {
    res: Resources,
    pid: i32,
    sock: OwnedFd,
}

impl Instance {
    /// Kill PID 1 (and so every process of the container), reap it, remove what it created.
    fn stop(mut self) -> Result<(), super::ContainerError> {
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            let mut st = 0;
            while libc::waitpid(self.pid, &mut st, 0) < 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
        }
        self.res.teardown()
    }
}

/// The `container` environment of `isobench exec`.
pub struct ExecContainer {
    label: String,
    opts: ContainerOptions,
    lower: PathBuf,
    deadline: Duration,
    init_binary: PathBuf,
    instance: Option<Instance>,
    cpu: Option<usize>,
    samples: u64,
}

impl ExecContainer {
    pub fn new(
        label: &str,
        opts: ContainerOptions,
        lower: PathBuf,
        deadline: Duration,
    ) -> ExecContainer {
        ExecContainer {
            label: label.into(),
            opts,
            lower,
            deadline,
            init_binary: "/proc/self/exe".into(),
            instance: None,
            cpu: None,
            samples: 0,
        }
    }

    /// The isobench binary the container's first process execs (`/proc/self/exe` unless a
    /// test, whose own binary is not isobench, says otherwise).
    pub fn with_init_binary(mut self, path: &Path) -> ExecContainer {
        self.init_binary = path.to_path_buf();
        self
    }

    /// The overlay's upper directory on the host (a disk upper only), while running.
    pub fn upper_dir(&self) -> Option<PathBuf> {
        let r = self.instance.as_ref()?.res.rootfs.as_ref()?;
        (r.upper_kind == Upper::Disk).then(|| r.upper.clone())
    }

    fn err(&self, op: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> EnvError {
        EnvError::setup(&self.label, op, e)
    }

    fn launch(&self, spec: &InstanceSpec) -> Result<Instance, EnvError> {
        let e = |op: &str, x: String| self.err(op, x);
        let pid = std::process::id();
        let layout =
            Layout::detect().map_err(|x| e("detecting the cgroup layout", x.to_string()))?;
        let name = cleanup::container_name(pid, super::NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let dir = spec.scratch.join(&name);
        let mut res = Resources {
            name: name.clone(),
            rootfs: None,
            cgroup: None,
            marker: None,
        };
        let mut marker = cleanup::Marker {
            name: name.clone(),
            owner_pid: pid as i32,
            owner_start: cleanup::start_time(pid as i32),
            dir: Some(dir.clone()),
            cgroups: layout.group_dirs(&name),
        };
        let state = Path::new(cleanup::STATE_DIR);
        res.marker = Some(
            marker
                .store(state)
                .map_err(|x| e("writing the state marker", x.to_string()))?,
        );
        let rootfs = Rootfs::prepare_over(&spec.scratch, &name, self.opts.upper, &self.lower)
            .map_err(|x| e("creating the container's directories", x.to_string()))?;
        let plan = InitPlan {
            root: Some(RootMounts {
                lower: rootfs.lower.clone(),
                upper: rootfs.upper.clone(),
                work: rootfs.work.clone(),
                merged: rootfs.merged.clone(),
                tmpfs: rootfs.tmpfs.clone(),
            }),
            hostname: Some(name.clone()),
            cpu: spec.cpu,
            security: Some(SecurityPlan {
                seccomp: self.opts.seccomp,
                caps: self.opts.caps,
            }),
        };
        res.rootfs = Some(rootfs);
        let cg = Cgroup::create(&layout, &name, &limits(&self.opts))
            .map_err(|x| e("creating the container's cgroup", x.to_string()))?;
        if cg.dirs() != marker.cgroups {
            marker.cgroups = cg.dirs();
            let _ = marker.store(state);
        }
        res.cgroup = Some(cg);

        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|x| e("creating the container's socket", x.to_string()))?;
        let (sync_r, sync_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|x| e("creating a pipe", x.to_string()))?;
        let cstr = |s: &[u8]| {
            CString::new(s).map_err(|_| e("preparing the init", "a NUL byte in a path".into()))
        };
        let exe = cstr(self.init_binary.as_os_str().as_bytes())?;
        let plan_json =
            serde_json::to_string(&plan).map_err(|x| e("preparing the init", x.to_string()))?;
        let argv_c = [
            cstr(b"isobench")?,
            cstr(INIT_SUBCOMMAND.as_bytes())?,
            cstr(theirs.as_raw_fd().to_string().as_bytes())?,
            cstr(plan_json.as_bytes())?,
        ];
        let argv: Vec<*const libc::c_char> = argv_c
            .iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let envp: [*const libc::c_char; 1] = [std::ptr::null()];
        let self_join = res.cgroup.as_ref().and_then(|c| c.self_join_files());
        let join = self_join
            .iter()
            .flatten()
            .map(|p| cstr(p.as_os_str().as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let child = ChildSide {
            sync_r: sync_r.as_raw_fd(),
            close: [sync_w.as_raw_fd(), ours.as_raw_fd()],
            sock: theirs.as_raw_fd(),
            join: &join,
            exe: &exe,
            argv: &argv,
            envp: &envp,
        };
        // SAFETY: the child runs only `child.run()`: raw system calls on data prepared
        // above, no allocation, no locks; it never returns.
        let cpid = match unsafe { namespaces::clone_into_namespaces(namespaces::CLONE_NAMESPACES) }
            .map_err(|x| e("clone into new namespaces (needs root)", x.to_string()))?
        {
            namespaces::Cloned::Child => child.run(),
            namespaces::Cloned::Parent { child } => child,
        };
        drop(theirs);
        drop(sync_r);
        let inst = Instance {
            res,
            pid: cpid,
            sock: ours,
        };
        if self_join.is_none() {
            if let Some(cg) = &inst.res.cgroup {
                if let Err(x) = cg.add_pid(cpid) {
                    let _ = inst.stop();
                    return Err(e(
                        "moving the container's first process into its cgroup",
                        x.to_string(),
                    ));
                }
            }
        }
        if process::raw_write(sync_w.as_raw_fd(), &[GO]) != 1 {
            let _ = inst.stop();
            return Err(e(
                "starting the container",
                "its first process died before it could start".into(),
            ));
        }
        drop(sync_w);
        match wait_ready(&inst.sock) {
            Ok(()) => Ok(inst),
            Err(why) => {
                let _ = inst.stop();
                Err(e("setting up the command container", why))
            }
        }
    }

    fn spawn(&mut self, s: &Spawn, out: File, err: File) -> Result<Ended, EnvError> {
        let label = self.label.clone();
        let inst = self.instance.as_ref().ok_or_else(|| {
            self.err(
                "running the command",
                "the environment was not started".to_string(),
            )
        })?;
        let reply = request(&inst.sock, s, out, err);
        match reply {
            Ok(ended) => Ok(ended),
            Err(why) => {
                if let Some(inst) = self.instance.take() {
                    let _ = inst.stop();
                }
                Err(EnvError::setup(
                    &label,
                    "running the command in the container",
                    why,
                ))
            }
        }
    }
}

/// Send one command to a running init over its socket, with the sample's output files, and
/// wait for how it ended (up to its deadline and a margin). An error says why there is no
/// answer (the caller then stops the container).
pub fn request(sock: &OwnedFd, s: &Spawn, out: File, err: File) -> Result<Ended, String> {
    let req = serde_json::to_vec(s).map_err(|x| format!("encoding the command: {x}"))?;
    let fds = [out.as_raw_fd(), err.as_raw_fd()];
    let sent = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&req)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    );
    drop((out, err));
    sent.map_err(|x| format!("sending the command to the container failed: {x}"))?;
    match receive(sock, Duration::from_millis(s.deadline_ms) + SETUP_TIMEOUT)? {
        Reply::Ended(ended) => Ok(ended),
        Reply::Failed(m) => Err(m),
        r => Err(format!("unexpected answer {r:?}")),
    }
}

/// Wait until a freshly started init has set up (or says why it could not).
pub fn wait_ready(sock: &OwnedFd) -> Result<(), String> {
    match receive(sock, SETUP_TIMEOUT)? {
        Reply::Ready => Ok(()),
        Reply::Failed(m) => Err(m),
        r => Err(format!("unexpected answer {r:?}")),
    }
}

/// Wait up to `timeout` for one reply from the init.
fn receive(sock: &OwnedFd, timeout: Duration) -> Result<Reply, String> {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let t0 = std::time::Instant::now();
    loop {
        let left = timeout
            .saturating_sub(t0.elapsed())
            .as_millis()
            .min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, left) };
        if r > 0 {
            break;
        }
        if r == 0 {
            return Err(format!("the container did not answer within {timeout:?} (hung; raise --deadline if the command is that long)"));
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(format!(
                "waiting for the container: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    let mut buf = vec![0u8; MSG_MAX];
    // SAFETY: reading into our own buffer.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n <= 0 {
        return Err(
            "the container's first process ended (killed, or its set-up failed without a word)"
                .into(),
        );
    }
    let bytes = &buf[..n as usize];
    if let Some(msg) = bytes.strip_prefix(b"E") {
        return Ok(Reply::Failed(String::from_utf8_lossy(msg).into_owned()));
    }
    serde_json::from_slice(bytes).map_err(|e| format!("a garbled answer from the container: {e}"))
}

/// The child between the clone and the exec: raw system calls only.
struct ChildSide<'a> {
    sync_r: RawFd,
    close: [RawFd; 2],
    sock: RawFd,
    join: &'a [CString],
    exe: &'a CString,
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
}

impl ChildSide<'_> {
    fn fail(&self, msg: &str) -> ! {
        // One message: the 'E' and the text go in one send.
        let mut buf = [0u8; 256];
        buf[0] = b'E';
        let n = msg.len().min(255);
        buf[1..=n].copy_from_slice(&msg.as_bytes()[..n]);
        // SAFETY: sending from a stack buffer; _exit ends only this child.
        unsafe {
            libc::send(self.sock, buf.as_ptr().cast(), n + 1, 0);
            libc::_exit(1)
        }
    }

    fn run(&self) -> ! {
        // SAFETY: prctl/close/fcntl only affect this process.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            for fd in self.close {
                libc::close(fd);
            }
            // The socket stays open across the exec.
            libc::fcntl(self.sock, libc::F_SETFD, 0);
        }
        if process::raw_read_byte(self.sync_r) != Some(GO) {
            // SAFETY: _exit ends only this child.
            unsafe { libc::_exit(1) }
        }
        for file in self.join {
            if !write_zero(file) {
                self.fail("moving the container's first process into its cgroup (writing 0 to tasks) failed");
            }
        }
        if let Err(m) = namespaces::unshare_cgroup().and_then(|()| super::rootfs::make_private()) {
            self.fail(m);
        }
        // SAFETY: execve with NUL-terminated strings and null-terminated arrays.
        unsafe { libc::execve(self.exe.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
        self.fail("exec of isobench's container init (/proc/self/exe __exec-init) failed")
    }
}

impl Environment for ExecContainer {
    fn label(&self) -> &str {
        &self.label
    }

    fn kind(&self) -> EnvKind {
        EnvKind::Container
    }

    fn start(&mut self, spec: &InstanceSpec) -> Result<(), EnvError> {
        self.stop()?;
        super::check_cpu_in_cpuset(&self.label, spec.cpu, self.opts.cpuset.as_deref())?;
        self.cpu = spec.cpu;
        self.samples = 0;
        self.instance = Some(self.launch(spec)?);
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
        let cg_before = self.cgroup().map(|c| {
            c.reset_peak();
            c.usage()
        });
        let tag = self.samples.to_string();
        let label = self.label.clone();
        let mut run = cmdexec::sample(cmd, &label, &tag, |o, e| self.spawn(&s, o, e))?;
        if let (Some(b), Some(a)) = (cg_before, self.cgroup().map(|c| c.usage())) {
            if let (Some(a), Some(b)) = (a.cpu_ns, b.cpu_ns) {
                run.counters
                    .insert("cgroup.cpu_usage_ns".into(), a.saturating_sub(b));
            }
            if let Some(p) = a.memory_peak_bytes {
                run.counters.insert("cgroup.memory_peak_bytes".into(), p);
            }
        }
        Ok(run)
    }

    fn facts(&self) -> BTreeMap<String, String> {
        let show = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        let mut f = BTreeMap::from([
            (
                "runs".into(),
                "the command, forked by the container's PID 1".into(),
            ),
            ("namespaces".into(), namespaces::NAMESPACE_NAMES.into()),
            (
                "rootfs".into(),
                format!(
                    "overlayfs; lower: {} read-only; upper+work: {}",
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
            ("cpuset".into(), show(self.opts.cpuset.clone())),
            ("cpu".into(), crate::env::cpu_fact(self.cpu)),
        ]);
        if let Ok(l) = Layout::detect() {
            f.insert("cgroup_version".into(), l.version().into());
        }
        if let Ok(s) = super::security::Security::new(self.opts.seccomp, self.opts.caps) {
            f.extend(s.facts());
        }
        if let Some(cg) = self.cgroup() {
            f.extend(cg.facts());
        }
        f
    }

    fn stop(&mut self) -> Result<(), EnvError> {
        if let Some(inst) = self.instance.take() {
            inst.stop()
                .map_err(|e| self.err("removing the command container", e.to_string()))?;
        }
        Ok(())
    }
}

impl ExecContainer {
    fn cgroup(&self) -> Option<&Cgroup> {
        self.instance.as_ref()?.res.cgroup.as_ref()
    }
}

impl Drop for ExecContainer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
