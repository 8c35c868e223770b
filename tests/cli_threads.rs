//! `--threads` through the CLI: bad counts are usage errors naming the fix, more threads than
//! CPUs is refused before anything is measured, a real two-thread run in native and vm
//! validates, reports the vm's overhead against native on two threads, and records the
//! threads and their CPUs in run.json, and runc and runsc run two threads in a cpuset of
//! both CPUs. Needs two CPUs, /dev/kvm, runc and runsc (CI has them).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

mod support;
use support::run_dir;

/// assert_cmd's command (this file uses its `timeout`), not `support::isobench`'s.
fn isobench() -> Command {
    Command::cargo_bin("isobench").expect("the isobench binary is built")
}

fn allowed_cpus() -> usize {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).expect("affinity");
    (0..nix::sched::CpuSet::count())
        .filter(|c| set.is_set(*c).unwrap_or(false))
        .count()
}

#[test]
fn bad_thread_counts_are_refused_clearly() {
    let out = tempfile::tempdir().unwrap();
    for (n, needle) in [
        ("0", "give a number of threads from 1 to 16"),
        ("17", "give a number of threads from 1 to 16"),
        ("two", "--threads 'two' is not a number"),
    ] {
        isobench()
            .args(["run", "--env", "native", "--threads", n, "--out"])
            .arg(out.path())
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle));
    }
    let more = (allowed_cpus() + 1).to_string();
    isobench()
        .args([
            "run",
            "--env",
            "native",
            "--rounds",
            "1",
            "--threads",
            &more,
            "--out",
        ])
        .arg(out.path())
        .assert()
        .failure()
        .stderr(
            predicate::str::contains(format!("--threads {more}"))
                .and(predicate::str::contains("or fewer")),
        );
    let runs = std::fs::read_dir(out.path())
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(runs, 0, "a refused run writes no run directory");
}

/// A strict `--threads 2` run of cpu.int and mem.stream in `envs` (one warm-up block, then
/// `rounds`), which must succeed: what it said, its run directory and its run.json.
fn two_thread_run(envs: &str, rounds: &str, out: &Path) -> (String, PathBuf, serde_json::Value) {
    let assert = isobench()
        .args([
            "run",
            "--env",
            envs,
            "--strict",
            "--workload",
            "cpu.int,mem.stream",
        ])
        .args([
            "--threads",
            "2",
            "--rounds",
            rounds,
            "--warmup",
            "1",
            "--out",
        ])
        .arg(out)
        .timeout(std::time::Duration::from_secs(600))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    let dir = run_dir(out);
    let run = serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap())
        .expect("run.json parses");
    (stderr, dir, run)
}

#[test]
fn two_threads_in_native_and_vm_validate_and_are_recorded() {
    assert!(allowed_cpus() >= 2, "this test needs two CPUs");
    let out = tempfile::tempdir().unwrap();
    let (stderr, dir, run) = two_thread_run("native,vm", "5", out.path());
    let o = &run["config"]["options"];
    assert_eq!(o["threads"], "2", "{o}");
    assert_eq!(o["threaded_workloads"], "cpu.int,cpu.fp,mem.stream", "{o}");
    assert_eq!(
        o["thread_cpus"].as_str().unwrap().split(',').count(),
        2,
        "{o}"
    );
    // The vm's overhead against native, both on two threads, is in the overhead table.
    let overhead = std::fs::read_to_string(dir.join("overhead.csv")).unwrap();
    for w in ["cpu.int", "mem.stream"] {
        assert!(
            overhead.lines().any(|l| l.contains(w) && l.contains("vm")),
            "{w}: no vm overhead row in overhead.csv:\n{overhead}"
        );
    }
    assert!(
        stderr.contains("threads: 2 for cpu.int, cpu.fp, mem.stream"),
        "the run names its threads:\n{stderr}"
    );
}

/// The OCI runtimes' runner runs the splitting workloads on two threads too: every thread's
/// checksum validates (a run fails otherwise), runc's container gets both thread CPUs as its
/// cpuset, and runsc's sandbox both as well.
#[test]
fn two_threads_under_runc_and_runsc_validate() {
    assert!(allowed_cpus() >= 2, "this test needs two CPUs");
    let out = tempfile::tempdir().unwrap();
    let (_, dir, run) = two_thread_run("native,runc,runsc", "3", out.path());
    let thread_cpus = run["config"]["options"]["thread_cpus"].as_str().unwrap();
    for rt in ["runc", "runsc"] {
        let env = run["environments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["label"] == rt)
            .unwrap_or_else(|| panic!("no {rt} environment: {run}"));
        let cpuset = env["facts"]["cpuset"].as_str().unwrap();
        assert_eq!(cpuset.split(',').count(), 2, "{rt}'s cpuset {cpuset}");
        for c in thread_cpus.split(',') {
            assert!(
                cpuset.split(',').any(|x| x == c),
                "{rt}: {cpuset} lacks {c}"
            );
        }
    }
    let overhead = std::fs::read_to_string(dir.join("overhead.csv")).unwrap();
    for rt in ["runc", "runsc"] {
        for w in ["cpu.int", "mem.stream"] {
            assert!(
                overhead.lines().any(|l| l.starts_with(w) && l.contains(rt)),
                "{w}: no {rt} overhead row:\n{overhead}"
            );
        }
    }
}

#[test]
fn a_thread_outside_the_container_cpuset_is_refused_naming_the_fix() {
    assert!(allowed_cpus() >= 2, "this test needs two CPUs");
    let out = tempfile::tempdir().unwrap();
    // Thread 0 runs on the last CPU (--cpu auto), thread 1 on the one before: a cpuset of
    // the last CPU alone leaves thread 1 out.
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).expect("affinity");
    let last = (0..nix::sched::CpuSet::count())
        .rfind(|c| set.is_set(*c).unwrap_or(false))
        .unwrap();
    isobench()
        .args([
            "run",
            "--env",
            "container",
            "--strict",
            "--workload",
            "cpu.int",
        ])
        .args([
            "--rounds",
            "1",
            "--threads",
            "2",
            "--cpuset",
            &last.to_string(),
        ])
        .arg("--out")
        .arg(out.path())
        .timeout(std::time::Duration::from_secs(300))
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("outside the container's cpuset")
                .and(predicate::str::contains("use fewer --threads")),
        );
}
