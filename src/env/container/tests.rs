//! Real container tests: they need root, overlayfs, namespaces and cgroups (CI has them) and
//! fail with the reason when something is missing. They run one at a time (a lock), so the
//! leftover checks and the CPU-limit measurement see only their own container.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use isobench_abi::{STATUS_OK, WL_CPU_INT};
use nix::sys::signal::Signal;

use super::*;
use crate::env::native::Native;
use crate::env::{affinity, interference};
use crate::workload::{self, Profile};

static SERIAL: Mutex<()> = Mutex::new(());

pub(super) fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn require_container() {
    if let Err(why) = Container::probe() {
        panic!("the container tests need a host where the container environment runs: {why}");
    }
}

pub(super) fn spec(scratch: &Path, work_size: u64, disk_size: u64) -> InstanceSpec {
    InstanceSpec {
        work_size,
        disk_size,
        scratch: scratch.to_path_buf(),
        deadline: Duration::from_secs(60),
        thp: true,
        cpu: None,
        threads: 1,
        thread_cpus: Vec::new(),
    }
}

/// Everything named after this process's containers that is still on the host.
fn leftovers_of_this_process() -> Vec<String> {
    let me = format!("isobench-{}-", std::process::id());
    let mut out = Vec::new();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    out.extend(
        mi.lines()
            .filter(|l| l.contains(&me))
            .map(|l| format!("mount: {l}")),
    );
    let layout = Layout::detect().unwrap();
    for d in layout.scan_dirs() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&me) {
                    out.push(format!("cgroup: {}", e.path().display()));
                }
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(cleanup::STATE_DIR) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&me) {
                out.push(format!("marker: {}", e.path().display()));
            }
        }
    }
    out
}

pub(super) fn assert_clean(scratch: &Path) {
    assert_eq!(leftovers_of_this_process(), Vec::<String>::new());
    let entries: Vec<_> = std::fs::read_dir(scratch)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(entries.is_empty(), "scratch entries left: {entries:?}");
}

