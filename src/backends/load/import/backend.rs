//! `backend = "import"`: plan = find and read the files (so `validate` reports a missing
//! file or a broken line at `file:line`); run = measure the samples with the load recorder.

use std::fmt;
use std::path::{Path, PathBuf};

use super::Imported;
use crate::engine::metrics::Measurements;
use crate::engine::verdict::{NoDataPolicy, Unanswered, lookup};
use crate::engine::{Backend, BackendError, Plan, RunContext};
use crate::spec::catalog::Kind;
use crate::spec::diagnostic::Diagnostic;
use crate::spec::import::{ImportDoc, ImportFormat};
use crate::spec::source::Span;
use crate::spec::{Body, Spec};

/// Most files one glob may match.
const MAX_FILES: usize = 1000;
/// Most directory entries a glob looks at.
const MAX_ENTRIES: usize = 100_000;

pub struct Import;

/// What an import spec reads.
#[derive(serde::Serialize)]
pub struct ImportPlan {
    pub format: ImportFormat,
    pub files: Vec<String>,
    /// Requests the files record.
    pub requests: u64,
    /// How faithfully the latencies were recorded: `exact`, `bucketed` or `percentiles only`.
    pub fidelity: &'static str,
    /// Journeys and their steps as the files name them (the values of `journey` and `step`),
    /// for formats with every sample.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub journeys: Vec<(String, Vec<String>)>,
    /// The label sets a summary format has statistics for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip)]
    pub data: Imported,
}

impl fmt::Display for ImportPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.data {
            Imported::Samples(_) => "every sample".to_string(),
            Imported::Summary(_) => format!("latency {}", self.fidelity),
        };
        writeln!(
            f,
            "import {} requests ({}, {what}) from {}",
            self.requests,
            self.format,
            self.files.join(", ")
        )?;
        for (j, steps) in &self.journeys {
            writeln!(f, "  journey {j}: {}", steps.join(", "))?;
        }
        if !self.groups.is_empty() {
            writeln!(f, "  statistics for {}", self.groups.join("; "))?;
        }
        Ok(())
    }
}

fn doc(spec: &Spec) -> Option<&ImportDoc> {
    match &spec.body {
        Body::Import(d) => Some(d),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Backend for Import {
    fn kind(&self) -> Kind {
        Kind::Load
    }
    fn name(&self) -> &'static str {
        "import"
    }
    fn describe(&self) -> &'static str {
        "results of k6, JMeter, Locust, oha or memtier, judged like a load run"
    }

    fn plan(&self, spec: &Spec) -> Result<Plan, Vec<Diagnostic>> {
        let Some(d) = doc(spec) else {
            return Err(vec![
                Diagnostic::error(
                    "spec::backend",
                    "the import backend reads a load spec's `[import]` table, and this spec has none",
                )
                .in_file(&spec.file)
                .hint("add `[import]` with `format` and `file`, or remove `backend = \"import\"`"),
            ]);
        };
        let imp = &d.import;
        let located = |msg: String| {
            vec![Diagnostic::error("spec::import", msg).at(&spec.file, imp.file.span)]
        };
        let files = find(&spec.file.folder(), &imp.file.value).map_err(located)?;
        let format = imp.format.value;
        let data = read_all(format, &files).map_err(located)?;
        if let Imported::Samples(s) = &data
            && s.is_empty()
        {
            return Err(located(format!(
                "{} holds no request samples in the {format} format",
                imp.file.value
            )));
        }
        let measured = super::measure_imported(format, &data);
        let (requests, fidelity, journeys, groups) = match &data {
            Imported::Samples(s) => (s.len() as u64, "exact", super::journeys(s), Vec::new()),
            Imported::Summary(s) => (
                s.requests(),
                s.fidelity.as_str(),
                Vec::new(),
                s.label_sets(),
            ),
        };
        let mut plan = Plan::new(ImportPlan {
            format,
            files: files.iter().map(|p| p.display().to_string()).collect(),
            requests,
            fidelity,
            journeys,
            groups,
            data,
        });
        plan.warnings = not_evaluable(spec, &measured);
        Ok(plan)
    }

    async fn run(
        &self,
        _spec: &Spec,
        plan: &Plan,
        cx: &RunContext,
    ) -> Result<Measurements, BackendError> {
        let p = plan
            .get::<ImportPlan>()
            .ok_or_else(|| crate::engine::plan::wrong_plan("import"))?;
        cx.progress
            .update(None, &format!("measuring {} imported requests", p.requests));
        let mut m = super::measure_imported(p.format, &p.data);
        let (unit, what) = match p.data {
            Imported::Samples(_) => ("samples", "every sample, exact percentiles".to_string()),
            Imported::Summary(_) => ("requests", format!("latency {}", p.fidelity)),
        };
        m.notes.insert(
            0,
            format!(
                "imported {} {unit} ({}: {what}) from {}; latency is measured from the send, as in a closed model; late and arrivals are unknown",
                p.requests,
                p.format,
                p.files.join(", ")
            ),
        );
        Ok(m)
    }
}

