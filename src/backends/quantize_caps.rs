//! The burn quantization backends (`flex`, `ndarray`): their capability table, which
//! `validate` consults so that a scheme a backend cannot run (or runs wrongly) is rejected
//! before any run. Execution lives in [`super::quantize`] behind the `quantize` cargo feature;
//! a build without it reports "backend not available yet".
//!
//! Facts measured on burn 0.22.1 (DESIGN §4): int8 per-tensor and per-block work on both
//! backends (native store), but ndarray cannot block 4-D conv weights; int4 and fp8 panic on
//! ndarray; ternary runs on ndarray but does not reload; fp16/bf16 casts panic on ndarray;
//! flex runs int4 but stores it one byte per value (no size gain), runs and reloads ternary
//! but min-max ternary destroys accuracy (13% on the digits CNN) with no size gain either, and
//! computes E4M3 (fp8) silently wrong. `schemes::tests` re-measures the int4/ternary facts.

use crate::engine::metrics::Measurements;
use crate::engine::{Backend, BackendError, Plan, RunContext};
use crate::spec::catalog::Kind;
use crate::spec::diagnostic::Diagnostic;
use crate::spec::quantize::DType;
use crate::spec::{Body, Spec};

pub struct Quantize {
    name: &'static str,
}

impl Quantize {
    pub fn new(name: &'static str) -> Quantize {
        Quantize { name }
    }
}

/// What a backend does with a dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    Supported,
    /// Runs, but the result is not what the user expects (a warning).
    Caveat(&'static str),
    /// Cannot run, or runs wrongly (a validation error).
    Unsupported(&'static str),
}

/// The capability table.
pub fn capability(backend: &str, dtype: DType) -> Capability {
    use Capability::*;
    match (backend, dtype) {
        ("ndarray", DType::Fp16 | DType::Bf16) => Unsupported(
            "casting weights to fp16/bf16 panics on the ndarray backend (\"Unsupported dtype: F16\", burn 0.22)",
        ),
        (_, DType::Fp32 | DType::Fp16 | DType::Bf16 | DType::Int8) => Supported,
        ("ndarray", DType::Int4) => Unsupported(
            "int4 quantization panics on the ndarray backend (\"Quantization not supported for scheme Q4S\", burn 0.22.1)",
        ),
        ("ndarray", DType::Fp8) => {
            Unsupported("fp8 quantization panics on the ndarray backend (burn 0.22)")
        }
        ("ndarray", DType::Ternary) => Unsupported(
            "ternary quantization runs on ndarray but reloading it from burnpack panics (\"from_data not supported for scheme Q2S\", burn 0.22.1)",
        ),
        ("flex", DType::Int4) => Caveat(
            "flex stores int4 one byte per value: no size gain over int8 (measured, burn 0.22.1)",
        ),
        ("flex", DType::Fp8) => {
            Unsupported("fp8 (E4M3) runs on flex but computes wrong results (burn 0.22)")
        }
        ("flex", DType::Ternary) => Unsupported(
            "ternary runs and reloads on flex, but burn's min-max ternary (Q2S: the scale is the largest magnitude, so every weight below half of it becomes 0) cut the digits CNN from 98% to 13% accuracy (weight SQNR 0.3-3 dB), and flex stores it one byte per value: no size gain over int8 (measured, burn 0.22.1)",
        ),
        _ => Unsupported("unknown backend"),
    }
}

#[async_trait::async_trait]
impl Backend for Quantize {
    fn kind(&self) -> Kind {
        Kind::Quantize
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn describe(&self) -> &'static str {
        if self.name == "flex" {
            "burn on the flex CPU backend (maintained, faster): size, accuracy, latency per scheme"
        } else {
            "burn on the ndarray CPU backend (deprecated upstream): size, accuracy, latency per scheme"
        }
    }

    /// The capability checks, then the plan (whose dataset header check needs the file).
    fn plan(&self, spec: &Spec) -> Result<Plan, Vec<Diagnostic>> {
        let Body::Quantize(doc) = &spec.body else {
            return Err(vec![super::not_this_kind(spec, self.name)]);
        };
        Plan::after_checks(self.check(spec, doc), || {
            super::quantize_plan::plan(spec, doc).map(Plan::new)
        })
    }

    #[cfg(feature = "quantize")]
    async fn run(
        &self,
        spec: &Spec,
        plan: &Plan,
        cx: &RunContext,
    ) -> Result<Measurements, BackendError> {
        let plan = plan
            .get::<super::quantize_plan::QuantizePlan>()
            .ok_or_else(|| crate::engine::plan::wrong_plan(self.name))?;
        super::quantize::run(self.name, spec, plan, cx).await
    }

    #[cfg(not(feature = "quantize"))]
    async fn run(
        &self,
        _spec: &Spec,
        _plan: &Plan,
        _cx: &RunContext,
    ) -> Result<Measurements, BackendError> {
        Err(super::pending::not_available(Kind::Quantize, self.name))
    }
}

impl Quantize {
    /// What this backend cannot run (errors) or runs with a caveat (warnings).
    fn check(&self, spec: &Spec, doc: &crate::spec::quantize::QuantizeDoc) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for s in doc.scheme.iter() {
            let d = match capability(self.name, s.dtype.value) {
                Capability::Supported => continue,
                Capability::Caveat(why) => Diagnostic::warning(
                    "backend::capability",
                    format!("{} on `{}`: {why}", s.dtype.value, self.name),
                ),
                Capability::Unsupported(why) => Diagnostic::error(
                    "backend::capability",
                    format!("the `{}` backend cannot run {}", self.name, s.dtype.value),
                )
                .hint(why.to_string()),
            };
            out.push(
                d.at(&spec.file, s.dtype.span)
                    .label(format!("{} on {}", s.dtype.value, self.name)),
            );
        }
        // block shapes that fit every weight are the spec's own check; burn keeps each
        // dimension of a block in a byte, and ndarray cannot block 4-D (conv) weights
        let conv = doc.conv().is_some();
        for s in doc.scheme.iter() {
            let Some(b) = &s.block else { continue };
            if b.value == 0 {
                continue; // the spec's own validation reports it
            }
            if b.value > 255 {
                out.push(
                    Diagnostic::error(
                        "backend::capability",
                        format!(
                            "block {} is larger than burn's largest block (255)",
                            b.value
                        ),
                    )
                    .at(&spec.file, b.span)
                    .label("block too large"),
                );
            } else if conv && self.name == "ndarray" {
                out.push(
                    Diagnostic::error(
                        "backend::capability",
                        "the `ndarray` backend cannot quantize conv weights per block",
                    )
                    .hint("per-block quantization of a 4-D conv weight panics on ndarray (\"NdArray supports arrays up to 6 dimensions, received: 8\", burn 0.22.1): use per-tensor int8 or the flex backend")
                    .at(&spec.file, b.span)
                    .label("block on a cnn"),
                );
            }
        }
        out
    }
}
