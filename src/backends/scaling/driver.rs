//! One scaling step as a load run on the HTTP engine: closed users or open-model arrivals
//! (the load engine's schedule, one stage per second), journeys through the balancer, the
//! load engine's recorder, and a tally by completion time for the fit and the failover.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::backends::http::journey::Plan;
use crate::backends::http::recorder::{Key, Recorder, StatusLabel};
use crate::backends::http::schedule::Stages;
use crate::backends::http::{self, Pacing, Sink};
use crate::engine::RunContext;
use crate::engine::metrics::{HistogramEntry, Labels, Measurements, Selection};
use crate::spec::load::Level;

use super::balancer::{Balanced, Balancer, join};
use super::faults::Injection;
use super::step::{self};

/// Most in-flight requests the load generator ever holds.
pub(super) const MAX_USERS: u32 = 256;

/// `Driver::fault_at` before the fault (or without one).
pub(super) const NO_FAULT: u64 = u64::MAX;

/// Most distinct error messages kept per step.
pub(super) const MAX_ERROR_KINDS: usize = 20;

/// What a step counts besides its recorder: answers and errors per second of completion
/// (the throughput of the fit counts the answers within the step), the error messages, and
/// what ended after the step's fault.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) seconds: BTreeMap<u64, (u64, u64)>,
    /// Error messages and how often each happened.
    pub(super) errors: BTreeMap<String, u64>,
    /// Requests and errors that ended at or after the fault (a request in flight when the
    /// replica died counts, whenever it started).
    pub(super) after_fault: (u64, u64),
}

impl Tally {
    /// A request ended `at` seconds into the step; `fault` is when the fault was injected
    /// (seconds into the step), if it has been.
    pub(super) fn add(&mut self, at: f64, error: Option<&str>, fault: Option<f64>) {
        let after = fault.is_some_and(|f| at >= f);
        if after {
            self.after_fault.0 += 1;
            self.after_fault.1 += u64::from(error.is_some());
        }
        let s = self.seconds.entry(at.max(0.0) as u64).or_default();
        let Some(message) = error else {
            s.0 += 1;
            return;
        };
        s.1 += 1;
        let kinds = self.errors.len();
        match self.errors.get_mut(message) {
            Some(n) => *n += 1,
            None if kinds < MAX_ERROR_KINDS => {
                self.errors.insert(message.to_string(), 1);
            }
            None => {}
        }
    }
}

/// What one iteration of a virtual user sends.
pub(super) enum Work {
    /// One `GET path`.
    Get(String),
    /// One journey of the `profile` load spec.
    Journeys(Arc<Plan>),
}

impl Work {
    /// Journey and step names, as the recorder labels them.
    pub(super) fn names(&self) -> Vec<(String, Vec<String>)> {
        match self {
            Work::Get(path) => vec![("get".into(), vec![format!("GET {path}")])],
            Work::Journeys(plan) => plan
                .journeys
                .iter()
                .map(|j| {
                    (
                        j.name.clone(),
                        j.steps.iter().map(|s| s.label.clone()).collect(),
                    )
                })
                .collect(),
        }
    }
}

/// Everything the virtual users of one step share.
pub(super) struct Driver {
    pub(super) balancer: Arc<Balancer>,
    pub(super) client: reqwest::Client,
    pub(super) work: Arc<Work>,
    /// The load engine's recorder: latency from the intended time, service time, arrivals.
    pub(super) recorder: Mutex<Recorder>,
    /// The step's schedule: one stage (phase) per second.
    pub(super) stages: Stages,
    pub(super) tally: Mutex<Tally>,
    pub(super) t0: Instant,
    /// When the step's fault was injected, µs after `t0` ([`NO_FAULT`] until then).
    pub(super) fault_at: Arc<AtomicU64>,
    /// Journey iterations started over the whole sweep (`{{ iteration }}` stays unique).
    pub(super) iterations: Arc<AtomicU64>,
    /// Set at the end of the step: no new work, think times cut short.
    pub(super) stop: CancellationToken,
    /// The `unique` data source that ran out, if one did; cancels `ran_out`.
    pub(super) exhausted: Mutex<Option<String>>,
    pub(super) ran_out: CancellationToken,
}

impl Driver {
    /// The one `GET path` of an iteration finished now: `due` is when it was meant to
    /// start (`latency` counts from there), `sent` when it was sent.
    pub(super) fn record_get(
        &self,
        phase: usize,
        status: StatusLabel,
        due: Instant,
        sent: Instant,
        error: Option<String>,
    ) {
        let end = Instant::now();
        let times = Some((
            end.saturating_duration_since(due).as_secs_f64(),
            end.saturating_duration_since(sent).as_secs_f64(),
        ));
        let key = Key {
            journey: 0,
            step: 0,
            status,
            phase,
        };
        self.request(key, times, error.as_deref(), end);
    }

