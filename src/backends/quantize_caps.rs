//! The burn quantization backends (`flex`, `ndarray`): their capability table, which
//! `validate` consults so that a scheme a backend cannot run (or runs wrongly) is rejected
//! before any run. Execution lives in [`super::quantize`] behind the `quantize` cargo feature;
//! a build without it reports "backend not available yet".
//!
//! Facts measured on burn 0.22.1 (DESIGN §4): int8 per-tensor and per-block work on both
//! backends (native store); int4 and fp8 panic on ndarray; ternary runs on ndarray but does
//! not reload; fp16/bf16 casts panic on ndarray (measured here); flex stores int4 one byte per value (no size gain) and computes E4M3 (fp8)
//! silently wrong.

use crate::engine::metrics::Measurements;
use crate::engine::{Backend, BackendError, RunContext};
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
        ("ndarray", DType::Int4) => {
            Unsupported("int4 quantization panics on the ndarray backend (burn 0.22)")
        }
        ("ndarray", DType::Fp8) => {
            Unsupported("fp8 quantization panics on the ndarray backend (burn 0.22)")
        }
        ("ndarray", DType::Ternary) => {
            Unsupported("ternary models run on ndarray but do not reload from burnpack (burn 0.22)")
        }
        ("flex", DType::Int4) => {
            Caveat("flex stores int4 one byte per value: no size gain over int8 (burn 0.22)")
        }
        ("flex", DType::Fp8) => {
            Unsupported("fp8 (E4M3) runs on flex but computes wrong results (burn 0.22)")
        }
        ("flex", DType::Ternary) => {
            Unsupported("ternary quantization is not verified on flex (burn 0.22)")
        }
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

    fn check(&self, spec: &Spec) -> Vec<Diagnostic> {
        let Body::Quantize(doc) = &spec.body else {
            return Vec::new();
        };
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
        // burn quantizes a block of consecutive inputs of one output: `[block, 1]` of each
        // `[d_in, d_out]` weight, with the block size held in a byte
        let inputs = &doc.model.layers.value[..doc.model.layers.len().saturating_sub(1)];
        for s in doc.scheme.iter() {
            let Some(b) = &s.block else { continue };
            if b.value == 0
                || doc
                    .weight_shapes()
                    .iter()
                    .any(|(_, n)| n % u64::from(b.value) != 0)
            {
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
            } else if let Some((i, w)) = inputs.iter().enumerate().find(|(_, w)| **w % b.value != 0)
            {
                out.push(
                    Diagnostic::error("backend::capability", format!("block {} does not divide the input width {w} of `layers.{i}`", b.value))
                        .hint("burn quantizes blocks along each weight's input dimension: pick a block size that divides every input width")
                        .at(&spec.file, b.span)
                        .label("block size"),
                );
            }
        }
        out
    }

    #[cfg(feature = "quantize")]
    async fn run(&self, spec: &Spec, cx: &RunContext) -> Result<Measurements, BackendError> {
        super::quantize::run(self.name, spec, cx).await
    }

    #[cfg(not(feature = "quantize"))]
    async fn run(&self, _spec: &Spec, _cx: &RunContext) -> Result<Measurements, BackendError> {
        Err(super::pending::not_available(Kind::Quantize, self.name))
    }
}
