//! The view of a [`Results`] that every template renders: the verdict and why, run
//! metadata, SLO rows (failing first), and per-spec sections with charts. Built only by
//! selecting and formatting what results.json holds — renderers compute no metrics.

use serde::Serialize;

use super::kinds;
use crate::engine::verdict::{Reason, SloOutcome, Status};
use crate::results::{Results, SpecResult, SpecStatus};
use crate::spec::units::Dimension;

/// An inline SVG chart (trusted markup produced by [`super::charts`]).
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub title: String,
    pub svg: String,
}

/// A table of formatted values.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One block of a spec's kind section: charts and tables, or a note that there was no data.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub title: String,
    pub charts: Vec<Chart>,
    pub tables: Vec<Table>,
    /// Set when nothing could be drawn: says what was missing.
    pub empty: Option<String>,
    /// Shown folded (`<details>`): long reference material such as every measured value.
    pub collapsed: bool,
}

impl Section {
    pub fn new(title: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            charts: Vec::new(),
            tables: Vec::new(),
            empty: None,
            collapsed: false,
        }
    }

    pub fn chart(&mut self, title: &str, svg: Option<String>) {
        if let Some(svg) = svg {
            self.charts.push(Chart {
                title: title.to_string(),
                svg,
            });
        }
    }

    /// Mark the section empty with `why` when it holds nothing.
    pub fn or_empty(mut self, why: &str) -> Section {
        if self.charts.is_empty() && self.tables.iter().all(|t| t.rows.is_empty()) {
            self.tables.clear();
            self.empty = Some(why.to_string());
        }
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// `pass`, `warn`, `fail`, `error` or `interrupted`.
    pub word: &'static str,
    pub icon: &'static str,
    /// One sentence on why.
    pub why: String,
    /// Why each SLO that did not pass did not: `spec: expr — message`, at most
    /// [`MAX_REASONS`] (the last says how many more).
    pub reasons: Vec<String>,
}

/// Most reasons in the banner.
pub const MAX_REASONS: usize = 8;