    pub(super) fn done(&self) -> bool {
        self.stop.is_cancelled() || self.ran_out.is_cancelled()
    }

    /// One iteration, meant to start at `due`, of phase (second) `phase`: a `GET` or one
    /// journey, run by the HTTP engine as in a load spec ([`http::run_journey`]). `pace`
    /// (closed users) sleeps the think time after the last step too. A request in flight
    /// at the step's end is still recorded (the failover timeline counts it).
    pub(super) async fn iterate(&self, due: Instant, phase: usize, pace: bool) {
        let plan = match &*self.work {
            Work::Get(path) => {
                let sent = Instant::now();
                let r = self
                    .balancer
                    .send(true, |base| Ok(self.client.get(join(base, path)?)))
                    .await;
                let (status, error) = match r {
                    Ok((code, _, _)) if code < 400 => (StatusLabel::Code(code), None),
                    Ok((code, _, _)) => (
                        StatusLabel::Code(code),
                        Some(format!("GET {path}: status {code}")),
                    ),
                    Err((status, e)) => (status, Some(format!("GET {path}: {e}"))),
                };
                return self.record_get(phase, status, due, sent, error);
            }
            Work::Journeys(plan) => plan,
        };
        let k = self.iterations.fetch_add(1, Ordering::Relaxed);
        let journey = plan.pick();
        let it = match plan.start(journey, k) {
            Ok(it) => it,
            Err(e) => {
                let mut x = self.exhausted.lock().unwrap_or_else(|e| e.into_inner());
                x.get_or_insert(e.0);
                self.ran_out.cancel();
                return;
            }
        };
        let pacing = Pacing {
            closed: pace,
            finish_in_flight: true,
            stop: &self.stop,
        };
        let mut transport = Balanced {
            balancer: &self.balancer,
            client: &self.client,
        };
        http::run_journey(plan, &mut transport, self, it, due, phase, pacing).await;
    }
}

impl Sink for Driver {
    /// Into the recorder, and into the tally by when it ended (for the fit's throughput and
    /// the failover counts).
    fn request(&self, key: Key, times: Option<(f64, f64)>, error: Option<&str>, end: Instant) {
        let at = end.saturating_duration_since(self.t0).as_secs_f64();
        self.recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .request(key, times, error, at);
        let fault = match self.fault_at.load(Ordering::Acquire) {
            NO_FAULT => None,
            us => Some(us as f64 / 1e6),
        };
        self.tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(at, error, fault);
    }
}

/// What one step measured.
pub(super) struct StepResult {
    /// Answers and errors within the step's time.
    pub(super) ok: u64,
    pub(super) errors: u64,
    pub(super) seconds: f64,
    /// What the recorder measured, with one phase per second (`second-N`).
    pub(super) m: Measurements,
    /// The phases of `m`, in order.
    pub(super) phases: Vec<String>,
    /// Error messages and how often each happened.
    pub(super) error_kinds: BTreeMap<String, u64>,
    pub(super) fault_at: Option<f64>,
    /// Why a faulted replica did not come back, if it did not.
    pub(super) fault_note: Option<String>,
    /// Requests and errors that ended at or after the fault.
    pub(super) after_fault: (u64, u64),
    /// Answers and errors per second of completion (all of them, in the step or after).
    pub(super) ended: BTreeMap<u64, (u64, u64)>,
    /// The `unique` data source that ran out during the step.
    pub(super) exhausted: Option<String>,
}

impl StepResult {
    /// The step's `latency`, all requests merged, labelled `labels`.
    pub(super) fn latency(&self, labels: Labels) -> Option<HistogramEntry> {
        match self.m.select("latency", &Labels::new(), false) {
            Selection::Histogram(hist, scale) => Some(HistogramEntry {
                metric: "latency".into(),
                labels,
                scale,
                hist,
            }),
            _ => None,
        }
    }
}

/// Arrivals of the open model at `rate`: each waits for its intended time, then for a free
/// slot among [`MAX_USERS`] in flight (queueing, so it may start late: `late`, and its
/// latency counts from the intended time), until the schedule or the step ends.
pub(super) async fn arrive(d: Arc<Driver>, cancel: CancellationToken) {
    let sem = Arc::new(tokio::sync::Semaphore::new(MAX_USERS as usize));
    let mut inner = Vec::new();
    let mut k = 0u64;
    while let Some((at, phase)) = d.stages.arrival(k) {
        if d.done() || cancel.is_cancelled() {
            break;
        }
        let intended = d.t0 + Duration::from_secs_f64(at);
        tokio::select! {
            () = crate::backends::http::wake::until(intended) => {}
            () = d.stop.cancelled() => break,
        }
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = d.stop.cancelled() => break,
        };
        let started = d.t0.elapsed().as_secs_f64();
        d.recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .arrival(phase, (started - at).max(0.0), started);
        k += 1;
        let d = d.clone();
        inner.push(tokio::spawn(async move {
            d.iterate(intended, phase, false).await;
            drop(permit);
        }));
    }
    for t in inner {
        let _ = t.await;
    }
}

