//! The block protocol against fake environments: blocks, warm-up, balanced order, the
//! budget design's stopping, an injected slowdown found, errors, interruption.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use isobench::analysis::{analyze, AnalysisConfig};
use isobench::env::fake::Fake;
use isobench::env::{EnvError, EnvKind, Environment, InstanceSpec, Invocation, RawRun};
use isobench::measure::{run, Design, Ended, MeasureError, NoProgress, Protocol, Stop};
use isobench::results::SampleRow;
use isobench::stats::sequential::StoppingRule;
use isobench::stats::summary::Estimator;
use isobench::stats::verdict::Verdict;
use isobench::workload::{self, Expected, Profile, Sizing, Span};

fn spec() -> InstanceSpec {
    InstanceSpec {
        work_size: 0,
        disk_size: 0,
        scratch: "/nonexistent".into(),
        deadline: Duration::from_secs(1),
        thp: false,
        cpu: None,
        threads: 1,
        thread_cpus: Vec::new(),
    }
}

/// Run the protocol to its end, uninterrupted, with no progress display.
fn measure_all(
    envs: &mut [Box<dyn Environment>],
    p: &Protocol,
    rows: &mut Vec<SampleRow>,
) -> Result<isobench::measure::Outcome, MeasureError> {
    run(envs, p, rows, &mut NoProgress, &AtomicBool::new(false))
}

fn protocol<'a>(
    wl: &'a [(&'static workload::Workload, workload::Prepared)],
    sp: &'a InstanceSpec,
    start: bool,
    design: Design,
    warmup: u32,
) -> Protocol<'a> {
    Protocol {
        workloads: wl,
        profile: Profile::Quick,
        start,
        design,
        warmup,
        seed: 5,
        tsc_hz: 1e9,
        spec: sp,
        margin: 0.01,
        estimator: Estimator::BLOCKS_DEFAULT,
        inject: None,
        command: None,
        keep_going: false,
    }
}

/// cpu.int's raw output: `checksum`, and `cycles` cycles per repetition in one record per
/// repetition, as many as the invocation asks for.
fn cpu_int_run(inv: &Invocation, checksum: u64, cycles: u64) -> RawRun {
    let reps = inv.params[3];
    RawRun {
        checksum,
        cycles: cycles * reps,
        records: vec![cycles; reps as usize],
        wall_ns: cycles * reps,
        ..Default::default()
    }
}

/// A fake that answers cpu.int with the right checksum and `cycles` cycles per repetition.
fn fake(label: &str, cycles: u64, expected: u64) -> Box<dyn Environment> {
    let mut f = Fake::new(
        label,
        EnvKind::Native,
        Box::new(move |_, inv| Ok(cpu_int_run(inv, expected, cycles))),
    );
    f.start(&spec()).unwrap();
    Box::new(f)
}

fn cpu_int() -> Vec<(&'static workload::Workload, workload::Prepared)> {
    let w = workload::by_name("cpu.int").unwrap();
    let sizing = Sizing {
        profile: Profile::Quick,
        span: Span::Short,
    };
    vec![(w, (w.prepare)(sizing, 1))]
}

