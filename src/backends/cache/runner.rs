//! `kind = "cache"`, `backend = "native"`: perfspec's own cache harness. N simulated app
//! instances, each with its own in-process L1 (moka or stretto), optionally sharing a Redis
//! L2 (a real `redis-server` perfspec starts, or a URL), in front of a versioned origin with
//! a latency distribution. Concurrent tokio workers execute one seeded operation stream;
//! each sweep value is one run with the same stream. Events (restarts, killing Redis) fire at
//! a fraction of the operations or at a time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::instance::{Instance, Shared};
use super::origin::Origin;
use super::plan::{self, Action, Plan, PlannedEvent, RedisSource, SharedPlan};
use super::planned::CachePlan;
use super::redis_server::{RedisCluster, RedisServer};
use super::reference::{self, Bounds};
use super::stats::{
    Latencies, RunStats, Snapshot, TierEnd, per_second_rate, per_second_ratio, sweep_labels,
};
use super::tiers::{self, Capacity, RedisTier, Tier, redis_config, resp3, timed};
use super::warmup::{Warmup, warmup};
use super::workload::{Generator, OpKind};
use crate::engine::metrics::{Labels, Measurements};
use crate::engine::{Backend, BackendError, Plan as EnginePlan, RunContext};
use crate::spec::cache::{At, Invalidation};
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
        let (server, cluster) = start_redis(&sweep.points[0].1).await?;
        let server = server.map(|s| Arc::new(tokio::sync::Mutex::new(s)));
        let cluster_urls = cluster.as_ref().map(RedisCluster::urls);
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

/// Start the Redis (or Redis Cluster) a spec asks perfspec to start, once for all sweep runs.
async fn start_redis(
    plan: &Plan,
) -> Result<(Option<RedisServer>, Option<RedisCluster>), BackendError> {
    Ok(match plan.redis() {
        Some(RedisSource::Spawn { max_bytes }) => {
            let mut args = Vec::new();
            if let Some(b) = max_bytes {
                args.extend([
                    "--maxmemory".to_string(),
                    b.to_string(),
                    "--maxmemory-policy".into(),
                    "allkeys-lru".into(),
                ]);
            }
            (Some(RedisServer::start(&args).await?), None)
        }
        Some(RedisSource::Cluster { masters, replicas }) => {
            (None, Some(RedisCluster::start(*masters, *replicas).await?))
        }
        _ => (None, None),
    })
}

/// Which sweep run this is.
struct Point {
    index: usize,
    total: usize,
    label: Option<Labels>,
    representative: bool,
}

impl Point {
    /// Label sets scalars are emitted with.
    fn suffixes(&self) -> Vec<Labels> {
        match &self.label {
            None => vec![Labels::new()],
            Some(l) if self.representative => vec![l.clone(), Labels::new()],
            Some(l) => vec![l.clone()],
        }
    }

    fn series_labels(&self, extra: &[(&str, String)]) -> Labels {
        let mut l = self.label.clone().unwrap_or_default();
        for (k, v) in extra {
            l.insert((*k).to_string(), v.clone());
        }
        l
    }

    fn name(&self) -> String {
        match &self.label {
            Some(l) => l
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            None => String::new(),
        }
    }
}

/// Where the Redis tier of one run lives, and its key prefix.
struct RedisTarget {
    /// One URL, or every node of a cluster.
    urls: Vec<String>,
    cluster: bool,
    /// perfspec started it (it is flushed before each run and measured at the end).
    owned: bool,
    prefix: String,
    ttl: Option<Duration>,
}

/// The operation stream and the events due at an operation count.
struct Feed {
    generator: Generator,
    limit: Option<u64>,
    due: VecDeque<(u64, PlannedEvent)>,
}

