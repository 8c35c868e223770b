//! Unit tests of the fleet merge: pooling identical and spread hosts, refusing mixed runs,
//! and reading runs from directories and tarballs.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::results::{
    write_atomic, HostFacts, ImageFacts, Outcome, RunFile, SampleRow, SampleSink, SamplesWriter,
    RUN_JSON, SAMPLES_CSV, SCHEMA_VERSION,
};
use crate::stats::Better;

const OPTIONS: MergeOptions = MergeOptions {
    margin: 0.01,
    allow_mixed: false,
    resamples: 2000,
};

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    use rand::Rng;
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let v: f64 = rng.gen_range(0.0..1.0);
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

fn sample(round: u32, env: &str, value: f64) -> SampleRow {
    SampleRow {
        round,
        env: env.into(),
        workload: "cpu.int".into(),
        metric: "hash".into(),
        value,
        unit: "MB/s".into(),
        better: Some(Better::Higher),
        cycles: 1,
        wall_ns: 1_000_000,
    }
}

/// A host whose container is `overhead` slower than native (a throughput), measured over
/// `rounds` blocks with relative noise `noise` (seeded).
fn host(name: &str, overhead: f64, noise: f64, rounds: u32, seed: u64) -> HostRun {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut samples = Vec::new();
    for r in 0..rounds {
        let base = 1000.0 * (1.0 + 0.01 * normal(&mut rng));
        samples.push(sample(r, "native", base));
        samples.push(sample(
            r,
            "native-b",
            base * (1.0 + noise * normal(&mut rng)),
        ));
        samples.push(sample(
            r,
            "container",
            base / (1.0 + overhead) * (1.0 + noise * normal(&mut rng)),
        ));
    }
    HostRun {
        source: name.into(),
        data: RunData {
            run_json: PathBuf::from(format!("{name}/run.json")),
            run: run_file(name, "abc"),
            samples,
        },
    }
}

fn run_file(name: &str, image: &str) -> RunFile {
    let mut run = RunFile {
        schema_version: SCHEMA_VERSION,
        isobench_version: "0.1.0".into(),
        run_id: format!("run-{name}"),
        outcome: Outcome::Complete,
        host: HostFacts {
            hostname: name.into(),
            cpu_model: "Test CPU".into(),
            kernel: "6.1.0".into(),
            kvm_flavour: "kvm_pvm".into(),
            cgroup_version: "hybrid".into(),
            ..Default::default()
        },
        image: ImageFacts {
            sha256: image.into(),
            ..Default::default()
        },
        ..Default::default()
    };
    run.config.seed = 7;
    run.labels.insert("pool".into(), name.into());
    run
}

fn row<'a>(fleet: &'a Fleet, env: &str) -> &'a FleetRow {
    fleet
        .rows
        .iter()
        .find(|r| r.env == env && r.label() == "cpu.int/hash")
        .unwrap()
}

#[test]
fn identical_hosts_pool_to_the_host_estimate() {
    let one = host("a", 0.03, 0.005, 20, 1);
    let mut runs: Vec<HostRun> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            let mut h = one.clone();
            h.source = n.to_string();
            h.data.run.run_id = format!("run-{n}");
            h
        })
        .collect();
    let fleet = merge(&runs, &OPTIONS).unwrap();
    let r = row(&fleet, "container");
    assert_eq!(r.hosts.len(), 3);
    let h = &r.hosts[0];
    let p = r.pooled.as_ref().unwrap();
    assert!((p.estimate - h.estimate).abs() < 1e-12, "{p:?} vs {h:?}");
    assert!(p.i2.abs() < 1e-12 && p.tau.abs() < 1e-12, "{p:?}");
    // Three hosts divide the standard error by √3, and Hartung–Knapp's t with 2 degrees of
    // freedom (4.303 against 1.960) widens it again: on the log scale the pooled interval is
    // 4.303 / (1.960 · √3) = 1.27 times a host's.
    let log_w = |lo: f64, hi: f64| hi.ln_1p() - lo.ln_1p();
    let ratio = log_w(p.ci95_low, p.ci95_high) / log_w(h.ci95_low, h.ci95_high);
    let expected = 4.302_652_73 / (1.959_963_98 * 3f64.sqrt());
    assert!((ratio - expected).abs() < 1e-6, "{ratio} vs {expected}");
    assert_eq!(p.verdict, "above +1%");
    assert!(r.headline);
    assert_eq!(
        fleet.hosts[1].name, "a pool=a",
        "hostname and labels name a host"
    );
    assert!(fleet.differences.is_empty());
    // The same run twice is one host, not two.
    runs[2].data.run.run_id = "run-a".into();
    let e = merge(&runs, &OPTIONS).unwrap_err().to_string();
    assert!(e.contains("a and c are the same run (run-a on a)"), "{e}");
}

#[test]
fn hosts_with_a_known_spread_recover_tau() {
    // 30 hosts whose container overheads spread with τ = 4% around 5%, each measured
    // precisely (40 blocks, 0.3% noise): the pool recovers τ and I² is near 1.
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let runs: Vec<HostRun> = (0..30)
        .map(|i| {
            let truth = (0.05f64.ln_1p() + 0.04 * normal(&mut rng)).exp_m1();
            host(&format!("h{i}"), truth, 0.003, 40, 1000 + i)
        })
        .collect();
    let fleet = merge(&runs, &OPTIONS).unwrap();
    let p = row(&fleet, "container").pooled.clone().unwrap();
    assert!((p.tau - 0.04).abs() < 0.015, "τ {}", p.tau);
    assert!((p.estimate - 0.05).abs() < 0.025, "μ {}", p.estimate);
    assert!(p.i2 > 0.9, "I² {}", p.i2);
    // The A/A floor has no between-host spread.
    let aa = row(&fleet, "native-b").pooled.clone().unwrap();
    assert!(aa.i2 < 0.5 && aa.tau < 0.005, "{aa:?}");
}

