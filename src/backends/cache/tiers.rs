//! Cache tiers behind one small trait: in-process `moka` (W-TinyLFU, holds its bound) and
//! `stretto` (TinyLFU with asynchronous admission), and a Redis server reached with the
//! `redis` crate's async connection manager. In-process tiers never fail; Redis calls can
//! (a killed server), and every failure is returned, never hidden.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::notification::RemovalCause;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::origin::Value;
use super::plan::{Capacity, Local, LocalPlan};

/// A value shared between a tier and its readers.
pub type Cached = Arc<Value>;

/// A fresh in-process tier as planned.
pub fn local(p: &LocalPlan) -> Result<Arc<dyn Tier>, TierError> {
    Ok(match p.backend {
        Local::Moka => Arc::new(MokaTier::new(p.capacity, p.ttl)),
        Local::Stretto => Arc::new(StrettoTier::new(p.capacity, p.ttl)?),
    })
}

/// A failed tier call (Redis unavailable, a timeout, a protocol error).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TierError(pub String);

/// What a read-through lookup found.
pub enum Loaded {
    /// The value was cached.
    Hit(Cached),
    /// This call ran the loader (and the cache kept what it returned, if anything).
    Ran,
    /// Another call was loading the same key; this one waited for its result.
    Coalesced(Cached),
}

/// A loader for read-through lookups.
pub type Loader<'a> = Pin<Box<dyn Future<Output = Option<Cached>> + Send + 'a>>;

/// What is held at the end of a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Resident {
    pub entries: u64,
    pub bytes: u64,
    pub evictions: u64,
}

/// One cache tier.
#[async_trait::async_trait]
pub trait Tier: Send + Sync {
    /// The implementation: `moka`, `stretto` or `redis`.
    fn name(&self) -> &'static str;
    async fn get(&self, key: u64) -> Result<Option<Cached>, TierError>;
    async fn put(&self, key: u64, value: Cached) -> Result<(), TierError>;
    async fn invalidate(&self, key: u64) -> Result<(), TierError>;
    /// Entries held now, as the implementation counts them between maintenance runs.
    fn len(&self) -> u64;
    /// Entries evicted so far (capacity and admission).
    fn evictions(&self) -> u64;
    /// Settle pending maintenance, then count what is held. `key_space` bounds the keys
    /// used, for tiers that can only probe.
    async fn resident(&self, key_space: u64) -> Result<Resident, TierError>;
    /// Read-through: a lookup that runs `load` on a miss, coalescing concurrent loads of a key.
    async fn get_or_load(&self, _key: u64, _load: Loader<'_>) -> Result<Loaded, TierError> {
        Err(TierError(format!("{} cannot load through", self.name())))
    }
}

/// Entries and evictions counted by removal listeners.
#[derive(Default)]
struct Counters {
    evictions: AtomicU64,
}

/// `moka::future::Cache`: W-TinyLFU admission and eviction, bounded by entries or bytes.
pub struct MokaTier {
    cache: moka::future::Cache<u64, Cached>,
    counters: Arc<Counters>,
}

impl MokaTier {
    pub fn new(capacity: Capacity, ttl: Option<Duration>) -> MokaTier {
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let mut b = moka::future::Cache::builder()
            .max_capacity(capacity.value())
            .eviction_listener(move |_k: Arc<u64>, _v: Cached, cause: RemovalCause| {
                // moka reports candidates its admission policy rejects as size evictions too
                if cause == RemovalCause::Size {
                    c.evictions.fetch_add(1, Ordering::Relaxed);
                }
            });
        if let Capacity::Bytes(_) = capacity {
            b = b.weigher(|_k: &u64, v: &Cached| u32::try_from(v.size()).unwrap_or(u32::MAX));
        }
        if let Some(t) = ttl {
            b = b.time_to_live(t);
        }
        MokaTier {
            cache: b.build(),
            counters,
        }
    }
}

