//! A validated cache spec → concrete run plans (one per sweep value), with every default
//! resolved, and the capability checks `validate` runs: what this backend cannot run is a
//! validation error, never a run-time surprise.

use std::time::Duration;

use crate::spec::cache::{
    At, CacheDoc, Invalidation, Nodes, ReadPattern, RingDistribution, Tier as TierSpec,
    TierBackend, WritePolicy,
};

use super::memcached::ring::Hashing;
use super::memcached::server::Ejection;
use crate::spec::diagnostic::Diagnostic;
use crate::spec::{Body, Spec};

use super::workload::{KeyDist, Mix, TraceSpec, YCSB_MAX_SCAN, YCSB_RECORDS, preset};

/// How an in-process tier bounds its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capacity {
    Entries(u64),
    Bytes(u64),
}

impl Capacity {
    pub fn value(self) -> u64 {
        match self {
            Capacity::Entries(n) | Capacity::Bytes(n) => n,
        }
    }
}

/// Origin latency when the spec gives none.
pub const DEFAULT_ORIGIN_LATENCY: Duration = Duration::from_millis(1);
/// Value size when the spec gives none (YCSB: 10 fields of 100 bytes).
pub const DEFAULT_VALUE_SIZE: u64 = 1000;
/// Seed when the spec gives none.
pub const DEFAULT_SEED: u64 = 1;

/// The in-process implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    Moka,
    Stretto,
}

impl Local {
    pub fn as_str(self) -> &'static str {
        match self {
            Local::Moka => "moka",
            Local::Stretto => "stretto",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LocalPlan {
    pub backend: Local,
    pub capacity: Capacity,
    pub ttl: Option<Duration>,
}

/// Where a Redis tier lives.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisSource {
    /// perfspec starts `redis-server` (optionally bounded by `maxmemory`, allkeys-lru).
    Spawn {
        max_bytes: Option<u64>,
    },
    Url(String),
    /// perfspec starts a local Redis Cluster.
    Cluster {
        masters: u32,
        replicas: u32,
    },
    /// An existing Redis Cluster's nodes.
    Nodes(Vec<String>),
}

/// The shared second tier.
#[derive(Debug, Clone, PartialEq)]
pub enum SharedPlan {
    Redis {
        source: RedisSource,
        ttl: Option<Duration>,
    },
    /// One in-process cache shared by every instance.
    Local(LocalPlan),
    Memcached(MemcachedPlan),
}

/// twemproxy's defaults: eject after 2 failures in a row, retry after 30 s.
pub const DEFAULT_EJECTION: Ejection = Ejection {
    failure_limit: 2,
    retry_timeout: Duration::from_secs(30),
};

/// A memcached tier: nodes perfspec starts or is given, placed by perfspec's ring or by a
/// twemproxy perfspec starts in front of them.
#[derive(Debug, Clone, PartialEq)]
pub struct MemcachedPlan {
    /// How many nodes perfspec starts, or the given `host:port`s.
    pub spawn: Option<u32>,
    pub servers: Vec<String>,
    pub hashing: Hashing,
    pub proxy: bool,
    pub ejection: Ejection,
    pub ttl: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Clear this instance's L1 (from 0).
    Restart(usize),
    KillRedis {
        restore_after: Option<Duration>,
    },
    /// Kill this memcached node (from 0).
    KillNode {
        node: usize,
        restore_after: Option<Duration>,
    },
    AddNode,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedEvent {
    pub at: At,
    pub action: Action,
}

/// Everything one run needs, defaults resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub instances: usize,
    pub l1: Option<LocalPlan>,
    pub l2: Option<SharedPlan>,
    pub invalidation: Invalidation,
    pub latency: (Duration, Duration),
    pub read_through: bool,
    pub write_invalidate: bool,
    pub trace: TraceSpec,
    pub value_size: (u64, u64),
    pub ops: Option<u64>,
    pub duration: Option<Duration>,
    pub concurrency: usize,
    pub events: Vec<PlannedEvent>,
}

impl Plan {
    /// Whether the exact LRU and Bélády bounds apply to each instance's L1 read trace, or
    /// why not.
    pub fn bounds_applicability(&self) -> Result<u64, String> {
        let Some(l1) = &self.l1 else {
            return Err("not applicable: the topology has no in-process l1 tier".into());
        };
        let Capacity::Entries(n) = l1.capacity else {
            return Err("not applicable: the l1 capacity is in bytes (optimal caching of variable sizes has no exact bound here)".into());
        };
        if l1.ttl.is_some() {
            return Err(
                "not applicable: entries expire (ttl), which the reference policies do not model"
                    .into(),
            );
        }
        if self.instances > 1
            && self.trace.mix.has_writes()
            && matches!(
                self.invalidation,
                Invalidation::Pubsub | Invalidation::Tracking
            )
        {
            return Err(format!(
                "not applicable: {} invalidation removes entries when other instances write, at times the trace does not fix",
                self.invalidation
            ));
        }
        if matches!(self.l2, Some(SharedPlan::Local(_))) {
            return Err(
                "not applicable: a shared in-process l2 is not modelled by the per-instance bounds"
                    .into(),
            );
        }
        Ok(n)
    }

