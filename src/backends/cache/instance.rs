//! A simulated app instance: its own L1, a connection to the shared L2, and the cache
//! patterns — cache-aside or read-through reads, write-through or write-invalidate writes,
//! broadcast invalidation — with every read checked against the latest committed version.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use redis::aio::ConnectionManager;

use super::origin::{Origin, Value, Write};
use super::plan::LocalPlan;
use super::reference::Access;
use super::stats::{Counters, Served};
use super::tiers::{self, Cached, Loaded, Loader, Tier, TierError, timed};
use super::workload::{Op, OpKind};
use crate::engine::metrics::Labels;

/// Most error messages kept per instance and run (they are counted regardless).
const MAX_ERRORS_KEPT: usize = 200;
/// Most trace events (and timeline reads) kept per instance: 16 bytes each, so at most
/// 64 MiB per instance. A longer run reports no reference bounds (or warm-up) rather than
/// growing without bound.
pub const MAX_TRACE: usize = 4_000_000;

/// Settings every instance of a run shares.
pub struct Shared {
    pub origin: Origin,
    pub read_through: bool,
    pub write_invalidate: bool,
    /// The pub/sub channel writes are broadcast on, when invalidation is `pubsub`.
    pub channel: Option<String>,
    /// When the run started (the time axis of timelines and restarts).
    pub t0: Instant,
}