#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub tool: String,
    pub version: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration: String,
    pub commit: Option<String>,
    pub commit_short: Option<String>,
    pub dirty: bool,
    pub hostname: String,
    pub host: String,
    pub command: String,
    pub baseline: Option<String>,
    pub exit_code: i32,
    pub interrupted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SloRow {
    pub spec: String,
    pub anchor: String,
    pub expr: String,
    pub severity: &'static str,
    pub phase: Option<String>,
    pub status: &'static str,
    pub reason: &'static str,
    pub observed: String,
    pub threshold: String,
    pub baseline: String,
    pub delta: String,
    /// How bad the change against the baseline is for this SLO: `worse-3` (≥ 50 % in the
    /// failing direction), `worse-2` (≥ 20 %), `worse-1` (≥ 5 %), `better` (≥ 5 % the other
    /// way) or empty.
    pub delta_class: &'static str,
    pub file: String,
    pub line: usize,
    /// `file:line`, or the file alone for a built-in SLO.
    pub location: String,
    pub message: String,
    /// With `repeat`: `min 190ms · median 200ms · max 230ms over 5 repeats` (empty without).
    pub spread: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorSampleRow {
    pub message: String,
    pub labels: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpecView {
    pub name: String,
    pub anchor: String,
    pub kind: &'static str,
    pub backend: String,
    pub description: Option<String>,
    pub file: String,
    pub hash: String,
    pub hash_short: String,
    pub status: &'static str,
    pub error: Option<String>,
    pub started_at: String,
    pub duration: String,
    pub timed_out: bool,
    /// The spec's artifacts folder, relative to the report.
    pub artifacts_dir: Option<String>,
    pub measured: bool,
    pub slos: Vec<SloRow>,
    pub sections: Vec<Section>,
    pub error_samples: Vec<ErrorSampleRow>,
    /// With `--history`: each SLO's value over the branch's last runs.
    pub trend: Option<super::trend::TrendView>,
    pub invalid: Vec<String>,
    pub notes: Vec<String>,
    /// The resolved spec, pretty JSON.
    pub resolved: String,
}

/// Everything a template sees.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// What was tested: the spec names, for the page title.
    pub title: String,
    /// Whether any SLO has a baseline (the table's baseline columns are shown only then).
    pub has_baseline: bool,
    pub verdict: Verdict,
    pub one_line: String,
    pub meta: Meta,
    /// Every SLO of every spec: fail, then warn, then pass.
    pub slos: Vec<SloRow>,
    /// Failing and warning SLOs only.
    pub problems: Vec<SloRow>,
    pub passing: Vec<SloRow>,
    /// Specs that could not run: `(spec, file, why)`.
    pub errors: Vec<SpecError>,
    pub specs: Vec<SpecView>,
    pub counts: Counts,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpecError {
    pub spec: String,
    pub anchor: String,
    pub file: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    pub specs: usize,
    pub slos: usize,
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub errors: usize,
}

pub fn spec_status_word(s: SpecStatus) -> &'static str {
    match s {
        SpecStatus::Pass => "pass",
        SpecStatus::Warn => "warn",
        SpecStatus::Fail => "fail",
        SpecStatus::Error => "error",
        SpecStatus::Interrupted => "interrupted",
    }
}

/// `perfspec: 3 spec(s) — 2 pass, 1 fail (exit 1)`.
pub fn one_line(r: &Results) -> String {
    let count = |s: SpecStatus| r.specs.iter().filter(|x| x.status == s).count();
    let mut parts = Vec::new();
    for s in [
        SpecStatus::Pass,
        SpecStatus::Warn,
        SpecStatus::Fail,
        SpecStatus::Error,
        SpecStatus::Interrupted,
    ] {
        let n = count(s);
        if n > 0 {
            parts.push(format!("{n} {}", spec_status_word(s)));
        }
    }
    // a run stopped early says so once: by the count of interrupted specs, or else here
    let interrupted = if r.interrupted && count(SpecStatus::Interrupted) == 0 {
        ", interrupted"
    } else {
        ""
    };
    format!(
        "perfspec: {} spec(s) — {}{interrupted} (exit {})",
        r.specs.len(),
        parts.join(", "),
        r.exit_code
    )
}

/// A stable HTML id for a spec name.
pub fn anchor(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("spec-{slug}")
}

fn duration_text(s: f64) -> String {
    if s.is_finite() {
        Dimension::Time.format((s * 1000.0).round() / 1000.0)
    } else {
        "—".into()
    }
}

/// `+12.5%` / `-3.0%`.
pub fn delta_text(d: Option<f64>) -> String {
    d.map(|d| format!("{}{d:.1}%", if d >= 0.0 { "+" } else { "" }))
        .unwrap_or_default()
}

/// The size class of a change against the baseline: the direction an SLO fails in is the
/// one its operator forbids (`<` fails upwards, `>` downwards).
pub fn delta_class(expr: &str, delta_pct: Option<f64>) -> &'static str {
    use crate::spec::slo::Op;
    let (Some(d), Ok(e)) = (delta_pct, crate::spec::slo::parse(expr)) else {
        return "";
    };
    let worse = match e.op {
        Op::Lt | Op::Le => d,
        Op::Gt | Op::Ge => -d,
        Op::Eq => d.abs(),
    };
    match worse {
        w if w >= 50.0 => "worse-3",
        w if w >= 20.0 => "worse-2",
        w if w >= 5.0 => "worse-1",
        w if w <= -5.0 => "better",
        _ => "",
    }
}

/// The status word a row shows: an SLO whose spec never ran is `not-run` (JUnit's
/// `skipped`), whatever it counts as for the exit code.
fn row_status(o: &SloOutcome) -> &'static str {
    if o.reason == Reason::NotRun {
        "not-run"
    } else {
        o.status.as_str()
    }
}

pub fn slo_row(spec: &SpecResult, o: &SloOutcome) -> SloRow {
    let dash = || "—".to_string();
    SloRow {
        spec: spec.name.clone(),
        anchor: anchor(&spec.name),
        expr: o.expr.clone(),
        severity: match o.severity {
            crate::engine::verdict::SloSeverity::Fail => "fail",
            crate::engine::verdict::SloSeverity::Warn => "warn",
        },
        phase: o.phase.clone(),
        status: row_status(o),
        reason: o.reason.as_str(),
        observed: o.observed_text.clone().unwrap_or_else(dash),
        threshold: o.threshold_text.clone().unwrap_or_else(dash),
        baseline: o.baseline.map(|b| o.shown().format(b)).unwrap_or_else(dash),
        delta: delta_text(o.delta_pct),
        delta_class: delta_class(&o.expr, o.delta_pct),
        file: spec.file.clone(),
        line: o.line,
        location: if o.line > 0 {
            format!("{}:{}", spec.file, o.line)
        } else {
            format!("{} (default)", spec.file)
        },
        message: o.message.clone(),
        spread: spread_text(o),
    }
}

