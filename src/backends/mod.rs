//! Backends, registered in one explicit table keyed by `(kind, name)`. Adding a backend is
//! one file and one line in [`Registry::standard`].

mod cache;
pub mod exec;
mod http;
mod load;
mod pending;
#[cfg(feature = "quantize")]
pub mod quantize;
mod quantize_caps;
pub mod quantize_plan;
pub mod scaling;
pub mod testkit;

use crate::engine::{Backend, Plan};
use crate::spec::Spec;
use crate::spec::catalog::Kind;
use crate::spec::diagnostic::Diagnostic;

/// Environment variable that registers the test-only `testkit` backends.
pub const TESTKIT_ENV: &str = "PERFSPEC_TESTKIT";

pub struct Registry {
    backends: Vec<Box<dyn Backend>>,
}

impl Registry {
    /// Every backend this build has. The test-only `testkit` backends are added when
    /// `PERFSPEC_TESTKIT=1`.
    pub fn standard() -> Registry {
        let mut backends: Vec<Box<dyn Backend>> = vec![
            Box::new(load::Goose),
            Box::new(load::Import),
            Box::new(cache::Native),
            Box::new(scaling::Native),
            Box::new(quantize_caps::Quantize::new("flex")),
            Box::new(quantize_caps::Quantize::new("ndarray")),
        ];
        for kind in Kind::ALL {
            backends.push(Box::new(exec::Exec { kind }));
        }
        if std::env::var(TESTKIT_ENV).is_ok_and(|v| v == "1") {
            for kind in Kind::ALL {
                backends.push(Box::new(testkit::Testkit { kind }));
            }
        }
        Registry { backends }
    }

    /// A registry of exactly these backends (tests).
    pub fn with(backends: Vec<Box<dyn Backend>>) -> Registry {
        Registry { backends }
    }

    pub fn get(&self, kind: Kind, name: &str) -> Option<&dyn Backend> {
        self.backends
            .iter()
            .find(|b| b.kind() == kind && b.name() == name)
            .map(|b| b.as_ref())
    }

    pub fn names(&self, kind: Kind) -> Vec<&'static str> {
        self.backends
            .iter()
            .filter(|b| b.kind() == kind)
            .map(|b| b.name())
            .collect()
    }

    pub fn all(&self) -> impl Iterator<Item = &dyn Backend> {
        self.backends.iter().map(|b| b.as_ref())
    }

    /// Validation's backend phase, which is planning: the backend exists for the kind, and it
    /// can plan the spec (its capability checks pass).
    pub fn plan(&self, spec: &Spec) -> Result<Plan, Vec<Diagnostic>> {
        match self.get(spec.kind, &spec.backend) {
            Some(b) => b.plan(spec),
            None => {
                let names = self.names(spec.kind);
                let mut d = Diagnostic::error(
                    "spec::backend",
                    format!(
                        "unknown backend `{}` for a {} spec",
                        spec.backend, spec.kind
                    ),
                )
                .label("unknown backend");
                d = match crate::spec::diagnostic::did_you_mean(
                    &spec.backend,
                    names.iter().copied(),
                ) {
                    Some(s) => d.hint(format!("did you mean `{s}`?")),
                    None => d.hint(format!("{} backends: {}", spec.kind, names.join(", "))),
                };
                d = match spec.backend_span {
                    Some(span) => d.at(&spec.file, span),
                    None => d.in_file(&spec.file),
                };
                Err(vec![d])
            }
        }
    }
}

/// The planning error of a backend handed a spec of another kind (the registry never does).
fn not_this_kind(spec: &Spec, backend: &str) -> Diagnostic {
    Diagnostic::error(
        "spec::backend",
        format!("the `{backend}` backend does not run {} specs", spec.kind),
    )
    .in_file(&spec.file)
}
