//! Every workload of the catalogue run through the real image in the native environment:
//! its checksum verifies against the independent reference and its metrics are sane; plus
//! the failure paths (corrupted checksum, a fault, a failing disk hostcall, bad params).

use std::path::Path;
use std::time::{Duration, Instant};

use isobench::env::native::Native;
use isobench::env::{EnvError, Environment, InstanceSpec, Invocation};
use isobench::workload::{by_name, catalogue, Prepared, Profile};
use isobench_abi::*;

const SEED: u64 = 0x5eed_1234;

fn spec(scratch: &Path, work: u64, disk: u64) -> InstanceSpec {
    InstanceSpec {
        work_size: work.max(4096),
        disk_size: disk,
        scratch: scratch.to_path_buf(),
        deadline: Duration::from_secs(120),
        thp: true,
        cpu: None,
    }
}

fn tsc_hz() -> f64 {
    isobench::tsc::calibrate(Duration::from_millis(10))
}

/// Run one workload (quick profile) on a fresh native instance and check everything.
fn run_quick(name: &str) {
    let w = by_name(name).unwrap_or_else(|| panic!("{name} is not in the catalogue"));
    let p: Prepared = (w.prepare)(Profile::Quick, SEED);
    assert!(
        p.work_bytes <= 64 << 20,
        "{name}: quick work memory {} > 64 MiB",
        p.work_bytes
    );
    assert!(
        p.disk_bytes <= 64 << 20,
        "{name}: quick disk {} > 64 MiB",
        p.disk_bytes
    );
    let dir = tempfile::tempdir().expect("create a temp scratch dir");
    let mut env = Native::new("native");
    env.start(&spec(dir.path(), p.work_bytes, p.disk_bytes))
        .unwrap_or_else(|e| panic!("{name}: starting native: {e}"));
    let hz = tsc_hz();
    // Twice: the second run checks that each invocation re-initialises its own data.
    for round in 0..2 {
        let t = Instant::now();
        let raw = env
            .invoke(&p.invocation)
            .unwrap_or_else(|e| panic!("{name}: invoke: {e}"));
        eprintln!(
            "{name} round {round}: {:.1} ms wall, {:.1} ms timed, {} hostcalls",
            t.elapsed().as_secs_f64() * 1e3,
            raw.cycles as f64 / hz * 1e3,
            raw.hostcalls
        );
        assert!(raw.cycles > 0, "{name}: no cycles");
        let metrics = (w.interpret)(&p, &raw, hz).unwrap_or_else(|e| panic!("{e}"));
        assert!(!metrics.is_empty(), "{name}: no metrics");
        for m in &metrics {
            assert!(
                m.value.is_finite() && m.value > 0.0,
                "{name}: metric {} = {} {}",
                m.name,
                m.value,
                m.unit
            );
            eprintln!("  {} = {:.3} {}", m.name, m.value, m.unit);
        }
    }
    env.stop().expect("stop");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("read scratch").count(),
        0,
        "{name}: the environment left files in the scratch dir"
    );
}

macro_rules! quick_test {
    ($fn:ident, $name:literal) => {
        #[test]
        fn $fn() {
            run_quick($name);
        }
    };
}

quick_test!(cpu_int_runs_and_verifies, "cpu.int");
quick_test!(cpu_fp_runs_and_verifies, "cpu.fp");
quick_test!(mem_stream_runs_and_verifies, "mem.stream");
quick_test!(mem_random_runs_and_verifies, "mem.random");
quick_test!(mem_latency_runs_and_verifies, "mem.latency");
quick_test!(mem_touch_runs_and_verifies, "mem.touch");
quick_test!(io_seq_runs_and_verifies, "io.seq");
quick_test!(io_rand_runs_and_verifies, "io.rand");
quick_test!(sys_call_runs_and_verifies, "sys.call");

#[test]
fn catalogue_has_every_design_workload_once() {
    let names: Vec<&str> = catalogue().iter().map(|w| w.name).collect();
    for n in [
        "cpu.int",
        "cpu.fp",
        "mem.stream",
        "mem.random",
        "mem.latency",
        "mem.touch",
        "io.seq",
        "io.rand",
        "sys.call",
    ] {
        assert_eq!(
            names.iter().filter(|&&x| x == n).count(),
            1,
            "{n} in {names:?}"
        );
    }
}

