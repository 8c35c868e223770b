//! The validated run plan ("high" arguments): which environments and workloads, how many
//! rounds, the seed, where results and scratch go, and the environment options. Everything
//! the user typed is checked here, so the measurement never starts on a bad configuration.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::args::{GuestPage, OnOff, RunArgs, Upper};
use crate::env::EnvKind;
use crate::workload::{self, Profile, Workload};

/// The pseudo-workload measuring launch-to-first-instruction of each environment.
pub const START: &str = "start";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("unknown environment '{0}': choose from native, container, vm")]
    UnknownEnv(String),
    #[error("no workload matches '{pattern}'; known workloads: {known}")]
    NoWorkloadMatches { pattern: String, known: String },
    #[error("'{pattern}' is not a valid workload pattern: {reason}")]
    BadPattern { pattern: String, reason: String },
    #[error("--margin must be a percentage above 0 and below 100, got {0}")]
    BadMargin(f64),
    #[error("--rounds must be at least 1 (5 or more for a verdict)")]
    NoRounds,
    #[error("--deadline must be a positive number of seconds, got {0}")]
    BadDeadline(f64),
    #[error("--cpus must be a positive number of CPUs (e.g. 0.5), got {0}")]
    BadCpus(f64),
    #[error("--memory '{0}' is not a size: use bytes or a number with K, M or G (e.g. 512M)")]
    BadMemory(String),
    #[error("--io-weight must be between 1 and 10000, got {0}")]
    BadIoWeight(u32),
    #[error("--cpuset '{0}' is not a CPU list: use numbers and ranges like 0 or 0-1,3")]
    BadCpuset(String),
}

/// Container options, validated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerPlan {
    pub cpus: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub cpuset: Option<String>,
    pub io_weight: Option<u32>,
    pub upper_tmpfs: bool,
}

/// VM options, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct VmPlan {
    pub guest_page_2m: bool,
}

#[derive(Clone, Debug)]
pub struct Plan {
    /// Environment kinds in the order given (native first when present).
    pub envs: Vec<EnvKind>,
    /// Whether the user named the environments (otherwise: all available, skip silently-ish).
    pub envs_explicit: bool,
    pub workloads: Vec<&'static Workload>,
    /// Whether the `start` pseudo-workload was selected.
    pub start: bool,
    pub profile: Profile,
    pub rounds: u32,
    pub warmup: u32,
    pub seed: u64,
    pub out: PathBuf,
    pub scratch: Option<PathBuf>,
    pub strict: bool,
    pub deadline: Duration,
    pub container: ContainerPlan,
    pub vm: VmPlan,
    /// Transparent huge pages for every environment's working memory.
    pub thp: bool,
}

/// Parse a size like `512M`, `2G`, `65536`, `64KiB`.
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    let bytes = num * mult as f64;
    (bytes.is_finite() && bytes >= 1.0).then_some(bytes as u64)
}

fn valid_cpuset(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|part| {
            let mut ends = part.splitn(2, '-');
            let a = ends
                .next()
                .map(|x| x.parse::<u32>().is_ok())
                .unwrap_or(false);
            let b = ends
                .next()
                .map(|x| x.parse::<u32>().is_ok())
                .unwrap_or(true);
            a && b
        })
}

/// Resolve workload names and globs into catalogue entries (and whether `start` is in).
pub fn select_workloads(patterns: &[String]) -> Result<(Vec<&'static Workload>, bool), PlanError> {
    let catalogue = workload::catalogue();
    if patterns.is_empty() {
        return Ok((catalogue.iter().collect(), true));
    }
    let mut chosen = vec![false; catalogue.len()];
    let mut start = false;
    for p in patterns.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let pat = glob::Pattern::new(p).map_err(|e| PlanError::BadPattern {
            pattern: p.into(),
            reason: e.to_string(),
        })?;
        let mut any = false;
        for (i, w) in catalogue.iter().enumerate() {
            if pat.matches(w.name) {
                chosen[i] = true;
                any = true;
            }
        }
        if pat.matches(START) {
            start = true;
            any = true;
        }
        if !any {
            let mut known: Vec<&str> = catalogue.iter().map(|w| w.name).collect();
            known.push(START);
            return Err(PlanError::NoWorkloadMatches {
                pattern: p.into(),
                known: known.join(", "),
            });
        }
    }
    Ok((
        catalogue
            .iter()
            .zip(chosen)
            .filter(|(_, c)| *c)
            .map(|(w, _)| w)
            .collect(),
        start,
    ))
}

