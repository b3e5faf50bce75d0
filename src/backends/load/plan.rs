//! The plan of a load spec: the journeys compiled once (templates, captures, data files),
//! the stages resolved to a schedule (the stress staircase appended), the arrival model with
//! its defaults (`max_in_flight`, `late_tolerance`), and the expected number of arrivals.

use std::fmt;
use std::sync::Arc;

use crate::backends::http::journey;
use crate::backends::http::schedule::Stages;
use crate::engine::plan::secs;
use crate::engine::search;
use crate::spec::Spec;
use crate::spec::decode::Duration as SpecDuration;
use crate::spec::diagnostic::Diagnostic;
use crate::spec::load::{FeedMode, Level, LoadDoc, ModelKind, Stage};
use crate::spec::source::{Span, Spanned};
use crate::spec::units::trim_float;

/// Default `late_tolerance`, seconds.
pub const DEFAULT_LATE_TOLERANCE: f64 = 0.010;

/// The most arrivals a schedule may plan: arrival indices and their intended times are
/// computed in `f64`, exact for integers up to 2^53.
pub const MAX_ARRIVALS: f64 = 9_007_199_254_740_992.0;

/// What a load run does.
#[derive(serde::Serialize)]
pub struct LoadPlan {
    pub model: Model,
    /// The spec's stages, then the stress staircase's steps (labelled `stress-RATE`).
    pub stages: Vec<StagePlan>,
    /// Planned length of the load, seconds (the stress staircase may stop it earlier).
    pub duration_s: f64,
    /// The stress staircase's rates, when `[load.stress]` is set.
    pub stress: Option<Vec<f64>>,
    pub journeys: Vec<JourneySummary>,
    pub target: TargetPlan,
    pub data: Vec<DataPlan>,
    #[serde(skip)]
    pub compiled: Arc<journey::Plan>,
    #[serde(skip)]
    pub schedule: Stages,
    #[serde(skip)]
    pub rungs: Vec<Rung>,
}