/// Everything the workers of one run share.
struct Run {
    shared: Shared,
    instances: Vec<Instance>,
    feed: Mutex<Feed>,
    stop: AtomicBool,
    server: Option<Arc<tokio::sync::Mutex<RedisServer>>>,
    /// Cancelled when the run ends (stops listeners and event tasks).
    done: CancellationToken,
    /// `(seconds, what)` of the events that fired.
    fired: Mutex<Vec<(f64, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Run {
    async fn fire(self: &Arc<Self>, e: PlannedEvent) {
        let t = self.shared.t0.elapsed().as_secs_f64();
        match e.action {
            Action::Restart(i) => {
                if let Some(inst) = self.instances.get(i) {
                    let what = match inst.restart(&self.shared) {
                        Ok(()) => format!("instance {} restarted with an empty l1", i + 1),
                        Err(e) => format!("instance {} could not restart: {e}", i + 1),
                    };
                    lock(&self.fired).push((t, what));
                }
            }
            Action::KillRedis { restore_after } => {
                let Some(server) = &self.server else { return };
                server.lock().await.kill();
                lock(&self.fired).push((t, "redis-server killed (SIGKILL)".into()));
                if let Some(d) = restore_after {
                    let run = self.clone();
                    let server = server.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            () = tokio::time::sleep(d) => {}
                            () = run.done.cancelled() => return,
                        }
                        let t = run.shared.t0.elapsed().as_secs_f64();
                        let msg = match server.lock().await.restart().await {
                            Ok(()) => "redis-server restarted, empty".to_string(),
                            Err(e) => format!("redis-server did not restart: {e}"),
                        };
                        lock(&run.fired).push((t, msg));
                    });
                }
            }
        }
    }
}

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
            run.fire(e).await;
        }
        let t = Instant::now();
        let inst = &run.instances[op.instance];
        let served = inst.execute(&run.shared, &op, &run.stop).await;
        lat.record(op.instance, op.kind, served, t.elapsed().as_secs_f64());
    }
    lat
}

/// Cumulative samples of a run, every [`SAMPLE_EVERY`].
#[derive(Default)]
struct Samples {
    /// `(seconds since the spec started, reads, hits, ops, errors)`.
    totals: Vec<(f64, u64, u64, u64, u64)>,
    /// Per instance: `(seconds, reads, hits)`.
    instances: Vec<Vec<(f64, u64, u64)>>,
    /// Per instance: `(seconds, L1 entries)`.
    resident: Vec<Vec<(f64, f64)>>,
    /// Per instance: the largest L1 entry count seen.
    peak: Vec<u64>,
}

impl Samples {
    fn take(&mut self, run: &Run, spec_t0: Instant, series_point: bool) {
        let t = spec_t0.elapsed().as_secs_f64();
        let snaps: Vec<Snapshot> = run
            .instances
            .iter()
            .map(|i| i.counters.snapshot())
            .collect();
        if self.peak.len() != snaps.len() {
            self.peak = vec![0; snaps.len()];
            self.instances = vec![Vec::new(); snaps.len()];
            self.resident = vec![Vec::new(); snaps.len()];
        }
        for (i, inst) in run.instances.iter().enumerate() {
            if let Some(l1) = inst.l1() {
                let len = l1.len();
                self.peak[i] = self.peak[i].max(len);
                if series_point {
                    self.resident[i].push((t, len as f64));
                }
            }
        }
        if series_point {
            let total = Snapshot::sum(&snaps);
            self.totals.push((
                t,
                total.reads,
                total.hits(),
                total.ops_total(),
                total.errors_total(),
            ));
            for (i, s) in snaps.iter().enumerate() {
                self.instances[i].push((t, s.reads, s.hits()));
            }
        }
    }
}

