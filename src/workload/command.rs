//! A user's own command as a workload (`isobench exec -- CMD`, docs/METHODOLOGY.md, "Your
//! own command"): what runs (argv, working directory, environment), what one run of it
//! returned ([`CommandRun`]), and the metrics taken from that: always wall, user and system
//! time and peak memory, plus the numbers the program prints (`--metric NAME=REGEX`,
//! `--metric-json PATH`). The statistics and outputs are the image workloads' own.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use super::{Better, Metric};

/// Always-present metrics of a command sample: wall time, CPU time (user + system) and peak
/// memory. User and system time apart are accounting rows (`counter.user_us`,
/// `counter.sys_us`): either may be 0, which no ratio can take.
pub const WALL_MS: &str = "wall_ms";
pub const CPU_MS: &str = "cpu_ms";
pub const PEAK_RSS_MIB: &str = "peak_rss_mib";

/// Bytes of each captured stream kept per sample in the run directory (the tail is kept).
pub const DEFAULT_OUTPUT_CAP: u64 = 1 << 20;

/// Bytes of a failed sample's output quoted in its error.
const TAIL_BYTES: usize = 1500;

/// Where a program-printed metric comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// The first capture group of the first match in stdout (then stderr), parsed as a number.
    Regex(Regex),
    /// A dotted path into the JSON document on stdout (`a.b.0.c`: array indices are numbers).
    Json(Vec<String>),
}

/// One metric the program prints.
#[derive(Clone, Debug)]
pub struct MetricRule {
    pub name: String,
    pub source: Source,
    pub better: Better,
}

/// The command: what runs, identically, in every environment.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    pub argv: Vec<String>,
    /// The working directory (isobench's own, passed through).
    pub cwd: PathBuf,
    /// The whole environment of the command: a fixed base plus `--env-var`.
    pub env: Vec<(String, String)>,
    /// Run once per environment instance before the rounds, untimed (`sh -c`).
    pub setup: Vec<String>,
    /// Where each sample's stdout and stderr go (`OUT/<run>/output/<label>/`).
    pub output_dir: PathBuf,
    /// Bytes of each stream kept per sample.
    pub output_cap: u64,
}

/// A user's command as a workload of the run.
#[derive(Clone, Debug)]
pub struct CommandWorkload {
    /// The workload name in every result file (`--name`, or the program's file name).
    pub name: String,
    pub spec: CommandSpec,
    pub metrics: Vec<MetricRule>,
    /// A failed sample is recorded and the run goes on (`--keep-going`).
    pub keep_going: bool,
    /// The host path of the program and its SHA-256, recorded in `run.json`.
    pub binary: Option<(PathBuf, String)>,
}

/// The metrics of one sample and, under `--keep-going`, why it failed.
#[derive(Debug)]
pub struct Interpreted {
    pub metrics: Vec<Metric>,
    pub failed: Option<Box<CommandFailed>>,
}

/// How one run of the command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Killed after running past the deadline.
    Deadline,
}

/// What one run of the command returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommandRun {
    pub exit: Option<Exit>,
    pub wall_ns: u64,
    /// CPU time of the command and every descendant it waited for (`wait4` rusage).
    pub user_ns: u64,
    pub sys_ns: u64,
    /// The largest resident set of the command or a waited-for descendant, in bytes.
    pub max_rss_bytes: u64,
    /// The captured output (for the metrics and for errors).
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Where the output was kept.
    pub stdout_path: PathBuf,
    /// Environment accounting (cgroup CPU time, peak memory), stored as `counter.` rows.
    pub counters: BTreeMap<String, u64>,
}

/// Why a sample of the command failed.
#[derive(Debug, thiserror::Error)]
#[error("the command `{command}` {what} in the {env} environment (output: {path}); {fix}; its output ends with:\n{tail}")]
pub struct CommandFailed {
    pub command: String,
    pub env: String,
    pub what: String,
    pub fix: String,
    pub path: String,
    pub tail: String,
}

impl CommandWorkload {
    /// The command line as one string, for errors and `run.json`.
    pub fn command_line(&self) -> String {
        shell_words(&self.spec.argv)
    }