/// The arrival model, with its defaults resolved.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Model {
    /// Arrivals at the stages' rates; latency from each arrival's intended time.
    Open {
        /// Arrivals (journey runs) the schedule plans in total.
        arrivals: u64,
        /// At most this many in flight; more queue (and turn late).
        max_in_flight: usize,
        /// An arrival that starts later than this is `late`, seconds.
        late_tolerance_s: f64,
    },
    /// Virtual users looping their journeys.
    Closed {
        /// The most users of any stage.
        users: usize,
    },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StagePlan {
    /// `ramp` or `hold`.
    pub shape: &'static str,
    /// Level at the start and the end: arrivals per second (open) or users (closed).
    pub from: f64,
    pub to: f64,
    pub duration_s: f64,
    /// The stage's label, or `stage-N`: the `phase` its measurements carry.
    pub phase: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct JourneySummary {
    pub name: String,
    pub weight: f64,
    pub probability: f64,
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetPlan {
    /// `embedded`, `url` or `command`.
    pub kind: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DataPlan {
    pub name: String,
    pub csv: String,
    pub mode: &'static str,
    pub rows: usize,
}

/// A stress step: its rate, phase label and phase index, and when it ends.
#[derive(Debug, Clone)]
pub struct Rung {
    pub rate: f64,
    pub label: String,
    pub phase: usize,
    pub end: f64,
}

/// The spec's stages, followed by the stress staircase (a hold of `every` per rate, labelled
/// `stress-RATE`) when `[load.stress]` is set.
fn all_stages(d: &LoadDoc) -> Vec<Stage> {
    let mut stages: Vec<Stage> = d.load.stages.value.clone();
    if let Some(st) = &d.load.stress {
        for rate in search::staircase(st.from.0, st.step.0, st.until.0) {
            stages.push(Stage::Hold {
                hold: Spanned::new(Level::Rate(rate), Span::default()),
                for_: SpecDuration(st.every.0),
                label: Some(stress_label(rate)),
            });
        }
    }
    stages
}

fn stress_label(rate: f64) -> String {
    format!("stress-{}", trim_float(rate))
}

/// Open model without `max_in_flight`: the peak rate × 1 s, between 16 and 1000.
pub fn default_max_in_flight(stages: &Stages) -> usize {
    (stages.peak_level().ceil() as usize).clamp(16, 1000)
}

/// Arrivals an open-model schedule plans; `Err` when they are more than perfspec can count
/// exactly (or the rates are not finite).
pub fn expected_arrivals(stages: &Stages) -> Result<u64, String> {
    let total: f64 = stages
        .levels()
        .map(|(duration, from, to, _)| (from + to) / 2.0 * duration)
        .sum();
    if !total.is_finite() || total > MAX_ARRIVALS {
        return Err(format!(
            "the stages plan {} arrivals, more than perfspec can schedule (at most 2^53)",
            trim_float(total)
        ));
    }
    Ok(stages.total_arrivals())
}

/// Compile and resolve a load spec; every problem is a located diagnostic.
pub fn plan(spec: &Spec, d: &LoadDoc) -> Result<LoadPlan, Vec<Diagnostic>> {
    let compiled = journey::Plan::compile_spec(spec, d, &spec.file.folder())?;
    let open = d.load.model != Some(ModelKind::Closed);
    let schedule = Stages::new(&all_stages(d), !open);
    let model = if open {
        let arrivals = expected_arrivals(&schedule).map_err(|why| {
            vec![
                Diagnostic::error("load::schedule", why)
                    .at(&spec.file, d.load.stages.span)
                    .hint("lower the rates or shorten the stages"),
            ]
        })?;
        Model::Open {
            arrivals,
            max_in_flight: d
                .load
                .max_in_flight
                .as_ref()
                .map_or_else(|| default_max_in_flight(&schedule), |m| m.value as usize),
            late_tolerance_s: d
                .load
                .late_tolerance
                .map_or(DEFAULT_LATE_TOLERANCE, |t| t.0),
        }
    } else {
        Model::Closed {
            users: schedule.peak_level().round().max(1.0) as usize,
        }
    };
    let rungs = rungs(d, &schedule, open);
    Ok(LoadPlan {
        stages: stage_plans(&all_stages(d), &schedule),
        duration_s: schedule.duration(),
        stress: d
            .load
            .stress
            .as_ref()
            .map(|_| rungs.iter().map(|r| r.rate).collect()),
        journeys: journeys(d, &compiled),
        target: target(d),
        data: d
            .data
            .iter()
            .flatten()
            .map(|(name, src)| DataPlan {
                name: name.clone(),
                csv: src.csv.value.clone(),
                mode: match src.mode.unwrap_or(FeedMode::Sequence) {
                    FeedMode::Sequence => "sequence",
                    FeedMode::Random => "random",
                    FeedMode::Unique => "unique",
                },
                rows: compiled
                    .data_rows()
                    .into_iter()
                    .find(|(n, _)| n == name)
                    .map_or(0, |(_, r)| r),
            })
            .collect(),
        model,
        compiled: Arc::new(compiled),
        schedule,
        rungs,
    })
}

/// The stress steps an open-model run judges one by one.
fn rungs(d: &LoadDoc, stages: &Stages, open: bool) -> Vec<Rung> {
    match &d.load.stress {
        Some(st) if open => search::staircase(st.from.0, st.step.0, st.until.0)
            .into_iter()
            .filter_map(|rate| {
                let label = stress_label(rate);
                let phase = stages.phases.iter().position(|p| *p == label)?;
                Some(Rung {
                    rate,
                    end: stages.phase_end(phase)?,
                    label,
                    phase,
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn stage_plans(stages: &[Stage], schedule: &Stages) -> Vec<StagePlan> {
    stages
        .iter()
        .zip(schedule.levels())
        .map(|(s, (duration_s, from, to, phase))| StagePlan {
            shape: match s {
                Stage::Ramp { .. } => "ramp",
                Stage::Hold { .. } => "hold",
            },
            from,
            to,
            duration_s,
            phase: schedule.phases[phase].clone(),
        })
        .collect()
}

fn journeys(d: &LoadDoc, compiled: &journey::Plan) -> Vec<JourneySummary> {
    d.journey
        .iter()
        .zip(&compiled.journeys)
        .zip(compiled.probabilities())
        .map(|((j, c), probability)| JourneySummary {
            name: c.name.clone(),
            weight: j.weight.as_ref().map_or(1.0, |w| w.value),
            probability,
            steps: c.steps.iter().map(|s| s.label.clone()).collect(),
        })
        .collect()
}

fn target(d: &LoadDoc) -> TargetPlan {
    let t = &d.target;
    match (&t.embedded, &t.url, &t.command) {
        (Some(e), _, _) => TargetPlan {
            kind: "embedded",
            value: e.value.to_string(),
        },
        (None, Some(u), _) => TargetPlan {
            kind: "url",
            value: u.value.clone(),
        },
        (None, None, Some(c)) => TargetPlan {
            kind: "command",
            value: c.value.join(" "),
        },
        // validation requires exactly one
        (None, None, None) => TargetPlan {
            kind: "none",
            value: String::new(),
        },
    }
}

impl LoadPlan {
    fn open(&self) -> bool {
        matches!(self.model, Model::Open { .. })
    }

    fn level(&self, v: f64) -> String {
        if self.open() {
            format!("{}/s", trim_float(v))
        } else {
            format!("{} users", trim_float(v))
        }
    }
}

impl fmt::Display for LoadPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dur = secs(self.duration_s);
        match &self.model {
            Model::Open {
                arrivals,
                max_in_flight,
                late_tolerance_s,
            } => writeln!(
                f,
                "open model: {arrivals} arrivals over {dur}, at most {max_in_flight} in flight (more queue), late after {}",
                crate::spec::units::Dimension::Time.format(*late_tolerance_s)
            )?,
            Model::Closed { users } => {
                writeln!(f, "closed model: up to {users} virtual users over {dur}")?
            }
        }
        for s in self
            .stages
            .iter()
            .filter(|s| !s.phase.starts_with("stress-"))
        {
            let what = match s.shape {
                "ramp" => format!(
                    "ramp {} → {} over {}",
                    self.level(s.from),
                    self.level(s.to),
                    secs(s.duration_s)
                ),
                _ => format!("hold {} for {}", self.level(s.to), secs(s.duration_s)),
            };
            writeln!(f, "  stage {what} [{}]", s.phase)?;
        }
        if let Some(rates) = &self.stress {
            let each = self
                .stages
                .iter()
                .find(|s| s.phase.starts_with("stress-"))
                .map_or(0.0, |s| s.duration_s);
            let rates: Vec<String> = rates.iter().map(|r| self.level(*r)).collect();
            writeln!(
                f,
                "  stress: {} for {} each, until an SLO breaks",
                rates.join(", "),
                secs(each)
            )?;
        }
        for j in &self.journeys {
            writeln!(
                f,
                "journey {} (weight {}, {:.0}%): {}",
                j.name,
                trim_float(j.weight),
                j.probability * 100.0,
                j.steps.join(" → ")
            )?;
        }
        write!(f, "target {} {}", self.target.kind, self.target.value)?;
        for d in &self.data {
            write!(
                f,
                "\ndata {}: {} ({}, {} rows)",
                d.name, d.csv, d.mode, d.rows
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(to: f64, over: f64) -> Stage {
        Stage::Ramp {
            ramp_to: Spanned::new(Level::Rate(to), Span::default()),
            over: SpecDuration(over),
            label: None,
        }
    }

    fn hold(rate: f64, for_: f64) -> Stage {
        Stage::Hold {
            hold: Spanned::new(Level::Rate(rate), Span::default()),
            for_: SpecDuration(for_),
            label: Some("steady".into()),
        }
    }

    #[test]
    fn expected_arrivals_of_a_ramp_and_a_hold() {
        let stages = Stages::new(&[ramp(20.0, 5.0), hold(20.0, 15.0)], false);
        // by hand: the ramp 0 → 20/s over 5 s is a triangle, the hold a rectangle
        let by_hand = 20u64
            .checked_mul(5)
            .and_then(|t| t.checked_div(2))
            .and_then(|r| r.checked_add(20u64.checked_mul(15)?))
            .unwrap();
        assert_eq!(by_hand, 350);
        assert_eq!(expected_arrivals(&stages), Ok(by_hand));
        // a second ramp up from the hold adds a trapezoid
        let stages = Stages::new(
            &[ramp(20.0, 5.0), hold(20.0, 15.0), ramp(40.0, 10.0)],
            false,
        );
        assert_eq!(expected_arrivals(&stages), Ok(350 + 300));
    }

    #[test]
    fn expected_arrivals_beyond_what_f64_counts_exactly_are_an_error() {
        let stages = Stages::new(&[hold(1e15, 1e6)], false);
        let err = expected_arrivals(&stages).unwrap_err();
        assert!(err.contains("at most 2^53"), "{err}");
        let stages = Stages::new(&[hold(f64::INFINITY, 1.0)], false);
        assert!(expected_arrivals(&stages).is_err());
    }

    #[test]
    fn stage_plans_resolve_ramps_from_the_previous_level() {
        let all = [ramp(20.0, 5.0), hold(20.0, 15.0)];
        let schedule = Stages::new(&all, false);
        let p = stage_plans(&all, &schedule);
        assert_eq!(
            (p[0].shape, p[0].from, p[0].to, p[0].phase.as_str()),
            ("ramp", 0.0, 20.0, "stage-1")
        );
        assert_eq!(
            (p[1].shape, p[1].from, p[1].duration_s, p[1].phase.as_str()),
            ("hold", 20.0, 15.0, "steady")
        );
    }
}
