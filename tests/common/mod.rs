//! Synthetic runs for the statistics and report tests: log-normal samples with known
//! effects per environment, built from a seeded RNG (no real workloads).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use isobench::results::{
    EnvKind, EnvRecord, EnvStatus, HostFacts, ImageFacts, Outcome, RunConfig, RunFile, SampleRow,
    SCHEMA_VERSION,
};
use isobench::stats::Better;
use isobench::workload::Profile;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr_free::normal;

/// Box–Muller normal draws (rand 0.8 has no distributions without rand_distr).
pub mod rand_distr_free {
    use rand::Rng;

    pub fn normal(rng: &mut impl Rng) -> f64 {
        let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
        let u2: f64 = rng.gen();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// One metric of the synthetic catalogue.
pub struct MetricSpec {
    pub workload: &'static str,
    pub metric: String,
    pub unit: &'static str,
    pub better: &'static str,
    pub native: f64,
    /// Relative noise (sd of the log).
    pub noise: f64,
}

fn m(
    workload: &'static str,
    metric: &str,
    unit: &'static str,
    better: &'static str,
    native: f64,
    noise: f64,
) -> MetricSpec {
    MetricSpec {
        workload,
        metric: metric.to_string(),
        unit,
        better,
        native,
        noise,
    }
}

/// The quick catalogue's metrics, with plausible native values.
pub fn catalogue() -> Vec<MetricSpec> {
    let mut v = vec![
        m("cpu.int", "hash", "MB/s", "higher", 5200.0, 0.004),
        m("cpu.fp", "gflops", "GFLOP/s", "higher", 9.8, 0.006),
        m("mem.stream", "copy", "GB/s", "higher", 11.2, 0.01),
        m("mem.stream", "triad", "GB/s", "higher", 12.1, 0.01),
        m("mem.random", "gups", "GUPS", "higher", 0.052, 0.02),
    ];
    for kib in [16u64, 64, 256, 1024, 4096, 16384, 65536, 262144] {
        let size = if kib >= 1024 {
            format!("{}MiB", kib / 1024)
        } else {
            format!("{kib}KiB")
        };
        let ns =
            1.2 + 90.0 * (kib as f64).ln() / (262144f64).ln() * ((kib as f64) / 262144.0).powf(0.3);
        v.push(m(
            "mem.latency",
            &format!("ns_per_access@{size}"),
            "ns",
            "lower",
            ns,
            0.01,
        ));
    }
    v.push(m("mem.touch", "first_touch", "ms", "lower", 800.0, 0.03));
    v.push(m("io.seq", "write", "MB/s", "higher", 900.0, 0.03));
    v.push(m("io.seq", "read", "MB/s", "higher", 2400.0, 0.02));
    v.push(m("io.rand", "read_iops", "IOPS", "higher", 41000.0, 0.03));
    for (p, us) in [
        ("50", 18.0),
        ("90", 31.0),
        ("99", 70.0),
        ("99.9", 240.0),
        ("99.99", 900.0),
    ] {
        v.push(m(
            "io.rand",
            &format!("read_p{p}_us"),
            "µs",
            "lower",
            us,
            0.05,
        ));
    }
    v.push(m("sys.call", "ns_per_call", "ns", "lower", 95.0, 0.01));
    v.push(m("start", "start_us", "µs", "lower", 650.0, 0.04));
    v
}

/// True overhead (fraction, + = worse) of `env` on `spec`.
pub fn effect(env: &str, spec: &MetricSpec) -> f64 {
    match (env, spec.workload) {
        ("native" | "native-b", _) => 0.0,
        ("container", "io.seq" | "io.rand") => 0.06,
        ("container", "start") => 7.0,
        ("container", "mem.random") => 0.012,
        ("container", _) => 0.0,
        ("vm", "sys.call") => 600.0,
        ("vm", "start") => 40.0,
        ("vm", "mem.touch") => 4.25,
        ("vm", "mem.random") => 0.18,
        ("vm", "mem.latency") => 0.03,
        ("vm", "io.seq" | "io.rand") => 1.5,
        ("vm", "cpu.fp") => -0.02,
        ("vm", _) => 0.004,
        _ => 0.0,
    }
}

/// Samples of `rounds` rounds for `envs` over `specs`, with a per-round shared drift
/// factor (what pairing cancels) and per-sample log-normal noise.
pub fn synthetic_samples(
    specs: &[MetricSpec],
    envs: &[&str],
    rounds: u32,
    seed: u64,
) -> Vec<SampleRow> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows = Vec::new();
    for round in 0..rounds {
        let drift = 0.01 * normal(&mut rng);
        for env in envs {
            for spec in specs {
                let slower =
                    (1.0 + effect(env, spec)) * (spec.noise * normal(&mut rng) + drift).exp();
                let value = if spec.better == "higher" {
                    spec.native / slower
                } else {
                    spec.native * slower
                };
                rows.push(SampleRow {
                    round,
                    env: env.to_string(),
                    workload: spec.workload.into(),
                    metric: spec.metric.clone(),
                    value,
                    unit: spec.unit.into(),
                    better: better(spec.better),
                    cycles: (value * 1000.0) as u64,
                    wall_ns: 1_000_000 + u64::from(round),
                });
            }
            rows.push(SampleRow {
                round,
                env: env.to_string(),
                workload: "sys.call".into(),
                metric: "counter.exits".into(),
                value: if *env == "vm" { 1000.0 } else { 0.0 },
                unit: "".into(),
                better: None,
                cycles: 0,
                wall_ns: 0,
            });
        }
    }
    rows
}

/// The `better` column's word as the typed direction (`None` for anything else).
pub fn better(word: &str) -> Option<Better> {
    Better::parse(word)
}

/// The kind of a synthetic environment label.
fn kind(label: &str) -> EnvKind {
    if label.starts_with("native") {
        EnvKind::Native
    } else {
        EnvKind::from_name(label).expect("a synthetic environment is native, container or vm")
    }
}

/// A run.json to go with the synthetic samples.
pub fn synthetic_run(envs: &[&str], rounds: u32, seed: u64) -> RunFile {
    let sha = "ab".repeat(32);
    let mut environments: Vec<EnvRecord> = envs
        .iter()
        .map(|e| EnvRecord {
            label: e.to_string(),
            kind: kind(e),
            status: EnvStatus::Ran,
            reason: None,
            image_sha256: sha.clone(),
            facts: BTreeMap::from([("cpus".to_string(), "2".to_string())]),
        })
        .collect();
    if !envs.contains(&"vm") {
        environments.push(EnvRecord {
            label: "vm".into(),
            kind: EnvKind::Vm,
            status: EnvStatus::Skipped,
            reason: Some("/dev/kvm not accessible".into()),
            image_sha256: String::new(),
            facts: BTreeMap::new(),
        });
    }
    RunFile {
        schema_version: SCHEMA_VERSION,
        isobench_version: "0.1.0".into(),
        git_commit: "0123456".into(),
        run_id: "synthetic".into(),
        started_at: "2025-01-01T00:00:00Z".into(),
        finished_at: Some("2025-01-01T00:10:00Z".into()),
        outcome: Outcome::Complete,
        host: HostFacts {
            hostname: "testhost".into(),
            cpu_model: "Synthetic CPU".into(),
            cores: 2,
            memory_bytes: 24 << 30,
            kernel: "6.1.0".into(),
            kvm_flavour: "kvm_pvm".into(),
            virtualized: true,
            cgroup_version: "hybrid".into(),
            thp: "madvise".into(),
            clocksource: "tsc".into(),
            tsc_hz: 2.5e9,
            tsc_source: "calibrated".into(),
            free_page_reporting: false,
        },
        config: RunConfig {
            environments: {
                let mut kinds: Vec<EnvKind> = envs.iter().map(|e| kind(e)).collect();
                kinds.dedup();
                kinds
            },
            workloads: vec!["cpu.int".into()],
            profile: Profile::Quick,
            rounds,
            warmup: 2,
            seed,
            scratch: "/tmp/isobench".into(),
            command_line: vec!["isobench".into(), "run".into(), "--quick".into()],
            options: BTreeMap::new(),
        },
        image: ImageFacts {
            sha256: sha,
            size_bytes: 12345,
            load_address: "0x400000".into(),
        },
        environments,
        summaries: Vec::new(),
        warnings: Vec::new(),
        measurement: None,
        labels: BTreeMap::new(),
        failures: Vec::new(),
    }
}

/// Writes `run.json` and `samples.csv` into `dir`, as a run would.
pub fn store_run(dir: &Path, run: &RunFile, samples: &[SampleRow]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("run.json"),
        serde_json::to_vec_pretty(run).unwrap(),
    )
    .unwrap();
    let mut w = csv::Writer::from_path(dir.join("samples.csv")).unwrap();
    for s in samples {
        w.serialize(s).unwrap();
    }
    w.flush().unwrap();
}
