//! The round protocol against fake environments: ordering, warm-up, errors, interruption.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use isobench::env::fake::Fake;
use isobench::env::{EnvError, EnvKind, Environment, InstanceSpec, RawRun};
use isobench::measure::{run_rounds, Ended, MeasureError, NoProgress, Protocol};
use isobench::results::SampleRow;
use isobench::workload::{self, Expected, Profile};

fn spec() -> InstanceSpec {
    InstanceSpec {
        work_size: 0,
        disk_size: 0,
        scratch: "/nonexistent".into(),
        deadline: Duration::from_secs(1),
        thp: false,
        cpu: None,
    }
}

/// A fake that answers cpu.int with the right checksum and `cycles` cycles.
fn fake(label: &str, cycles: u64, expected: u64) -> Box<dyn Environment> {
    let mut f = Fake::new(
        label,
        EnvKind::Native,
        Box::new(move |_, _| {
            Ok(RawRun {
                checksum: expected,
                cycles,
                wall_ns: cycles,
                ..Default::default()
            })
        }),
    );
    f.start(&spec()).unwrap();
    Box::new(f)
}

fn cpu_int() -> Vec<(&'static workload::Workload, workload::Prepared)> {
    let w = workload::by_name("cpu.int").unwrap();
    vec![(w, (w.prepare)(Profile::Quick, 1))]
}

fn expected(p: &[(&'static workload::Workload, workload::Prepared)]) -> u64 {
    match p[0].1.expected {
        Expected::Exact(e) => e,
        other => panic!("cpu.int has an exact checksum, got {other:?}"),
    }
}

#[test]
fn rounds_record_every_pair_and_skip_warmup() {
    let wl = cpu_int();
    let sp = spec();
    let mut envs = vec![
        fake("native", 1000, expected(&wl)),
        fake("native-b", 1100, expected(&wl)),
    ];
    let p = Protocol {
        workloads: &wl,
        start: true,
        rounds: 3,
        warmup: 2,
        seed: 5,
        tsc_hz: 1e9,
        spec: &sp,
    };
    let mut rows: Vec<SampleRow> = Vec::new();
    let ended = run_rounds(
        &mut envs,
        &p,
        &mut rows,
        &mut NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(ended, Ended::Complete);
    let perf: Vec<&SampleRow> = rows.iter().filter(|r| !r.is_counter()).collect();
    // 3 rounds × 2 envs × (cpu.int hash + start_us)
    assert_eq!(perf.len(), 12);
    assert!(perf.iter().all(|r| r.round < 3));
    let hash_native: Vec<f64> = perf
        .iter()
        .filter(|r| r.env == "native" && r.metric == "hash")
        .map(|r| r.value)
        .collect();
    let hash_b: Vec<f64> = perf
        .iter()
        .filter(|r| r.env == "native-b" && r.metric == "hash")
        .map(|r| r.value)
        .collect();
    assert!(
        hash_native[0] > hash_b[0],
        "fewer cycles for the same bytes is more MB/s"
    );
    assert!(perf.iter().any(|r| r.workload == "start" && r.unit == "µs"));
}

#[test]
fn a_wrong_checksum_stops_the_run_naming_env_and_workload() {
    let wl = cpu_int();
    let sp = spec();
    let good = expected(&wl);
    let mut envs = vec![fake("native", 1000, good), fake("vm", 1000, good ^ 1)];
    let p = Protocol {
        workloads: &wl,
        start: false,
        rounds: 2,
        warmup: 0,
        seed: 1,
        tsc_hz: 1e9,
        spec: &sp,
    };
    let mut rows: Vec<SampleRow> = Vec::new();
    let err = run_rounds(
        &mut envs,
        &p,
        &mut rows,
        &mut NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(matches!(err, MeasureError::Checksum { .. }));
    let msg = format!("{err:#}");
    assert!(
        msg.contains("vm") && msg.contains("cpu.int") && msg.contains("checksum"),
        "{msg}"
    );
}

#[test]
fn an_environment_error_is_returned_after_completed_rounds_were_kept() {
    let wl = cpu_int();
    let sp = spec();
    let good = expected(&wl);
    let mut crashing = Fake::new(
        "container",
        EnvKind::Container,
        Box::new(move |n, inv| {
            if n <= 2 {
                Ok(RawRun {
                    checksum: good,
                    cycles: 10,
                    ..Default::default()
                })
            } else {
                Err(EnvError::Crashed {
                    env: "container".into(),
                    workload: inv.name.into(),
                    detail: "killed by SIGSEGV".into(),
                })
            }
        }),
    );
    crashing.start(&sp).unwrap();
    let mut envs: Vec<Box<dyn Environment>> = vec![Box::new(crashing)];
    let p = Protocol {
        workloads: &wl,
        start: false,
        rounds: 5,
        warmup: 0,
        seed: 1,
        tsc_hz: 1e9,
        spec: &sp,
    };
    let mut rows: Vec<SampleRow> = Vec::new();
    let err = run_rounds(
        &mut envs,
        &p,
        &mut rows,
        &mut NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(format!("{err}").contains("SIGSEGV"));
    assert_eq!(
        rows.iter().filter(|r| !r.is_counter()).count(),
        2,
        "the two completed rounds were handed to the sink"
    );
}

#[test]
fn an_interruption_ends_the_loop_cleanly() {
    let wl = cpu_int();
    let sp = spec();
    let mut envs = vec![fake("native", 1000, expected(&wl))];
    let p = Protocol {
        workloads: &wl,
        start: false,
        rounds: 5,
        warmup: 0,
        seed: 1,
        tsc_hz: 1e9,
        spec: &sp,
    };
    let mut rows: Vec<SampleRow> = Vec::new();
    let ended = run_rounds(
        &mut envs,
        &p,
        &mut rows,
        &mut NoProgress,
        &AtomicBool::new(true),
    )
    .unwrap();
    assert_eq!(ended, Ended::Interrupted { rounds_done: 0 });
    assert!(rows.is_empty());
}
