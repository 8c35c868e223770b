//! The files of a merged fleet: `fleet.json`, `fleet.csv`, `fleet.md`, `fleet.html`, one
//! forest plot per headline metric under `plots/`, and a `run.json` + `samples.csv` pair
//! that makes the fleet directory a run `compare` and `baseline save` accept
//! (docs/METHODOLOGY.md, "Many hosts").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Fleet, FleetError, HostRun};
use crate::report::document::{Document, Figure, Table};
use crate::report::plot::{render_forest, Forest, PctInterval};
use crate::report::table::fmt_overhead;
use crate::report::{html, markdown};
use crate::results::{
    write_atomic, EnvRecord, HostFacts, Outcome, RunFile, SampleRow, SampleSink, SamplesWriter,
    RUN_JSON, SAMPLES_CSV,
};
use crate::stats::verdict::format_margin;

pub const FLEET_JSON: &str = "fleet.json";
pub const FLEET_CSV: &str = "fleet.csv";
pub const FLEET_MD: &str = "fleet.md";
pub const FLEET_HTML: &str = "fleet.html";
pub const PLOT_DIR: &str = "plots";

fn write_err(path: &Path, e: impl std::fmt::Display) -> FleetError {
    FleetError::Write {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<PathBuf, FleetError> {
    write_atomic(path, bytes).map_err(|e| write_err(path, e))?;
    Ok(path.to_path_buf())
}

/// `+1.2% [+0.4%, +2.0%]`.
fn with_interval(est: f64, lo: f64, hi: f64) -> String {
    format!(
        "{} [{}, {}]",
        fmt_overhead(est),
        fmt_overhead(lo),
        fmt_overhead(hi)
    )
}

/// `fleet.csv`: one row per (workload, metric, environment) and host, then its pooled row
/// (`host` = `pooled`), every number a fraction.
pub fn fleet_csv(fleet: &Fleet) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "workload",
        "metric",
        "unit",
        "env",
        "host",
        "name",
        "n_pairs",
        "estimate",
        "ci95_low",
        "ci95_high",
        "tau",
        "i2",
        "q",
        "verdict",
    ])?;
    for r in &fleet.rows {
        for h in &r.hosts {
            let name = &fleet.hosts[h.host].name;
            w.write_record([
                r.workload.as_str(),
                &r.metric,
                &r.unit,
                &r.env,
                &h.host.to_string(),
                name,
                &h.n_pairs.to_string(),
                &h.estimate.to_string(),
                &h.ci95_low.to_string(),
                &h.ci95_high.to_string(),
                "",
                "",
                "",
                &h.verdict,
            ])?;
        }
        if let Some(p) = &r.pooled {
            w.write_record([
                r.workload.as_str(),
                &r.metric,
                &r.unit,
                &r.env,
                "pooled",
                &format!("{} hosts", p.hosts),
                "",
                &p.estimate.to_string(),
                &p.ci95_low.to_string(),
                &p.ci95_high.to_string(),
                &p.tau.to_string(),
                &p.i2.to_string(),
                &p.q.to_string(),
                &p.verdict,
            ])?;
        }
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// The forest plot data of one headline (workload, metric).
fn forest(fleet: &Fleet, workload: &str, metric: &str, envs: &[String]) -> Forest {
    let rows: Vec<_> = fleet
        .rows
        .iter()
        .filter(|r| r.workload == workload && r.metric == metric)
        .collect();
    let pct = |e: f64, l: f64, h: f64| -> PctInterval { (e * 100.0, l * 100.0, h * 100.0) };
    let of_env = |env: &str| rows.iter().find(|r| r.env == env);
    Forest {
        title: format!("{workload}/{metric}: overhead per host and pooled"),
        hosts: fleet.hosts.iter().map(|h| h.name.clone()).collect(),
        envs: envs.to_vec(),
        points: fleet
            .hosts
            .iter()
            .map(|h| {
                envs.iter()
                    .map(|e| {
                        let o = of_env(e)?.host(h.index)?;
                        Some(pct(o.estimate, o.ci95_low, o.ci95_high))
                    })
                    .collect()
            })
            .collect(),
        pooled: envs
            .iter()
            .map(|e| {
                let p = of_env(e)?.pooled.as_ref()?;
                Some(pct(p.estimate, p.ci95_low, p.ci95_high))
            })
            .collect(),
        margin_pct: fleet.margin * 100.0,
    }
}

/// The fleet report as a document (rendered to Markdown and HTML).
fn document(fleet: &Fleet, figures: &[(String, Figure)]) -> Document {
    let mut doc = Document {
        title: format!("isobench fleet report: {} hosts", fleet.hosts.len()),
        blocks: Vec::new(),
    };
    doc.paragraph(format!(
        "{} runs of the same workload image merged by isobench {}. Each host's overhead \
         against native comes from its own run (paired per-block log ratios, bootstrap \
         interval); the pooled overhead is a DerSimonian–Laird random-effects estimate \
         across hosts, with Hartung–Knapp intervals (Student's t with hosts − 1 degrees of \
         freedom). Verdicts against ±{}.",
        fleet.hosts.len(),
        fleet.isobench_version,
        format_margin(fleet.margin)
    ));
    if !fleet.differences.is_empty() {
        doc.heading(
            2,
            "Differences between the runs (merged with --allow-mixed)",
        );
        doc.list(fleet.differences.clone());
    }
    doc.list(fleet.notes.clone());

    doc.heading(2, "Hosts");
    doc.table(Table {
        header: [
            "#",
            "host",
            "CPU",
            "kernel",
            "KVM",
            "virtualized",
            "cgroup",
            "run",
            "isobench",
        ]
        .map(String::from)
        .to_vec(),
        rows: fleet
            .hosts
            .iter()
            .map(|h| {
                vec![
                    h.index.to_string(),
                    h.name.clone(),
                    h.cpu_model.clone(),
                    h.kernel.clone(),
                    h.kvm_flavour.clone(),
                    if h.virtualized { "yes" } else { "no" }.into(),
                    h.cgroup_version.clone(),
                    h.run_id.clone(),
                    h.isobench_version.clone(),
                ]
            })
            .collect(),
        right_aligned: vec![0],
    });

    doc.heading(2, "Pooled overhead across hosts");
    doc.paragraph(
        "τ is the between-host standard deviation of the true overhead (in log units, about \
         a fraction: τ = 1% means hosts really differ by about ±1 point). I² is the share of \
         the hosts' spread that is not measurement noise: near 0% the hosts agree within \
         their intervals and the pooled number speaks for all of them; above about 50% the \
         hosts differ for real and the per-host rows matter more than the pooled one.",
    );
    doc.table(Table {
        header: [
            "workload/metric",
            "env",
            "pooled",
            "95% interval",
            "τ",
            "I²",
            "hosts",
            "verdict",
        ]
        .map(String::from)
        .to_vec(),
        rows: fleet
            .rows
            .iter()
            .filter_map(|r| {
                let p = r.pooled.as_ref()?;
                Some(vec![
                    r.label(),
                    r.env.clone(),
                    fmt_overhead(p.estimate),
                    format!(
                        "[{}, {}]",
                        fmt_overhead(p.ci95_low),
                        fmt_overhead(p.ci95_high)
                    ),
                    format!("{:.2}%", p.tau * 100.0),
                    format!("{:.0}%", p.i2 * 100.0),
                    p.hosts.to_string(),
                    p.verdict.clone(),
                ])
            })
            .collect(),
        right_aligned: vec![2, 3, 4, 5, 6],
    });

    doc.heading(2, "Per host, headline metrics");
    let envs = fleet.compared_envs();
    let mut headlines: Vec<(String, String)> = Vec::new();
    for r in fleet.rows.iter().filter(|r| r.headline) {
        let key = (r.workload.clone(), r.metric.clone());
        if !headlines.contains(&key) {
            headlines.push(key);
        }
    }
    for (w, m) in headlines {
        doc.heading(3, format!("{w}/{m}"));
        let mut header = vec!["host".to_string()];
        header.extend(envs.iter().cloned());
        let cell = |env: &str, host: Option<usize>| -> String {
            let Some(r) = fleet
                .rows
                .iter()
                .find(|r| r.workload == w && r.metric == m && r.env == env)
            else {
                return "–".into();
            };
            match host {
                Some(i) => r
                    .host(i)
                    .map(|o| with_interval(o.estimate, o.ci95_low, o.ci95_high))
                    .unwrap_or_else(|| "–".into()),
                None => r
                    .pooled
                    .as_ref()
                    .map(|p| {
                        format!(
                            "{} (I² {:.0}%)",
                            with_interval(p.estimate, p.ci95_low, p.ci95_high),
                            p.i2 * 100.0
                        )
                    })
                    .unwrap_or_else(|| "–".into()),
            }
        };
        let mut rows: Vec<Vec<String>> = fleet
            .hosts
            .iter()
            .map(|h| {
                let mut row = vec![h.name.clone()];
                row.extend(envs.iter().map(|e| cell(e, Some(h.index))));
                row
            })
            .collect();
        let mut pooled = vec!["pooled".to_string()];
        pooled.extend(envs.iter().map(|e| cell(e, None)));
        rows.push(pooled);
        doc.table(Table {
            header,
            rows,
            right_aligned: (1..=envs.len()).collect(),
        });
        if let Some((_, f)) = figures.iter().find(|(k, _)| *k == format!("{w}/{m}")) {
            doc.figure(f.clone());
        }
    }
    doc
}

/// A file-name stem for a metric: `forest-cpu.int-hash`.
fn plot_name(workload: &str, metric: &str) -> String {
    let clean: String = format!("{workload}-{metric}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("forest-{clean}")
}

/// The fleet as one run for `compare` and `baseline save`: every host's samples, rounds
/// renumbered so that host `i`'s block `r` is round `i·stride + r` (pairs never cross
/// hosts), and a `run.json` whose host facts list the fleet's.
pub fn fleet_run(fleet: &Fleet, runs: &[HostRun]) -> (RunFile, Vec<SampleRow>) {
    let stride = runs
        .iter()
        .flat_map(|r| r.data.samples.iter().map(|s| s.round))
        .max()
        .map_or(1, |m| m + 1);
    let samples: Vec<SampleRow> = runs
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.data.samples.iter().map(move |s| SampleRow {
                round: i as u32 * stride + s.round,
                ..s.clone()
            })
        })
        .collect();
    let first = &runs[0].data.run;
    let distinct = |f: &dyn Fn(&HostFacts) -> String| -> String {
        let mut v: Vec<String> = Vec::new();
        for r in runs {
            let x = f(&r.data.run.host);
            if !v.contains(&x) {
                v.push(x);
            }
        }
        v.join(" | ")
    };
    let mut environments: Vec<EnvRecord> = Vec::new();
    for r in runs {
        for e in &r.data.run.environments {
            if !environments.iter().any(|x| x.label == e.label) {
                environments.push(e.clone());
            }
        }
    }
    let mut labels = BTreeMap::from([
        ("fleet.hosts".to_string(), runs.len().to_string()),
        (
            "fleet.runs".to_string(),
            runs.iter()
                .map(|r| r.data.run.run_id.clone())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]);
    labels.insert("fleet.stride".into(), stride.to_string());
    let run = RunFile {
        schema_version: crate::results::SCHEMA_VERSION,
        isobench_version: first.isobench_version.clone(),
        git_commit: first.git_commit.clone(),
        run_id: format!("fleet-{}-hosts", runs.len()),
        started_at: runs
            .iter()
            .map(|r| r.data.run.started_at.clone())
            .min()
            .unwrap_or_default(),
        finished_at: runs
            .iter()
            .filter_map(|r| r.data.run.finished_at.clone())
            .max(),
        outcome: if runs.iter().all(|r| r.data.run.outcome == Outcome::Complete) {
            Outcome::Complete
        } else {
            Outcome::Interrupted
        },
        host: HostFacts {
            hostname: format!("fleet of {} hosts", runs.len()),
            cpu_model: distinct(&|h| h.cpu_model.clone()),
            cores: runs
                .iter()
                .map(|r| r.data.run.host.cores)
                .min()
                .unwrap_or(0),
            memory_bytes: runs
                .iter()
                .map(|r| r.data.run.host.memory_bytes)
                .min()
                .unwrap_or(0),
            kernel: distinct(&|h| h.kernel.clone()),
            kvm_flavour: distinct(&|h| h.kvm_flavour.clone()),
            virtualized: runs.iter().any(|r| r.data.run.host.virtualized),
            free_page_reporting: runs.iter().any(|r| r.data.run.host.free_page_reporting),
            cgroup_version: distinct(&|h| h.cgroup_version.clone()),
            thp: distinct(&|h| h.thp.clone()),
            clocksource: distinct(&|h| h.clocksource.clone()),
            tsc_hz: first.host.tsc_hz,
            tsc_source: distinct(&|h| h.tsc_source.clone()),
        },
        config: first.config.clone(),
        image: first.image.clone(),
        environments,
        summaries: Vec::new(),
        warnings: fleet
            .differences
            .iter()
            .chain(&fleet.notes)
            .cloned()
            .collect(),
        measurement: None,
        labels,
        failures: runs
            .iter()
            .flat_map(|r| r.data.run.failures.clone())
            .collect(),
    };
    (run, samples)
}

/// Writes every file of the fleet into `out` (which exists); returns them in order.
pub fn write_fleet(
    fleet: &Fleet,
    runs: &[HostRun],
    out: &Path,
) -> Result<Vec<PathBuf>, FleetError> {
    let mut files = Vec::new();
    let json = serde_json::to_vec_pretty(fleet).map_err(|e| write_err(&out.join(FLEET_JSON), e))?;
    files.push(write(&out.join(FLEET_JSON), &json)?);
    let csv = fleet_csv(fleet).map_err(|e| write_err(&out.join(FLEET_CSV), e))?;
    files.push(write(&out.join(FLEET_CSV), &csv)?);

    let envs = fleet.compared_envs();
    let mut figures = Vec::new();
    let mut done: Vec<(String, String)> = Vec::new();
    for r in fleet.rows.iter().filter(|r| r.headline) {
        let key = (r.workload.clone(), r.metric.clone());
        if done.contains(&key) {
            continue;
        }
        done.push(key);
        let f = forest(fleet, &r.workload, &r.metric, &envs);
        let name = plot_name(&r.workload, &r.metric);
        let plot = render_forest(
            &f,
            &out.join(PLOT_DIR),
            &name,
            "One row per host: each environment's overhead against native with its 95% \
             interval; the diamond is the pooled random-effects estimate with its 95% \
             interval; the shaded band is the ±margin.",
        )
        .map_err(|e| write_err(&out.join(PLOT_DIR), e))?;
        files.push(plot.svg_path.clone());
        files.push(plot.png_path.clone());
        figures.push((
            r.label(),
            Figure {
                title: plot.title.clone(),
                png_path: format!("{PLOT_DIR}/{name}.png"),
                svg_path: format!("{PLOT_DIR}/{name}.svg"),
                svg: plot.svg.clone(),
                caption: plot.caption.clone(),
            },
        ));
    }
    let doc = document(fleet, &figures);
    files.push(write(
        &out.join(FLEET_MD),
        markdown::markdown(&doc).as_bytes(),
    )?);
    files.push(write(&out.join(FLEET_HTML), html::html(&doc).as_bytes())?);

    let (run, samples) = fleet_run(fleet, runs);
    let samples_path = out.join(SAMPLES_CSV);
    let mut writer =
        SamplesWriter::create(&samples_path).map_err(|e| write_err(&samples_path, e))?;
    writer
        .round_done(&samples)
        .map_err(|e| write_err(&samples_path, e))?;
    drop(writer);
    files.push(samples_path);
    let run_json =
        serde_json::to_vec_pretty(&run).map_err(|e| write_err(&out.join(RUN_JSON), e))?;
    files.push(write(&out.join(RUN_JSON), &run_json)?);
    Ok(files)
}
