//! `[load] profile = "checkout.toml"`: a scaling sweep reuses the journeys of a load spec
//! (requests, templates, data files, captures, expectations, think times). Only the journeys
//! are reused: the sweep's own `[load]` decides how much load each step gets, and the sweep's
//! replicas are the target.

use std::path::Path;

use crate::backends::http::journey::Plan;
use crate::spec::diagnostic::Diagnostic;
use crate::spec::scaling::ScalingDoc;
use crate::spec::source::{folder_of, resolve_in};
use crate::spec::{Body, Spec};

/// Read the load spec at `path` and compile its journeys. Problems come back as diagnostics
/// located in the profile file itself.
pub fn compile(path: &Path) -> Result<Plan, Vec<Diagnostic>> {
    let env = |name: &str| std::env::var(name).ok();
    let loaded = crate::spec::loader::load_file(path, &[], &env);
    let Some(spec) = loaded.spec else {
        return Err(loaded.diagnostics);
    };
    let Body::Load(doc) = &spec.body else {
        return Err(vec![Diagnostic::error(
            "spec::load",
            format!(
                "the profile is a {} spec: a scaling `profile` reuses the journeys of a load spec",
                spec.kind
            ),
        )]);
    };
    Plan::compile_spec(&spec, doc, &folder_of(path))
}

/// Planning: the profile exists, is a load spec and its journeys compile (once: the sweep
/// runs these). `Ok(None)` without a profile.
pub fn check(spec: &Spec, doc: &ScalingDoc) -> Result<Option<Plan>, Vec<Diagnostic>> {
    let Some(profile) = doc.load.as_ref().and_then(|l| l.profile.as_ref()) else {
        return Ok(None);
    };
    let path = resolve_in(&spec.file.folder(), &profile.value);
    if !path.is_file() {
        let why = if path.exists() {
            "is not a file"
        } else {
            "does not exist"
        };
        return Err(vec![
            Diagnostic::error(
                "backend::missing-file",
                format!("profile `{}` {why}", profile.value),
            )
            .at(&spec.file, profile.span)
            .label(format!("looked for {}", path.display()))
            .hint("paths are relative to the spec file; the profile is a load spec whose journeys each sweep step runs"),
        ]);
    }
    compile(&path).map(Some).map_err(|mut diags| {
        // a problem without a place of its own points at the `profile` key
        for d in diags.iter_mut().filter(|d| d.source.is_none()) {
            d.source = Some(spec.file.clone());
            d.span = Some(profile.span);
        }
        diags
    })
}
