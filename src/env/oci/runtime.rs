//! Driving an OCI runtime binary (`runc`, `crun`, `runsc`, any other that follows the OCI
//! runtime command line): container ids isobench recognises, an isobench-owned state root
//! (`--root /run/isobench/<runtime>`), `run`/`kill`/`delete --force`/`list`, the runtime's
//! version and platform, and finding what killed runs left. Every command is bounded in
//! time. Reusable by anything that runs a program under a runtime (docs/RUNTIMES.md).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Every container id isobench creates starts with this, then the owning isobench PID:
/// `isobench-<pid>-<seq>`.
pub const ID_PREFIX: &str = "isobench-";

/// The parent of the runtimes' state roots: `/run/isobench/<runtime>`.
pub const STATE_PARENT: &str = "/run/isobench";

/// The parent cgroup of every runtime container isobench creates (`/isobench-oci/<id>`).
pub const CGROUP_PARENT: &str = "/isobench-oci";

/// How long a management command (`kill`, `delete`, `list`, `--version`) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("running `{command}`: {source} (is {binary} installed and executable? scripts/setup installs runc, crun and runsc)")]
    Spawn {
        command: String,
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` did not finish within {timeout:?} and was killed")]
    Timeout { command: String, timeout: Duration },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
}

/// One OCI runtime binary and the state root isobench gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct Runtime {
    /// The name in results (`runc`, `crun`, `runsc`, or `oci` for a binary given by path).
    pub name: String,
    pub binary: PathBuf,
    /// `--root`: where the runtime keeps its container state; isobench's own, so that
    /// `isobench clean` lists exactly the containers isobench made.
    pub root: PathBuf,
    /// Global flags after `--root` (runsc: `--network=none`).
    pub global: Vec<String>,
}

/// The output of a finished command.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// A new container id: `isobench-<this pid>-<sequence>-<runtime name>`.
pub fn new_id(runtime: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "{ID_PREFIX}{}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        runtime
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
    )
}

/// The isobench PID an id names, if it is one of isobench's.
pub fn owner_pid(id: &str) -> Option<i32> {
    id.strip_prefix(ID_PREFIX)?.split('-').next()?.parse().ok()
}

/// Whether the isobench process `pid` is alive (a container of a live run is not a
/// leftover). A PID reused by another program counts as dead.
pub fn owner_alive(pid: i32) -> bool {
    if pid == std::process::id() as i32 {
        return true;
    }
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim_end().starts_with("isobench"))
        .unwrap_or(false)
}

/// Wait for `child` until `timeout`; kill and reap it after that.
pub fn wait_bounded(
    mut child: Child,
    command: &str,
    timeout: Duration,
) -> Result<std::process::Output, RuntimeError> {
    let end = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RuntimeError::Timeout {
                    command: command.to_string(),
                    timeout,
                });
            }
        }
    }
    child
        .wait_with_output()
        .map_err(|source| RuntimeError::Spawn {
            command: command.to_string(),
            binary: String::new(),
            source,
        })
}

impl Runtime {
    /// A runtime binary under its name, with its state root `/run/isobench/<name>`.
    pub fn new(name: &str, binary: impl Into<PathBuf>) -> Runtime {
        let global = match name {
            // No network: the sandbox gets no interface but loopback.
            "runsc" => vec!["--network=none".to_string()],
            _ => Vec::new(),
        };
        Runtime {
            name: name.to_string(),
            binary: binary.into(),
            root: Path::new(STATE_PARENT).join(name),
            global,
        }
    }

    /// The runtime's command with its global flags, ready for a subcommand.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root).args(&self.global);
        c
    }

    fn describe(&self, args: &[&str]) -> String {
        format!("{} {}", self.binary.display(), args.join(" "))
    }

    /// Run a management subcommand to completion (bounded); its error carries stderr.
    pub fn call(&self, args: &[&str]) -> Result<Output, RuntimeError> {
        let command = self.describe(args);
        let child = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RuntimeError::Spawn {
                command: command.clone(),
                binary: self.binary.display().to_string(),
                source,
            })?;
        let out = wait_bounded(child, &command, COMMAND_TIMEOUT)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if !out.status.success() {
            return Err(RuntimeError::Failed {
                command,
                status: out.status.to_string(),
                stderr: last_message(&stderr),
            });
        }
        Ok(Output { stdout, stderr })
    }

    /// The first line of `<binary> --version` (`runc version 1.1.5+ds1`).
    pub fn version(&self) -> Result<String, RuntimeError> {
        let command = format!("{} --version", self.binary.display());
        let child = Command::new(&self.binary)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RuntimeError::Spawn {
                command: command.clone(),
                binary: self.binary.display().to_string(),
                source,
            })?;
        let out = wait_bounded(child, &command, COMMAND_TIMEOUT)?;
        if !out.status.success() {
            return Err(RuntimeError::Failed {
                command,
                status: out.status.to_string(),
                stderr: last_message(&String::from_utf8_lossy(&out.stderr)),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string())
    }

    /// runsc's platform (`--platform`): the one given in the global flags, else the default
    /// `runsc flags` names. `None` for other runtimes.
    pub fn platform(&self) -> Option<String> {
        if self.name != "runsc" {
            return None;
        }
        if let Some(p) = self
            .global
            .iter()
            .find_map(|g| g.strip_prefix("--platform="))
        {
            return Some(p.to_string());
        }
        // `runsc flags` prints to stderr.
        let out = self.call(&["flags"]).ok()?;
        Some(
            parse_runsc_platform(&format!("{}\n{}", out.stdout, out.stderr))
                .unwrap_or_else(|| "unknown".into()),
        )
    }

    /// Start `run --bundle <bundle> <id>` in the foreground with the given stdio, in its own
    /// process group (a terminal's Ctrl-C reaches isobench only, which then deletes the
    /// container). `pid_file` receives the container's first process's host PID.
    pub fn spawn_run(
        &self,
        bundle: &Path,
        id: &str,
        pid_file: &Path,
        stdin: Stdio,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<Child, RuntimeError> {
        use std::os::unix::process::CommandExt;
        std::fs::create_dir_all(&self.root).map_err(|source| RuntimeError::Spawn {
            command: format!("mkdir -p {}", self.root.display()),
            binary: self.binary.display().to_string(),
            source,
        })?;
        // Which binary owns this root, for `isobench clean` (an `oci:PATH` one is not on PATH).
        let _ = std::fs::write(
            Path::new(STATE_PARENT).join(format!("{}.binary", self.name)),
            self.binary.as_os_str().as_encoded_bytes(),
        );
        let mut c = self.command();
        c.arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        c.spawn().map_err(|source| RuntimeError::Spawn {
            command: format!(
                "{} run --bundle {} {id}",
                self.binary.display(),
                bundle.display()
            ),
            binary: self.binary.display().to_string(),
            source,
        })
    }

    /// `kill <id> KILL`: ends the container's processes (errors ignored: it may be gone).
    pub fn kill(&self, id: &str) {
        let _ = self.call(&["kill", id, "KILL"]);
    }

    /// `delete --force <id>`: kills what is left and removes the container's state and
    /// cgroup. A container the runtime does not know is not an error.
    pub fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        match self.call(&["delete", "--force", id]) {
            Ok(_) => Ok(()),
            Err(RuntimeError::Failed { stderr, .. })
                if stderr.contains("does not exist") || stderr.contains("not exist") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The ids of the containers in this runtime's state root (none when it does not exist).
    pub fn list(&self) -> Result<Vec<String>, RuntimeError> {
        if !self.root.exists() {
            return Ok(Vec::new());
        }
        // The table format is the one every runtime has (runsc has no `-q`).
        Ok(parse_list(&self.call(&["list"])?.stdout))
    }

    /// isobench's containers in this runtime whose isobench process is dead.
    pub fn leftovers(&self) -> Result<Vec<String>, RuntimeError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|id| owner_pid(id).is_some_and(|p| !owner_alive(p)))
            .collect())
    }
}

/// The most telling line of a runtime's stderr: runc and crun log JSON or `level=error
/// msg="…"` lines; the last non-empty line holds the reason.
pub fn last_message(stderr: &str) -> String {
    let line = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("(no message)");
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        if let Some(m) = v.get("msg").and_then(|m| m.as_str()) {
            return m.to_string();
        }
    }
    line.to_string()
}

