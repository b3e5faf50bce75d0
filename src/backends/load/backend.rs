//! `backend = "goose"`: the load backend. Read top to bottom: compile the journeys, start
//! the target, run goose (open or closed model), sample monitors, hand back measurements.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::plan::{DEFAULT_LATE_TOLERANCE, LoadPlan, Model, Rung};
use super::runner::{self, Shared};
use super::target::{self, Monitor};
use crate::backends::http::journey;
use crate::backends::http::recorder::{Names, Recorder};
use crate::backends::http::schedule::Stages;
use crate::engine::metrics::{Labels, Measurements};
use crate::engine::search::{self, StepUp};
use crate::engine::verdict::{Slo, SloOrigin, observe};
use crate::engine::{Backend, BackendError, Plan, RunContext};
use crate::spec::catalog::Kind;
use crate::spec::diagnostic::Diagnostic;
use crate::spec::load::LoadDoc;
use crate::spec::{Body, Spec};

/// Default monitor interval.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// How long goose may take to stop after the killswitch before perfspec stops waiting.
const STOP_GRACE: Duration = Duration::from_secs(8);

/// The stage label whose end starts the recovery clock of a spike test.
pub const SPIKE_LABEL: &str = "spike";
/// How long latency and errors must stay within the objective to count as recovered.
const RECOVERY_HOLD: f64 = 3.0;
/// How long after a stress step ends its stragglers may still complete before it is judged.
const STEP_GRACE: f64 = 2.0;

pub struct Goose;

