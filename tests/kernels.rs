//! Every workload of the catalogue run through the real image in the native environment:
//! its checksum verifies against the independent reference and its metrics are sane; plus
//! the failure paths (corrupted checksum, a fault, a failing disk hostcall, bad params).

use std::path::Path;
use std::time::{Duration, Instant};

use isobench::env::native::Native;
use isobench::env::{EnvError, Environment, InstanceSpec, Invocation};
use isobench::workload::{by_name, catalogue, mean_companion_of, Prepared, Profile, Sizing, Span};
use isobench_abi::*;

const SEED: u64 = 0x5eed_1234;

const QUICK_SHORT: Sizing = Sizing {
    profile: Profile::Quick,
    span: Span::Short,
};

/// The record layout of each repeated kernel, from its params as documented in
/// `image/src/kernels/`: how many per-repetition records an invocation must write. `None`
/// for the kernels that are one long operation.
fn repetition_records(name: &str, params: &[u64; PARAM_COUNT]) -> Option<u64> {
    match name {
        "cpu.int" => Some(params[3]),
        "cpu.fp" => Some(params[1]),
        "mem.random" => Some(params[2]),
        "sys.call" => Some(params[1]),
        "mem.stream" => Some(4 * params[1]),
        "mem.latency" => Some((params[1] - params[0] + 1) * params[4]),
        _ => None,
    }
}

fn spec(scratch: &Path, work: u64, disk: u64) -> InstanceSpec {
    InstanceSpec {
        work_size: work.max(4096),
        disk_size: disk,
        scratch: scratch.to_path_buf(),
        deadline: Duration::from_secs(120),
        thp: true,
        cpu: None,
        threads: 1,
        thread_cpus: Vec::new(),
    }
}

fn tsc_hz() -> f64 {
    isobench::tsc::calibrate(Duration::from_millis(10))
}

/// Run one workload (quick profile, `span`) on a fresh native instance and check everything.
fn run_quick(name: &str, span: Span) {
    let w = by_name(name).unwrap_or_else(|| panic!("{name} is not in the catalogue"));
    let sizing = Sizing {
        profile: Profile::Quick,
        span,
    };
    let p: Prepared = (w.prepare)(sizing, SEED);
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
            "{name} {span:?} round {round}: {:.1} ms wall, {:.1} ms timed, {} hostcalls, {} records",
            t.elapsed().as_secs_f64() * 1e3,
            raw.cycles as f64 / hz * 1e3,
            raw.hostcalls,
            raw.records.len()
        );
        assert!(raw.cycles > 0, "{name}: no cycles");
        if let Some(n) = repetition_records(name, &p.invocation.params) {
            assert_eq!(raw.records.len() as u64, n, "{name} {span:?}: record count");
            assert!(
                raw.records.iter().all(|&c| c > 0),
                "{name} {span:?}: a repetition of 0 cycles"
            );
            assert_eq!(
                raw.records.iter().sum::<u64>(),
                raw.cycles,
                "{name} {span:?}: the repetitions add up to the timed region"
            );
        }
        // The checksum is verified against the independent reference here.
        let metrics = (w.interpret)(&p, &raw, hz).unwrap_or_else(|e| panic!("{e}"));
        assert!(!metrics.is_empty(), "{name}: no metrics");
        let primary = (w.primary)(Profile::Quick);
        assert!(
            metrics.iter().any(|m| m.name == primary),
            "{name}: no primary metric {primary}"
        );
        if repetition_records(name, &p.invocation.params).is_some() {
            // Every repeated metric comes with its mean-based companion, and only those.
            for m in &metrics {
                match mean_companion_of(&m.name) {
                    Some(base) => assert!(metrics.iter().any(|b| b.name == base), "{}", m.name),
                    None => assert!(
                        metrics
                            .iter()
                            .any(|c| mean_companion_of(&c.name) == Some(&m.name)),
                        "{name}: {} has no .mean companion",
                        m.name
                    ),
                }
            }
        }
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
    ($fn:ident, $name:literal, $span:ident) => {
        #[test]
        fn $fn() {
            run_quick($name, Span::$span);
        }
    };
}

