//! Replica and thread sweeps: N replicas — `perfspec demo serve` sharing ONE database tier
//! (`perfspec demo db`, a small bounded pool), or the user's `command` with `{port}` and
//! `{threads}` — optionally pinned to `cpus` CPUs each; load spread over the replicas by the
//! client (round robin / least connections, with a passive down-mark and one retry on
//! connection errors and 5xx) or by a real nginx; faults (SIGKILL / SIGSTOP) with restore;
//! and the USL fit of (sweep value, throughput).
//!
//! Each iteration of a virtual user is one `GET path`, or one journey of the load spec named
//! by `profile` (picked by weight; every step is a request through the balancer, with the
//! journey's templates, data, captures, expectations and think times). Throughput counts
//! successful requests per second; a request that fails its expectations is an error. A
//! step is recorded and scheduled by the load engine (see [`super::step`]) and its rungs
//! are judged by the evaluator against the step SLOs.
//!
//! The pieces, each in its file: `replicas` (start, health, the shared database),
//! `balancer` (the client-side choice and the HTTP engine's transport), `driver` (one step as
//! a load run), `faults` (kill/hang, restore, `failover.*`); this file runs the steps.
//!
//! The shop is made sleep-bound (`--latency *=20ms`) and the database pool small (4
//! connections of 5ms queries), so on a 2-core machine a horizontal sweep measures the
//! architecture: throughput grows with replicas until the shared database saturates.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backends::load::target;
use crate::engine::metrics::{HistogramEntry, Labels, Measurements, labels};
use crate::engine::verdict::Slo;
use crate::engine::{BackendError, RunContext};
use crate::process;
use crate::spec::scaling::{BalancerKind, LoadMode, Service};

use super::balancer::Balancer;
use super::driver::{MAX_USERS, StepResult, Work, drive};
use super::faults::{Injection, failover};
use super::measurements::Point;
use super::nginx::Nginx;
use super::plan::{Axis, SweepPlan};
use super::replicas::{LaunchKind, Launcher, Replica, start_db, unavailable, wait_healthy};
use super::step::{self, Judgement};

/// Per-request timeout of the load generator (a hung replica shows up as timeouts).
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);

/// Most rungs of a rate search per step.
const MAX_RUNGS: usize = 8;

/// Everything one sweep spec reports: the sweep of `plan`, with the spec's balancer and faults.
pub async fn run(plan: &SweepPlan, cx: &RunContext) -> Result<Measurements, BackendError> {
    let label = plan.axis.label();
    let horizontal = plan.axis == Axis::Replicas;
    let values: Vec<u32> = plan.steps.iter().map(|s| s.value).collect();
    let cpus: Option<Vec<u32>> = plan.steps.iter().map(|s| s.cpus).collect();
    let service = &plan.service_spec;
    let balancer = plan.balancer_spec.as_ref();
    let nginx_kind = balancer.is_some_and(|b| b.kind == BalancerKind::Nginx);
    let nginx_bin = if nginx_kind && horizontal {
        Some(super::nginx::find().map_err(unavailable)?)
    } else {
        None
    };
    let load = &plan.load_spec;
    let work = Arc::new(work(plan));
    let ready_path = ready_path(service);
    let mode = load.mode.unwrap_or(LoadMode::MaxRate);
    // validation keeps `step_duration` within its range: no clamp here
    let step_secs = load.step_secs();
    let per_unit = load.concurrency.as_ref().map_or(4, |c| c.value);
    let criteria = step::criteria(load).map_err(unavailable)?;
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(MAX_USERS as usize)
        .build()
        .map_err(|e| unavailable(e.to_string()))?;

    let (_db, kind) = launch_kind(service, &ready_path, cx).await?;
    let base_threads = service.threads.as_ref().map_or(2, |t| t.value);

    let mut acc = Sweep::default();
    let iterations = Arc::new(AtomicU64::new(0));
    for (step_index, &v) in values.iter().enumerate() {
        if cx.cancel.is_cancelled() {
            acc.m
                .notes
                .push("interrupted: the sweep stopped early".into());
            break;
        }
        let (n, threads) = if horizontal {
            (v, base_threads)
        } else {
            (1, v)
        };
        let launcher = Launcher {
            kind: kind.clone(),
            threads,
            cpus: cpus.as_ref().and_then(|c| c.get(step_index).copied()),
        };
        let step_label = labels(&[(label, &v.to_string())]);
        let outcome = run_step(
            StepSetup {
                label,
                v,
                n,
                launcher,
                horizontal,
                nginx_bin: nginx_bin.as_deref(),
                ready_path: &ready_path,
                client: &client,
                work: &work,
                iterations: &iterations,
                balancer,
                fault: plan.steps[step_index].fault.as_ref(),
            },
            load,
            mode,
            step_secs,
            per_unit,
            &criteria,
            &mut acc.m,
            cx,
        )
        .await;
        let result = match outcome {
            Ok(Some(r)) => r,
            Ok(None) => {
                acc.m.notes.push(format!(
                    "{label}={v}: not even the lowest rate held the step SLOs ({}): no throughput point for this step",
                    step::texts(&criteria)
                ));
                continue;
            }
            Err(e) if acc.points.is_empty() => return Err(e),
            Err(e) => {
                // keep what the earlier steps measured
                let message = format!("{label}={v}: {e}");
                let mut partial = acc.finish(label, cx);
                partial.notes.push(message.clone());
                return Err(BackendError::Failed {
                    message,
                    partial: Some(Box::new(partial)),
                });
            }
        };
        if acc.add(label, v, step_label, result) {
            break;
        }
    }
    if mode == LoadMode::Concurrency {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        acc.m.notes.extend(super::fit_metrics::offered_load_warning(
            &acc.points,
            label,
            per_unit,
            cpus,
        ));
    }
    Ok(acc.finish(label, cx))
}