/// Read every file: samples of several files are one run; a summary format reads one file
/// (statistics of several runs cannot be merged).
fn read_all(format: ImportFormat, files: &[PathBuf]) -> Result<Imported, String> {
    if !format.has_samples() && files.len() > 1 {
        return Err(format!(
            "{format} holds statistics, and those of {} files cannot be merged: name one file",
            files.len()
        ));
    }
    let mut samples = Vec::new();
    for f in files {
        match super::read_file(format, f)? {
            Imported::Samples(s) => samples.extend(s),
            summary => return Ok(summary),
        }
    }
    Ok(Imported::Samples(samples))
}

/// A warning on each SLO the imported data cannot answer (it fails by its no-data policy).
fn not_evaluable(spec: &Spec, m: &Measurements) -> Vec<Diagnostic> {
    spec.slos
        .iter()
        .filter_map(|slo| {
            let Err(Unanswered::NotEvaluable(why)) = lookup(&slo.expr, slo.phase.as_deref(), m)
            else {
                return None;
            };
            let d = Diagnostic::warning(
                "slo::not-evaluable",
                format!("`{}` is not evaluable: {why}", slo.text),
            )
            .hint(format!(
                "it gets the `no_data` verdict ({}) when the spec runs",
                match slo.no_data {
                    NoDataPolicy::Fail => "fail",
                    NoDataPolicy::Warn => "warn",
                    NoDataPolicy::Pass => "pass",
                }
            ));
            Some(match slo_span(spec, slo) {
                Some(span) => d.at(&spec.file, span),
                None => d.in_file(&spec.file),
            })
        })
        .collect()
}

/// Where `slo`'s text is written: on its line, or the whole line.
fn slo_span(spec: &Spec, slo: &crate::engine::verdict::Slo) -> Option<Span> {
    if slo.line == 0 {
        return None;
    }
    let start = spec.file.offset_of(slo.line, 1);
    let line = spec.file.text[start..].lines().next().unwrap_or_default();
    Some(match line.find(&slo.text) {
        Some(i) => Span::new(start + i, start + i + slo.text.len()),
        None => Span::new(start, start + line.len()),
    })
}

/// The files `pattern` names, relative to `base`: one path, or a glob (`*`, `?`, `[…]`,
/// `**`) matched against the paths under its fixed leading directories, sorted.
fn find(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let is_glob = pattern.contains(['*', '?', '[']);
    let full = base.join(pattern);
    if !is_glob {
        return if full.is_file() {
            Ok(vec![full])
        } else {
            Err(format!(
                "no file {} (relative to the spec's folder)",
                full.display()
            ))
        };
    }
    let glob = globset::Glob::new(&full.to_string_lossy())
        .map_err(|e| format!("`{pattern}` is not a valid glob: {e}"))?
        .compile_matcher();
    // walk from the longest leading directory without a glob character
    let mut root = PathBuf::new();
    for c in full.components() {
        if c.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
            break;
        }
        root.push(c);
    }
    let mut found = Vec::new();
    let mut stack = vec![root];
    let mut seen = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(format!(
                    "`{pattern}` looks at more than {MAX_ENTRIES} files: narrow it"
                ));
            }
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if glob.is_match(&path) {
                found.push(path);
            }
        }
    }
    if found.len() > MAX_FILES {
        return Err(format!(
            "`{pattern}` matches {} files, more than {MAX_FILES}",
            found.len()
        ));
    }
    if found.is_empty() {
        return Err(format!("no file matches {}", full.display()));
    }
    found.sort();
    Ok(found)
}
