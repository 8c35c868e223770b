//! The headline of a run: one representative metric per workload, each compared
//! environment's overhead on it with its verdict written as a reader says it, and the
//! plain-words caption (one line per environment) that opens the report, ends the terminal
//! output and captions the headline figure. Pure: an [`Analysis`] in, data and text out.
//!
//! The representative metric of a workload is the catalogue's `primary` metric for the
//! run's profile (docs/METHODOLOGY.md, "The headline"); a user's command (`isobench exec`)
//! is represented by its first `--metric`; a run that lacks its primary metric, or a command
//! without one, falls back to its first reported metric.

use crate::analysis::{Analysis, Comparison, MetricAnalysis, Overhead, NATIVE_B};
use crate::stats::verdict::{format_margin, Verdict};
use crate::workload::{self, command, Profile};

use super::content::no_verdict_possible;
use super::table::fmt_overhead;

/// What a headline mark says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Call {
    /// Within ±margin.
    Within,
    /// Worse than native beyond the margin.
    Above,
    /// Better than native beyond the margin.
    Below,
    /// The interval straddles the margin.
    Inconclusive,
    /// Native differs from itself (A/A) by more than the margin here: no ±margin verdict.
    AaTooWide,
    /// Fewer paired blocks than a verdict needs.
    TooFew,
}

/// One environment on one headline row.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub env: String,
    pub overhead: Option<Overhead>,
    pub call: Call,
    /// The verdict as written on the mark: `within`, `+8% above`, `n/a: A/A too wide`.
    pub text: String,
}

/// One workload's representative metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub workload: String,
    pub metric: String,
    pub unit: String,
    /// native-b against native on this metric: the A/A band.
    pub aa: Option<Overhead>,
    /// One per compared environment (native-b excluded), in isolation order.
    pub marks: Vec<Mark>,
}

impl Row {
    /// `cpu.int · hash`.
    pub fn label(&self) -> String {
        format!("{} · {}", self.workload, self.metric)
    }
}

/// The headline of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Headline {
    /// Margin (fraction).
    pub margin: f64,
    /// Compared environments other than native-b, in isolation order.
    pub envs: Vec<String>,
    pub rows: Vec<Row>,
    /// One plain-words line per compared environment (native-b last, as the noise floor).
    pub caption: Vec<String>,
}

/// The representative metric of `workload` in a run of `profile`, when the catalogue
/// knows one (`start` is represented by its only metric).
pub fn representative_metric(workload_name: &str, profile: Profile) -> Option<String> {
    if workload_name == workload::START {
        return Some("start_us".to_string());
    }
    workload::by_name(workload_name).map(|w| (w.primary)(profile))
}

/// The metric shown for each workload of `analysis`, in workload order.
pub fn representatives(analysis: &Analysis, profile: Profile) -> Vec<&MetricAnalysis> {
    let mut out: Vec<&MetricAnalysis> = Vec::new();
    for m in analysis.shown_metrics() {
        if out.iter().any(|o| o.workload == m.workload) {
            continue;
        }
        let of_workload = || {
            analysis
                .shown_metrics()
                .filter(|x| x.workload == m.workload)
        };
        let wanted = representative_metric(&m.workload, profile);
        let has_overhead = |x: &&MetricAnalysis| x.comparisons.iter().any(|c| c.overhead.is_some());
        // A user's command (`isobench exec`) is represented by the first metric the user
        // asked for (`--metric`), not by the wall time every command has: under a CPU quota
        // `sysbench --time=1` still takes one second, and only its events/s show the cost.
        let user_metric = || {
            of_workload().filter(has_overhead).find(|x| {
                workload::by_name(&x.workload).is_none()
                    && ![command::WALL_MS, command::CPU_MS, command::PEAK_RSS_MIB]
                        .contains(&x.metric.as_str())
            })
        };
        let chosen = wanted
            .and_then(|p| of_workload().find(|x| x.metric == p))
            .or_else(user_metric)
            .or_else(|| of_workload().find(has_overhead))
            .unwrap_or(m);
        out.push(chosen);
    }
    out
}

