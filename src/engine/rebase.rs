//! `perfspec report --baseline results.json`: attach another run's values to a saved
//! result, so that deltas appear in every format. Each SLO's left-hand side is selected in
//! the baseline's measurements of the same spec name with the engine's own selector
//! ([`crate::engine::verdict::observe`]). SLOs whose threshold uses `baseline` are judged
//! again against the new baseline (with their stored severity, phase and policies), and the
//! spec statuses and exit code follow; the other SLOs keep the original run's verdicts.

use crate::engine::baseline::Baseline;
use crate::engine::verdict::{BaseInput, Reason, Slo, SloOutcome, judge};
use crate::results::{Results, SpecResult, SpecStatus};

/// The SLO a stored outcome was judged by, with its stored severity, phase and policies;
/// `None` when this build's catalog no longer knows its metric.
pub fn recompile(o: &SloOutcome, kind: crate::spec::catalog::Kind) -> Option<Slo> {
    let mut slo = Slo::compile(&o.expr, kind).ok()?;
    slo.severity = o.severity;
    slo.phase = o.phase.clone();
    slo.line = o.line;
    slo.no_data = o.no_data;
    slo.on_missing_baseline = o.on_missing_baseline;
    slo.confidence = o.confidence;
    Some(slo)
}

/// Judge a `baseline` SLO again; `None` when it does not use `baseline`, was not run, or
/// its spec has no measurements.
fn rejudge(o: &SloOutcome, spec: &SpecResult, base: &Baseline) -> Option<SloOutcome> {
    if o.reason == Reason::NotRun {
        return None;
    }
    let slo = recompile(o, spec.kind)?;
    if !slo.expr.rhs.uses_baseline() {
        return None;
    }
    let input = base.input(&spec.name, &slo);
    Some(judge(&slo, spec.measurements.as_ref()?, &o.repeats, &input))
}

/// Set `baseline` and `delta_pct` of every SLO from `baseline` (a results.json or a
/// history: cleared where it has no data), judge `baseline` SLOs again, and record where
/// the baseline came from.
pub fn apply(results: &mut Results, baseline: &Baseline) {
    results.baseline = Some(baseline.path.clone());
    for spec in &mut results.specs {
        let mut rejudged = false;
        for i in 0..spec.slos.len() {
            if let Some(new) = rejudge(&spec.slos[i], spec, baseline) {
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
            let value = Slo::compile(&o.expr, spec.kind).ok().and_then(|mut slo| {
                slo.phase = o.phase.clone();
                match baseline.input(&spec.name, &slo) {
                    BaseInput::Given { value, .. } => value,
                    BaseInput::NotGiven => None,
                }
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
