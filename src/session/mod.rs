//! One run, from plan to report, as a library function: probe the environments, size and
//! start their instances, prove each runs the embedded image, drive the round protocol,
//! write `run.json` and `samples.csv`, and render the report. The CLI only parses, shows
//! progress and prints; a test or another front end calls [`run`] the same way.
//! The life of a run is described in `docs/ARCHITECTURE.md`.

pub mod clean;
pub mod cpus;
mod instances;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};

use crate::analysis::Analysis;
use crate::env::InstanceSpec;
use crate::measure::{self, Ended, Progress, Protocol};
use crate::plan::{Design, Plan, Thp, MIN_BLOCKS, ONE_OPERATION_BLOCKS};
use crate::results::{self, Outcome, RunConfig, RunFile, SampleRow, SampleSink, SamplesWriter};
use crate::results::{EnvKind, Measurement};
use crate::scratch::Scratch;
use crate::stats::sequential::StoppingRule;
use crate::workload::isa::{self, Isa};
use crate::workload::{threads, Sizing, Span};
use crate::{analysis, baseline, host, image, report};
use cpus::HarnessPin;

/// Bytes of scratch space one environment instance may need beyond its disk file.
const SCRATCH_SLACK: u64 = 64 << 20;

/// What a front end is told while a run goes on.
pub trait Observer: Progress {
    /// Something the user should know (an environment skipped, a leftover found).
    fn note(&mut self, message: &str);
    /// The measurement starts, with this design.
    fn measuring(&mut self, _design: &Design) {}
    /// The measurement has ended (before the report is rendered).
    fn measured(&mut self) {}
}

