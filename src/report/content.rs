//! What the report says: builds the report [`Document`] (host facts, configuration,
//! method, verdict table, findings per environment in plain words, outliers, plots) from a
//! stored run and its analysis. Markdown and HTML render the same document.

use crate::analysis::{
    time_needed_text, Analysis, Comparison, MetricAnalysis, Overhead, NATIVE, NATIVE_B,
};
use crate::results::{EnvStatus, RunFile};
use crate::stats::bootstrap::Interval;
use crate::stats::outliers::OUTLIER_THRESHOLD;
use crate::stats::summary::median;
use crate::stats::verdict::{format_margin, Verdict, MIN_ROUNDS};

use super::document::{Document, Figure, Table};
use super::headline::Headline;
use super::plot::{Plot, HEADLINE};
use super::precision;
use super::table::{fmt_overhead, fmt_pct, fmt_value, FACTOR_FROM};
use crate::stats::summary::Estimator;

pub fn pct(x: f64) -> String {
    format!("{}%", fmt_pct(x))
}

fn interval(i: Interval) -> String {
    if i.low >= FACTOR_FROM {
        format!("[{:.0}×, {:.0}×]", 1.0 + i.low, 1.0 + i.high)
    } else {
        format!("[{}, {}]", pct(i.low), pct(i.high))
    }
}

/// `+1.2% [+0.3%, +2.1%]`.
pub fn overhead_text(c: &Comparison) -> String {
    match c.overhead {
        Some(o) => overhead_interval_text(o),
        None => "no paired rounds".to_string(),
    }
}

/// `+1.2% [+0.3%, +2.1%]` of one overhead.
pub fn overhead_interval_text(o: Overhead) -> String {
    format!("{} {}", fmt_overhead(o.estimate), interval(o.ci95))
}

fn kv(rows: Vec<(&str, String)>) -> Table {
    Table {
        header: vec!["".into(), "".into()],
        rows: rows
            .into_iter()
            .map(|(k, v)| vec![k.to_string(), v])
            .collect(),
        right_aligned: vec![],
    }
}