    /// The metric the budget design watches: the first printed metric, else wall time.
    pub fn primary(&self) -> String {
        self.metrics
            .first()
            .map_or_else(|| WALL_MS.to_string(), |m| m.name.clone())
    }

    /// The metrics of one sample. Without `keep_going`, a non-zero exit or a printed metric
    /// that is not found is an error; with it, what could be measured is returned and the
    /// failure is counted (`exec.failed`).
    pub fn interpret(
        &self,
        env: &str,
        run: &CommandRun,
    ) -> Result<Interpreted, Box<CommandFailed>> {
        let ms = |ns: u64| ns as f64 / 1e6;
        let m = |name: &str, value: f64, unit: &str| Metric {
            name: name.into(),
            value,
            unit: unit.into(),
            better: Better::Lower,
        };
        let mut out = vec![
            m(WALL_MS, ms(run.wall_ns), "ms"),
            m(CPU_MS, ms(run.user_ns + run.sys_ns), "ms"),
            m(
                PEAK_RSS_MIB,
                run.max_rss_bytes as f64 / (1 << 20) as f64,
                "MiB",
            ),
        ];
        let mut failure = match run.exit {
            Some(Exit::Code(0)) => None,
            Some(Exit::Code(c)) => Some((
                format!("exited with status {c}"),
                "fix the command (try it by hand), or pass --keep-going to record failures and go on".to_string(),
            )),
            Some(Exit::Signal(s)) => Some((
                format!("was killed by signal {s}"),
                "a memory limit (--memory) or a crash; run it by hand to see".to_string(),
            )),
            Some(Exit::Deadline) => Some((
                "ran past its deadline and was killed".to_string(),
                "raise --deadline or make the command shorter".to_string(),
            )),
            None => Some((
                "did not report how it ended".to_string(),
                "this is a bug in isobench".to_string(),
            )),
        };
        if failure.is_none() {
            for rule in &self.metrics {
                match extract(&rule.source, &run.stdout, &run.stderr) {
                    Ok(v) => out.push(Metric {
                        name: rule.name.clone(),
                        value: v,
                        unit: String::new(),
                        better: rule.better,
                    }),
                    Err(why) => {
                        failure = Some((
                            format!("printed no value for the metric {} ({why})", rule.name),
                            "check the pattern against the output below".to_string(),
                        ));
                        break;
                    }
                }
            }
        }
        let Some((what, fix)) = failure else {
            return Ok(Interpreted {
                metrics: out,
                failed: None,
            });
        };
        let err = Box::new(CommandFailed {
            command: self.command_line(),
            env: env.to_string(),
            what,
            fix,
            path: run.stdout_path.display().to_string(),
            tail: tail(&run.stdout, &run.stderr),
        });
        if self.keep_going {
            Ok(Interpreted {
                metrics: out,
                failed: Some(err),
            })
        } else {
            Err(err)
        }
    }
}

/// The value of one printed metric.
fn extract(source: &Source, stdout: &[u8], stderr: &[u8]) -> Result<f64, String> {
    match source {
        Source::Regex(re) => {
            for stream in [stdout, stderr] {
                let text = String::from_utf8_lossy(stream);
                if let Some(c) = re.captures(&text) {
                    let g = c
                        .get(1)
                        .ok_or("the pattern has no capture group ( )")?
                        .as_str();
                    return g
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| format!("the capture '{g}' is not a number"));
                }
            }
            Err(format!("the pattern '{}' matched nothing", re.as_str()))
        }
        Source::Json(path) => {
            let text = String::from_utf8_lossy(stdout);
            let doc: serde_json::Value = serde_json::from_str(text.trim())
                .or_else(|e| {
                    // A program may print lines before its JSON: try the last line.
                    text.lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .map(|l| serde_json::from_str(l.trim()))
                        .unwrap_or(Err(e))
                })
                .map_err(|e| format!("stdout is not JSON: {e}"))?;
            let mut v = &doc;
            for key in path {
                v = match v {
                    serde_json::Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
                    serde_json::Value::Object(o) => o.get(key),
                    _ => None,
                }
                .ok_or_else(|| format!("the JSON has no '{}'", path.join(".")))?;
            }
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| format!("'{}' is not a number: {v}", path.join(".")))
        }
    }
}

