//! The compact terminal table of a run: per workload/metric, native's median, the A/A
//! noise floor and each environment's overhead with its 95% interval and verdict
//! (optionally coloured; `NO_COLOR` respected by [`color_wanted`]).

use std::io::IsTerminal;

use crate::analysis::{
    time_needed_text, Analysis, Comparison, MetricAnalysis, DISTURBED_RUN_DELAY, NATIVE, NATIVE_B,
};
use crate::stats::verdict::{format_margin, Verdict};

const NAME_W: usize = 22;
const NATIVE_W: usize = 14;
const FLOOR_W: usize = 12;
const ENV_W: usize = 24;

/// Whether to colour output for a stream: never when `NO_COLOR` is set to a non-empty
/// value (<https://no-color.org>), otherwise only when the stream is a terminal.
pub fn color_wanted(stream_is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && stream_is_terminal
}

/// [`color_wanted`] for standard output.
pub fn stdout_color_wanted() -> bool {
    color_wanted(std::io::stdout().is_terminal())
}

#[derive(Clone, Copy)]
enum Paint {
    Green,
    Red,
    Cyan,
    Yellow,
    Dim,
    Bold,
}

fn paint(s: &str, p: Paint, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    let code = match p {
        Paint::Green => "32",
        Paint::Red => "31",
        Paint::Cyan => "36",
        Paint::Yellow => "33",
        Paint::Dim => "2",
        Paint::Bold => "1",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// Fits `s` into `w` columns (truncating with `…`), padded on the right.
fn fit(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        format!("{s}{}", " ".repeat(w - n))
    } else {
        let cut: String = s.chars().take(w.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// Right-aligns `s` in `w` columns (truncating from the left when too long).
fn fit_right(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        format!("{}{s}", " ".repeat(w - n))
    } else {
        fit(s, w)
    }
}

/// A value with about 4 significant digits.
pub fn fmt_value(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        format!("{x}")
    } else if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 10.0 {
        format!("{x:.2}")
    } else if a >= 0.01 || a == 0.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.2e}")
    }
}

/// A signed percentage from a fraction, with precision that shrinks as it grows.
pub fn fmt_pct(fraction: f64) -> String {
    let p = fraction * 100.0;
    if !p.is_finite() {
        return format!("{p}");
    }
    if p.abs() < 0.05 {
        // Avoid "-0.0": a rounded zero has no sign worth showing.
        "+0.0".to_string()
    } else if p.abs() < 9.95 {
        format!("{p:+.1}")
    } else {
        format!("{p:+.0}")
    }
}

/// Overheads of +1000% and more read better as factors: `601×` (= 1 + overhead).
pub const FACTOR_FROM: f64 = 9.995;

/// An overhead as `+1.2%`, or as a factor `601×` from +1000% on.
pub fn fmt_overhead(fraction: f64) -> String {
    if fraction >= FACTOR_FROM {
        format!("{:.0}×", 1.0 + fraction)
    } else {
        format!("{}%", fmt_pct(fraction))
    }
}

fn verdict_mark(v: Verdict) -> (&'static str, Paint) {
    match v {
        Verdict::Within => ("=", Paint::Green),
        Verdict::Above => (">", Paint::Red),
        Verdict::Below => ("<", Paint::Cyan),
        Verdict::Inconclusive { .. } => ("?", Paint::Yellow),
        Verdict::TooFewRounds { .. } => ("n<5", Paint::Dim),
    }
}

fn interval_text(c: &Comparison) -> Option<String> {
    c.overhead.map(|o| {
        if o.ci95.low >= FACTOR_FROM {
            format!("[{:.0}×,{:.0}×]", 1.0 + o.ci95.low, 1.0 + o.ci95.high)
        } else {
            format!("[{},{}]", fmt_pct(o.ci95.low), fmt_pct(o.ci95.high))
        }
    })
}

fn env_cell(c: Option<&Comparison>, color: bool) -> String {
    let Some(c) = c else { return fit("-", ENV_W) };
    let (mark, p) = verdict_mark(c.verdict);
    let text = match (c.overhead, interval_text(c)) {
        (Some(o), Some(i)) => format!("{} {i}", fmt_overhead(o.estimate)),
        _ => "no pairs".to_string(),
    };
    // The mark leads, in a 3-column slot, so it reads with its own cell.
    format!(
        "{} {}",
        paint(&fit(mark, 3), p, color),
        fit(&text, ENV_W - 4)
    )
}

fn floor_cell(c: Option<&Comparison>, color: bool) -> String {
    let Some(c) = c else { return fit("-", FLOOR_W) };
    let text = interval_text(c).unwrap_or_else(|| "no pairs".to_string());
    let p = match c.verdict {
        Verdict::Within => None,
        Verdict::TooFewRounds { .. } => Some(Paint::Dim),
        _ => Some(Paint::Yellow),
    };
    let cell = fit(&text, FLOOR_W);
    match p {
        Some(p) => paint(&cell, p, color),
        None => cell,
    }
}

fn native_cell(m: &MetricAnalysis) -> String {
    match m.samples_of(NATIVE) {
        Some(s) => fit_right(&format!("{} {}", fmt_value(s.median), m.unit), NATIVE_W),
        None => fit_right("-", NATIVE_W),
    }
}