/// The call and the words written on the mark for `c` on `m`.
fn call_of(m: &MetricAnalysis, c: &Comparison, margin: f64) -> (Call, String) {
    let est = c.overhead.map(|o| o.estimate);
    let signed = || est.map_or(String::new(), |e| format!("{} ", amount(e)));
    if c.env != NATIVE_B && no_verdict_possible(m, c, margin) {
        return (Call::AaTooWide, "n/a: A/A too wide".into());
    }
    match c.verdict {
        Verdict::Within => (Call::Within, "within".into()),
        Verdict::Above => (Call::Above, format!("{}above", signed())),
        Verdict::Below => (Call::Below, format!("{}below", signed())),
        Verdict::Inconclusive { .. } => (Call::Inconclusive, format!("{}undecided", signed())),
        Verdict::TooFewRounds { n } => (Call::TooFew, format!("n/a: {n} blocks")),
    }
}

/// Builds the headline of `analysis` (a run of `profile`).
pub fn headline(analysis: &Analysis, profile: Profile) -> Headline {
    let margin = analysis.config.margin;
    let envs: Vec<String> = analysis
        .compared_envs()
        .into_iter()
        .filter(|e| *e != NATIVE_B)
        .map(str::to_string)
        .collect();
    let rows: Vec<Row> = representatives(analysis, profile)
        .into_iter()
        .map(|m| Row {
            workload: m.workload.clone(),
            metric: m.metric.clone(),
            unit: m.unit.clone(),
            aa: m.comparison(NATIVE_B).and_then(|c| c.overhead),
            marks: envs
                .iter()
                .filter_map(|e| m.comparison(e))
                .map(|c| {
                    let (call, text) = call_of(m, c, margin);
                    Mark {
                        env: c.env.clone(),
                        overhead: c.overhead,
                        call,
                        text,
                    }
                })
                .collect(),
        })
        .collect();
    let mut caption: Vec<String> = envs
        .iter()
        .filter_map(|e| env_line(e, &rows, margin))
        .collect();
    if let Some(line) = aa_line(analysis, profile, margin) {
        caption.push(line);
    }
    if caption.is_empty() {
        caption.push("No environment was compared with native: nothing to headline.".into());
    }
    Headline {
        margin,
        envs,
        rows,
        caption,
    }
}

/// A workload in plain words, as the caption names it.
pub fn plain_name(workload_name: &str) -> String {
    match workload_name {
        "cpu.int" => "integer CPU".into(),
        "cpu.fp" => "floating-point CPU".into(),
        "mem.stream" => "memory bandwidth".into(),
        "mem.random" => "random memory updates".into(),
        "mem.latency" => "memory latency".into(),
        "mem.touch" => "first-touch page faults".into(),
        "io.seq" => "sequential IO".into(),
        "io.rand" => "random IO".into(),
        "sys.call" => "system calls".into(),
        "start" => "start-up".into(),
        other => other.to_string(),
    }
}