    pub fn memcached(&self) -> Option<&MemcachedPlan> {
        match &self.l2 {
            Some(SharedPlan::Memcached(m)) => Some(m),
            _ => None,
        }
    }

    pub fn redis(&self) -> Option<&RedisSource> {
        match &self.l2 {
            Some(SharedPlan::Redis { source, .. }) => Some(source),
            _ => None,
        }
    }
}

/// One run per sweep value.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The label sweep metrics carry (`capacity`), when the spec sweeps.
    pub label: Option<&'static str>,
    /// `(label value, plan)`.
    pub points: Vec<(String, Plan)>,
    /// The point whose metrics are also emitted without the sweep label.
    pub representative: usize,
    /// Which point that is, for the report.
    pub note: Option<String>,
}

fn local_plan(t: &TierSpec, default_ttl: Option<Duration>) -> Option<LocalPlan> {
    let backend = match t.backend.value {
        TierBackend::Moka => Local::Moka,
        TierBackend::Stretto => Local::Stretto,
        TierBackend::Redis | TierBackend::Memcached => return None,
    };
    let capacity = match (&t.capacity, &t.max_bytes) {
        (Some(c), _) => Capacity::Entries(c.value),
        (None, Some(b)) => Capacity::Bytes(b.0.max(1.0) as u64),
        (None, None) => return None,
    };
    Some(LocalPlan {
        backend,
        capacity,
        ttl: t.ttl.map(|d| d.as_std()).or(default_ttl),
    })
}

fn memcached_plan(t: &TierSpec, default_ttl: Option<Duration>) -> MemcachedPlan {
    let spawn = match t.nodes.as_ref().map(|n| &n.value) {
        Some(Nodes::Count(n)) => Some(*n),
        _ => (t.spawn == Some(true)).then_some(1),
    };
    MemcachedPlan {
        spawn,
        servers: t
            .servers
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default(),
        hashing: match t.distribution.as_ref().map(|d| d.value) {
            None | Some(RingDistribution::Ketama) => Hashing::Ketama,
            Some(RingDistribution::Rendezvous) => Hashing::Rendezvous,
            Some(RingDistribution::Modula) => Hashing::Modula,
        },
        proxy: t.proxy.is_some(),
        ejection: Ejection {
            failure_limit: t
                .failure_limit
                .as_ref()
                .map_or(DEFAULT_EJECTION.failure_limit, |f| f.value),
            retry_timeout: t
                .retry_timeout
                .map_or(DEFAULT_EJECTION.retry_timeout, |d| d.as_std()),
        },
        ttl: t.ttl.map(|d| d.as_std()).or(default_ttl),
    }
}

