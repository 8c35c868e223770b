//! Exports of a fixed stored run (the run stored by isobench 0.1.0 in tests/fixtures):
//! snapshots of every format, the JUnit XML read back as the schema CI systems read, the
//! documented github-action-benchmark fields, and the `export`, `report --quiet` and
//! `report --format json` command lines.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{catalogue, store_run, synthetic_run, synthetic_samples};
use isobench::export::{export, Format};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-0.1.0-before-layers")
}

fn text(format: Format) -> String {
    String::from_utf8(export(&fixture(), format, None).unwrap()).unwrap()
}

/// A fresh directory under cargo's per-target temp dir.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn isobench() -> Command {
    Command::cargo_bin("isobench").unwrap()
}

#[test]
fn snapshots_of_every_export_format() {
    insta::assert_snapshot!(
        "export_github_action_benchmark",
        text(Format::GithubActionBenchmark)
    );
    insta::assert_snapshot!("export_bencher", text(Format::Bencher));
    insta::assert_snapshot!("export_junit", text(Format::Junit));
    insta::assert_snapshot!("export_csv", text(Format::Csv));
    insta::assert_snapshot!("export_json", text(Format::Json));
}

#[test]
fn github_action_benchmark_has_the_documented_fields() {
    let v: serde_json::Value = serde_json::from_str(&text(Format::GithubActionBenchmark)).unwrap();
    let entries = v.as_array().expect("a JSON list");
    assert!(entries.len() > 10, "{} entries", entries.len());
    let mut names = std::collections::BTreeSet::new();
    for e in entries {
        let o = e.as_object().expect("each entry an object");
        let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["extra", "name", "range", "unit", "value"], "{e}");
        assert!(o["name"].is_string() && o["unit"].is_string());
        assert!(o["value"].is_number(), "value must be a number: {e}");
        assert!(o["range"].as_str().unwrap().starts_with('±'));
        assert!(o["extra"].as_str().unwrap().contains("verdict"));
        assert!(
            names.insert(o["name"].as_str().unwrap().to_string()),
            "unique names"
        );
    }
    assert!(
        names.contains("vm/sys.call/null_hostcall overhead"),
        "{names:?}"
    );
}