/// Every file under `root` with its kind, mode and bytes, in a stable order.
fn tree_snapshot(root: &Path) -> Vec<(PathBuf, String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            use std::os::unix::fs::PermissionsExt;
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let kind = format!("{:?} {:o}", md.file_type(), md.permissions().mode());
            if md.is_dir() {
                out.push((rel, kind, Vec::new()));
                walk(root, &p, out);
            } else {
                out.push((rel, kind, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut v = Vec::new();
    walk(root, root, &mut v);
    v
}

#[test]
fn isolation_seen_from_inside() {
    let _g = serial();
    require_container();
    for upper in [Upper::Disk, Upper::Tmpfs] {
        let t = tempfile::tempdir().unwrap();
        let pristine = tempfile::tempdir().unwrap();
        let fresh = Rootfs::prepare(pristine.path(), "x", upper).unwrap();
        let expected_lower = tree_snapshot(&fresh.lower);
        let c = Container::new(
            "container",
            ContainerOptions {
                upper,
                ..Default::default()
            },
        );
        let mut checked = false;
        let out = inside::run_probe(&c, &spec(t.path(), 4096, 0), inside::report, &mut |v| {
            // The lower layer is byte-for-byte what was prepared.
            assert_eq!(tree_snapshot(&v.rootfs.lower), expected_lower);
            let name = Path::new("scratch/written-inside");
            assert!(!v.rootfs.lower.join(name).exists());
            assert!(
                !v.rootfs.merged.join(name).exists(),
                "visible on the host path"
            );
            match upper {
                Upper::Disk => assert_eq!(
                    std::fs::read(v.rootfs.upper.join(name)).unwrap(),
                    inside::WRITTEN_TEXT
                ),
                // The tmpfs lived in the container's mount namespace: gone with it.
                Upper::Tmpfs => assert!(!v.rootfs.upper.exists()),
            }
            assert!(!v.cgroup_dirs.is_empty());
            checked = true;
        })
        .unwrap();
        assert!(checked);
        let f = inside::parse(&out);
        assert_eq!(f["pid"], "1", "the probe is PID 1: {f:?}");
        assert!(f["hostname"].starts_with("isobench-"), "{f:?}");
        let mut root: Vec<&str> = f["root"].split_whitespace().collect();
        root.sort();
        assert_eq!(root, ["dev", "etc", "proc", "scratch", "tmp"]);
        let pids: Vec<&str> = f["proc_pids"]
            .split_whitespace()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        assert_eq!(pids, ["1"], "host processes visible");
        assert_eq!(f["lo_up"], "1");
        assert_eq!(f["wrote"], "1");
        // The cgroup namespace is rooted at the container's group.
        for line in f["cgroup"].lines() {
            assert!(line.ends_with(":/"), "cgroup line {line:?}");
        }
        // Only the container's own mounts: no host filesystem.
        let mut points: Vec<String> = cgroup::parse_mountinfo(&f["mountinfo"])
            .into_iter()
            .map(|m| m.mount_point.display().to_string())
            .collect();
        points.sort();
        assert_eq!(
            points,
            ["/", "/dev/null", "/dev/urandom", "/dev/zero", "/proc"]
        );
        assert_clean(t.path());
    }
}

#[test]
fn cpu_int_checksum_matches_native() {
    let _g = serial();
    require_container();
    let w = workload::by_name("cpu.int").unwrap();
    let p = (w.prepare)(
        workload::Sizing {
            profile: Profile::Quick,
            span: workload::Span::Short,
        },
        42,
    );
    let t = tempfile::tempdir().unwrap();
    let s = spec(t.path(), p.work_bytes, 1 << 20);
    let mut c = Container::new("container", ContainerOptions::default());
    c.start(&s).unwrap();
    let raw = c.invoke(&p.invocation).unwrap();
    (w.interpret)(&p, &raw, 2.6e9).expect("checksum checked against the reference");
    assert!(
        raw.counters["cgroup.cpu_usage_ns"] > 0,
        "{:?}",
        raw.counters
    );
    assert!(raw.counters["cgroup.memory_peak_bytes"] > 0);
    // The instance persists: a second invocation on the same runner.
    let raw2 = c.invoke(&p.invocation).unwrap();
    assert_eq!(raw2.checksum, raw.checksum);
    let facts = c.facts();
    assert_eq!(facts["namespaces"], "mnt pid uts ipc net cgroup");
    assert!(facts.contains_key("instance.cgroup_paths"));
    c.stop().unwrap();

    let mut n = Native::new("native");
    n.start(&s).unwrap();
    let native = n.invoke(&p.invocation).unwrap();
    n.stop().unwrap();
    assert_eq!(native.checksum, raw.checksum);
    assert_clean(t.path());
}

/// A cpu.int invocation of `passes` over 16 KiB, in one repetition.
fn cpu_int(passes: u64) -> Invocation {
    Invocation {
        name: "cpu.int",
        workload: WL_CPU_INT,
        params: workload::params(&[16 * 1024, passes, 7, 1]),
        flags: 0,
    }
}

#[test]
fn a_tenth_of_a_cpu_gives_a_tenth_of_the_throughput() {
    let _g = serial();
    require_container();
    let t = tempfile::tempdir().unwrap();
    let s = spec(t.path(), 16 * 1024, 0);
    let mut free = Container::new("container", ContainerOptions::default());
    free.start(&s).unwrap();
    // Size the work to ~150 ms unlimited (so ~1.5 s, fifteen CFS periods, at 10%).
    let probe = free.invoke(&cpu_int(2000)).unwrap();
    let passes = (2000.0 * 0.15e9 / probe.wall_ns as f64).max(100.0) as u64;
    // Unlimited throughput is the work per CPU-second it gets when it has a CPU: on a busy
    // machine (shared by other builds) its wall time also counts waiting for a CPU, which
    // the limit has nothing to do with. The cgroup's CPU time measures exactly the former.
    let runs: Vec<RawRun> = (0..3)
        .map(|_| free.invoke(&cpu_int(passes)).unwrap())
        .collect();
    let unlimited_cpu = runs
        .iter()
        .map(|r| r.counters["cgroup.cpu_usage_ns"])
        .min()
        .unwrap();
    let unlimited_wall = runs.iter().map(|r| r.wall_ns).min().unwrap();
    free.stop().unwrap();

    let mut tenth = Container::new(
        "container",
        ContainerOptions {
            cpus: Some(0.1),
            ..Default::default()
        },
    );
    tenth.start(&s).unwrap();
    assert!(tenth.facts()["cgroup.cpu_limit"].contains("10000"));
    let limited = tenth.invoke(&cpu_int(passes)).unwrap();
    tenth.stop().unwrap();
    // Throttling is wall-clock: the limited throughput is work per wall-second.
    let ratio = unlimited_cpu as f64 / limited.wall_ns as f64;
    let wall_ratio = unlimited_wall as f64 / limited.wall_ns as f64;
    let cpu_share = limited.counters["cgroup.cpu_usage_ns"] as f64 / limited.wall_ns as f64;
    eprintln!(
        "cpus=0.1: throughput ratio {ratio:.3} (unlimited {unlimited_cpu} CPU-ns, {unlimited_wall} wall-ns; limited {} wall-ns); wall/wall ratio {wall_ratio:.3}; cgroup CPU share while limited {cpu_share:.3}",
        limited.wall_ns
    );
    assert!(
        (0.07..=0.13).contains(&ratio),
        "throughput ratio {ratio:.3} is not 10% ± 3 points"
    );
    assert_clean(t.path());
}

#[test]
fn a_memory_limit_kill_is_a_clear_error_and_the_harness_goes_on() {
    let _g = serial();
    require_container();
    let t = tempfile::tempdir().unwrap();
    let s = spec(t.path(), 256 << 20, 0);
    let mut c = Container::new(
        "container",
        ContainerOptions {
            memory: Some(64 << 20),
            ..Default::default()
        },
    );
    c.start(&s).unwrap();
    assert!(c.facts()["cgroup.memory_limit"].contains(&(64u64 << 20).to_string()));
    let big = Invocation {
        name: "cpu.int",
        workload: WL_CPU_INT,
        params: workload::params(&[256 << 20, 1, 7, 1]),
        flags: 0,
    };
    let err = c.invoke(&big).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("memory limit"), "{msg}");
    assert!(matches!(err, EnvError::Crashed { .. }), "{msg}");
    // The dead instance was removed at once.
    assert_clean(t.path());
    // The harness goes on: the same environment starts again and runs a small kernel.
    c.start(&s).unwrap();
    let ok = c.invoke(&cpu_int(10)).unwrap();
    assert_eq!(ok.status, STATUS_OK);
    c.stop().unwrap();
    assert_clean(t.path());
}

#[test]
fn failed_starts_leave_nothing() {
    let _g = serial();
    require_container();
    let t = tempfile::tempdir().unwrap();
    // Parent side: a CPU that does not exist; the cgroup write fails after dirs were made.
    let mut c = Container::new(
        "container",
        ContainerOptions {
            cpuset: Some("999".into()),
            ..Default::default()
        },
    );
    let err = c.start(&spec(t.path(), 4096, 0)).unwrap_err();
    assert!(err.to_string().contains("cpuset.cpus"), "{err}");
    assert_clean(t.path());
    // Child side: working memory larger than the address space; the runner reports it.
    let mut c = Container::new("container", ContainerOptions::default());
    let err = c.start(&spec(t.path(), 1 << 47, 0)).unwrap_err();
    assert!(err.to_string().contains("working memory"), "{err}");
    assert_clean(t.path());
}

#[test]
fn signals_from_the_terminal_do_not_stop_the_runner_and_drop_cleans_up() {
    let _g = serial();
    require_container();
    let t = tempfile::tempdir().unwrap();
    {
        let mut c = Container::new("container", ContainerOptions::default());
        c.start(&spec(t.path(), 16 * 1024, 0)).unwrap();
        let pid = c.instance.as_ref().unwrap().pid().as_raw();
        // What Ctrl-C and a plain kill send: PID 1 without handlers ignores both.
        for sig in [Signal::SIGINT, Signal::SIGTERM] {
            nix::sys::signal::kill(Pid::from_raw(pid), sig).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        c.invoke(&cpu_int(10)).unwrap();
        // No stop: Drop must undo everything.
    }
    assert_clean(t.path());
}

#[test]
fn measure_start_times_a_fresh_container() {
    let _g = serial();
    require_container();
    let t = tempfile::tempdir().unwrap();
    let mut c = Container::new("container", ContainerOptions::default());
    let s = spec(t.path(), 4096, 0);
    let cycles = c.measure_start(&s).unwrap();
    let hz = crate::tsc::calibrate(Duration::from_millis(5));
    let ms = cycles as f64 / hz * 1e3;
    eprintln!("container start-up: {ms:.3} ms");
    for (step, c) in c.last_start_breakdown() {
        eprintln!("  {step}: {:.3} ms", *c as f64 / hz * 1e3);
    }
    assert!(ms > 0.0 && ms < 5000.0, "{ms} ms");
    let sum: u64 = c.last_start_breakdown().iter().map(|(_, c)| c).sum();
    assert_eq!(sum, cycles, "the steps add up to the total");
    assert_clean(t.path());
}

#[test]
fn real_cgroup_limits_are_written_and_removed() {
    let _g = serial();
    require_container();
    let layout = Layout::detect().unwrap();
    let name = cleanup::container_name(std::process::id(), 1_000_000);
    let limits = Limits {
        cpus: Some(0.5),
        memory: Some(128 << 20),
        cpuset: Some("0".into()),
        io_weight: Some(100),
    };
    let cg = Cgroup::create(&layout, &name, &limits).unwrap();
    let find = |file: &str| {
        cg.dirs()
            .into_iter()
            .map(|d| d.join(file))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no {file} in {:?}", cg.dirs()))
    };
    let rd = |p: PathBuf| std::fs::read_to_string(p).unwrap().trim().to_string();
    match layout.version() {
        "v1" => {
            assert_eq!(rd(find("cpu.cfs_quota_us")), "50000");
            assert_eq!(
                rd(find("memory.limit_in_bytes")),
                (128u64 << 20).to_string()
            );
        }
        _ => {
            assert_eq!(rd(find("cpu.max")), "50000 100000");
            assert_eq!(rd(find("memory.max")), (128u64 << 20).to_string());
        }
    }
    assert_eq!(rd(find("cpuset.cpus")), "0");
    assert!(cg.facts().contains_key("cgroup.io_weight"));
    // A process joins and is accounted.
    let mut child = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    cg.add_pid(child.id() as i32).unwrap();
    assert!(rd(find("cgroup.procs")).contains(&child.id().to_string()));
    let dirs = cg.dirs();
    // Removal kills what is left inside.
    cg.remove().unwrap();
    let _ = child.wait();
    for d in dirs {
        assert!(!d.exists(), "{}", d.display());
    }
}

#[test]
fn clean_leftovers_removes_what_a_killed_run_left() {
    let _g = serial();
    require_container();
    // A dead owner: a child that has exited and been reaped.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id() as i32;
    dead.wait().unwrap();
    let state = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let layout = Layout::detect().unwrap();

    // Run 1: a marker, its directory with an overlay-like tree, a mount, its cgroups.
    let name = cleanup::container_name(dead_pid as u32, 0);
    let dir = scratch.path().join(&name);
    std::fs::create_dir_all(dir.join("upper/scratch")).unwrap();
    std::fs::create_dir_all(dir.join("merged")).unwrap();
    std::fs::write(dir.join("upper/scratch/disk"), b"x").unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &dir.join("merged"),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let cgroups = layout.group_dirs(&name);
    for d in &cgroups {
        std::fs::create_dir_all(d).unwrap();
    }
    cleanup::Marker {
        name: name.clone(),
        owner_pid: dead_pid,
        owner_start: Some(1),
        dir: Some(dir.clone()),
        cgroups: cgroups.clone(),
    }
    .store(state.path())
    .unwrap();
    // Run 2 lost its marker: only its cgroup name says who owned it.
    let unmarked = layout.group_dirs(&cleanup::container_name(dead_pid as u32, 1));
    std::fs::create_dir_all(&unmarked[0]).unwrap();
    // A live owner's group (ours) must stay.
    let live = layout.group_dirs(&cleanup::container_name(std::process::id(), 2_000_000));
    std::fs::create_dir_all(&live[0]).unwrap();
    // Removed however this test ends, so a failed assertion leaves no cgroup behind.
    struct RemoveOnDrop(Vec<std::path::PathBuf>);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = cgroup::remove_dirs(&self.0);
        }
    }
    let _live_guard = RemoveOnDrop(live[..1].to_vec());

    let mi = || std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let found = cleanup::find_leftovers_in(state.path(), Some(&layout), &mi());
    assert!(found.contains(&Leftover::Dir(dir.clone())), "{found:?}");
    assert!(
        found.contains(&Leftover::Mount(dir.join("merged"))),
        "{found:?}"
    );
    assert!(
        found.contains(&Leftover::Cgroup(unmarked[0].clone())),
        "{found:?}"
    );
    for d in &cgroups {
        assert!(found.contains(&Leftover::Cgroup(d.clone())), "{found:?}");
    }
    assert!(!found.contains(&Leftover::Cgroup(live[0].clone())));

    let removed = cleanup::clean_leftovers_in(state.path(), Some(&layout), &mi()).unwrap();
    assert_eq!(removed.len(), found.len());
    assert!(!mi().contains(&name), "mount still there");
    assert!(!dir.exists());
    for d in cgroups.iter().chain(&unmarked) {
        assert!(!d.exists(), "{}", d.display());
    }
    assert!(
        !state.path().exists(),
        "the emptied state directory is removed too"
    );
    assert!(live[0].exists(), "a live owner's cgroup was removed");
    cgroup::remove_dirs(&live[..1]).unwrap();
    assert!(cleanup::find_leftovers_in(state.path(), Some(&layout), &mi()).is_empty());
}

/// The CPUs this test may pin to.
fn cpus_here() -> Vec<usize> {
    affinity::current_thread_cpus()
        .unwrap()
        .into_iter()
        .collect()
}

fn pinned(scratch: &Path, cpu: usize) -> InstanceSpec {
    InstanceSpec {
        cpu: Some(cpu),
        ..spec(scratch, 16 * 1024, 0)
    }
}

#[test]
fn a_pinned_container_runs_its_runner_on_its_cpu_only() {
    let _g = serial();
    require_container();
    let t = tempfile::tempdir().unwrap();
    // Every CPU in turn, so a runner that merely happened to be on the CPU fails.
    for cpu in cpus_here() {
        let mut c = Container::new("container", ContainerOptions::default());
        c.start(&pinned(t.path(), cpu)).unwrap();
        assert_eq!(c.facts()["cpu"], cpu.to_string());
        let pid = c.instance.as_ref().unwrap().pid().as_raw();
        let (run, seen) = affinity::observe::sample_while(pid, pid, || c.invoke(&cpu_int(50_000)));
        let run = run.unwrap();
        // Its interference is accounted next to the cgroup's.
        for k in [
            interference::STEAL_TICKS,
            interference::RUN_DELAY_NS,
            interference::NIVCSW,
            "cgroup.cpu_usage_ns",
        ] {
            assert!(run.counters.contains_key(k), "{k} in {:?}", run.counters);
        }
        assert!(seen.len() >= 20, "only {} samples", seen.len());
        let want = affinity::observe::Placement {
            allowed: [cpu].into(),
            on: cpu,
        };
        assert!(seen.iter().all(|p| *p == want), "CPU {cpu}: {seen:?}");
        // The runner pins itself after it joined its cgroup, whose cpuset would otherwise
        // have reset its affinity: a probe body sees the pin from inside.
        let out = inside::run_probe(
            &c,
            &pinned(t.path(), cpu),
            affinity::observe::report_status,
            &mut |_| {},
        )
        .unwrap();
        let status = String::from_utf8_lossy(&out);
        assert_eq!(
            affinity::observe::allowed_in_status(&status),
            Some([cpu].into()),
            "{status}"
        );
        // A pinned start-up measurement runs too.
        assert!(c.measure_start(&pinned(t.path(), cpu)).unwrap() > 0);
        c.stop().unwrap();
        assert_clean(t.path());
    }
    let mut c = Container::new("container", ContainerOptions::default());
    c.start(&spec(t.path(), 16 * 1024, 0)).unwrap();
    assert_eq!(c.facts()["cpu"], "none");
    let run = c.invoke(&cpu_int(10)).unwrap();
    assert!(
        run.counters.contains_key(interference::RUN_DELAY_NS),
        "{:?}",
        run.counters
    );
    c.stop().unwrap();
    assert_clean(t.path());
}

#[test]
fn a_cpu_outside_the_cpuset_is_a_clear_error_at_start() {
    let _g = serial();
    require_container();
    let t = tempfile::tempdir().unwrap();
    let mut c = Container::new(
        "container",
        ContainerOptions {
            cpuset: Some("0".into()),
            ..Default::default()
        },
    );
    let s = pinned(t.path(), 1);
    for err in [
        c.start(&s).unwrap_err().to_string(),
        c.measure_start(&s).unwrap_err().to_string(),
    ] {
        for part in [
            "CPU 1",
            "--cpu",
            "cpuset 0",
            "--cpuset",
            "pick a --cpu inside the set (0)",
        ] {
            assert!(err.contains(part), "{part:?} in {err}");
        }
    }
    assert!(c.instance.is_none());
    assert_clean(t.path());
    // Were the parent's check skipped, the runner would still refuse in the child: the
    // cpuset cgroup it joined does not hold CPU 1.
    let err = inside::run_probe(&c, &s, affinity::observe::report_status, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("sched_setaffinity"), "{err}");
    assert_clean(t.path());
    // A CPU inside the set runs.
    c.start(&pinned(t.path(), 0)).unwrap();
    c.invoke(&cpu_int(10)).unwrap();
    c.stop().unwrap();
    assert_clean(t.path());
}