#[async_trait::async_trait]
impl Tier for MokaTier {
    fn name(&self) -> &'static str {
        "moka"
    }
    async fn get(&self, key: u64) -> Result<Option<Cached>, TierError> {
        Ok(self.cache.get(&key).await)
    }
    async fn put(&self, key: u64, value: Cached) -> Result<(), TierError> {
        self.cache.insert(key, value).await;
        Ok(())
    }
    async fn invalidate(&self, key: u64) -> Result<(), TierError> {
        self.cache.invalidate(&key).await;
        Ok(())
    }
    fn len(&self) -> u64 {
        self.cache.entry_count()
    }
    fn evictions(&self) -> u64 {
        self.counters.evictions.load(Ordering::Relaxed)
    }
    async fn resident(&self, _key_space: u64) -> Result<Resident, TierError> {
        self.cache.run_pending_tasks().await;
        let (mut entries, mut bytes) = (0, 0);
        for (_, v) in self.cache.iter() {
            entries += 1;
            bytes += v.size();
        }
        Ok(Resident {
            entries,
            bytes,
            evictions: self.counters.evictions.load(Ordering::Relaxed),
        })
    }
    async fn get_or_load(&self, key: u64, load: Loader<'_>) -> Result<Loaded, TierError> {
        if let Some(v) = self.cache.get(&key).await {
            return Ok(Loaded::Hit(v));
        }
        let mut ran = false;
        let entry = self
            .cache
            .entry(key)
            .or_optionally_insert_with(async {
                ran = true;
                load.await
            })
            .await;
        Ok(match (ran, entry) {
            (false, Some(e)) => Loaded::Coalesced(e.into_value()),
            _ => Loaded::Ran,
        })
    }
}

/// Counts stretto's evictions (its callback runs on stretto's processor thread).
struct StrettoCallback(Arc<Counters>);

impl stretto::CacheCallback for StrettoCallback {
    type Value = Cached;
    fn on_exit(&self, _val: Option<Cached>) {}
    fn on_evict(&self, _item: stretto::Item<Cached>) {
        self.0.evictions.fetch_add(1, Ordering::Relaxed);
    }
}

type StrettoCache = stretto::Cache<
    u64,
    Cached,
    stretto::DefaultKeyBuilder<u64>,
    stretto::DefaultCoster<Cached>,
    stretto::DefaultUpdateValidator<Cached>,
    StrettoCallback,
>;

/// `stretto::Cache` (sync): TinyLFU admission, sampled LFU eviction, applied asynchronously by
/// a processor thread — between drains it can hold more than its configured cost.
pub struct StrettoTier {
    cache: StrettoCache,
    by_bytes: bool,
    ttl: Option<Duration>,
    counters: Arc<Counters>,
    /// Inserts stretto dropped before its policy saw them (contended buffers).
    pub dropped: AtomicU64,
}

impl StrettoTier {
    pub fn new(capacity: Capacity, ttl: Option<Duration>) -> Result<StrettoTier, TierError> {
        let counters = Arc::new(Counters::default());
        let (by_bytes, counters_hint) = match capacity {
            Capacity::Entries(n) => (false, n),
            // about 10 counters per expected entry (stretto's guidance), assuming ~1 KiB values
            Capacity::Bytes(b) => (true, (b / 1024).max(1)),
        };
        let num_counters = usize::try_from(counters_hint.saturating_mul(10))
            .unwrap_or(usize::MAX)
            .max(100);
        let max_cost = i64::try_from(capacity.value()).unwrap_or(i64::MAX);
        let cache = stretto::CacheBuilder::new(num_counters, max_cost)
            .set_ignore_internal_cost(true)
            .set_callback(StrettoCallback(counters.clone()))
            .finalize()
            .map_err(|e| TierError(format!("cannot build the stretto cache: {e}")))?;
        Ok(StrettoTier {
            cache,
            by_bytes,
            ttl,
            counters,
            dropped: AtomicU64::new(0),
        })
    }

    fn cost(&self, v: &Value) -> i64 {
        if self.by_bytes {
            i64::try_from(v.size()).unwrap_or(i64::MAX).max(1)
        } else {
            1
        }
    }
}

impl Drop for StrettoTier {
    /// Dropping the last handle joins stretto's processor thread after it drains its backlog
    /// (seconds under load): do that on a blocking thread, not on an async worker.
    fn drop(&mut self) {
        let last = self.cache.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn_blocking(move || drop(last));
        }
    }
}