/// The plan of a spec as written (no sweep applied).
pub fn plan(doc: &CacheDoc) -> Plan {
    let topo = &doc.topology;
    let w = &doc.workload;
    let default_ttl = w.ttl.map(|d| d.as_std());
    let (mut mix, mut dist) = match w.preset {
        Some(p) => preset(p),
        None => (Mix::reads_only(), KeyDist::Uniform),
    };
    if let Some(d) = &w.distribution {
        dist = KeyDist::from_spec(d);
    }
    if let Some(mx) = &w.mix {
        let f = |r: &Option<crate::spec::source::Spanned<crate::spec::decode::Ratio>>| {
            r.as_ref().map_or(0.0, |r| r.value.0)
        };
        mix = Mix([
            f(&mx.read),
            f(&mx.update),
            f(&mx.insert),
            f(&mx.delete),
            f(&mx.rmw),
            f(&mx.scan),
        ]);
    }
    let instances = topo
        .instances
        .as_ref()
        .map_or(1, |i| i.value as usize)
        .max(1);
    let keys = w.keys.as_ref().map_or(YCSB_RECORDS, |k| k.value).max(1);
    let l2 = topo.l2.as_ref().and_then(|t| match t.backend.value {
        TierBackend::Redis => {
            let nodes = t.nodes.as_ref().and_then(|n| match &n.value {
                Nodes::List(l) => Some(l),
                Nodes::Count(_) => None,
            });
            let source = match (&t.url, nodes, &t.cluster) {
                (Some(u), _, _) => RedisSource::Url(u.value.clone()),
                (None, Some(n), _) => RedisSource::Nodes(n.clone()),
                (None, None, Some(c)) => RedisSource::Cluster {
                    masters: c.masters.value,
                    replicas: c.replicas.unwrap_or(0),
                },
                (None, None, None) => RedisSource::Spawn {
                    max_bytes: t.max_bytes.map(|b| b.0.max(1.0) as u64),
                },
            };
            Some(SharedPlan::Redis {
                source,
                ttl: t.ttl.map(|d| d.as_std()).or(default_ttl),
            })
        }
        TierBackend::Memcached => Some(SharedPlan::Memcached(memcached_plan(t, default_ttl))),
        _ => local_plan(t, default_ttl).map(SharedPlan::Local),
    });
    let origin = doc.origin.as_ref();
    let latency = origin
        .and_then(|o| o.latency)
        .map_or((DEFAULT_ORIGIN_LATENCY, DEFAULT_ORIGIN_LATENCY), |r| {
            (r.min.as_std(), r.max.as_std())
        });
    let value_size = w
        .value_size
        .map_or((DEFAULT_VALUE_SIZE, DEFAULT_VALUE_SIZE), |r| {
            (r.min.0.max(0.0) as u64, r.max.0.max(0.0) as u64)
        });
    let events = doc
        .events
        .iter()
        .flatten()
        .filter_map(|e| {
            let restore_after = e.restore_after.map(|d| d.as_std());
            let action = match (&e.restart, &e.kill_redis, &e.kill_node, &e.add_node) {
                (Some(i), ..) => Action::Restart(i.value.saturating_sub(1) as usize),
                (None, Some(k), ..) if k.value => Action::KillRedis { restore_after },
                (None, None, Some(n), _) => Action::KillNode {
                    node: n.value.saturating_sub(1) as usize,
                    restore_after,
                },
                (None, None, None, Some(a)) if a.value => Action::AddNode,
                _ => return None,
            };
            Some(PlannedEvent { at: e.at, action })
        })
        .collect();
    Plan {
        instances,
        l1: topo.l1.as_ref().and_then(|t| local_plan(t, default_ttl)),
        l2,
        invalidation: topo
            .invalidation
            .as_ref()
            .map_or(Invalidation::None, |i| i.value),
        latency,
        read_through: origin.and_then(|o| o.pattern) == Some(ReadPattern::ReadThrough),
        write_invalidate: origin.and_then(|o| o.writes) == Some(WritePolicy::WriteInvalidate),
        trace: TraceSpec {
            keys,
            dist,
            mix,
            instances,
            max_scan: YCSB_MAX_SCAN,
            seed: w.seed.unwrap_or(DEFAULT_SEED),
        },
        value_size,
        ops: w.ops.as_ref().map(|o| o.value),
        duration: w.duration.as_ref().map(|d| d.as_std()),
        concurrency: w
            .concurrency
            .as_ref()
            .map_or(1, |c| c.value as usize)
            .max(1),
        events,
    }
}

/// Sweep paths this backend runs, and the label their metrics carry.
const SWEEPS: &[(&str, &str)] = &[
    ("topology.l1.capacity", "capacity"),
    ("topology.l1.max_bytes", "capacity"),
];