/// One run (one sweep value). Returns notes for the report.
async fn run_point(
    plan: &Plan,
    point: &Point,
    server: Option<Arc<tokio::sync::Mutex<RedisServer>>>,
    cluster_urls: Option<Vec<String>>,
    cx: &RunContext,
    m: &mut Measurements,
) -> Result<Vec<String>, BackendError> {
    let mut notes = Vec::new();
    let name = point.name();
    let at = if name.is_empty() {
        String::new()
    } else {
        format!("{name}: ")
    };
    // the shared tier: a fresh, empty keyspace for every run
    let mut server_url = None;
    if let Some(srv) = &server {
        let mut s = srv.lock().await;
        if !s.is_running() {
            s.restart().await.map_err(|e| BackendError::Failed {
                message: format!("redis-server did not restart: {e}"),
                partial: None,
            })?;
        }
        server_url = Some(s.url());
    }
    let own_prefix = format!("perfspec:{}", point.index);
    // keys in a Redis perfspec did not start are unique to this run
    let shared_prefix = format!(
        "perfspec:{}:{}:{}",
        std::process::id(),
        cx.started.elapsed().as_nanos(),
        point.index
    );
    let redis = match &plan.l2 {
        Some(SharedPlan::Redis { source, ttl }) => {
            let (urls, cluster, owned) = match (source, &server_url, &cluster_urls) {
                (RedisSource::Spawn { .. }, Some(url), _) => (vec![url.clone()], false, true),
                (RedisSource::Cluster { .. }, _, Some(urls)) => (urls.clone(), true, true),
                (RedisSource::Url(u), _, _) => (vec![u.clone()], false, false),
                (RedisSource::Nodes(n), _, _) => (n.clone(), true, false),
                _ => {
                    return Err(BackendError::Unavailable(
                        "the Redis perfspec should have started is not running".into(),
                    ));
                }
            };
            let prefix = if owned { own_prefix } else { shared_prefix };
            Some(RedisTarget {
                urls,
                cluster,
                owned,
                prefix,
                ttl: *ttl,
            })
        }
        _ => None,
    };
    if let Some(r) = &redis
        && r.owned
    {
        flush(r).await.map_err(|e| {
            BackendError::Unavailable(format!("cannot reach the Redis perfspec started: {e}"))
        })?;
    }
    let pubsub = plan.invalidation == Invalidation::Pubsub && redis.is_some();
    let tracking = plan.invalidation == Invalidation::Tracking && redis.is_some();
    let shared_local = match &plan.l2 {
        Some(SharedPlan::Local(p)) => {
            Some(tiers::local(p).map_err(|e| BackendError::Unavailable(e.0))?)
        }
        _ => None,
    };
    let bounds_capacity = plan.bounds_applicability();
    if !plan.latency.1.is_zero() {
        notes.push("the origin waits on the tokio timer, which ends each wait on a millisecond tick: a wait lasts up to about 1 ms longer than drawn (latency{tier=origin} shows what was served)".into());
    }
    let restarted: Vec<usize> = plan
        .events
        .iter()
        .filter_map(|e| {
            if let Action::Restart(i) = e.action {
                Some(i)
            } else {
                None
            }
        })
        .collect();
    let t0 = Instant::now();
    let shared = Shared {
        origin: Origin::new(
            plan.trace.keys,
            plan.latency,
            plan.value_size,
            plan.trace.seed,
        ),
        read_through: plan.read_through,
        write_invalidate: plan.write_invalidate,
        channel: pubsub.then(|| format!("perfspec:inv:{}:{}", std::process::id(), point.index)),
        t0,
    };
    let mut instances = Vec::new();
    let mut push_rx = Vec::new();
    for i in 0..plan.instances {
        let mut l2: Option<Arc<dyn Tier>> = shared_local.clone();
        let mut publisher = None;
        let mut redis_conn = None;
        if let Some(r) = &redis {
            let url = &r.urls[0];
            let unreachable = |e: super::tiers::TierError| {
                BackendError::Unavailable(format!(
                    "cannot connect to redis at {}: {e}",
                    r.urls.join(", ")
                ))
            };
            // the connection that subscribes and publishes (pubsub) or is tracked
            let mut side = None;
            let tier = if r.cluster {
                if pubsub {
                    // a PUBLISH on any node of a cluster reaches the subscribers of every node
                    // (the cluster bus): each instance subscribes on one node, spread over them
                    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                    push_rx.push((i, rx));
                    let node = &r.urls[i % r.urls.len()];
                    let config = redis_config()
                        .set_push_sender(tx)
                        .set_automatic_resubscription();
                    let t = RedisTier::connect(&resp3(node), config, r.prefix.clone(), r.ttl)
                        .await
                        .map_err(unreachable)?;
                    side = t.manager();
                }
                RedisTier::connect_cluster(&r.urls, r.prefix.clone(), r.ttl)
                    .await
                    .map_err(unreachable)?
            } else if pubsub || tracking {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                push_rx.push((i, rx));
                let config = redis_config().set_push_sender(tx);
                let config = if pubsub {
                    config.set_automatic_resubscription()
                } else {
                    config
                };
                RedisTier::connect(&resp3(url), config, r.prefix.clone(), r.ttl)
                    .await
                    .map_err(unreachable)?
            } else {
                RedisTier::connect(url, redis_config(), r.prefix.clone(), r.ttl)
                    .await
                    .map_err(unreachable)?
            };
            redis_conn = tier.manager();
            if side.is_none() {
                side = redis_conn.clone();
            }
            if let (Some(ch), Some(conn)) = (&shared.channel, &side) {
                let mut conn = conn.clone();
                timed(conn.subscribe(ch)).await.map_err(|e| {
                    BackendError::Unavailable(format!("cannot subscribe to {ch}: {e}"))
                })?;
                publisher = Some(conn);
            }
            if tracking && let Some(conn) = &redis_conn {
                enable_tracking(conn, &r.prefix).await.map_err(|e| {
                    BackendError::Unavailable(format!("cannot turn on client tracking: {e}"))
                })?;
            }
            l2 = Some(Arc::new(tier));
        }
        let mut inst = Instance::new(
            i,
            plan.l1.clone(),
            l2,
            bounds_capacity.is_ok(),
            restarted.contains(&i),
        )
        .map_err(|e| BackendError::Unavailable(e.0))?;
        inst.publisher = publisher;
        inst.redis = redis_conn;
        instances.push(inst);
    }
    // events by operation count, or by time
    let mut due = Vec::new();
    let mut timed_events = Vec::new();
    for e in &plan.events {
        match (e.at, plan.ops, plan.duration) {
            (At::Fraction(f), Some(ops), _) => due.push(((f * ops as f64).round() as u64, *e)),
            (At::Fraction(f), None, Some(d)) => timed_events.push((d.mul_f64(f), *e)),
            (At::Time(s), _, _) => timed_events.push((Duration::from_secs_f64(s), *e)),
            (At::Fraction(_), None, None) => {}
        }
    }
    due.sort_by_key(|(n, _)| *n);
    let run = Arc::new(Run {
        shared,
        instances,
        feed: Mutex::new(Feed {
            generator: Generator::new(plan.trace.clone()),
            limit: plan.ops,
            due: due.into(),
        }),
        stop: AtomicBool::new(false),
        server: server.clone(),
        done: CancellationToken::new(),
        fired: Mutex::new(Vec::new()),
    });
    let done = run.done.clone();
    // invalidation listeners
    let prefix = redis.as_ref().map(|r| r.prefix.clone()).unwrap_or_default();
    for (i, mut rx) in push_rx {
        let (run, done, prefix) = (run.clone(), done.clone(), prefix.clone());
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    m = rx.recv() => m,
                    () = done.cancelled() => None,
                };
                let Some(msg) = msg else { break };
                let inst = &run.instances[i];
                match msg.kind {
                    redis::PushKind::Message => {
                        if let Some(redis::Value::BulkString(payload)) = msg.data.get(1) {
                            inst.on_invalidation(&String::from_utf8_lossy(payload))
                                .await;
                        }
                    }
                    redis::PushKind::Invalidate => {
                        let keys = match msg.data.first() {
                            Some(redis::Value::Array(keys)) => Some(
                                keys.iter()
                                    .filter_map(|k| match k {
                                        redis::Value::BulkString(b) => tracked_key(&prefix, b),
                                        _ => None,
                                    })
                                    .collect(),
                            ),
                            _ => None,
                        };
                        let _ = inst.on_tracking_invalidation(keys).await;
                    }
                    redis::PushKind::Disconnection if tracking => {
                        // invalidations were lost with the connection: drop the L1, track again
                        let _ = inst.flush_l1();
                        let t = run.shared.t0.elapsed().as_secs_f64();
                        let again = match inst.l2_connection() {
                            Some(conn) => retrack(&conn, &prefix, &done).await,
                            None => false,
                        };
                        let after = run.shared.t0.elapsed().as_secs_f64() - t;
                        let what = if again {
                            format!("tracking on again {after:.2}s later")
                        } else {
                            "tracking could not be turned on again".to_string()
                        };
                        lock(&run.fired).push((
                            t,
                            format!(
                                "instance {} lost its Redis connection: l1 flushed, {what}",
                                i + 1
                            ),
                        ));
                    }
                    _ => {}
                }
            }
        });
    }
    for (after, e) in timed_events {
        let (run, done) = (run.clone(), done.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(after) => run.fire(e).await,
                () = done.cancelled() => {}
            }
        });
    }
    // stop on cancellation
    {
        let (run, cancel, done) = (run.clone(), cx.cancel.clone(), done.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => run.stop.store(true, Ordering::Relaxed),
                () = done.cancelled() => {}
            }
        });
    }
    let deadline = plan.duration.map(|d| t0 + d);
    let mut workers = Vec::new();
    for _ in 0..plan.concurrency {
        workers.push(tokio::spawn(worker(run.clone(), deadline)));
    }
    // sample while the workers run
    let mut samples = Samples::default();
    samples.take(&run, cx.started, true);
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut n: u32 = 0;
    while !workers.iter().all(|w| w.is_finished()) {
        tick.tick().await;
        n += 1;
        let series_point = n.is_multiple_of(SAMPLES_PER_POINT);
        samples.take(&run, cx.started, series_point);
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
    let elapsed = t0.elapsed().as_secs_f64();
    run.stop.store(true, Ordering::Relaxed);
    samples.take(&run, cx.started, true);
    done.cancel();
    // what the tiers hold at the end
    let key_space = lock(&run.feed).generator.generated().max(plan.trace.keys) + plan.trace.keys;
    let mut l1_end = Vec::new();
    if plan.l1.is_some() {
        for (i, inst) in run.instances.iter().enumerate() {
            let mut end = TierEnd {
                peak_entries: samples.peak.get(i).copied().unwrap_or(0),
                ..TierEnd::default()
            };
            if let Some(l1) = inst.l1()
                && let Ok(r) = l1.resident(key_space).await
            {
                end.entries = r.entries;
                end.bytes = r.bytes;
                end.peak_entries = end.peak_entries.max(r.entries);
            }
            end.evictions = inst.l1_evictions();
            l1_end.push(end);
        }
    }
    let l2_end = match run.instances.first().and_then(|i| i.l2.as_ref()) {
        Some(_) if redis.as_ref().is_some_and(|r| !r.owned) => {
            notes.push("the l2 Redis is shared (given by `url` or `nodes`): its resident size and evictions are not reported".into());
            None
        }
        Some(l2) => match l2.resident(key_space).await {
            Ok(r) => Some(TierEnd {
                entries: r.entries,
                bytes: r.bytes,
                evictions: r.evictions,
                peak_entries: r.entries,
            }),
            Err(e) => {
                notes.push(format!(
                    "{at}the l2 tier could not be read at the end of the run: {e}"
                ));
                None
            }
        },
        None => None,
    };
    if let Some(r) = &redis {
        if r.owned {
            let whose = if r.cluster {
                "summed over the cluster's masters"
            } else {
                "the server's"
            };
            notes.push(format!("resident_bytes{{tier=l2}} is Redis's used_memory, {whose} (its whole dataset and overhead)"));
        } else {
            for url in &r.urls {
                cleanup(url, &r.prefix, key_space).await;
            }
        }
    }
    // reference bounds on each instance's own trace
    let truncated = run.instances.iter().any(Instance::trace_truncated);
    let bounds: Result<Vec<Bounds>, String> = match bounds_capacity {
        Ok(_) if truncated => Err(format!(
            "not computed: an instance's trace exceeded {} events (shorten the run to get the bounds)",
            super::instance::MAX_TRACE
        )),
        Ok(cap) => {
            let traces: Vec<_> = run.instances.iter().map(|i| i.take_trace()).collect();
            let cap = usize::try_from(cap).unwrap_or(usize::MAX);
            tokio::task::spawn_blocking(move || {
                traces.iter().map(|t| reference::bounds(t, cap)).collect()
            })
            .await
            .map_err(|e| format!("the reference bounds failed: {e}"))
        }
        Err(why) => Err(why),
    };
    if let Err(why) = &bounds {
        notes.push(format!("lru_hit_ratio and optimal_hit_ratio: {why}"));
    }
    // warm-up after restarts
    let mut warmups = Vec::new();
    for inst in &run.instances {
        let timeline = inst.take_timeline();
        for t in inst.restart_times() {
            match warmup(&timeline, t) {
                Warmup::Recovered { before, seconds } => {
                    notes.push(format!(
                        "{at}instance {} restarted at {t:.2}s; its l1 hit ratio was back to 95% of {before:.3} after {seconds:.2}s",
                        inst.index + 1
                    ));
                    warmups.push((inst.index, seconds));
                }
                Warmup::NotRecovered { before, best } => notes.push(format!(
                    "{at}instance {} restarted at {t:.2}s and did not get back to 95% of its hit ratio {before:.3} before the run ended (best window {best:.3}): no warmup_time",
                    inst.index + 1
                )),
                Warmup::Unknown => notes.push(format!(
                    "{at}instance {} restarted at {t:.2}s, too early to know its hit ratio before: no warmup_time",
                    inst.index + 1
                )),
            }
        }
    }
    for (t, what) in lock(&run.fired).iter() {
        notes.push(format!("{at}at {t:.2}s: {what}"));
    }
    let stats = RunStats {
        instances: run
            .instances
            .iter()
            .map(|i| i.counters.snapshot())
            .collect(),
        kinds: plan.trace.mix.kinds(),
        has_l1: plan.l1.is_some(),
        has_l2: plan.l2.is_some(),
        l1_entries: plan.l1.as_ref().and_then(|l| {
            if let Capacity::Entries(n) = l.capacity {
                Some(n)
            } else {
                None
            }
        }),
        l1_end,
        l2_end,
        bounds,
        warmups,
        elapsed_s: elapsed,
    };
    stats.emit(m, &point.suffixes());
    let capacity = plan.l1.as_ref().map_or(0, |l| l.capacity.value());
    let flagged = stats.flag_impossible(m, point.label.as_ref(), capacity);
    if !flagged.is_empty() {
        let backend = plan.l1.as_ref().map_or("", |l| l.backend.as_str());
        notes.push(format!(
            "{at}invalid measurement: {backend} reported hit ratios above the optimum possible for its capacity ({}); {backend} held up to {} entries for a capacity of {capacity}",
            flagged.join("; "),
            stats.l1_end.iter().map(|e| e.peak_entries).max().unwrap_or(0)
        ));
    }
    if let (Some(l1), Some(cap)) = (&plan.l1, stats.l1_entries) {
        let peak = stats
            .l1_end
            .iter()
            .map(|e| e.peak_entries)
            .max()
            .unwrap_or(0);
        if peak > cap {
            notes.push(format!(
                "{at}{} held up to {peak} entries ({:.2}x its capacity of {cap}) between maintenance runs",
                l1.backend.as_str(),
                peak as f64 / cap.max(1) as f64
            ));
        }
    }
    latencies.emit(m, &point.label.clone().unwrap_or_default());
    for inst in &run.instances {
        for (msg, labels) in inst.take_errors() {
            let mut labels = labels;
            if let Some(l) = &point.label {
                labels.extend(l.clone());
            }
            m.error_sample(&msg, labels);
        }
    }
    // series for the report
    let totals = &samples.totals;
    m.push_series(
        "hit_ratio",
        point.series_labels(&[]),
        per_second_ratio(&totals.iter().map(|s| (s.0, s.2, s.1)).collect::<Vec<_>>()),
    );
    m.push_series(
        "throughput",
        point.series_labels(&[]),
        per_second_rate(&totals.iter().map(|s| (s.0, s.3)).collect::<Vec<_>>()),
    );
    if plan.l2.is_some() {
        m.push_series(
            "errors",
            point.series_labels(&[]),
            per_second_rate(&totals.iter().map(|s| (s.0, s.4)).collect::<Vec<_>>()),
        );
    }
    if plan.instances > 1 || !restarted.is_empty() {
        for (i, s) in samples.instances.iter().enumerate() {
            m.push_series(
                "hit_ratio",
                point.series_labels(&[("instance", (i + 1).to_string())]),
                per_second_ratio(&s.iter().map(|x| (x.0, x.2, x.1)).collect::<Vec<_>>()),
            );
        }
    }
    if plan.l1.is_some() {
        for (i, s) in samples.resident.iter().enumerate() {
            m.push_series(
                "resident_entries",
                point.series_labels(&[("tier", "l1".into()), ("instance", (i + 1).to_string())]),
                s.clone(),
            );
        }
    }
    m.elapsed_s += elapsed;
    if point.label.is_none() || point.representative {
        let total = Snapshot::sum(&stats.instances);
        if total.ops_total() > 0 && plan.trace.mix.kinds().contains(&OpKind::Scan) {
            notes.push("a scan counts as one operation; each key it reads counts as a read".into());
        }
    }
    Ok(notes)
}

