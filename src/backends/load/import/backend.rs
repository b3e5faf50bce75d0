//! `backend = "import"`: plan = find and read the files (so `validate` reports a missing
//! file or a broken line at `file:line`); run = measure the samples with the load recorder.

use std::fmt;
use std::path::{Path, PathBuf};

use super::Sample;
use crate::engine::metrics::Measurements;
use crate::engine::{Backend, BackendError, Plan, RunContext};
use crate::spec::catalog::Kind;
use crate::spec::diagnostic::Diagnostic;
use crate::spec::import::ImportDoc;
use crate::spec::{Body, Spec};

/// Most files one glob may match.
const MAX_FILES: usize = 1000;
/// Most directory entries a glob looks at.
const MAX_ENTRIES: usize = 100_000;

pub struct Import;

/// What an import spec reads.
#[derive(serde::Serialize)]
pub struct ImportPlan {
    pub format: &'static str,
    pub files: Vec<String>,
    pub samples: usize,
    /// Journeys and their steps as the files name them (the values of `journey` and `step`).
    pub journeys: Vec<(String, Vec<String>)>,
    #[serde(skip)]
    pub data: Vec<Sample>,
}

impl fmt::Display for ImportPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "import {} samples ({}, every sample) from {}",
            self.samples,
            self.format,
            self.files.join(", ")
        )?;
        for (j, steps) in &self.journeys {
            writeln!(f, "  journey {j}: {}", steps.join(", "))?;
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
        "results of k6 (--out json) or JMeter (CSV JTL), judged like a load run"
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
        let mut data = Vec::new();
        for f in &files {
            data.extend(super::read_file(format, f).map_err(located)?);
        }
        if data.is_empty() {
            return Err(located(format!(
                "{} holds no request samples in the {format} format",
                imp.file.value
            )));
        }
        let journeys = super::journeys(&data);
        Ok(Plan::new(ImportPlan {
            format: format.as_str(),
            files: files.iter().map(|p| p.display().to_string()).collect(),
            samples: data.len(),
            journeys,
            data,
        }))
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
            .update(None, &format!("measuring {} imported samples", p.samples));
        let mut m = super::measure(p.data.clone());
        m.notes.insert(
            0,
            format!(
                "imported {} samples ({}: every sample, exact percentiles) from {}; latency is measured from the send, as in a closed model; late and arrivals are unknown",
                p.samples,
                p.format,
                p.files.join(", ")
            ),
        );
        Ok(m)
    }
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
