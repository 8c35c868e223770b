//! The OCI runtime environments for real (CI is root with runc, crun and runsc installed by
//! scripts/setup): runc and runsc run every workload on the same image, a CPU quota holds,
//! crun on a hybrid-cgroup host is skipped with crun's own reason, and after a run, a
//! Ctrl-C and a SIGKILL plus `isobench clean` no container, bundle, cgroup or mount is left.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use isobench::results::{read_run, read_samples, EnvStatus, RUN_JSON, SAMPLES_CSV};

mod support;
use support::{exclusive, isobench, run_dir, shared, tagged_entries};

/// The container ids in a runtime's isobench state root (`<rt> --root ... list`).
fn listed(runtime: &str) -> Vec<String> {
    let root = format!("/run/isobench/{runtime}");
    if !Path::new(&root).exists() {
        return Vec::new();
    }
    let out = Command::new(runtime)
        .args(["--root", &root, "list"])
        .output()
        .unwrap_or_else(|e| panic!("{runtime} list: {e} (scripts/setup installs {runtime})"));
    assert!(out.status.success(), "{runtime} list failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Everything of the isobench process `pid` still on the host: runtime containers, bundles,
/// cgroups, mounts, state dirs.
fn leftovers_of(pid: u32) -> Vec<String> {
    let tag = format!("isobench-{pid}-");
    let mut found: Vec<String> = ["runc", "runsc"]
        .iter()
        .flat_map(|rt| {
            listed(rt)
                .into_iter()
                .map(move |id| format!("{rt} container {id}"))
        })
        .filter(|l| l.contains(&tag))
        .collect();
    found.extend(
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&tag))
            .map(|l| format!("mount {l}")),
    );
    let mut dirs = vec![
        PathBuf::from("/run/isobench/bundles"),
        PathBuf::from("/run/isobench/runc"),
        PathBuf::from("/run/isobench/runsc"),
        PathBuf::from("/sys/fs/cgroup/isobench-oci"),
    ];
    for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        dirs.push(e.path().join("isobench-oci"));
    }
    found.extend(tagged_entries(&dirs, &tag));
    found
}

