//! `isobench compare`: compare a run with a baseline and exit 1 when something regressed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::ExitCode;
use crate::baseline;
use crate::compare::format::{self, Format};
use crate::compare::{self, thresholds, Options, Thresholds};
use crate::results::write_atomic;

const AFTER: &str = "What is compared, per (environment, workload, metric), counters skipped:
  overhead  every environment but native: the per-round ratio to native in the same round,
            oriented so that larger = worse (env/native for lower-is-better metrics,
            native/env for higher-is-better ones)
  value     native itself (and an environment whose run has no native samples)
The change is the relative change of the geometric mean of that cost, positive = worse (a
10% throughput drop is a +11.1% change).

Statistics (seeded; the same inputs and --seed give the same report):
  test      two-sided permutation test of the difference of mean log values per round,
            exact over all splits when there are at most 200000 of them (10 vs 10 rounds: 184756), otherwise
            --permutations random splits, p = (1 + hits) / (1 + permutations)
  interval  95% percentile bootstrap of the change (--resamples resamples of each run)
  verdict   regressed: p < --alpha and change > +threshold
            improved:  p < --alpha and change < -threshold
            unchanged: otherwise; new / missing: present in only one run
With 5 rounds in each run the smallest possible p is 2/252 = 0.0079, so alpha 0.01 needs at
least 5 rounds per run; fewer rounds can never report a regression (the report says so).
On a noisy machine use 10 rounds: with 5, only a complete separation is significant.

Thresholds file (--thresholds FILE, TOML): keys are globs over [ENV:]WORKLOAD[/METRIC],
values fractions or percent strings; the most specific key (most non-glob characters) wins,
and a key overrides --threshold:
  \"*\"            = 0.05      # everything
  \"cpu.int/hash\" = 0.03      # one metric
  \"io.*\"         = 0.10      # all metrics of the io workloads
  \"vm:mem.*\"     = \"8%\"     # only in the vm environment
Quote every key: an unquoted cpu.int is a TOML dotted key.

Runs from different hosts or configurations (CPU, kernel, KVM flavour, cgroup version,
image hash, profile, environment options) are compared with a warning naming the
differences; --strict refuses them.

Exit codes:
  0  nothing regressed
  1  something regressed (or, with --fail-on-missing, a baseline row is missing)
  2  bad usage or unreadable input (missing, malformed, truncated or foreign files,
     another schema version, a bad thresholds file, --strict with differing runs)

Examples:
  isobench compare results/20250101T120000Z results/latest
  isobench compare --baseline main results/latest --format markdown -o comment.md
  isobench compare --baseline main results/latest --thresholds ci/thresholds.toml";

/// Flags of `isobench compare`.
#[derive(Debug, Args)]
#[command(
    after_help = AFTER,
    override_usage = "isobench compare [OPTIONS] BASELINE CURRENT\n       isobench compare [OPTIONS] --baseline NAME CURRENT"
)]
pub struct CompareArgs {
    /// BASELINE then CURRENT: run directories (results/<run-id>, results/latest) or their
    /// run.json; samples.csv must sit beside run.json. With --baseline, only CURRENT.
    #[arg(value_name = "RUN", num_args = 1..=2, required = true)]
    pub runs: Vec<PathBuf>,

    /// Compare with the named baseline stored under OUT/baselines/NAME (see `isobench
    /// baseline save`) instead of a BASELINE path.
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,

    /// Significance level of the permutation test.
    #[arg(long, value_name = "P", default_value_t = compare::DEFAULT_ALPHA, value_parser = parse_alpha)]
    pub alpha: f64,

    /// Noise threshold: the smallest change that counts, as a fraction (0.05) or percentage
    /// (5%). Overridden per metric by --thresholds.
    #[arg(long, value_name = "FRACTION", default_value = "0.05", value_parser = parse_threshold)]
    pub threshold: f64,