/// A finished run: where its files are, how it ended, and its analysis.
pub struct Finished {
    pub run_dir: PathBuf,
    pub outcome: Outcome,
    /// Measured blocks handed to `samples.csv` (all workloads).
    pub blocks_done: u64,
    /// The report's analysis, when any sample was taken and the report rendered.
    pub analysis: Option<Analysis>,
    /// Why the run failed, when it did (what was measured is still in `run_dir`).
    pub failure: Option<anyhow::Error>,
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

/// What each environment offers: (label, its ISA tiers).
type Offers = Vec<(String, Vec<Isa>)>;

/// The tier every environment runs, and what each offers: `--isa` if all offer it (an
/// error naming the one that does not), or with `best` the highest common tier, with a note
/// when an environment holds the others back.
fn isa_tier(
    plan: &Plan,
    envs: &mut [Box<dyn crate::env::Environment>],
    observer: &mut dyn Observer,
) -> Result<(Isa, Offers)> {
    let mut offers = Vec::new();
    for e in envs.iter_mut() {
        let tiers = e
            .isa_tiers()
            .with_context(|| format!("reading the ISA tiers of the {} environment", e.label()))?;
        offers.push((e.label().to_string(), tiers));
    }
    let tier = isa::choose(plan.isa, &offers)?;
    for (label, offered) in &offers {
        if plan.isa == isa::IsaChoice::Best && offered.iter().any(|t| *t > tier) {
            observer.note(&format!(
                "note: {label} offers {}, but every environment runs {tier}, the best they all offer",
                isa::list(offered)
            ));
        }
    }
    if plan.workloads.iter().any(|w| isa::TIERED.contains(&w.name)) {
        observer.note(&format!(
            "ISA tier {tier} ({}) for {} in every environment",
            tier.describe(),
            isa::TIERED.join(" and ")
        ));
    }
    Ok((tier, offers))
}

/// Run `plan` to the end (or until `interrupted`). An `Err` means nothing was measured and
/// no run directory holds results; once the run directory exists, failures are reported
/// in [`Finished::failure`] with the partial results kept.
pub fn run(plan: &Plan, observer: &mut dyn Observer, interrupted: &AtomicBool) -> Result<Finished> {
    let image_sha = image::sha256_hex();
    let scratch_root = plan
        .scratch
        .clone()
        .unwrap_or_else(|| plan.out.join(".scratch"));
    warn_about_leftovers(plan, observer);

    let (mut envs, mut records) = instances::build_available(plan, observer)?;
    // Host facts first: they read the CPUs this process may use, before it is pinned.
    let host = host::facts();
    let pinning = cpus::resolve_threads(plan.cpu, plan.threads)?;
    // From here on the harness (and every runner it forks, until the runner pins itself)
    // keeps off the measured CPU; undone when the run returns.
    let _harness_pin = match pinning.measured {
        Some(_) => Some(HarnessPin::new(&pinning.harness)?),
        None => None,
    };

    observer.note(&format!(
        "version {}, image sha256 {}…, {} profile, {}, {} warm-up block(s) per workload, seed {}, measured on {}",
        env!("CARGO_PKG_VERSION"),
        &image_sha[..16],
        plan.profile.name(),
        match plan.design {
            Design::Fixed { blocks } => format!("{blocks} blocks per workload"),
            Design::Budget { budget, precision } => format!(
                "budget {} s for ±{}%",
                budget.as_secs_f64(),
                precision * 100.0
            ),
        },
        plan.warmup,
        plan.seed,
        match pinning.measured {
            Some(c) => format!("CPU {c} (harness on {})", cpus::list(&pinning.harness)),
            None => "any CPU (not pinned)".to_string(),
        }
    ));
    if plan.threads > 1 {
        observer.note(&format!(
            "threads: {} for {} (CPUs {}; vCPUs in the vm), the other workloads on one thread",
            plan.threads,
            threads::THREADED.join(", "),
            match pinning.threads.is_empty() {
                true => "not pinned".to_string(),
                false => pinning
                    .threads
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            }
        ));
    }
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
    // `isobench exec`: the command's samples keep their output in the run directory.
    let command = plan.exec.clone().map(|mut c| {
        c.spec.output_dir = run_dir.join("output");
        c.binary = resolve_program(&c.spec.argv[0], &c.spec.env, &c.spec.cwd)
            .and_then(|p| Some((p.clone(), image::sha256_hex_of(&std::fs::read(&p).ok()?))));
        c
    });

    // Prepare the workloads: parameters and reference checksums, computed once. With a
    // container CPU quota every invocation spans several CFS periods, so the quota cannot be
    // escaped between two periods; the same sizes for every environment.
    let sizing = Sizing {
        profile: plan.profile,
        span: if plan.container.cpus.is_some()
            && plan.envs.iter().any(|k| {
                matches!(
                    k,
                    EnvKind::Container
                        | EnvKind::Runc
                        | EnvKind::Crun
                        | EnvKind::Oci
                        | EnvKind::Runsc
                )
            }) {
            Span::CfsSafe
        } else {
            Span::Short
        },
    };
    // One ISA tier for every environment (`--isa`), resolved before anything starts.
    let (tier, offers) = isa_tier(plan, &mut envs, observer)?;
    let mut stream_copy = None;
    let prepared: Vec<_> = plan
        .workloads
        .iter()
        .map(|w| {
            let mut p = (w.prepare)(sizing, plan.seed);
            tier.apply(&mut p.invocation);
            // `--threads`: each thread does one share (the whole for one thread).
            let mut p = threads::share(&p, plan.threads);
            if w.name == "mem.stream" {
                stream_copy = Some(crate::workload::set_stream_copy(&mut p, plan.stream_copy));
            }
            (*w, p)
        })
        .collect();
    let spec = InstanceSpec {
        work_size: prepared
            .iter()
            .map(|(_, p)| p.work_bytes)
            .max()
            .unwrap_or(0)
            .next_multiple_of(2 << 20),
        disk_size: prepared
            .iter()
            .map(|(_, p)| p.disk_bytes)
            .max()
            .unwrap_or(0),
        scratch: scratch.clone(),
        deadline: plan.deadline,
        thp: plan.vm.thp == Thp::On,
        cpu: pinning.measured,
        threads: plan.threads,
        thread_cpus: pinning.threads.clone(),
    };
    check_free_space(
        &scratch,
        (spec.disk_size + SCRATCH_SLACK) * envs.len() as u64,
    )?;

    let io_warnings =
        if host.free_page_reporting && plan.workloads.iter().any(|w| w.name.starts_with("io.")) {
            vec![host::free_page_reporting_warning()]
        } else {
            Vec::new()
        };
    let mut run = RunFile {
        schema_version: results::SCHEMA_VERSION,
        isobench_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: env!("ISOBENCH_GIT_COMMIT").into(),
        run_id,
        started_at: chrono::Utc::now().to_rfc3339(),
        finished_at: None,
        outcome: Outcome::Running,
        host,
        config: RunConfig {
            environments: plan.envs.clone(),
            workloads: plan.workload_names(),
            profile: plan.profile,
            rounds: match plan.design {
                Design::Fixed { blocks } => blocks,
                Design::Budget { .. } => 0,
            },
            warmup: plan.warmup,
            seed: plan.seed,
            scratch: scratch.display().to_string(),
            command_line: std::env::args().collect(),
            options: {
                let mut o = plan.recorded_options();
                o.insert(
                    "cpu".into(),
                    pinning
                        .measured
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "none".into()),
                );
                o.insert("harness_cpus".into(), cpus::list(&pinning.harness));
                if plan.threads > 1 {
                    o.insert("thread_cpus".into(), cpus::list(&pinning.threads));
                    o.insert("threaded_workloads".into(), threads::THREADED.join(","));
                }
                o.insert("span".into(), sizing.span.name().into());
                if let Some(c) = &command {
                    let (path, sha) = c
                        .binary
                        .clone()
                        .unwrap_or_else(|| ("not found on the host".into(), "unknown".into()));
                    o.insert("exec.binary".into(), path.display().to_string());
                    o.insert("exec.binary_sha256".into(), sha);
                }
                o.insert("isa".into(), tier.name().into());
                if let Some(why) = stream_copy {
                    o.insert("mem.stream.copy".into(), why);
                }
                o
            },
        },
        image: results::ImageFacts {
            sha256: image_sha.clone(),
            size_bytes: image::IMAGE.len() as u64,
            load_address: format!("{:#x}", isobench_abi::IMAGE_BASE),
        },
        environments: Vec::new(),
        summaries: Vec::new(),
        warnings: io_warnings,
        measurement: None,
        labels: plan.labels.clone(),
        failures: Vec::new(),
    };