/// The end of a sample's output, for an error.
fn tail(stdout: &[u8], stderr: &[u8]) -> String {
    let end = |b: &[u8]| {
        let s = String::from_utf8_lossy(&b[b.len().saturating_sub(TAIL_BYTES)..]).into_owned();
        s.trim_end().to_string()
    };
    let (o, e) = (end(stdout), end(stderr));
    match (o.is_empty(), e.is_empty()) {
        (true, true) => "  (no output)".into(),
        (false, true) => indent(&o),
        (true, false) => format!("  [stderr]\n{}", indent(&e)),
        (false, false) => format!("{}\n  [stderr]\n{}", indent(&o), indent(&e)),
    }
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `argv` as a shell would need it typed.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `name` can be a metric or workload name in the result files.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
}

/// Parse `--metric NAME=REGEX`.
pub fn parse_regex_metric(s: &str, better: Better) -> Result<MetricRule, String> {
    let (name, re) = s.split_once('=').ok_or_else(|| {
        format!("--metric '{s}': use NAME=REGEX, e.g. 'eps=events per second:\\s*([0-9.]+)'")
    })?;
    let name = name.trim();
    if !valid_name(name) {
        return Err(format!(
            "--metric '{s}': the name '{name}' must be letters, digits, '_' or '-'"
        ));
    }
    let re = Regex::new(re).map_err(|e| format!("--metric '{s}': not a valid regex: {e}"))?;
    if re.captures_len() < 2 {
        return Err(format!(
            "--metric '{s}': the regex needs a capture group around the number, e.g. ([0-9.]+)"
        ));
    }
    Ok(MetricRule {
        name: name.into(),
        source: Source::Regex(re),
        better,
    })
}

/// Parse `--metric-json [NAME=]PATH.IN.JSON` (the name defaults to the path's last part).
pub fn parse_json_metric(s: &str, better: Better) -> Result<MetricRule, String> {
    let (name, path) = match s.split_once('=') {
        Some((n, p)) => (n.trim().to_string(), p.trim()),
        None => (
            s.rsplit('.').next().unwrap_or_default().trim().to_string(),
            s.trim(),
        ),
    };
    let parts: Vec<String> = path.split('.').map(str::to_string).collect();
    if path.is_empty() || parts.iter().any(String::is_empty) || !valid_name(&name) {
        return Err(format!(
            "--metric-json '{s}': use [NAME=]PATH.IN.JSON, e.g. 'iops=jobs.0.read.iops' (names: letters, digits, '_' or '-')"
        ));
    }
    Ok(MetricRule {
        name,
        source: Source::Json(parts),
        better,
    })
}

