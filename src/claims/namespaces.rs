//! Claim 4, namespaces isolate: in a running built-in container, a tmpfs is mounted and a
//! file created inside its mount namespace (by a helper that `setns`es into it); the host
//! looks for the file everywhere the container's `/tmp` could show, then a second helper
//! joins the namespace as `nsenter -t PID -m` does and reads it. The UTS namespace's
//! hostname, the PID namespace's PID 1 and the namespace identities are read the same way.
//! docs/CLAIMS.md explains the experiment.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use super::helper;
use super::{Finding, Verdict};
use crate::env::container::{Container, ContainerOptions};
use crate::env::{Environment, InstanceSpec};

/// The file created inside the container's private tmpfs.
pub const FILE_INSIDE: &str = "/tmp/isobench-claim4";
/// Its contents.
pub const TEXT: &[u8] = b"created inside the container's mount namespace\n";
/// A file created on the container's overlay root, for contrast (it lands in upper).
pub const FILE_ON_ROOT: &str = "/scratch/isobench-claim4-root";

const HELPER_DEADLINE: Duration = Duration::from_secs(20);
const NAMESPACES: [&str; 6] = ["mnt", "uts", "pid", "ipc", "net", "cgroup"];

/// What the experiment observed.
#[derive(Clone, Debug, Serialize)]
pub struct NamespaceEvidence {
    /// The container's first process as the host sees it.
    pub pid_on_host: i32,
    /// Its PID inside its PID namespace (the last `NSpid` field of /proc/PID/status).
    pub pid_inside: Option<i32>,
    /// The host paths searched for the file.
    pub host_paths_checked: Vec<PathBuf>,
    /// Whether any of them held it.
    pub visible_on_host: bool,
    /// Whether a helper that joined the mount namespace found it.
    pub visible_after_setns: bool,
    /// What that helper read.
    pub content_after_setns: String,
    /// The file written on the overlay root, where the host finds it (the upper layer).
    pub root_file_on_host: Option<PathBuf>,
    pub host_hostname: String,
    /// The hostname a helper in the container's UTS namespace read.
    pub hostname_after_setns: String,
    /// The container's name (its hostname as set at start).
    pub container_name: String,
    /// Namespace identity (`mnt:[4026…]`) of the host and the container, per namespace.
    pub namespaces: BTreeMap<String, (String, String)>,
}

/// Start a built-in container, run the experiment against it, stop it.
pub fn observe(scratch: &Path) -> Result<NamespaceEvidence> {
    Container::probe()
        .map_err(|reason| anyhow::anyhow!("claim 4 needs the built-in container: {reason}"))?;
    let mut c = Container::new("container", ContainerOptions::default());
    let spec = InstanceSpec {
        work_size: 2 << 20,
        disk_size: 0,
        scratch: scratch.to_path_buf(),
        deadline: Duration::from_secs(30),
        thp: false,
        cpu: None,
        threads: 1,
        thread_cpus: Vec::new(),
    };
    c.start(&spec)
        .context("starting a built-in container for claim 4")?;
    let observed = observe_running(&c);
    let stopped = c.stop().context("stopping claim 4's container");
    let e = observed?;
    stopped?;
    Ok(e)
}

fn ns_link(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("unreadable ({e})"))
}

fn open_ns(pid: i32, ns: &str) -> Result<OwnedFd> {
    let path = format!("/proc/{pid}/ns/{ns}");
    let f = std::fs::File::open(&path)
        .with_context(|| format!("opening {path} (needs root and the container running)"))?;
    Ok(OwnedFd::from(f))
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).context("a path with a NUL byte")
}

