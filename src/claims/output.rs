//! The claims' outputs: the terminal checklist, `claims.md` and `claims.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{ClaimResult, Verdict};

/// The schema version of `claims.json`.
pub const CLAIMS_FORMAT_VERSION: u32 = 1;

fn mark(v: &Verdict) -> &'static str {
    match v {
        Verdict::Supported => "[✓]",
        Verdict::Refuted => "[✗]",
        Verdict::Inconclusive { .. } => "[?]",
        Verdict::NotTestable { .. } => "[–]",
    }
}

fn verdict_text(v: &Verdict) -> String {
    match v.note() {
        "" => v.word().to_string(),
        note => format!("{} ({note})", v.word()),
    }
}

/// The checklist printed on the terminal.
pub fn checklist(results: &[ClaimResult]) -> String {
    let mut s = String::new();
    for r in results {
        let _ = writeln!(s, "{} claim {}: {}", mark(&r.overall), r.number, r.claim);
        let _ = writeln!(s, "    experiment: {}", r.experiment);
        for f in &r.findings {
            let _ = writeln!(
                s,
                "    {} {}: {}",
                mark(&f.verdict),
                f.subject,
                verdict_text(&f.verdict)
            );
            if !f.evidence.is_empty() {
                let _ = writeln!(s, "        {}", f.evidence);
            }
        }
        let _ = writeln!(s, "    verdict: {}", verdict_text(&r.overall));
        s.push('\n');
    }
    s
}

/// `claims.md`.
pub fn markdown(results: &[ClaimResult], run_dir: Option<&Path>) -> String {
    let mut s = String::from("# isobench claims\n\n");
    let _ = writeln!(
        s,
        "Each claim of the classic container story, the experiment isobench ran for it, the evidence and the verdict. docs/CLAIMS.md explains the experiments and the verdict rules.{}\n",
        run_dir.map_or(String::new(), |d| format!(" The block-protocol run of claims 1, 2 and 6 is in `{}`.", d.display()))
    );
    s.push_str("| claim | verdict |\n|---|---|\n");
    for r in results {
        let _ = writeln!(
            s,
            "| {}. {} | {} |",
            r.number,
            r.claim,
            verdict_text(&r.overall).replace('|', "\\|")
        );
    }
    s.push('\n');
    for r in results {
        let _ = writeln!(
            s,
            "## Claim {}\n\n> {}\n\n**Experiment.** {}\n",
            r.number, r.claim, r.experiment
        );
        s.push_str("| finding | evidence | verdict |\n|---|---|---|\n");
        for f in &r.findings {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                f.subject.replace('|', "\\|"),
                f.evidence.replace('|', "\\|"),
                verdict_text(&f.verdict).replace('|', "\\|")
            );
        }
        let _ = writeln!(
            s,
            "\n**Verdict: {}.** ({:.1} s)\n",
            verdict_text(&r.overall),
            r.seconds
        );
    }
    if results.iter().any(|r| r.number == 3 || r.number == 6) {
        s.push_str("![claims figure](claims.svg)\n");
    }
    s
}

/// `claims.json`.
pub fn json(results: &[ClaimResult], run_dir: Option<&Path>) -> Result<String> {
    let v = serde_json::json!({
        "format_version": CLAIMS_FORMAT_VERSION,
        "isobench_version": env!("CARGO_PKG_VERSION"),
        "run_dir": run_dir,
        "claims": results,
    });
    let mut s = serde_json::to_string_pretty(&v).context("serialising claims.json")?;
    s.push('\n');
    Ok(s)
}

/// Write `claims.md` and `claims.json` into `dir`.
pub fn write(dir: &Path, results: &[ClaimResult], run_dir: Option<&Path>) -> Result<Vec<PathBuf>> {
    let md = dir.join("claims.md");
    std::fs::write(&md, markdown(results, run_dir))
        .with_context(|| format!("writing {}", md.display()))?;
    let js = dir.join("claims.json");
    std::fs::write(&js, json(results, run_dir)?)
        .with_context(|| format!("writing {}", js.display()))?;
    Ok(vec![md, js])
}