/// What one iteration of a virtual user sends: the `profile`'s journeys, or one `GET`.
fn work(plan: &SweepPlan) -> Work {
    match &plan.profile {
        Some(journeys) => Work::Journeys(journeys.clone()),
        None => Work::Get(match (&plan.load_spec.path, &plan.service_spec.command) {
            (Some(p), _) => p.value.clone(),
            (None, Some(_)) => "/".into(),
            (None, None) => "/products".into(),
        }),
    }
}

/// Where a replica answers when it is ready.
fn ready_path(service: &Service) -> String {
    match &service.command {
        Some(_) => service
            .ready
            .clone()
            .unwrap_or_else(|| target::DEFAULT_READY.to_string()),
        None => "/health".to_string(),
    }
}

/// How replicas start: the user's command, or the shop with its shared database tier,
/// started here (held by the caller for the whole sweep).
async fn launch_kind(
    service: &Service,
    ready_path: &str,
    cx: &RunContext,
) -> Result<(Option<process::Child>, LaunchKind), BackendError> {
    match &service.command {
        // a user's command brings its own backends
        Some(argv) => Ok((
            None,
            LaunchKind::Command {
                argv: argv.value.clone(),
                env: service.env.clone(),
                ready: ready_path.to_string(),
                ready_timeout: Duration::from_secs_f64(
                    service
                        .ready_timeout
                        .map_or(target::DEFAULT_READY_TIMEOUT, |d| d.0),
                ),
            },
        )),
        None => {
            cx.progress.update(None, "starting the database tier");
            let (db, db_port) = tokio::task::spawn_blocking(start_db)
                .await
                .map_err(|e| unavailable(e.to_string()))??;
            Ok((Some(db), LaunchKind::Shop { db_port }))
        }
    }
}

/// What the steps of a sweep measured so far.
#[derive(Default)]
struct Sweep {
    m: Measurements,
    points: Vec<Point>,
    latencies: Vec<HistogramEntry>,
    /// (ok, errors) over the sweep.
    totals: (u64, u64),
}

