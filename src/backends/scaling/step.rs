//! What a scaling step is and how it is judged: a step (a rung of the rate search, or a
//! closed-load step) is a small load run of one-second stages, recorded by the load engine's
//! [`Recorder`] and scheduled by its [`Stages`], so that `latency`, `service_time`, `late`
//! and `error_rate` mean what they mean in a load spec. It is judged by the engine's
//! evaluator against the step SLOs as written (`step_slo`, `latency_slo`), plus
//! [`DEFAULT_STEP_ERROR_SLO`] when none of them names `error_rate`.

use crate::backends::http::recorder::{Names, Recorder};
use crate::backends::http::schedule::Stages;
use crate::backends::load::plan::DEFAULT_LATE_TOLERANCE;
use crate::engine::metrics::{Measurements, Selection, labels};
use crate::engine::search;
use crate::engine::verdict::{Reason, Slo, SloOrigin, evaluate};
use crate::spec::catalog::Kind;
use crate::spec::decode::Duration as SpecDuration;
use crate::spec::load::{Level, Stage};
use crate::spec::scaling::{DEFAULT_STEP_ERROR_SLO, ScalingLoad};
use crate::spec::source::{Span, Spanned};

/// The SLOs every rung (and every second of a failover) must hold: the step SLOs as written,
/// then `error_rate < 1%` unless one of them names `error_rate`. Validation has checked them,
/// so an error here is a bug worth reporting rather than a silent skip.
pub fn criteria(load: &ScalingLoad) -> Result<Vec<Slo>, String> {
    let mut out = Vec::new();
    for text in load.step_slos() {
        let slo = Slo::compile(text, Kind::Load).map_err(|e| {
            let why: Vec<String> = e.into_iter().map(|e| e.message).collect();
            format!("step SLO `{}`: {}", text.value, why.join("; "))
        })?;
        out.push(slo);
    }
    if !out.iter().any(|s| s.expr.metric == "error_rate") {
        let mut slo = Slo::compile(DEFAULT_STEP_ERROR_SLO, Kind::Load)
            .map_err(|_| "the default step SLO does not compile".to_string())?;
        slo.origin = SloOrigin::Default;
        out.push(slo);
    }
    Ok(out)
}

/// How a step fared: whether every criterion held, and one sentence per criterion.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub held: bool,
    pub messages: Vec<String>,
}

/// Judge `m` (a whole step, or one `phase` of it) by the criteria with the evaluator: a
/// criterion breaks the step when it is violated, has no data or an invalid measurement,
/// whatever its severity.
pub fn judge(criteria: &[Slo], m: &Measurements, phase: Option<&str>) -> Judgement {
    let mut held = true;
    let mut messages = Vec::new();
    for s in criteria {
        let mut s = s.clone();
        s.phase = phase.map(str::to_string);
        let o = evaluate(&s, m, None);
        if matches!(
            o.reason,
            Reason::Violated | Reason::NoData | Reason::NotEvaluable | Reason::InvalidMeasurement
        ) {
            held = false;
        }
        messages.push(o.message);
    }
    Judgement { held, messages }
}

/// The phase name of second `i` of a step.
pub fn second_label(i: usize) -> String {
    format!("second-{i}")
}

/// The schedule of a step of `secs` seconds at `level`: one stage per second (the last one
/// shorter when `secs` is fractional), so that every second can be judged on its own.
pub fn stages(level: Level, secs: f64) -> Stages {
    let n = secs.ceil().max(1.0) as usize;
    let stages: Vec<Stage> = (0..n)
        .map(|i| Stage::Hold {
            hold: Spanned::new(level, Span::default()),
            for_: SpecDuration((secs - i as f64).clamp(0.0, 1.0)),
            label: Some(second_label(i)),
        })
        .collect();
    Stages::new(&stages, false)
}

/// A recorder for one step of `stages`, with the journey and step names of the work.
pub fn recorder(journeys: Vec<(String, Vec<String>)>, stages: &Stages) -> Recorder {
    let (journeys, steps) = journeys.into_iter().unzip();
    Recorder::new(
        Names {
            journeys,
            steps,
            phases: stages.phases.clone(),
        },
        DEFAULT_LATE_TOLERANCE,
    )
}

/// The quantile `q` (0..1) of `latency` in `phase` (or the whole step), in seconds.
pub fn latency_quantile(m: &Measurements, phase: Option<&str>, q: f64) -> Option<f64> {
    let sel = phase.map_or_else(Default::default, |p| labels(&[("phase", p)]));
    match m.select("latency", &sel, false) {
        Selection::Histogram(h, scale) if !h.is_empty() => {
            Some(h.value_at_quantile(q) as f64 * scale)
        }
        _ => None,
    }
}

