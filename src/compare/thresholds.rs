//! Noise thresholds for `compare`: the default, and per-metric overrides read from a small
//! TOML file whose keys are globs over `[ENV:]WORKLOAD[/METRIC]`.
//!
//! ```toml
//! # A change must exceed its threshold (and be significant) to count.
//! # Values are fractions (0.03 = 3%) or percent strings ("3%").
//! "*"               = 0.05   # everything (same as --threshold)
//! "cpu.int/hash"    = 0.03   # one metric of one workload
//! "io.*"            = 0.10   # every metric of every io workload
//! "vm:mem.*"        = "8%"   # only the vm environment's memory workloads
//! "*/start_us"      = 0.15
//! ```
//!
//! When several keys match, the most specific wins: the one with the most non-wildcard
//! characters (ties: one naming an environment, then one naming a metric, then the key
//! that sorts first). Keys must be quoted (an unquoted `cpu.int` is a TOML dotted key).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};
use serde::{Deserialize, Serialize};

/// Largest threshold accepted: 1.0 = 100%. Larger numbers are almost always percentages
/// written as numbers (`5` meaning 5%).
pub const MAX_THRESHOLD: f64 = 1.0;

#[derive(Debug, thiserror::Error)]
pub enum ThresholdError {
    #[error("cannot read the thresholds file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("{path}: key {key:?}: {problem}")]
    Entry {
        path: PathBuf,
        key: String,
        problem: String,
    },
    #[error("threshold {value:?}: {problem}")]
    Value { value: String, problem: String },
}

/// One override.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The key as written.
    pub key: String,
    env: Option<Pattern>,
    workload: Pattern,
    metric: Option<Pattern>,
    /// Non-wildcard characters in the key (the specificity).
    literal_chars: usize,
    pub threshold: f64,
}

/// Where a row's threshold came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppliedThreshold {
    pub value: f64,
    /// The matching key of the thresholds file, or `None` for the default.
    pub rule: Option<String>,
}

/// The default threshold and the overrides.
#[derive(Clone, Debug)]
pub struct Thresholds {
    pub default: f64,
    pub rules: Vec<Rule>,
}

const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

/// Parse a threshold given as a fraction (`0.05`) or a percentage (`5%`).
pub fn parse_threshold(text: &str) -> Result<f64, ThresholdError> {
    let t = text.trim();
    let value = if let Some(pct) = t.strip_suffix('%') {
        pct.trim().parse::<f64>().map(|v| v / 100.0)
    } else {
        t.parse::<f64>()
    }
    .map_err(|_| ThresholdError::Value {
        value: text.into(),
        problem: "not a number: write a fraction (0.05) or a percentage (\"5%\")".into(),
    })?;
    check_threshold(value).map_err(|problem| ThresholdError::Value {
        value: text.into(),
        problem,
    })
}

fn check_threshold(value: f64) -> Result<f64, String> {
    if !value.is_finite() || value < 0.0 {
        return Err("a threshold must be a finite number ≥ 0".into());
    }
    if value > MAX_THRESHOLD {
        return Err(format!(
            "{value} is more than 100%: thresholds are fractions (0.05 = 5%); write {} or \"{value}%\"",
            value / 100.0
        ));
    }
    Ok(value)
}

fn literal_chars(s: &str) -> usize {
    s.chars()
        .filter(|c| !matches!(c, '*' | '?' | '[' | ']'))
        .count()
}

impl Rule {
    /// Parse a key `[ENV:]WORKLOAD[/METRIC]`.
    pub fn new(key: &str, threshold: f64) -> Result<Rule, String> {
        if key.trim() != key || key.is_empty() {
            return Err(
                "keys are `[ENV:]WORKLOAD[/METRIC]`, non-empty, without surrounding spaces".into(),
            );
        }
        let (env, rest) = match key.split_once(':') {
            Some((e, r)) => (Some(e), r),
            None => (None, key),
        };
        let (workload, metric) = match rest.split_once('/') {
            Some((w, m)) => (w, Some(m)),
            None => (rest, None),
        };
        let part = |what: &str, s: &str| -> Result<Pattern, String> {
            if s.is_empty() {
                return Err(format!(
                    "the {what} part is empty (keys are `[ENV:]WORKLOAD[/METRIC]`, e.g. \"cpu.int/hash\", \"io.*\", \"vm:mem.*\")"
                ));
            }
            Pattern::new(s).map_err(|e| format!("the {what} part {s:?} is not a valid glob: {e}"))
        };
        Ok(Rule {
            key: key.into(),
            env: env.map(|e| part("environment", e)).transpose()?,
            workload: part("workload", workload)?,
            metric: metric.map(|m| part("metric", m)).transpose()?,
            literal_chars: literal_chars(key),
            threshold,
        })
    }

    pub fn matches(&self, env: &str, workload: &str, metric: &str) -> bool {
        self.env.as_ref().is_none_or(|p| p.matches_with(env, MATCH))
            && self.workload.matches_with(workload, MATCH)
            && self
                .metric
                .as_ref()
                .is_none_or(|p| p.matches_with(metric, MATCH))
    }

    fn specificity(&self) -> (usize, bool, bool) {
        (
            self.literal_chars,
            self.env.is_some(),
            self.metric.is_some(),
        )
    }
}

impl Thresholds {
    pub fn uniform(default: f64) -> Thresholds {
        Thresholds {
            default,
            rules: Vec::new(),
        }
    }

    /// Read overrides from a TOML file (format in the module docs).
    pub fn from_file(default: f64, path: &Path) -> Result<Thresholds, ThresholdError> {
        let text = std::fs::read_to_string(path).map_err(|source| ThresholdError::Read {
            path: path.into(),
            source,
        })?;
        Thresholds::from_toml(default, &text, path)
    }

