//! `isobench claims`: one experiment per claim of the classic container story (our words
//! in [`CLAIMS`]), run with isobench's own environments and primitives, each ending in a
//! verdict with its evidence: claims 1, 2 and 6 from one run of the block protocol
//! (`session::run`), claim 3 with the container's cgroup, claim 4 with its namespaces,
//! claim 5 with its overlay. Writes `claims.md`, `claims.json` and `claims.svg`/`.png`.
//! docs/CLAIMS.md explains every experiment and verdict rule.

pub mod cgroups;
mod figure;
pub mod freezer;
mod helper;
pub mod io_limit;
pub mod namespaces;
pub mod output;
pub mod overhead;
pub mod overlay;
pub mod startup;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, FromArgMatches};
use serde::Serialize;

use crate::plan::{Plan, RunOptions};
use crate::scratch::Scratch;
use crate::session::{self, Observer};

/// The claims, in our words, numbered as in the explainer.
pub const CLAIMS: [&str; 6] = [
    "Containers share the host's kernel and resources, so their performance loss against native is only about 1%.",
    "Hypervisor virtualization (KVM) costs more than containers.",
    "cgroups control resources: a CPU hog in a cgroup limited to 10% is held at 10% of a CPU; memory, IO and freezer (pause/resume) are controlled the same way.",
    "Namespaces isolate: a filesystem mounted and a file created inside a mount namespace are invisible from outside, yet visible on entering it (nsenter); PID, UTS, network and IPC namespaces likewise.",
    "Union mounts (overlayfs) show layers as one directory; writes land only in the upper, read-write layer.",
    "Lighter runtimes make containers start fast, faster than virtual machines.",
];

/// The default time for claims 1, 2 and 6's run: with claims 3 to 5 (well under a minute)
/// and the instances' start, `isobench claims` ends within 10 minutes on a 2-CPU host.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(240);

/// A claim's (or one finding's) verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    Supported,
    Refuted,
    /// Undecided; `settle` says what would decide it.
    Inconclusive {
        settle: String,
    },
    /// The experiment cannot run here; `reason` says why.
    NotTestable {
        reason: String,
    },
}

impl Verdict {
    /// The verdict's words (`supported`, `not testable here`, ...).
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::Refuted => "refuted",
            Verdict::Inconclusive { .. } => "inconclusive",
            Verdict::NotTestable { .. } => "not testable here",
        }
    }

    /// What would settle it, or why it cannot be tested (empty for the others).
    pub fn note(&self) -> &str {
        match self {
            Verdict::Inconclusive { settle } => settle,
            Verdict::NotTestable { reason } => reason,
            _ => "",
        }
    }
}

/// One observation of an experiment, with its own verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// What it is about (`CPU · container`, `mount namespace`).
    pub subject: String,
    /// The measured evidence, with units and intervals.
    pub evidence: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// One claim's result.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimResult {
    pub number: u8,
    pub claim: String,
    pub experiment: String,
    pub findings: Vec<Finding>,
    /// The claim's verdict from its findings ([`combine`]).
    pub overall: Verdict,
    pub seconds: f64,
    /// The experiment's raw evidence, for claims.json.
    pub data: serde_json::Value,
}

