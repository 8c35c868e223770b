//! The value parsers of `isobench run`'s options (sizes, durations, labels, CPUs, tiers,
//! thread counts, injected slowdowns): each turns a typed string into its typed form or an
//! error that names the flag and shows a good value.

use std::time::Duration;

use super::{CpuChoice, Injection};
use crate::workload::isa::{self, Isa, IsaChoice};

/// Parse a `--label KEY=VALUE`: a non-empty key of letters, digits, `.`, `_`, `-`, `/`.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let Some((key, value)) = s.split_once('=') else {
        return Err(format!(
            "{s:?} is not KEY=VALUE: give e.g. --label pool=general"
        ));
    };
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
    {
        return Err(format!(
            "label key {key:?} must be non-empty letters, digits, `.`, `_`, `-` or `/` (e.g. --label pool=general)"
        ));
    }
    Ok((key.to_string(), value.to_string()))
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

/// Parse a duration like `90s`, `3m`, `1h30m`, `500ms` or plain seconds (`180`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not a duration: use e.g. 90s, 3m, 1h30m or a number of seconds");
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return (secs.is_finite() && secs > 0.0)
            .then(|| Duration::from_secs_f64(secs))
            .ok_or_else(bad);
    }
    let mut total = 0.0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: f64 = num.parse().map_err(|_| bad())?;
        total += n * match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = next;
    }
    (total > 0.0)
        .then(|| Duration::from_secs_f64(total))
        .ok_or_else(bad)
}

pub fn parse_isa_tier(s: &str) -> Result<Isa, String> {
    match isa::parse_choice(s)? {
        IsaChoice::Tier(t) => Ok(t),
        IsaChoice::Best => Err("--vm-max-isa takes a tier: sse2, avx2 or avx512".into()),
    }
}

pub fn parse_threads(s: &str) -> Result<u32, String> {
    let n: u32 = s
        .parse()
        .map_err(|_| format!("--threads '{s}' is not a number: give how many threads, e.g. 2"))?;
    crate::workload::threads::check_count(n)?;
    Ok(n)
}

pub fn parse_cpu_choice(s: &str) -> Result<CpuChoice, String> {
    match s.trim() {
        "auto" => Ok(CpuChoice::Auto),
        "none" => Ok(CpuChoice::None),
        n => n.parse().map(CpuChoice::Cpu).map_err(|_| {
            format!("--cpu '{s}' is not a CPU: give its number (0, 1, ...), auto or none")
        }),
    }
}

pub fn parse_injection(s: &str) -> Result<Injection, String> {
    let bad = || format!("--inject-slowdown '{s}': use ENV=PERCENT, e.g. container=2");
    let (env, pct) = s.split_once('=').ok_or_else(bad)?;
    let pct: f64 = pct
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| bad())?;
    if env.trim().is_empty() || !(pct.is_finite() && pct > -100.0) {
        return Err(bad());
    }
    Ok(Injection {
        env: env.trim().to_string(),
        fraction: pct / 100.0,
    })
}