/// The environment every command gets: a fixed base (`PATH`, `HOME`, `LANG`, `TERM` from
/// isobench's own environment when set) and each `--env-var NAME` (its value from isobench's
/// environment) or `NAME=VALUE`, identical in every environment.
pub fn command_env(
    vars: &[String],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for base in ["PATH", "HOME", "LANG", "TERM"] {
        if let Some(v) = lookup(base) {
            env.insert(base.into(), v);
        }
    }
    env.entry("PATH".into())
        .or_insert_with(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    for v in vars {
        let (name, value) = match v.split_once('=') {
            Some((n, val)) => (n.to_string(), val.to_string()),
            None => (
                v.clone(),
                lookup(v).ok_or_else(|| {
                    format!(
                        "--env-var {v}: isobench's environment has no {v}; give it as {v}=VALUE"
                    )
                })?,
            ),
        };
        if name.is_empty() || name.contains('\0') || value.contains('\0') {
            return Err(format!("--env-var '{v}': use NAME or NAME=VALUE"));
        }
        env.insert(name, value);
    }
    Ok(env.into_iter().collect())
}

/// The longest a set-up command may run.
pub const SETUP_DEADLINE: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(metrics: Vec<MetricRule>, keep_going: bool) -> CommandWorkload {
        CommandWorkload {
            name: "sysbench".into(),
            spec: CommandSpec {
                argv: vec!["sysbench".into(), "cpu".into(), "run".into()],
                cwd: "/".into(),
                env: vec![],
                setup: vec![],
                output_dir: "/tmp".into(),
                output_cap: DEFAULT_OUTPUT_CAP,
            },
            metrics,
            keep_going,
            binary: None,
        }
    }

    fn ok_run(stdout: &str) -> CommandRun {
        CommandRun {
            exit: Some(Exit::Code(0)),
            wall_ns: 2_000_000,
            user_ns: 1_000_000,
            sys_ns: 500_000,
            max_rss_bytes: 4 << 20,
            stdout: stdout.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn regex_metrics_take_the_first_group() {
        let rule =
            parse_regex_metric(r"eps=events per second:\s*([0-9.]+)", Better::Higher).unwrap();
        let w = workload(vec![rule], false);
        let r = w
            .interpret(
                "native",
                &ok_run("CPU speed:\n    events per second:  1234.56\n"),
            )
            .unwrap();
        assert!(r.failed.is_none());
        let m = r.metrics;
        let names: Vec<_> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["wall_ms", "cpu_ms", "peak_rss_mib", "eps"]);
        assert_eq!(m[0].value, 2.0);
        assert_eq!(m[1].value, 1.5);
        assert_eq!(m[2].value, 4.0);
        assert_eq!(m[3].value, 1234.56);
        assert_eq!(m[3].better, Better::Higher);
        assert_eq!(w.primary(), "eps");
    }

    #[test]
    fn a_missing_value_or_a_bad_exit_is_an_error_with_the_output() {
        let rule =
            parse_regex_metric(r"eps=events per second:\s*([0-9.]+)", Better::Higher).unwrap();
        let w = workload(vec![rule.clone()], false);
        let e = w
            .interpret("container", &ok_run("nothing here"))
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("`sysbench cpu run`"), "{text}");
        assert!(text.contains("container"), "{text}");
        assert!(text.contains("nothing here"), "{text}");
        assert!(text.contains("metric eps"), "{text}");
        let mut failed = ok_run("events per second: 5");
        failed.exit = Some(Exit::Code(3));
        let e = w.interpret("native", &failed).unwrap_err();
        assert!(e.to_string().contains("exited with status 3"), "{e}");
        // --keep-going: the times are kept, the failure is returned beside them.
        let w = workload(vec![rule], true);
        let r = w.interpret("native", &failed).unwrap();
        assert_eq!(r.metrics.len(), 3);
        assert!(r.failed.is_some());
    }

    #[test]
    fn json_metrics_follow_the_path() {
        let rule = parse_json_metric("iops=jobs.0.read.iops", Better::Higher).unwrap();
        let w = workload(vec![rule], false);
        let out = "fio-3.33\n{\"jobs\": [{\"read\": {\"iops\": 1500.5}}]}\n";
        let m = w.interpret("native", &ok_run(out)).unwrap().metrics;
        assert_eq!(m[3].value, 1500.5);
        let rule = parse_json_metric("a.b", Better::Lower).unwrap();
        assert_eq!(rule.name, "b");
        assert!(parse_json_metric("x=", Better::Lower).is_err());
    }

    #[test]
    fn bad_metric_flags_say_how_to_write_them() {
        assert!(parse_regex_metric("noequals", Better::Lower)
            .unwrap_err()
            .contains("NAME=REGEX"));
        assert!(parse_regex_metric("x=[0-9]+", Better::Lower)
            .unwrap_err()
            .contains("capture group"));
        assert!(parse_regex_metric("x=(", Better::Lower)
            .unwrap_err()
            .contains("not a valid regex"));
        assert!(parse_regex_metric("a b=(1)", Better::Lower).is_err());
    }

    #[test]
    fn the_environment_is_a_fixed_base_plus_the_named_variables() {
        let host = |k: &str| match k {
            "PATH" => Some("/bin".to_string()),
            "FOO" => Some("1".to_string()),
            _ => None,
        };
        let env = command_env(&["FOO".into(), "BAR=2".into()], host).unwrap();
        assert_eq!(
            env,
            [("BAR", "2"), ("FOO", "1"), ("PATH", "/bin")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert!(command_env(&["NOPE".into()], host)
            .unwrap_err()
            .contains("NOPE=VALUE"));
    }

    #[test]
    fn command_lines_are_quoted_for_a_shell() {
        let argv = ["sh", "-c", "echo 'a b'"].map(String::from);
        assert_eq!(shell_words(&argv), r#"sh -c 'echo '\''a b'\'''"#);
    }
}