#[async_trait::async_trait]
impl Tier for StrettoTier {
    fn name(&self) -> &'static str {
        "stretto"
    }
    async fn get(&self, key: u64) -> Result<Option<Cached>, TierError> {
        Ok(self.cache.get(&key).map(|r| r.value().clone()))
    }
    async fn put(&self, key: u64, value: Cached) -> Result<(), TierError> {
        let cost = self.cost(&value);
        let kept = match self.ttl {
            Some(t) => self.cache.try_insert_with_ttl(key, value, cost, t),
            None => self.cache.try_insert(key, value, cost),
        }
        .map_err(|e| TierError(format!("stretto insert failed: {e}")))?;
        if !kept {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
    async fn invalidate(&self, key: u64) -> Result<(), TierError> {
        self.cache
            .try_remove(&key)
            .map_err(|e| TierError(format!("stretto remove failed: {e}")))
    }
    fn len(&self) -> u64 {
        self.cache.len() as u64
    }
    fn evictions(&self) -> u64 {
        self.counters.evictions.load(Ordering::Relaxed)
    }
    async fn resident(&self, key_space: u64) -> Result<Resident, TierError> {
        // what the store holds now, pending evictions included: stretto's processor can lag
        // its inserts by seconds (`wait()` would block until it catches up).
        // stretto cannot iterate: probe every key the run used
        let (mut entries, mut bytes) = (0, 0);
        for k in 0..key_space {
            if let Some(v) = self.cache.get(&k) {
                entries += 1;
                bytes += v.value().size();
            }
        }
        Ok(Resident {
            entries,
            bytes,
            evictions: self.counters.evictions.load(Ordering::Relaxed),
        })
    }
}

/// A tier in a Redis server: keys `<prefix>:<key>`, values the version (8 bytes, big
/// endian) followed by the payload.
pub struct RedisTier {
    conn: RedisConn,
    prefix: String,
    ttl: Option<Duration>,
    /// The nodes of a cluster (their memory is read one by one).
    nodes: Vec<String>,
}

/// A connection to a standalone Redis or to a Redis Cluster.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl RedisConn {
    /// Run one command, bounded by [`REDIS_CALL_TIMEOUT`].
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, TierError> {
        match self {
            RedisConn::Single(c) => timed(cmd.query_async(&mut c.clone())).await,
            RedisConn::Cluster(c) => timed(cmd.query_async(&mut c.clone())).await,
        }
    }
}

/// `used_memory`, `evicted_keys` and whether the node is a master, from INFO.
async fn node_info(url: &str) -> Result<(bool, u64, u64), TierError> {
    let client = redis::Client::open(url).map_err(|e| TierError(format!("bad redis url: {e}")))?;
    let mut c = timed(client.get_multiplexed_async_connection()).await?;
    let info: String = timed(redis::cmd("INFO").arg("all").query_async(&mut c)).await?;
    let field = |name: &str| -> Option<&str> {
        info.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .map(str::trim)
    };
    let num = |name: &str| field(name).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok((
        field("role") == Some("master"),
        num("used_memory"),
        num("evicted_keys"),
    ))
}

/// Bound on one Redis call, so that a dead server costs a bounded wait, never a hang.
pub const REDIS_CALL_TIMEOUT: Duration = Duration::from_millis(1000);

/// Connection settings for a cache that must keep going while Redis is down: short timeouts,
/// one quick reconnect attempt per failure.
pub fn redis_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(250)))
        .set_response_timeout(Some(Duration::from_millis(500)))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(100))
}

/// `url` with RESP3 requested (push messages: pub/sub on a multiplexed connection, tracking).
pub fn resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

pub async fn timed<T>(f: impl Future<Output = redis::RedisResult<T>>) -> Result<T, TierError> {
    match tokio::time::timeout(REDIS_CALL_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(TierError(format!("redis: {e}"))),
        Err(_) => Err(TierError(format!(
            "redis: no answer within {}ms",
            REDIS_CALL_TIMEOUT.as_millis()
        ))),
    }
}

impl RedisTier {
    pub async fn connect(
        url: &str,
        config: ConnectionManagerConfig,
        prefix: String,
        ttl: Option<Duration>,
    ) -> Result<RedisTier, TierError> {
        let client =
            redis::Client::open(url).map_err(|e| TierError(format!("bad redis url: {e}")))?;
        let conn = timed(client.get_connection_manager_with_config(config)).await?;
        Ok(RedisTier {
            conn: RedisConn::Single(conn),
            prefix,
            ttl,
            nodes: vec![url.to_string()],
        })
    }

    /// Connect to a Redis Cluster through any of its nodes.
    pub async fn connect_cluster(
        nodes: &[String],
        prefix: String,
        ttl: Option<Duration>,
    ) -> Result<RedisTier, TierError> {
        let client = redis::cluster::ClusterClient::builder(nodes.to_vec())
            .connection_timeout(Duration::from_millis(250))
            .response_timeout(Duration::from_millis(500))
            .retries(1)
            .build()
            .map_err(|e| TierError(format!("bad cluster nodes: {e}")))?;
        let conn = timed(client.get_async_connection()).await?;
        Ok(RedisTier {
            conn: RedisConn::Cluster(conn),
            prefix,
            ttl,
            nodes: nodes.to_vec(),
        })
    }

    pub fn key(&self, key: u64) -> String {
        format!("{}:{key}", self.prefix)
    }