    /// TOML file of per-metric thresholds (format below).
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Also write the report to FILE, in the format its extension names (.md = markdown,
    /// .json = json, anything else = table). Repeatable.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Vec<PathBuf>,

    /// Seed of the permutations and the bootstrap.
    #[arg(long, value_name = "N", default_value_t = compare::DEFAULT_SEED)]
    pub seed: u64,

    /// Random permutations when the exact test has more than 200000 splits (≥ 1000).
    #[arg(long, value_name = "N", default_value_t = compare::DEFAULT_PERMUTATIONS, value_parser = clap::value_parser!(u64).range(1000..))]
    pub permutations: u64,

    /// Bootstrap resamples for the interval (≥ 1000).
    #[arg(long, value_name = "N", default_value_t = compare::DEFAULT_RESAMPLES, value_parser = clap::value_parser!(u64).range(1000..))]
    pub resamples: u64,

    /// Results directory that holds baselines/ (for --baseline).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,

    /// Exit 1 also when a row of the baseline is missing from the current run.
    #[arg(long)]
    pub fail_on_missing: bool,

    /// Refuse (exit 2) to compare runs whose host, image or configuration differ.
    #[arg(long)]
    pub strict: bool,
}

fn parse_alpha(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(a) if a > 0.0 && a < 1.0 => Ok(a),
        _ => Err(format!(
            "{s:?} is not a probability between 0 and 1 (e.g. 0.01)"
        )),
    }
}

fn parse_threshold(s: &str) -> Result<f64, String> {
    thresholds::parse_threshold(s).map_err(|e| e.to_string())
}

/// The format a `-o FILE` is written in.
pub fn format_for(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("md" | "markdown") => Format::Markdown,
        Some("json") => Format::Json,
        _ => Format::Table,
    }
}

/// Run `compare`. Every failure is an input or usage error (exit 2), so exit 1 always
/// means "something regressed".
pub fn compare(args: &CompareArgs) -> Result<ExitCode> {
    match run(args) {
        Ok(code) => Ok(code),
        Err(err) => {
            eprintln!("isobench: error: {}", super::describe(&err));
            Ok(ExitCode::Usage)
        }
    }
}

fn run(args: &CompareArgs) -> Result<ExitCode> {
    let (baseline_path, current_path) = match (&args.baseline, args.runs.as_slice()) {
        (Some(name), [current]) => (
            baseline::resolve(&args.out, name).context("--baseline")?,
            current.clone(),
        ),
        (Some(_), _) => bail!("with --baseline NAME give only CURRENT, not two runs"),
        (None, [baseline, current]) => (baseline.clone(), current.clone()),
        (None, _) => {
            bail!("give BASELINE and CURRENT (two run directories), or --baseline NAME and CURRENT")
        }
    };
    let thresholds = match &args.thresholds {
        Some(path) => Thresholds::from_file(args.threshold, path)?,
        None => Thresholds::uniform(args.threshold),
    };
    let baseline = compare::load_run(&baseline_path).context("loading the baseline")?;
    let current = compare::load_run(&current_path).context("loading the current run")?;
    let options = Options {
        alpha: args.alpha,
        thresholds,
        permutations: args.permutations,
        resamples: args.resamples,
        confidence: compare::DEFAULT_CONFIDENCE,
        seed: args.seed,
    };
    let result = compare::compare(&baseline, &current, &options);

    if !result.differences.is_empty() {
        let what: Vec<&str> = result.differences.iter().map(|d| d.what.as_str()).collect();
        eprintln!(
            "isobench: WARNING: the baseline and the current run differ in {}: {} (details in the report)",
            if what.len() == 1 { "one fact".to_string() } else { format!("{} facts", what.len()) },
            what.join(", ")
        );
        if args.strict {
            bail!("--strict: refusing to compare runs whose host, image or configuration differ (drop --strict to compare anyway)");
        }
    }
    for path in &args.output {
        write_atomic(path, &format::render(&result, format_for(path)))
            .with_context(|| format!("writing the report to {}", path.display()))?;
    }
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&format::render(&result, args.format))
        .and_then(|_| stdout.flush())
        .context("writing the report to stdout")?;

    let counts = result.counts();
    if counts.regressed > 0 {
        eprintln!(
            "isobench: {} regressed (p < {} and change beyond its threshold)",
            counts.regressed, args.alpha
        );
        return Ok(ExitCode::Failure);
    }
    if args.fail_on_missing && counts.missing > 0 {
        eprintln!(
            "isobench: {} baseline row(s) missing from the current run (--fail-on-missing)",
            counts.missing
        );
        return Ok(ExitCode::Failure);
    }
    Ok(ExitCode::Success)
}