fn observe_running(c: &Container) -> Result<NamespaceEvidence> {
    let pid = c
        .runner_pid()
        .context("claim 4's container has no process")?;
    let (rootfs, name) = c
        .instance_dirs()
        .context("claim 4's container has no root filesystem")?;
    let (lower, upper, merged) = (
        rootfs.lower.clone(),
        rootfs.upper.clone(),
        rootfs.merged.clone(),
    );
    let container_name = name.to_string();
    let mnt = open_ns(pid, "mnt")?;
    let uts = open_ns(pid, "uts")?;

    // 1. Inside: mount a private tmpfs on /tmp, create the file there, and one on the root.
    let (tmp, file, root_file) = (
        cstring("/tmp")?,
        cstring(FILE_INSIDE)?,
        cstring(FILE_ON_ROOT)?,
    );
    let mnt_fd = mnt.as_raw_fd();
    let made = helper::run("mount-and-create (claim 4)", HELPER_DEADLINE, |_out| {
        if !helper::setns(mnt_fd, libc::CLONE_NEWNS) {
            return 10;
        }
        // SAFETY: mount(2) with NUL-terminated strings.
        let ok = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                tmp.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"size=1m".as_ptr().cast(),
            )
        } == 0;
        if !ok {
            return 11;
        }
        if !helper::write_file(&file, TEXT) {
            return 12;
        }
        if !helper::write_file(&root_file, TEXT) {
            return 13;
        }
        0
    })?;
    anyhow::ensure!(
        made.exit_code == 0,
        "the helper inside claim 4's container failed at step {} (10 setns into its mount namespace, 11 mount a tmpfs on /tmp, 12/13 create the files)",
        made.exit_code
    );

    // 2. Outside: everywhere the container's /tmp could show on the host.
    let rel = FILE_INSIDE.trim_start_matches('/');
    let host_paths_checked = vec![
        PathBuf::from(FILE_INSIDE),
        lower.join(rel),
        upper.join(rel),
        merged.join(rel),
    ];
    let visible_on_host = host_paths_checked.iter().any(|p| p.exists());
    let root_on_host = upper.join(FILE_ON_ROOT.trim_start_matches('/'));
    let root_file_on_host = root_on_host.exists().then_some(root_on_host);

    // 3. Join the namespaces, as nsenter does, and look again.
    let uts_fd = uts.as_raw_fd();
    let file2 = cstring(FILE_INSIDE)?;
    let seen = helper::run("nsenter-like reader (claim 4)", HELPER_DEADLINE, |out| {
        if !helper::setns(mnt_fd, libc::CLONE_NEWNS) {
            return 10;
        }
        let mut buf = [0u8; 256];
        match helper::read_file(&file2, &mut buf) {
            Some(text) => {
                helper::put(out, b"1");
                helper::put(out, text);
            }
            None => helper::put(out, b"0\n"),
        }
        helper::put(out, b"\x00");
        if !helper::setns(uts_fd, libc::CLONE_NEWUTS) {
            return 11;
        }
        helper::put_hostname(out);
        0
    })?;
    anyhow::ensure!(
        seen.exit_code == 0,
        "the nsenter-like helper of claim 4 failed at step {} (10 setns mnt, 11 setns uts)",
        seen.exit_code
    );
    let text = String::from_utf8_lossy(&seen.output).into_owned();
    let (file_part, hostname_after_setns) = text.split_once('\0').unwrap_or((&text, ""));
    let visible_after_setns = file_part.starts_with('1');
    let content_after_setns = file_part.get(1..).unwrap_or("").to_string();

    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let pid_inside = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_whitespace().last())
        .and_then(|v| v.parse().ok());
    let me = std::process::id().to_string();
    let namespaces = NAMESPACES
        .iter()
        .map(|ns| {
            (
                ns.to_string(),
                (ns_link(&me, ns), ns_link(&pid.to_string(), ns)),
            )
        })
        .collect();
    Ok(NamespaceEvidence {
        pid_on_host: pid,
        pid_inside,
        host_paths_checked,
        visible_on_host,
        visible_after_setns,
        content_after_setns,
        root_file_on_host,
        host_hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        hostname_after_setns: hostname_after_setns.to_string(),
        container_name,
        namespaces,
    })
}

/// The findings of claim 4 from its evidence.
pub fn findings(e: &NamespaceEvidence) -> Vec<Finding> {
    let mut f = Vec::new();
    let mount_ok =
        !e.visible_on_host && e.visible_after_setns && e.content_after_setns.as_bytes() == TEXT;
    f.push(Finding {
        subject: "mount namespace".into(),
        evidence: format!(
            "{FILE_INSIDE} on a tmpfs mounted inside: on the host {} ({} paths checked: {}); after setns into the container's mount namespace {}{}",
            if e.visible_on_host { "VISIBLE" } else { "absent" },
            e.host_paths_checked.len(),
            e.host_paths_checked
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if e.visible_after_setns { "found, contents " } else { "NOT found" },
            if e.visible_after_setns { format!("{:?}", e.content_after_setns.trim_end()) } else { String::new() }
        ),
        verdict: if mount_ok { Verdict::Supported } else { Verdict::Refuted },
    });
    f.push(Finding {
        subject: "scope: the root's writable layer is a host directory".into(),
        evidence: match &e.root_file_on_host {
            Some(p) => format!(
                "a file written to the container's root ({FILE_ON_ROOT}) is on the host at {}: the writable layer is a host directory; only mounts made inside are private",
                p.display()
            ),
            None => format!("a file written to the container's root ({FILE_ON_ROOT}) was not found in the upper directory on the host"),
        },
        verdict: Verdict::Supported,
    });
    let uts_ok =
        e.hostname_after_setns == e.container_name && e.hostname_after_setns != e.host_hostname;
    f.push(Finding {
        subject: "UTS namespace (hostname)".into(),
        evidence: format!(
            "host: {:?}; after setns into the container's UTS namespace: {:?} (the container's name {:?})",
            e.host_hostname, e.hostname_after_setns, e.container_name
        ),
        verdict: if uts_ok { Verdict::Supported } else { Verdict::Refuted },
    });
    f.push(Finding {
        subject: "PID namespace".into(),
        evidence: format!(
            "the container's first process is PID {} on the host and PID {} inside (NSpid)",
            e.pid_on_host,
            e.pid_inside.map_or("unknown".into(), |p| p.to_string())
        ),
        verdict: if e.pid_inside == Some(1) && e.pid_on_host != 1 {
            Verdict::Supported
        } else {
            Verdict::Refuted
        },
    });
    let differing: Vec<&str> = e
        .namespaces
        .iter()
        .filter(|(_, (h, c))| h != c)
        .map(|(n, _)| n.as_str())
        .collect();
    let same: Vec<&str> = e
        .namespaces
        .iter()
        .filter(|(_, (h, c))| h == c)
        .map(|(n, _)| n.as_str())
        .collect();
    f.push(Finding {
        subject: "IPC, network, cgroup namespaces".into(),
        evidence: format!(
            "namespace identities differ from the host's for: {}{}",
            differing.join(" "),
            if same.is_empty() {
                String::new()
            } else {
                format!("; SHARED with the host: {}", same.join(" "))
            }
        ),
        verdict: if same.is_empty() {
            Verdict::Supported
        } else {
            Verdict::Refuted
        },
    });
    f
}
