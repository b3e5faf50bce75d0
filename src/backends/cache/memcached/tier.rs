//! A memcached tier: perfspec's own client placing each key on a node with a [`Ring`]
//! (ketama, rendezvous or modula), one connection pool per node, and twemproxy's ejection
//! rules — a node that failed `failure_limit` calls in a row leaves the ring (its keys move
//! to the others) and is tried again after `retry_timeout`. Behind a proxy (twemproxy) the
//! ring has one node, the proxy, and never ejects it: the proxy does the placing.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::protocol::{Conn, Pool, Request};
use super::ring::{Ring, RingNode};
use super::server::Ejection;
use crate::backends::cache::run_state::lock;
use crate::backends::cache::tiers::{Cached, RedisTier, Resident, Tier, TierError};

/// Most L2 lookups kept on the timeline (16 bytes each).
const MAX_TIMELINE: usize = 4_000_000;

/// One node as the client sees it.
pub struct Slot {
    pub pool: Pool,
    /// Calls that failed in a row.
    failures: AtomicU32,
    /// Calls routed here.
    pub ops: AtomicU64,
    pub errors: AtomicU64,
    /// Gets that found nothing.
    pub misses: AtomicU64,
    /// When an ejected node is tried again.
    retry_at: Mutex<Option<Instant>>,
}

/// A change of the ring: a node ejected, retried or added.
pub struct RingChange {
    pub at: Instant,
    pub what: String,
    pub before: Ring,
    pub after: Ring,
}

pub struct MemcachedTier {
    ring: RwLock<Ring>,
    slots: RwLock<Vec<Arc<Slot>>>,
    ejection: Ejection,
    prefix: String,
    exptime: u64,
    /// The real nodes (`host:port`), read with `stats`; the same as the ring's without a proxy.
    stat_nodes: Mutex<Vec<String>>,
    pub proxied: bool,
    pub changes: Mutex<Vec<RingChange>>,
    /// `(seconds since t0, hit)` of every get (an error counts as a miss).
    pub timeline: Mutex<Vec<(f64, bool)>>,
    t0: Instant,
}

fn slot(addr: String) -> Arc<Slot> {
    Arc::new(Slot {
        pool: Pool::new(addr),
        failures: AtomicU32::new(0),
        ops: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        misses: AtomicU64::new(0),
        retry_at: Mutex::new(None),
    })
}

fn ring_node(addr: &str) -> RingNode {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "11211"));
    RingNode::new(host, port.parse().unwrap_or(11211))
}

/// memcached's expiry in whole seconds (0: never); a ttl under a second keeps 1 second.
pub fn exptime(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |t| t.as_secs_f64().ceil().max(1.0) as u64)
}

/// Settings of one memcached tier.
pub struct TierConfig {
    pub prefix: String,
    pub ttl: Option<Duration>,
    pub ejection: Ejection,
    pub t0: Instant,
}

impl MemcachedTier {
    /// A client over `nodes` (`host:port`) placed by `ring` (built over the same nodes); with
    /// `proxy`, every call goes to it and `nodes` are only read for their stats.
    pub fn new(ring: Ring, nodes: Vec<String>, proxy: Option<String>, c: TierConfig) -> Self {
        let proxied = proxy.is_some();
        let (ring, slots, ejection) = match proxy {
            Some(p) => (
                Ring::new(ring.hashing(), vec![ring_node(&p)]),
                vec![slot(p)],
                Ejection {
                    failure_limit: 0,
                    ..c.ejection
                },
            ),
            None => (ring, nodes.iter().cloned().map(slot).collect(), c.ejection),
        };
        MemcachedTier {
            ring: RwLock::new(ring),
            slots: RwLock::new(slots),
            ejection,
            prefix: c.prefix,
            exptime: exptime(c.ttl),
            stat_nodes: Mutex::new(nodes),
            proxied,
            changes: Mutex::new(Vec::new()),
            timeline: Mutex::new(Vec::new()),
            t0: c.t0,
        }
    }

    /// Build the ring over `nodes` (`host:port`).
    pub fn ring_over(hashing: super::ring::Hashing, nodes: &[String]) -> Ring {
        Ring::new(hashing, nodes.iter().map(|a| ring_node(a)).collect())
    }

    /// When the run started (the time axis of the timeline and the ring changes).
    pub fn t0(&self) -> Instant {
        self.t0
    }

    pub fn key(&self, key: u64) -> String {
        format!("{}:{key}", self.prefix)
    }

    pub fn slots(&self) -> Vec<Arc<Slot>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn change(&self, what: String, edit: impl FnOnce(&mut Ring) -> bool) {
        let mut ring = self.ring.write().unwrap_or_else(|e| e.into_inner());
        let before = ring.clone();
        if edit(&mut ring) {
            lock(&self.changes).push(RingChange {
                at: Instant::now(),
                what,
                before,
                after: ring.clone(),
            });
        }
    }

