//! `kind = "cache"`, `backend = "native"`: perfspec's own cache harness. N simulated app
//! instances, each with its own in-process L1 (moka or stretto), optionally sharing a Redis
//! L2 (a real `redis-server` perfspec starts, or a URL), in front of a versioned origin with
//! a latency distribution. Concurrent tokio workers execute one seeded operation stream;
//! each sweep value is one run with the same stream. Events (restarts, killing Redis) fire at
//! a fraction of the operations or at a time.

//!
//! This file is the orchestration, top to bottom; the pieces live beside it:
//! `topology` (Redis and each instance's tiers), `invalidation` (pub/sub and tracking
//! listeners), `events` (restarts, killing Redis), `analysis` (what a run measured).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::analysis::{Finished, Samples};
use super::events;
use super::instance::Shared;
use super::invalidation;
use super::memcached::cluster::McCluster;
use super::origin::Origin;
use super::plan::{self, Plan};
use super::planned::CachePlan;
use super::redis_server::{RedisCluster, RedisServer};
use super::run_state::{Feed, Memcached, Point, Run, lock};
use super::stats::{Latencies, sweep_labels};
use super::topology::{self, Wiring};
use super::workload::Generator;
use crate::engine::metrics::Measurements;
use crate::engine::{Backend, BackendError, Plan as EnginePlan, RunContext};
use crate::spec::cache::Invalidation;
use crate::spec::catalog::Kind;
use crate::spec::diagnostic::Diagnostic;
use crate::spec::{Body, Spec};

/// How often resident sizes are sampled (for the peak) and series points are taken.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const SAMPLES_PER_POINT: u32 = 10;

pub struct Native;

#[async_trait::async_trait]
impl Backend for Native {
    fn kind(&self) -> Kind {
        Kind::Cache
    }
    fn name(&self) -> &'static str {
        "native"
    }
    fn describe(&self) -> &'static str {
        "in-process (moka, stretto), Redis and two-tier caches over a versioned origin, with LRU and Bélády bounds"
    }
    /// The capability checks, then one resolved run per sweep value.
    fn plan(&self, spec: &Spec) -> Result<EnginePlan, Vec<Diagnostic>> {
        let Body::Cache(doc) = &spec.body else {
            return Err(vec![crate::backends::not_this_kind(spec, "native")]);
        };
        EnginePlan::after_checks(plan::check(spec), || {
            Ok(EnginePlan::new(CachePlan::new(plan::sweep(doc))))
        })
    }
    async fn run(
        &self,
        _spec: &Spec,
        planned: &EnginePlan,
        cx: &RunContext,
    ) -> Result<Measurements, BackendError> {
        let sweep = &planned
            .get::<CachePlan>()
            .ok_or_else(|| crate::engine::plan::wrong_plan("native"))?
            .runs_planned;
        let mut m = Measurements::default();
        let mut notes: Vec<String> = sweep.note.iter().cloned().collect();
        let (server, cluster) = topology::start_redis(&sweep.points[0].1).await?;
        let server = server.map(|s| Arc::new(tokio::sync::Mutex::new(s)));
        let cluster_urls = cluster.as_ref().map(RedisCluster::urls);
        let memcached = super::memcached::cluster::start(&sweep.points[0].1, &cx.out_dir).await?;
        let total = sweep.points.len();
        for (i, (value, plan)) in sweep.points.iter().enumerate() {
            let point = Point {
                index: i,
                total,
                label: sweep_labels(sweep.label, value),
                representative: i == sweep.representative,
            };
            let outcome = run_point(
                plan,
                &point,
                server.clone(),
                cluster_urls.clone(),
                memcached.clone(),
                cx,
                &mut m,
            )
            .await;
            match outcome {
                Ok(n) => {
                    notes.extend(n);
                    if cx.cancel.is_cancelled() {
                        let which = if total > 1 {
                            format!(" during sweep run {} of {total} ({})", i + 1, point.name())
                        } else {
                            String::new()
                        };
                        notes.push(format!(
                            "interrupted{which}: the metrics cover the operations done before"
                        ));
                        break;
                    }
                }
                // a failure to start the first run is "could not start"; later, keep what was measured
                Err(e) if i == 0 => return Err(e),
                Err(e) => {
                    notes.extend(std::mem::take(&mut m.notes));
                    m.notes = dedup(notes);
                    return Err(BackendError::Failed {
                        message: e.to_string(),
                        partial: Some(Box::new(m)),
                    });
                }
            }
        }
        if let Some(s) = server {
            s.lock().await.kill();
        }
        drop(cluster);
        drop(memcached);
        m.notes.extend(dedup(notes));
        Ok(m)
    }
}

