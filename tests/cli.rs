//! Black-box tests of the `isobench` binary: the files a run writes, bad input, and
//! interruption.

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use isobench::results::{read_run, read_samples, RUN_JSON, SAMPLES_CSV, SUMMARY_CSV};
use predicates::prelude::*;

mod support;
use support::{exclusive, isobench, run_dir, shared};

#[test]
fn native_quick_run_writes_complete_results() {
    let _run = shared();
    let out = tempfile::tempdir().unwrap();
    let families = "cpu.int,mem.stream,io.seq,sys.call,start";
    isobench()
        .args([
            "run",
            "--env",
            "native",
            "--quick",
            "--rounds",
            "2",
            "--warmup",
            "1",
            "--seed",
            "42",
            "--workload",
            families,
        ])
        .arg("--out")
        .arg(out.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("results:"));
    let dir = run_dir(out.path());
    let run = read_run(&dir.join(RUN_JSON)).unwrap();
    assert_eq!(run.outcome.name(), "complete");
    assert_eq!(run.config.seed, 42);
    assert_eq!(run.image.sha256, isobench::image::sha256_hex());
    assert!(
        run.host.tsc_hz > 1e8,
        "TSC frequency recorded: {}",
        run.host.tsc_hz
    );
    let labels: Vec<&str> = run
        .environments
        .iter()
        .filter(|e| e.status.name() == "ran")
        .map(|e| e.label.as_str())
        .collect();
    assert_eq!(labels, ["native", "native-b"]);
    for e in run.environments.iter().filter(|e| e.status.name() == "ran") {
        assert_eq!(
            e.image_sha256, run.image.sha256,
            "every environment ran the same image"
        );
    }
    let samples = read_samples(&dir.join(SAMPLES_CSV)).unwrap();
    for env in ["native", "native-b"] {
        for w in families.split(',') {
            let n = samples
                .iter()
                .filter(|s| s.env == env && s.workload == w && !s.is_counter())
                .count();
            assert!(n >= 2, "{env}/{w}: {n} samples");
        }
    }
    assert!(
        samples.iter().all(|s| s.round < 2),
        "warm-up rounds are not recorded"
    );
    assert!(samples
        .iter()
        .filter(|s| !s.is_counter())
        .all(|s| s.value.is_finite() && s.value > 0.0));
    let summary = std::fs::read_to_string(dir.join(SUMMARY_CSV)).unwrap();
    assert!(
        summary.starts_with("env,workload,metric,unit,better,n,median,mad,min,max,ratio_to_native"),
        "{summary}"
    );
    assert!(!run.summaries.is_empty());
    // The scratch directory of the run is gone.
    let scratch = out.path().join(".scratch").join(dir.file_name().unwrap());
    assert!(
        !scratch.exists(),
        "scratch {} left behind",
        scratch.display()
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let out = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["run", "--env", "qemu"], "unknown environment 'qemu'"),
        (
            vec!["run", "--workload", "nope.*"],
            "no workload matches 'nope.*'",
        ),
        (vec!["run", "--rounds", "0"], "--rounds must be at least 1"),
        (
            vec!["run", "--memory", "lots"],
            "--memory 'lots' is not a size",
        ),
        (vec!["run", "--cpus=-1"], "--cpus must be a positive number"),
        (vec!["run", "--quick", "--full"], "cannot be used with"),
    ] {
        isobench()
            .args(&args)
            .arg("--out")
            .arg(out.path())
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle));
    }
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "a rejected run writes nothing"
    );
}