/// The step SLOs, as written, for a note.
pub fn texts(criteria: &[Slo]) -> String {
    criteria
        .iter()
        .map(|s| format!("`{}`", s.text))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The step SLO messages of a judgement in one line.
pub fn describe(j: &Judgement) -> String {
    let verdict = if j.held { "held" } else { "broke" };
    format!("{verdict} ({})", j.messages.join("; "))
}

/// The staircase of a rate search: `rungs` equal steps up to `top`.
pub fn rungs(top: f64, rungs: usize) -> Vec<f64> {
    let step = top / rungs as f64;
    search::staircase(step, step, top)
        .into_iter()
        .take(rungs)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::http::recorder::{Key, StatusLabel};

    fn load(toml_slos: &[&str], latency_slo: Option<&str>) -> ScalingLoad {
        let span = Span::default();
        ScalingLoad {
            profile: None,
            path: None,
            mode: None,
            concurrency: None,
            latency_slo: latency_slo.map(|s| Spanned::new(s.to_string(), span)),
            step_slo: Some(
                toml_slos
                    .iter()
                    .map(|s| Spanned::new(s.to_string(), span))
                    .collect(),
            ),
            step_duration: None,
            max_rate: None,
            broken: Default::default(),
        }
    }

    /// A step of 2 s: 100 requests a second, 3% of them 300 ms, the others 5 ms; `errors`
    /// of every 100 fail.
    fn step(errors: usize) -> Measurements {
        let st = stages(Level::Rate(100.0), 2.0);
        let mut r = recorder(vec![("get".into(), vec!["GET /".into()])], &st);
        for sec in 0..2 {
            for i in 0..100 {
                let lat = if i % 33 == 32 { 0.300 } else { 0.005 };
                let failed = i < errors;
                let key = Key {
                    journey: 0,
                    step: 0,
                    status: StatusLabel::Code(if failed { 500 } else { 200 }),
                    phase: sec,
                };
                let at = sec as f64 + i as f64 / 100.0;
                r.arrival(sec, 0.0, at);
                r.request(key, Some((lat, lat)), failed.then_some("boom"), at + lat);
            }
        }
        r.finish(2.0, &st.phase_durations(2.0), true, 0.0, &|_| 100.0)
    }

    #[test]
    fn the_default_error_limit_is_added_only_without_an_error_rate_slo() {
        let c = criteria(&load(&[], Some("p99(latency) < 200ms"))).unwrap();
        let texts: Vec<&str> = c.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["p99(latency) < 200ms", "error_rate < 1%"]);
        assert_eq!(c[1].origin, SloOrigin::Default);
        let c = criteria(&load(&["error_rate < 5%", "p50(latency) < 1s"], None)).unwrap();
        let texts: Vec<&str> = c.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["error_rate < 5%", "p50(latency) < 1s"]);
    }

    #[test]
    fn quantile_and_operator_are_judged_as_written() {
        let m = step(0);
        let j = |t: &str| judge(&criteria(&load(&[t], None)).unwrap(), &m, None);
        // 3% of requests at 300 ms: p95 is fast, p99 is not
        assert!(j("p95(latency) < 200ms").held);
        let p99 = j("p99(latency) < 200ms");
        assert!(!p99.held, "{p99:?}");
        assert!(p99.messages[0].starts_with("p99(latency) = 300"), "{p99:?}");
        assert!(j("p99(latency) > 200ms").held);
        assert!(!j("p95(latency) > 200ms").held);
        // any load SLO: throughput is 100/s
        assert!(j("throughput >= 100/s").held);
        assert!(!j("throughput > 100/s").held);
    }

    #[test]
    fn the_error_limit_comes_from_the_spec() {
        let m = step(3);
        let lat = "p95(latency) < 200ms";
        let default = judge(&criteria(&load(&[lat], None)).unwrap(), &m, None);
        assert!(!default.held, "3% errors break the default 1%: {default:?}");
        assert!(
            default.messages[1].contains("error_rate = 3"),
            "{default:?}"
        );
        let five = judge(
            &criteria(&load(&[lat, "error_rate < 5%"], None)).unwrap(),
            &m,
            None,
        );
        assert!(five.held, "{five:?}");
    }

    /// A counter (`requests`, `errors`) in `phase`, 0 when nothing was counted.
    fn count(m: &Measurements, metric: &str, phase: &str) -> f64 {
        match m.select(metric, &labels(&[("phase", phase)]), true) {
            Selection::Value(v) => v,
            _ => 0.0,
        }
    }

    #[test]
    fn every_second_is_a_phase_and_a_silent_second_breaks() {
        let m = step(0);
        let c = criteria(&load(&["p95(latency) < 200ms"], None)).unwrap();
        assert!(judge(&c, &m, Some("second-1")).held);
        assert!(!judge(&c, &m, Some("second-7")).held);
        assert_eq!(count(&m, "requests", "second-0"), 100.0);
        assert_eq!(count(&m, "errors", "second-0"), 0.0);
        let p = latency_quantile(&m, Some("second-0"), 0.99).unwrap();
        assert!((p - 0.3).abs() < 0.001, "{p}");
    }

    #[test]
    fn a_step_has_one_stage_per_second() {
        let st = stages(Level::Rate(10.0), 2.5);
        assert_eq!(st.phases, ["second-0", "second-1", "second-2"]);
        assert!((st.duration() - 2.5).abs() < 1e-12);
        assert_eq!(st.total_arrivals(), 25);
        assert_eq!(st.arrival(12).map(|a| a.1), Some(1));
        assert_eq!(
            rungs(200.0, 8),
            [25.0, 50.0, 75.0, 100.0, 125.0, 150.0, 175.0, 200.0]
        );
    }
}
