//! Resource exhaustion (docs/RELIABILITY.md): a scratch filesystem that fills up during
//! `io.seq` in every environment is a clear error naming the cause and the workload, never a
//! hang, and leaves nothing behind; guest memory that cannot be allocated is a clear error at
//! start. (The container's memory limit and the runaway vCPU have their own tests:
//! `env::container::tests::a_memory_limit_kill_is_a_clear_error_and_the_harness_goes_on`
//! and `tests/vm.rs` `a_runaway_guest_is_stopped_at_its_deadline`.)

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use isobench::env::{vm::Vm, Environment, InstanceSpec};
use isobench::plan::VmOptions;
use isobench::scratch::OWNER_FILE;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// A tmpfs mounted for one test, unmounted (lazily) however the test ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        mount(
            Some("isobench-test-tmpfs"),
            at,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("size={size}").as_str()),
        )
        .unwrap_or_else(|e| panic!("mounting a tmpfs at {} (needs root): {e}", at.display()));
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

/// Take all the free space of the tmpfs mounted at `dir` at once, while a run is using it:
/// remount it with its size set to what it holds now. Instant, where writing a filler of
/// that size takes long enough on a busy machine for the run's first writes to get through
/// first. Retried when the run allocated between the two steps (a tmpfs refuses a size
/// below what it holds). Returns the free bytes taken.
fn shrink_to_used(dir: &Path) -> u64 {
    for _ in 0..100 {
        let s = nix::sys::statvfs::statvfs(dir).unwrap();
        let used = (s.blocks() - s.blocks_free()) * s.fragment_size();
        let free = free_bytes(dir);
        let remounted = mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("size={used}").as_str()),
        );
        if remounted.is_ok() {
            return free;
        }
    }
    panic!(
        "could not shrink the tmpfs at {} to its contents",
        dir.display()
    );
}

/// Wait until the run `child` has put a file other than its owner marker in its scratch
/// directory under `scratch` (its first environment's disk): the up-front space check is
/// behind it then. Panics (ending the run) when that takes a minute or the run ends first.
fn wait_for_a_disk_file(scratch: &Path, child: &mut std::process::Child) {
    let t0 = Instant::now();
    loop {
        let started = std::fs::read_dir(scratch)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name() != "ballast")
                    .filter_map(|e| std::fs::read_dir(e.path()).ok())
                    .any(|mut d| d.any(|f| f.is_ok_and(|f| f.file_name() != OWNER_FILE)))
            })
            .unwrap_or(false);
        if started {
            return;
        }
        if t0.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run never created its scratch directory");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Wait for the run `child` to end on its own; a run still going after `limit` hung.
fn wait_for_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run hung on a full scratch filesystem");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Free bytes on the filesystem at `dir`.
fn free_bytes(dir: &Path) -> u64 {
    let s = nix::sys::statvfs::statvfs(dir).unwrap();
    s.blocks_available() * s.fragment_size()
}

/// Allocate a file `name` in `dir` so that `leave` bytes stay free (fallocate: fast on tmpfs).
fn fill_leaving(dir: &Path, name: &str, leave: u64) -> u64 {
    let len = free_bytes(dir).saturating_sub(leave) & !0xfff;
    let f = std::fs::File::create(dir.join(name)).unwrap();
    if len > 0 {
        // SAFETY: fallocate on a file this test just created.
        let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len as libc::off_t) };
        assert_eq!(r, 0, "fallocate of {len} bytes in {}", dir.display());
    }
    len
}

fn isobench_io_run(scratch: &Path, out: &Path) -> Command {
    let mut c = Command::cargo_bin("isobench").unwrap();
    c.args([
        "run",
        "--env",
        "native,container,vm",
        "--strict",
        "--workload",
        "io.seq",
        "--rounds",
        "20",
        "--warmup",
        "0",
        "--deadline",
        "30",
    ])
    .arg("--scratch")
    .arg(scratch)
    .arg("--out")
    .arg(out)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    c
}

