//! The topology of a cache run: the Redis (or Redis Cluster) perfspec starts or is given,
//! each instance's tiers and connections, and the keyspace a run owns there.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::instance::{Instance, Shared};
use super::invalidation::enable_tracking;
use super::plan::{Plan, RedisSource, SharedPlan};
use super::redis_server::{RedisCluster, RedisServer};
use super::tiers::{self, RedisTier, Tier, TierError, redis_config, resp3, timed};
use crate::engine::BackendError;

/// Where the Redis tier of one run lives, and its key prefix.
pub struct RedisTarget {
    /// One URL, or every node of a cluster.
    pub urls: Vec<String>,
    pub cluster: bool,
    /// perfspec started it (it is flushed before each run and measured at the end).
    pub owned: bool,
    pub prefix: String,
    pub ttl: Option<Duration>,
}

/// Start the Redis (or Redis Cluster) a spec asks perfspec to start, once for all sweep runs.
pub async fn start_redis(
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

/// The Redis tier of sweep run `index` (none without a Redis L2): a fresh, empty keyspace
/// for every run — flushed when perfspec owns the server, a unique key prefix otherwise.
/// A server perfspec started that died in an earlier run is started again.
pub async fn redis_target(
    plan: &Plan,
    index: usize,
    server: Option<&Arc<tokio::sync::Mutex<RedisServer>>>,
    cluster_urls: Option<&Vec<String>>,
    unique: u128,
) -> Result<Option<RedisTarget>, BackendError> {
    let Some(SharedPlan::Redis { source, ttl }) = &plan.l2 else {
        return Ok(None);
    };
    let mut server_url = None;
    if let Some(srv) = server {
        let mut s = srv.lock().await;
        if !s.is_running() {
            s.restart().await.map_err(|e| BackendError::Failed {
                message: format!("redis-server did not restart: {e}"),
                partial: None,
            })?;
        }
        server_url = Some(s.url());
    }
    let (urls, cluster, owned) = match (source, &server_url, cluster_urls) {
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
    // keys in a Redis perfspec did not start are unique to this run
    let prefix = if owned {
        format!("perfspec:{index}")
    } else {
        format!("perfspec:{}:{unique}:{index}", std::process::id())
    };
    let target = RedisTarget {
        urls,
        cluster,
        owned,
        prefix,
        ttl: *ttl,
    };
    if target.owned {
        flush(&target).await.map_err(|e| {
            BackendError::Unavailable(format!("cannot reach the Redis perfspec started: {e}"))
        })?;
    }
    Ok(Some(target))
}

/// How the instances of a run talk to each other through Redis.
#[derive(Clone, Copy)]
pub struct Wiring {
    pub pubsub: bool,
    pub tracking: bool,
}

/// Push messages (pub/sub or tracking invalidations) for instance `i`.
pub type Pushes = (usize, UnboundedReceiver<redis::PushInfo>);

/// Every instance of a run, with its L1, its L2 (a local shared tier or Redis) and the
/// connections that publish, subscribe or are tracked.
pub async fn connect_instances(
    plan: &Plan,
    redis: Option<&RedisTarget>,
    shared: &Shared,
    wiring: Wiring,
    restarted: &[usize],
) -> Result<(Vec<Instance>, Vec<Pushes>), BackendError> {
    let shared_local = match &plan.l2 {
        Some(SharedPlan::Local(p)) => {
            Some(tiers::local(p).map_err(|e| BackendError::Unavailable(e.0))?)
        }
        _ => None,
    };
    let bounded = plan.bounds_applicability().is_ok();
    let mut instances = Vec::new();
    let mut pushes = Vec::new();
    for i in 0..plan.instances {
        let mut inst = Instance::new(
            i,
            plan.l1.clone(),
            shared_local.clone(),
            bounded,
            restarted.contains(&i),
        )
        .map_err(|e| BackendError::Unavailable(e.0))?;
        if let Some(r) = redis {
            let (tier, side, rx) = connect_redis(r, i, wiring).await?;
            pushes.extend(rx.map(|rx| (i, rx)));
            let redis_conn = tier.manager();
            let side = side.or_else(|| redis_conn.clone());
            if let (Some(ch), Some(conn)) = (&shared.channel, &side) {
                let mut conn = conn.clone();
                timed(conn.subscribe(ch)).await.map_err(|e| {
                    BackendError::Unavailable(format!("cannot subscribe to {ch}: {e}"))
                })?;
                inst.publisher = Some(conn);
            }
            if wiring.tracking
                && let Some(conn) = &redis_conn
            {
                enable_tracking(conn, &r.prefix).await.map_err(|e| {
                    BackendError::Unavailable(format!("cannot turn on client tracking: {e}"))
                })?;
            }
            inst.l2 = Some(Arc::new(tier) as Arc<dyn Tier>);
            inst.redis = redis_conn;
        }
        instances.push(inst);
    }
    Ok((instances, pushes))
}

/// Instance `i`'s Redis tier, the connection that subscribes and publishes (pubsub on a
/// cluster: a separate one on one node), and where its pushes arrive.
async fn connect_redis(
    r: &RedisTarget,
    i: usize,
    wiring: Wiring,
) -> Result<
    (
        RedisTier,
        Option<redis::aio::ConnectionManager>,
        Option<UnboundedReceiver<redis::PushInfo>>,
    ),
    BackendError,
> {
    let unreachable = |e: TierError| {
        BackendError::Unavailable(format!(
            "cannot connect to redis at {}: {e}",
            r.urls.join(", ")
        ))
    };
    if r.cluster {
        let mut side = None;
        let mut pushes = None;
        if wiring.pubsub {
            // a PUBLISH on any node of a cluster reaches the subscribers of every node
            // (the cluster bus): each instance subscribes on one node, spread over them
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            pushes = Some(rx);
            let node = &r.urls[i % r.urls.len()];
            let config = redis_config()
                .set_push_sender(tx)
                .set_automatic_resubscription();
            let t = RedisTier::connect(&resp3(node), config, r.prefix.clone(), r.ttl)
                .await
                .map_err(unreachable)?;
            side = t.manager();
        }
        let tier = RedisTier::connect_cluster(&r.urls, r.prefix.clone(), r.ttl)
            .await
            .map_err(unreachable)?;
        return Ok((tier, side, pushes));
    }
    let url = &r.urls[0];
    if wiring.pubsub || wiring.tracking {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let config = redis_config().set_push_sender(tx);
        let config = if wiring.pubsub {
            config.set_automatic_resubscription()
        } else {
            config
        };
        let tier = RedisTier::connect(&resp3(url), config, r.prefix.clone(), r.ttl)
            .await
            .map_err(unreachable)?;
        return Ok((tier, None, Some(rx)));
    }
    let tier = RedisTier::connect(url, redis_config(), r.prefix.clone(), r.ttl)
        .await
        .map_err(unreachable)?;
    Ok((tier, None, None))
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
pub async fn cleanup(url: &str, prefix: &str, key_space: u64) {
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
