//! Stress and spike analysis, as engine pieces any backend that can apply load reuses (the
//! load backend runs them inside one run; the scaling backend runs the rate search at every
//! sweep step):
//!
//! - [`staircase`], [`step_criteria`], [`judge_step`] and [`step_up`]: raise the arrival
//!   rate step by step until the SLOs break; the highest rate that held is `max_rate`.
//! - [`recovery_time`]: after a spike, how long until the seconds hold the SLOs again and
//!   keep holding them (each second judged with [`judge`]).
//!
//! Judging a step evaluates the spec's own SLOs restricted to that step's phase with the
//! engine's evaluator; backends still never evaluate SLOs themselves.

use std::future::Future;

use super::metrics::Measurements;
use super::verdict::{Reason, Slo, evaluate};

/// Most steps a staircase has (a typo such as `step = "0.001/s"` must not run forever).
pub const MAX_STEPS: usize = 200;

/// Metrics a stress or spike run produces about itself: never criteria of a step.
const OWN_METRICS: &[&str] = &["max_rate", "recovery_time"];

/// The rates of a stress staircase: `from`, `from + step`, … up to `until` (inclusive,
/// within rounding), at most [`MAX_STEPS`].
pub fn staircase(from: f64, step: f64, until: f64) -> Vec<f64> {
    if step <= 0.0 || !from.is_finite() || !until.is_finite() {
        return vec![from];
    }
    (0..MAX_STEPS)
        .map(|i| from + step * i as f64)
        .take_while(|r| *r <= until + step * 1e-9)
        .collect()
}

/// The SLOs a step must hold: every SLO except those on the search's own results
/// (`max_rate`, `recovery_time`) and those restricted to a phase of their own.
pub fn step_criteria(slos: &[Slo]) -> Vec<Slo> {
    slos.iter()
        .filter(|s| !OWN_METRICS.contains(&s.expr.metric.as_str()) && s.phase.is_none())
        .cloned()
        .collect()
}

/// The criteria `m` breaks when restricted to `phase`: violated or without data, whatever
/// their severity (a missing baseline does not break a step). Empty when the step held.
pub fn judge_step(criteria: &[Slo], m: &Measurements, phase: &str) -> Vec<String> {
    let phased: Vec<Slo> = criteria
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.phase = Some(phase.to_string());
            s
        })
        .collect();
    judge(&phased, m)
}

/// The criteria `m` breaks, each judged as written (its own phase, if any): violated or
/// without data, whatever their severity. Empty when all held.
pub fn judge(criteria: &[Slo], m: &Measurements) -> Vec<String> {
    criteria
        .iter()
        .filter_map(|s| {
            let o = evaluate(s, m, None);
            matches!(
                o.reason,
                Reason::Violated
                    | Reason::NoData
                    | Reason::NotEvaluable
                    | Reason::InvalidMeasurement
            )
            .then_some(o.message)
        })
        .collect()
}

/// What a step-up search found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepUp {
    /// The rates that held, in order.
    pub held: Vec<f64>,
    /// The first rate that broke, and why.
    pub broke_at: Option<(f64, Vec<String>)>,
    /// The search was stopped before it found a breaking rate or ran out of steps.
    pub interrupted: bool,
}

impl StepUp {
    /// The highest rate that held before the first break (`None` if the first step broke).
    pub fn max_rate(&self) -> Option<f64> {
        self.held.last().copied()
    }

    /// One sentence for a report.
    pub fn describe(&self) -> String {
        let fmt = |r: f64| crate::spec::units::Dimension::Rate.format(r);
        let held = match self.max_rate() {
            Some(r) => format!("held up to {} ({} step(s))", fmt(r), self.held.len()),
            None => "no step held".to_string(),
        };
        match (&self.broke_at, self.interrupted) {
            (Some((r, why)), _) => {
                format!("stress: {held}; broke at {}: {}", fmt(*r), why.join("; "))
            }
            (None, true) => format!("stress: {held}; stopped before a step broke"),
            (None, false) => format!("stress: {held}; no step broke up to the last rate"),
        }
    }
}

