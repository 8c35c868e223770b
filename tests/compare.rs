//! Black-box tests of `isobench compare` and `isobench baseline` on synthetic result sets:
//! verdicts, thresholds, direction, bad input (exit 2), determinism and exit codes.

use std::path::{Path, PathBuf};
use std::process::Output;

use isobench::results::{Outcome, RunFile, SampleRow, SCHEMA_VERSION};
use isobench::stats::Better;
use isobench::workload::Profile;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod support;
use support::isobench;

/// (workload, metric, unit, better, native value, container value)
const METRICS: &[(&str, &str, &str, &str, f64, f64)] = &[
    ("cpu.int", "hash", "MB/s", "higher", 2500.0, 2450.0),
    ("io.seq", "read", "MB/s", "higher", 900.0, 700.0),
    ("start", "start_us", "µs", "lower", 250.0, 9000.0),
];
const ROUNDS: u32 = 8;

/// Changes applied to one synthetic run: multiply a (env, workload, metric) by a factor,
/// drop a workload, add one.
#[derive(Clone, Default)]
struct Spec {
    seed: u64,
    scale: Vec<(&'static str, &'static str, f64)>,
    drop_workload: Option<&'static str>,
    add_mem_stream: bool,
    kernel: Option<&'static str>,
}

fn run_file(id: &str, kernel: &str) -> RunFile {
    let mut run = RunFile {
        schema_version: SCHEMA_VERSION,
        isobench_version: "0.1.0".into(),
        git_commit: "abc".into(),
        run_id: id.into(),
        started_at: "2025-01-01T00:00:00+00:00".into(),
        outcome: Outcome::Complete,
        ..Default::default()
    };
    run.host.hostname = "ci".into();
    run.host.cpu_model = "Test CPU".into();
    run.host.kernel = kernel.into();
    run.host.kvm_flavour = "kvm_pvm".into();
    run.host.cgroup_version = "hybrid".into();
    run.config.profile = Profile::Quick;
    run.config.rounds = ROUNDS;
    run.image.sha256 = "00ff".into();
    run
}

/// Write a run directory `dir` from `spec`: 8 rounds of native, native-b and container,
/// with 0.2% multiplicative noise (seeded), plus counters.
fn write_run(dir: &Path, spec: &Spec) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    let run = run_file(&id, spec.kernel.unwrap_or("6.1.0"));
    std::fs::write(
        dir.join("run.json"),
        serde_json::to_vec_pretty(&run).unwrap(),
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut w = csv::Writer::from_path(dir.join("samples.csv")).unwrap();
    let mut metrics: Vec<_> = METRICS.to_vec();
    if spec.add_mem_stream {
        metrics.push(("mem.stream", "copy", "GB/s", "higher", 10.0, 9.5));
    }
    for round in 0..ROUNDS {
        for &(workload, metric, unit, better, native, container) in &metrics {
            if spec.drop_workload == Some(workload) {
                continue;
            }
            for (env, base) in [
                ("native", native),
                ("native-b", native),
                ("container", container),
            ] {
                let factor: f64 = spec
                    .scale
                    .iter()
                    .filter(|(e, wl, _)| *e == env && *wl == workload)
                    .map(|(_, _, f)| *f)
                    .product();
                let noise = 1.0 + rng.gen_range(-0.002..0.002);
                w.serialize(SampleRow {
                    round,
                    env: env.into(),
                    workload: workload.into(),
                    metric: metric.into(),
                    value: base * factor * noise,
                    unit: unit.into(),
                    better: Better::parse(better),
                    cycles: 1000,
                    wall_ns: 2000,
                })
                .unwrap();
                w.serialize(SampleRow {
                    round,
                    env: env.into(),
                    workload: workload.into(),
                    metric: "counter.hostcalls".into(),
                    value: f64::from(round),
                    unit: "count".into(),
                    better: None,
                    cycles: 1000,
                    wall_ns: 2000,
                })
                .unwrap();
            }
        }
    }
    w.flush().unwrap();
    dir.to_path_buf()
}