    /// The standalone connection, for pub/sub and tracking.
    pub fn manager(&self) -> Option<ConnectionManager> {
        match &self.conn {
            RedisConn::Single(c) => Some(c.clone()),
            RedisConn::Cluster(_) => None,
        }
    }

    pub fn encode(v: &Value) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + v.payload.len());
        out.extend_from_slice(&v.version.to_be_bytes());
        out.extend_from_slice(&v.payload);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Value, TierError> {
        if bytes.len() < 8 {
            return Err(TierError(
                "redis: a cached value shorter than its version header".into(),
            ));
        }
        let (head, payload) = bytes.split_at(8);
        let version = u64::from_be_bytes(head.try_into().expect("8 bytes"));
        Ok(Value {
            version,
            payload: payload.into(),
        })
    }
}

#[async_trait::async_trait]
impl Tier for RedisTier {
    fn name(&self) -> &'static str {
        "redis"
    }
    async fn get(&self, key: u64) -> Result<Option<Cached>, TierError> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .query(redis::cmd("GET").arg(self.key(key)))
            .await?;
        bytes.map(|b| Self::decode(&b).map(Arc::new)).transpose()
    }
    async fn put(&self, key: u64, value: Cached) -> Result<(), TierError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(Self::encode(&value));
        if let Some(t) = self.ttl {
            cmd.arg("PX").arg(t.as_millis().max(1) as u64);
        }
        self.conn.query::<()>(&cmd).await
    }
    async fn invalidate(&self, key: u64) -> Result<(), TierError> {
        self.conn
            .query::<()>(redis::cmd("DEL").arg(self.key(key)))
            .await
    }
    fn len(&self) -> u64 {
        0
    }
    fn evictions(&self) -> u64 {
        0
    }
    async fn resident(&self, _key_space: u64) -> Result<Resident, TierError> {
        // a cluster sums DBSIZE over its masters
        let entries: u64 = self.conn.query(&redis::cmd("DBSIZE")).await?;
        let (mut bytes, mut evictions) = (0, 0);
        for url in &self.nodes {
            let (master, used, evicted) = node_info(url).await?;
            if master {
                bytes += used;
                evictions += evicted;
            }
        }
        Ok(Resident {
            entries,
            bytes,
            evictions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(version: u64, size: u64) -> Cached {
        Arc::new(Value::new(version, size))
    }

    #[tokio::test]
    async fn moka_holds_its_bound() {
        let t = MokaTier::new(Capacity::Entries(100), None);
        for k in 0..1000 {
            t.put(k, v(1, 10)).await.unwrap();
        }
        let r = t.resident(1000).await.unwrap();
        assert!(r.entries <= 100, "{r:?}");
        assert!(r.evictions > 0);
        assert_eq!(r.bytes, r.entries * 10);
        assert_eq!(t.evictions(), r.evictions);
    }

    #[tokio::test]
    async fn moka_coalesces_read_through_loads() {
        let t = Arc::new(MokaTier::new(Capacity::Entries(10), None));
        let loads = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (t, loads) = (t.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                let load: Loader<'_> = Box::pin(async {
                    loads.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Some(v(3, 1))
                });
                match t.get_or_load(7, load).await.unwrap() {
                    Loaded::Hit(v) | Loaded::Coalesced(v) => v.version,
                    Loaded::Ran => 3,
                }
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), 3);
        }
        assert_eq!(loads.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stretto_counts_what_it_holds() {
        let t = StrettoTier::new(Capacity::Entries(100), None).unwrap();
        for k in 0..1000 {
            t.put(k, v(1, 10)).await.unwrap();
        }
        // stretto's store is written at once and trimmed by its processor later
        let c = t.cache.clone();
        tokio::task::spawn_blocking(move || c.wait())
            .await
            .unwrap()
            .unwrap();
        let r = t.resident(1000).await.unwrap();
        assert!(r.entries <= 100 && r.entries > 0, "{r:?}");
        assert_eq!(r.bytes, r.entries * 10);
    }

    #[test]
    fn redis_values_round_trip_and_urls_ask_for_resp3() {
        let val = Value::new(42, 5);
        let back = RedisTier::decode(&RedisTier::encode(&val)).unwrap();
        assert_eq!((back.version, back.size()), (42, 5));
        assert!(RedisTier::decode(b"abc").is_err());
        assert_eq!(
            resp3("redis://127.0.0.1:7000"),
            "redis://127.0.0.1:7000?protocol=resp3"
        );
        assert_eq!(resp3("redis://h/0?x=1"), "redis://h/0?x=1&protocol=resp3");
    }
}