/// Run closed load (`users` loops) or open load (`rate` iterations/s) for `secs`, or until
/// a `unique` data source runs out (the step's time then ends there).
#[allow(clippy::too_many_arguments)]
pub(super) async fn drive(
    balancer: &Arc<Balancer>,
    client: &reqwest::Client,
    work: &Arc<Work>,
    iterations: &Arc<AtomicU64>,
    users: u32,
    rate: Option<f64>,
    secs: f64,
    cx: &RunContext,
    fault: Option<Injection>,
) -> StepResult {
    let level = match rate {
        Some(r) => Level::Rate(r),
        None => Level::Users(u64::from(users)),
    };
    let stages = step::stages(level, secs);
    let t0 = Instant::now();
    let driver = Arc::new(Driver {
        balancer: balancer.clone(),
        client: client.clone(),
        work: work.clone(),
        recorder: Mutex::new(step::recorder(work.names(), &stages)),
        stages,
        tally: Mutex::new(Tally::default()),
        t0,
        fault_at: Arc::new(AtomicU64::new(NO_FAULT)),
        iterations: iterations.clone(),
        stop: CancellationToken::new(),
        exhausted: Mutex::new(None),
        ran_out: CancellationToken::new(),
    });
    let mut tasks = Vec::new();
    if rate.is_some() {
        tasks.push(tokio::spawn(arrive(driver.clone(), cx.cancel.clone())));
    } else {
        for _ in 0..users.clamp(1, MAX_USERS) {
            let d = driver.clone();
            tasks.push(tokio::spawn(async move {
                while !d.done() && t0.elapsed().as_secs_f64() < secs {
                    let now = Instant::now();
                    let phase = d.stages.phase_at(now.duration_since(t0).as_secs_f64());
                    d.iterate(now, phase, true).await;
                }
            }));
        }
    }
    let step_end = CancellationToken::new();
    let fault_task =
        fault.map(|f| tokio::spawn(f.run(t0, step_end.clone(), driver.fault_at.clone())));
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs_f64(secs)) => {}
        () = cx.cancel.cancelled() => {}
        () = driver.ran_out.cancelled() => {}
    }
    let seconds = t0.elapsed().as_secs_f64().min(secs).max(1e-3);
    driver.stop.cancel();
    step_end.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let (fault_at, fault_note) = match fault_task {
        Some(t) => t.await.unwrap_or((None, None)),
        None => (None, None),
    };
    let tally = std::mem::take(&mut *driver.tally.lock().unwrap_or_else(|e| e.into_inner()));
    // only answers within the step count (a request in flight at its end may answer later;
    // it stays in the recorder, in the second it arrived, for the failover timeline)
    let (ok, errors) = tally
        .seconds
        .iter()
        .filter(|&(&s, _)| (s as f64) < seconds)
        .fold((0, 0), |(o, e), (_, c)| (o + c.0, e + c.1));
    let recorder = {
        let mut r = driver.recorder.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *r, step::recorder(Vec::new(), &driver.stages))
    };
    let stages = &driver.stages;
    let m = recorder.finish(
        seconds,
        &stages.phase_durations(seconds),
        rate.is_some(),
        0.0,
        &|s| stages.scheduled_between(s as f64, s as f64 + 1.0),
    );
    let exhausted = driver
        .exhausted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    StepResult {
        ok,
        errors,
        seconds,
        m,
        phases: stages.phases.clone(),
        error_kinds: tally.errors,
        after_fault: tally.after_fault,
        ended: tally.seconds,
        fault_at,
        fault_note,
        exhausted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_after_a_fault_count_by_when_they_ended() {
        let mut t = Tally::default();
        // before the fault: neither counts
        t.add(0.4, None, None);
        t.add(0.9, Some("GET /: status 502"), None);
        // the fault fired at 1.02 s: a request that arrived in second 0 and failed at 1.03 s
        // counts, and so does a later answer; one that ended just before the fault does not
        t.add(1.01, None, Some(1.02));
        t.add(1.03, Some("GET /: status 502"), Some(1.02));
        t.add(2.5, None, Some(1.02));
        assert_eq!(t.after_fault, (2, 1));
        assert_eq!(t.seconds[&0], (1, 1));
        assert_eq!(t.seconds[&1], (1, 1));
        assert_eq!(t.errors["GET /: status 502"], 2);
    }
}
