//! `isobench run`: plan, start the environments, run the rounds, write the results.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use super::args::RunArgs;
use super::ExitCode;
use crate::env::{self, EnvKind, Environment, InstanceSpec};
use crate::measure::{self, Ended, Progress, Protocol, SampleSink};
use crate::plan::Plan;
use crate::results::{self, EnvRecord, RunConfig, RunFile, SampleRow, SamplesWriter};
use crate::scratch::Scratch;
use crate::{host, image, report, stats, workload};

/// Bytes of scratch space one environment instance may need beyond its disk file.
const SCRATCH_SLACK: u64 = 64 << 20;

/// Progress bar on a terminal; a line per round otherwise.
struct Bar {
    bar: ProgressBar,
    rounds: u32,
    warmup: u32,
    t0: Instant,
}

impl Progress for Bar {
    fn task_started(&mut self, round: u32, warmup: bool, env: &str, workload: &str) {
        let phase = if warmup {
            format!("warm-up {}/{}", round + 1, self.warmup)
        } else {
            format!("round {}/{}", round - self.warmup + 1, self.rounds)
        };
        self.bar
            .set_message(format!("{phase}  {env:<9} {workload}"));
    }
    fn task_done(&mut self) {
        self.bar.inc(1);
    }
    fn round_done(&mut self, round: u32) {
        // Without a terminal the bar is hidden: say something per round instead.
        if self.bar.is_hidden() {
            let what = if round < self.warmup {
                "warm-up round"
            } else {
                "round"
            };
            let (n, of) = if round < self.warmup {
                (round + 1, self.warmup)
            } else {
                (round - self.warmup + 1, self.rounds)
            };
            eprintln!(
                "  {what} {n}/{of} done ({:.0} s)",
                self.t0.elapsed().as_secs_f64()
            );
        }
    }
}

/// Writes every round to samples.csv and keeps a copy for the summaries.
struct Tee {
    writer: SamplesWriter,
    rows: Vec<SampleRow>,
}

impl SampleSink for Tee {
    fn round_done(&mut self, rows: &[SampleRow]) -> std::io::Result<()> {
        self.writer.round_done(rows)?;
        self.rows.extend_from_slice(rows);
        Ok(())
    }
}

/// A new, unique run directory under `out`: `<UTC timestamp>[-N]`.
fn create_run_dir(out: &Path) -> Result<(String, PathBuf)> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the results directory {}", out.display()))?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    for n in 0..1000 {
        let id = if n == 0 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = out.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((id, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("creating the run directory {}", dir.display()))
            }
        }
    }
    bail!(
        "could not find a free run directory name under {}",
        out.display()
    )
}

fn free_bytes(dir: &Path) -> Option<u64> {
    nix::sys::statvfs::statvfs(dir)
        .ok()
        .map(|s| s.blocks_available() * s.fragment_size())
}

