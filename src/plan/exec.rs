//! The options of `isobench exec` (a user's own command, docs/METHODOLOGY.md, "Your own
//! command") and their validation into the command workload of a [`Plan`]; everything
//! else (environments, budget, rounds, container limits) is `isobench run`'s own options.

use std::path::PathBuf;

use clap::Args;

use super::{parse_size, Plan, PlanError, RunOptions};
use crate::stats::Better;
use crate::workload::command::{self, CommandSpec, CommandWorkload, MetricRule};

/// What `isobench exec` adds to the run options.
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Command")]
pub struct ExecOptions {
    /// A metric the program prints: NAME=REGEX, the first capture group a number, e.g.
    /// 'eps=events per second:\s*([0-9.]+)'. Repeatable.
    #[arg(long, value_name = "NAME=REGEX")]
    pub metric: Vec<String>,

    /// A metric from the JSON the program prints on stdout: [NAME=]PATH.IN.JSON, e.g.
    /// 'iops=jobs.0.read.iops'. Repeatable.
    #[arg(long, value_name = "[NAME=]PATH")]
    pub metric_json: Vec<String>,

    /// Whether a higher or a lower value of each printed metric is better: once for all,
    /// or once per metric in order (--metric ones first, then --metric-json).
    #[arg(long, value_name = "higher|lower", value_parser = parse_better)]
    pub better: Vec<Better>,

    /// An environment variable for the command, NAME (its value from isobench's
    /// environment) or NAME=VALUE. The command gets PATH, HOME, LANG, TERM and these, the
    /// same in every environment. Repeatable.
    #[arg(long, value_name = "NAME[=VALUE]")]
    pub env_var: Vec<String>,

    /// A shell command run once per environment instance before the rounds, untimed, in
    /// that instance's filesystem (e.g. to create a database). Repeatable.
    #[arg(long, visible_alias = "prepare", value_name = "CMD")]
    pub setup: Vec<String>,

    /// The container's read-only lower layer. [default: the host's /]
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,

    /// The workload name in the results. [default: the program's file name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Bytes of each sample's stdout and stderr kept in OUT/<run>/output/ (the tail).
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_cap)]
    pub output_cap: u64,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

fn parse_better(s: &str) -> Result<Better, String> {
    Better::parse(s.trim())
        .ok_or_else(|| format!("--better '{s}': say higher (throughput) or lower (time)"))
}

fn parse_cap(s: &str) -> Result<u64, String> {
    parse_size(s).ok_or_else(|| format!("--output-cap '{s}' is not a size (e.g. 64K, 1M)"))
}

impl ExecOptions {
    /// The plan of `isobench exec`: the run options' plan with the command as its only
    /// workload. The output directory is set by the session.
    pub fn plan(&self, run: &RunOptions) -> Result<Plan, PlanError> {
        let bad = |m: String| PlanError::Exec(m);
        if !run.workload.is_empty() {
            return Err(bad(
                "--workload does not apply to exec: the command is the workload".into(),
            ));
        }
        if run.threads > 1 {
            return Err(bad(format!(
                "--threads {} splits the image's kernels; a command runs as itself (give it its own thread option, e.g. sysbench --threads=2): leave --threads out of exec",
                run.threads
            )));
        }
        if run.out.as_os_str() == "-" {
            return Err(bad("exec cannot write its run to stdout (--out -) yet: give --out DIR, then `isobench pack DIR/latest`".into()));
        }
        let mut plan = run.plan()?;
        plan.workloads.clear();
        plan.start = false;
        let n = self.metric.len() + self.metric_json.len();
        let betters: Vec<Better> = match (self.better.len(), n) {
            (_, 0) if !self.better.is_empty() => {
                return Err(bad("--better was given but no --metric or --metric-json".into()))
            }
            (1, n) => vec![self.better[0]; n],
            (b, n) if b == n => self.better.clone(),
            (0, _) => return Err(bad("say whether a higher or a lower value of the printed metrics is better: --better higher (throughput) or --better lower (time)".into())),
            (b, n) => return Err(bad(format!("{b} --better for {n} metrics: give one for all, or one per metric in order"))),
        };
        let mut metrics: Vec<MetricRule> = Vec::new();
        for (s, b) in self.metric.iter().zip(&betters) {
            metrics.push(command::parse_regex_metric(s, *b).map_err(bad)?);
        }
        for (s, b) in self.metric_json.iter().zip(&betters[self.metric.len()..]) {
            metrics.push(command::parse_json_metric(s, *b).map_err(bad)?);
        }
        for (i, m) in metrics.iter().enumerate() {
            if [command::WALL_MS, command::CPU_MS, command::PEAK_RSS_MIB].contains(&m.name.as_str())
                || metrics[..i].iter().any(|o| o.name == m.name)
            {
                return Err(bad(format!(
                    "the metric name '{}' is taken: choose another",
                    m.name
                )));
            }
        }
        let program = self
            .command
            .first()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                bad("no command: put it after --, e.g. isobench exec -- sysbench cpu run".into())
            })?;
        let name = match &self.name {
            Some(n) => n.clone(),
            None => std::path::Path::new(program)
                .file_name()
                .map(|f| {
                    f.to_string_lossy()
                        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
                })
                .unwrap_or_else(|| "command".into()),
        };
        if !command::valid_name(&name) {
            return Err(bad(format!(
                "--name '{name}': use letters, digits, '_' or '-'"
            )));
        }
        let env = command::command_env(&self.env_var, |k| std::env::var(k).ok()).map_err(bad)?;
        let cwd = std::env::current_dir()
            .map_err(|e| bad(format!("the working directory cannot be read ({e})")))?;
        if let Some(r) = &self.rootfs {
            if !r.is_dir() {
                return Err(bad(format!(
                    "--rootfs {}: not a directory (give an unpacked image's root)",
                    r.display()
                )));
            }
        }
        plan.exec_rootfs = self.rootfs.clone();
        plan.exec = Some(CommandWorkload {
            name,
            spec: CommandSpec {
                argv: self.command.clone(),
                cwd,
                env,
                setup: self.setup.clone(),
                output_dir: PathBuf::new(),
                output_cap: self.output_cap,
            },
            metrics,
            // `--keep-going` (a run option): a failed sample is recorded and the command goes on.
            keep_going: run.keep_going,
            binary: None,
        });
        Ok(plan)
    }
}
