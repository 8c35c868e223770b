//! `isobench claims`, for real (root, namespaces, overlayfs, cgroups and /dev/kvm, as on
//! CI): each experiment's mechanism is asserted, not only that a report was written. A
//! missing capability fails the test with the reason.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use assert_cmd::Command;
use isobench::claims::{
    self, cgroups, freezer, io_limit, namespaces, overhead, overlay, Config, Verdict,
};
use isobench::measure::Progress;
use isobench::session::Observer;
use predicates::prelude::*;

mod support;
use support::{exclusive, shared};

/// assert_cmd's command (this file uses its `timeout`), not `support::isobench`'s.
fn isobench() -> Command {
    Command::cargo_bin("isobench").expect("the isobench binary is built")
}

/// An observer that prints the session's notes (visible with --nocapture).
struct Quiet;

impl Progress for Quiet {
    fn task_started(&mut self, _warmup: bool, _env: &str, _workload: &str) {}
}

impl Observer for Quiet {
    fn note(&mut self, message: &str) {
        eprintln!("{message}");
    }
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}",
        dir.display()
    );
}

#[test]
fn a_file_in_the_containers_mount_namespace_is_invisible_outside_and_visible_after_setns() {
    let _g = shared();
    let scratch = tempfile::tempdir().unwrap();
    let e = namespaces::observe(scratch.path()).expect("claim 4's experiment");
    assert!(
        !e.visible_on_host,
        "the file showed on the host: {:?}",
        e.host_paths_checked
    );
    assert!(e.host_paths_checked.len() >= 4);
    assert!(
        e.visible_after_setns,
        "setns into the mount namespace did not find the file"
    );
    assert_eq!(e.content_after_setns.as_bytes(), namespaces::TEXT);
    // The contrast: the overlay root's writable layer is a host directory.
    let root = e
        .root_file_on_host
        .as_ref()
        .expect("the root file in upper");
    assert!(
        root.ends_with("upper/scratch/isobench-claim4-root"),
        "{root:?}"
    );
    // UTS and PID.
    assert_eq!(e.hostname_after_setns, e.container_name);
    assert_ne!(e.hostname_after_setns, e.host_hostname);
    assert_eq!(e.pid_inside, Some(1));
    assert_ne!(e.pid_on_host, 1);
    for (ns, (host, inside)) in &e.namespaces {
        assert_ne!(host, inside, "the {ns} namespace is the host's");
    }
    let f = namespaces::findings(&e);
    assert!(f.iter().all(|f| f.verdict == Verdict::Supported), "{f:#?}");
    // The container is gone: its directories, after stop.
    assert_empty(scratch.path());
}

#[test]
fn overlay_writes_land_in_upper_and_leave_lower_unchanged() {
    let _g = shared();
    let scratch = tempfile::tempdir().unwrap();
    let e = overlay::observe(scratch.path()).expect("claim 5's experiment");
    assert!(e.upper_before.is_empty(), "{:?}", e.upper_before);
    let kinds: Vec<(&str, &str)> = e
        .upper_after
        .iter()
        .map(|u| (u.path.as_str(), u.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("deleted.txt", "whiteout (char device 0:0)"),
            ("modified.txt", "file (18 bytes)"),
            ("new.txt", "file (4 bytes)"),
        ]
    );
    assert_eq!(e.lower_sha256_before, e.lower_sha256_after);
    assert_eq!(e.merged_modified_text, "original\nmodified\n");
    assert!(!e.merged_deleted_present);
    assert!(e.writes_only_in_upper());
    // A copy-up of 128 MiB costs far more than a one-byte fresh write (a large effect).
    assert!(
        e.copy_up.median_ms > 10.0 * e.fresh_small.median_ms,
        "copy-up {:?} vs fresh {:?}",
        e.copy_up,
        e.fresh_small
    );
    // Unmounted and removed.
    assert_empty(scratch.path());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&scratch.path().display().to_string()));
}

#[test]
fn a_cpu_hog_under_cpus_0_1_gets_about_a_tenth_of_a_cpu() {
    let _g = exclusive();
    let scratch = tempfile::tempdir().unwrap();
    let c = cgroups::cpu_share(scratch.path(), 7).expect("claim 3's CPU experiment");
    assert!(c.accounted.len() >= 10, "{} windows", c.accounted.len());
    assert!(c.throughput.len() >= 10, "{} windows", c.throughput.len());
    // Generous: a loaded 2-CPU machine can give the hog less than its quota, never much more.
    for (what, s) in [
        ("accounted", c.accounted_share),
        ("throughput", c.throughput_share),
    ] {
        assert!(
            (0.05..=0.13).contains(&s.mean),
            "{what} share {:.3} is not near 0.10",
            s.mean
        );
    }
    assert!(
        (0.05..=0.13).contains(&c.overall_accounted),
        "{}",
        c.overall_accounted
    );
    assert_empty(scratch.path());
}