    // Start every environment and prove each runs the embedded image; one that fails to
    // start fails the run.
    let mut failure = instances::start_all(&mut envs, &spec, observer).err();
    let mut started = instances::records(&envs, &image_sha, &mut failure);
    for r in &mut started {
        if let Some((_, offered)) = offers.iter().find(|(label, _)| *label == r.label) {
            r.facts.insert("isa_offered".into(), isa::list(offered));
        }
        r.facts.insert("isa".into(), tier.name().into());
    }
    records.extend(started);
    records.sort_by_key(|r| results::label_rank(&r.label));
    run.environments = records;
    let run_json = run_dir.join(results::RUN_JSON);
    write_run(&run_json, &run)?;

    let samples_path = run_dir.join(results::SAMPLES_CSV);
    let mut tee = Tee {
        writer: SamplesWriter::create(&samples_path)
            .with_context(|| format!("creating {}", samples_path.display()))?,
        rows: Vec::new(),
    };
    let mut measured: Option<measure::Outcome> = None;
    if failure.is_none() {
        observer.measuring(&plan.design);
        let protocol = Protocol {
            workloads: &prepared,
            profile: plan.profile,
            start: plan.start,
            design: match plan.design {
                Design::Fixed { blocks } => measure::Design::Fixed { blocks },
                Design::Budget { budget, precision } => measure::Design::Budget {
                    budget,
                    // The target is a half-width of the overhead; the rule works on log
                    // ratios, where it is ln(1 + precision).
                    rule: StoppingRule {
                        target_half_width: (1.0 + precision).ln(),
                        min_n: crate::stats::sequential::DEFAULT_MIN_N,
                    },
                    min_blocks: MIN_BLOCKS,
                    one_operation_blocks: ONE_OPERATION_BLOCKS,
                },
            },
            warmup: plan.warmup,
            seed: plan.seed,
            tsc_hz: run.host.tsc_hz,
            spec: &spec,
            margin: plan.margin,
            estimator: plan.estimator(),
            inject: plan.inject.as_ref().map(|i| (i.env.clone(), i.fraction)),
            command: command.as_ref(),
            keep_going: plan.keep_going,
        };
        match measure::run(&mut envs, &protocol, &mut tee, observer, interrupted) {
            Ok(o) => {
                // `--keep-going`: the run went on past these, and still ends failed.
                if !o.failures.is_empty() {
                    let each: Vec<String> = o
                        .failures
                        .iter()
                        .map(|f| format!("{} in {}: {}", f.workload, f.env, f.error))
                        .collect();
                    failure = Some(anyhow::anyhow!(
                        "{} workload(s) failed and were dropped, the others went on (--keep-going): {}",
                        o.failures.len(),
                        each.join("; ")
                    ));
                }
                run.failures = o
                    .failures
                    .iter()
                    .map(|f| results::Failure {
                        workload: f.workload.clone(),
                        env: f.env.clone(),
                        error: f.error.clone(),
                    })
                    .collect();
                measured = Some(o)
            }
            Err(err) => failure = Some(anyhow::Error::new(err).context("measuring")),
        }
        observer.measured();
    }
    for e in envs.iter_mut() {
        if let Err(err) = e.stop() {
            let warning = format!("stopping {}: {err}", e.label());
            observer.note(&format!("warning: {warning}"));
            run.warnings.push(warning);
        }
    }
    drop(envs);