/// The runs of a spec: one per sweep value, or the spec itself.
pub fn sweep(doc: &CacheDoc) -> Sweep {
    let base = plan(doc);
    let Some((path, values)) = doc.sweep.as_ref().and_then(|s| s.value.iter().next()) else {
        return Sweep {
            label: None,
            points: vec![(String::new(), base)],
            representative: 0,
            note: None,
        };
    };
    let label = SWEEPS.iter().find(|(p, _)| p == path).map(|(_, l)| *l);
    let mut points = Vec::new();
    for v in values.value.iter() {
        let n = v.as_u64().unwrap_or(1).max(1);
        let mut p = base.clone();
        if let Some(l1) = &mut p.l1 {
            l1.capacity = if path.ends_with("max_bytes") {
                Capacity::Bytes(n)
            } else {
                Capacity::Entries(n)
            };
        }
        points.push((n.to_string(), p));
    }
    let own = base.l1.as_ref().map(|l| l.capacity);
    let (representative, note) = match points
        .iter()
        .position(|(_, p)| p.l1.as_ref().map(|l| l.capacity) == own)
    {
        Some(i) => (
            i,
            format!(
                "sweep of {path}: metrics without a `capacity` label come from the spec's own value ({}); latency histograms always carry `capacity`, so an SLO on latency without it judges every sweep run together",
                points[i].0
            ),
        ),
        None => {
            let i = points.len() - 1;
            (
                i,
                format!(
                    "sweep of {path}: the spec's own value is not swept, so metrics without a `capacity` label come from the last sweep value ({}); latency histograms always carry `capacity`, so an SLO on latency without it judges every sweep run together",
                    points[i].0
                ),
            )
        }
    };
    Sweep {
        label,
        points,
        representative,
        note: Some(note),
    }
}

/// What a memcached `l2` cannot do here: entry capacities, `max_bytes`, killing Redis,
/// killing or adding nodes perfspec did not start, adding a node behind a proxy.
fn check_memcached(
    doc: &CacheDoc,
    err: &dyn Fn(crate::spec::source::Span, String, &str) -> Diagnostic,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(t) = doc
        .topology
        .l2
        .as_ref()
        .filter(|t| t.backend.value == TierBackend::Memcached)
    else {
        return out;
    };
    if let Some(c) = &t.capacity {
        out.push(err(
            c.span,
            "a memcached tier is bounded by each node's memory, not by entries".into(),
            "remove `capacity` (each node perfspec starts has 64 MiB)",
        ));
    }
    if t.max_bytes.is_some() {
        out.push(err(
            t.backend.span,
            "`max_bytes` on a memcached tier is not supported yet".into(),
            "remove it (each node perfspec starts has 64 MiB)",
        ));
    }
    for e in doc.events.iter().flatten() {
        if let Some(k) = &e.kill_redis {
            out.push(err(
                k.span,
                "`kill_redis` kills a Redis `l2`; this one is memcached".into(),
                "use `kill_node: N`",
            ));
        }
        let node_event = e
            .kill_node
            .as_ref()
            .map(|k| (k.span, "kill_node"))
            .or(e.add_node.as_ref().map(|a| (a.span, "add_node")));
        if let Some((span, what)) = node_event
            && t.servers.is_some()
        {
            out.push(err(
                span,
                format!(
                    "`{what}` needs memcached nodes perfspec started; these are given by `servers`"
                ),
                "use `spawn: true` with `nodes: N`",
            ));
        }
        if let Some(a) = &e.add_node
            && t.proxy.is_some()
        {
            out.push(err(a.span, "`add_node` behind twemproxy is not supported: nutcracker cannot add a server without a restart".into(), "compare adding a node with the client ring (no `proxy`)"));
        }
    }
    out
}