/// The spread of an SLO's per-repeat values, for humans.
fn spread_text(o: &SloOutcome) -> String {
    match crate::engine::repeats::spread(&o.repeats) {
        Some((lo, mid, hi)) => format!(
            "min {} · median {} · max {} over {} repeats",
            o.dimension.format(lo),
            o.dimension.format(mid),
            o.dimension.format(hi),
            o.repeats.len()
        ),
        None => String::new(),
    }
}

fn verdict(r: &Results, counts: &Counts) -> Verdict {
    let first_fail = r
        .specs
        .iter()
        .flat_map(|s| s.slos.iter().map(move |o| (s, o)))
        .find(|(_, o)| o.status == Status::Fail);
    let first_error = r.specs.iter().find(|s| s.status == SpecStatus::Error);
    let (word, icon) = match r.exit_code {
        0 if counts.warn > 0 => ("warn", "⚠️"),
        0 => ("pass", "✅"),
        1 => ("fail", "❌"),
        3 => ("error", "⛔"),
        130 => ("interrupted", "⏹"),
        _ => ("error", "⛔"),
    };
    let why = match word {
        "pass" => format!(
            "all {} SLO(s) of {} spec(s) passed",
            counts.slos, counts.specs
        ),
        "warn" => format!(
            "every failing-severity SLO passed; {} SLO(s) warned",
            counts.warn
        ),
        "fail" => match first_fail {
            Some((s, o)) => format!(
                "{} of {} SLO(s) failed; first: {} — {}",
                counts.fail, counts.slos, s.name, o.message
            ),
            None => format!("{} of {} SLO(s) failed", counts.fail, counts.slos),
        },
        "interrupted" => {
            "the run was interrupted; SLOs were judged on what was measured".to_string()
        }
        _ => match first_error {
            Some(s) => format!(
                "{} could not run: {}",
                s.name,
                s.error.as_deref().unwrap_or("unknown error")
            ),
            None => format!("exit code {}", r.exit_code),
        },
    };
    Verdict {
        word,
        icon,
        why,
        reasons: reasons(r),
    }
}

/// One line per SLO that did not pass, with what to do about a missing baseline.
fn reasons(r: &Results) -> Vec<String> {
    let mut all: Vec<String> = r
        .specs
        .iter()
        .flat_map(|s| s.slos.iter().map(move |o| (s, o)))
        .filter(|(_, o)| o.status != Status::Pass)
        .map(|(s, o)| {
            let hint = match o.reason {
                Reason::NoBaseline => {
                    " (a first run has nothing to compare with: pass an earlier run's results.json with --baseline)"
                }
                _ => "",
            };
            format!("{}: {} — {}{hint}", s.name, o.expr, o.message)
        })
        .collect();
    if all.len() > MAX_REASONS {
        let more = all.len() - (MAX_REASONS - 1);
        all.truncate(MAX_REASONS - 1);
        all.push(format!("… and {more} more (see the SLO table)"));
    }
    all
}

/// The spec names for the page title: up to three, then how many more.
fn title(r: &Results) -> String {
    let names: Vec<&str> = r.specs.iter().map(|s| s.name.as_str()).collect();
    match names.len() {
        0 => "no specs".into(),
        1..=3 => names.join(", "),
        n => format!("{} and {} more", names[..2].join(", "), n - 2),
    }
}

