//! Unit tests of `compare`: series, estimates, statuses, differences between runs.

use super::*;
use std::path::PathBuf;

#[test]
fn per_instance_facts_are_not_differences() {
    let env = |paths: &str, cpus: &str| crate::results::EnvRecord {
        label: "container".into(),
        facts: [
            ("instance.cgroup_paths".to_string(), paths.to_string()),
            ("cpus".to_string(), cpus.to_string()),
        ]
        .into(),
        ..Default::default()
    };
    let run = |e| RunFile {
        environments: vec![e],
        ..Default::default()
    };
    let a = run(env("/sys/fs/cgroup/cpu/isobench/isobench-1-0", "unlimited"));
    let b = run(env("/sys/fs/cgroup/cpu/isobench/isobench-2-0", "unlimited"));
    assert!(differences(&a, &b).is_empty());
    let c = run(env("/sys/fs/cgroup/cpu/isobench/isobench-3-0", "0.5"));
    let d = differences(&a, &c);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].what, "environment container cpus");
}

fn row(round: u32, env: &str, metric: &str, value: f64, better: &str) -> SampleRow {
    SampleRow {
        round,
        env: env.into(),
        workload: "w".into(),
        metric: metric.into(),
        value,
        unit: "u".into(),
        better: Better::parse(better),
        cycles: 0,
        wall_ns: 0,
    }
}

/// Rounds with a little deterministic jitter around `native` and `env` values.
fn run(native: f64, env: f64, better: &str) -> RunData {
    let mut samples = Vec::new();
    for r in 0..8u32 {
        let j = 1.0 + 0.002 * f64::from(r % 3) - 0.002;
        samples.push(row(r, "native", "m", native * j, better));
        samples.push(row(
            r,
            "vm",
            "m",
            env * j * (1.0 + 0.001 * f64::from(r % 2)),
            better,
        ));
        samples.push(row(r, "vm", "counter.exits", 7.0, ""));
    }
    RunData {
        run_json: PathBuf::from("run.json"),
        run: RunFile {
            outcome: Outcome::Complete,
            ..Default::default()
        },
        samples,
    }
}

fn status(c: &Comparison, env: &str) -> (Status, f64) {
    let r = c.rows.iter().find(|r| r.env == env).unwrap();
    (
        r.status,
        r.change.as_ref().map(|c| c.relative).unwrap_or(f64::NAN),
    )
}

#[test]
fn throughput_drop_in_env_is_an_overhead_regression() {
    let b = run(100.0, 90.0, "higher");
    let c = run(100.0, 80.0, "higher");
    let cmp = compare(&b, &c, &Options::default());
    let (s, rel) = status(&cmp, "vm");
    assert_eq!(s, Status::Regressed);
    assert!((rel - (90.0 / 80.0 - 1.0)).abs() < 0.01, "{rel}");
    assert_eq!(status(&cmp, "native").0, Status::Unchanged);
    assert!(cmp.rows.iter().all(|r| !r.metric.starts_with("counter.")));
    let vm = cmp.rows.iter().find(|r| r.env == "vm").unwrap();
    assert_eq!(vm.quantity, Quantity::Overhead);
    assert!((vm.current.as_ref().unwrap().estimate - 1.25).abs() < 0.01);
}

#[test]
fn latency_going_up_is_a_regression_and_down_an_improvement() {
    let b = run(10.0, 10.0, "lower");
    let up = run(12.0, 12.0, "lower");
    let cmp = compare(&b, &up, &Options::default());
    assert_eq!(status(&cmp, "native").0, Status::Regressed);
    // Native and vm both rose: the overhead did not change.
    assert_eq!(status(&cmp, "vm").0, Status::Unchanged);
    let cmp = compare(&up, &b, &Options::default());
    assert_eq!(status(&cmp, "native").0, Status::Improved);
}

#[test]
fn threshold_gates_significant_changes() {
    let b = run(100.0, 100.0, "higher");
    let c = run(97.0, 97.0, "higher");
    let cmp = compare(&b, &c, &Options::default());
    let (s, rel) = status(&cmp, "native");
    assert_eq!(s, Status::Unchanged, "3% is under the 5% threshold");
    assert!(cmp.rows[0].change.as_ref().unwrap().test.p_value < 0.01);
    assert!((rel - 0.0309).abs() < 0.002, "{rel}");
    let opts = Options {
        thresholds: Thresholds::uniform(0.02),
        ..Options::default()
    };
    assert_eq!(
        status(&compare(&b, &c, &opts), "native").0,
        Status::Regressed
    );
}

#[test]
fn missing_native_compares_values() {
    let b = run(100.0, 90.0, "higher");
    let mut c = run(100.0, 90.0, "higher");
    c.samples.retain(|s| s.env != "native");
    let cmp = compare(&b, &c, &Options::default());
    let st: Vec<(String, Quantity, Status)> = cmp
        .rows
        .iter()
        .map(|r| (r.env.clone(), r.quantity, r.status))
        .collect();
    assert_eq!(
        st,
        vec![
            ("native".into(), Quantity::Value, Status::Missing),
            ("vm".into(), Quantity::Overhead, Status::Missing),
            ("vm".into(), Quantity::Value, Status::New),
        ]
    );
    assert!(cmp.warnings.iter().any(|w| w.contains("missing")));
}

#[test]
fn few_rounds_are_flagged() {
    let mut b = run(100.0, 90.0, "higher");
    let mut c = run(50.0, 45.0, "higher");
    b.samples.retain(|s| s.round < 3);
    c.samples.retain(|s| s.round < 3);
    let cmp = compare(&b, &c, &Options::default());
    assert_eq!(status(&cmp, "native").0, Status::Unchanged);
    assert!(
        cmp.warnings.iter().any(|w| w.contains("at least 5 rounds")),
        "{:?}",
        cmp.warnings
    );
}

#[test]
fn differences_are_named() {
    let mut b = run(1.0, 1.0, "higher").run;
    b.host.kernel = "6.1".into();
    b.config
        .options
        .insert("container.cpus".into(), "0.5".into());
    let mut c = b.clone();
    c.host.kernel = "6.8".into();
    c.config
        .options
        .insert("container.cpus".into(), "unlimited".into());
    c.host.hostname = "other".into();
    let d = differences(&b, &c);
    let what: Vec<&str> = d.iter().map(|d| d.what.as_str()).collect();
    assert_eq!(what, ["kernel", "option container.cpus"]);
}
