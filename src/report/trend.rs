//! The trend block of a spec in report.html (`--history`): per SLO, its value over this run
//! and the runs of its branch before it (at most [`crate::history::WINDOW`]), each point in
//! its verdict's colour, this run highlighted, a constant threshold drawn as a line. Only
//! SLOs with two points or more get a chart; the block says why the others (or all) have
//! none.

use serde::Serialize;

use super::charts::{TrendChart, TrendPoint, trend_chart};
use super::kinds::common::thresholds;
use super::view::Chart;
use crate::engine::verdict::SloOutcome;
use crate::history::{Point, Trends, WINDOW};
use crate::results::SpecResult;

/// A spec's trend charts.
#[derive(Debug, Clone, Serialize)]
pub struct TrendView {
    /// Which runs are drawn, from where.
    pub caption: String,
    pub charts: Vec<Chart>,
    /// Why there is no chart, or none for some SLOs.
    pub notes: Vec<String>,
}

/// The trend block of `spec`.
pub fn view(spec: &SpecResult, t: &Trends) -> TrendView {
    let branch = match &t.branch {
        Some(b) => format!("branch `{b}`"),
        None => "runs without a branch".to_string(),
    };
    let mut charts = Vec::new();
    let mut without = Vec::new();
    for o in &spec.slos {
        let points = t.points(spec, o);
        match (points.len() >= 2).then(|| chart(o, &points)).flatten() {
            Some(svg) => charts.push(Chart {
                title: title(o),
                svg,
            }),
            None => without.push(format!("`{}`", title(o))),
        }
    }
    let mut notes = Vec::new();
    let others = t.total_runs - usize::from(t.this_run.is_some());
    if t.earlier_runs() == 0 && others == 0 {
        notes.push(format!(
            "The history `{}` holds no run before this one: the trend starts with the next run.",
            t.path
        ));
    } else if t.earlier_runs() == 0 {
        notes.push(format!(
            "The history `{}` has no earlier run of {branch} (only of other branches): the trend starts with its next run.",
            t.path
        ));
    } else if !without.is_empty() {
        notes.push(format!(
            "No trend for {}: fewer than 2 of the runs have a value of it.",
            without.join(", ")
        ));
    }
    TrendView {
        caption: format!(
            "{branch}: this run and the {} run(s) before it (at most {WINDOW} runs) in `{}`",
            t.earlier_runs(),
            t.path
        ),
        charts,
        notes,
    }
}

/// `p95(latency) < 250ms`, with its phase.
fn title(o: &SloOutcome) -> String {
    match &o.phase {
        Some(p) => format!("{} (phase {p})", o.expr),
        None => o.expr.clone(),
    }
}

/// The chart of one SLO's points; its threshold is drawn when it is a constant (not
/// relative to a baseline).
fn chart(o: &SloOutcome, points: &[Point]) -> Option<String> {
    let unit = o.shown();
    let constant = crate::spec::slo::parse(&o.expr)
        .ok()
        .filter(|e| !e.uses_baseline());
    let lines = match &constant {
        Some(e) => thresholds(std::slice::from_ref(o), &[e.metric.as_str()], o.dimension),
        None => Vec::new(),
    };
    let points = points
        .iter()
        .map(|p| {
            let commit: Option<String> = p.commit.as_ref().map(|c| c.chars().take(7).collect());
            let label = match (&commit, p.run) {
                (Some(c), _) => c.clone(),
                (None, Some(id)) => format!("#{id}"),
                (None, None) => "—".to_string(),
            };
            TrendPoint {
                label,
                tooltip: tooltip(p, commit.as_deref(), &unit.format(p.value)),
                value: p.value,
                status: p.status.clone(),
                current: p.current,
            }
        })
        .collect();
    trend_chart(&TrendChart {
        title: title(o),
        y_unit: unit,
        points,
        thresholds: lines,
        notes: Vec::new(),
    })
}

/// `this run · run 12 · 0123456 · 2026-12-02 15:30:01 UTC · 212ms · pass`.
fn tooltip(p: &Point, commit: Option<&str>, value: &str) -> String {
    let mut parts = Vec::new();
    if p.current {
        parts.push("this run".to_string());
    }
    if let Some(id) = p.run {
        parts.push(format!("run {id}"));
    }
    parts.push(format!("commit {}", commit.unwrap_or("unknown")));
    let time: String = p.started_at.chars().take(19).collect();
    if !time.is_empty() {
        parts.push(format!("{} UTC", time.replace('T', " ")));
    }
    parts.push(value.to_string());
    parts.push(p.status.clone());
    parts.join(" · ")
}