pub fn run(args: &RunArgs, interrupted: Arc<AtomicBool>) -> Result<ExitCode> {
    let plan =
        Plan::from_args(args).map_err(|e| anyhow::Error::new(e).context("invalid run options"))?;
    let (image_sha, image_size) = (image::sha256_hex(), image::IMAGE.len());

    let scratch_root = plan
        .scratch
        .clone()
        .unwrap_or_else(|| plan.out.join(".scratch"));
    let mut leftovers: Vec<String> = crate::scratch::stale(&scratch_root)
        .iter()
        .map(|d| format!("scratch directory {}", d.display()))
        .collect();
    if plan.envs.contains(&EnvKind::Container) {
        leftovers.extend(
            env::container::find_leftovers()
                .iter()
                .map(|l| l.to_string()),
        );
    }
    if let Some(first) = leftovers.first() {
        eprintln!(
            "isobench: warning: {} thing(s) left behind by a killed isobench run (first: {first}); `isobench clean` removes them",
            leftovers.len()
        );
    }

    // Which environments can run here.
    let mut records: Vec<EnvRecord> = Vec::new();
    let mut envs: Vec<Box<dyn Environment>> = Vec::new();
    for &kind in &plan.envs {
        let labels: &[&str] = if kind == EnvKind::Native {
            &["native", "native-b"]
        } else {
            &[kind.name()]
        };
        match env::probe(kind) {
            Ok(()) => {
                for label in labels {
                    envs.push(env::build(kind, label, &plan)?);
                }
            }
            Err(reason) => {
                if plan.strict {
                    bail!(
                        "the {} environment cannot run here: {reason} (drop --strict to skip it)",
                        kind.name()
                    );
                }
                eprintln!(
                    "isobench: skipping the {} environment: {reason}",
                    kind.name()
                );
                for label in labels {
                    records.push(EnvRecord {
                        label: label.to_string(),
                        kind: kind.name().into(),
                        status: "skipped".into(),
                        reason: Some(reason.clone()),
                        ..Default::default()
                    });
                }
            }
        }
    }
    if envs.is_empty() {
        bail!("no requested environment can run here (see the reasons above)");
    }
    if !envs.iter().any(|e| e.kind() == EnvKind::Native) {
        eprintln!("isobench: note: without the native environment there is no baseline, so no overhead can be computed");
    }

    eprintln!(
        "isobench {}: image sha256 {}…, {} profile, {} rounds + {} warm-up, seed {}",
        env!("CARGO_PKG_VERSION"),
        &image_sha[..16],
        if plan.profile == workload::Profile::Quick {
            "quick"
        } else {
            "full"
        },
        plan.rounds,
        plan.warmup,
        plan.seed
    );
    let host = host::facts();
    let (run_id, run_dir) = create_run_dir(&plan.out)?;
    // Removed when this function returns, however the run ends; `isobench clean` finds it
    // if the process is killed.
    let scratch_dir = Scratch::create(&scratch_root, &run_id).with_context(|| {
        format!(
            "creating the scratch directory {} (use --scratch to put it elsewhere)",
            scratch_root.join(&run_id).display()
        )
    })?;
    let scratch = scratch_dir.path().to_path_buf();

    // Prepare the workloads: parameters and reference checksums, computed once.
    let prepared: Vec<_> = plan
        .workloads
        .iter()
        .map(|w| (*w, (w.prepare)(plan.profile, plan.seed)))
        .collect();
    let work_size = prepared
        .iter()
        .map(|(_, p)| p.work_bytes)
        .max()
        .unwrap_or(0)
        .next_multiple_of(2 << 20);
    let disk_size = prepared
        .iter()
        .map(|(_, p)| p.disk_bytes)
        .max()
        .unwrap_or(0);
    let spec = InstanceSpec {
        work_size,
        disk_size,
        scratch: scratch.clone(),
        deadline: plan.deadline,
        thp: plan.thp,
    };
    let needed = (disk_size + SCRATCH_SLACK) * envs.len() as u64;
    if let Some(free) = free_bytes(&scratch) {
        if free < needed {
            bail!(
                "the scratch directory {} has {} MiB free, the run needs about {} MiB: free space there or point --scratch at a larger filesystem",
                scratch.display(),
                free >> 20,
                needed >> 20
            );
        }
    }

    let mut run = RunFile {
        schema_version: results::SCHEMA_VERSION,
        isobench_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: env!("ISOBENCH_GIT_COMMIT").into(),
        run_id: run_id.clone(),
        started_at: chrono::Utc::now().to_rfc3339(),
        finished_at: None,
        outcome: "running".into(),
        host,
        config: RunConfig {
            environments: plan.envs.iter().map(|k| k.name().to_string()).collect(),
            workloads: plan.workload_names(),
            profile: format!("{:?}", plan.profile).to_lowercase(),
            rounds: plan.rounds,
            warmup: plan.warmup,
            seed: plan.seed,
            scratch: scratch.display().to_string(),
            command_line: std::env::args().collect(),
            options: plan_options(&plan),
        },
        image: results::ImageFacts {
            sha256: image_sha.clone(),
            size_bytes: image_size as u64,
            load_address: format!("{:#x}", isobench_abi::IMAGE_BASE),
        },
        environments: Vec::new(),
        summaries: Vec::new(),
        warnings: Vec::new(),
    };

    // Start every environment; one that fails to start fails the run.
    let mut failure: Option<anyhow::Error> = None;
    for e in envs.iter_mut() {
        eprintln!(
            "  starting {} ({} MiB working memory)…",
            e.label(),
            work_size >> 20
        );
        if let Err(err) = e.start(&spec) {
            failure = Some(
                anyhow::Error::new(err).context(format!("starting the {} environment", e.label())),
            );
            break;
        }
    }
    for e in &envs {
        let mut facts = e.facts();
        // Prove that every environment runs the same bytes: read the image back from the
        // running instance (runner memory or guest memory) and hash it.
        let loaded = if failure.is_some() {
            None
        } else {
            e.loaded_image()
        };
        let image_sha256 = match loaded {
            Some(Ok(bytes)) => {
                let sha = image::sha256_hex_of(&bytes);
                if sha != image_sha {
                    failure.get_or_insert(anyhow::anyhow!(
                        "the image loaded in the {} environment has sha256 {sha}, not the embedded image's {image_sha}: its memory was altered after loading",
                        e.label()
                    ));
                }
                facts.insert(
                    "image_verified".into(),
                    "read back from the running instance".into(),
                );
                sha
            }
            Some(Err(err)) => {
                facts.insert(
                    "image_verified".into(),
                    format!("no: reading it back failed ({err})"),
                );
                image_sha.clone()
            }
            None => {
                facts.insert("image_verified".into(), "no: not read back".into());
                image_sha.clone()
            }
        };
        records.push(EnvRecord {
            label: e.label().into(),
            kind: e.kind().name().into(),
            status: if failure.is_some() {
                "failed".into()
            } else {
                "ran".into()
            },
            reason: None,
            image_sha256,
            facts,
        });
    }
    records.sort_by_key(|r| env_rank(&r.label));
    run.environments = records;
    let run_json = run_dir.join(results::RUN_JSON);
    write_run(&run_json, &run)?;

    let mut tee = Tee {
        writer: SamplesWriter::create(&run_dir.join(results::SAMPLES_CSV)).with_context(|| {
            format!("creating {}", run_dir.join(results::SAMPLES_CSV).display())
        })?,
        rows: Vec::new(),
    };
    let mut ended = Ended::Interrupted { rounds_done: 0 };
    if failure.is_none() {
        let tasks_per_round = envs.len() as u64 * (prepared.len() as u64 + u64::from(plan.start));
        let bar = ProgressBar::new(tasks_per_round * u64::from(plan.rounds + plan.warmup));
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} eta {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let mut progress = Bar {
            bar,
            rounds: plan.rounds,
            warmup: plan.warmup,
            t0: Instant::now(),
        };
        let protocol = Protocol {
            workloads: &prepared,
            start: plan.start,
            rounds: plan.rounds,
            warmup: plan.warmup,
            seed: plan.seed,
            tsc_hz: run.host.tsc_hz,
            spec: &spec,
        };
        match measure::run_rounds(&mut envs, &protocol, &mut tee, &mut progress, &interrupted) {
            Ok(e) => ended = e,
            Err(err) => failure = Some(anyhow::Error::new(err).context("measuring")),
        }
        progress.bar.finish_and_clear();
    }
    for e in envs.iter_mut() {
        if let Err(err) = e.stop() {
            run.warnings.push(format!("stopping {}: {err}", e.label()));
            eprintln!("isobench: warning: stopping {}: {err}", e.label());
        }
    }
    drop(envs);

    let env_order: Vec<String> = run.environments.iter().map(|r| r.label.clone()).collect();
    run.summaries = stats::summary::summarize(&tee.rows, &env_order);
    run.finished_at = Some(chrono::Utc::now().to_rfc3339());
    run.outcome = match (&failure, &ended) {
        (Some(_), _) => "failed",
        (None, Ended::Complete) => "complete",
        (None, Ended::Interrupted { .. }) => "interrupted",
    }
    .into();
    if let Some(err) = &failure {
        run.warnings.push(super::describe(err));
    }
    write_run(&run_json, &run)?;

    if let Err(err) = crate::baseline::update_latest_link(&plan.out, &run_dir) {
        eprintln!(
            "isobench: warning: could not point {}/latest at this run: {err}",
            plan.out.display()
        );
    }

    // The report: summary.csv, overhead.csv, report.md/html and plots, from the files alone.
    match report::render(&run_dir, Some(args.margin / 100.0), None) {
        Ok(rendered) => {
            if !tee.rows.is_empty() {
                println!(
                    "{}",
                    report::terminal_table(&rendered.analysis, report::stdout_color_wanted())
                );
            }
        }
        Err(err) => {
            let err = anyhow::Error::new(err).context("rendering the report");
            eprintln!(
                "isobench: error: {} (re-run `isobench report {}` once fixed)",
                super::describe(&err),
                run_dir.display()
            );
            failure.get_or_insert(err);
        }
    }
    println!("results: {}", run_dir.display());
    if let Some(err) = failure {
        return Err(err.context(format!(
            "the run failed; what was measured is in {}",
            run_dir.display()
        )));
    }
    if let Ended::Interrupted { rounds_done } = ended {
        eprintln!("isobench: interrupted after {rounds_done} measured round(s); partial results kept in {}", run_dir.display());
        return Ok(ExitCode::Interrupted);
    }
    if interrupted.load(Ordering::SeqCst) {
        return Ok(ExitCode::Interrupted);
    }
    Ok(ExitCode::Success)
}