fn expected(p: &[(&'static workload::Workload, workload::Prepared)]) -> u64 {
    match p[0].1.expected {
        Expected::Exact(e) => e,
        other => panic!("cpu.int has an exact checksum, got {other:?}"),
    }
}

#[test]
fn fixed_blocks_record_every_pair_and_skip_warmup() {
    let wl = cpu_int();
    let sp = spec();
    let mut envs = vec![
        fake("native", 1000, expected(&wl)),
        fake("native-b", 1100, expected(&wl)),
    ];
    let p = protocol(&wl, &sp, true, Design::Fixed { blocks: 3 }, 2);
    let mut rows: Vec<SampleRow> = Vec::new();
    let out = measure_all(&mut envs, &p, &mut rows).unwrap();
    assert_eq!(out.ended, Ended::Complete { stop: Stop::Fixed });
    assert_eq!(out.blocks, vec![("cpu.int".into(), 3), ("start".into(), 3)]);
    let perf: Vec<&SampleRow> = rows.iter().filter(|r| !r.is_counter()).collect();
    // 3 blocks × 2 envs × (cpu.int hash + hash.mean) + 3 blocks × 2 envs × start_us
    assert_eq!(perf.len(), 18);
    assert!(perf.iter().all(|r| r.round < 3));
    let hash = |env: &str| -> Vec<f64> {
        perf.iter()
            .filter(|r| r.env == env && r.metric == "hash")
            .map(|r| r.value)
            .collect()
    };
    assert!(
        hash("native")[0] > hash("native-b")[0],
        "fewer cycles for the same bytes is more MB/s"
    );
    assert!(perf.iter().any(|r| r.workload == "start" && r.unit == "µs"));
}

#[test]
fn every_environment_takes_every_position_equally_often() {
    let wl = cpu_int();
    let sp = spec();
    let good = expected(&wl);
    // Which environment ran, in call order, across all fakes.
    let calls: Rc<RefCell<Vec<&'static str>>> = Rc::default();
    let mut envs: Vec<Box<dyn Environment>> = ["native", "native-b", "container", "vm"]
        .into_iter()
        .map(|label| {
            let log = calls.clone();
            let mut f = Fake::new(
                label,
                EnvKind::Native,
                Box::new(move |_, inv| {
                    log.borrow_mut().push(label);
                    Ok(cpu_int_run(inv, good, 1000))
                }),
            );
            f.start(&sp).unwrap();
            Box::new(f) as Box<dyn Environment>
        })
        .collect();
    let p = protocol(&wl, &sp, false, Design::Fixed { blocks: 8 }, 0);
    let mut rows: Vec<SampleRow> = Vec::new();
    measure_all(&mut envs, &p, &mut rows).unwrap();
    let calls = calls.borrow();
    assert_eq!(calls.len(), 32);
    for (i, label) in ["native", "native-b", "container", "vm"].iter().enumerate() {
        let mut at = [0; 4];
        for (k, c) in calls.iter().enumerate() {
            if c == label {
                at[k % 4] += 1;
            }
        }
        assert_eq!(at, [2, 2, 2, 2], "env {i} ({label}) by position: {at:?}");
    }
    // A block is the workload once in every environment, back to back.
    for block in calls.chunks(4) {
        let mut b = block.to_vec();
        b.sort();
        assert_eq!(b, ["container", "native", "native-b", "vm"]);
    }
}

fn budget(budget: Duration, target: f64, min_n: usize) -> Design {
    Design::Budget {
        budget,
        rule: StoppingRule {
            target_half_width: target,
            min_n,
        },
        min_blocks: 5,
        one_operation_blocks: 3,
    }
}

/// A fake whose repetitions take `cycles` × (1 + noise), the noise from `seed`.
fn noisy(label: &str, cycles: u64, expected: u64, noise: f64, seed: u64) -> Box<dyn Environment> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut f = Fake::new(
        label,
        EnvKind::Native,
        Box::new(move |_, inv| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let c = (cycles as f64 * (1.0 + 2.0 * noise * u)) as u64;
            Ok(cpu_int_run(inv, expected, c))
        }),
    );
    f.start(&spec()).unwrap();
    Box::new(f)
}

#[test]
fn a_budget_stops_early_once_every_estimate_is_precise() {
    let wl = cpu_int();
    let sp = spec();
    let good = expected(&wl);
    let mut envs = vec![
        noisy("native", 1000, good, 0.001, 1),
        noisy("native-b", 1000, good, 0.001, 2),
    ];
    let p = protocol(
        &wl,
        &sp,
        false,
        budget(Duration::from_secs(60), 0.01, 40),
        1,
    );
    let mut rows: Vec<SampleRow> = Vec::new();
    let out = measure_all(&mut envs, &p, &mut rows).unwrap();
    assert_eq!(
        out.ended,
        Ended::Complete {
            stop: Stop::Reached
        }
    );
    assert_eq!(
        out.blocks,
        vec![("cpu.int".into(), 40)],
        "min_n blocks, then done"
    );
    assert!(out.elapsed < Duration::from_secs(60));
}

#[test]
fn a_budget_that_runs_out_says_so() {
    let wl = cpu_int();
    let sp = spec();
    let good = expected(&wl);
    let mut envs = vec![
        noisy("native", 1000, good, 0.5, 1),
        noisy("native-b", 1000, good, 0.5, 2),
    ];
    let p = protocol(
        &wl,
        &sp,
        false,
        budget(Duration::from_millis(300), 0.0001, 10),
        0,
    );
    let mut rows: Vec<SampleRow> = Vec::new();
    let out = measure_all(&mut envs, &p, &mut rows).unwrap();
    assert_eq!(
        out.ended,
        Ended::Complete {
            stop: Stop::BudgetSpent
        }
    );
    assert!(out.blocks[0].1 >= 5, "the minimum blocks always run");
    assert!(out.elapsed >= Duration::from_millis(300));
}