#[test]
fn runc_and_runsc_run_every_workload_on_the_same_image() {
    let _run = shared();
    let out = tempfile::tempdir().unwrap();
    let assert = isobench()
        .args([
            "run",
            "--env",
            "native,runc,runsc",
            "--strict",
            "--quick",
            "--rounds",
            "1",
            "--warmup",
            "0",
            "--seed",
            "11",
        ])
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let dir = run_dir(out.path());
    let run = read_run(&dir.join(RUN_JSON)).unwrap();
    assert_eq!(run.outcome.name(), "complete");
    let samples = read_samples(&dir.join(SAMPLES_CSV)).unwrap();
    let workloads: std::collections::BTreeSet<&str> = samples
        .iter()
        .filter(|s| s.env == "native")
        .map(|s| s.workload.as_str())
        .collect();
    assert!(workloads.len() >= 8, "{workloads:?}");
    for rt in ["runc", "runsc"] {
        let rec = run.environments.iter().find(|e| e.label == rt).unwrap();
        assert_eq!(rec.status, EnvStatus::Ran, "{rt}: {:?}", rec.reason);
        assert_eq!(rec.image_sha256, run.image.sha256, "{rt}");
        assert_eq!(
            rec.facts["image_verified"], "read back from the running instance",
            "{rt}"
        );
        assert!(
            rec.facts["runtime.version"].starts_with(&format!("{rt} version")),
            "{:?}",
            rec.facts
        );
        // Every workload ran in the runtime (a wrong checksum fails the run itself).
        for w in &workloads {
            assert!(
                samples.iter().any(|s| s.env == rt && s.workload == *w),
                "no {w} samples from {rt}"
            );
        }
    }
    let runsc = run
        .environments
        .iter()
        .find(|e| e.label == "runsc")
        .unwrap();
    assert!(
        ["ptrace", "systrap"].contains(&runsc.facts["runtime.platform"].as_str()),
        "{:?}",
        runsc.facts
    );
    // The ladder: the environments in order of isolation strength in the terminal table.
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let header = stdout
        .lines()
        .find(|l| l.starts_with("workload/metric"))
        .unwrap();
    let (r, s) = (header.find("runc").unwrap(), header.find("runsc").unwrap());
    assert!(r < s, "{header}");
    // Nothing of the run is left: its containers are named after its PID.
    let pid = run
        .environments
        .iter()
        .find_map(|e| e.facts.get("instance.container_id"))
        .and_then(|id| id.split('-').nth(1))
        .expect("the runtime instances record their container ids");
    let left = leftovers_of(pid.parse().unwrap());
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_tenth_of_a_cpu_holds_runcs_share_near_ten_percent() {
    let _alone = exclusive();
    let out = tempfile::tempdir().unwrap();
    isobench()
        .args([
            "run",
            "--env",
            "native,runc",
            "--strict",
            "--workload",
            "cpu.int",
            "--cpus",
            "0.1",
            "--rounds",
            "3",
            "--warmup",
            "1",
            "--seed",
            "5",
        ])
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let dir = run_dir(out.path());
    let samples = read_samples(&dir.join(SAMPLES_CSV)).unwrap();
    let usage: Vec<_> = samples
        .iter()
        .filter(|s| s.env == "runc" && s.metric == "counter.cgroup.cpu_usage_ns")
        .collect();
    assert!(
        !usage.is_empty(),
        "runc samples carry the cgroup's CPU time"
    );
    let (cpu_ns, wall_ns) = usage
        .iter()
        .fold((0.0, 0.0), |(c, w), s| (c + s.value, w + s.wall_ns as f64));
    let share = cpu_ns / wall_ns;
    assert!(
        (0.04..0.2).contains(&share),
        "runc's CPU share under --cpus 0.1 is {share:.3}"
    );
    let run = read_run(&dir.join(RUN_JSON)).unwrap();
    let runc = run.environments.iter().find(|e| e.label == "runc").unwrap();
    assert_eq!(runc.facts["cpus"], "0.1");
}

/// A long isobench run, interrupted (SIGINT, then SIGKILL after 30 s) when dropped still
/// running, so that a failing assertion never leaves a 100 000-block run behind.
struct LongRun(Child);

impl LongRun {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for LongRun {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(None)) {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let t0 = Instant::now();
        while matches!(self.0.try_wait(), Ok(None)) && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A long run of native, runc and runsc, returned once runsc has produced samples.
fn long_runtime_run(out: &Path) -> LongRun {
    let mut child = isobench()
        .args([
            "run",
            "--env",
            "native,runc,runsc",
            "--strict",
            "--workload",
            "cpu.int,io.seq",
            "--rounds",
            "100000",
        ])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !has_runsc_samples(out) {
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no runsc samples within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    LongRun(child)
}

fn has_runsc_samples(out: &Path) -> bool {
    std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read_to_string(e.path().join(SAMPLES_CSV)).is_ok_and(|s| s.contains(",runsc,"))
        })
}

/// `/proc/<pid>/status` of the runner in each of run `pid`'s runc containers (the runtime
/// writes the container process's host PID to `<bundle>/pid`).
fn runc_runner_status(pid: u32) -> Vec<String> {
    let tag = format!("isobench-{pid}-");
    std::fs::read_dir("/run/isobench/bundles")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&tag) && n.ends_with("-runc")
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("pid")).ok())
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{}/status", p.trim())).ok())
        .collect()
}

/// As under Docker: runc installs Docker's profile from config.json (libseccomp) and the
/// runner holds Docker's 14 capabilities, the same as the built-in container's.
#[test]
fn runcs_runner_runs_under_dockers_seccomp_profile_and_capabilities() {
    let _run = shared();
    let out = tempfile::tempdir().unwrap();
    let run = long_runtime_run(out.path());
    let status = runc_runner_status(run.pid());
    assert!(!status.is_empty(), "no live runc runner of the run found");
    for s in &status {
        let field = |k: &str| {
            s.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            field("Seccomp:"),
            "2",
            "the runner is not in filter mode:\n{s}"
        );
        assert!(
            field("Seccomp_filters:").parse::<u32>().unwrap_or(0) >= 1,
            "no seccomp filter installed:\n{s}"
        );
        assert_eq!(field("CapEff:"), "00000000a80425fb", "{s}");
        assert_eq!(field("NoNewPrivs:"), "1", "{s}");
    }
    // Stop the run (SIGINT): its run.json keeps the facts, which say who installed it.
    drop(run);
    let run = read_run(&run_dir(out.path()).join(RUN_JSON)).unwrap();
    let runc = run.environments.iter().find(|e| e.label == "runc").unwrap();
    assert!(
        runc.facts["seccomp"].contains("installed by runc"),
        "{:?}",
        runc.facts["seccomp"]
    );
    let runsc = run
        .environments
        .iter()
        .find(|e| e.label == "runsc")
        .unwrap();
    assert!(
        runsc.facts["seccomp"].contains("not applied"),
        "{:?}",
        runsc.facts["seccomp"]
    );
}

