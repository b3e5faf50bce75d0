//! `kind = "scaling"`, `backend = "native"`.
//!
//! Fit-only specs (`measurements = "data/x.csv"`, no service) read the CSV, fit the
//! Universal Scalability Law and report, per measured concurrency level `n`:
//! `throughput{concurrency=n}` (the mean of repeated rows), `speedup{concurrency=n}` and
//! `efficiency{concurrency=n}` relative to the lowest level; and the scalars `usl.sigma`,
//! `usl.kappa`, `usl.lambda`, `usl.peak_concurrency`, `usl.max_throughput`,
//! `usl.r_squared`. With fewer than six levels (or degenerate data) there is no fit: no
//! `usl.*` metric is reported, a note says why, and SLOs on `usl.*` fail as no-data.
//!
//! Two series feed the report's chart; their x values are concurrency, not seconds (label
//! `x = "concurrency"`): `usl.fit`, the fitted curve over `1..=max(2·N*, highest measured
//! level)`, and `usl.ideal`, linear scaling `λ·N` over the same points.
//!
//! Specs with a `[service]` run a sweep of replicas or threads (see `sweep.rs`) and fit the
//! same way, with labels `replicas=n` or `threads=n`.

use super::fit_metrics::measure;
use super::measurements;
use super::plan::ScalingPlan;
use crate::engine::metrics::Measurements;
use crate::engine::{Backend, BackendError, Plan as EnginePlan, RunContext};
use crate::spec::catalog::Kind;
use crate::spec::diagnostic::Diagnostic;
use crate::spec::{Body, Spec};

pub struct Native;

#[async_trait::async_trait]
impl Backend for Native {
    fn kind(&self) -> Kind {
        Kind::Scaling
    }
    fn name(&self) -> &'static str {
        "native"
    }
    fn describe(&self) -> &'static str {
        "replica and thread sweeps of the embedded shop (client-side or nginx balancing, faults) with a USL fit, or a USL fit of a CSV"
    }

    /// Fit-only: the CSV exists. A sweep: the profile compiles, the CPUs exist, and the spec
    /// is a sweep (see [`super::plan`]).
    fn plan(&self, spec: &Spec) -> Result<EnginePlan, Vec<Diagnostic>> {
        let Body::Scaling(doc) = &spec.body else {
            return Err(vec![crate::backends::not_this_kind(spec, "native")]);
        };
        let mut checks = Vec::new();
        let mut profile = None;
        match &doc.measurements {
            Some(m) => checks.extend(check_csv(spec, doc, m)),
            None => {
                match super::profile::check(spec, doc) {
                    Ok(p) => profile = p,
                    Err(d) => checks.extend(d),
                }
                checks.extend(check_cpus(spec, doc));
            }
        }
        EnginePlan::after_checks(checks, || {
            super::plan::plan(spec, doc, profile).map(EnginePlan::new)
        })
    }

    async fn run(
        &self,
        spec: &Spec,
        plan: &EnginePlan,
        cx: &RunContext,
    ) -> Result<Measurements, BackendError> {
        let Body::Scaling(doc) = &spec.body else {
            return Err(BackendError::Unavailable(format!(
                "the scaling backend cannot run a {} spec",
                spec.kind
            )));
        };
        let csv = match plan
            .get::<ScalingPlan>()
            .ok_or_else(|| crate::engine::plan::wrong_plan("native"))?
        {
            ScalingPlan::Sweep(sweep) => return super::sweep::run(sweep, cx).await,
            ScalingPlan::FitOnly { csv } => csv,
        };
        let path = cx.resolve(csv);
        let display = csv.clone();
        cx.progress.update(None, &format!("fitting {display}"));
        let cols = columns(doc);
        let points =
            tokio::task::spawn_blocking(move || measurements::read(&path, &display, &cols))
                .await
                .map_err(|e| BackendError::Unavailable(format!("read measurements: {e}")))?
                .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        let mut m = tokio::task::spawn_blocking(move || measure(&points))
            .await
            .map_err(|e| BackendError::Failed {
                message: format!("fit measurements: {e}"),
                partial: None,
            })?;
        m.elapsed_s = cx.elapsed();
        Ok(m)
    }
}