#[test]
fn an_injected_two_percent_slowdown_is_found_above_a_one_percent_margin() {
    let wl = cpu_int();
    let sp = spec();
    let good = expected(&wl);
    let mut envs = vec![
        noisy("native", 1000, good, 0.02, 1),
        noisy("native-b", 1000, good, 0.02, 2),
        noisy("container", 1000, good, 0.02, 3),
    ];
    let mut p = protocol(
        &wl,
        &sp,
        false,
        budget(Duration::from_secs(60), 0.003, 100),
        1,
    );
    p.inject = Some(("container".into(), 0.02));
    let mut rows: Vec<SampleRow> = Vec::new();
    measure_all(&mut envs, &p, &mut rows).unwrap();
    let config = AnalysisConfig {
        estimator: Estimator::BLOCKS_DEFAULT,
        ..AnalysisConfig::new(5)
    };
    let a = analyze(&rows, config).unwrap();
    let hash = a.metrics.iter().find(|m| m.metric == "hash").unwrap();
    let c = hash.comparison("container").unwrap();
    assert_eq!(c.verdict, Verdict::Above, "{c:?}");
    let o = c.overhead.unwrap();
    assert!(o.ci95.low < 0.02 && 0.02 < o.ci95.high, "{o:?}");
    assert_eq!(
        hash.comparison("native-b").unwrap().verdict,
        Verdict::Within
    );
}

#[test]
fn a_wrong_checksum_stops_the_run_naming_env_and_workload() {
    let wl = cpu_int();
    let sp = spec();
    let good = expected(&wl);
    let mut envs = vec![fake("native", 1000, good), fake("vm", 1000, good ^ 1)];
    let p = protocol(&wl, &sp, false, Design::Fixed { blocks: 2 }, 0);
    let mut rows: Vec<SampleRow> = Vec::new();
    let err = measure_all(&mut envs, &p, &mut rows).unwrap_err();
    assert!(matches!(err, MeasureError::Checksum { .. }));
    let msg = format!("{err:#}");
    assert!(
        msg.contains("vm") && msg.contains("cpu.int") && msg.contains("checksum"),
        "{msg}"
    );
}

#[test]
fn an_environment_error_is_returned_after_completed_blocks_were_kept() {
    let wl = cpu_int();
    let sp = spec();
    let good = expected(&wl);
    let mut crashing = Fake::new(
        "container",
        EnvKind::Container,
        Box::new(move |n, inv| {
            if n <= 2 {
                Ok(cpu_int_run(inv, good, 10))
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
    let p = protocol(&wl, &sp, false, Design::Fixed { blocks: 5 }, 0);
    let mut rows: Vec<SampleRow> = Vec::new();
    let err = measure_all(&mut envs, &p, &mut rows).unwrap_err();
    assert!(format!("{err}").contains("SIGSEGV"));
    assert_eq!(
        rows.iter().filter(|r| r.metric == "hash").count(),
        2,
        "the two completed blocks were handed to the sink"
    );
}

#[test]
fn an_interruption_ends_the_loop_cleanly() {
    let wl = cpu_int();
    let sp = spec();
    let mut envs = vec![fake("native", 1000, expected(&wl))];
    let p = protocol(&wl, &sp, false, Design::Fixed { blocks: 5 }, 0);
    let mut rows: Vec<SampleRow> = Vec::new();
    let out = run(
        &mut envs,
        &p,
        &mut rows,
        &mut NoProgress,
        &AtomicBool::new(true),
    )
    .unwrap();
    assert_eq!(out.ended, Ended::Interrupted);
    assert!(rows.is_empty());
}

#[test]
fn with_keep_going_a_failed_task_is_dropped_and_the_others_finish() {
    let wl = cpu_int();
    let sp = spec();
    let good = expected(&wl);
    let mut crashing = Fake::new(
        "container",
        EnvKind::Container,
        Box::new(move |n, inv| {
            if n <= 2 {
                Ok(cpu_int_run(inv, good, 10))
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
    let mut envs: Vec<Box<dyn Environment>> = vec![fake("native", 10, good), Box::new(crashing)];
    // A budget design with a target never met: without the drop, cpu.int would be picked
    // until the budget is spent.
    let mut p = protocol(&wl, &sp, true, budget(Duration::from_secs(60), 1e-9, 2), 0);
    p.keep_going = true;
    let mut rows: Vec<SampleRow> = Vec::new();
    let t0 = std::time::Instant::now();
    let out = measure_all(&mut envs, &p, &mut rows).expect("the run goes on");
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "the dropped task is not picked again"
    );
    assert_eq!(
        out.ended,
        Ended::Complete {
            stop: Stop::Reached
        }
    );
    assert_eq!(out.failures.len(), 1, "{:?}", out.failures);
    assert_eq!(out.failures[0].workload, "cpu.int");
    assert_eq!(out.failures[0].env, "container");
    assert!(
        out.failures[0].error.contains("SIGSEGV"),
        "{:?}",
        out.failures
    );
    // Two complete blocks of cpu.int (both environments), the partial third not kept;
    // `start` took all its blocks after the failure.
    assert_eq!(out.blocks[0], ("cpu.int".into(), 2));
    assert_eq!(
        rows.iter().filter(|r| r.metric == "hash").count(),
        4,
        "2 blocks × 2 environments"
    );
    assert!(out.blocks[1].1 >= 5, "{:?}", out.blocks);
    assert_eq!(
        rows.iter().filter(|r| r.workload == "start").count() as u32,
        out.blocks[1].1 * 2
    );
}
