//! The Slurm recipe (scripts/fleet/slurm) on a real one-node Slurm: munged, slurmctld and
//! slurmd started by this test from a temporary slurm.conf (loopback only), the array
//! script submitted with 3 tasks and the dependent merge, and the fleet report checked.
//! Everything the test starts is stopped by PID and removed afterwards, also on failure.
//! Needs root and Debian's slurm-wlm and munge (scripts/setup installs them).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The daemons of the test cluster, stopped in reverse order on drop.
struct Cluster {
    dir: tempfile::TempDir,
    daemons: Vec<(&'static str, Child)>,
}

impl Cluster {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn conf(&self) -> PathBuf {
        self.path("slurm.conf")
    }

    /// A Slurm client command of this cluster, bounded by `timeout`.
    fn client(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("30")
            .arg(program(args[0]))
            .args(&args[1..])
            .env("SLURM_CONF", self.conf())
            .output()
            .unwrap_or_else(|e| panic!("running {args:?}: {e}"))
    }

    fn start(&mut self, name: &'static str, args: &[String]) {
        let log = std::fs::File::create(self.path(&format!("{name}.out"))).unwrap();
        let child = Command::new(program(name))
            .args(args)
            .env("SLURM_CONF", self.conf())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {name}: {e} (install slurm-wlm and munge: scripts/setup does, as root)")
            });
        self.daemons.push((name, child));
    }

    /// Every log the cluster and its jobs wrote, for a failure message.
    fn logs(&self) -> String {
        let mut out = String::new();
        let mut paths: Vec<PathBuf> = walk(self.dir.path());
        paths.retain(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".out") || n.ends_with(".log")
        });
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(25).collect();
            out.push_str(&format!("--- {} (last lines)\n", p.display()));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Cancel what is left of the jobs and let their steps end, then stop the daemons.
        if self.daemons.iter().any(|(n, _)| *n == "slurmctld") {
            let _ = self.client(&["scancel", "--quiet", "--user=root"]);
            let until = Instant::now() + Duration::from_secs(20);
            while Instant::now() < until {
                let q = self.client(&["squeue", "-h"]);
                if !q.status.success() || q.stdout.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        for (name, child) in self.daemons.iter_mut().rev() {
            let pid = Pid::from_raw(child.id() as i32);
            let _ = kill(pid, Signal::SIGTERM);
            let until = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < until => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    _ => {
                        eprintln!("{name} did not stop on SIGTERM: killing PID {pid}");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
    }
}

/// `name` on PATH or in the sbin directories (the daemons live in /usr/sbin, which a
/// non-login PATH may lack).
fn program(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: install slurm-wlm and munge (scripts/setup does, as root)")
        });
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn short_hostname() -> String {
    let out = Command::new("hostname").arg("-s").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn slurm_conf(dir: &Path, host: &str, cpus: usize) -> String {
    let d = dir.display();
    format!(
        "ClusterName=isobenchtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={slurmd}
AuthType=auth/munge
AuthInfo=socket={d}/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
PlugStackConfig={d}/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/linear
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SlurmdParameters=config_overrides
NodeName=isobench0 NodeAddr=127.0.0.1 NodeHostname={host} CPUs={cpus} State=UNKNOWN
PartitionName=fleet Nodes=isobench0 Default=YES MaxTime=INFINITE State=UP
",
        ctld = free_port(),
        slurmd = free_port(),
    )
}

#[test]
fn slurm_array_and_dependent_merge_make_a_fleet_report() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the Slurm fleet test needs root (slurmd runs jobs as root here, and isobench's container needs it)"
    );
    let dir = tempfile::Builder::new()
        .prefix("isobench-slurm-")
        .tempdir()
        .unwrap();
    let mut cluster = Cluster {
        dir,
        daemons: Vec::new(),
    };
    let d = cluster.dir.path().to_path_buf();
    for sub in ["state", "spool", "fleet"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("plugstack.conf"), "").unwrap();
    let key: Vec<u8> = (0..1024).map(|_| rand::random::<u8>()).collect();
    std::fs::write(d.join("munge.key"), key).unwrap();
    std::fs::set_permissions(
        d.join("munge.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o400),
    )
    .unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::fs::write(cluster.conf(), slurm_conf(&d, &short_hostname(), cpus)).unwrap();

    let p = |name: &str| d.join(name).display().to_string();
    cluster.start(
        "munged",
        &[
            "-F".into(),
            format!("--key-file={}", p("munge.key")),
            format!("--socket={}", p("munge.sock")),
            format!("--pid-file={}", p("munged.pid")),
            format!("--seed-file={}", p("munged.seed")),
            format!("--log-file={}", p("munged.log")),
        ],
    );
    let until = Instant::now() + Duration::from_secs(10);
    while !d.join("munge.sock").exists() {
        assert!(
            Instant::now() < until,
            "munged did not create its socket in 10 s\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let conf = cluster.conf().display().to_string();
    cluster.start(
        "slurmctld",
        &["-D".into(), "-i".into(), "-f".into(), conf.clone()],
    );
    cluster.start(
        "slurmd",
        &[
            "-D".into(),
            "-N".into(),
            "isobench0".into(),
            "-f".into(),
            conf,
        ],
    );
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let s = cluster.client(&["sinfo", "-h", "-o", "%T"]);
        if String::from_utf8_lossy(&s.stdout).trim() == "idle" {
            break;
        }
        assert!(
            Instant::now() < until,
            "the one-node Slurm did not come up idle in 60 s (sinfo: {:?})\n{}",
            String::from_utf8_lossy(&s.stdout),
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Submit the recipe as a user would, with a tiny run.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_isobench"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let fleet = d.join("fleet");
    let submit = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fleet/slurm/submit.sh");
    let out = Command::new("timeout")
        .arg("60")
        .arg(&submit)
        .arg("3")
        .env("SLURM_CONF", cluster.conf())
        .env("PATH", &path)
        .env("ISOBENCH_FLEET_DIR", &fleet)
        .env(
            "ISOBENCH_RUN_ARGS",
            "--env native,container --workload cpu.int,sys.call --rounds 5 --warmup 1",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "submit.sh failed: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        cluster.logs()
    );

    // Wait for the merge (bounded), failing early when the array failed.
    let report = fleet.join("report/fleet.json");
    let until = Instant::now() + Duration::from_secs(600);
    while !report.is_file() || !cluster.client(&["squeue", "-h"]).stdout.is_empty() {
        let q = cluster.client(&["squeue", "-h", "-o", "%i %T %r"]);
        let q = String::from_utf8_lossy(&q.stdout).to_string();
        assert!(
            !q.contains("DependencyNeverSatisfied"),
            "an array task failed, so the merge can never run:\n{q}\n{}",
            cluster.logs()
        );
        assert!(
            Instant::now() < until,
            "the fleet report did not appear in 600 s (queue: {q})\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let hosts = json["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3, "{json:#}");
    let mut tasks: Vec<&str> = hosts
        .iter()
        .map(|h| h["labels"]["slurm.task"].as_str().unwrap())
        .collect();
    tasks.sort();
    assert_eq!(tasks, ["0", "1", "2"]);
    let pooled = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["workload"] == "cpu.int" && r["metric"] == "hash" && r["env"] == "container")
        .and_then(|r| r["pooled"].as_object().cloned())
        .unwrap_or_else(|| panic!("no pooled cpu.int/hash container row: {json:#}"));
    assert_eq!(pooled["hosts"], 3);
    let i2 = pooled["i2"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&i2), "{pooled:?}");
    for f in [
        "fleet.md",
        "fleet.html",
        "fleet.csv",
        "plots/forest-cpu.int-hash.svg",
    ] {
        assert!(fleet.join("report").join(f).is_file(), "{f} missing");
    }
    isobench::results::load_run(&fleet.join("report"))
        .expect("the fleet directory is a run compare can read");
    drop(cluster);
}