fn dedup(notes: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in notes {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// One run (one sweep value). Returns notes for the report.
async fn run_point(
    plan: &Plan,
    point: &Point,
    server: Option<Arc<tokio::sync::Mutex<RedisServer>>>,
    cluster_urls: Option<Vec<String>>,
    memcached: Option<Arc<McCluster>>,
    cx: &RunContext,
    m: &mut Measurements,
) -> Result<Vec<String>, BackendError> {
    let mut notes = Vec::new();
    let redis = topology::redis_target(
        plan,
        point.index,
        server.as_ref(),
        cluster_urls.as_ref(),
        cx.started.elapsed().as_nanos(),
    )
    .await?;
    let wiring = Wiring {
        pubsub: plan.invalidation == Invalidation::Pubsub && redis.is_some(),
        tracking: plan.invalidation == Invalidation::Tracking && redis.is_some(),
    };
    if !plan.latency.1.is_zero() {
        notes.push("the origin waits on the tokio timer, which ends each wait on a millisecond tick: a wait lasts up to about 1 ms longer than drawn (latency{tier=origin} shows what was served)".into());
    }
    let t0 = Instant::now();
    let trace = super::workload::TraceSpec {
        seed: cx.repeat.seed(plan.trace.seed),
        ..plan.trace.clone()
    };
    let shared = Shared {
        origin: Origin::new(plan.trace.keys, plan.latency, plan.value_size, trace.seed),
        read_through: plan.read_through,
        write_invalidate: plan.write_invalidate,
        channel: wiring
            .pubsub
            .then(|| format!("perfspec:inv:{}:{}", std::process::id(), point.index)),
        t0,
    };
    let restarted = events::restarted(plan);
    let (mut instances, pushes) =
        topology::connect_instances(plan, redis.as_ref(), &shared, wiring, &restarted).await?;
    let memcached = match memcached {
        Some(cluster) => {
            let unique = cx.started.elapsed().as_nanos();
            let tier = cluster.tier(point.index, unique, t0).await?;
            for inst in &mut instances {
                inst.l2 = Some(tier.clone() as Arc<dyn super::tiers::Tier>);
            }
            Some(Memcached {
                cluster,
                tier,
                events: Mutex::new(Vec::new()),
            })
        }
        None => None,
    };
    let (due, timed_events) = events::schedule(plan);
    let run = Arc::new(Run {
        shared,
        instances,
        feed: Mutex::new(Feed {
            generator: Generator::new(trace),
            limit: plan.ops,
            due: due.into(),
        }),
        stop: AtomicBool::new(false),
        server: server.clone(),
        memcached,
        done: CancellationToken::new(),
        fired: Mutex::new(Vec::new()),
    });
    let prefix = redis.as_ref().map(|r| r.prefix.clone()).unwrap_or_default();
    invalidation::listen(&run, pushes, &prefix, wiring.tracking);
    events::spawn_timed(&run, timed_events);
    // stop on cancellation
    {
        let (run, cancel) = (run.clone(), cx.cancel.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => run.stop.store(true, Ordering::Relaxed),
                () = run.done.cancelled() => {}
            }
        });
    }
    let (samples, latencies) = drive(&run, plan, point, cx).await;
    let elapsed = t0.elapsed().as_secs_f64();
    run.stop.store(true, Ordering::Relaxed);
    let mut samples = samples;
    samples.take(&run, cx.started, true);
    run.done.cancel();
    let finished = Finished {
        plan,
        point,
        run: &run,
        redis: redis.as_ref(),
        samples,
        latencies,
        elapsed,
    };
    notes.extend(finished.measure(m).await);
    Ok(notes)
}

/// Run the workers to the end of the operations (or the time), sampling resident sizes
/// and counters meanwhile and reporting progress.
async fn drive(
    run: &Arc<Run>,
    plan: &Plan,
    point: &Point,
    cx: &RunContext,
) -> (Samples, Latencies) {
    let t0 = run.shared.t0;
    let deadline = plan.duration.map(|d| t0 + d);
    let workers: Vec<_> = (0..plan.concurrency)
        .map(|_| tokio::spawn(worker(run.clone(), deadline)))
        .collect();
    let at = point.prefix();
    let mut samples = Samples::default();
    samples.take(run, cx.started, true);
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut n: u32 = 0;
    while !workers.iter().all(|w| w.is_finished()) {
        tick.tick().await;
        n += 1;
        let series_point = n.is_multiple_of(SAMPLES_PER_POINT);
        samples.take(run, cx.started, series_point);
        if series_point {
            let within = match (plan.ops, plan.duration) {
                (Some(ops), _) => lock(&run.feed).generator.generated() as f64 / ops.max(1) as f64,
                (None, Some(d)) => t0.elapsed().as_secs_f64() / d.as_secs_f64().max(1e-9),
                _ => 0.0,
            };
            let fraction = (point.index as f64 + within.min(1.0)) / point.total as f64;
            let ops: u64 = run
                .instances
                .iter()
                .map(|i| i.counters.snapshot().ops_total())
                .sum();
            cx.progress
                .update(Some(fraction), &format!("{at}{ops} operations"));
        }
    }
    let mut latencies = Latencies::default();
    for w in workers {
        if let Ok(l) = w.await {
            latencies.merge(l);
        }
    }
    (samples, latencies)
}

/// One worker: takes the next operation of the shared stream (firing the events due at
/// that count first) and runs it on its instance, until the stream, the time or the run ends.
async fn worker(run: Arc<Run>, deadline: Option<Instant>) -> Latencies {
    let mut lat = Latencies::default();
    loop {
        if run.stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let (op, due) = {
            let mut f = lock(&run.feed);
            if f.limit.is_some_and(|l| f.generator.generated() >= l) {
                break;
            }
            let n = f.generator.generated();
            let mut due = Vec::new();
            while f.due.front().is_some_and(|(at, _)| *at <= n) {
                if let Some((_, e)) = f.due.pop_front() {
                    due.push(e);
                }
            }
            (f.generator.next_op(), due)
        };
        for e in due {
            events::fire(&run, e).await;
        }
        let t = Instant::now();
        let inst = &run.instances[op.instance];
        let served = inst.execute(&run.shared, &op, &run.stop).await;
        lat.record(op.instance, op.kind, served, t.elapsed().as_secs_f64());
    }
    lat
}