fn compare(args: &[&str], baseline: &Path, current: &Path) -> Output {
    isobench()
        .arg("compare")
        .args(args)
        .arg(baseline)
        .arg(current)
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// status of the row (env, workload, metric).
fn status(v: &serde_json::Value, env: &str, workload: &str, metric: &str) -> String {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["env"] == env && r["workload"] == workload && r["metric"] == metric)
        .unwrap_or_else(|| panic!("no row {env} {workload}/{metric}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn statuses(v: &serde_json::Value) -> Vec<(String, String, String, String)> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["env"].as_str().unwrap().to_string(),
                r["workload"].as_str().unwrap().to_string(),
                r["metric"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn injected_ten_percent_regression_is_flagged() {
    let d = tempfile::tempdir().unwrap();
    let base = write_run(
        &d.path().join("base"),
        &Spec {
            seed: 1,
            ..Default::default()
        },
    );
    let cur = write_run(
        &d.path().join("cur"),
        &Spec {
            seed: 2,
            scale: vec![("container", "cpu.int", 1.0 / 1.10)],
            ..Default::default()
        },
    );
    let out = compare(&["--format", "json"], &base, &cur);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json_of(&out);
    for (env, workload, metric, s) in statuses(&v) {
        let expected = if env == "container" && workload == "cpu.int" {
            "regressed"
        } else {
            "unchanged"
        };
        assert_eq!(s, expected, "{env} {workload}/{metric}");
    }
    let row = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["env"] == "container" && r["workload"] == "cpu.int")
        .unwrap();
    let rel = row["change"]["relative"].as_f64().unwrap();
    assert!((rel - 0.10).abs() < 0.005, "change {rel}");
    assert_eq!(row["quantity"], "overhead");
    assert!(row["change"]["low"].as_f64().unwrap() > 0.05);
    assert!(v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| !r["metric"].as_str().unwrap().starts_with("counter.")));
    // The table says it too.
    let out = compare(&[], &base, &cur);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table
        .lines()
        .find(|l| l.starts_with("REGRESSED"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        line.contains("container") && line.contains("cpu.int") && line.contains("+10.0%"),
        "{line}"
    );
    assert!(
        table.contains("1 regressed, 0 improved, 8 unchanged"),
        "{table}"
    );
}

#[test]
fn one_percent_change_is_under_the_five_percent_threshold() {
    let d = tempfile::tempdir().unwrap();
    let base = write_run(
        &d.path().join("base"),
        &Spec {
            seed: 1,
            ..Default::default()
        },
    );
    let cur = write_run(
        &d.path().join("cur"),
        &Spec {
            seed: 2,
            scale: vec![("container", "cpu.int", 1.0 / 1.01)],
            ..Default::default()
        },
    );
    let out = compare(&["--format", "json"], &base, &cur);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(status(&v, "container", "cpu.int", "hash"), "unchanged");
    let row = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["env"] == "container" && r["workload"] == "cpu.int")
        .unwrap();
    // Significant, so it is the threshold that keeps it unchanged.
    assert!(
        row["change"]["test"]["p_value"].as_f64().unwrap() < 0.01,
        "{row}"
    );
    // With a 0.5% threshold the same change is a regression.
    let out = compare(&["--format", "json", "--threshold", "0.5%"], &base, &cur);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        status(&json_of(&out), "container", "cpu.int", "hash"),
        "regressed"
    );
}

#[test]
fn identical_runs_are_unchanged() {
    let d = tempfile::tempdir().unwrap();
    let base = write_run(
        &d.path().join("base"),
        &Spec {
            seed: 1,
            ..Default::default()
        },
    );
    let cur = write_run(
        &d.path().join("cur"),
        &Spec {
            seed: 1,
            ..Default::default()
        },
    );
    let out = compare(&["--format", "json"], &base, &cur.join("run.json"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["rows"].as_array().unwrap().len(), 9);
    for r in v["rows"].as_array().unwrap() {
        assert_eq!(r["status"], "unchanged");
        assert_eq!(r["change"]["test"]["p_value"].as_f64(), Some(1.0));
        assert_eq!(r["change"]["relative"].as_f64(), Some(0.0));
    }
    assert!(v["differences"].as_array().unwrap().is_empty());
}

#[test]
fn missing_and_new_workloads() {
    let d = tempfile::tempdir().unwrap();
    let base = write_run(
        &d.path().join("base"),
        &Spec {
            seed: 1,
            ..Default::default()
        },
    );
    let cur = write_run(
        &d.path().join("cur"),
        &Spec {
            seed: 2,
            drop_workload: Some("io.seq"),
            add_mem_stream: true,
            ..Default::default()
        },
    );
    let out = compare(&["--format", "json"], &base, &cur);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    for env in ["native", "native-b", "container"] {
        assert_eq!(status(&v, env, "io.seq", "read"), "missing");
        assert_eq!(status(&v, env, "mem.stream", "copy"), "new");
    }
    assert_eq!(status(&v, "container", "cpu.int", "hash"), "unchanged");
    let out = compare(&["--fail-on-missing"], &base, &cur);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing"), "{}", stderr(&out));
}

#[test]
fn per_metric_threshold_overrides_change_the_outcome() {
    let d = tempfile::tempdir().unwrap();
    let base = write_run(
        &d.path().join("base"),
        &Spec {
            seed: 1,
            ..Default::default()
        },
    );
    let ten = write_run(
        &d.path().join("ten"),
        &Spec {
            seed: 2,
            scale: vec![("container", "cpu.int", 1.0 / 1.10)],
            ..Default::default()
        },
    );
    let three = write_run(
        &d.path().join("three"),
        &Spec {
            seed: 3,
            scale: vec![("container", "io.seq", 1.0 / 1.03)],
            ..Default::default()
        },
    );
    let file = d.path().join("thresholds.toml");
    std::fs::write(
        &file,
        "# noise allowances\n\"cpu.int/hash\" = 0.15\n\"io.*\" = \"2%\"\n\"*\" = 0.05\n",
    )
    .unwrap();
    let t = file.to_str().unwrap();
    // 10% on cpu.int is under its 15%.
    let out = compare(&["--format", "json", "--thresholds", t], &base, &ten);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(status(&v, "container", "cpu.int", "hash"), "unchanged");
    let row = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["env"] == "container" && r["workload"] == "cpu.int")
        .unwrap();
    assert_eq!(row["threshold"]["rule"], "cpu.int/hash");
    assert_eq!(row["threshold"]["value"].as_f64(), Some(0.15));
    // 3% on io.seq is over its 2% (and under the default 5%).
    let out = compare(&["--format", "json", "--thresholds", t], &base, &three);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        status(&json_of(&out), "container", "io.seq", "read"),
        "regressed"
    );
    let out = compare(&["--format", "json"], &base, &three);
    assert_eq!(out.status.code(), Some(0));
    // A broken thresholds file is an input error naming the file and the key.
    std::fs::write(&file, "cpu.int = 0.03\n").unwrap();
    let out = compare(&["--thresholds", t], &base, &three);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("thresholds.toml") && e.contains("\"cpu\"") && e.contains("quote"),
        "{e}"
    );
    std::fs::write(&file, "\"io.*\" = 10\n").unwrap();
    let out = compare(&["--thresholds", t], &base, &three);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("fractions"), "{}", stderr(&out));
}

