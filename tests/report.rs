//! Reports of stored synthetic runs: render reproduces its files byte for byte, snapshots
//! of the exact CSV/Markdown/terminal outputs, plots from edge cases.

mod common;

use std::path::{Path, PathBuf};

use common::{catalogue, store_run, synthetic_run, synthetic_samples, MetricSpec};
use isobench::report::{render, render_with, terminal_table, RenderOptions};
use isobench::results::SampleRow;

const ENVS: &[&str] = &["native", "native-b", "container", "vm"];

/// A fresh directory under cargo's per-target temp dir (kept after the test for viewing).
fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn renders_the_full_synthetic_run() {
    let dir = fresh_dir("synthetic-run");
    store_run(
        &dir,
        &synthetic_run(ENVS, 15, 42),
        &synthetic_samples(&catalogue(), ENVS, 15, 42),
    );
    let r = render(&dir, None, None).unwrap();
    for f in ["summary.csv", "overhead.csv", "report.md", "report.html"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    for p in [
        "headline",
        "overhead",
        "distributions",
        "io_latency",
        "mem_latency",
        "drift",
    ] {
        for ext in ["svg", "png"] {
            let path = dir.join("plots").join(format!("{p}.{ext}"));
            assert!(
                std::fs::metadata(&path).unwrap().len() > 1000,
                "{} too small",
                path.display()
            );
            assert!(r.files.contains(&path), "{} not listed", path.display());
        }
    }
    let html = String::from_utf8(read(&dir, "report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 6, "every plot inlined");
    assert!(!html.contains("<img"), "self-contained");
    // The quick catalogue with three compared environments fits 100 columns.
    let table = terminal_table(&r.analysis, false);
    for line in table.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    // Colour only when asked.
    assert!(!table.contains('\x1b'));
    assert!(terminal_table(&r.analysis, true).contains("\x1b[32m"));
}

#[test]
fn rerendering_a_stored_run_reproduces_the_summary_files_byte_for_byte() {
    let dir = fresh_dir("rerender");
    store_run(
        &dir,
        &synthetic_run(ENVS, 8, 7),
        &synthetic_samples(&catalogue(), ENVS, 8, 7),
    );
    render(&dir, None, None).unwrap();
    let names = ["summary.csv", "overhead.csv", "report.md", "report.html"];
    let first: Vec<Vec<u8>> = names.iter().map(|n| read(&dir, n)).collect();
    for n in names {
        std::fs::remove_file(dir.join(n)).unwrap();
    }
    render(&dir, None, None).unwrap();
    for (n, bytes) in names.iter().zip(&first) {
        assert_eq!(&read(&dir, n), bytes, "{n} differs after re-rendering");
    }
    // A different seed changes the intervals (the seed is really used) ...
    render(&dir, None, Some(8)).unwrap();
    assert_ne!(read(&dir, "overhead.csv"), first[1]);
    // ... and a different margin changes verdicts but not the summaries.
    render(&dir, Some(0.5), None).unwrap();
    assert_eq!(read(&dir, "summary.csv"), first[0]);
    let overhead = String::from_utf8(read(&dir, "overhead.csv")).unwrap();
    assert!(
        overhead.lines().skip(1).all(|l| l.contains(",0.5,10000,7")),
        "margin recorded: {overhead}"
    );
    assert_ne!(overhead.as_bytes(), &first[1][..]);
}

/// A small fixed run for the snapshots: 3 metrics, 6 rounds, vm skipped.
fn small_run_dir(name: &str) -> PathBuf {
    let specs: Vec<MetricSpec> = catalogue()
        .into_iter()
        .filter(|m| {
            [
                "hash",
                "ns_per_access@64KiB",
                "read_p99_us",
                "write",
                "start_us",
            ]
            .contains(&m.metric.as_str())
        })
        .collect();
    let envs = ["native", "native-b", "container"];
    let dir = fresh_dir(name);
    store_run(
        &dir,
        &synthetic_run(&envs, 6, 11),
        &synthetic_samples(&specs, &envs, 6, 11),
    );
    dir
}

#[test]
fn snapshots_of_the_text_outputs() {
    let dir = small_run_dir("snapshot-run");
    let r = render_with(
        &dir,
        RenderOptions {
            margin: None,
            seed: None,
            resamples: Some(2000),
        },
    )
    .unwrap();
    let text = |n| String::from_utf8(read(&dir, n)).unwrap();
    insta::assert_snapshot!("summary_csv", text("summary.csv"));
    insta::assert_snapshot!("overhead_csv", text("overhead.csv"));
    insta::assert_snapshot!("report_md", text("report.md"));
    insta::assert_snapshot!("terminal_table", terminal_table(&r.analysis, false));
}

fn rows_for(envs: &[&str], specs: &[MetricSpec], rounds: u32) -> Vec<SampleRow> {
    synthetic_samples(specs, envs, rounds, 5)
}

fn render_edge_case(name: &str, envs: &[&str], samples: Vec<SampleRow>) -> (PathBuf, String) {
    let dir = fresh_dir(name);
    store_run(&dir, &synthetic_run(envs, 6, 1), &samples);
    let r = render_with(
        &dir,
        RenderOptions {
            resamples: Some(500),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    for f in &r.files {
        assert!(
            std::fs::metadata(f).unwrap().len() > 0,
            "{} empty",
            f.display()
        );
    }
    (dir, terminal_table(&r.analysis, false))
}

#[test]
fn plots_render_from_edge_cases() {
    let hash: Vec<MetricSpec> = catalogue()
        .into_iter()
        .filter(|m| m.metric == "hash")
        .collect();
    let no_io: Vec<MetricSpec> = catalogue()
        .into_iter()
        .filter(|m| !m.workload.starts_with("io."))
        .collect();

    // One workload, two environments.
    let (dir, _) = render_edge_case(
        "edge-one-workload",
        &["native", "vm"],
        rows_for(&["native", "vm"], &hash, 6),
    );
    assert!(dir.join("plots/overhead.png").is_file());
    assert!(
        !dir.join("plots/io_latency.png").exists(),
        "no IO histogram, no IO plot"
    );
    assert!(!dir.join("plots/mem_latency.png").exists());

    // One environment only: nothing to compare, but distributions and drift still draw.
    let (dir, table) =
        render_edge_case("edge-one-env", &["native"], rows_for(&["native"], &hash, 6));
    assert!(!dir.join("plots/overhead.png").exists());
    assert!(dir.join("plots/distributions.png").is_file());
    let md = String::from_utf8(read(&dir, "report.md")).unwrap();
    assert!(md.contains("vm: skipped — /dev/kvm not accessible"), "{md}");
    assert!(
        table.contains("  hash") && table.contains("MB/s"),
        "{table}"
    );
    assert!(
        !table.contains("A/A floor"),
        "no native-b, no floor column: {table}"
    );

    // Every workload but IO: no IO histogram.
    let envs = ["native", "native-b", "container", "vm"];
    let (dir, _) = render_edge_case("edge-no-io", &envs, rows_for(&envs, &no_io, 6));
    assert!(!dir.join("plots/io_latency.png").exists());
    assert!(dir.join("plots/mem_latency.png").is_file());

    // All values equal: zero spread everywhere, ratio exactly 1, verdict within.
    let flat: Vec<SampleRow> = rows_for(&envs, &catalogue(), 6)
        .into_iter()
        .map(|mut r| {
            r.value = 42.0;
            r
        })
        .collect();
    let (dir, table) = render_edge_case("edge-all-equal", &envs, flat);
    let overhead = String::from_utf8(read(&dir, "overhead.csv")).unwrap();
    assert!(
        overhead.lines().skip(1).all(|l| l.contains(",within,")),
        "{overhead}"
    );
    assert!(table.contains("+0.0% [+0.0,+0.0]"), "{table}");

    // Samples but no native at all.
    let (dir, _) = render_edge_case("edge-no-native", &["vm"], rows_for(&["vm"], &hash, 6));
    let overhead = String::from_utf8(read(&dir, "overhead.csv")).unwrap();
    assert!(overhead.contains(",too-few-rounds,"), "{overhead}");
}

/// A real run made by isobench 0.1.0 before the results model was typed and before blocks
/// (native, native-b, container and vm; cpu.int, sys.call, io.rand and start; 5 rounds,
/// seed 42), with the files that version rendered. Reading it with today's model and
/// rendering it again must give the same summary.csv and overhead.csv, byte for byte: the
/// formats did not change, and a schema-1 run keeps its estimator (the mean). The prose
/// of report.md/html has changed since (a precision section, blocks for rounds), so those
/// are only checked to render.
#[test]
fn a_run_stored_by_an_earlier_version_rerenders_byte_for_byte() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-0.1.0-before-layers");
    let dir = fresh_dir("earlier-version-run");
    for f in ["run.json", "samples.csv"] {
        std::fs::copy(fixture.join(f), dir.join(f)).unwrap();
    }
    render(&dir, None, None).unwrap();
    for f in ["report.md", "report.html"] {
        assert!(!read(&dir, f).is_empty(), "{f} rendered");
    }
    for f in ["summary.csv", "overhead.csv"] {
        assert!(
            read(&dir, f) == read(&fixture, f),
            "{f} differs from what isobench 0.1.0 rendered (diff {} {})",
            fixture.join(f).display(),
            dir.join(f).display()
        );
    }
}