/// Redis client-side caching in broadcast mode for this run's keys: the server pushes an
/// invalidation to this connection whenever another client changes one of them.
async fn enable_tracking(conn: &redis::aio::ConnectionManager, prefix: &str) -> Result<(), String> {
    let mut c = conn.clone();
    timed(
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("BCAST")
            .arg("PREFIX")
            .arg(format!("{prefix}:"))
            .arg("NOLOOP")
            .query_async::<()>(&mut c),
    )
    .await
    .map_err(|e| e.0)
}

/// Turn tracking on again after a reconnect (bounded: 10 s, or until the run ends).
async fn retrack(
    conn: &redis::aio::ConnectionManager,
    prefix: &str,
    done: &CancellationToken,
) -> bool {
    for _ in 0..200 {
        if done.is_cancelled() {
            return false;
        }
        if enable_tracking(conn, prefix).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The workload key of a tracked Redis key `<prefix>:<key>`.
fn tracked_key(prefix: &str, redis_key: &[u8]) -> Option<u64> {
    std::str::from_utf8(redis_key)
        .ok()?
        .strip_prefix(prefix)?
        .strip_prefix(':')?
        .parse()
        .ok()
}

/// Empty the Redis perfspec started, before a run (every master of a cluster; replicas
/// refuse writes and follow their master).
async fn flush(r: &RedisTarget) -> Result<(), String> {
    let mut flushed = 0;
    let mut last = String::new();
    for url in &r.urls {
        let attempt = async {
            let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
            let mut c = timed(client.get_multiplexed_async_connection())
                .await
                .map_err(|e| e.0)?;
            timed(redis::cmd("FLUSHALL").query_async::<()>(&mut c))
                .await
                .map_err(|e| e.0)
        };
        match attempt.await {
            Ok(()) => flushed += 1,
            Err(e) => last = e,
        }
    }
    if flushed == 0 { Err(last) } else { Ok(()) }
}

/// Delete this run's keys from a Redis perfspec did not start (bounded SCAN).
async fn cleanup(url: &str, prefix: &str, key_space: u64) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut c) = timed(client.get_multiplexed_async_connection()).await else {
        return;
    };
    let mut cursor: u64 = 0;
    for _ in 0..(key_space / 500 + 100) {
        let Ok((next, keys)) = timed(
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}:*"))
                .arg("COUNT")
                .arg(1000)
                .query_async::<(u64, Vec<String>)>(&mut c),
        )
        .await
        else {
            return;
        };
        // one key per DEL: keys of a cluster node live in different slots
        for k in &keys {
            let _ = timed(redis::cmd("DEL").arg(k).query_async::<i64>(&mut c)).await;
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}