    run.summaries = analysis::summarize(&tee.rows);
    run.finished_at = Some(chrono::Utc::now().to_rfc3339());
    run.outcome = match (&failure, measured.as_ref().map(|m| &m.ended)) {
        (Some(_), _) => Outcome::Failed,
        (None, Some(Ended::Complete { .. })) => Outcome::Complete,
        (None, _) => Outcome::Interrupted,
    };
    run.measurement = measured.as_ref().map(|m| Measurement {
        stop: match m.ended {
            Ended::Complete { stop } => stop.name().to_string(),
            Ended::Interrupted => "interrupted".to_string(),
        },
        elapsed_s: m.elapsed.as_secs_f64(),
        blocks: m.blocks.iter().cloned().collect(),
    });
    // A `--keep-going` failure is in `run.failures` already, each on its own.
    if let Some(err) = failure.as_ref().filter(|_| run.failures.is_empty()) {
        run.warnings.push(describe(err));
    }
    write_run(&run_json, &run)?;

    if let Err(err) = baseline::update_latest_link(&plan.out, &run_dir) {
        observer.note(&format!(
            "warning: could not point {}/latest at this run: {err}",
            plan.out.display()
        ));
    }

    // The report: summary.csv, overhead.csv, report.md/html and plots, from the files alone.
    let analysis = match report::render(&run_dir, Some(plan.margin), None) {
        Ok(rendered) => (!tee.rows.is_empty()).then_some(rendered.analysis),
        Err(err) => {
            let err = anyhow::Error::new(err).context(format!(
                "rendering the report (re-run `isobench report {}` once fixed)",
                run_dir.display()
            ));
            failure.get_or_insert(err);
            None
        }
    };
    let blocks_done = measured
        .as_ref()
        .map(|m| m.blocks.iter().map(|(_, b)| u64::from(*b)).sum())
        .unwrap_or(0);
    let outcome = if failure.is_none() && interrupted.load(Ordering::SeqCst) {
        Outcome::Interrupted
    } else {
        run.outcome
    };
    Ok(Finished {
        run_dir,
        outcome,
        blocks_done,
        analysis,
        failure,
    })
}

/// An error and its causes on one line, outermost first. Many errors already quote their
/// source in their own message; a cause whose text is already there is not repeated.
pub fn describe(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

/// Say when a killed run left things behind that `isobench clean` would remove.
fn warn_about_leftovers(plan: &Plan, observer: &mut dyn Observer) {
    let found = clean::leftovers(&clean::scratch_roots(&plan.out, plan.scratch.as_deref()));
    if let Some(first) = found.first() {
        observer.note(&format!(
            "warning: {} thing(s) left behind by a killed isobench run (first: {first}); `isobench clean` removes them",
            found.len()
        ));
    }
}

/// The file a command's program name resolves to on the host: itself when it has a `/`
/// (relative to `cwd`), else the first executable match on the command's `PATH`.
fn resolve_program(program: &str, env: &[(String, String)], cwd: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = cwd.join(program);
        return executable(&p).then(|| p.canonicalize().unwrap_or(p));
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())?;
    std::env::split_paths(path)
        .map(|d| cwd.join(d).join(program))
        .find(|p| executable(p))
        .map(|p| p.canonicalize().unwrap_or(p))
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

fn check_free_space(scratch: &Path, needed: u64) -> Result<()> {
    let free = nix::sys::statvfs::statvfs(scratch)
        .ok()
        .map(|s| s.blocks_available() * s.fragment_size());
    match free {
        Some(free) if free < needed => bail!(
            "the scratch directory {} has {} MiB free, the run needs about {} MiB: free space there or point --scratch at a larger filesystem",
            scratch.display(),
            free >> 20,
            needed >> 20
        ),
        _ => Ok(()),
    }
}

fn write_run(path: &Path, run: &RunFile) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(run).context("serialising run.json")?;
    bytes.push(b'\n');
    results::write_atomic(path, &bytes).with_context(|| format!("writing {}", path.display()))
}