/// Capability checks for `validate`.
pub fn check(spec: &Spec) -> Vec<Diagnostic> {
    let Body::Cache(doc) = &spec.body else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let file = &spec.file;
    let name_span = doc.name.span;
    let err = |span, msg: String, hint: &str| {
        Diagnostic::error("backend::capability", msg)
            .at(file, span)
            .hint(hint.to_string())
    };
    let topo = &doc.topology;
    let l1_local = topo
        .l1
        .as_ref()
        .filter(|t| !matches!(t.backend.value, TierBackend::Redis | TierBackend::Memcached));
    out.extend(check_memcached(doc, &err));
    if let Some(inv) = &topo.invalidation {
        let l2 = topo.l2.as_ref().map(|t| t.backend.value);
        let redis_l2 = l2 == Some(TierBackend::Redis);
        if matches!(inv.value, Invalidation::Pubsub | Invalidation::Tracking)
            && l2 == Some(TierBackend::Memcached)
        {
            out.push(err(
                inv.span,
                format!("`{}` invalidation is a Redis feature: memcached has no pub/sub and no client tracking", inv.value),
                "with a memcached `l2` use `invalidation: none` or `ttl` (with a `ttl` on the l1 tier), or make the l2 Redis",
            ));
        } else if matches!(inv.value, Invalidation::Pubsub | Invalidation::Tracking) && !redis_l2 {
            out.push(err(
                inv.span,
                format!("`{}` invalidation needs a Redis `l2` tier", inv.value),
                "set `l2: { backend: redis, spawn: true }`",
            ));
        }
    }
    if let Some(t) = &topo.l2 {
        if t.backend.value == TierBackend::Redis {
            let cluster = t.cluster.is_some() || t.nodes.is_some();
            if cluster
                && let Some(inv) = &topo.invalidation
                && inv.value == Invalidation::Tracking
            {
                out.push(err(
                    inv.span,
                    "`tracking` invalidation with a Redis Cluster is not supported yet: each master tracks only its own slots".into(),
                    "use `pubsub` invalidation with the cluster, or a standalone Redis (`spawn = true`) for tracking",
                ));
            }
            if cluster && t.max_bytes.is_some() {
                out.push(err(
                    t.backend.span,
                    "`max_bytes` on a Redis Cluster is not supported yet".into(),
                    "bound a standalone Redis instead",
                ));
            }
            if cluster
                && let Some(k) = doc
                    .events
                    .iter()
                    .flatten()
                    .find_map(|e| e.kill_redis.as_ref())
            {
                out.push(err(k.span, "`kill_redis` kills a standalone Redis; killing cluster nodes is not supported yet".into(), "use `spawn = true` on the l2 tier"));
            }
            if let Some(c) = &t.capacity {
                out.push(err(c.span, "a Redis tier is bounded in bytes, not entries".into(), "use `max_bytes` (perfspec sets `maxmemory` with allkeys-lru on the Redis it starts)"));
            }
            if t.max_bytes.is_some() && t.url.is_some() {
                out.push(err(t.backend.span, "`max_bytes` applies to a Redis perfspec starts (`spawn = true`), not to an existing one".into(), "configure `maxmemory` on that server instead"));
            }
        } else if t.backend.value != TierBackend::Memcached && l1_local.is_none() {
            out.push(err(
                t.backend.span,
                "an in-process shared tier needs an `l1` tier in front of it".into(),
                "make it the `l1` tier",
            ));
        }
    }
    let origin = doc.origin.as_ref();
    if origin.and_then(|o| o.pattern) == Some(ReadPattern::ReadThrough)
        && l1_local.is_none_or(|t| t.backend.value != TierBackend::Moka)
    {
        out.push(err(
            name_span,
            "read-through needs a loading cache: an `l1` tier with `backend: moka`".into(),
            "use `pattern: cache-aside` with stretto or Redis (stretto has no loader API)",
        ));
    }
    if let Some(sweep) = &doc.sweep {
        if sweep.value.len() > 1 {
            out.push(err(
                sweep.span,
                "sweeping more than one path at once is not supported yet".into(),
                "sweep one path per spec",
            ));
        }
        for (path, values) in sweep.value.iter() {
            if !SWEEPS.iter().any(|(p, _)| p == path) {
                out.push(err(
                    values.span,
                    format!("sweeping `{path}` is not supported yet"),
                    "this backend sweeps `topology.l1.capacity` and `topology.l1.max_bytes`",
                ));
            } else if let Some(l1) = l1_local {
                let entries = path.ends_with("capacity");
                if entries && l1.capacity.is_none() || !entries && l1.max_bytes.is_none() {
                    out.push(err(
                        values.span,
                        format!("`{path}` sweeps a bound the l1 tier does not use"),
                        if entries {
                            "the l1 tier is bounded by `max_bytes`: sweep `topology.l1.max_bytes`"
                        } else {
                            "the l1 tier is bounded by `capacity`: sweep `topology.l1.capacity`"
                        },
                    ));
                }
            } else {
                out.push(err(
                    values.span,
                    format!("`{path}` needs an in-process `l1` tier"),
                    "add an `l1` tier",
                ));
            }
        }
    }
    for e in doc.events.iter().flatten() {
        if let Some(r) = &e.restart
            && l1_local.is_none()
        {
            out.push(err(
                r.span,
                "a restart clears the instance's `l1` tier, and this topology has none".into(),
                "add an `l1` tier",
            ));
        }
        if let Some(k) = &e.kill_redis
            && k.value
            && topo.l2.as_ref().is_some_and(|t| t.url.is_some())
        {
            out.push(err(
                k.span,
                "`kill_redis` kills a Redis perfspec started; this one is given by `url`".into(),
                "use `spawn = true` on the l2 tier",
            ));
        }
        if e.restore_after.is_some() && e.kill_redis.is_none() && e.kill_node.is_none() {
            out.push(err(
                name_span,
                "`restore_after` applies to `kill_redis` and `kill_node` events".into(),
                "remove it, or make the event `kill_redis: true` or `kill_node: N`",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Spec {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.yaml");
        std::fs::write(&p, yaml).unwrap();
        let l = crate::spec::loader::load_file(&p, &[], &|_| None);
        let msgs: Vec<String> = l.diagnostics.iter().map(|d| d.message.clone()).collect();
        l.spec.unwrap_or_else(|| panic!("{msgs:?}"))
    }

    fn doc(s: &Spec) -> &CacheDoc {
        match &s.body {
            Body::Cache(d) => d,
            _ => unreachable!(),
        }
    }

    #[test]
    fn presets_and_defaults_resolve() {
        let s = load(
            "kind: cache\nname: d\ntopology: { l1: { backend: stretto, capacity: 10 } }\nworkload: { preset: ycsb-d, ops: 10 }\n",
        );
        let p = plan(doc(&s));
        assert_eq!(p.trace.mix, preset(crate::spec::cache::Preset::D).0);
        assert_eq!(p.trace.dist, KeyDist::Latest(0.99));
        assert_eq!(p.trace.keys, YCSB_RECORDS);
        assert_eq!(
            (p.latency.0, p.value_size, p.concurrency, p.trace.seed),
            (DEFAULT_ORIGIN_LATENCY, (1000, 1000), 1, 1)
        );
        assert_eq!(p.l1.as_ref().unwrap().backend, Local::Stretto);
        assert!(check(&s).is_empty());
        // an explicit distribution and mix override the preset's
        let s = load(
            "kind: cache\nname: d\ntopology: { l1: { backend: moka, capacity: 10 } }\nworkload: { preset: ycsb-a, distribution: uniform, mix: { read: 1 }, ops: 10 }\n",
        );
        let p = plan(doc(&s));
        assert_eq!(
            (p.trace.dist, p.trace.mix),
            (KeyDist::Uniform, Mix::reads_only())
        );
        assert_eq!(p.bounds_applicability(), Ok(10));
    }

    #[test]
    fn a_sweep_reports_the_specs_own_value_or_the_last() {
        let base = "kind: cache\nname: s\ntopology: { l1: { backend: moka, capacity: 200 } }\nworkload: { keys: 100, ops: 10 }\n";
        let s = load(&format!(
            "{base}sweep: {{ \"topology.l1.capacity\": [100, 200, 400] }}\n"
        ));
        let sw = sweep(doc(&s));
        assert_eq!(
            (sw.label, sw.representative, sw.points.len()),
            (Some("capacity"), 1, 3)
        );
        assert_eq!(
            sw.points[2].1.l1.as_ref().unwrap().capacity,
            Capacity::Entries(400)
        );
        let s = load(&format!(
            "{base}sweep: {{ \"topology.l1.capacity\": [100, 400] }}\n"
        ));
        let sw = sweep(doc(&s));
        assert_eq!(sw.representative, 1);
        assert!(sw.note.unwrap().contains("last sweep value (400)"));
        assert_eq!(sweep(doc(&load(base))).points.len(), 1);
    }

    #[test]
    fn bounds_apply_only_where_they_are_exact() {
        let with = |topo: &str, mix: &str| {
            let s = load(&format!(
                "kind: cache\nname: b\ntopology: {topo}\nworkload: {{ keys: 100, ops: 10, mix: {mix} }}\n"
            ));
            plan(doc(&s)).bounds_applicability()
        };
        let reads = "{ read: 1 }";
        let writes = "{ read: 0.9, update: 0.1 }";
        assert!(with("{ l1: { backend: moka, capacity: 5 } }", writes).is_ok());
        assert!(
            with("{ l1: { backend: moka, max_bytes: 5KiB } }", reads)
                .unwrap_err()
                .contains("bytes")
        );
        assert!(
            with("{ l1: { backend: moka, capacity: 5, ttl: 1s } }", reads)
                .unwrap_err()
                .contains("expire")
        );
        let pubsub = "{ instances: 2, l1: { backend: moka, capacity: 5 }, l2: { backend: redis, spawn: true }, invalidation: pubsub }";
        assert!(with(pubsub, reads).is_ok());
        assert!(with(pubsub, writes).unwrap_err().contains("pubsub"));
        assert!(
            with("{ l2: { backend: redis, spawn: true } }", reads)
                .unwrap_err()
                .contains("no in-process l1")
        );
    }
}