#[test]
fn a_scratch_filesystem_that_fills_up_during_io_is_a_clear_error_and_no_hang() {
    let top = tempfile::tempdir().unwrap();
    let scratch = top.path().join("scratch");
    let out = top.path().join("out");
    let _fs = Tmpfs::mount(&scratch, "1g");
    // Too little space from the start: refused before anything runs, naming what it needs.
    fill_leaving(&scratch, "ballast", 4 << 20);
    let early = isobench_io_run(&scratch, &out).output().unwrap();
    let said = String::from_utf8_lossy(&early.stderr).into_owned();
    println!("exhaustion: with 4 MiB free isobench said: {said}");
    assert_eq!(early.status.code(), Some(1), "{said}");
    let needed_mib: u64 = said
        .split("the run needs about ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the up-front check names the space needed: {said}"));
    assert!(said.contains("--scratch"), "the fix is named: {said}");
    std::fs::remove_file(scratch.join("ballast")).unwrap();
    // Just enough to pass the check; once the first environment has put its disk file in the
    // run's scratch directory (after the check), take the rest by shrinking the tmpfs
    // (instant), so the disk writes of `io.seq` (after every environment has started) find
    // the filesystem full.
    fill_leaving(&scratch, "ballast", (needed_mib + 1) << 20);
    let mut child = isobench_io_run(&scratch, &out).spawn().unwrap();
    wait_for_a_disk_file(&scratch, &mut child);
    let filled = shrink_to_used(&scratch);
    let status = wait_for_exit(&mut child, Duration::from_secs(120));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    println!(
        "exhaustion: needed {needed_mib} MiB, filled the last {} MiB after start; isobench said: {stderr}",
        filled >> 20
    );
    assert_eq!(status.code(), Some(1), "a failed run exits 1: {stderr}");
    assert!(stderr.contains("io.seq"), "the workload is named: {stderr}");
    assert!(
        stderr.contains("ENOSPC") || stderr.contains("full"),
        "the cause is named: {stderr}"
    );
    assert!(stderr.contains("scratch"), "the fix is named: {stderr}");
    // Nothing of the run is left in the scratch filesystem but the two fillers.
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "ballast" && n != "filler")
        .collect();
    assert!(left.is_empty(), "left in scratch: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!("isobench-{}-", child.id())),
        "a container mount was left"
    );
}

#[test]
fn guest_memory_that_cannot_be_allocated_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut vm = Vm::new("vm", VmOptions::default());
    // 64 TiB: beyond what this host can map for a guest.
    let spec = |work_size| InstanceSpec {
        work_size,
        disk_size: 0,
        scratch: dir.path().to_path_buf(),
        deadline: Duration::from_secs(30),
        thp: true,
        cpu: None,
        threads: 1,
        thread_cpus: Vec::new(),
    };
    let e = vm
        .start(&spec(64 << 40))
        .expect_err("64 TiB of guest memory cannot be allocated here");
    let msg = format!("{e:#}");
    println!("exhaustion: {msg}");
    assert!(msg.contains("memory"), "the cause is named: {msg}");
    assert!(
        msg.contains("lower") || msg.contains("less") || msg.contains("free"),
        "the fix is named: {msg}"
    );
    // The environment is usable afterwards with a size that fits.
    vm.start(&spec(2 << 20)).expect("a small guest starts");
    vm.stop().unwrap();
}