impl Sweep {
    /// Add what step `label=v` measured: its errors, its throughput point and latency.
    /// True when a `unique` data source ran out (later steps are not run).
    fn add(&mut self, label: &str, v: u32, step_label: Labels, result: StepResult) -> bool {
        let m = &mut self.m;
        for (msg, count) in &result.error_kinds {
            m.error_samples_n(msg, step_label.clone(), *count);
        }
        m.scalar("errors", step_label.clone(), result.errors as f64);
        m.scalar(
            "error_rate",
            step_label.clone(),
            result.errors as f64 / (result.ok + result.errors).max(1) as f64,
        );
        self.totals.0 += result.ok;
        self.totals.1 += result.errors;
        if let Some(source) = &result.exhausted {
            m.notes.push(format!(
                "{label}={v}: the data source `{source}` (mode unique) ran out of rows after {:.1}s: the step ended there, and later steps were not run",
                result.seconds
            ));
        }
        let throughput = result.ok as f64 / result.seconds;
        self.points.push(Point {
            concurrency: v,
            throughput,
        });
        self.latencies.extend(result.latency(step_label));
        m.notes.push(format!(
            "{label}={v}: {:.1} req/s ({} ok, {} errors in {:.1}s)",
            throughput, result.ok, result.errors, result.seconds
        ));
        result.exhausted.is_some()
    }

    /// The fit of the measured points, the latency histograms and what the steps recorded.
    fn finish(self, label: &str, cx: &RunContext) -> Measurements {
        let Sweep {
            mut m,
            points,
            latencies,
            totals: (ok, errors),
        } = self;
        if ok + errors > 0 {
            m.scalar(
                "error_rate",
                Labels::new(),
                errors as f64 / (ok + errors) as f64,
            );
        }
        let mut fit = super::fit_metrics::measure_labelled(&points, label);
        fit.histograms.extend(latencies);
        fit.scalars.append(&mut m.scalars);
        fit.series.append(&mut m.series);
        fit.notes.append(&mut m.notes);
        fit.error_samples.append(&mut m.error_samples);
        fit.elapsed_s = cx.elapsed();
        fit
    }
}

/// What one sweep step needs besides the load settings.
struct StepSetup<'a> {
    label: &'a str,
    v: u32,
    /// Replicas at this step.
    n: u32,
    launcher: Launcher,
    horizontal: bool,
    nginx_bin: Option<&'a std::path::Path>,
    ready_path: &'a str,
    client: &'a reqwest::Client,
    work: &'a Arc<Work>,
    iterations: &'a Arc<AtomicU64>,
    balancer: Option<&'a crate::spec::scaling::Balancer>,
    fault: Option<&'a super::plan::FaultPlan>,
}

/// A step's replicas (all healthy), the nginx in front of them if the spec has one, and the
/// URLs the load goes to (nginx's, or every replica's).
async fn start_replicas(
    s: &StepSetup<'_>,
    cx: &RunContext,
) -> Result<(Arc<Mutex<Vec<Replica>>>, Option<Nginx>, Vec<String>), BackendError> {
    let (label, v, n) = (s.label, s.v, s.n);
    let pinned = s
        .launcher
        .cpus
        .map(|c| format!(", {c} CPU(s) each"))
        .unwrap_or_default();
    cx.progress.update(
        None,
        &format!("{label}={v}: starting {n} replica(s){pinned}"),
    );
    let mut reps = Vec::new();
    for i in 0..n {
        let r = s
            .launcher
            .start(i as usize, None, cx)
            .await
            .map_err(|e| unavailable(format!("replica {} of {n} did not start: {e}", i + 1)))?;
        reps.push(r);
    }
    for r in &reps {
        wait_healthy(&r.url(), s.ready_path, cx).await?;
    }
    let urls: Vec<String> = reps.iter().map(Replica::url).collect();
    let replicas = Arc::new(Mutex::new(reps));
    let nginx = match s.nginx_bin {
        Some(bin) => {
            let b = s.balancer.ok_or_else(|| unavailable("no [balancer]"))?;
            let ng = super::nginx::start(bin, &urls, b)
                .await
                .map_err(unavailable)?;
            wait_healthy(&ng.url, s.ready_path, cx).await?;
            Some(ng)
        }
        None => None,
    };
    let targets = match &nginx {
        Some(ng) => vec![ng.url.clone()],
        None => urls,
    };
    Ok((replicas, nginx, targets))
}