#[test]
fn help_teaches() {
    isobench()
        .args(["run", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--workload").and(predicate::str::contains("native-b")));
    isobench()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes"));
}

#[test]
fn info_names_image_and_host() {
    isobench().arg("info").assert().success().stdout(
        predicate::str::contains(isobench::image::sha256_hex())
            .and(predicate::str::contains("kvm"))
            .and(
                predicate::str::contains(
                    "mem.stream --full copy, one thread: cached stores, as glibc's memcpy",
                )
                .or(predicate::str::contains(
                    "mem.stream --full copy, one thread: non-temporal stores, as glibc's memcpy",
                )),
            ),
    );
}

/// `isobench info | head -1`: a reader that is gone is no panic, but the quiet exit status
/// a shell shows for SIGPIPE.
#[test]
fn a_closed_stdout_ends_quietly() {
    let _g = shared();
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    let out = isobench()
        .arg("info")
        .stdout(std::process::Stdio::from(write))
        .output()
        .expect("isobench info runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn ctrl_c_keeps_what_was_measured() {
    let _run = shared();
    let out = tempfile::tempdir().unwrap();
    let mut child = isobench()
        .args([
            "run",
            "--env",
            "native",
            "--workload",
            "cpu.int",
            "--rounds",
            "100000",
            "--warmup",
            "0",
        ])
        .arg("--out")
        .arg(out.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let samples = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no samples written within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
        let Some(dir) = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        else {
            continue;
        };
        let path = dir.join(SAMPLES_CSV);
        if read_samples(&path).map(|s| s.len() >= 4).unwrap_or(false) {
            break path;
        }
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted runs exit 130");
    let dir = samples.parent().unwrap();
    let run = read_run(&dir.join(RUN_JSON)).unwrap();
    assert_eq!(run.outcome.name(), "interrupted");
    assert!(read_samples(&samples).unwrap().len() >= 4, "samples kept");
    assert!(dir.join(SUMMARY_CSV).exists());
}

/// Everything isobench could leave on the host: mounts and cgroups with its name.
fn host_leftovers() -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains("isobench-"))
        .map(String::from)
        .collect();
    fn walk(dir: &Path, depth: u32, found: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                if p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("isobench-")
                {
                    found.push(p.display().to_string());
                }
                if depth > 0 {
                    walk(&p, depth - 1, found);
                }
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), 6, &mut found);
    found
}

#[test]
fn all_three_environments_run_the_same_image_with_verified_checksums() {
    let _run = shared();
    let out = tempfile::tempdir().unwrap();
    let child = isobench()
        .args([
            "run",
            "--env",
            "native,container,vm",
            "--strict",
            "--rounds",
            "2",
            "--warmup",
            "0",
        ])
        .args([
            "--workload",
            "cpu.int,mem.touch,io.rand,sys.call,start",
            "--seed",
            "3",
        ])
        .arg("--out")
        .arg(out.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Other tests run isobench at the same time: only this run's own objects count.
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = run_dir(out.path());
    let run = read_run(&dir.join(RUN_JSON)).unwrap();
    let ran: Vec<&str> = run
        .environments
        .iter()
        .filter(|e| e.status.name() == "ran")
        .map(|e| e.label.as_str())
        .collect();
    assert_eq!(ran, ["native", "native-b", "container", "vm"]);
    assert!(run
        .environments
        .iter()
        .all(|e| e.image_sha256 == run.image.sha256));
    for e in &run.environments {
        assert_eq!(
            e.facts.get("image_verified").map(String::as_str),
            Some("read back from the running instance"),
            "{}: the image hash is of the bytes in its memory",
            e.label
        );
    }
    let samples = read_samples(&dir.join(SAMPLES_CSV)).unwrap();
    for env in ["container", "vm"] {
        for w in ["cpu.int", "mem.touch", "io.rand", "sys.call", "start"] {
            assert!(
                samples
                    .iter()
                    .any(|s| s.env == env && s.workload == w && !s.is_counter()),
                "{env}/{w} has samples"
            );
        }
    }
    // Environment accounting is stored with the samples.
    assert!(samples
        .iter()
        .any(|s| s.env == "vm" && s.metric.starts_with("counter.vm_exits")));
    assert!(samples
        .iter()
        .any(|s| s.env == "container" && s.metric.starts_with("counter.cgroup")));
    // The report exists with its headline plot and verdicts for both environments.
    let overhead = std::fs::read_to_string(dir.join("overhead.csv")).unwrap();
    assert!(
        overhead.contains(",container,") && overhead.contains(",vm,"),
        "{overhead}"
    );
    assert!(dir.join("plots/overhead.png").exists() && dir.join("report.html").exists());
    let mine: Vec<String> = host_leftovers()
        .into_iter()
        .filter(|l| l.contains(&format!("isobench-{pid}-")))
        .collect();
    assert!(mine.is_empty(), "left behind: {mine:?}");
}

/// Whether a run under `out` has written container samples yet.
fn has_container_samples(out: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(out) else {
        return false;
    };
    entries.flatten().map(|e| e.path()).any(|d| {
        d.is_dir()
            && !d.is_symlink()
            && read_samples(&d.join(SAMPLES_CSV))
                .is_ok_and(|s| s.iter().any(|r| r.env == "container"))
    })
}

/// Start a long native+container run writing into `out`, and wait until it has written
/// container samples (so a container exists to interrupt or kill). On timeout the run is
/// killed and reaped before the test fails, so it never outlives the test.
fn long_container_run(out: &Path) -> std::process::Child {
    let mut child = isobench()
        .args([
            "run",
            "--env",
            "native,container",
            "--strict",
            "--workload",
            "cpu.int,io.seq",
            "--rounds",
            "100000",
        ])
        .arg("--out")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !has_container_samples(out) {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no container samples within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

#[test]
fn ctrl_c_during_a_container_run_leaves_nothing_behind() {
    let _run = shared();
    let out = tempfile::tempdir().unwrap();
    let mut child = long_container_run(out.path());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let dir = run_dir(out.path());
    assert_eq!(
        read_run(&dir.join(RUN_JSON)).unwrap().outcome.name(),
        "interrupted"
    );
    let scratch = out.path().join(".scratch").join(dir.file_name().unwrap());
    assert!(
        !scratch.exists(),
        "scratch {} left behind",
        scratch.display()
    );
    let mine: Vec<String> = host_leftovers()
        .into_iter()
        .filter(|l| l.contains(&format!("isobench-{}-", child.id())))
        .collect();
    assert!(mine.is_empty(), "left behind: {mine:?}");
}

#[test]
fn clean_removes_what_a_sigkilled_run_left_behind() {
    let _run = shared();
    let out = tempfile::tempdir().unwrap();
    let mut child = long_container_run(out.path());
    let pid = child.id();
    child.kill().unwrap(); // SIGKILL: no cleanup runs in isobench itself.
    child.wait().unwrap();
    let mine = || -> Vec<String> {
        host_leftovers()
            .into_iter()
            .filter(|l| l.contains(&format!("isobench-{pid}-")))
            .collect()
    };
    // Give the kernel a moment to reap the runner (it dies with its parent).
    std::thread::sleep(Duration::from_millis(300));
    let scratch_root = out.path().join(".scratch");
    let left_scratch = std::fs::read_dir(&scratch_root).unwrap().count();
    assert!(
        !mine().is_empty() || left_scratch > 0,
        "a SIGKILLed run leaves something for clean to find"
    );
    let warned = isobench()
        .args(["clean", "--dry-run", "--out"])
        .arg(out.path())
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&warned.get_output().stdout).contains("would remove"));
    isobench()
        .args(["clean", "--out"])
        .arg(out.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("removed"));
    assert!(mine().is_empty(), "left behind after clean: {:?}", mine());
    assert_eq!(
        std::fs::read_dir(&scratch_root).unwrap().count(),
        0,
        "scratch directories left after clean"
    );
    // The measured samples are the user's: clean never touches them.
    let dir = run_dir(out.path());
    assert!(!read_samples(&dir.join(SAMPLES_CSV)).unwrap().is_empty());
}

/// The fields of `overhead.csv`'s cpu.int/hash row for `env` (8: overhead, 13: verdict).
fn cpu_int_hash_row(dir: &Path, env: &str) -> Vec<String> {
    let overhead = std::fs::read_to_string(dir.join("overhead.csv")).unwrap();
    overhead
        .lines()
        .find(|l| l.starts_with(&format!("cpu.int,hash,MB/s,higher,{env},")))
        .unwrap_or_else(|| panic!("no cpu.int/hash row for {env}:\n{overhead}"))
        .split(',')
        .map(str::to_string)
        .collect()
}

/// The default design on real environments: a budget, blocks pinned to one CPU, and a
/// synthetic 2% slowdown of the container found above a 1% margin, while native-b (the
/// same code as native) is within it. The samples carry the interference accounting.
#[test]
fn a_budget_run_finds_an_injected_two_percent_slowdown() {
    let _alone = exclusive();
    let out = tempfile::tempdir().unwrap();
    isobench()
        .args([
            "run",
            "--env",
            "native,container",
            "--workload",
            "cpu.int",
            "--budget",
            "25s",
            "--seed",
            "7",
            "--inject-slowdown",
            "container=2",
        ])
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let dir = run_dir(out.path());
    let run = read_run(&dir.join(RUN_JSON)).unwrap();
    assert_eq!(run.config.options["design"], "budget");
    assert_eq!(run.config.options["inject_slowdown"], "container=2%");
    assert_eq!(run.config.options["estimator"], "trimmed-mean-20");
    let m = run
        .measurement
        .expect("run.json says how the measurement went");
    assert!(m.blocks["cpu.int"] >= 10, "{m:?}");
    let verdict = |env: &str| cpu_int_hash_row(&dir, env)[13].clone();
    assert_eq!(verdict("container"), "above");
    assert_eq!(verdict("native-b"), "within");
    let samples = read_samples(&dir.join(SAMPLES_CSV)).unwrap();
    for counter in [
        "counter.run_delay_ns",
        "counter.nivcsw",
        "counter.steal_ticks",
    ] {
        assert!(
            samples
                .iter()
                .any(|s| s.metric == counter && s.env == "container"),
            "{counter} missing"
        );
    }
}

/// A container CPU quota is still found under blocks of short repetitions: with `--cpus`
/// every invocation spans several CFS periods and its value is mean-based, so the
/// throttled stretches count.
#[test]
fn a_half_cpu_quota_is_found_above() {
    let _alone = exclusive();
    let out = tempfile::tempdir().unwrap();
    isobench()
        .args([
            "run",
            "--env",
            "native,container",
            "--workload",
            "cpu.int",
            "--cpus",
            "0.5",
            "--rounds",
            "6",
            "--warmup",
            "1",
            "--seed",
            "3",
        ])
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let dir = run_dir(out.path());
    let run = read_run(&dir.join(RUN_JSON)).unwrap();
    assert_eq!(run.config.options["span"], "cfs-safe");
    let row = cpu_int_hash_row(&dir, "container");
    let estimate: f64 = row[8].parse().unwrap();
    assert_eq!(row[13], "above", "{row:?}");
    assert!(
        (0.6..1.4).contains(&estimate),
        "half a CPU roughly doubles the time: {estimate}"
    );
}