#[test]
fn a_memory_limit_is_enforced_by_the_oom_killer() {
    let _g = shared();
    let scratch = tempfile::tempdir().unwrap();
    let m = cgroups::memory_limit(scratch.path(), 7).expect("claim 3's memory experiment");
    assert!(m.touched_bytes > m.limit_bytes);
    assert!(m.killed_by_oom, "{:?}", m.limited_error);
    assert_eq!(m.roomy_error, None);
    assert!(m.roomy_peak_bytes.is_some_and(|p| p >= m.touched_bytes / 2));
    assert_empty(scratch.path());
}

#[test]
fn an_io_read_limit_in_the_containers_cgroup_holds_its_reads_to_it() {
    let _g = exclusive();
    let scratch = tempfile::tempdir().unwrap();
    let e = io_limit::observe(scratch.path(), 7).expect("claim 3's IO experiment");
    // The limit with slack for the throttle's slices; the disk unlimited is far faster.
    assert!(
        e.read_limited_mb_s <= e.limit_mb_s * 1.25,
        "limited reads at {} MB/s, limit {}",
        e.read_limited_mb_s,
        e.limit_mb_s
    );
    assert!(
        e.read_unlimited_mb_s > 3.0 * e.read_limited_mb_s,
        "unlimited {} vs limited {} MB/s",
        e.read_unlimited_mb_s,
        e.read_limited_mb_s
    );
    assert!(e.control.ends_with("blkio.throttle.read_bps_device") || e.control.ends_with("io.max"));
    assert_eq!(io_limit::finding(&Ok(e)).verdict, Verdict::Supported);
    assert_empty(scratch.path());
}

#[test]
fn a_one_cpu_cpuset_confines_the_containers_process_to_that_cpu() {
    let _g = shared();
    let scratch = tempfile::tempdir().unwrap();
    // CI and this machine have two CPUs: a one-CPU host fails here with the reason.
    let z = cgroups::cpuset(scratch.path()).expect("claim 3's cpuset experiment");
    assert_eq!(z.allowed_inside, z.cpuset, "host CPUs {}", z.host_cpus);
    assert_ne!(z.allowed_inside, z.host_cpus);
    assert_empty(scratch.path());
}

#[test]
fn the_freezer_stops_and_resumes_a_busy_process() {
    let _g = exclusive();
    // This host has a freezer (v1 here, cgroup.freeze on v2): not finding one is a failure.
    let z = freezer::observe().expect("claim 3's freezer experiment");
    assert!(z.frozen_ms < 1.0, "a frozen process ran {} ms", z.frozen_ms);
    assert!(z.running_ms > 5.0, "running: {} ms", z.running_ms);
    assert!(z.thawed_ms > 5.0, "thawed: {} ms", z.thawed_ms);
    assert!(!z
        .group
        .join(format!("isobench-claim3-{}", std::process::id()))
        .exists());
}

#[test]
fn claims_1_2_and_6_judge_every_axis_and_environment_from_one_run() {
    let _g = exclusive();
    let out = tempfile::tempdir().unwrap();
    let cfg = Config {
        claims: vec![1, 2, 6],
        out: out.path().to_path_buf(),
        scratch: None,
        budget: Duration::from_secs(40),
        precision: 1.0,
        margin: 1.0,
        seed: Some(11),
        env: Vec::new(),
        cpu: "auto".into(),
    };
    let r = claims::run(&cfg, &mut Quiet, &AtomicBool::new(false)).expect("the claims run");
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(
        r.results.iter().map(|c| c.number).collect::<Vec<_>>(),
        [1, 2, 6]
    );
    // Claim 1: one finding per axis for the built-in container, each with an estimate.
    let c1 = &r.results[0];
    for (axis, _) in overhead::AXES {
        let f = c1
            .findings
            .iter()
            .find(|f| f.subject == format!("{axis} · container"))
            .unwrap_or_else(|| panic!("no {axis} finding: {:#?}", c1.findings));
        assert!(f.evidence.contains("95% CI"), "{}", f.evidence);
        assert!(f.evidence.contains("A/A floor ±"), "{}", f.evidence);
    }
    // Claim 2: the vm against the container on every axis; on the system-call axis the vm's
    // port-IO exit (tens of µs against a native syscall) is a large, certain effect.
    let c2 = &r.results[1];
    let sys = c2
        .findings
        .iter()
        .find(|f| f.subject == "system calls · vm vs container")
        .expect("claim 2's system-call finding");
    assert_eq!(sys.verdict, Verdict::Supported, "{}", sys.evidence);
    // Claim 6: every environment launched, and both readings are given.
    let c6 = &r.results[2];
    assert!(c6
        .findings
        .iter()
        .any(|f| f.subject == "container vs the kernel-less vm"));
    assert!(c6
        .findings
        .iter()
        .any(|f| matches!(f.verdict, Verdict::NotTestable { .. })
            && f.subject.contains("Linux guest")));
    let starts = c6.data["start"].as_array().expect("start distributions");
    let envs: Vec<&str> = starts.iter().map(|s| s["env"].as_str().unwrap()).collect();
    // Every environment of the run, in isolation order (an OCI runtime, where isobench has
    // one and it is installed, sits between the container and the vm).
    let at = |e: &str| {
        envs.iter()
            .position(|x| *x == e)
            .unwrap_or_else(|| panic!("{e} missing: {envs:?}"))
    };
    assert!(
        at("native") < at("container") && at("container") < at("vm"),
        "{envs:?}"
    );
    for s in starts {
        assert!(s["values_us"].as_array().unwrap().len() >= 10);
    }
    // The files.
    for f in ["claims.md", "claims.json", "claims.svg", "claims.png"] {
        assert!(r.dir.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.dir.join("claims.json")).unwrap()).unwrap();
    assert_eq!(json["claims"].as_array().unwrap().len(), 3);
    assert!(r.run_dir.as_ref().unwrap().join("run.json").is_file());
}