#[test]
fn ctrl_c_during_a_runtime_run_leaves_nothing_behind() {
    let _run = shared();
    let out = tempfile::tempdir().unwrap();
    let mut run = long_runtime_run(out.path());
    let pid = run.pid();
    assert!(
        !leftovers_of(pid).is_empty(),
        "a running run has its containers listed (the check below can see them)"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(run.0.wait().unwrap().code(), Some(130));
    let left = leftovers_of(pid);
    assert!(left.is_empty(), "left behind after Ctrl-C: {left:?}");
}

#[test]
fn clean_removes_what_a_sigkilled_runtime_run_left_behind() {
    let _run = shared();
    let out = tempfile::tempdir().unwrap();
    let mut run = long_runtime_run(out.path());
    let pid = run.pid();
    run.0.kill().unwrap(); // SIGKILL: isobench itself cleans nothing up.
    run.0.wait().unwrap();
    // The runners see their stdin close and exit; what isobench would have removed stays.
    std::thread::sleep(Duration::from_millis(500));
    let before = leftovers_of(pid);
    assert!(!before.is_empty(), "a SIGKILLed run leaves its bundles");
    let dry = isobench()
        .args(["clean", "--dry-run", "--out"])
        .arg(out.path())
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&dry.get_output().stdout).contains("OCI bundle"));
    isobench()
        .args(["clean", "--out"])
        .arg(out.path())
        .assert()
        .success();
    let left = leftovers_of(pid);
    assert!(left.is_empty(), "left behind after clean: {left:?}");
}

/// crun refuses hybrid cgroups ("cgroups in hybrid mode not supported"): there it is skipped
/// with that reason (and `--strict` fails with it); where it works it runs like runc.
#[test]
fn crun_is_skipped_with_its_own_reason_or_runs() {
    let _run = shared();
    let out = tempfile::tempdir().unwrap();
    isobench()
        .args([
            "run",
            "--env",
            "native,crun",
            "--workload",
            "sys.call,io.rand",
            "--rounds",
            "1",
            "--warmup",
            "0",
        ])
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let dir = run_dir(out.path());
    let run = read_run(&dir.join(RUN_JSON)).unwrap();
    let crun = run.environments.iter().find(|e| e.label == "crun").unwrap();
    let hybrid = Path::new("/sys/fs/cgroup/unified").is_dir();
    if hybrid {
        assert_eq!(crun.status, EnvStatus::Skipped);
        let reason = crun.reason.as_deref().unwrap();
        assert!(
            reason.contains("crun") && reason.contains("hybrid"),
            "crun's own reason: {reason}"
        );
        let strict = isobench()
            .args([
                "run",
                "--env",
                "native,crun",
                "--strict",
                "--workload",
                "sys.call",
            ])
            .arg("--out")
            .arg(out.path())
            .assert()
            .failure();
        let err = String::from_utf8_lossy(&strict.get_output().stderr).into_owned();
        assert!(err.contains("hybrid"), "{err}");
    } else {
        assert_eq!(crun.status, EnvStatus::Ran, "{:?}", crun.reason);
        assert_eq!(crun.image_sha256, run.image.sha256);
        let samples = read_samples(&dir.join(SAMPLES_CSV)).unwrap();
        assert!(samples
            .iter()
            .any(|s| s.env == "crun" && s.workload == "io.rand"));
    }
    let left = leftovers_of(std::process::id());
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn oci_path_runs_a_runtime_by_its_binary_and_bad_ones_are_refused() {
    let _run = shared();
    let out = tempfile::tempdir().unwrap();
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("runc is installed (scripts/setup)");
    isobench()
        .args([
            "run",
            "--strict",
            "--workload",
            "sys.call",
            "--rounds",
            "1",
            "--warmup",
            "0",
        ])
        .arg("--env")
        .arg(format!("native,oci:{runc}"))
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let run = read_run(&run_dir(out.path()).join(RUN_JSON)).unwrap();
    let oci = run.environments.iter().find(|e| e.label == "oci").unwrap();
    assert_eq!(oci.status, EnvStatus::Ran, "{:?}", oci.reason);
    assert_eq!(oci.facts["runtime.path"], runc);
    let bad = isobench()
        .args([
            "run",
            "--strict",
            "--env",
            "native,oci:/nonexistent/rt",
            "--out",
        ])
        .arg(out.path())
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&bad.get_output().stderr).into_owned();
    assert!(
        err.contains("/nonexistent/rt") && err.contains("oci:PATH"),
        "{err}"
    );
    let bare = isobench()
        .args(["run", "--env", "oci", "--out"])
        .arg(out.path())
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&bare.get_output().stderr).contains("oci:PATH"));
}
