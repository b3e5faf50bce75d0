//! One SLO as a spec states it: the parsed and checked expression, its severity, phase and
//! policies. The engine judges it (`engine::verdict`); the spec layer only builds it.

use serde::{Deserialize, Serialize};

use crate::spec::catalog::Kind;
use crate::spec::slo::{self, SloError, SloExpr};
use crate::spec::units::Dimension;

/// What a violated SLO does to the gate.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SloSeverity {
    /// A violation fails the run (exit code 1). The default.
    #[default]
    Fail,
    /// A violation is reported as a warning only.
    Warn,
}

/// What an SLO yields when its metric has no data (e.g. a typo'd label value).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum NoDataPolicy {
    /// Fail (warn for a `warn` SLO). The default: a typo must never pass silently.
    #[default]
    Fail,
    /// Warn.
    Warn,
    /// Pass.
    Pass,
}

/// What a `baseline` SLO yields when the baseline has no data for it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum MissingBaselinePolicy {
    /// Warn. The default: adding a spec or a metric must not fail the gate by itself.
    #[default]
    Warn,
    /// Fail (warn for a `warn` SLO).
    Fail,
}

/// Where an SLO comes from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum SloOrigin {
    /// Written in the spec file.
    #[default]
    Spec,
    /// Added by perfspec, e.g. load's `late_ratio < 1%`.
    Default,
}

/// One SLO as written in a spec, parsed and checked against the kind's catalog.
#[derive(Debug, Clone)]
pub struct Slo {
    /// The expression as written.
    pub text: String,
    /// The parsed expression.
    pub expr: SloExpr,
    /// The dimension of the left-hand side after aggregation (from [`slo::check`]).
    pub dim: Dimension,
    /// Fail or warn when violated.
    pub severity: SloSeverity,
    /// Only measurements labelled `phase=<phase>` (a stage label).
    pub phase: Option<String>,
    /// What no data yields.
    pub no_data: NoDataPolicy,
    /// What a missing baseline yields (only for SLOs that use `baseline`).
    pub on_missing_baseline: MissingBaselinePolicy,
    /// `confidence = "95%"` on a `baseline` SLO: fail only when the per-repeat values of
    /// this run are worse than the bound with this confidence (a fraction, e.g. 0.95).
    pub confidence: Option<f64>,
    /// 1-based line in the spec file (0 when it has none, e.g. a built-in SLO).
    pub line: usize,
    /// Written in the spec, or added by perfspec.
    pub origin: SloOrigin,
}

impl Slo {
    /// Parse and check `text` for `kind`, with the default options (severity `fail`, no
    /// phase, no-data `fail`, missing baseline `warn`, line 0, origin [`SloOrigin::Spec`]);
    /// set the fields afterwards to change them.
    pub fn compile(text: &str, kind: Kind) -> Result<Slo, Vec<SloError>> {
        let expr = slo::parse(text).map_err(|e| vec![e])?;
        let dim = slo::check(&expr, kind)?;
        Ok(Slo {
            text: text.to_string(),
            expr,
            dim,
            severity: SloSeverity::Fail,
            phase: None,
            no_data: NoDataPolicy::Fail,
            on_missing_baseline: MissingBaselinePolicy::Warn,
            confidence: None,
            line: 0,
            origin: SloOrigin::Spec,
        })
    }
}
