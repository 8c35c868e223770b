//! Renderers of a [`Comparison`]: a terminal table, Markdown for pull-request comments, and
//! JSON for machines. Each returns the bytes, so output can be compared exactly in tests.

use super::{Comparison, Quantity, Row, Side, Status};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned plain-text table for a terminal or a CI log.
    Table,
    /// GitHub-flavoured Markdown, for a pull-request comment.
    Markdown,
    /// The whole comparison as JSON (`format_version` 1).
    Json,
}

/// Render in `format`.
pub fn render(c: &Comparison, format: Format) -> Vec<u8> {
    match format {
        Format::Table => table(c).into_bytes(),
        Format::Markdown => markdown(c).into_bytes(),
        Format::Json => json(c),
    }
}

/// Significant digits without scientific notation for ordinary magnitudes.
fn sig(x: f64, digits: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    let decimals = (digits - 1 - mag).clamp(0, 9) as usize;
    format!("{x:.decimals$}")
}

fn estimate(row: &Row, side: Option<&Side>) -> String {
    match side {
        None => "-".into(),
        Some(s) => match row.quantity {
            Quantity::Overhead => format!("{:.3}×", s.estimate),
            Quantity::Value => format!("{} {}", sig(s.estimate, 4), row.unit),
        },
    }
}

fn pct(x: f64) -> String {
    format!("{:+.1}%", x * 100.0)
}

fn p_value(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

fn threshold(row: &Row) -> String {
    let v = row.threshold.value * 100.0;
    let text = if v.fract() == 0.0 {
        format!("{v:.0}%")
    } else {
        format!("{v}%")
    };
    if row.threshold.rule.is_some() {
        format!("{text}*")
    } else {
        text
    }
}

fn what(row: &Row) -> &'static str {
    match row.quantity {
        Quantity::Overhead => "overhead",
        Quantity::Value => "value",
    }
}

/// The cells of one row: status, env, workload, metric, what, baseline, current, change,
/// interval, p, threshold.
fn cells(row: &Row, upper_status: bool) -> Vec<String> {
    let status = if upper_status && row.status == Status::Regressed {
        "REGRESSED".to_string()
    } else {
        row.status.name().to_string()
    };
    let (change, interval, p) = match &row.change {
        Some(ch) => (
            pct(ch.relative),
            format!("[{}, {}]", pct(ch.low), pct(ch.high)),
            p_value(ch.test.p_value),
        ),
        None => ("-".into(), "-".into(), "-".into()),
    };
    vec![
        status,
        row.env.clone(),
        row.workload.clone(),
        row.metric.clone(),
        what(row).into(),
        estimate(row, row.baseline.as_ref()),
        estimate(row, row.current.as_ref()),
        change,
        interval,
        p,
        threshold(row),
    ]
}

fn headers(confidence: f64) -> Vec<String> {
    [
        "status".to_string(),
        "env".into(),
        "workload".into(),
        "metric".into(),
        "compared".into(),
        "baseline".into(),
        "current".into(),
        "change".into(),
        format!("{:.0}% interval", confidence * 100.0),
        "p".into(),
        "threshold".into(),
    ]
    .to_vec()
}

fn summary_line(c: &Comparison) -> String {
    let n = c.counts();
    format!(
        "{} regressed, {} improved, {} unchanged, {} new, {} missing",
        n.regressed, n.improved, n.unchanged, n.new, n.missing
    )
}

fn run_line(info: &super::RunInfo) -> String {
    let commit = if info.git_commit.is_empty() {
        String::new()
    } else {
        format!(" ({})", info.git_commit)
    };
    format!(
        "{} on {}, {} rounds, isobench {}{commit}: {}",
        info.run_id, info.hostname, info.rounds, info.isobench_version, info.path
    )
}