    /// Parse overrides from TOML text; `path` is only used in messages.
    pub fn from_toml(default: f64, text: &str, path: &Path) -> Result<Thresholds, ThresholdError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ThresholdError::Parse {
            path: path.into(),
            detail: e.to_string().trim_end().to_string(),
        })?;
        let mut rules = Vec::new();
        for (key, value) in &table {
            let entry = |problem: String| ThresholdError::Entry {
                path: path.into(),
                key: key.clone(),
                problem,
            };
            let threshold = match value {
                toml::Value::Float(f) => check_threshold(*f).map_err(entry)?,
                toml::Value::Integer(i) => check_threshold(*i as f64).map_err(entry)?,
                toml::Value::String(s) => match parse_threshold(s) {
                    Ok(v) => v,
                    Err(ThresholdError::Value { problem, .. }) => return Err(entry(problem)),
                    Err(e) => return Err(entry(e.to_string())),
                },
                toml::Value::Table(_) => {
                    return Err(entry(format!(
                        "is a table, not a number: quote keys that contain dots, e.g. \"{key}.…\" = 0.05 rather than {key}.… = 0.05, and do not use [sections]"
                    )))
                }
                other => {
                    return Err(entry(format!(
                        "is a {}, not a threshold: write a fraction (0.05) or a percentage (\"5%\")",
                        other.type_str()
                    )))
                }
            };
            rules.push(Rule::new(key, threshold).map_err(entry)?);
        }
        // Most specific first, so lookup takes the first match.
        rules.sort_by(|a, b| {
            b.specificity()
                .cmp(&a.specificity())
                .then_with(|| a.key.cmp(&b.key))
        });
        Ok(Thresholds { default, rules })
    }

    /// The threshold of one (environment, workload, metric).
    pub fn lookup(&self, env: &str, workload: &str, metric: &str) -> AppliedThreshold {
        match self.rules.iter().find(|r| r.matches(env, workload, metric)) {
            Some(r) => AppliedThreshold {
                value: r.threshold,
                rule: Some(r.key.clone()),
            },
            None => AppliedThreshold {
                value: self.default,
                rule: None,
            },
        }
    }

    /// Keys that match none of the given (env, workload, metric) triples: likely typos.
    pub fn unused<'a>(
        &self,
        keys: impl IntoIterator<Item = (&'a str, &'a str, &'a str)> + Clone,
    ) -> Vec<String> {
        let mut unused = BTreeSet::new();
        for r in &self.rules {
            if !keys.clone().into_iter().any(|(e, w, m)| r.matches(e, w, m)) {
                unused.insert(r.key.clone());
            }
        }
        unused.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Thresholds, ThresholdError> {
        Thresholds::from_toml(0.05, text, Path::new("t.toml"))
    }

    #[test]
    fn most_specific_key_wins() {
        let t = parse(
            r#"
            "*" = 0.07
            "io.*" = 0.10
            "io.seq/read" = "2%"
            "vm:io.*" = 0.2
            "cpu.int" = 0
            "#,
        )
        .unwrap();
        let v = |e, w, m| t.lookup(e, w, m).value;
        assert_eq!(v("native", "io.seq", "read"), 0.02);
        assert_eq!(v("native", "io.seq", "write"), 0.10);
        assert_eq!(v("vm", "io.rand", "iops"), 0.2);
        assert_eq!(v("vm", "io.seq", "read"), 0.02, "more literal characters");
        assert_eq!(v("native", "cpu.int", "hash"), 0.0);
        assert_eq!(v("native", "mem.stream", "copy"), 0.07);
        assert_eq!(
            t.lookup("native", "io.seq", "read").rule.as_deref(),
            Some("io.seq/read")
        );
        assert_eq!(
            Thresholds::uniform(0.05).lookup("a", "b", "c"),
            AppliedThreshold {
                value: 0.05,
                rule: None
            }
        );
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text: &str| parse(text).unwrap_err().to_string();
        let e = err("cpu.int = 0.03");
        assert!(e.contains("\"cpu\"") && e.contains("quote keys"), "{e}");
        let e = err(r#""cpu.int/hash" = 5"#);
        assert!(e.contains("cpu.int/hash") && e.contains("0.05"), "{e}");
        let e = err(r#""io.*" = -0.1"#);
        assert!(e.contains("≥ 0"), "{e}");
        let e = err(r#""io.*" = "lots""#);
        assert!(e.contains("not a number"), "{e}");
        let e = err(r#""io.*" = true"#);
        assert!(e.contains("boolean"), "{e}");
        let e = err(r#""io.[" = 0.1"#);
        assert!(e.contains("not a valid glob"), "{e}");
        let e = err(r#""vm:" = 0.1"#);
        assert!(e.contains("workload part is empty"), "{e}");
        let e = err(r#""io.*" = "#);
        assert!(e.contains("t.toml is not valid TOML"), "{e}");
    }

    #[test]
    fn threshold_values() {
        assert_eq!(parse_threshold("5%").unwrap(), 0.05);
        assert_eq!(parse_threshold("0.1").unwrap(), 0.1);
        assert!(parse_threshold("5")
            .unwrap_err()
            .to_string()
            .contains("0.05"));
        assert!(parse_threshold("x").is_err());
    }

    #[test]
    fn unused_keys_are_reported() {
        let t = parse(
            r#""cpu.int/hash" = 0.03
"cpu.itn" = 0.03"#,
        )
        .unwrap();
        assert_eq!(
            t.unused([("native", "cpu.int", "hash")]),
            vec!["cpu.itn".to_string()]
        );
    }
}