#[test]
fn lower_is_better_latency_going_up_is_a_regression() {
    let d = tempfile::tempdir().unwrap();
    let base = write_run(
        &d.path().join("base"),
        &Spec {
            seed: 1,
            ..Default::default()
        },
    );
    // Container start-up 10% slower; native unchanged: the overhead regressed.
    let slower = write_run(
        &d.path().join("slower"),
        &Spec {
            seed: 2,
            scale: vec![("container", "start", 1.10)],
            ..Default::default()
        },
    );
    let out = compare(&["--format", "json"], &base, &slower);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(status(&v, "container", "start", "start_us"), "regressed");
    assert_eq!(status(&v, "native", "start", "start_us"), "unchanged");
    // The other way round it is an improvement, and the exit code is 0.
    let out = compare(&["--format", "json"], &slower, &base);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        status(&json_of(&out), "container", "start", "start_us"),
        "improved"
    );
    // Native latency up by 10% (all environments along with it): native's value regressed,
    // the overheads did not move.
    let all = write_run(
        &d.path().join("all"),
        &Spec {
            seed: 3,
            scale: vec![
                ("native", "start", 1.10),
                ("native-b", "start", 1.10),
                ("container", "start", 1.10),
            ],
            ..Default::default()
        },
    );
    let v = json_of(&compare(&["--format", "json"], &base, &all));
    assert_eq!(status(&v, "native", "start", "start_us"), "regressed");
    assert_eq!(status(&v, "container", "start", "start_us"), "unchanged");
    // A higher-is-better throughput going UP is an improvement.
    let faster = write_run(
        &d.path().join("faster"),
        &Spec {
            seed: 4,
            scale: vec![
                ("native", "cpu.int", 1.10),
                ("native-b", "cpu.int", 1.10),
                ("container", "cpu.int", 1.10),
            ],
            ..Default::default()
        },
    );
    let v = json_of(&compare(&["--format", "json"], &base, &faster));
    assert_eq!(status(&v, "native", "cpu.int", "hash"), "improved");
}