/// Start the step's replicas (and nginx), run its load (and fault), stop them.
#[allow(clippy::too_many_arguments)]
async fn run_step(
    s: StepSetup<'_>,
    load: &crate::spec::scaling::ScalingLoad,
    mode: LoadMode,
    step_secs: f64,
    per_unit: u32,
    criteria: &[Slo],
    m: &mut Measurements,
    cx: &RunContext,
) -> Result<Option<StepResult>, BackendError> {
    let (label, v, n) = (s.label, s.v, s.n);
    let (replicas, nginx, targets) = start_replicas(&s, cx).await?;
    let balancer = s.balancer;
    let bal = Arc::new(Balancer::new(targets, balancer));
    let plan = |fault: Option<&super::plan::FaultPlan>| {
        fault.map(|f| Injection {
            at: f.at_s,
            action: f.kind,
            restore_after: f.restore_after_s,
            replicas: replicas.clone(),
            index: if s.horizontal {
                (f.replica.max(1) - 1) as usize
            } else {
                0
            },
            launcher: s.launcher.clone(),
            cx: cx.clone(),
        })
    };
    let (client, work) = (s.client, s.work);
    let users = per_unit.saturating_mul(n).min(MAX_USERS);
    if mode == LoadMode::Concurrency && per_unit.saturating_mul(n) > MAX_USERS {
        m.notes.push(format!(
            "{label}={v}: {per_unit} users per replica × {n} replicas is more than the {MAX_USERS} users perfspec runs: the step ran {MAX_USERS}"
        ));
    }
    let result = match mode {
        LoadMode::Concurrency => {
            cx.progress.update(
                None,
                &format!("{label}={v}: {users} users for {step_secs}s"),
            );
            let r = drive(
                &bal,
                client,
                work,
                s.iterations,
                users,
                None,
                step_secs,
                cx,
                plan(s.fault),
            )
            .await;
            if s.fault.is_some() {
                failover(m, &r, criteria);
            }
            Some(r)
        }
        LoadMode::MaxRate => {
            let top = load.max_rate.map_or(2000.0, |r| r.0);
            let rung_secs = rung_secs(step_secs);
            let mut best: Option<StepResult> = None;
            for rate in step::rungs(top, MAX_RUNGS) {
                if cx.cancel.is_cancelled() {
                    break;
                }
                cx.progress
                    .update(None, &format!("{label}={v}: {rate:.0}/s"));
                let r = drive(
                    &bal,
                    client,
                    work,
                    s.iterations,
                    0,
                    Some(rate),
                    rung_secs,
                    cx,
                    None,
                )
                .await;
                let j: Judgement = step::judge(criteria, &r.m, None);
                m.notes.push(format!(
                    "{label}={v}: {rate:.0}/s offered: {} ok, {} errors: {}",
                    r.ok,
                    r.errors,
                    step::describe(&j)
                ));
                if !j.held {
                    // what broke it is worth seeing
                    let l = labels(&[(label, &v.to_string())]);
                    for (msg, count) in &r.error_kinds {
                        m.error_samples_n(msg, l.clone(), *count);
                    }
                    // let the backlog of the broken rung drain before anything else runs
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
                if rate >= top {
                    m.notes.push(format!(
                        "{label}={v}: the highest rate tried ({top:.0}/s, `max_rate`) held: the capacity may be higher; raise `max_rate`"
                    ));
                }
                best = Some(r);
            }
            // the fault runs for a full step at half the sustained rate: at the limit
            // any disturbance would overload the survivors
            if let Some(f) = plan(s.fault) {
                let rate = 0.5
                    * best
                        .as_ref()
                        .map_or(top / MAX_RUNGS as f64, |b| b.ok as f64 / b.seconds);
                let r = drive(
                    &bal,
                    client,
                    work,
                    s.iterations,
                    0,
                    Some(rate),
                    step_secs,
                    cx,
                    Some(f),
                )
                .await;
                failover(m, &r, criteria);
            }
            best
        }
    };
    // nginx first, then the replicas
    drop(nginx);
    drop(replicas);
    Ok(result)
}

/// A rung of the rate search lasts a third of the step (at least one second).
fn rung_secs(step_secs: f64) -> f64 {
    (step_secs / 3.0).max(1.0)
}
