//! `perfspec report --baseline results.json`: attach another run's values to a saved
//! result, so that deltas appear in every format. Each SLO's left-hand side is selected in
//! the baseline's measurements of the same spec name with the engine's own selector
//! ([`crate::engine::verdict::observe`]). SLOs whose threshold uses `baseline` are judged
//! again against the new baseline (with their stored severity, phase and policies), and the
//! spec statuses and exit code follow; the other SLOs keep the original run's verdicts.

use crate::engine::baseline::spec_input;
use crate::engine::verdict::{Reason, Slo, SloOutcome, judge, observe};
use crate::results::{Results, SpecResult, SpecStatus};

/// Judge a `baseline` SLO again; `None` when it does not use `baseline`, was not run, or
/// its spec has no measurements.
fn rejudge(o: &SloOutcome, spec: &SpecResult, base: Option<&SpecResult>) -> Option<SloOutcome> {
    if o.reason == Reason::NotRun {
        return None;
    }
    let mut slo = Slo::compile(&o.expr, spec.kind).ok()?;
    if !slo.expr.rhs.uses_baseline() {
        return None;
    }
    slo.severity = o.severity;
    slo.phase = o.phase.clone();
    slo.line = o.line;
    slo.no_data = o.no_data;
    slo.on_missing_baseline = o.on_missing_baseline;
    slo.confidence = o.confidence;
    let input = spec_input(base, &slo);
    Some(judge(&slo, spec.measurements.as_ref()?, &o.repeats, &input))
}

/// Set `baseline` and `delta_pct` of every SLO from `baseline` (cleared where it has no
/// data), judge `baseline` SLOs again, and record its path.
pub fn apply(results: &mut Results, baseline: &Results, path: &str) {
    results.baseline = Some(path.to_string());
    for spec in &mut results.specs {
        let base_spec = baseline.spec(&spec.name);
        let base_m = base_spec.and_then(|b| b.measurements.as_ref());
        let mut rejudged = false;
        for i in 0..spec.slos.len() {
            if let Some(new) = rejudge(&spec.slos[i], spec, base_spec) {
                spec.slos[i] = new;
                rejudged = true;
            }
        }
        if rejudged
            && matches!(
                spec.status,
                SpecStatus::Pass | SpecStatus::Warn | SpecStatus::Fail
            )
        {
            spec.status = SpecResult::verdict(&spec.slos, spec.timed_out);
        }
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
    results.exit_code = crate::engine::run::exit_code(results);
}