/// Write `text` as run.json (or samples.csv) of a copy of a good run; expect exit 2 and
/// all `needles` in stderr.
fn expect_input_error(good: &Path, tmp: &Path, file: &str, text: &[u8], needles: &[&str]) {
    let bad = tmp.join(format!("bad-{}", needles[0].replace(['`', ' ', '/'], "_")));
    std::fs::create_dir_all(&bad).unwrap();
    for f in ["run.json", "samples.csv"] {
        std::fs::copy(good.join(f), bad.join(f)).unwrap();
    }
    std::fs::write(bad.join(file), text).unwrap();
    for (b, c) in [(good, bad.as_path()), (bad.as_path(), good)] {
        let out = compare(&[], b, c);
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{file} {needles:?}: {e}");
        for n in needles {
            assert!(e.contains(n), "{file}: expected {n:?} in: {e}");
        }
        assert!(
            e.contains(&bad.join(file).display().to_string()),
            "names the file: {e}"
        );
    }
}

#[test]
fn malformed_truncated_and_foreign_files_are_input_errors() {
    let d = tempfile::tempdir().unwrap();
    let good = write_run(
        &d.path().join("good"),
        &Spec {
            seed: 1,
            ..Default::default()
        },
    );
    let json = std::fs::read(good.join("run.json")).unwrap();
    let csv = std::fs::read(good.join("samples.csv")).unwrap();
    let t = d.path();
    expect_input_error(&good, t, "run.json", &json[..json.len() / 2], &["EOF"]);
    expect_input_error(&good, t, "run.json", b"not json at all", &["expected"]);
    expect_input_error(
        &good,
        t,
        "run.json",
        br#"{"name": "left-pad", "version": "1.0.0"}"#,
        &["`schema_version`"],
    );
    let mut v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    v["schema_version"] = serde_json::json!(99);
    expect_input_error(
        &good,
        t,
        "run.json",
        v.to_string().as_bytes(),
        &["schema_version 99", "reads schema_version 1"],
    );
    let mut v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    v["host"]["cores"] = serde_json::json!("many");
    expect_input_error(
        &good,
        t,
        "run.json",
        v.to_string().as_bytes(),
        &["`host.cores`"],
    );
    let mut v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    v.as_object_mut().unwrap().remove("config");
    expect_input_error(
        &good,
        t,
        "run.json",
        v.to_string().as_bytes(),
        &["missing field `config`"],
    );
    // samples.csv cut in the middle of a row.
    let cut = csv.len() - 20;
    expect_input_error(
        &good,
        t,
        "samples.csv",
        &csv[..cut],
        &["line 145", "truncated"],
    );
    expect_input_error(
        &good,
        t,
        "samples.csv",
        b"id,name,price\n1,apple,3\n",
        &["lacks column(s) round"],
    );
    let text = String::from_utf8(csv.clone())
        .unwrap()
        .replacen("MB/s,higher", "MB/s,upwards", 1);
    expect_input_error(
        &good,
        t,
        "samples.csv",
        text.as_bytes(),
        &["line 2", "field `better`"],
    );
    let text = String::from_utf8(csv.clone()).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut fields: Vec<String> = lines[3].split(',').map(String::from).collect();
    fields[4] = "fast".into();
    lines[3] = fields.join(",");
    expect_input_error(
        &good,
        t,
        "samples.csv",
        lines.join("\n").as_bytes(),
        &["line 4", "field `value`"],
    );
    // A missing samples.csv and a missing run.
    let lonely = t.join("lonely");
    std::fs::create_dir_all(&lonely).unwrap();
    std::fs::copy(good.join("run.json"), lonely.join("run.json")).unwrap();
    let out = compare(&[], &good, &lonely);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("samples.csv"), "{}", stderr(&out));
    let out = compare(&[], &good, &t.join("nope"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn same_seed_same_output_and_the_seed_matters() {
    let d = tempfile::tempdir().unwrap();
    let base = write_run(
        &d.path().join("base"),
        &Spec {
            seed: 1,
            ..Default::default()
        },
    );
    let cur = write_run(
        &d.path().join("cur"),
        &Spec {
            seed: 2,
            scale: vec![("container", "cpu.int", 0.97)],
            ..Default::default()
        },
    );
    for format in ["json", "table", "markdown"] {
        let a = compare(&["--format", format, "--seed", "7"], &base, &cur);
        let b = compare(&["--format", format, "--seed", "7"], &base, &cur);
        assert_eq!(a.status.code(), Some(0));
        assert_eq!(
            a.stdout, b.stdout,
            "{format} output differs between identical calls"
        );
    }
    // Another seed moves the bootstrap intervals (compare the rows, not the echoed seed).
    let rows = |seed: &str| {
        json_of(&compare(&["--format", "json", "--seed", seed], &base, &cur))["rows"].clone()
    };
    assert_eq!(rows("7"), rows("7"));
    assert_ne!(
        rows("7"),
        rows("8"),
        "the seed should move the bootstrap intervals"
    );
}

#[test]
fn differing_hosts_are_compared_with_a_loud_warning() {
    let d = tempfile::tempdir().unwrap();
    let base = write_run(
        &d.path().join("base"),
        &Spec {
            seed: 1,
            ..Default::default()
        },
    );
    let cur = write_run(
        &d.path().join("cur"),
        &Spec {
            seed: 2,
            kernel: Some("6.8.0"),
            ..Default::default()
        },
    );
    let out = compare(&[], &base, &cur);
    assert_eq!(out.status.code(), Some(0));
    let e = stderr(&out);
    assert!(e.contains("WARNING") && e.contains("kernel"), "{e}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("kernel: 6.1.0 -> 6.8.0"), "{table}");
    let out = compare(&["--format", "markdown"], &base, &cur);
    assert!(String::from_utf8_lossy(&out.stdout).contains("> - **kernel**: `6.1.0` → `6.8.0`"));
    let out = compare(&["--strict"], &base, &cur);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--strict"));
}

#[test]
fn reports_are_written_in_the_format_of_their_extension() {
    let d = tempfile::tempdir().unwrap();
    let base = write_run(
        &d.path().join("base"),
        &Spec {
            seed: 1,
            ..Default::default()
        },
    );
    let cur = write_run(
        &d.path().join("cur"),
        &Spec {
            seed: 2,
            scale: vec![("container", "cpu.int", 1.0 / 1.10)],
            ..Default::default()
        },
    );
    let md = d.path().join("comment.md");
    let js = d.path().join("compare.json");
    let out = isobench()
        .arg("compare")
        .arg(&base)
        .arg(&cur)
        .arg("-o")
        .arg(&md)
        .arg("-o")
        .arg(&js)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.starts_with("### isobench compare: :x: 1 regressed"),
        "{text}"
    );
    assert!(
        text.contains("| **regressed** | container | cpu.int | hash | overhead |"),
        "{text}"
    );
    assert!(
        text.contains("<details><summary>8 unchanged</summary>"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&js).unwrap()).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(status(&v, "container", "cpu.int", "hash"), "regressed");
}

#[test]
fn usage_errors_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let base = write_run(
        &d.path().join("base"),
        &Spec {
            seed: 1,
            ..Default::default()
        },
    );
    let out = isobench().arg("compare").arg(&base).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--baseline NAME"), "{}", stderr(&out));
    let out = isobench()
        .args(["compare", "--alpha", "2"])
        .arg(&base)
        .arg(&base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = isobench()
        .args(["compare", "--baseline", "main", "--out"])
        .arg(d.path())
        .arg(&base)
        .arg(&base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("only CURRENT"), "{}", stderr(&out));
}

#[test]
fn baseline_save_list_and_compare_by_name() {
    let d = tempfile::tempdir().unwrap();
    let out_dir = d.path().join("results");
    let older = write_run(
        &out_dir.join("20250101T000000Z"),
        &Spec {
            seed: 1,
            ..Default::default()
        },
    );
    // Make the second run the newest by its started_at.
    let newer = write_run(
        &out_dir.join("20250102T000000Z"),
        &Spec {
            seed: 2,
            scale: vec![("container", "cpu.int", 1.0 / 1.10)],
            ..Default::default()
        },
    );
    let mut run: RunFile =
        serde_json::from_slice(&std::fs::read(newer.join("run.json")).unwrap()).unwrap();
    run.started_at = "2025-01-02T00:00:00+00:00".into();
    std::fs::write(newer.join("run.json"), serde_json::to_vec(&run).unwrap()).unwrap();
    isobench::baseline::update_latest_link(&out_dir, &newer).unwrap();

    let baseline = |args: &[&str]| {
        isobench()
            .arg("baseline")
            .args(args)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap()
    };
    let out = baseline(&["list"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no baselines"));
    // Explicit run.
    let out = isobench()
        .args(["baseline", "save", "main"])
        .arg(&older)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Refuses to overwrite; --force replaces it with the newest run.
    let out = baseline(&["save", "main"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    let out = baseline(&["save", "main", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let saved = isobench::compare::load_run(&out_dir.join("baselines/main")).unwrap();
    assert_eq!(saved.run.run_id, "20250102T000000Z");
    for bad in ["../x", "..", "a/b", ".hidden"] {
        let out = baseline(&["save", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&out).contains("invalid baseline name"),
            "{}",
            stderr(&out)
        );
    }
    let out = baseline(&["list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("main  20250102T000000Z"), "{text}");

    // CI loop: compare results/latest with the stored baseline.
    let cmp = |name: &str, current: &Path| {
        isobench()
            .args(["compare", "--format", "json", "--baseline", name, "--out"])
            .arg(&out_dir)
            .arg(current)
            .output()
            .unwrap()
    };
    let out = cmp("main", &out_dir.join("latest"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(statuses(&json_of(&out)).iter().all(|s| s.3 == "unchanged"));
    // Save the older run as "old": the newer one is a regression against it.
    let out = isobench()
        .args(["baseline", "save", "old"])
        .arg(older.join("run.json"))
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = cmp("old", &out_dir.join("latest"));
    assert_eq!(out.status.code(), Some(1));
    let out = cmp("nope", &out_dir.join("latest"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the baselines are main, old"),
        "{}",
        stderr(&out)
    );
}