/// The ids in `<runtime> list` table output: the first column after the `ID` header.
pub fn parse_list(table: &str) -> Vec<String> {
    table
        .lines()
        .filter(|l| !l.trim_start().starts_with("ID "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The default of `-platform` in `runsc flags` output (`(default "ptrace")`).
pub fn parse_runsc_platform(flags: &str) -> Option<String> {
    let mut lines = flags.lines();
    while let Some(l) = lines.next() {
        if l.trim_start().starts_with("-platform ") || l.trim() == "-platform string" {
            let help = lines.next()?;
            let start = help.find("(default \"")? + "(default \"".len();
            let end = help[start..].find('"')? + start;
            return Some(help[start..end].to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_owner() {
        let id = new_id("runsc");
        assert!(id.starts_with(ID_PREFIX));
        assert!(id.ends_with("-runsc"));
        assert_eq!(owner_pid(&id), Some(std::process::id() as i32));
        assert!(owner_alive(owner_pid(&id).unwrap()));
        assert_ne!(new_id("runc"), new_id("runc"));
        assert_eq!(owner_pid("mycontainer"), None);
        assert_eq!(owner_pid("isobench-x-1"), None);
        assert_eq!(new_id("/opt/my rt").rsplit('-').next(), Some("_opt_my_rt"));
    }

    #[test]
    fn stderr_reasons_are_found() {
        assert_eq!(
            last_message(
                "{\"level\":\"error\",\"msg\":\"cgroups in hybrid mode not supported\"}\n"
            ),
            "cgroups in hybrid mode not supported"
        );
        assert_eq!(
            last_message("a\nerror: no such thing\n\n"),
            "error: no such thing"
        );
        assert_eq!(last_message(""), "(no message)");
    }

    #[test]
    fn list_tables_give_ids() {
        let t = "ID                         PID   STATUS  BUNDLE  CREATED  OWNER\nisobench-9-0-runc  123   running /b      2026     root\n\n";
        assert_eq!(parse_list(t), ["isobench-9-0-runc"]);
        assert!(parse_list("ID          PID         STATUS\n").is_empty());
    }

    #[test]
    fn runsc_platform_default_is_read() {
        let out = "  -overlay\n    \tbla\n  -platform string\n    \tspecifies which platform to use: ptrace (default), kvm. (default \"ptrace\")\n";
        assert_eq!(parse_runsc_platform(out).as_deref(), Some("ptrace"));
        assert_eq!(parse_runsc_platform("nothing"), None);
    }

    #[test]
    fn state_roots_are_isobenchs_own() {
        let r = Runtime::new("runsc", "/usr/bin/runsc");
        assert_eq!(r.root, Path::new("/run/isobench/runsc"));
        let args: Vec<String> = r
            .command()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, ["--root", "/run/isobench/runsc", "--network=none"]);
    }
}