/// Builds the report document. `plots` are figure files relative to the run directory
/// (`plot_dir` is their directory name there, e.g. `plots`).
/// The headline figure (`plots` entry named [`HEADLINE`]) comes first, with the caption;
/// the other plots follow in their own section.
pub fn document(
    run: &RunFile,
    analysis: &Analysis,
    headline: &Headline,
    plots: &[Plot],
    plot_dir: &str,
) -> Document {
    let margin = format_margin(analysis.config.margin);
    let mut doc = Document {
        title: format!("isobench report — run {}", run.run_id),
        blocks: Vec::new(),
    };
    let file = |path: &std::path::Path| {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{plot_dir}/{name}")
    };
    let figure = |p: &Plot| Figure {
        title: p.title.clone(),
        png_path: file(&p.png_path),
        svg_path: file(&p.svg_path),
        svg: p.svg.clone(),
        caption: p.caption.clone(),
    };
    doc.heading(1, "Headline");
    let mut lines = headline.caption.clone();
    // Environments that did not run are named too, so their absence from the figure is read.
    for e in run
        .environments
        .iter()
        .filter(|e| e.status != EnvStatus::Ran)
    {
        let reason = e.reason.as_deref().unwrap_or("no reason recorded");
        lines.push(format!("{}: {} — {reason}.", e.label, e.status));
    }
    doc.list(lines);
    if let Some(p) = plots.iter().find(|p| p.name == HEADLINE) {
        doc.figure(figure(p));
    }
    doc.paragraph(format!(
        "Outcome: {}. Started {}, finished {}. isobench {} (commit {}). Workload image SHA-256 {} \
         ({} bytes, loaded at {}).",
        or_dash(run.outcome.name()),
        or_dash(&run.started_at),
        run.finished_at.as_deref().unwrap_or("—"),
        or_dash(&run.isobench_version),
        or_dash(&run.git_commit),
        or_dash(&run.image.sha256),
        run.image.size_bytes,
        or_dash(&run.image.load_address),
    ));

    doc.heading(1, "Findings");
    for p in findings(run, analysis) {
        doc.paragraph(p);
    }

    doc.heading(1, "Verdicts");
    doc.paragraph(format!(
        "Overhead is how much worse than native an environment is, whatever the metric's \
         direction: native/env − 1 for higher-is-better metrics, env/native − 1 for \
         lower-is-better ones (+5% = 5% worse, −5% = 5% better). Estimate: exp({} of the \
         paired per-block log ratios) − 1; brackets: 95% percentile-bootstrap interval \
         ({} resamples, seed {}; blocks of consecutive pairs are resampled together where \
         the pairs are many enough to show dependence). Verdict at margin ±{margin}: within when the 90% interval \
         lies inside ±{margin} (two one-sided tests), above/below when the 95% interval lies \
         wholly beyond +{margin}/−{margin}, otherwise inconclusive; no verdict from fewer than \
         {MIN_ROUNDS} paired blocks. The A/A column is \
         a second native instance against native: the noise floor.",
        match analysis.config.estimator {
            Estimator::Mean => "mean".to_string(),
            Estimator::TrimmedMean(t) => format!("{:.0}% trimmed mean", t * 100.0),
        },
        analysis.config.resamples,
        analysis.config.seed
    ));
    doc.table(verdict_table(analysis));

    precision::section(&mut doc, run, analysis);

    doc.heading(1, "Outliers and warm-up");
    doc.paragraph(format!(
        "Outliers: modified z-score |0.6745·(x − median)/MAD| > {OUTLIER_THRESHOLD} \
         (Iglewicz & Hoaglin), with the mean absolute deviation ×1.253314 in place of MAD \
         when MAD is 0; flagged and counted, never removed. Warm-up: the first third of the \
         rounds against the rest (one-sided Mann–Whitney, α = 0.01)."
    ));
    doc.list(outlier_notes(analysis));

    let details: Vec<&Plot> = plots.iter().filter(|p| p.name != HEADLINE).collect();
    if !details.is_empty() {
        doc.heading(1, "Plots");
        for p in details {
            doc.figure(figure(p));
        }
    }

    doc.heading(1, "Host");
    let h = &run.host;
    doc.table(kv(vec![
        ("hostname", h.hostname.clone()),
        ("CPU", h.cpu_model.clone()),
        ("cores", h.cores.to_string()),
        (
            "memory",
            format!("{:.1} GiB", h.memory_bytes as f64 / f64::from(1u32 << 30)),
        ),
        ("kernel", h.kernel.clone()),
        ("KVM", h.kvm_flavour.clone()),
        (
            "host virtualized",
            if h.virtualized {
                "yes".into()
            } else {
                "no".into()
            },
        ),
        ("cgroups", h.cgroup_version.clone()),
        ("transparent huge pages", h.thp.clone()),
        ("clocksource", h.clocksource.clone()),
        (
            "TSC",
            format!("{:.0} MHz ({})", h.tsc_hz / 1e6, h.tsc_source),
        ),
    ]));

    doc.heading(1, "Configuration");
    let c = &run.config;
    let mut rows = vec![
        ("profile", c.profile.name().to_string()),
        ("measured blocks", design_text(run)),
        ("warm-up blocks (discarded)", c.warmup.to_string()),
        ("seed (order and bootstrap)", c.seed.to_string()),
        (
            "environments",
            c.environments
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("workloads", c.workloads.join(", ")),
        ("scratch", c.scratch.clone()),
        ("command line", c.command_line.join(" ")),
        ("margin", format!("±{margin}")),
        (
            "bootstrap",
            format!(
                "percentile, {} resamples, seed {}",
                analysis.config.resamples, analysis.config.seed
            ),
        ),
    ];
    let options: Vec<(String, String)> = c
        .options
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut t = kv(std::mem::take(&mut rows));
    for (k, v) in options {
        t.rows.push(vec![format!("option {k}"), v]);
    }
    doc.table(t);

    if !run.environments.is_empty() {
        doc.heading(2, "Environments");
        doc.table(Table {
            header: vec![
                "environment".into(),
                "kind".into(),
                "status".into(),
                "image".into(),
                "facts".into(),
            ],
            rows: run
                .environments
                .iter()
                .map(|e| {
                    let status = match &e.reason {
                        Some(r) => format!("{} ({r})", e.status),
                        None => e.status.to_string(),
                    };
                    let image = if e.image_sha256.is_empty() {
                        "—".to_string()
                    } else if e.image_sha256 == run.image.sha256 {
                        "same image".to_string()
                    } else {
                        format!("DIFFERENT image {}", e.image_sha256)
                    };
                    let facts: Vec<String> =
                        e.facts.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    vec![
                        e.label.clone(),
                        e.kind.to_string(),
                        status,
                        image,
                        facts.join(", "),
                    ]
                })
                .collect(),
            right_aligned: vec![],
        });
    }

    if !run.failures.is_empty() {
        doc.heading(1, "Failed workloads");
        doc.paragraph(
            "Each failed in one environment and was dropped from the rest of the run \
             (`--keep-going`); only its blocks completed before the failure are in the results.",
        );
        doc.list(
            run.failures
                .iter()
                .map(|f| format!("{} in {}: {}", f.workload, f.env, f.error))
                .collect(),
        );
    }
    if !run.warnings.is_empty() {
        doc.heading(1, "Warnings during the run");
        doc.list(run.warnings.clone());
    }
    doc
}

/// How the blocks were chosen: a budget and a precision target, or a fixed number (runs of
/// schema 1 had a fixed number of rounds).
fn design_text(run: &RunFile) -> String {
    let o = &run.config.options;
    match o.get("design").map(String::as_str) {
        Some("budget") => format!(
            "as many as a budget of {} s allowed, for a 95% half-width of ±{}%",
            o.get("budget_s").map_or("?", String::as_str),
            o.get("precision_pct").map_or("?", String::as_str)
        ),
        _ => format!("{} per workload", run.config.rounds),
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "—".into()
    } else {
        s.to_string()
    }
}

/// The verdict table: one row per workload/metric.
pub fn verdict_table(analysis: &Analysis) -> Table {
    let margin = analysis.config.margin;
    let envs = analysis.compared_envs();
    let mut header = vec![
        "workload".to_string(),
        "metric".into(),
        "native (median)".into(),
    ];
    for e in &envs {
        if *e == NATIVE_B {
            header.push("A/A floor (native-b)".into());
        } else {
            header.push(e.to_string());
        }
    }
    let rows = analysis
        .shown_metrics()
        .map(|m| {
            let mut row = vec![m.workload.clone(), m.metric.clone(), native_text(m)];
            for e in &envs {
                row.push(match m.comparison(e) {
                    Some(c) => format!("{} {}", overhead_text(c), c.verdict.describe(margin)),
                    None => "—".into(),
                });
            }
            row
        })
        .collect();
    Table {
        header,
        rows,
        right_aligned: vec![2],
    }
}

fn native_text(m: &MetricAnalysis) -> String {
    match m.samples_of(NATIVE) {
        Some(s) => format!("{} {} ({} better)", fmt_value(s.median), m.unit, m.better),
        None => "—".into(),
    }
}

fn outlier_notes(analysis: &Analysis) -> Vec<String> {
    let mut notes = Vec::new();
    for env in &analysis.envs {
        let mut outliers = 0;
        let mut samples = 0;
        let mut warm: Vec<String> = Vec::new();
        for m in &analysis.metrics {
            if let Some(s) = m.samples_of(env) {
                outliers += s.outliers;
                samples += s.values.len();
                if let Some(w) = s.warmup {
                    warm.push(format!(
                        "{} (first {} rounds {} worse)",
                        m.label(),
                        w.early_rounds,
                        pct(w.early_worse_by)
                    ));
                }
            }
        }
        let noun = if outliers == 1 { "outlier" } else { "outliers" };
        notes.push(format!("{env}: {outliers} {noun} among {samples} samples."));
        if !warm.is_empty() {
            notes.push(format!(
                "{env}: the first rounds were significantly slower (warm-up too short? raise --warmup) on {}.",
                warm.join("; ")
            ));
        }
    }
    if analysis.counter_rows > 0 {
        notes.push(format!(
            "{} counter rows (counter.*) are accounting, not performance, and are not part of any overhead.",
            analysis.counter_rows
        ));
    }
    if !analysis.undirected.is_empty() {
        notes.push(format!(
            "Left out for lack of a higher/lower-is-better direction: {}.",
            analysis.undirected.join(", ")
        ));
    }
    notes
}

/// One paragraph per environment, in plain words.
pub fn findings(run: &RunFile, analysis: &Analysis) -> Vec<String> {
    let margin = analysis.config.margin;
    let m_txt = format_margin(margin);
    let mut out = Vec::new();
    let floor = aa_floor(analysis);
    for env in analysis.compared_envs() {
        let all: Vec<(&MetricAnalysis, &Comparison)> = analysis
            .shown_metrics()
            .filter_map(|m| m.comparison(env).map(|c| (m, c)))
            .collect();
        // Where native differs from itself by more than the margin, no ±margin verdict of
        // another environment means anything on this host: those metrics are set apart,
        // unless the environment's interval lies beyond the margin and the A/A noise both.
        let (no_verdict, comps): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|(m, c)| env != NATIVE_B && no_verdict_possible(m, c, margin));
        let count = |f: fn(&Verdict) -> bool| comps.iter().filter(|(_, c)| f(&c.verdict)).count();
        let within = count(|v| matches!(v, Verdict::Within));
        let above = count(|v| matches!(v, Verdict::Above));
        let below = count(|v| matches!(v, Verdict::Below));
        let inconclusive = count(|v| matches!(v, Verdict::Inconclusive { .. }));
        let few = count(|v| matches!(v, Verdict::TooFewRounds { .. }));
        let total = comps.len() + no_verdict.len();
        let mut s = if env == NATIVE_B {
            format!(
                "native-b (A/A: a second native instance against native, the noise floor): \
                 {within} of {total} metrics within ±{m_txt}"
            )
        } else {
            format!("{env}: {within} of {total} metrics within ±{m_txt} of native")
        };
        let worst = |v: Verdict| -> Option<String> {
            comps
                .iter()
                .filter(|(_, c)| c.verdict == v)
                .filter_map(|(m, c)| c.overhead.map(|o| (m, c, o.estimate)))
                .max_by(|a, b| a.2.abs().total_cmp(&b.2.abs()))
                .map(|(m, c, _)| format!("{} {}", m.label(), overhead_text(c)))
        };
        if above > 0 {
            let w = worst(Verdict::Above).map_or(String::new(), |w| format!(", the largest {w}"));
            s.push_str(&format!("; {above} worse by more than {m_txt}{w}"));
        }
        if below > 0 {
            let w = worst(Verdict::Below).map_or(String::new(), |w| format!(", the largest {w}"));
            s.push_str(&format!(
                "; {below} better than native by more than {m_txt}{w}"
            ));
        }
        if inconclusive > 0 {
            let need = comps
                .iter()
                .filter_map(|(m, c)| m.seconds_to_settle(c))
                .fold(None, |a: Option<f64>, s| Some(a.map_or(s, |a| a.max(s))));
            let need = need.map_or(String::new(), |s| {
                format!(
                    " (measuring {} would settle the hardest)",
                    time_needed_text(s, analysis.measured_seconds)
                )
            });
            s.push_str(&format!("; {inconclusive} inconclusive{need}"));
        }
        if !no_verdict.is_empty() {
            let names: Vec<String> = no_verdict.iter().map(|(m, _)| m.label()).collect();
            s.push_str(&format!(
                "; no ±{m_txt} verdict is possible on this host for {} metric(s) where native \
                 differs from itself (A/A) by more than ±{m_txt}: {}",
                no_verdict.len(),
                names.join(", ")
            ));
        }
        if few > 0 {
            s.push_str(&format!(
                "; {few} with too few rounds (n<{MIN_ROUNDS}) for a verdict"
            ));
        }
        let ests: Vec<f64> = comps
            .iter()
            .filter_map(|(_, c)| c.overhead.map(|o| o.estimate))
            .collect();
        if !ests.is_empty() {
            s.push_str(&format!(
                ". Median overhead across its metrics: {}",
                pct(median(&ests))
            ));
        }
        s.push('.');
        if env == NATIVE_B {
            if let Some(f) = floor {
                s.push_str(&format!(
                    " Its 95% intervals reach ±{:.1}% (median half-width over metrics): differences smaller \
                     than that cannot be told from noise on this machine.",
                    f * 100.0
                ));
            }
            if within < total {
                s.push_str(&format!(
                    " Where native differs from itself beyond ±{m_txt}, verdicts of the other \
                     environments on the same metrics are not to be trusted."
                ));
            }
        } else if above == 0 && below == 0 && inconclusive == 0 && few == 0 && total > 0 {
            let which = if no_verdict.is_empty() {
                "every metric measured".to_string()
            } else {
                format!("the {} metric(s) where a verdict is possible", comps.len())
            };
            s.push_str(&format!(
                " On this run, the \"only ~{m_txt}\" claim holds for {env} on {which}."
            ));
        } else if above > 0 {
            s.push_str(&format!(" On this run, the \"only ~{m_txt}\" claim does not hold for {env} on {above} metrics."));
        }
        out.push(s);
    }
    out.extend(rung_findings(analysis));
    for e in &run.environments {
        if e.status != EnvStatus::Ran {
            let reason = e.reason.as_deref().unwrap_or("no reason recorded");
            out.push(format!(
                "{}: {} — {reason}; no samples from it.",
                e.label, e.status
            ));
        }
    }
    if out.is_empty() {
        out.push(
            "No environment was compared with native: the run holds no paired samples.".into(),
        );
    }
    out
}