/// `cpu.int` and `io.seq` in native and vm, 20 blocks each, with a scratch tmpfs that fills
/// up once the run has started (so every `io.seq` block after that fails). Returns the exit
/// status, what isobench said, and the run directory.
fn io_and_cpu_run_on_a_filling_scratch(
    top: &Path,
    keep_going: bool,
) -> (std::process::ExitStatus, String, PathBuf) {
    let scratch = top.join("scratch");
    let out = top.join("out");
    let _fs = Tmpfs::mount(&scratch, "1g");
    let mut c = Command::cargo_bin("isobench").unwrap();
    c.args([
        "run",
        "--env",
        "native,vm",
        "--strict",
        "--workload",
        "cpu.int,io.seq",
        "--rounds",
        "20",
        "--warmup",
        "0",
        "--deadline",
        "30",
        "--seed",
        "7",
    ])
    .args(keep_going.then_some("--keep-going"))
    .arg("--scratch")
    .arg(&scratch)
    .arg("--out")
    .arg(&out)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    // As in the test above: learn the space the up-front check asks for, leave just that,
    // and take the rest once the first environment has put its disk file in scratch (by
    // shrinking the tmpfs, which is instant), so the disk writes of `io.seq` find it full.
    fill_leaving(&scratch, "ballast", 4 << 20);
    let early = c.output().unwrap();
    let said = String::from_utf8_lossy(&early.stderr).into_owned();
    let needed_mib: u64 = said
        .split("the run needs about ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the up-front check names the space needed: {said}"));
    std::fs::remove_file(scratch.join("ballast")).unwrap();
    fill_leaving(&scratch, "ballast", (needed_mib + 1) << 20);
    let mut child = c.spawn().unwrap();
    wait_for_a_disk_file(&scratch, &mut child);
    let filled = shrink_to_used(&scratch);
    let status = wait_for_exit(&mut child, Duration::from_secs(300));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    println!(
        "exhaustion (keep going: {keep_going}): filled {} MiB after start; isobench said: {stderr}",
        filled >> 20
    );
    let run_dir = std::fs::canonicalize(out.join("latest")).expect("the run directory exists");
    (status, stderr, run_dir)
}

/// Measured blocks per workload, from `run.json`.
fn blocks_of(run: &serde_json::Value, workload: &str) -> u64 {
    run["measurement"]["blocks"][workload].as_u64().unwrap_or(0)
}

/// The distinct rounds of `cpu.int` in `env` in a `samples.csv`.
fn cpu_int_rounds(samples: &str, env: &str) -> usize {
    samples
        .lines()
        .filter(|l| l.contains(",cpu.int,") && l.contains(&format!(",{env},")))
        .filter_map(|l| l.split(',').next())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

#[test]
fn with_keep_going_a_workload_that_fails_is_dropped_and_the_others_complete() {
    let top = tempfile::tempdir().unwrap();
    let (status, stderr, run_dir) = io_and_cpu_run_on_a_filling_scratch(top.path(), true);
    assert_eq!(
        status.code(),
        Some(1),
        "a run with a failure exits 1: {stderr}"
    );
    assert!(stderr.contains("--keep-going"), "{stderr}");
    assert!(
        stderr.contains("io.seq in native") || stderr.contains("io.seq in vm"),
        "the failed workload and its environment are named: {stderr}"
    );
    let names_the_cause = |t: &str| t.contains("ENOSPC") || t.contains("full");
    assert!(names_the_cause(&stderr), "the cause is named: {stderr}");
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["outcome"], "failed");
    let failures = run["failures"].as_array().expect("run.json lists failures");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["workload"], "io.seq");
    assert!(names_the_cause(failures[0]["error"].as_str().unwrap()));
    // The other workload went on to the end, in both environments, with valid results.
    assert_eq!(blocks_of(&run, "cpu.int"), 20, "{}", run["measurement"]);
    assert!(blocks_of(&run, "io.seq") < 20);
    let samples = std::fs::read_to_string(run_dir.join("samples.csv")).unwrap();
    for env in ["native", "vm"] {
        assert_eq!(
            cpu_int_rounds(&samples, env),
            20,
            "cpu.int's rounds in {env}"
        );
    }
    let summary = std::fs::read_to_string(run_dir.join("summary.csv")).unwrap();
    assert!(summary.contains("cpu.int"), "{summary}");
    let report = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(report.contains("Failed workloads"), "{report}");
    assert!(report.contains("io.seq in "), "{report}");
}

#[test]
fn without_keep_going_the_same_failure_ends_the_run_at_once() {
    let top = tempfile::tempdir().unwrap();
    let (status, stderr, run_dir) = io_and_cpu_run_on_a_filling_scratch(top.path(), false);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("io.seq"), "{stderr}");
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["outcome"], "failed");
    assert!(
        run.get("failures").is_none(),
        "no --keep-going, no failures list"
    );
    let samples = std::fs::read_to_string(run_dir.join("samples.csv")).unwrap();
    let rounds = cpu_int_rounds(&samples, "native");
    assert!(
        rounds < 20,
        "the run stopped at the failure: {rounds} rounds of cpu.int"
    );
}