    /// A node added to the ring (a new node started mid-run).
    pub fn add_node(&self, addr: String) {
        self.slots
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot(addr.clone()));
        lock(&self.stat_nodes).push(addr.clone());
        self.change(format!("memcached {addr} added to the ring"), |r| {
            r.add(ring_node(&addr));
            true
        });
    }

    /// Put ejected nodes whose retry time has come back on the ring.
    fn retry_due(&self, slots: &[Arc<Slot>]) {
        let now = Instant::now();
        for (i, s) in slots.iter().enumerate() {
            let due = {
                let mut r = lock(&s.retry_at);
                let due = r.is_some_and(|t| t <= now);
                if due {
                    *r = None;
                }
                due
            };
            if due {
                s.failures.store(0, Ordering::Relaxed);
                self.change(format!("memcached {} retried", s.pool.addr), |r| {
                    r.set_live(i, true)
                });
            }
        }
    }

    fn route(&self, key: &str) -> Result<(usize, Arc<Slot>), TierError> {
        let slots = self.slots();
        if self.ejection.failure_limit > 0 {
            self.retry_due(&slots);
        }
        let i = self
            .ring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .node_of(key.as_bytes())
            .ok_or_else(|| TierError("memcached: every node is ejected".into()))?;
        let s = slots[i].clone();
        s.ops.fetch_add(1, Ordering::Relaxed);
        Ok((i, s))
    }

    /// Count a call's outcome; eject the node after `failure_limit` failures in a row.
    fn outcome<T>(&self, i: usize, s: &Slot, r: Result<T, String>) -> Result<T, TierError> {
        match r {
            Ok(v) => {
                s.failures.store(0, Ordering::Relaxed);
                Ok(v)
            }
            Err(e) => {
                s.errors.fetch_add(1, Ordering::Relaxed);
                s.pool.clear();
                let n = s.failures.fetch_add(1, Ordering::Relaxed) + 1;
                let limit = self.ejection.failure_limit;
                if limit > 0 && n == limit {
                    *lock(&s.retry_at) = Some(Instant::now() + self.ejection.retry_timeout);
                    self.change(
                        format!(
                            "memcached {} ejected after {limit} failed calls",
                            s.pool.addr
                        ),
                        |r| r.set_live(i, false),
                    );
                }
                Err(TierError(e))
            }
        }
    }

    fn record(&self, hit: bool) {
        let mut t = lock(&self.timeline);
        if t.len() < MAX_TIMELINE {
            t.push((self.t0.elapsed().as_secs_f64(), hit));
        }
    }

    /// `stats` of every real node, in order: `None` for one that does not answer.
    pub async fn node_stats(&self) -> Vec<(String, Option<Vec<(String, String)>>)> {
        let nodes = lock(&self.stat_nodes).clone();
        let mut out = Vec::new();
        for addr in nodes {
            let stats = async {
                let mut c = Conn::connect(&addr).await?;
                tokio::time::timeout(super::protocol::CALL_TIMEOUT, c.stats())
                    .await
                    .map_err(|_| "no answer to stats".to_string())?
            };
            let stats = stats.await.ok();
            out.push((addr, stats));
        }
        out
    }

    /// Empty every node (before a run on nodes perfspec started).
    pub async fn flush(&self) -> Result<(), String> {
        let nodes = lock(&self.stat_nodes).clone();
        for addr in nodes {
            let mut c = Conn::connect(&addr).await?;
            c.flush_all().await?;
        }
        Ok(())
    }
}

/// A numeric `stats` field.
pub fn stat(stats: &[(String, String)], name: &str) -> u64 {
    stats
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

#[async_trait::async_trait]
impl Tier for MemcachedTier {
    fn name(&self) -> &'static str {
        "memcached"
    }
    async fn get(&self, key: u64) -> Result<Option<Cached>, TierError> {
        let k = self.key(key);
        let (i, s) = self.route(&k)?;
        let got = s.pool.call(Request::Get(&k)).await;
        let got = self.outcome(i, &s, got);
        if let Ok(None) = got {
            s.misses.fetch_add(1, Ordering::Relaxed);
        }
        self.record(matches!(got, Ok(Some(_))));
        got?.map(|b| RedisTier::decode(&b).map(Arc::new))
            .transpose()
    }
    async fn put(&self, key: u64, value: Cached) -> Result<(), TierError> {
        let k = self.key(key);
        let (i, s) = self.route(&k)?;
        let bytes = RedisTier::encode(&value);
        let exp = self.exptime;
        let r = s.pool.call(Request::Set(&k, &bytes, exp)).await;
        self.outcome(i, &s, r).map(|_| ())
    }
    async fn invalidate(&self, key: u64) -> Result<(), TierError> {
        let k = self.key(key);
        let (i, s) = self.route(&k)?;
        let r = s.pool.call(Request::Delete(&k)).await;
        self.outcome(i, &s, r).map(|_| ())
    }
    fn len(&self) -> u64 {
        0
    }
    fn evictions(&self) -> u64 {
        0
    }
    async fn resident(&self, _key_space: u64) -> Result<Resident, TierError> {
        let mut r = Resident::default();
        let stats = self.node_stats().await;
        if stats.iter().all(|(_, s)| s.is_none()) {
            return Err(TierError("no memcached node answers stats".into()));
        }
        for s in stats.iter().filter_map(|(_, s)| s.as_ref()) {
            r.entries += stat(s, "curr_items");
            r.bytes += stat(s, "bytes");
            r.evictions += stat(s, "evictions");
        }
        Ok(r)
    }
}