/// One sentence per rung of the isolation ladder above the first: what it costs over the
/// rung below it (`analysis::ladder`), its median over the metrics and its largest costs,
/// with 95% intervals.
fn rung_findings(analysis: &Analysis) -> Vec<String> {
    let m_txt = format_margin(analysis.config.margin);
    crate::analysis::ladder(analysis)
        .into_iter()
        .filter(|r| !r.metrics.is_empty())
        .map(|r| {
            let ests: Vec<f64> = r
                .metrics
                .iter()
                .filter_map(|(_, c)| c.overhead.map(|o| o.estimate))
                .collect();
            let above = r
                .metrics
                .iter()
                .filter(|(_, c)| matches!(c.verdict, Verdict::Above))
                .count();
            let mut largest: Vec<&(String, Comparison)> = r
                .metrics
                .iter()
                .filter(|(_, c)| c.overhead.is_some())
                .collect();
            largest.sort_by(|a, b| {
                let e = |c: &Comparison| c.overhead.map_or(0.0, |o| o.estimate.abs());
                e(&b.1).total_cmp(&e(&a.1))
            });
            let top: Vec<String> = largest
                .iter()
                .take(3)
                .map(|(l, c)| format!("{l} {}", overhead_text(c)))
                .collect();
            let mut s = format!(
                "{} over {} (the rung below): {above} of {} metrics worse by more than {m_txt}",
                r.upper,
                r.lower,
                r.metrics.len()
            );
            if !ests.is_empty() {
                s.push_str(&format!("; median {}", pct(median(&ests))));
            }
            if !top.is_empty() {
                s.push_str(&format!("; the largest: {}", top.join(", ")));
            }
            s.push('.');
            s
        })
        .collect()
}

/// Whether `c`'s ±`margin` verdict on `m` cannot be told from noise on this host: native-b's
/// 95% interval is wider than ±`margin`, and `c`'s interval does not lie beyond the margin
/// plus that width (a +600% start-up cost stays a finding whatever the A/A floor).
pub(super) fn no_verdict_possible(m: &MetricAnalysis, c: &Comparison, margin: f64) -> bool {
    let Some(aa) = m.comparison(NATIVE_B).and_then(|a| a.overhead) else {
        return false;
    };
    let floor = aa.half_width();
    if floor <= margin {
        return false;
    }
    let beyond = margin + floor;
    !c.overhead
        .is_some_and(|o| o.ci95.low > beyond || o.ci95.high < -beyond)
}

/// Median half-width of native-b's 95% intervals (a fraction), if native-b ran.
fn aa_floor(analysis: &Analysis) -> Option<f64> {
    let widths: Vec<f64> = analysis
        .metrics
        .iter()
        .filter_map(|m| m.comparison(NATIVE_B)?.overhead)
        .map(|o| o.half_width())
        .collect();
    (!widths.is_empty()).then(|| median(&widths))
}
