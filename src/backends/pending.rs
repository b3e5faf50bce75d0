//! The error of a backend whose execution is not in this build: `validate` accepts its specs
//! (the spec language is complete), and `run` ends in exit 3 — never a fabricated measurement.

use crate::engine::BackendError;
use crate::spec::catalog::Kind;

/// The message every not-yet-available backend gives.
// with the `quantize` feature no built-in backend is pending any more
#[cfg_attr(feature = "quantize", allow(dead_code))]
pub fn not_available(kind: Kind, name: &str) -> BackendError {
    BackendError::Unavailable(format!(
        "backend not available yet: the {kind} backend `{name}` validates specs but cannot run them in this build of perfspec"
    ))
}