/// The terminal table of `analysis`. One header row per workload, one row per metric;
/// columns: native median, the A/A floor (native-b's 95% interval, when native-b ran) and
/// one column per other environment (`overhead% [95% interval] verdict`). With native-b
/// and two more environments a line is at most 100 columns. `color` adds ANSI colours.
pub fn terminal_table(analysis: &Analysis, color: bool) -> String {
    let has_floor = analysis.envs.iter().any(|e| e == NATIVE_B);
    let envs: Vec<&str> = analysis
        .envs
        .iter()
        .map(String::as_str)
        .filter(|e| *e != NATIVE && *e != NATIVE_B)
        .collect();
    let mut out = String::new();
    let mut header = format!(
        "{} {}",
        fit("workload/metric", NAME_W),
        fit_right("native", NATIVE_W)
    );
    if has_floor {
        header.push_str(&format!(" {}", fit("A/A floor", FLOOR_W)));
    }
    for e in &envs {
        header.push_str(&format!(" {}", fit(e, ENV_W)));
    }
    out.push_str(&paint(header.trim_end(), Paint::Bold, color));
    out.push('\n');

    let mut workload = "";
    for m in analysis.shown_metrics() {
        if m.workload != workload {
            workload = &m.workload;
            out.push_str(&paint(&m.workload, Paint::Bold, color));
            out.push('\n');
        }
        let mut line = format!(
            "{} {}",
            fit(&format!("  {}", m.metric), NAME_W),
            native_cell(m)
        );
        if has_floor {
            line.push_str(&format!(" {}", floor_cell(m.comparison(NATIVE_B), color)));
        }
        for e in &envs {
            line.push_str(&format!(" {}", env_cell(m.comparison(e), color)));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }

    let margin = format_margin(analysis.config.margin);
    out.push_str("overhead vs native (+ = worse) [95% interval]");
    out.push_str(if has_floor {
        "; A/A floor: native-b vs native\n"
    } else {
        "\n"
    });
    out.push_str(&format!(
        "verdict at ±{margin}: = within  > above  < below  ? inconclusive  n<5 too few rounds\n"
    ));
    let notes = footnotes(analysis);
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    out
}

/// Short notes under the table: time needed, outliers, disturbed samples, warm-up.
fn footnotes(analysis: &Analysis) -> Vec<String> {
    let mut notes = Vec::new();
    let mut inconclusive = 0;
    let mut needed: Option<f64> = None;
    let mut outliers = 0;
    let mut warm = Vec::new();
    for m in analysis.shown_metrics() {
        for c in &m.comparisons {
            if let Verdict::Inconclusive { .. } = c.verdict {
                inconclusive += 1;
                if let Some(s) = m.seconds_to_settle(c) {
                    needed = Some(needed.map_or(s, |n: f64| n.max(s)));
                }
            }
        }
        for s in &m.samples {
            outliers += s.outliers;
            if s.warmup.is_some() {
                warm.push(format!("{} {}", s.env, m.label()));
            }
        }
    }
    if inconclusive > 0 {
        let more = needed.map_or(String::new(), |s| {
            format!(
                "; measuring {} would settle them",
                time_needed_text(s, analysis.measured_seconds)
            )
        });
        notes.push(format!("{inconclusive} inconclusive{more}"));
    }
    if outliers > 0 {
        notes.push(format!(
            "{outliers} outlier samples flagged (modified z > 3.5), kept"
        ));
    }
    let disturbed: Vec<String> = analysis
        .disturbances
        .iter()
        .filter(|d| d.disturbed > 0)
        .map(|d| format!("{} {}/{}", d.env, d.disturbed, d.accounted))
        .collect();
    if !disturbed.is_empty() {
        notes.push(format!(
            "disturbed samples (steal time, or waiting for the CPU > {:.0}% of the sample), kept: {}",
            DISTURBED_RUN_DELAY * 100.0,
            disturbed.join(", ")
        ));
    }
    if !warm.is_empty() {
        let shown: Vec<&str> = warm.iter().take(3).map(String::as_str).collect();
        let more = if warm.len() > 3 {
            format!(" and {} more", warm.len() - 3)
        } else {
            String::new()
        };
        notes.push(format!(
            "first rounds slower (warm-up too short?): {}{more}",
            shown.join(", ")
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_pct(0.0123), "+1.2");
        assert_eq!(fmt_pct(-0.0004), "+0.0");
        assert_eq!(fmt_pct(-0.05), "-5.0");
        assert_eq!(fmt_pct(4.25), "+425");
        assert_eq!(fmt_value(12345.6), "12346");
        assert_eq!(fmt_value(1.23456), "1.235");
        assert_eq!(fmt_value(0.0001234), "1.23e-4");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("ab", 4), "ab  ");
    }

    #[test]
    fn no_color_wins() {
        // No other test reads NO_COLOR, so changing it here races with nothing.
        std::env::set_var("NO_COLOR", "1");
        assert!(!color_wanted(true));
        std::env::remove_var("NO_COLOR");
        assert!(color_wanted(true));
        assert!(!color_wanted(false));
    }
}