/// The claim's verdict from its findings: refuted when any is; supported when every
/// testable one is (and at least one was testable); otherwise inconclusive, with what would
/// settle each open finding; not testable when nothing was.
pub fn combine(findings: &[Finding]) -> Verdict {
    if findings.iter().any(|f| f.verdict == Verdict::Refuted) {
        return Verdict::Refuted;
    }
    let open: Vec<String> = findings
        .iter()
        .filter_map(|f| match &f.verdict {
            Verdict::Inconclusive { settle } => Some(format!("{}: {settle}", f.subject)),
            _ => None,
        })
        .collect();
    if !open.is_empty() {
        return Verdict::Inconclusive {
            settle: open.join("; "),
        };
    }
    if findings.iter().any(|f| f.verdict == Verdict::Supported) {
        return Verdict::Supported;
    }
    Verdict::NotTestable {
        reason: findings
            .iter()
            .map(|f| f.verdict.note().to_string())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// What `isobench claims` was asked.
#[derive(Clone, Debug)]
pub struct Config {
    /// Claim numbers, 1..=6, ascending.
    pub claims: Vec<u8>,
    pub out: PathBuf,
    pub scratch: Option<PathBuf>,
    /// Time for the block-protocol run of claims 1, 2 and 6.
    pub budget: Duration,
    /// Precision target of that run, percent.
    pub precision: f64,
    /// Margin of claim 1's verdict, percent.
    pub margin: f64,
    pub seed: Option<u64>,
    /// Environments for that run (empty: all available).
    pub env: Vec<String>,
    /// `--cpu` of that run (`auto`, `none`, N).
    pub cpu: String,
}

/// Check the claim numbers: each 1..=6, returned sorted without repeats.
pub fn select(numbers: &[u8]) -> Result<Vec<u8>> {
    if let Some(bad) = numbers.iter().find(|n| !(1..=6).contains(*n)) {
        bail!("there is no claim {bad}: claims are numbered 1 to 6 (see `isobench claims --help`)");
    }
    let mut v = if numbers.is_empty() {
        (1..=6).collect()
    } else {
        numbers.to_vec()
    };
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// The workloads the block-protocol run needs for `claims` (none: no run).
pub fn run_workloads(claims: &[u8]) -> Vec<String> {
    let mut w = Vec::new();
    if claims.iter().any(|c| *c == 1 || *c == 2) {
        w.extend(overhead::AXES.iter().map(|(_, w)| w.to_string()));
    }
    if claims.contains(&6) {
        w.push(crate::workload::START.to_string());
    }
    w
}

/// The plan of the block-protocol run: `isobench run`'s own options and validation, with
/// the workloads the claims need.
pub fn session_plan(cfg: &Config, dir: &Path, scratch_root: &Path, seed: u64) -> Result<Plan> {
    let mut args: Vec<String> = vec![
        "run".into(),
        "--workload".into(),
        run_workloads(&cfg.claims).join(","),
        "--budget".into(),
        format!("{}s", cfg.budget.as_secs_f64()),
        "--precision".into(),
        cfg.precision.to_string(),
        "--margin".into(),
        cfg.margin.to_string(),
        "--seed".into(),
        seed.to_string(),
        "--cpu".into(),
        cfg.cpu.clone(),
        "--out".into(),
        dir.display().to_string(),
        "--scratch".into(),
        scratch_root.display().to_string(),
    ];
    if !cfg.env.is_empty() {
        args.push("--env".into());
        args.push(cfg.env.join(","));
    }
    let cmd = RunOptions::augment_args(clap::Command::new("run").no_binary_name(false));
    let matches = cmd
        .try_get_matches_from(&args)
        .map_err(|e| anyhow::anyhow!("{}", e.render().to_string().trim()))
        .context("the options for the claims' run")?;
    let opts = RunOptions::from_arg_matches(&matches).context("the options for the claims' run")?;
    opts.plan().context("the options for the claims' run")
}

/// Everything `isobench claims` produced.
pub struct Report {
    pub dir: PathBuf,
    pub results: Vec<ClaimResult>,
    /// The block-protocol run's directory, when claims 1, 2 or 6 were asked.
    pub run_dir: Option<PathBuf>,
    /// Experiments that failed (their claims are inconclusive with the error).
    pub failures: Vec<String>,
    /// Claims not run because the user interrupted (Ctrl-C).
    pub skipped: Vec<u8>,
    pub files: Vec<PathBuf>,
}

fn failed(n: u8, err: &anyhow::Error) -> Finding {
    Finding {
        subject: "the experiment".into(),
        evidence: session::describe(err),
        verdict: Verdict::Inconclusive {
            settle: format!(
                "the experiment failed; fix the error and run `isobench claims --claim {n}`"
            ),
        },
    }
}

/// Run the claims of `cfg`, write the outputs into a new `OUT/claims-<UTC time>/` and
/// return them.
pub fn run(cfg: &Config, observer: &mut dyn Observer, interrupted: &AtomicBool) -> Result<Report> {
    let claims = select(&cfg.claims)?;
    let seed = cfg.seed.unwrap_or_else(rand::random);
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let dir = (0..1000)
        .map(|n| match n {
            0 => cfg.out.join(format!("claims-{stamp}")),
            n => cfg.out.join(format!("claims-{stamp}-{n}")),
        })
        .find(|d| !d.exists())
        .with_context(|| format!("no free claims directory name under {}", cfg.out.display()))?;
    let scratch_root = cfg
        .scratch
        .clone()
        .unwrap_or_else(|| cfg.out.join(".scratch"));
    // The run's options are checked before anything is created.
    let want_run = claims.iter().any(|c| [1, 2, 6].contains(c));
    let plan = match want_run {
        true => Some(session_plan(
            &Config {
                claims: claims.clone(),
                ..cfg.clone()
            },
            &dir,
            &scratch_root,
            seed,
        )?),
        false => None,
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the claims directory {}", dir.display()))?;
    let scratch = Scratch::create(
        &scratch_root,
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("claims"),
    )
    .with_context(|| {
        format!(
            "creating the scratch directory under {} (use --scratch to put it elsewhere)",
            scratch_root.display()
        )
    })?;

    let mut results = Vec::new();
    let mut failures = Vec::new();
    let mut run_dir = None;
    let mut cpu_evidence = None;
    let mut starts = Vec::new();
    let mut skipped = Vec::new();

    // Claims 1, 2 and 6: one run of the block protocol.
    if let Some(plan) = plan {
        let t0 = Instant::now();
        observer.note(&format!(
            "claims {}: the block protocol over {} for up to {:.0} s",
            claims
                .iter()
                .filter(|c| [1, 2, 6].contains(*c))
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            run_workloads(&claims).join(", "),
            cfg.budget.as_secs_f64()
        ));
        let outcome = session::run(&plan, observer, interrupted);
        let secs = t0.elapsed().as_secs_f64();
        let analysis = match outcome {
            Ok(f) => {
                run_dir = Some(f.run_dir.clone());
                if let Some(err) = &f.failure {
                    failures.push(format!("the claims' run: {}", session::describe(err)));
                }
                f.analysis.ok_or_else(|| {
                    anyhow::anyhow!(
                        "the run {} has no analysis (nothing was measured)",
                        f.run_dir.display()
                    )
                })
            }
            Err(e) => Err(e),
        };
        let margin = cfg.margin / 100.0;
        match analysis {
            Ok(a) => {
                let all = overhead::overheads(&a);
                let containers = overhead::container_envs(&a);
                let data = serde_json::json!({ "run_dir": run_dir, "overheads": all, "environments": a.envs });
                for n in [1u8, 2] {
                    if !claims.contains(&n) {
                        continue;
                    }
                    let findings = if n == 1 {
                        overhead::claim1(&all, &containers, margin)
                    } else {
                        overhead::claim2(&all, &containers)
                    };
                    results.push(result(n, experiment(n, cfg), findings, secs, data.clone()));
                }
                if claims.contains(&6) {
                    starts = startup::distributions(&a, seed);
                    let findings = startup::findings(&starts, &containers);
                    results.push(result(
                        6,
                        experiment(6, cfg),
                        findings,
                        secs,
                        serde_json::json!({ "run_dir": run_dir, "start": starts }),
                    ));
                }
            }
            Err(err) => {
                failures.push(format!("the claims' run: {}", session::describe(&err)));
                for n in claims.iter().copied().filter(|c| [1, 2, 6].contains(c)) {
                    results.push(result(
                        n,
                        experiment(n, cfg),
                        vec![failed(n, &err)],
                        secs,
                        serde_json::Value::Null,
                    ));
                }
            }
        }
    }

    for n in claims.iter().copied().filter(|c| [3, 4, 5].contains(c)) {
        if interrupted.load(Ordering::SeqCst) {
            skipped.push(n);
            continue;
        }
        observer.note(&format!("claim {n}: {}", experiment(n, cfg)));
        let t0 = Instant::now();
        let (findings, data) = match n {
            3 => match cgroups::observe(scratch.path(), seed) {
                Ok(e) => {
                    cpu_evidence = e.cpu.as_ref().ok().cloned();
                    (cgroups::findings(&e), serde_json::to_value(&e)?)
                }
                Err(err) => (vec![failed(n, &err)], serde_json::Value::Null),
            },
            4 => match namespaces::observe(scratch.path()) {
                Ok(e) => (namespaces::findings(&e), serde_json::to_value(&e)?),
                Err(err) => (vec![failed(n, &err)], serde_json::Value::Null),
            },
            _ => match overlay::observe(scratch.path()) {
                Ok(e) => (overlay::findings(&e), serde_json::to_value(&e)?),
                Err(err) => (vec![failed(n, &err)], serde_json::Value::Null),
            },
        };
        if data.is_null() {
            failures.push(format!("claim {n}: {}", findings[0].evidence));
        }
        results.push(result(
            n,
            experiment(n, cfg),
            findings,
            t0.elapsed().as_secs_f64(),
            data,
        ));
    }
    results.sort_by_key(|r| r.number);
    drop(scratch);

    let mut files = output::write(&dir, &results, run_dir.as_deref())?;
    if cpu_evidence.is_some() || !starts.is_empty() {
        files.extend(figure::write(&dir, cpu_evidence.as_ref(), &starts)?);
    }
    Ok(Report {
        dir,
        results,
        run_dir,
        failures,
        skipped,
        files,
    })
}

fn result(
    n: u8,
    experiment: String,
    findings: Vec<Finding>,
    seconds: f64,
    data: serde_json::Value,
) -> ClaimResult {
    ClaimResult {
        number: n,
        claim: CLAIMS[usize::from(n) - 1].to_string(),
        experiment,
        overall: combine(&findings),
        findings,
        seconds,
        data,
    }
}

/// One line on what claim `n`'s experiment does.
pub fn experiment(n: u8, cfg: &Config) -> String {
    let axes = overhead::AXES
        .iter()
        .map(|(a, w)| format!("{a}: {w}"))
        .collect::<Vec<_>>()
        .join(", ");
    match n {
        1 => format!("paired blocks, native vs every container environment, one workload per axis ({axes}); verdict within ±{}% (90% CI), A/A floor from native-b; budget {:.0} s", cfg.margin, cfg.budget.as_secs_f64()),
        2 => format!("the same run: the vm's overhead against each container environment's, per axis ({axes}); supported when the 95% intervals are disjoint with the vm's above"),
        3 => format!("the image's integer-hash hog in the built-in container with --cpus {}: share of one CPU per {} ms from cgroup accounting and from its throughput; a {} MiB first touch under a {} MiB memory limit; freezer pause/resume of a busy process; a one-CPU cpuset; io.seq's reads with and without a {:.0} MB/s read limit", cgroups::CPUS, cgroups::WINDOW.as_millis(), 256, cgroups::MEMORY_LIMIT >> 20, io_limit::READ_BPS as f64 / 1e6),
        4 => "in a running built-in container, a helper setns()es into its mount namespace, mounts a tmpfs on /tmp and creates a file; the host looks for it; a second helper joins the namespace (as nsenter does) and reads it; hostname and PID 1 likewise".into(),
        5 => format!("through an overlay made like the container's root: write a new file, append to a lower one (copy-up), delete one (whiteout); list upper, hash lower before and after; time a copy-up of a {} MiB lower file", overlay::BIG_BYTES >> 20),
        _ => "launch to the image's first instruction, a fresh instance each time, in every environment of the run (the claims' block-protocol run, shared with claims 1 and 2)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: Verdict) -> Finding {
        Finding {
            subject: "s".into(),
            evidence: String::new(),
            verdict: v,
        }
    }

    fn open(s: &str) -> Verdict {
        Verdict::Inconclusive { settle: s.into() }
    }

    fn nt(s: &str) -> Verdict {
        Verdict::NotTestable { reason: s.into() }
    }

    #[test]
    fn a_claim_is_refuted_by_any_finding_and_supported_only_when_every_testable_one_is() {
        use Verdict::*;
        assert_eq!(combine(&[f(Supported), f(Refuted), f(open("x"))]), Refuted);
        assert_eq!(combine(&[f(Supported), f(nt("no vm"))]), Supported);
        assert_eq!(combine(&[f(Supported), f(open("more"))]), open("s: more"));
        assert_eq!(combine(&[f(nt("a")), f(nt("b"))]), nt("a; b"));
        assert!(matches!(combine(&[]), NotTestable { .. }));
    }

    #[test]
    fn claim_numbers_are_checked_and_the_run_gets_only_the_workloads_it_needs() {
        assert_eq!(select(&[]).unwrap(), [1, 2, 3, 4, 5, 6]);
        assert!(select(&[7]).is_err());
        assert!(run_workloads(&[3, 4, 5]).is_empty());
        assert_eq!(run_workloads(&[6]), ["start"]);
        assert_eq!(
            run_workloads(&[2]),
            ["cpu.int", "mem.stream", "io.rand", "sys.call"]
        );
    }

    #[test]
    fn the_session_plan_is_isobench_runs_own_validated_plan() {
        let cfg = Config {
            claims: vec![1, 6],
            out: "o".into(),
            scratch: None,
            budget: Duration::from_secs(90),
            precision: 0.5,
            margin: 2.0,
            seed: None,
            env: vec!["native".into(), "container".into()],
            cpu: "none".into(),
        };
        let p = session_plan(&cfg, Path::new("o/claims-x"), Path::new("o/.scratch"), 5).unwrap();
        assert_eq!(
            p.workload_names(),
            ["cpu.int", "mem.stream", "io.rand", "sys.call", "start"]
        );
        assert_eq!(p.margin, 0.02);
        assert_eq!(p.seed, 5);
        assert_eq!(
            p.design,
            crate::plan::Design::Budget {
                budget: Duration::from_secs(90),
                precision: 0.005
            }
        );
        let bad = Config {
            env: vec!["docker".into()],
            ..cfg
        };
        let e = format!(
            "{:#}",
            session_plan(&bad, Path::new("o"), Path::new("s"), 1).unwrap_err()
        );
        assert!(e.contains("docker"), "{e}");
    }
}