/// Fit-only: the measurements file exists and its header names the columns.
fn check_csv(
    spec: &Spec,
    doc: &crate::spec::scaling::ScalingDoc,
    m: &crate::spec::source::Spanned<String>,
) -> Vec<Diagnostic> {
    let path = crate::spec::source::resolve_in(&spec.file.folder(), &m.value);
    if path.is_file() {
        return check_header(spec, doc, m, &path);
    }
    let why = if path.exists() {
        "is not a file"
    } else {
        "does not exist"
    };
    vec![
        Diagnostic::error(
            "backend::missing-file",
            format!("measurements file `{}` {why}", m.value),
        )
        .at(&spec.file, m.span)
        .label(format!("looked for {}", path.display()))
        .hint(
            "paths are relative to the spec file; the CSV needs a header `concurrency,throughput`",
        ),
    ]
}

/// The CSV columns the spec names (`columns = { load, throughput }`).
fn columns(doc: &crate::spec::scaling::ScalingDoc) -> measurements::Columns {
    let c = doc.columns.as_ref();
    measurements::Columns {
        load: c.and_then(|c| c.load.as_ref()).map(|l| l.value.clone()),
        throughput: c
            .and_then(|c| c.throughput.as_ref())
            .map(|t| t.value.clone()),
    }
}

/// `validate` reads the measurements file's header: a missing or ambiguous column is a
/// located error (at the `columns` entry that names it, else at `measurements`), listing the
/// columns the file has. Rows are read at run time.
fn check_header(
    spec: &Spec,
    doc: &crate::spec::scaling::ScalingDoc,
    m: &crate::spec::source::Spanned<String>,
    path: &std::path::Path,
) -> Vec<Diagnostic> {
    let Err(e) = measurements::check_header(path, &m.value, &columns(doc)) else {
        return Vec::new();
    };
    let named = |role: &str| {
        let c = doc.columns.as_ref()?;
        match role {
            "load" => c.load.as_ref().map(|l| l.span),
            _ => c.throughput.as_ref().map(|t| t.span),
        }
    };
    let (span, hint) = match &e {
        measurements::MeasurementsError::Column { role, .. } => (
            named(role).unwrap_or(m.span),
            format!(
                "name the {role} column `{}` (or another usual name), or say which it is: `columns = {{ {role} = \"…\" }}`",
                if *role == "load" { "concurrency" } else { "throughput" }
            ),
        ),
        _ => (
            m.span,
            "the first line must be a header naming the load and throughput columns, e.g. `concurrency,throughput`".to_string(),
        ),
    };
    vec![
        Diagnostic::error("backend::measurements", e.to_string())
            .at(&spec.file, span)
            .hint(hint),
    ]
}

/// `sweep.cpus`: no step may ask for more CPUs than this machine lets perfspec use.
fn check_cpus(spec: &Spec, doc: &crate::spec::scaling::ScalingDoc) -> Vec<Diagnostic> {
    let Some(cpus) = doc.sweep.as_ref().and_then(|s| s.cpus.as_ref()) else {
        return Vec::new();
    };
    let allowed = match crate::process::allowed_cpus() {
        Ok(a) => a.len(),
        Err(_) => return Vec::new(),
    };
    match cpus.iter().max() {
        Some(&most) if most as usize > allowed || cpus.contains(&0) => vec![
            Diagnostic::error(
                "backend::cpus",
                format!(
                    "`cpus` asks for {} CPU(s) per replica; this machine lets perfspec use {allowed}",
                    if cpus.contains(&0) { 0 } else { most }
                ),
            )
            .at(&spec.file, cpus.span)
            .label(format!("1..={allowed} here"))
            .hint("each value pins every replica of that step to that many CPUs (sched_setaffinity)"),
        ],
        _ => Vec::new(),
    }
}