impl Plan {
    pub fn from_args(args: &RunArgs) -> Result<Plan, PlanError> {
        let mut envs = Vec::new();
        for name in args.env.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let kind =
                EnvKind::from_name(name).ok_or_else(|| PlanError::UnknownEnv(name.into()))?;
            if !envs.contains(&kind) {
                envs.push(kind);
            }
        }
        let envs_explicit = !envs.is_empty();
        if !envs_explicit {
            envs = EnvKind::ALL.to_vec();
        }
        envs.sort();
        let (workloads, start) = select_workloads(&args.workload)?;
        let profile = args.profile();
        let (rounds_default, warmup_default) = match profile {
            Profile::Quick => (10, 2),
            Profile::Full => (15, 2),
        };
        let rounds = args.rounds.unwrap_or(rounds_default);
        if rounds == 0 {
            return Err(PlanError::NoRounds);
        }
        if !(args.margin.is_finite() && args.margin > 0.0 && args.margin < 100.0) {
            return Err(PlanError::BadMargin(args.margin));
        }
        if !(args.deadline.is_finite() && args.deadline > 0.0) {
            return Err(PlanError::BadDeadline(args.deadline));
        }
        if let Some(c) = args.cpus {
            if !(c.is_finite() && c > 0.0) {
                return Err(PlanError::BadCpus(c));
            }
        }
        let memory_bytes = args
            .memory
            .as_deref()
            .map(|m| parse_size(m).ok_or_else(|| PlanError::BadMemory(m.into())))
            .transpose()?;
        if let Some(w) = args.io_weight {
            if !(1..=10000).contains(&w) {
                return Err(PlanError::BadIoWeight(w));
            }
        }
        if let Some(c) = &args.cpuset {
            if !valid_cpuset(c) {
                return Err(PlanError::BadCpuset(c.clone()));
            }
        }
        Ok(Plan {
            envs,
            envs_explicit,
            workloads,
            start,
            profile,
            rounds,
            warmup: args.warmup.unwrap_or(warmup_default),
            seed: args.seed.unwrap_or_else(rand::random),
            out: args.out.clone(),
            scratch: args.scratch.clone(),
            strict: args.strict,
            deadline: Duration::from_secs_f64(args.deadline),
            container: ContainerPlan {
                cpus: args.cpus,
                memory_bytes,
                cpuset: args.cpuset.clone(),
                io_weight: args.io_weight,
                upper_tmpfs: args.upper == Upper::Tmpfs,
            },
            vm: VmPlan {
                guest_page_2m: args.guest_page == GuestPage::TwoM,
            },
            thp: args.thp == OnOff::On,
        })
    }

    /// Workload names in plan order, `start` last when selected.
    pub fn workload_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.workloads.iter().map(|w| w.name.to_string()).collect();
        if self.start {
            v.push(START.into());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("64KiB"), Some(64 << 10));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("0.5G"), Some(512 << 20));
        assert_eq!(parse_size("12X"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("0"), None);
    }

    #[test]
    fn cpusets() {
        assert!(valid_cpuset("0"));
        assert!(valid_cpuset("0-1,3"));
        assert!(!valid_cpuset("a"));
        assert!(!valid_cpuset(""));
        assert!(!valid_cpuset("1-"));
    }

    #[test]
    fn workload_globs() {
        let (w, start) = select_workloads(&["cpu.*".into()]).unwrap();
        assert!(w.iter().all(|w| w.name.starts_with("cpu.")) && !w.is_empty());
        assert!(!start);
        let (_, start) = select_workloads(&["start".into()]).unwrap();
        assert!(start);
        let err = select_workloads(&["nope*".into()]).unwrap_err().to_string();
        assert!(err.contains("nope*") && err.contains("cpu.int"), "{err}");
    }
}