fn doc(spec: &Spec) -> Option<&LoadDoc> {
    match &spec.body {
        Body::Load(d) => Some(d),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Backend for Goose {
    fn kind(&self) -> Kind {
        Kind::Load
    }
    fn name(&self) -> &'static str {
        "goose"
    }
    fn describe(&self) -> &'static str {
        "HTTP load with goose: open (arrival rate) and closed (virtual users) models"
    }

    /// Journeys compile (templates, variables, captures, regexes), data files are readable,
    /// the stages resolve to a schedule: see [`super::plan`].
    fn plan(&self, spec: &Spec) -> Result<Plan, Vec<Diagnostic>> {
        let Some(d) = doc(spec) else {
            return Err(vec![crate::backends::not_this_kind(spec, "goose")]);
        };
        super::plan::plan(spec, d).map(Plan::new)
    }

    async fn run(
        &self,
        spec: &Spec,
        plan: &Plan,
        cx: &RunContext,
    ) -> Result<Measurements, BackendError> {
        let d = doc(spec).ok_or_else(|| {
            BackendError::Unavailable("the goose backend runs load specs only".into())
        })?;
        let lp = plan
            .get::<LoadPlan>()
            .ok_or_else(|| crate::engine::plan::wrong_plan("goose"))?;
        let (open, mut users, tolerance) = model_settings(lp, d);
        let shard = cx.shard;
        let stages = if open {
            lp.schedule.clone()
        } else {
            let striped = lp.schedule.clone().striped(shard);
            users = striped.peak_level() as usize;
            if users == 0 {
                return Err(BackendError::Unavailable(format!(
                    "shard {shard} has no virtual users: the spec's stages peak at {} users, fewer than the {} shards",
                    lp.schedule.peak_level(),
                    shard.count
                )));
            }
            striped
        };
        let rungs = &lp.rungs;
        let criteria = search::step_criteria(&spec.slos);
        let mut stress = StepUp::default();
        let names = names(lp);
        let mut notes = vec![describe_plan(&lp.compiled, &stages, open, users)];
        if !shard.is_whole() {
            notes.push(if open {
                let total = stages.total_arrivals();
                format!(
                    "shard {shard}: {} of the {total} arrivals (global indices {}, {}, …: one in every {}), at the global schedule's times; its SLOs are judged on this share, `perfspec merge` judges the whole",
                    shard.local_count(total),
                    shard.global(0),
                    shard.global(1),
                    shard.count
                )
            } else {
                format!(
                    "shard {shard}: {users} of the spec's {} virtual users at the peak (users striped); its SLOs are judged on this share, `perfspec merge` judges the whole",
                    lp.schedule.peak_level()
                )
            });
        }

        let mut target = target::start(&d.target, cx).await?;
        runner::silence_goose_logger();
        let monitor = start_monitor(d, &target, cx);
        let shared = Arc::new(Shared::new(
            lp.compiled.clone(),
            stages,
            open,
            Recorder::new(names.clone(), tolerance),
            shard,
        ));
        let attack = runner::attack(&target.base_url, &shared, users)
            .map_err(|e| BackendError::Unavailable(format!("cannot configure goose: {e}")))?;

        let cpu0 = (target::self_cpu_seconds(), Instant::now());
        let watch = Watch {
            shared: &shared,
            rungs,
            criteria: &criteria,
            open,
        };
        let driven = watch.drive(attack, &mut target, &mut stress, cx).await;
        if driven.abandoned {
            notes.push(
                "goose did not stop within 8s of the end of the load; its last users were abandoned"
                    .into(),
            );
        }
        let (goose_result, stopped_at, target_exit) =
            (driven.result, driven.stopped_at, driven.target_exit);
        let ended = stopped_at.unwrap_or_else(Instant::now);
        let cpu1 = (target::self_cpu_seconds(), Instant::now());
        goose::reset_killswitch();

        let t0 = shared.started();
        let elapsed = t0.map_or(0.0, |t| ended.saturating_duration_since(t).as_secs_f64());
        let recorder = {
            let mut r = shared.recorder.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *r, Recorder::new(names, tolerance))
        };
        let offset = t0.map_or(0.0, |t| {
            t.saturating_duration_since(cx.started).as_secs_f64()
        });
        let phase_seconds = shared.stages.phase_durations(elapsed);
        let stages = &shared.stages;
        if !rungs.is_empty() && stress.broke_at.is_none() {
            // steps that ran to their end since the last judgement (the run ends at the last)
            watch.judge_ended(&mut stress, elapsed, -1e-6);
            stress.interrupted = stress.broke_at.is_none() && stress.held.len() < rungs.len();
        }
        let spiked = stages.phases.iter().any(|p| p == SPIKE_LABEL);
        let seconds = if spiked {
            recorder.seconds(offset)
        } else {
            Vec::new()
        };
        // this shard's intended arrivals: its stripe, 1/N of the global schedule
        let share = 1.0 / f64::from(shard.count);
        let mut m = recorder.finish(elapsed, &phase_seconds, open, offset, &|s| {
            stages.scheduled_between(s as f64, s as f64 + 1.0) * share
        });
        if !rungs.is_empty() {
            if let Some(r) = stress.max_rate() {
                m.scalar("max_rate", Labels::new(), r);
            }
            notes.push(stress.describe());
        }
        if let Some(note) = spike_recovery(&mut m, &shared.stages, &spec.slos, offset, &seconds) {
            notes.push(note);
        }
        monitor.finish(&mut m).await;
        if let (Some(c0), Some(c1)) = (cpu0.0, cpu1.0) {
            let wall = cpu1.1.duration_since(cpu0.1).as_secs_f64();
            if wall > 0.0 {
                m.scalar("generator.cpu", Labels::new(), (c1 - c0) / wall);
            }
        }
        if open {
            let peak = shared
                .peak_in_flight
                .load(std::sync::atomic::Ordering::Relaxed);
            notes.push(format!(
                "peak arrivals in flight: {peak} of max_in_flight = {users}"
            ));
        }
        if let Some(name) = shared.exhausted.lock().ok().and_then(|e| e.clone()) {
            notes.push(format!(
                "the `unique` data source `{name}` ran out of rows: the load stopped early"
            ));
        }
        if cx.cancel.is_cancelled() {
            notes.push(format!(
                "stopped after {elapsed:.1}s of load: partial measurements"
            ));
        }
        m.notes.splice(0..0, notes);
        let target_exit = target_exit.or_else(|| target.exited());
        drop(target);
        if let Some(exit) = target_exit {
            m.notes.push(exit.clone());
            return Err(BackendError::Failed {
                message: exit,
                partial: Some(Box::new(m)),
            });
        }
        match goose_result {
            Some(Err(e)) if t0.is_none() => Err(BackendError::Unavailable(format!(
                "goose could not start: {e}"
            ))),
            Some(Err(e)) => Err(BackendError::Failed {
                message: format!("goose stopped with an error: {e}"),
                partial: Some(Box::new(m)),
            }),
            _ => Ok(m),
        }
    }
}