quick_test!(cpu_int_runs_and_verifies, "cpu.int", Short);
quick_test!(cpu_fp_runs_and_verifies, "cpu.fp", Short);
quick_test!(mem_stream_runs_and_verifies, "mem.stream", Short);
quick_test!(mem_random_runs_and_verifies, "mem.random", Short);
quick_test!(mem_latency_runs_and_verifies, "mem.latency", Short);
quick_test!(mem_touch_runs_and_verifies, "mem.touch", Short);
quick_test!(io_seq_runs_and_verifies, "io.seq", Short);
quick_test!(io_rand_runs_and_verifies, "io.rand", Short);
quick_test!(sys_call_runs_and_verifies, "sys.call", Short);
// The long span of every repeated kernel: the same repetitions, more of them.
quick_test!(cpu_int_cfs_safe_runs_and_verifies, "cpu.int", CfsSafe);
quick_test!(cpu_fp_cfs_safe_runs_and_verifies, "cpu.fp", CfsSafe);
quick_test!(mem_stream_cfs_safe_runs_and_verifies, "mem.stream", CfsSafe);
quick_test!(mem_random_cfs_safe_runs_and_verifies, "mem.random", CfsSafe);
quick_test!(
    mem_latency_cfs_safe_runs_and_verifies,
    "mem.latency",
    CfsSafe
);
quick_test!(sys_call_cfs_safe_runs_and_verifies, "sys.call", CfsSafe);

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
        .map(|n| (by_name(n).expect("in catalogue").prepare)(QUICK_SHORT, SEED))
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

/// IO throughput is bytes over the phase's elapsed time: each phase's span holds every IO
/// record of the phase, and `io.seq`'s read span also holds the checksum's folds (nothing
/// between two IOs is left out, docs/METHODOLOGY.md "IO: bytes over the phase's elapsed
/// time").
#[test]
fn io_phases_are_elapsed_spans_that_hold_their_ios_and_folds() {
    for name in ["io.seq", "io.rand"] {
        let p = (by_name(name).expect("in catalogue").prepare)(QUICK_SHORT, SEED);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = Native::new("native");
        env.start(&spec(dir.path(), p.work_bytes, p.disk_bytes))
            .expect("start");
        let raw = env.invoke(&p.invocation).expect("invoke");
        env.stop().expect("stop");
        let (ops_w, ops_r) = match name {
            "io.seq" => {
                let chunks = (p.invocation.params[0] / p.invocation.params[1]) as usize;
                (chunks, chunks)
            }
            _ => (
                p.invocation.params[1] as usize,
                p.invocation.params[2] as usize,
            ),
        };
        assert_eq!(raw.records.len(), ops_w + 1 + ops_r, "{name}: records");
        let writes_and_flush: u64 = raw.records[..=ops_w].iter().sum();
        let reads: u64 = raw.records[ops_w + 1..].iter().sum();
        let (fill, fold) = if name == "io.seq" {
            assert!(
                raw.results[2] > 0 && raw.results[3] > 0,
                "{name}: no fill or fold cycles"
            );
            (raw.results[2], raw.results[3])
        } else {
            (0, 0)
        };
        assert!(
            raw.results[0] >= writes_and_flush + fill,
            "{name}: write span {} < writes + fsync {writes_and_flush} + fills {fill}",
            raw.results[0]
        );
        assert!(
            raw.results[1] >= reads + fold,
            "{name}: read span {} < reads {reads} + folds {fold}",
            raw.results[1]
        );
        assert_eq!(
            raw.cycles,
            raw.results[0] + raw.results[1],
            "{name}: cycles"
        );
    }
}