pub struct Instance {
    /// From 0.
    pub index: usize,
    /// The L1 of the running process; a restart replaces it with an empty one.
    l1: RwLock<Option<Arc<dyn Tier>>>,
    l1_plan: Option<LocalPlan>,
    /// Evictions of L1s that restarts replaced.
    retired_evictions: AtomicU64,
    pub l2: Option<Arc<dyn Tier>>,
    /// Connection that publishes invalidations.
    pub publisher: Option<ConnectionManager>,
    /// The connection to the shared Redis tier (for tracking).
    pub redis: Option<ConnectionManager>,
    pub counters: Counters,
    /// The L1 trace for the reference bounds, when they apply.
    pub trace: Option<Mutex<Vec<Access>>>,
    truncated: AtomicBool,
    /// `(seconds, hit)` of L1 lookups, for instances that restart.
    pub timeline: Option<Mutex<Vec<(f64, bool)>>>,
    /// When this instance restarted (seconds since the run started).
    pub restarts: Mutex<Vec<f64>>,
    /// The first error messages, with their labels.
    pub errors: Mutex<Vec<(String, Labels)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Instance {
    pub fn new(
        index: usize,
        l1_plan: Option<LocalPlan>,
        l2: Option<Arc<dyn Tier>>,
        trace: bool,
        timeline: bool,
    ) -> Result<Instance, TierError> {
        let l1 = l1_plan.as_ref().map(tiers::local).transpose()?;
        Ok(Instance {
            index,
            l1: RwLock::new(l1),
            l1_plan,
            retired_evictions: AtomicU64::new(0),
            l2,
            publisher: None,
            redis: None,
            counters: Counters::default(),
            trace: trace.then(|| Mutex::new(Vec::new())),
            truncated: AtomicBool::new(false),
            timeline: timeline.then(|| Mutex::new(Vec::new())),
            restarts: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
        })
    }

    pub fn l2_connection(&self) -> Option<ConnectionManager> {
        self.redis.clone()
    }

    /// The current L1.
    pub fn l1(&self) -> Option<Arc<dyn Tier>> {
        self.l1.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Evictions of every L1 this instance had.
    pub fn l1_evictions(&self) -> u64 {
        self.retired_evictions.load(Ordering::Relaxed) + self.l1().map_or(0, |t| t.evictions())
    }

    fn trace(&self, a: Access) {
        if let Some(t) = &self.trace {
            let mut t = lock(t);
            if t.len() < MAX_TRACE {
                t.push(a);
            } else {
                self.truncated.store(true, Ordering::Relaxed);
            }
        }
    }

    fn timeline(&self, sh: &Shared, hit: bool) {
        if let Some(t) = &self.timeline {
            let mut t = lock(t);
            if t.len() < MAX_TRACE {
                t.push((sh.t0.elapsed().as_secs_f64(), hit));
            }
        }
    }

    /// Whether the trace outgrew [`MAX_TRACE`].
    pub fn trace_truncated(&self) -> bool {
        self.truncated.load(Ordering::Relaxed)
    }

    /// Count a failed call to the shared tier and keep its message.
    fn l2_error(&self, op: OpKind, e: &TierError) {
        Counters::add(&self.counters.l2_errors[op.index()]);
        let mut errors = lock(&self.errors);
        if errors.len() < MAX_ERRORS_KEPT {
            let labels = crate::engine::metrics::labels(&[
                ("op", op.as_str()),
                ("tier", "l2"),
                ("instance", &(self.index + 1).to_string()),
            ]);
            errors.push((e.0.clone(), labels));
        }
    }

    /// Run one operation; returns the tier that answered a get.
    pub async fn execute(&self, sh: &Shared, op: &Op, stop: &AtomicBool) -> Option<Served> {
        let served = match op.kind {
            OpKind::Get => Some(self.read(sh, op.key, OpKind::Get).await),
            OpKind::Update | OpKind::Insert | OpKind::Delete => {
                self.write(sh, op.key, op.kind).await;
                None
            }
            OpKind::Rmw => {
                self.read(sh, op.key, OpKind::Rmw).await;
                self.write(sh, op.key, OpKind::Rmw).await;
                None
            }
            OpKind::Scan => {
                for k in op.key..op.key + u64::from(op.len) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    self.read(sh, k, OpKind::Scan).await;
                }
                None
            }
        };
        Counters::add(&self.counters.ops[op.kind.index()]);
        served
    }

    /// A read: L1, then L2, then the origin; filling the tiers above on the way back.
    async fn read(&self, sh: &Shared, key: u64, op: OpKind) -> Served {
        let c = &self.counters;
        Counters::add(&c.reads);
        // a read is stale when it returns an older version than was committed before it began
        let committed = sh.origin.committed(key);
        let l1 = self.l1();
        if let Some(l1) = &l1 {
            Counters::add(&c.l1_lookups);
            self.trace(Access::Read(key));
            if sh.read_through {
                let from_l2 = AtomicBool::new(false);
                let load: Loader<'_> = Box::pin(async {
                    let (v, served) = self.below(sh, key, op, committed).await;
                    from_l2.store(served == Served::L2, Ordering::Relaxed);
                    v
                });
                match l1.get_or_load(key, load).await {
                    Ok(Loaded::Hit(v)) => return self.l1_hit(sh, &v, committed),
                    Ok(Loaded::Coalesced(v)) => {
                        Counters::add(&c.coalesced);
                        if v.version < committed {
                            Counters::add(&c.coalesced_stale);
                        }
                        self.timeline(sh, false);
                        return Served::Coalesced;
                    }
                    Ok(Loaded::Ran) => {
                        self.timeline(sh, false);
                        return if from_l2.load(Ordering::Relaxed) {
                            Served::L2
                        } else {
                            Served::Origin
                        };
                    }
                    Err(_) => {}
                }
            } else if let Ok(Some(v)) = l1.get(key).await {
                return self.l1_hit(sh, &v, committed);
            }
            self.timeline(sh, false);
        }
        let (v, served) = self.below(sh, key, op, committed).await;
        if let (Some(l1), Some(v)) = (&l1, v) {
            let _ = l1.put(key, v).await;
        }
        served
    }

    fn l1_hit(&self, sh: &Shared, v: &Cached, committed: u64) -> Served {
        Counters::add(&self.counters.l1_hits);
        if v.version < committed {
            Counters::add(&self.counters.l1_stale);
        }
        self.timeline(sh, true);
        Served::L1
    }

    /// Below L1: the shared tier, then the origin (which fills the shared tier). A failing
    /// shared tier falls back to the origin.
    async fn below(
        &self,
        sh: &Shared,
        key: u64,
        op: OpKind,
        committed: u64,
    ) -> (Option<Cached>, Served) {
        let c = &self.counters;
        let mut l2_up = true;
        if let Some(l2) = &self.l2 {
            Counters::add(&c.l2_lookups);
            match l2.get(key).await {
                Ok(Some(v)) => {
                    Counters::add(&c.l2_hits);
                    if v.version < committed {
                        Counters::add(&c.l2_stale);
                    }
                    return (Some(v), Served::L2);
                }
                Ok(None) => {}
                Err(e) => {
                    self.l2_error(op, &e);
                    l2_up = false;
                }
            }
        }
        Counters::add(&c.origin_reads);
        let v = sh.origin.read(key).await.map(Arc::new);
        if let (Some(l2), Some(v), true) = (&self.l2, &v, l2_up)
            && let Err(e) = l2.put(key, v.clone()).await
        {
            self.l2_error(op, &e);
        }
        (v, Served::Origin)
    }

    /// A write: commit at the origin, then update (write-through) or drop (write-invalidate,
    /// deletes) the cached copies, then broadcast.
    async fn write(&self, sh: &Shared, key: u64, op: OpKind) {
        let w = if op == OpKind::Delete {
            Write::Delete
        } else {
            Write::Put
        };
        Counters::add(&self.counters.origin_writes);
        let version = sh.origin.write(key, w).await;
        if !sh.write_invalidate && w == Write::Put {
            let v: Cached = Arc::new(Value::new(version, sh.origin.size_of(key, version)));
            if let Some(l2) = &self.l2
                && let Err(e) = l2.put(key, v.clone()).await
            {
                self.l2_error(op, &e);
            }
            if let Some(l1) = self.l1() {
                self.trace(Access::Fill(key));
                let _ = l1.put(key, v).await;
            }
        } else {
            if let Some(l2) = &self.l2
                && let Err(e) = l2.invalidate(key).await
            {
                self.l2_error(op, &e);
            }
            if let Some(l1) = self.l1() {
                self.trace(Access::Invalidate(key));
                let _ = l1.invalidate(key).await;
            }
        }
        if let (Some(channel), Some(conn)) = (&sh.channel, &self.publisher) {
            let mut conn = conn.clone();
            let msg = format!("{}:{key}", self.index);
            if let Err(e) = timed(
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(msg)
                    .query_async::<i64>(&mut conn),
            )
            .await
            {
                self.l2_error(op, &e);
            }
        }
    }

    /// An invalidation broadcast by another instance: drop the L1 copy.
    pub async fn on_invalidation(&self, payload: &str) {
        let Some((from, key)) = payload.split_once(':') else {
            return;
        };
        let (Ok(from), Ok(key)) = (from.parse::<usize>(), key.parse::<u64>()) else {
            return;
        };
        if from == self.index {
            return;
        }
        if let Some(l1) = self.l1() {
            let _ = l1.invalidate(key).await;
            Counters::add(&self.counters.invalidations);
        }
    }

    /// Redis client-side caching told this instance that keys it may hold changed (tracking
    /// invalidation; `None`: everything, e.g. after FLUSHALL).
    pub async fn on_tracking_invalidation(&self, keys: Option<Vec<u64>>) -> Result<(), TierError> {
        match keys {
            Some(keys) => {
                if let Some(l1) = self.l1() {
                    for key in keys {
                        let _ = l1.invalidate(key).await;
                        Counters::add(&self.counters.invalidations);
                    }
                }
                Ok(())
            }
            None => self.flush_l1(),
        }
    }

    /// Replace the L1 with an empty one.
    pub fn flush_l1(&self) -> Result<(), TierError> {
        if let Some(p) = &self.l1_plan {
            let fresh = tiers::local(p)?;
            let old = {
                let mut l1 = self.l1.write().unwrap_or_else(|e| e.into_inner());
                self.trace(Access::Clear);
                l1.replace(fresh)
            };
            if let Some(old) = old {
                self.retired_evictions
                    .fetch_add(old.evictions(), Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// The app instance restarts: a new process with a new, empty L1. Operations in flight
    /// finish against the old one, as requests to a dying process would.
    pub fn restart(&self, sh: &Shared) -> Result<(), TierError> {
        self.flush_l1()?;
        lock(&self.restarts).push(sh.t0.elapsed().as_secs_f64());
        Ok(())
    }

    pub fn take_trace(&self) -> Vec<Access> {
        self.trace
            .as_ref()
            .map(|t| std::mem::take(&mut *lock(t)))
            .unwrap_or_default()
    }

    pub fn take_timeline(&self) -> Vec<(f64, bool)> {
        self.timeline
            .as_ref()
            .map(|t| std::mem::take(&mut *lock(t)))
            .unwrap_or_default()
    }

    pub fn take_errors(&self) -> Vec<(String, Labels)> {
        std::mem::take(&mut *lock(&self.errors))
    }

    pub fn restart_times(&self) -> Vec<f64> {
        lock(&self.restarts).clone()
    }
}
