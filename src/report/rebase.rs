//! `perfspec report --baseline results.json`: attach another run's values to a saved
//! result, so that deltas appear in every format. Each SLO's left-hand side is selected in
//! the baseline's measurements of the same spec name with the engine's own selector
//! ([`crate::engine::verdict::observe`]); statuses stay those of the original run.

use super::results::Results;
use crate::engine::verdict::{Slo, observe};

/// Set `baseline` and `delta_pct` of every SLO from `baseline` (cleared where it has no
/// data) and record its path.
pub fn apply(results: &mut Results, baseline: &Results, path: &str) {
    results.baseline = Some(path.to_string());
    for spec in &mut results.specs {
        let base_m = baseline
            .spec(&spec.name)
            .and_then(|b| b.measurements.as_ref());
        for o in &mut spec.slos {
            let value = base_m.and_then(|bm| {
                let slo = Slo::compile(&o.expr, spec.kind).ok()?;
                observe(&slo.expr, o.phase.as_deref(), bm)
            });
            o.baseline = value;
            o.delta_pct = o
                .observed
                .zip(value)
                .and_then(|(obs, b)| (b != 0.0).then(|| (obs - b) / b * 100.0))
                .filter(|d| d.is_finite());
        }
    }
}