/// The aligned terminal table.
pub fn table(c: &Comparison) -> String {
    let mut out = String::new();
    out.push_str(&format!("baseline: {}\n", run_line(&c.baseline)));
    out.push_str(&format!("current:  {}\n", run_line(&c.current)));
    if !c.differences.is_empty() {
        out.push_str("\nWARNING: the runs differ in these facts, so a change may come from them rather than from what you changed:\n");
        for d in &c.differences {
            out.push_str(&format!("  {}: {} -> {}\n", d.what, d.baseline, d.current));
        }
    }
    out.push('\n');
    let mut grid = vec![headers(c.method.confidence)];
    grid.extend(c.rows.iter().map(|r| cells(r, true)));
    let cols = grid[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|i| grid.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    // Numbers right-aligned, names left-aligned.
    let right = |i: usize| i >= 5;
    for r in &grid {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let pad = widths[i] - cell.chars().count();
                if right(i) {
                    format!("{}{cell}", " ".repeat(pad))
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if c.rows.is_empty() {
        out.push_str("(no performance metrics in either run)\n");
    }
    out.push('\n');
    out.push_str(&summary_line(c));
    out.push('\n');
    if c.rows.iter().any(|r| r.threshold.rule.is_some()) {
        out.push_str("* threshold from the thresholds file\n");
    }
    for r in c.rows.iter().filter(|r| !r.notes.is_empty()) {
        out.push_str(&format!(
            "note: {} {}/{}: {}\n",
            r.env,
            r.workload,
            r.metric,
            r.notes.join("; ")
        ));
    }
    for w in &c.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out.push_str(&format!("test: {}\n", c.method.test));
    out.push_str(&format!("interval: {}\n", c.method.interval));
    out.push_str(&format!("rule: {}\n", c.method.rule));
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn md_table(c: &Comparison, rows: &[&Row]) -> String {
    let h = headers(c.method.confidence);
    let mut out = format!("| {} |\n", h.join(" | "));
    out.push_str(&format!(
        "|{}\n",
        (0..h.len())
            .map(|i| if i >= 5 { "---:|" } else { "---|" })
            .collect::<String>()
    ));
    for r in rows {
        let mut cells = cells(r, false);
        if r.status == Status::Regressed {
            cells[0] = "**regressed**".into();
        }
        let cells: Vec<String> = cells.iter().map(|c| md_escape(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// Markdown for a pull-request comment: changed rows in a table, unchanged ones folded.
pub fn markdown(c: &Comparison) -> String {
    let n = c.counts();
    let mut out = String::new();
    if n.regressed > 0 {
        out.push_str(&format!(
            "### isobench compare: :x: {} regressed\n\n",
            n.regressed
        ));
    } else {
        out.push_str("### isobench compare: :white_check_mark: no regressions\n\n");
    }
    out.push_str(&format!(
        "Baseline `{}` ({} rounds, {}) → current `{}` ({} rounds, {}). {}.\n\n",
        md_escape(&c.baseline.run_id),
        c.baseline.rounds,
        md_escape(&c.baseline.hostname),
        md_escape(&c.current.run_id),
        c.current.rounds,
        md_escape(&c.current.hostname),
        summary_line(c)
    ));
    if !c.differences.is_empty() {
        out.push_str("> [!WARNING]\n> The runs differ in these facts, so a change may come from them rather than from what you changed:\n");
        for d in &c.differences {
            out.push_str(&format!(
                "> - **{}**: `{}` → `{}`\n",
                md_escape(&d.what),
                md_escape(&d.baseline),
                md_escape(&d.current)
            ));
        }
        out.push('\n');
    }
    let changed: Vec<&Row> = c
        .rows
        .iter()
        .filter(|r| r.status != Status::Unchanged)
        .collect();
    let unchanged: Vec<&Row> = c
        .rows
        .iter()
        .filter(|r| r.status == Status::Unchanged)
        .collect();
    if changed.is_empty() {
        out.push_str("No significant change beyond its threshold.\n\n");
    } else {
        out.push_str(&md_table(c, &changed));
        out.push('\n');
    }
    if !unchanged.is_empty() {
        out.push_str(&format!(
            "<details><summary>{} unchanged</summary>\n\n{}\n</details>\n\n",
            unchanged.len(),
            md_table(c, &unchanged)
        ));
    }
    let notes: Vec<String> = c
        .rows
        .iter()
        .filter(|r| !r.notes.is_empty())
        .map(|r| {
            format!(
                "- {} {}/{}: {}\n",
                md_escape(&r.env),
                md_escape(&r.workload),
                md_escape(&r.metric),
                md_escape(&r.notes.join("; "))
            )
        })
        .chain(c.warnings.iter().map(|w| format!("- {}\n", md_escape(w))))
        .collect();
    if !notes.is_empty() {
        out.push_str("**Warnings**\n\n");
        out.push_str(&notes.concat());
        out.push('\n');
    }
    out.push_str(&format!(
        "<sub>Change is the relative change of the cost (positive = worse; for throughputs the cost is the inverse). Overhead = per-round ratio to native. Rule: {}. Test: {}. Interval: {}.{}</sub>\n",
        md_escape(&c.method.rule),
        md_escape(&c.method.test),
        md_escape(&c.method.interval),
        if c.rows.iter().any(|r| r.threshold.rule.is_some()) {
            " * = threshold from the thresholds file."
        } else {
            ""
        }
    ));
    out
}

/// The comparison as pretty JSON, newline-terminated.
pub fn json(c: &Comparison) -> Vec<u8> {
    // A Comparison holds only strings, numbers, options and vectors: it always serialises.
    let mut v = serde_json::to_vec_pretty(c).unwrap_or_default();
    v.push(b'\n');
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(sig(1234.567, 4), "1235");
        assert_eq!(sig(1.234567, 4), "1.235");
        assert_eq!(sig(0.0012346, 4), "0.001235");
        assert_eq!(pct(0.1034), "+10.3%");
        assert_eq!(pct(-0.05), "-5.0%");
        assert_eq!(p_value(0.0079), "0.0079");
        assert_eq!(p_value(0.0001), "1.0e-4");
    }
}