fn labels_text(l: &crate::engine::metrics::Labels) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn spec_view(s: &SpecResult, trends: Option<&crate::history::Trends>) -> SpecView {
    let m = s.measurements.as_ref();
    let mut slos: Vec<SloRow> = s.slos.iter().map(|o| slo_row(s, o)).collect();
    slos.sort_by_key(|r| rank(r.status));
    SpecView {
        name: s.name.clone(),
        anchor: anchor(&s.name),
        kind: s.kind.as_str(),
        backend: s.backend.clone(),
        description: s.description.clone(),
        file: s.file.clone(),
        hash: s.hash.clone(),
        hash_short: s.hash.chars().take(12).collect(),
        status: spec_status_word(s.status),
        error: s.error.clone(),
        started_at: s.started_at.clone(),
        duration: duration_text(s.duration_s),
        timed_out: s.timed_out,
        artifacts_dir: s.artifacts_dir.clone(),
        measured: m.is_some(),
        slos,
        sections: m
            .map(|m| kinds::sections(s.kind, &s.backend, m, &s.slos))
            .unwrap_or_default(),
        error_samples: m
            .map(|m| {
                m.error_samples
                    .iter()
                    .map(|e| ErrorSampleRow {
                        message: e.message.clone(),
                        labels: labels_text(&e.labels),
                        count: e.count,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        trend: trends.map(|t| super::trend::view(s, t)),
        invalid: m
            .map(|m| {
                m.invalid
                    .iter()
                    .map(|i| {
                        let l = labels_text(&i.labels);
                        if l.is_empty() {
                            format!("{}: {}", i.metric, i.reason)
                        } else {
                            format!("{}{{{l}}}: {}", i.metric, i.reason)
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
        notes: m.map(|m| m.notes.clone()).unwrap_or_default(),
        resolved: serde_json::to_string_pretty(&s.resolved).unwrap_or_default(),
    }
}

fn rank(status: &str) -> u8 {
    match status {
        "fail" => 0,
        "warn" => 1,
        "not-run" => 2,
        _ => 3,
    }
}

impl View {
    pub fn new(r: &Results) -> View {
        View::build(r, None)
    }

    /// The view, with trend charts when the run has a history.
    pub fn build(r: &Results, trends: Option<&crate::history::Trends>) -> View {
        let mut slos: Vec<SloRow> = r
            .specs
            .iter()
            .flat_map(|s| s.slos.iter().map(move |o| slo_row(s, o)))
            .collect();
        slos.sort_by_key(|row| rank(row.status));
        let count = |st: Status| {
            r.specs
                .iter()
                .flat_map(|s| &s.slos)
                .filter(|o| o.status == st)
                .count()
        };
        let counts = Counts {
            specs: r.specs.len(),
            slos: slos.len(),
            pass: count(Status::Pass),
            warn: count(Status::Warn),
            fail: count(Status::Fail),
            errors: r
                .specs
                .iter()
                .filter(|s| s.status == SpecStatus::Error)
                .count(),
        };
        let errors = r
            .specs
            .iter()
            .filter(|s| {
                s.status == SpecStatus::Error
                    || (s.error.is_some() && s.slos.iter().all(|o| o.reason == Reason::NotRun))
            })
            .map(|s| SpecError {
                spec: s.name.clone(),
                anchor: anchor(&s.name),
                file: s.file.clone(),
                message: s.error.clone().unwrap_or_default(),
            })
            .collect();
        let git = r.git.as_ref();
        let mem = r
            .host
            .memory_bytes
            .map(|b| {
                format!(
                    ", {}",
                    Dimension::Bytes.format((b as f64 / 1024.0 / 1024.0).round() * 1024.0 * 1024.0)
                )
            })
            .unwrap_or_default();
        let meta = Meta {
            tool: r.tool.name.clone(),
            version: r.tool.version.clone(),
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            duration: duration_text(r.duration_s),
            commit: git.map(|g| g.commit.clone()),
            commit_short: git.map(|g| g.commit.chars().take(12).collect()),
            dirty: git.is_some_and(|g| g.dirty),
            hostname: r.host.hostname.clone(),
            host: format!(
                "{} ({} {}, {} CPUs{mem})",
                r.host.hostname, r.host.os, r.host.arch, r.host.cpus
            ),
            command: r.command.join(" "),
            baseline: r.baseline.clone(),
            exit_code: r.exit_code,
            interrupted: r.interrupted,
        };
        View {
            title: title(r),
            has_baseline: slos.iter().any(|s| s.baseline != "—"),
            verdict: verdict(r, &counts),
            one_line: one_line(r),
            meta,
            problems: slos
                .iter()
                .filter(|s| s.status != "pass")
                .cloned()
                .collect(),
            passing: slos
                .iter()
                .filter(|s| s.status == "pass")
                .cloned()
                .collect(),
            slos,
            errors,
            specs: r.specs.iter().map(|s| spec_view(s, trends)).collect(),
            counts,
        }
    }

    /// The view without charts (for text formats).
    pub fn without_charts(mut self) -> View {
        for s in &mut self.specs {
            for sec in &mut s.sections {
                sec.charts.clear();
            }
            if let Some(t) = &mut s.trend {
                t.charts.clear();
            }
        }
        self
    }
}
