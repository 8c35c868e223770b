//! The JUnit XML export (written with `quick-junit`): one test suite per environment with a
//! test case per metric — a failure when the environment is *above* the margin, skipped
//! when there are too few paired blocks for a verdict, passed otherwise — and, when a
//! baseline is given, a suite `regressions` with a test case per compared series, a failure
//! when it *regressed*.

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::compare::{Comparison, Status};

use super::{ExportError, OverheadRecord};

fn verdict_case(r: &OverheadRecord) -> TestCase {
    let what = match (r.overhead_pct, r.ci95_low_pct, r.ci95_high_pct) {
        (Some(v), Some(lo), Some(hi)) => {
            format!("overhead {v:+.3}% [95%: {lo:+.3}%, {hi:+.3}%]")
        }
        _ => "no paired blocks".to_string(),
    };
    let status = match r.verdict.as_str() {
        "above" => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_type("above")
                .set_message(format!("{} is {}: {what}", r.env, r.verdict_text));
            s
        }
        "too-few-rounds" => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(r.verdict_text.clone());
            s
        }
        _ => TestCaseStatus::success(),
    };
    let mut case = TestCase::new(format!("{}/{}", r.workload, r.metric), status);
    case.set_classname(format!("isobench.{}.{}", r.env, r.workload));
    case.set_system_out(format!(
        "{what}; verdict: {}; {} paired blocks; {} better; unit {}",
        r.verdict_text, r.n_pairs, r.better, r.unit
    ));
    case.add_property(Property::new("verdict", r.verdict.clone()));
    if let Some(v) = r.overhead_pct {
        case.add_property(Property::new("overhead_pct", format!("{v}")));
    }
    case
}

fn regression_suite(c: &Comparison) -> TestSuite {
    let mut suite = TestSuite::new("isobench.regressions");
    suite.add_property(Property::new("baseline_run", c.baseline.run_id.clone()));
    suite.add_property(Property::new("current_run", c.current.run_id.clone()));
    for row in &c.rows {
        let change = row
            .change
            .as_ref()
            .map_or("no change computed".into(), |ch| {
                format!(
                    "change {:+.2}% [{:+.2}%, {:+.2}%], p = {:.4}",
                    ch.relative * 100.0,
                    ch.low * 100.0,
                    ch.high * 100.0,
                    ch.test.p_value
                )
            });
        let status = match row.status {
            Status::Regressed => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_type("regressed")
                    .set_message(format!("{} regressed: {change}", row.env));
                s
            }
            Status::Missing | Status::New => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!("{} in this run", row.status.name()));
                s
            }
            Status::Improved | Status::Unchanged => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(format!("{}/{}", row.workload, row.metric), status);
        case.set_classname(format!("isobench.regressions.{}", row.env));
        case.set_system_out(format!("{}: {change}", row.status.name()));
        suite.add_test_case(case);
    }
    suite
}

/// The JUnit XML of a run's verdicts (and regressions against a baseline, if given).
pub fn junit(
    run_id: &str,
    records: &[OverheadRecord],
    comparison: Option<&Comparison>,
    margin: &str,
) -> Result<Vec<u8>, ExportError> {
    let mut report = Report::new(format!("isobench run {run_id}"));
    let mut envs: Vec<&str> = Vec::new();
    for r in records {
        if !envs.contains(&r.env.as_str()) {
            envs.push(&r.env);
        }
    }
    for env in envs {
        let mut suite = TestSuite::new(format!("isobench.{env}"));
        suite.add_property(Property::new("run", run_id.to_string()));
        suite.add_property(Property::new("margin", margin.to_string()));
        suite.add_test_cases(records.iter().filter(|r| r.env == env).map(verdict_case));
        report.add_test_suite(suite);
    }
    if let Some(c) = comparison {
        report.add_test_suite(regression_suite(c));
    }
    let mut text = report.to_string().map_err(|e| ExportError::Encode {
        format: "junit",
        message: e.to_string(),
    })?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text.into_bytes())
}