#[test]
fn the_cli_runs_one_claim_and_prints_the_checklist() {
    let _g = shared();
    let out = tempfile::tempdir().unwrap();
    isobench()
        .args(["claims", "--claim", "5", "--out"])
        .arg(out.path())
        .timeout(Duration::from_secs(120))
        .assert()
        .success()
        .stdout(predicate::str::contains("[✓] claim 5:"))
        .stdout(predicate::str::contains("verdict: supported"))
        .stdout(predicate::str::contains("claims.json"));
    let dir = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("claims-")
        })
        .expect("the claims directory");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("claims.json")).unwrap()).unwrap();
    assert_eq!(json["claims"][0]["number"], 5);
    assert_eq!(json["claims"][0]["overall"]["verdict"], "supported");
    assert!(std::fs::read_to_string(dir.join("claims.md"))
        .unwrap()
        .contains("## Claim 5"));
}

#[test]
fn bad_claim_numbers_and_budgets_are_usage_errors() {
    let _g = shared();
    let out = tempfile::tempdir().unwrap();
    isobench()
        .args(["claims", "--claim", "7"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--claim"))
        .stderr(predicate::str::contains("1..=6").or(predicate::str::contains("1..7")));
    isobench()
        .args(["claims", "--cpu", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--cpu"));
    isobench()
        .args(["claims", "--claim", "6", "--env", "docker", "--out"])
        .arg(out.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("docker"));
    // Nothing is created before the options are checked.
    assert_empty(out.path());
    isobench()
        .args(["claims", "--budget", "soon"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--budget"));
    let e = claims::select(&[0]).unwrap_err().to_string();
    assert!(e.contains("numbered 1 to 6"), "{e}");
    assert_eq!(claims::select(&[6, 3, 3]).unwrap(), [3, 6]);
}

/// A claim 3 freezer group made by hand, as a killed `isobench claims` leaves it: removed
/// (thawed, its process killed) however the test ends.
struct LeftGroup(std::path::PathBuf);

impl Drop for LeftGroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("freezer.state"), "THAWED");
        if let Ok(procs) = std::fs::read_to_string(self.0.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn clean_removes_the_freezer_group_of_a_killed_claims_run_and_only_that() {
    let _g = shared();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let freezer_root = mi
        .lines()
        .find(|l| l.contains(" - cgroup ") && l.rsplit(' ').next().unwrap().contains("freezer"))
        .and_then(|l| l.split(' ').nth(4))
        .map(std::path::PathBuf::from)
        .expect("a cgroup v1 freezer hierarchy is mounted (docs: cgroups are v1 hybrid)");
    // A PID whose process is dead: a child that exited and was reaped.
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    };
    let left = LeftGroup(freezer_root.join(format!("{}{dead}", freezer::GROUP_PREFIX)));
    std::fs::create_dir(&left.0).expect("creating a freezer group (needs root)");
    // Its busy process, moved into the group and frozen, as the killed run left it.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    std::fs::write(left.0.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    std::fs::write(left.0.join("freezer.state"), "FROZEN").unwrap();
    // A live run's group (this process is alive): not a leftover.
    let live =
        LeftGroup(freezer_root.join(format!("{}{}", freezer::GROUP_PREFIX, std::process::id())));
    std::fs::create_dir(&live.0).unwrap();

    let out = tempfile::tempdir().unwrap();
    let dry = Command::cargo_bin("isobench")
        .unwrap()
        .args(["clean", "--dry-run", "--out"])
        .arg(out.path())
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let dry_said = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        dry_said.contains(&format!(
            "would remove claim 3 freezer cgroup {}",
            left.0.display()
        )),
        "{dry_said}"
    );
    assert!(left.0.exists(), "--dry-run removes nothing");

    let done = Command::cargo_bin("isobench")
        .unwrap()
        .args(["clean", "--out"])
        .arg(out.path())
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&done.stdout).into_owned();
    println!("clean said: {said}");
    assert!(done.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "removed claim 3 freezer cgroup {}",
            left.0.display()
        )),
        "{said}"
    );
    assert!(
        !said.contains(&live.0.display().to_string()),
        "a live run's group is kept: {said}"
    );
    assert!(!left.0.exists(), "the dead run's group is gone");
    assert!(live.0.exists(), "the live run's group is still there");
    // Its frozen process was thawed and killed.
    let t0 = std::time::Instant::now();
    loop {
        if let Some(status) = sleeper.try_wait().unwrap() {
            assert!(!status.success(), "killed, not finished");
            break;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = sleeper.kill();
            panic!("the frozen process in the leftover group was not killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