#[test]
fn corrupted_checksums_are_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hz = tsc_hz();
    // Small-memory workloads, one exact per kind; mem.stream and io.seq included for their
    // float and IO checksums.
    let names = ["cpu.fp", "mem.stream", "io.seq", "sys.call"];
    let prepared: Vec<Prepared> = names
        .iter()
        .map(|n| (by_name(n).expect("in catalogue").prepare)(Profile::Quick, SEED))
        .collect();
    let work = prepared.iter().map(|p| p.work_bytes).max().unwrap_or(0);
    let disk = prepared.iter().map(|p| p.disk_bytes).max().unwrap_or(0);
    let mut env = Native::new("native");
    env.start(&spec(dir.path(), work, disk)).expect("start");
    for (name, p) in names.iter().zip(&prepared) {
        let mut inv = p.invocation.clone();
        inv.flags |= FLAG_CORRUPT_CHECKSUM;
        let raw = env.invoke(&inv).expect("invoke");
        let w = by_name(name).expect("in catalogue");
        match (w.interpret)(p, &raw, hz) {
            Err(e) => {
                assert_eq!(e.workload, *name);
                assert!(e.to_string().contains("checksum mismatch"), "{e}");
            }
            Ok(m) => panic!("{name}: a corrupted checksum was accepted: {m:?}"),
        }
    }
    env.stop().expect("stop");
}

#[test]
fn a_fault_in_the_image_is_a_crash_naming_the_workload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = Native::new("native");
    env.start(&spec(dir.path(), 4096, 0)).expect("start");
    let inv = Invocation {
        name: "test.fault",
        workload: WL_TEST_FAULT,
        params: [0; PARAM_COUNT],
        flags: 0,
    };
    match env.invoke(&inv) {
        Err(EnvError::Crashed {
            workload, detail, ..
        }) => {
            assert_eq!(workload, "test.fault");
            assert!(detail.contains("SIGSEGV"), "{detail}");
        }
        other => panic!("expected a crash, got {other:?}"),
    }
    env.stop().expect("stop");
}

#[test]
fn a_failing_disk_hostcall_names_the_errno() {
    // The scratch disk is a symlink to /dev/full: opening works, every write fails with
    // ENOSPC, deterministically and without filling a real filesystem.
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink("/dev/full", dir.path().join("native.disk"))
        .expect("symlink the scratch disk to /dev/full");
    let p = (by_name("io.seq").expect("in catalogue").prepare)(Profile::Quick, SEED);
    let mut env = Native::new("native");
    env.start(&spec(dir.path(), p.work_bytes, p.disk_bytes))
        .expect("start");
    match env.invoke(&p.invocation) {
        Err(EnvError::Status {
            workload,
            status,
            meaning,
            ..
        }) => {
            assert_eq!(workload, "io.seq");
            assert_eq!(status, STATUS_HOSTCALL_FAILED);
            assert!(meaning.contains("ENOSPC"), "{meaning}");
            assert!(meaning.contains("free space"), "{meaning}");
        }
        other => panic!("expected a hostcall failure, got {other:?}"),
    }
    env.stop().expect("stop");
    assert!(
        Path::new("/dev/full").exists(),
        "stop must remove the link, not its target"
    );
}

#[test]
fn parameters_beyond_the_instance_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = Native::new("native");
    // One MiB of work memory and disk: too small for every quick workload below. (A failed
    // invocation discards the native instance, so each one starts afresh.)
    for name in [
        "io.seq",
        "io.rand",
        "mem.stream",
        "mem.random",
        "mem.latency",
        "cpu.fp",
        "mem.touch",
    ] {
        env.start(&spec(dir.path(), 1 << 20, 1 << 20))
            .expect("start");
        let p = (by_name(name).expect("in catalogue").prepare)(Profile::Quick, SEED);
        match env.invoke(&p.invocation) {
            Err(EnvError::Status { status, .. }) => assert_eq!(status, STATUS_BAD_PARAMS, "{name}"),
            other => panic!("{name}: expected STATUS_BAD_PARAMS, got {other:?}"),
        }
    }
    env.stop().expect("stop");
}

#[test]
fn the_whole_quick_catalogue_shares_one_instance() {
    // As a run does it: one instance sized for the largest workload, every workload in
    // turn, twice, in two orders — each kernel must initialise its own data in the shared
    // work memory and disk, whatever ran before it.
    let prepared: Vec<Prepared> = catalogue()
        .iter()
        .map(|w| (w.prepare)(Profile::Quick, SEED))
        .collect();
    let work = prepared.iter().map(|p| p.work_bytes).max().unwrap_or(0);
    let disk = prepared.iter().map(|p| p.disk_bytes).max().unwrap_or(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = Native::new("native");
    env.start(&spec(dir.path(), work, disk)).expect("start");
    let hz = tsc_hz();
    let forward: Vec<usize> = (0..prepared.len()).collect();
    let backward: Vec<usize> = forward.iter().rev().copied().collect();
    for order in [forward, backward] {
        let t = Instant::now();
        for &i in &order {
            let (w, p) = (&catalogue()[i], &prepared[i]);
            let raw = env
                .invoke(&p.invocation)
                .unwrap_or_else(|e| panic!("{}: {e}", w.name));
            (w.interpret)(p, &raw, hz).unwrap_or_else(|e| panic!("{e}"));
            eprintln!(
                "  {}: {:.1} ms wall, {:.1} ms timed",
                w.name,
                raw.wall_ns as f64 / 1e6,
                raw.cycles as f64 / hz * 1e3
            );
        }
        eprintln!(
            "quick catalogue, one round natively: {:.0} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    env.stop().expect("stop");
}