/// Run `step(rate)` for each rate in order until one breaks. `step` returns the SLOs the
/// step broke (empty: it held), or `None` when the run was stopped.
pub async fn step_up<F, Fut>(rates: &[f64], mut step: F) -> StepUp
where
    F: FnMut(f64) -> Fut,
    Fut: Future<Output = Option<Vec<String>>>,
{
    let mut out = StepUp::default();
    for &rate in rates {
        match step(rate).await {
            None => {
                out.interrupted = true;
                break;
            }
            Some(broken) if broken.is_empty() => out.held.push(rate),
            Some(broken) => {
                out.broke_at = Some((rate, broken));
                break;
            }
        }
    }
    out
}

/// Seconds from `from` until `points` (time, value; sorted by time) satisfy `ok` and keep
/// doing so for `hold` seconds. `None` if that never happens within the points.
pub fn recovery_time(
    points: &[(f64, f64)],
    from: f64,
    hold: f64,
    ok: impl Fn(f64) -> bool,
) -> Option<f64> {
    let after: Vec<&(f64, f64)> = points.iter().filter(|(t, _)| *t >= from).collect();
    let mut start: Option<f64> = None;
    for (t, v) in after {
        if ok(*v) {
            let s = *start.get_or_insert(*t);
            if t - s >= hold {
                return Some((s - from).max(0.0));
            }
        } else {
            start = None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::metrics::labels;
    use crate::spec::catalog::Kind;

    fn slo(text: &str) -> Slo {
        Slo::compile(text, Kind::Load).unwrap()
    }

    #[test]
    fn staircase_is_inclusive_and_bounded() {
        assert_eq!(
            staircase(50.0, 25.0, 150.0),
            vec![50.0, 75.0, 100.0, 125.0, 150.0]
        );
        assert_eq!(staircase(10.0, 0.1, 10.3).len(), 4);
        assert_eq!(staircase(1.0, 0.001, 1e9).len(), MAX_STEPS);
        assert_eq!(staircase(5.0, 0.0, 10.0), vec![5.0]);
    }

    #[test]
    fn judging_a_step_uses_its_phase_only() {
        let mut m = Measurements::default();
        for i in 0..100 {
            m.histogram("latency", labels(&[("phase", "stress-50")]), 1e-6)
                .record(0.010 + i as f64 * 1e-5);
            m.histogram("latency", labels(&[("phase", "stress-100")]), 1e-6)
                .record(0.400);
        }
        let criteria = step_criteria(&[
            slo("p95(latency) < 250ms"),
            slo("max_rate >= 80/s"),
            slo("p95(latency) <= baseline * 1.1"),
        ]);
        assert_eq!(criteria.len(), 2);
        assert!(judge_step(&criteria, &m, "stress-50").is_empty());
        let broke = judge_step(&criteria, &m, "stress-100");
        assert_eq!(broke.len(), 1);
        assert!(broke[0].contains("= 400"), "{broke:?}");
        // a step without data breaks: it cannot claim to have held
        assert_eq!(judge_step(&criteria, &m, "stress-150").len(), 2);
    }

    #[tokio::test]
    async fn step_up_stops_at_the_first_break() {
        let r = step_up(&[10.0, 20.0, 30.0, 40.0], |rate| async move {
            Some(if rate < 30.0 {
                vec![]
            } else {
                vec![format!("broke at {rate}")]
            })
        })
        .await;
        assert_eq!(r.max_rate(), Some(20.0));
        assert_eq!(r.broke_at, Some((30.0, vec!["broke at 30".to_string()])));
        assert!(r.describe().contains("held up to 20/s"), "{}", r.describe());
        let stopped = step_up(
            &[10.0, 20.0],
            |rate| async move { (rate < 20.0).then(Vec::new) },
        )
        .await;
        assert!(stopped.interrupted && stopped.max_rate() == Some(10.0));
    }

    #[test]
    fn recovery_needs_a_streak() {
        let p95 = [
            (0.0, 0.05),
            (1.0, 0.9),
            (2.0, 0.8),
            (3.0, 0.1),
            (4.0, 0.6),
            (5.0, 0.1),
            (6.0, 0.1),
            (7.0, 0.1),
            (8.0, 0.1),
        ];
        // the spike ends at 2s; back under 250ms for good from 5s (3s at 4s does not last)
        assert_eq!(recovery_time(&p95, 2.0, 3.0, |v| v < 0.25), Some(3.0));
        assert_eq!(recovery_time(&p95, 2.0, 10.0, |v| v < 0.25), None);
        assert_eq!(recovery_time(&p95, 6.0, 1.0, |v| v < 0.25), Some(0.0));
    }
}