/// Open or closed, the most users (workers) goose runs, and the late tolerance.
fn model_settings(lp: &LoadPlan, d: &LoadDoc) -> (bool, usize, f64) {
    match lp.model {
        Model::Open {
            max_in_flight,
            late_tolerance_s,
            ..
        } => (true, max_in_flight, late_tolerance_s),
        Model::Closed { users } => (
            false,
            users,
            d.load
                .late_tolerance
                .map_or(DEFAULT_LATE_TOLERANCE, |t| t.0),
        ),
    }
}

/// The recorder's names: journeys, their steps, the stage labels.
fn names(lp: &LoadPlan) -> Names {
    let journeys = &lp.compiled.journeys;
    Names {
        journeys: journeys.iter().map(|j| j.name.clone()).collect(),
        steps: journeys
            .iter()
            .map(|j| j.steps.iter().map(|s| s.label.clone()).collect())
            .collect(),
        phases: lp.schedule.phases.clone(),
    }
}

/// The target's resource monitor (`[monitor]`, sampled every second by default).
fn start_monitor(d: &LoadDoc, target: &target::Target, cx: &RunContext) -> Monitor {
    let monitor = d.monitor.as_ref();
    let interval = monitor
        .and_then(|m| m.interval)
        .map_or(DEFAULT_INTERVAL, |i| {
            i.as_std().max(Duration::from_millis(100))
        });
    Monitor::start(
        target.pid(),
        monitor.and_then(|m| m.prometheus.clone()),
        &target.base_url,
        interval,
        cx.started,
    )
}

/// How goose's run ended.
struct Driven {
    /// goose's own result; `None` when its last users were abandoned.
    result: Option<Result<goose::metrics::GooseMetrics, goose::GooseError>>,
    abandoned: bool,
    /// When perfspec stopped the load, if it did.
    stopped_at: Option<Instant>,
    /// How the target exited during the run, if it did.
    target_exit: Option<String>,
}

/// What the run loop watches while goose runs.
struct Watch<'a> {
    shared: &'a Shared,
    rungs: &'a [Rung],
    criteria: &'a [Slo],
    open: bool,
}

impl Watch<'_> {
    /// Run `attack` to its end: every 50 ms stop it when the schedule is done or the run is
    /// cancelled, judge the stress steps that have ended (stop at the first that breaks),
    /// watch the target, and report progress every second.
    async fn drive(
        &self,
        attack: goose::GooseAttack,
        target: &mut target::Target,
        stress: &mut StepUp,
        cx: &RunContext,
    ) -> Driven {
        let shared = self.shared;
        let silenced = runner::StdoutSilenced::new();
        let exec = attack.execute();
        tokio::pin!(exec);
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut stopped_at: Option<Instant> = None;
        let mut target_exit: Option<String> = None;
        let mut last_progress = Instant::now();
        let mut prev = (Instant::now(), 0u64);
        let result = loop {
            tokio::select! {
                r = &mut exec => break Some(r),
                _ = tick.tick() => {}
            }
            if cx.cancel.is_cancelled() || shared.finished() {
                shared.stop.cancel();
            }
            if shared.stop.is_cancelled() {
                let since = *stopped_at.get_or_insert_with(Instant::now);
                // goose resets the killswitch when its run starts: pull it until goose stops
                goose::trigger_killswitch("perfspec: the load is complete");
                if since.elapsed() > STOP_GRACE {
                    break None;
                }
            }
            if let Some(t0) = shared.started()
                && stress.broke_at.is_none()
                && self.judge_ended(stress, t0.elapsed().as_secs_f64(), STEP_GRACE)
            {
                shared.stop.cancel();
            }
            if target_exit.is_none() {
                target_exit = target.exited();
            }
            if last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                cx.progress
                    .update(Some(shared.progress()), &progress_line(shared, &mut prev));
            }
        };
        drop(silenced);
        Driven {
            abandoned: result.is_none(),
            result,
            stopped_at,
            target_exit,
        }
    }

    /// Judge, in order, every stress step that ended `grace` seconds before `elapsed` and
    /// was not judged yet; true when one broke (it is the last judged).
    fn judge_ended(&self, stress: &mut StepUp, elapsed: f64, grace: f64) -> bool {
        while let Some(r) = self
            .rungs
            .get(stress.held.len())
            .filter(|r| elapsed >= r.end + grace)
        {
            let broken = judge_rung(self.shared, r, self.criteria, elapsed, self.open);
            if broken.is_empty() {
                stress.held.push(r.rate);
            } else {
                stress.broke_at = Some((r.rate, broken));
                return true;
            }
        }
        false
    }
}