#[test]
fn mixed_images_are_refused_unless_allowed() {
    let a = host("a", 0.0, 0.005, 10, 1);
    let mut b = host("b", 0.0, 0.005, 10, 2);
    b.data.run.image.sha256 = "def".into();
    b.data.run.isobench_version = "0.2.0".into();
    let runs = [a, b];
    let err = merge(&runs, &OPTIONS).unwrap_err().to_string();
    assert!(
        err.contains("image differs: sha256 abc (a) vs sha256 def (b)"),
        "{err}"
    );
    assert!(err.contains("isobench version differs"), "{err}");
    assert!(err.contains("--allow-mixed"), "{err}");
    let allowed = MergeOptions {
        allow_mixed: true,
        ..OPTIONS
    };
    let fleet = merge(&runs, &allowed).unwrap();
    assert_eq!(fleet.differences.len(), 2, "{:?}", fleet.differences);
    assert!(row(&fleet, "container").pooled.is_some());
}

#[test]
fn fleet_verdicts_follow_the_run_rules() {
    let i = |low, high| Interval { low, high };
    assert_eq!(
        fleet_verdict(i(-0.005, 0.005), i(-0.02, 0.02), 0.01),
        Verdict::Within
    );
    assert_eq!(
        fleet_verdict(i(0.02, 0.03), i(0.015, 0.035), 0.01),
        Verdict::Above
    );
    assert_eq!(
        fleet_verdict(i(-0.03, -0.02), i(-0.035, -0.015), 0.01),
        Verdict::Below
    );
    assert_eq!(
        fleet_verdict(i(0.0, 0.02), i(-0.01, 0.03), 0.01).key(),
        "inconclusive"
    );
}

/// Stores `h` as a run directory under `dir`.
fn store(h: &HostRun, dir: &Path) -> PathBuf {
    let d = dir.join(&h.data.run.run_id);
    std::fs::create_dir_all(&d).unwrap();
    write_atomic(&d.join(RUN_JSON), &serde_json::to_vec(&h.data.run).unwrap()).unwrap();
    let mut w = SamplesWriter::create(&d.join(SAMPLES_CSV)).unwrap();
    w.round_done(&h.data.samples).unwrap();
    d
}

#[test]
fn runs_travel_as_tarballs_and_directories() {
    let t = tempfile::tempdir().unwrap();
    let results = t.path().join("results");
    let a = store(&host("a", 0.02, 0.005, 8, 1), &results);
    store(&host("b", 0.02, 0.005, 8, 2), &results);
    std::os::unix::fs::symlink(&a, results.join("latest")).unwrap();
    let c_dir = store(&host("c", 0.02, 0.005, 8, 3), &t.path().join("elsewhere"));
    let tarball = t.path().join("c.tar.gz");
    pack(&c_dir, std::fs::File::create(&tarball).unwrap()).unwrap();

    let hosts = t.path().join("out/hosts");
    let runs = collect_runs(&[results.clone(), tarball.clone()], &hosts).unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.data.run.run_id.as_str()).collect();
    assert_eq!(ids, ["run-a", "run-b", "run-c"], "latest is skipped");
    assert_eq!(runs[2].data.samples.len(), 24);
    assert!(hosts.join("000/run.json").is_file());
    assert!(hosts.join("002/run-c/samples.csv").is_file());

    let fleet = merge(&runs, &OPTIONS).unwrap();
    let out = t.path().join("out");
    let files = render::write_fleet(&fleet, &runs, &out).unwrap();
    for name in [
        "fleet.md",
        "fleet.html",
        "fleet.csv",
        "fleet.json",
        "run.json",
    ] {
        assert!(files.contains(&out.join(name)), "{name} in {files:?}");
    }
    assert!(out.join("plots/forest-cpu.int-hash.svg").is_file());
    let md = std::fs::read_to_string(out.join("fleet.md")).unwrap();
    assert!(md.contains("| cpu.int/hash | container |"), "{md}");
    assert!(md.contains("a pool=a"), "{md}");
    // The fleet directory is a run: 3 hosts × 8 blocks, pairs within a host.
    let as_run = crate::results::load_run(&out).unwrap();
    assert_eq!(as_run.samples.len(), 72);
    let rounds: std::collections::BTreeSet<u32> = as_run.samples.iter().map(|s| s.round).collect();
    assert_eq!(rounds.len(), 24);
    assert_eq!(as_run.run.labels["fleet.hosts"], "3");
}

#[test]
fn bad_inputs_are_named() {
    let t = tempfile::tempdir().unwrap();
    let e = collect_runs(&[t.path().join("nope")], &t.path().join("h"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not exist"), "{e}");
    let e = collect_runs(&[t.path().to_path_buf()], &t.path().join("h"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds no run"), "{e}");
    let bogus = t.path().join("x.tar.gz");
    std::fs::write(&bogus, [0x1f, 0x8b, 0, 1, 2, 3]).unwrap();
    let e = collect_runs(&[bogus], &t.path().join("h"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not a readable tarball") && e.contains("isobench pack"),
        "{e}"
    );
    let e = pack(t.path(), Vec::new()).unwrap_err().to_string();
    assert!(e.contains("has no run.json"), "{e}");
}