#[test]
fn a_failing_disk_hostcall_names_the_errno() {
    // The scratch disk is a symlink to /dev/full: opening works, every write fails with
    // ENOSPC, deterministically and without filling a real filesystem.
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink("/dev/full", dir.path().join("native.disk"))
        .expect("symlink the scratch disk to /dev/full");
    let p = (by_name("io.seq").expect("in catalogue").prepare)(QUICK_SHORT, SEED);
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
        let p = (by_name(name).expect("in catalogue").prepare)(QUICK_SHORT, SEED);
        match env.invoke(&p.invocation) {
            Err(EnvError::Status { status, .. }) => assert_eq!(status, STATUS_BAD_PARAMS, "{name}"),
            other => panic!("{name}: expected STATUS_BAD_PARAMS, got {other:?}"),
        }
    }
    env.stop().expect("stop");
}

#[test]
fn zero_or_too_many_repetitions_are_rejected() {
    // Each repeated kernel's repetition count (its index in params) at 0 and past the record
    // buffer. (A failed invocation discards the native instance, so each one starts afresh.)
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = Native::new("native");
    for (name, at) in [
        ("cpu.int", 3),
        ("cpu.fp", 1),
        ("mem.random", 2),
        ("sys.call", 1),
        ("mem.latency", 4),
    ] {
        let p = (by_name(name).expect("in catalogue").prepare)(QUICK_SHORT, SEED);
        for reps in [0, RECORD_CAPACITY + 1] {
            env.start(&spec(dir.path(), p.work_bytes, p.disk_bytes))
                .expect("start");
            let mut inv = p.invocation.clone();
            inv.params[at] = reps;
            match env.invoke(&inv) {
                Err(EnvError::Status { status, .. }) => {
                    assert_eq!(status, STATUS_BAD_PARAMS, "{name} reps={reps}")
                }
                other => panic!("{name} reps={reps}: expected STATUS_BAD_PARAMS, got {other:?}"),
            }
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
        .map(|w| (w.prepare)(QUICK_SHORT, SEED))
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

/// Not a check: how long each workload's invocation runs natively per span, for sizing the
/// repetitions (docs/METHODOLOGY.md, "Repetitions and the per-sample value"). Run it on an
/// otherwise idle machine:
/// `cargo test --release --test kernels -- --ignored --nocapture invocation_durations`.
#[test]
#[ignore = "a measurement, not a check; prints the median durations per span"]
fn invocation_durations() {
    let hz = tsc_hz();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let runs: Vec<(Profile, Span, usize)> = vec![
        (Profile::Quick, Span::Short, 15),
        (Profile::Quick, Span::CfsSafe, 7),
        (Profile::Full, Span::Short, 3),
        (Profile::Full, Span::CfsSafe, 3),
    ];
    for (profile, span, n) in runs {
        let sizing = Sizing { profile, span };
        for w in catalogue() {
            if profile == Profile::Full && repetition_records(w.name, &[0; PARAM_COUNT]).is_none() {
                continue;
            }
            let p = (w.prepare)(sizing, SEED);
            let dir = tempfile::tempdir().expect("tempdir");
            let mut env = Native::new("native");
            env.start(&spec(dir.path(), p.work_bytes, p.disk_bytes))
                .expect("start");
            let (mut timed, mut wall, mut rep) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..n {
                let raw = env.invoke(&p.invocation).expect("invoke");
                (w.interpret)(&p, &raw, hz).unwrap_or_else(|e| panic!("{e}"));
                timed.push(raw.cycles as f64 / hz * 1e3);
                wall.push(raw.wall_ns as f64 / 1e6);
                if let Some(r) = repetition_records(w.name, &p.invocation.params) {
                    rep.push(raw.cycles as f64 / hz * 1e3 / r as f64);
                }
            }
            let per_rep = if rep.is_empty() {
                "—".to_string()
            } else {
                format!("{:.3} ms", median(rep))
            };
            let min = timed.iter().copied().fold(f64::INFINITY, f64::min);
            eprintln!(
                "{profile:?} {span:?} {:<12} timed {:>7.1} ms (min {:>7.1})  wall {:>7.1} ms  mean repetition {per_rep}",
                w.name,
                median(timed),
                min,
                median(wall)
            );
            env.stop().expect("stop");
        }
    }
}