fn env_rank(label: &str) -> usize {
    ["native", "native-b", "container", "vm"]
        .iter()
        .position(|l| *l == label)
        .unwrap_or(usize::MAX)
}

fn write_run(path: &Path, run: &RunFile) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(run).context("serialising run.json")?;
    bytes.push(b'\n');
    results::write_atomic(path, &bytes).with_context(|| format!("writing {}", path.display()))
}

fn plan_options(plan: &Plan) -> BTreeMap<String, String> {
    let mut o = BTreeMap::new();
    let c = &plan.container;
    o.insert(
        "container.cpus".into(),
        c.cpus
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unlimited".into()),
    );
    o.insert(
        "container.memory_bytes".into(),
        c.memory_bytes
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unlimited".into()),
    );
    o.insert(
        "container.cpuset".into(),
        c.cpuset.clone().unwrap_or_else(|| "all".into()),
    );
    o.insert(
        "container.io_weight".into(),
        c.io_weight
            .map(|v| v.to_string())
            .unwrap_or_else(|| "default".into()),
    );
    o.insert(
        "container.upper".into(),
        if c.upper_tmpfs { "tmpfs" } else { "disk" }.into(),
    );
    o.insert(
        "vm.guest_page".into(),
        if plan.vm.guest_page_2m { "2m" } else { "4k" }.into(),
    );
    o.insert("thp".into(), if plan.thp { "on" } else { "off" }.into());
    o.insert("deadline_s".into(), plan.deadline.as_secs_f64().to_string());
    o
}