/// Judge one stress step on a snapshot of what was measured so far.
fn judge_rung(
    shared: &Shared,
    r: &Rung,
    criteria: &[crate::engine::verdict::Slo],
    elapsed: f64,
    open: bool,
) -> Vec<String> {
    let snapshot = shared
        .recorder
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let m = snapshot.finish(
        elapsed,
        &shared.stages.phase_durations(elapsed),
        open,
        0.0,
        &|_| 0.0,
    );
    debug_assert_eq!(shared.stages.phases[r.phase], r.label);
    search::judge_step(criteria, &m, &r.label)
}

/// A stage labelled `spike`: how long after it ended every second held the recovery SLOs
/// again and kept holding them for 3 s (`recovery_time`). Each second (by completion) is
/// judged with the evaluator on its own measurements, the SLOs as written (operator,
/// quantile, threshold); see [`recovery_criteria`] for which SLOs and the defaults.
fn spike_recovery(
    m: &mut Measurements,
    stages: &Stages,
    slos: &[Slo],
    offset: f64,
    seconds: &[(f64, Measurements)],
) -> Option<String> {
    let phase = stages.phases.iter().position(|p| p == SPIKE_LABEL)?;
    let end = offset + stages.phase_end(phase)?;
    let start = end - stages.phase_durations(f64::INFINITY)[phase];
    let Some(criteria) = recovery_criteria(slos, seconds, start) else {
        return Some(
            "spike: no latency SLO and no second before the spike to set the default objective: no recovery_time".into(),
        );
    };
    let good: Vec<(f64, f64)> = seconds
        .iter()
        .map(|(t, sm)| (*t, f64::from(search::judge(&criteria, sm).is_empty())))
        .collect();
    let fmt = |v: f64| crate::spec::units::Dimension::Time.format(v);
    let texts: Vec<String> = criteria.iter().map(|s| format!("`{}`", s.text)).collect();
    let texts = texts.join(" and ");
    match search::recovery_time(&good, end, RECOVERY_HOLD, |v| v > 0.5) {
        Some(r) => {
            m.scalar("recovery_time", Labels::new(), r);
            Some(format!(
                "spike: {texts} held again every second {} after the spike ended",
                fmt(r)
            ))
        }
        None => Some(format!(
            "spike: {texts} did not hold again for {RECOVERY_HOLD:.0}s before the run ended: no recovery_time"
        )),
    }
}

/// The default error objective of spike recovery when the spec has no `error_rate` SLO.
pub const DEFAULT_RECOVERY_ERROR_SLO: &str = "error_rate < 1%";

/// The SLOs a second must hold to count as recovered: the spec's SLOs on `latency` and on
/// `error_rate` without label selectors or `baseline` (for each metric, those restricted to
/// a phase count only when no unrestricted one exists: the objective is the same, the phase
/// only says where it is judged). Without a latency SLO: `p95(latency) <=` twice the worst
/// p95 of a second before the spike (`None` when there is no such second); without an
/// error one, [`DEFAULT_RECOVERY_ERROR_SLO`].
fn recovery_criteria(
    slos: &[Slo],
    seconds: &[(f64, Measurements)],
    start: f64,
) -> Option<Vec<Slo>> {
    let pick = |metric: &str| -> Vec<Slo> {
        let plain = |s: &&Slo| {
            s.expr.metric == metric && s.expr.selectors.is_empty() && !s.expr.uses_baseline()
        };
        let free: Vec<Slo> = slos
            .iter()
            .filter(plain)
            .filter(|s| s.phase.is_none())
            .cloned()
            .collect();
        if !free.is_empty() {
            return free;
        }
        slos.iter()
            .filter(plain)
            .map(|s| Slo {
                phase: None,
                ..s.clone()
            })
            .collect()
    };
    let default = |text: &str| {
        Slo::compile(text, Kind::Load).ok().map(|mut s| {
            s.origin = SloOrigin::Default;
            s
        })
    };
    let mut criteria = pick("latency");
    if criteria.is_empty() {
        let p95 = Slo::compile("p95(latency) < 1s", Kind::Load).ok()?;
        let worst = seconds
            .iter()
            .filter(|(t, _)| *t < start)
            .filter_map(|(_, sm)| observe(&p95.expr, None, sm))
            .reduce(f64::max)?;
        criteria.push(default(&format!("p95(latency) <= {:.3}ms", 2e3 * worst))?);
    }
    let errors = pick("error_rate");
    if errors.is_empty() {
        criteria.push(default(DEFAULT_RECOVERY_ERROR_SLO)?);
    } else {
        criteria.extend(errors);
    }
    Some(criteria)
}

