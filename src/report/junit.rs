//! `junit.xml` with quick-junit: one testsuite per spec, one testcase per SLO (with the
//! spec `file` and the SLO's `line`), `<failure>` for a violated SLO with observed,
//! threshold and baseline, `<error>` for a spec that could not run. Warnings pass, with the
//! reason in `system-out`.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite, XmlString};

use super::view::delta_text;
use crate::engine::verdict::{Reason, SloOutcome, Status};
use crate::results::{Results, SpecResult, SpecStatus};

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or_default()
}

fn details(spec: &SpecResult, o: &SloOutcome) -> String {
    let mut out = format!("{}\n", o.message);
    out.push_str(&format!("expression: {}\n", o.expr));
    if let Some(p) = &o.phase {
        out.push_str(&format!("phase: {p}\n"));
    }
    out.push_str(&format!(
        "observed: {}\n",
        o.observed_text.as_deref().unwrap_or("no data")
    ));
    out.push_str(&format!(
        "threshold: {}\n",
        o.threshold_text.as_deref().unwrap_or("—")
    ));
    if let Some(b) = o.baseline {
        let d = delta_text(o.delta_pct);
        out.push_str(&format!(
            "baseline: {}{}\n",
            o.shown().format(b),
            if d.is_empty() {
                String::new()
            } else {
                format!(" (Δ {d})")
            }
        ));
    }
    out.push_str(&format!(
        "reason: {}\nseverity: {}\n",
        o.reason.as_str(),
        if o.severity == crate::engine::verdict::SloSeverity::Warn {
            "warn"
        } else {
            "fail"
        }
    ));
    out.push_str(&format!("at: {}:{}\n", spec.file, o.line));
    out
}

fn testcase(spec: &SpecResult, o: &SloOutcome, could_not_run: bool) -> TestCase {
    let status = match (o.status, could_not_run && o.reason == Reason::NotRun) {
        (_, true) => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(o.message.clone());
            s
        }
        (Status::Fail, false) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(o.message.clone())
                .set_type(o.reason.as_str())
                .set_description(details(spec, o));
            s
        }
        (Status::Pass | Status::Warn, false) => TestCaseStatus::success(),
    };
    let name = match &o.phase {
        Some(p) => format!("{} [phase {p}]", o.expr),
        None => o.expr.clone(),
    };
    let mut tc = TestCase::new(name, status);
    tc.set_classname(format!("perfspec.{}.{}", spec.kind.as_str(), spec.name));
    tc.extra
        .insert(XmlString::new("file"), XmlString::new(&spec.file));
    tc.extra
        .insert(XmlString::new("line"), XmlString::new(o.line.to_string()));
    if o.status == Status::Warn {
        tc.set_system_out(format!("warning: {}", details(spec, o)));
    } else if o.status == Status::Pass {
        tc.set_system_out(details(spec, o));
    }
    tc
}

/// Render junit.xml.
pub fn render(r: &Results) -> Result<String, super::templates::ReportError> {
    let mut report = Report::new("perfspec");
    report.set_time(secs(r.duration_s));
    for spec in &r.specs {
        let mut suite = TestSuite::new(spec.name.clone());
        suite.set_time(secs(spec.duration_s));
        suite
            .extra
            .insert(XmlString::new("file"), XmlString::new(&spec.file));
        let could_not_run = spec.status == SpecStatus::Error;
        if could_not_run || (spec.error.is_some() && spec.measurements.is_none()) {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            let why = spec
                .error
                .clone()
                .unwrap_or_else(|| "the spec could not run".into());
            s.set_message(why.clone())
                .set_type("backend-unavailable")
                .set_description(format!(
                    "{why}\nspec: {}\nbackend: {}",
                    spec.file, spec.backend
                ));
            let mut tc = TestCase::new(format!("{} could run", spec.name), s);
            tc.set_classname(format!("perfspec.{}.{}", spec.kind.as_str(), spec.name));
            tc.extra
                .insert(XmlString::new("file"), XmlString::new(&spec.file));
            suite.add_test_case(tc);
        } else if let Some(e) = &spec.error {
            suite.set_system_err(e.clone());
        }
        for o in &spec.slos {
            suite.add_test_case(testcase(
                spec,
                o,
                could_not_run || spec.measurements.is_none(),
            ));
        }
        report.add_test_suite(suite);
    }
    report
        .to_string()
        .map_err(|e| super::templates::ReportError::Junit(e.to_string()))
}