/// The broad kind of a workload (`cpu.int` → CPU), for grouping what is within.
fn kind_name(workload_name: &str) -> String {
    match workload_name.split('.').next().unwrap_or(workload_name) {
        "cpu" => "CPU".into(),
        "mem" => "memory".into(),
        "io" => "IO".into(),
        "sys" => "system calls".into(),
        "start" => "start-up".into(),
        other => other.to_string(),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// An overhead as a reader says it: `+20%`, `-1.6%`, or a factor from 2× on (`7.9×`, `89×`).
pub fn amount(estimate: f64) -> String {
    if estimate >= 1.0 {
        let factor = 1.0 + estimate;
        if factor >= 10.0 {
            format!("{factor:.0}×")
        } else {
            format!("{}×", format!("{factor:.1}").trim_end_matches(".0"))
        }
    } else {
        fmt_overhead(estimate)
    }
}

/// How much worse, in words: `+20% on random IO` or `9× slower to start`.
fn cost_words(o: Overhead, what: &str) -> String {
    let a = amount(o.estimate);
    if o.estimate < 1.0 {
        format!("{a} on {what}")
    } else if what == "start-up" {
        format!("{a} slower to start")
    } else {
        format!("{a} slower on {what}")
    }
}

/// One caption line for `env`: what is within the margin, grouped by kind, then every
/// cost beyond it, then what is better, undecided or cannot be told from noise.
fn env_line(env: &str, rows: &[Row], margin: f64) -> Option<String> {
    let m_txt = format_margin(margin);
    let marks: Vec<(&Row, &Mark)> = rows
        .iter()
        .filter_map(|r| r.marks.iter().find(|k| k.env == env).map(|k| (r, k)))
        .collect();
    if marks.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    // A kind (CPU, memory, ...) is named when all its workloads are within; otherwise the
    // workloads that are, by name.
    let mut kinds: Vec<String> = Vec::new();
    for (r, _) in marks.iter().filter(|(_, k)| k.call == Call::Within) {
        let kind = kind_name(&r.workload);
        let whole_kind = marks
            .iter()
            .filter(|(o, _)| kind_name(&o.workload) == kind)
            .all(|(_, k)| k.call == Call::Within);
        let name = if whole_kind {
            kind
        } else {
            plain_name(&r.workload)
        };
        if !kinds.contains(&name) {
            kinds.push(name);
        }
    }
    if !kinds.is_empty() {
        parts.push(format!("within ±{m_txt} on {}", and_list(&kinds)));
    }
    let mut above: Vec<(&Row, Overhead)> = marks
        .iter()
        .filter(|(_, k)| k.call == Call::Above)
        .filter_map(|(r, k)| k.overhead.map(|o| (*r, o)))
        .collect();
    above.sort_by(|a, b| a.1.estimate.total_cmp(&b.1.estimate));
    for (r, o) in above {
        parts.push(cost_words(o, &plain_name(&r.workload)));
    }
    let names = |call: Call| -> Vec<String> {
        marks
            .iter()
            .filter(|(_, k)| k.call == call)
            .map(|(r, _)| plain_name(&r.workload))
            .collect()
    };
    let below: Vec<String> = marks
        .iter()
        .filter(|(_, k)| k.call == Call::Below)
        .map(|(r, k)| {
            let e = k.overhead.map_or(String::new(), |o| amount(o.estimate));
            format!("{e} (faster than native) on {}", plain_name(&r.workload))
        })
        .collect();
    parts.extend(below);
    let undecided = names(Call::Inconclusive);
    if !undecided.is_empty() {
        parts.push(format!("undecided on {}", and_list(&undecided)));
    }
    let noisy = names(Call::AaTooWide);
    if !noisy.is_empty() {
        parts.push(format!(
            "no verdict on {} (native differs from itself there by more than ±{m_txt})",
            and_list(&noisy)
        ));
    }
    let few = names(Call::TooFew);
    if !few.is_empty() {
        parts.push(format!("too few blocks on {}", and_list(&few)));
    }
    Some(format!("{env}: {}.", parts.join("; ")))
}

/// The A/A line: how far native differs from itself on the headline metrics.
fn aa_line(analysis: &Analysis, profile: Profile, margin: f64) -> Option<String> {
    let reps = representatives(analysis, profile);
    let comps: Vec<(&MetricAnalysis, &Comparison)> = reps
        .iter()
        .filter_map(|m| m.comparison(NATIVE_B).map(|c| (*m, c)))
        .collect();
    if comps.is_empty() {
        return None;
    }
    let m_txt = format_margin(margin);
    let within = comps
        .iter()
        .filter(|(_, c)| c.verdict == Verdict::Within)
        .count();
    let widest = comps
        .iter()
        .filter_map(|(m, c)| c.overhead.map(|o| (m, o.half_width())))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let mut s = format!(
        "native-b (A/A noise floor): within ±{m_txt} on {within} of {} workloads",
        comps.len()
    );
    if let Some((m, w)) = widest {
        s.push_str(&format!(
            "; widest 95% interval ±{:.1}% on {}",
            w * 100.0,
            plain_name(&m.workload)
        ));
    }
    s.push('.');
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{analyze, AnalysisConfig};
    use crate::results::SampleRow;
    use crate::stats::Better;

    fn rows(
        env: &str,
        workload: &str,
        metric: &str,
        factor: f64,
        better: Better,
    ) -> Vec<SampleRow> {
        (0..12)
            .map(|r| {
                // Small deterministic noise so intervals have a width.
                let k = if env == "native-b" { 3 } else { 7 };
                let wiggle = 1.0 + 0.001 * ((r * k % 5) as f64 - 2.0);
                SampleRow {
                    round: r,
                    env: env.into(),
                    workload: workload.into(),
                    metric: metric.into(),
                    value: 100.0 * factor * wiggle,
                    unit: "u".into(),
                    better: Some(better),
                    cycles: 0,
                    wall_ns: 0,
                }
            })
            .collect()
    }

    fn analysis() -> Analysis {
        let mut s = Vec::new();
        for (w, metric, better) in [
            ("cpu.int", "hash", Better::Higher),
            ("cpu.int", "hash.mean", Better::Higher),
            ("cpu.fp", "dgemm", Better::Higher),
            ("mem.stream", "copy", Better::Higher),
            ("mem.stream", "triad", Better::Higher),
            ("io.rand", "write_p99_us", Better::Lower),
            ("start", "start_us", Better::Lower),
        ] {
            let (container, vm) = match w {
                // Higher is better: 1/1.25 is 25% worse.
                "cpu.fp" => (1.0, 0.8),
                "io.rand" => (1.2, 2.0),
                "start" => (9.0, 89.0),
                _ => (1.0, 1.0),
            };
            s.extend(rows("native", w, metric, 1.0, better));
            s.extend(rows("native-b", w, metric, 1.0, better));
            s.extend(rows("vm", w, metric, vm, better));
            s.extend(rows("container", w, metric, container, better));
        }
        analyze(&s, AnalysisConfig::new(3)).unwrap()
    }

    #[test]
    fn one_row_per_workload_with_its_primary_metric() {
        let h = headline(&analysis(), Profile::Quick);
        let labels: Vec<String> = h.rows.iter().map(Row::label).collect();
        // mem.stream's primary is triad; io.rand's primary is absent, so its first metric.
        assert_eq!(
            labels,
            [
                "cpu.int · hash",
                "cpu.fp · dgemm",
                "mem.stream · triad",
                "io.rand · write_p99_us",
                "start · start_us"
            ]
        );
        assert_eq!(h.envs, ["container", "vm"], "isolation order, no native-b");
        let start = &h.rows[4];
        assert_eq!(start.marks[0].env, "container");
        assert_eq!(start.marks[0].call, Call::Above);
        assert_eq!(start.marks[0].text, "9× above");
        assert_eq!(start.marks[1].text, "89× above");
        assert_eq!(h.rows[0].marks[0].text, "within");
        assert!(h.rows[0].aa.is_some());
    }

    /// A user's command is shown by the metric the user asked for, not by the wall time
    /// every command has (under a quota `sysbench --time=1` still takes one second).
    #[test]
    fn a_command_is_represented_by_the_users_metric() {
        let mut s = Vec::new();
        for (metric, better, container) in [
            ("wall_ms", Better::Lower, 1.0),
            ("cpu_ms", Better::Lower, 0.5),
            ("peak_rss_mib", Better::Lower, 1.0),
            ("eps", Better::Higher, 0.5),
        ] {
            s.extend(rows("native", "sysbench", metric, 1.0, better));
            s.extend(rows("native-b", "sysbench", metric, 1.0, better));
            s.extend(rows("container", "sysbench", metric, container, better));
        }
        let h = headline(
            &analyze(&s, AnalysisConfig::new(3)).unwrap(),
            Profile::Quick,
        );
        let labels: Vec<String> = h.rows.iter().map(Row::label).collect();
        assert_eq!(labels, ["sysbench · eps"]);
        assert_eq!(h.rows[0].marks[0].call, Call::Above);
    }

    #[test]
    fn caption_in_plain_words() {
        let h = headline(&analysis(), Profile::Quick);
        assert_eq!(
            h.caption,
            [
                "container: within ±1% on CPU and memory; +20% on random IO; 9× slower to start.",
                "vm: within ±1% on integer CPU and memory; +25% on floating-point CPU; 2× slower on random IO; 89× slower to start.",
                "native-b (A/A noise floor): within ±1% on 5 of 5 workloads; widest 95% interval ±0.1% on floating-point CPU."
            ]
        );
    }
}