fn describe_plan(plan: &journey::Plan, stages: &Stages, open: bool, users: usize) -> String {
    let weights: Vec<String> = plan
        .journeys
        .iter()
        .zip(plan.probabilities())
        .map(|(j, p)| format!("{} {:.0}%", j.name, p * 100.0))
        .collect();
    if open {
        format!(
            "open model: {} arrivals over {:.0}s, at most {users} in flight (more queue and turn late); journeys: {}",
            stages.total_arrivals(),
            stages.duration(),
            weights.join(", ")
        )
    } else {
        format!(
            "closed model: up to {users} virtual users over {:.0}s; latency is measured from the actual send, so nothing is late by construction; journeys: {}",
            stages.duration(),
            weights.join(", ")
        )
    }
}

/// The progress line of a load run: the stage, the completion rate since the last line,
/// requests, errors and p95 so far. `prev` is the previous line's time and request count.
fn progress_line(shared: &Shared, prev: &mut (Instant, u64)) -> String {
    let ((requests, errors), p95) = {
        let r = shared.recorder.lock().unwrap_or_else(|e| e.into_inner());
        (r.totals(), r.p95())
    };
    let p95 = p95.map_or_else(
        || "-".to_string(),
        |p| crate::spec::units::Dimension::Time.format(p),
    );
    let now = Instant::now();
    let dt = now.duration_since(prev.0).as_secs_f64();
    let rate = if dt > 0.0 {
        requests.saturating_sub(prev.1) as f64 / dt
    } else {
        0.0
    };
    *prev = (now, requests);
    let stage = shared.started().map(|t0| {
        let phase = shared.stages.phase_at(t0.elapsed().as_secs_f64());
        shared.stages.phases.get(phase).cloned().unwrap_or_default()
    });
    let stage = stage.map(|s| format!("{s}: ")).unwrap_or_default();
    format!("{stage}{rate:.0} req/s, {requests} requests, {errors} errors, p95 {p95}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::catalog;

    /// Every scalar and histogram the backend emits is in the load catalog, with its labels.
    #[test]
    fn emitted_metrics_are_in_the_catalog() {
        use crate::backends::http::recorder::{Key, StatusLabel};
        let names = Names {
            journeys: vec!["j".into()],
            steps: vec![vec!["s".into()]],
            phases: vec!["p".into()],
        };
        let mut r = Recorder::new(names, 0.01);
        r.arrival(0, 0.5, 0.1);
        r.request(
            Key {
                journey: 0,
                step: 0,
                status: StatusLabel::Code(200),
                phase: 0,
            },
            Some((0.01, 0.01)),
            None,
            0.2,
        );
        let mut m = r.finish(1.0, &[1.0], true, 0.0, &|_| 1.0);
        m.scalar("target.cpu", Labels::new(), 0.1);
        m.scalar("generator.cpu", Labels::new(), 0.1);
        let emitted = m
            .scalars
            .iter()
            .map(|s| (&s.metric, &s.labels))
            .chain(m.histograms.iter().map(|h| (&h.metric, &h.labels)));
        for (metric, labels) in emitted {
            let def = catalog::lookup(Kind::Load, metric)
                .unwrap_or_else(|| panic!("{metric} is not in the catalog"));
            for l in labels.keys() {
                assert!(catalog::allows_label(def, l), "{metric} has label {l}");
            }
        }
    }
}
