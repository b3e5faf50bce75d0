//! Backends whose execution has not landed yet: `validate` accepts their specs (the spec
//! language is complete), and `run` ends in exit 3 with "backend not available yet" — never a
//! fabricated measurement.

use crate::engine::metrics::Measurements;
use crate::engine::{Backend, BackendError, RunContext};
use crate::spec::Spec;
use crate::spec::catalog::Kind;

pub struct Pending {
    kind: Kind,
    name: &'static str,
    describe: &'static str,
}

impl Pending {
    pub fn new(kind: Kind, name: &'static str, describe: &'static str) -> Pending {
        Pending { kind, name, describe }
    }
}

/// The message every not-yet-built backend gives.
pub fn not_available(kind: Kind, name: &str) -> BackendError {
    BackendError::Unavailable(format!(
        "backend not available yet: the {kind} backend `{name}` validates specs but cannot run them in this version of perfspec"
    ))
}

#[async_trait::async_trait]
impl Backend for Pending {
    fn kind(&self) -> Kind {
        self.kind
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn describe(&self) -> &'static str {
        self.describe
    }
    async fn run(&self, _spec: &Spec, _cx: &RunContext) -> Result<Measurements, BackendError> {
        Err(not_available(self.kind, self.name))
    }
}