/// Reads `xml` as the JUnit schema CI systems read: `<testsuites>` of `<testsuite name
/// tests failures errors>` of `<testcase name classname>` with at most one `<failure
/// message type>`/`<skipped>`, and counts that match. Returns (tests, failures, skipped).
fn check_junit(xml: &str) -> (usize, usize, usize) {
    let doc = roxmltree::Document::parse(xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let attr = |n: roxmltree::Node, a: &str| -> usize {
        n.attribute(a)
            .unwrap_or_else(|| panic!("<{}> lacks {a}", n.tag_name().name()))
            .parse()
            .unwrap()
    };
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    for suite in root.children().filter(|n| n.is_element()) {
        assert_eq!(suite.tag_name().name(), "testsuite");
        assert!(!suite.attribute("name").unwrap().is_empty());
        let cases: Vec<_> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        let failed = cases
            .iter()
            .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
            .count();
        let skip = cases
            .iter()
            .filter(|c| c.children().any(|n| n.has_tag_name("skipped")))
            .count();
        assert_eq!(attr(suite, "tests"), cases.len());
        assert_eq!(attr(suite, "failures"), failed);
        assert_eq!(attr(suite, "errors"), 0);
        for c in &cases {
            assert!(!c.attribute("name").unwrap().is_empty());
            assert!(c.attribute("classname").unwrap().starts_with("isobench."));
            for f in c.children().filter(|n| n.has_tag_name("failure")) {
                assert!(f.attribute("message").is_some() && f.attribute("type").is_some());
            }
        }
        tests += cases.len();
        failures += failed;
        skipped += skip;
    }
    assert_eq!(attr(root, "tests"), tests);
    assert_eq!(attr(root, "failures"), failures);
    (tests, failures, skipped)
}

#[test]
fn junit_parses_as_the_schema_ci_systems_read() {
    let xml = text(Format::Junit);
    let (tests, failures, _) = check_junit(&xml);
    let csv = text(Format::Csv);
    assert_eq!(tests, csv.lines().count() - 1, "one test case per verdict");
    let above = csv.lines().filter(|l| l.contains(",above,")).count();
    assert!(above > 0, "the fixture has costs above the margin");
    assert_eq!(
        failures, above,
        "a failure for every verdict above the margin"
    );
}

#[test]
fn junit_with_a_baseline_fails_on_a_regression() {
    let envs = ["native", "native-b", "container"];
    let specs: Vec<_> = catalogue()
        .into_iter()
        .filter(|m| ["hash", "start_us"].contains(&m.metric.as_str()))
        .collect();
    let base = fresh_dir("export-baseline");
    let samples = synthetic_samples(&specs, &envs, 12, 3);
    store_run(&base, &synthetic_run(&envs, 12, 3), &samples);
    // The current run: the container's hash throughput drops by a third.
    let cur = fresh_dir("export-current");
    let slower: Vec<_> = samples
        .iter()
        .cloned()
        .map(|mut r| {
            if r.env == "container" && r.metric == "hash" {
                r.value *= 0.66;
            }
            r
        })
        .collect();
    store_run(&cur, &synthetic_run(&envs, 12, 3), &slower);
    let xml = String::from_utf8(export(&cur, Format::Junit, Some(&base)).unwrap()).unwrap();
    check_junit(&xml);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suite = doc
        .descendants()
        .find(|n| n.attribute("name") == Some("isobench.regressions"))
        .expect("a regressions suite");
    let failed: Vec<String> = suite
        .children()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .map(|c| {
            format!(
                "{}:{}",
                c.attribute("classname").unwrap(),
                c.attribute("name").unwrap()
            )
        })
        .collect();
    assert!(
        failed.contains(&"isobench.regressions.container:cpu.int/hash".to_string()),
        "{failed:?}"
    );
    // Without the slowdown nothing regresses.
    let same = String::from_utf8(export(&base, Format::Junit, Some(&base)).unwrap()).unwrap();
    assert!(!same.contains("type=\"regressed\""));
}

#[test]
fn the_export_command_writes_a_file_and_rejects_bad_input() {
    let out = fresh_dir("export-cli").join("bench.json");
    isobench()
        .args([
            "export",
            fixture().to_str().unwrap(),
            "--format",
            "bencher",
            "-o",
        ])
        .arg(&out)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(
        v["vm/io.rand/write_p99_us"]["overhead-pct"]["value"]
            .as_f64()
            .unwrap()
            > 100.0
    );
    isobench()
        .args(["export", fixture().to_str().unwrap(), "--format", "xml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("github-action-benchmark"));
    isobench()
        .args([
            "export",
            fixture().to_str().unwrap(),
            "--format",
            "csv",
            "--baseline",
        ])
        .arg(fixture())
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "--baseline only applies to --format junit",
        ));
    isobench()
        .args(["export", "/nonexistent-run", "--format", "csv"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("/nonexistent-run"));
}

/// A copy of the fixture to re-render (report writes into the run directory).
fn fixture_copy(name: &str) -> PathBuf {
    let dir = fresh_dir(name);
    for f in ["run.json", "samples.csv"] {
        std::fs::copy(fixture().join(f), dir.join(f)).unwrap();
    }
    dir
}

#[test]
fn report_prints_the_caption_quietly_or_the_table_as_json() {
    let dir = fixture_copy("export-report-quiet");
    let quiet = isobench()
        .args(["report", "--quiet"])
        .arg(&dir)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&quiet.get_output().stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("container: "), "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with("vm: ")), "{stdout}");
    assert!(
        lines.iter().any(|l| l.starts_with("native-b (A/A")),
        "{stdout}"
    );
    assert!(lines.last().unwrap().starts_with("results: "), "{stdout}");
    assert!(lines.len() <= 5, "only the caption and the path: {stdout}");

    let full = isobench().arg("report").arg(&dir).assert().success();
    let full = String::from_utf8_lossy(&full.get_output().stdout).into_owned();
    assert!(full.starts_with(lines[0]), "the caption comes first");
    assert!(full.contains("wrote "), "then the table and the files");

    let json = isobench()
        .args(["report", "--format", "json"])
        .arg(&dir)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    let overhead = std::fs::read_to_string(dir.join("overhead.csv")).unwrap();
    assert_eq!(v.as_array().unwrap().len(), overhead.lines().count() - 1);
    assert!(String::from_utf8_lossy(&json.get_output().stderr).contains("results: "));
}

#[test]
fn run_ends_with_the_caption_quietly_or_the_table_as_json() {
    let out = fresh_dir("export-run-quiet");
    let run = |extra: &[&str]| {
        let a = isobench()
            .args([
                "run",
                "--env",
                "native",
                "--rounds",
                "5",
                "--warmup",
                "1",
                "--seed",
                "7",
                "--workload",
                "sys.call",
            ])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .timeout(std::time::Duration::from_secs(300))
            .assert()
            .success();
        let o = a.get_output();
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (quiet, _) = run(&["--quiet"]);
    let lines: Vec<&str> = quiet.lines().collect();
    assert_eq!(lines.len(), 2, "the caption and the path only: {quiet}");
    assert!(
        lines[0].starts_with("native-b (A/A noise floor): "),
        "{quiet}"
    );
    assert!(lines[1].starts_with("results: "), "{quiet}");

    let (table, _) = run(&[]);
    assert!(
        table.starts_with("native-b (A/A noise floor): "),
        "caption first: {table}"
    );
    assert!(table.contains("null_hostcall"), "then the table: {table}");

    let (json, stderr) = run(&["--format", "json"]);
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let rows = v.as_array().unwrap();
    assert!(rows.iter().any(|r| r["metric"] == "null_hostcall"
        && r["env"] == "native-b"
        && r["headline"] == true));
    assert!(stderr.contains("results: "));
}
