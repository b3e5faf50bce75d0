//! `kind = "cache"`: a cache topology under a synthetic workload, with an origin behind it.

use std::collections::BTreeMap;

use super::decode::{Ctx, Decode, Duration, Range, Ratio, Size, spec_table, word_enum};
use super::model::{RepeatCount, SloList, SpecName};
use super::node::{Node, Value};
use super::source::Spanned;

spec_table! {
    /// A cache spec file.
    pub struct CacheDoc {
        kind: req String,
        name: req SpecName,
        description: opt String,
        /// Backend that runs the spec (default `native`: perfspec's own cache harness).
        backend: opt Spanned<String>,
        max_duration: opt Duration,
        /// Run the spec this many times (1 to 100, default 1): a fresh backend run each time; SLOs are judged on the pooled data and the report shows the spread.
        repeat: opt RepeatCount,
        /// With `repeat`: a different seed in every repeat (the spec's seed + k − 1) instead of the same one.
        reseed: opt bool,
        slo: opt SloList,
        topology: req Topology,
        /// The database behind the cache.
        origin: opt Origin,
        workload: req Workload,
        /// Dotted path → values; one run per value (e.g. `"topology.l1.capacity" = [500, 1000]`).
        sweep: opt Spanned<BTreeMap<String, Spanned<Vec<serde_json::Value>>>>,
        /// Events at a point of the run.
        events: opt Vec<Event>,
    }
}

spec_table! {
    /// Instances, tiers and invalidation.
    pub struct Topology {
        /// Simulated app instances (default 1), each with its own L1.
        instances: opt Spanned<u32>,
        /// In-process tier of each instance.
        l1: opt Tier,
        /// Shared tier (Redis, Redis Cluster or memcached nodes).
        l2: opt Tier,
        /// How L1 copies learn about writes: `none`, `ttl`, `pubsub`, `tracking`.
        invalidation: opt Spanned<Invalidation>,
    }
}

word_enum! {
    /// Cache implementations.
    pub enum TierBackend { Moka = "moka", Stretto = "stretto", Redis = "redis", Memcached = "memcached" }
}

word_enum! {
    /// How a memcached client spreads keys over its nodes.
    pub enum RingDistribution { Ketama = "ketama", Rendezvous = "rendezvous", Modula = "modula" }
}

word_enum! {
    /// A proxy in front of memcached nodes.
    pub enum Proxy { Twemproxy = "twemproxy" }
}

/// `nodes`: how many memcached nodes perfspec starts (`3`), or an existing Redis Cluster's
/// nodes (`["redis://127.0.0.1:7000", …]`).
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Nodes {
    Count(u32),
    List(Vec<String>),
}

impl Decode for Nodes {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        match &node.value {
            Value::Int(_) => u32::decode(node, cx).map(Nodes::Count),
            Value::Array(_) => Vec::<String>::decode(node, cx).map(Nodes::List),
            _ => cx.type_error(
                node,
                "a number of memcached nodes (3) or a list of Redis Cluster node urls",
            ),
        }
    }
}

word_enum! {
    /// Invalidation of L1 copies on writes.
    pub enum Invalidation { None = "none", Ttl = "ttl", Pubsub = "pubsub", Tracking = "tracking" }
}

spec_table! {
    /// One cache tier.
    pub struct Tier {
        backend: req Spanned<TierBackend>,
        /// Capacity in entries (in-process tiers).
        capacity: opt Spanned<u64>,
        /// Capacity in bytes (in-process tiers; weighs entries by value size).
        max_bytes: opt Size,
        ttl: opt Duration,
        /// Start a real `redis-server` on a free loopback port (Redis tiers).
        spawn: opt bool,
        /// An existing Redis, e.g. `redis://127.0.0.1:6379`.
        url: opt Spanned<String>,
        /// An existing Redis Cluster's nodes, or how many memcached nodes perfspec starts.
        nodes: opt Spanned<Nodes>,
        /// A Redis Cluster perfspec starts.
        cluster: opt Cluster,
        /// Existing memcached nodes, `host:port` each.
        servers: opt Spanned<Vec<String>>,
        /// How the memcached client places keys: `ketama` (default), `rendezvous`, `modula`.
        distribution: opt Spanned<RingDistribution>,
        /// A proxy perfspec starts in front of the memcached nodes (`twemproxy`): it places the keys.
        proxy: opt Spanned<Proxy>,
        /// Failed calls in a row after which a memcached node leaves the ring (default 2, 0: never; twemproxy's `server_failure_limit`).
        failure_limit: opt Spanned<u32>,
        /// How long an ejected memcached node stays out before it is tried again (default 30s; twemproxy's `server_retry_timeout`).
        retry_timeout: opt Duration,
    }
}

spec_table! {
    /// A local Redis Cluster.
    pub struct Cluster {
        /// Masters (at least 3).
        masters: req Spanned<u32>,
        /// Replicas per master.
        replicas: opt u32,
        spawn: opt bool,
    }
}

spec_table! {
    /// The origin (database) behind the cache.
    pub struct Origin {
        /// A fixed latency (`5ms`) or a uniform range (`5ms..15ms`).
        latency: opt Range<Duration>,
        /// `cache-aside` (default) or `read-through`.
        pattern: opt ReadPattern,
        /// `write-through` (default) or `write-invalidate`.
        writes: opt WritePolicy,
    }
}

word_enum! {
    /// How reads miss through to the origin.
    pub enum ReadPattern { CacheAside = "cache-aside", ReadThrough = "read-through" }
}

word_enum! {
    /// What a write does to the cache.
    pub enum WritePolicy { WriteThrough = "write-through", WriteInvalidate = "write-invalidate" }
}

word_enum! {
    /// YCSB core workloads A–F.
    pub enum Preset { A = "ycsb-a", B = "ycsb-b", C = "ycsb-c", D = "ycsb-d", E = "ycsb-e", F = "ycsb-f" }
}

spec_table! {
    /// The key trace.
    pub struct Workload {
        preset: opt Preset,
        /// Size of the key space.
        keys: opt Spanned<u64>,
        distribution: opt Distribution,
        mix: opt Mix,
        /// Fixed (`1KiB`) or uniform range (`512B..4KiB`).
        value_size: opt Range<Size>,
        /// TTL of cached entries.
        ttl: opt Duration,
        /// Fixed number of operations …
        ops: opt Spanned<u64>,
        /// … or a duration.
        duration: opt Spanned<Duration>,
        concurrency: opt Spanned<u32>,
        seed: opt u64,
    }
}

/// `"uniform"`, `"latest"`, `{ zipf = 0.99 }` or `{ hotspot = { keys = 20%, ops = 80% } }`.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    Uniform,
    Latest,
    Zipf(f64),
    Hotspot {
        /// Fraction of the key space that is hot.
        keys: Ratio,
        /// Fraction of operations that go to hot keys.
        ops: Ratio,
    },
}

impl Decode for Distribution {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        match &node.value {
            Value::Str { value, .. } if value == "uniform" => Some(Distribution::Uniform),
            Value::Str { value, .. } if value == "latest" => Some(Distribution::Latest),
            Value::Str { value, .. } if value == "zipf" => {
                cx.error::<()>(node.span, "spec::distribution", "zipf needs its skew θ");
                cx.label("no θ");
                cx.hint(cx.in_syntax("write `{ zipf = 0.99 }`"));
                None
            }
            Value::Table(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                match k.name.as_str() {
                    "zipf" => {
                        let theta = f64::decode(v, cx)?;
                        if !(theta > 0.0 && theta < 10.0) {
                            cx.error::<()>(
                                v.span,
                                "spec::range",
                                "zipf θ must be greater than 0 (and sane: below 10)",
                            );
                            return None;
                        }
                        Some(Distribution::Zipf(theta))
                    }
                    "hotspot" => {
                        let mut t = super::decode::Table::new(v, cx)?;
                        let keys: Option<Spanned<Ratio>> = t.req(cx, "keys");
                        let ops: Option<Spanned<Ratio>> = t.req(cx, "ops");
                        t.finish(cx);
                        let (keys, ops) = (keys?, ops?);
                        for r in [&keys, &ops] {
                            if !(r.value.0 > 0.0 && r.value.0 < 1.0) {
                                cx.error::<()>(
                                    r.span,
                                    "spec::range",
                                    "must be between 0% and 100% (exclusive)",
                                );
                            }
                        }
                        Some(Distribution::Hotspot {
                            keys: keys.value,
                            ops: ops.value,
                        })
                    }
                    other => {
                        cx.error::<()>(
                            k.span,
                            "spec::distribution",
                            format!("unknown distribution `{other}`"),
                        );
                        cx.label("unknown distribution");
                        cx.hint(cx.in_syntax("one of: \"uniform\", \"latest\", `{ zipf = 0.99 }`, `{ hotspot = { keys = \"20%\", ops = \"80%\" } }`"));
                        None
                    }
                }
            }
            Value::Str { value, .. } => {
                cx.error::<()>(
                    node.span,
                    "spec::distribution",
                    format!("unknown distribution `{value}`"),
                );
                cx.label("unknown distribution");
                let hint = match super::diagnostic::did_you_mean(value, ["uniform", "latest", "zipf", "hotspot"]) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => cx.in_syntax("one of: \"uniform\", \"latest\", `{ zipf = 0.99 }`, `{ hotspot = { keys = \"20%\", ops = \"80%\" } }`"),
                };
                cx.hint(hint);
                None
            }
            _ => {
                let expected =
                    cx.in_syntax("\"uniform\", \"latest\" or a table such as `{ zipf = 0.99 }`");
                cx.type_error(node, &expected)
            }
        }
    }
}

spec_table! {
    /// Operation mix; fractions that add up to 1.
    pub struct Mix {
        read: opt Spanned<Ratio>,
        update: opt Spanned<Ratio>,
        insert: opt Spanned<Ratio>,
        delete: opt Spanned<Ratio>,
        /// Read-modify-write (YCSB F).
        rmw: opt Spanned<Ratio>,
        /// Short range scans (YCSB E).
        scan: opt Spanned<Ratio>,
    }
}

/// When an event fires: a fraction of the run (`50%`) or a time (`10s`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At {
    Fraction(f64),
    Time(f64),
}

impl Decode for At {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        let text = match &node.value {
            Value::Str { value, .. } => value.clone(),
            _ => return cx.type_error(node, "a point of the run such as \"50%\" or \"10s\""),
        };
        match super::units::Quantity::parse(&text) {
            Ok(q)
                if q.dim == Some(super::units::Dimension::Ratio)
                    && text.trim_end().ends_with('%') =>
            {
                if !(0.0..=1.0).contains(&q.value) {
                    return cx.error(node.span, "spec::range", "must be between 0% and 100%");
                }
                Some(At::Fraction(q.value))
            }
            Ok(q) if q.dim == Some(super::units::Dimension::Time) && q.value >= 0.0 => {
                Some(At::Time(q.value))
            }
            _ => {
                cx.error::<()>(
                    node.span,
                    "spec::unit",
                    format!("`{text}` is not a point of the run"),
                );
                cx.hint(
                    "write a percentage of the run (\"50%\") or a time from its start (\"10s\")",
                );
                None
            }
        }
    }
}

impl schemars::JsonSchema for At {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "At".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "description": "a percentage of the run (`50%`) or a time from its start (`10s`)"})
    }
}

spec_table! {
    /// An event during the run: exactly one action.
    pub struct Event {
        at: req At,
        /// Restart this app instance (counting from 1): its L1 is cleared.
        restart: opt Spanned<u32>,
        /// Kill the Redis server (standalone L2).
        kill_redis: opt Spanned<bool>,
        /// Kill this memcached node perfspec started (counting from 1), SIGKILL.
        kill_node: opt Spanned<u32>,
        /// Start one more memcached node and add it to the ring.
        add_node: opt Spanned<bool>,
        /// With `kill_redis` or `kill_node`: bring it back (empty) after this long.
        restore_after: opt Duration,
    }
}

/// Sweep paths a cache spec may vary.
pub const SWEEPABLE: &[&str] = &[
    "topology.l1.capacity",
    "topology.l2.capacity",
    "topology.l1.max_bytes",
    "topology.instances",
    "workload.concurrency",
    "workload.keys",
    "workload.distribution.zipf",
];

/// The most operations one cache run may plan (about 17 minutes at a million operations a
/// second): beyond it a spec cannot be meant.
pub const MAX_OPS: u64 = 1_000_000_000;

impl CacheDoc {
    /// `ops`, `concurrency` and `duration` that cannot be meant: a located error each.
    fn check_bounds(&self, cx: &mut Ctx) {
        let w = &self.workload;
        if let Some(o) = &w.ops
            && o.value > MAX_OPS
        {
            cx.error::<()>(
                o.span,
                "spec::range",
                format!(
                    "{} operations are more than one run can issue (at most {MAX_OPS})",
                    o.value
                ),
            );
            cx.label("too many operations");
            cx.hint("use `duration` to bound the run by time instead");
        }
        if let Some(c) = &w.concurrency
            && u64::from(c.value) > super::load::MAX_USERS
        {
            cx.error::<()>(
                c.span,
                "spec::range",
                format!(
                    "{} workers are more than one process can run (at most {})",
                    c.value,
                    super::load::MAX_USERS
                ),
            );
        }
        let cut = self
            .max_duration
            .is_some_and(|d| d.0 <= super::load::MAX_PLANNED_SECONDS);
        if let Some(d) = &w.duration
            && d.value.0 > super::load::MAX_PLANNED_SECONDS
            && !cut
        {
            cx.error::<()>(
                d.span,
                "spec::range",
                "a run longer than 31 days cannot be meant",
            );
            cx.label("longer than 31 days");
            cx.hint(
                "shorten it, or set `max_duration` (at most 744h, 31 days) to stop the run there",
            );
        }
    }

    /// Cross-field checks the table decoders cannot express, section by section in the order
    /// their diagnostics are reported.
    pub fn validate(&self, cx: &mut Ctx) {
        self.validate_topology(cx);
        self.validate_workload(cx);
        self.check_bounds(cx);
        self.validate_mix(cx);
        self.validate_sweep(cx);
        self.validate_events(cx);
    }

    /// App instances (default 1).
    fn instances(&self) -> u32 {
        self.topology.instances.as_ref().map_or(1, |i| i.value)
    }

    /// `[topology]`: instances, at least one tier (each checked by [`check_tier`]),
    /// invalidation between two tiers, and an `l1` where instances differ.
    fn validate_topology(&self, cx: &mut Ctx) {
        let topo = &self.topology;
        if let Some(i) = &topo.instances
            && i.value == 0
        {
            cx.error::<()>(i.span, "spec::range", "at least one instance is needed");
        }
        if topo.l1.is_none() && topo.l2.is_none() && !topo.broken.any_of(&["l1", "l2"]) {
            cx.error::<()>(
                self.name.span,
                "spec::topology",
                "the topology needs an `l1` tier, an `l2` tier or both",
            );
        }
        for (tier, name, want_local) in [(&topo.l1, "l1", true), (&topo.l2, "l2", false)] {
            if let Some(t) = tier {
                check_tier(t, name, want_local, cx);
            }
        }
        if let Some(inv) = &topo.invalidation
            && !topo.broken.any_of(&["l1", "l2"])
        {
            if topo.l1.is_none() || topo.l2.is_none() {
                cx.error::<()>(
                    inv.span,
                    "spec::topology",
                    "invalidation applies to two tiers (`l1` and `l2`)",
                );
            } else if inv.value == Invalidation::Ttl
                && topo
                    .l1
                    .as_ref()
                    .is_some_and(|t| t.ttl.is_none() && !t.broken.has("ttl"))
            {
                cx.error::<()>(
                    inv.span,
                    "spec::topology",
                    "`ttl` invalidation needs `ttl` on the l1 tier",
                );
            }
        }
        if self.instances() > 1
            && topo.l1.is_none()
            && !topo.broken.has("l1")
            && let Some(i) = &topo.instances
        {
            cx.error::<()>(
                i.span,
                "spec::topology",
                "several instances only differ by their own `l1` tier",
            );
        }
    }

    /// `[workload]`: a key space, a bound (`ops` or `duration`) and positive counts; the
    /// upper bounds are [`Self::check_bounds`]'s.
    fn validate_workload(&self, cx: &mut Ctx) {
        let w = &self.workload;
        if w.preset.is_none() && w.keys.is_none() && !w.broken.any_of(&["preset", "keys"]) {
            cx.error::<()>(
                self.name.span,
                "spec::workload",
                "the workload needs `keys` (or a `preset`)",
            );
        }
        if let Some(k) = &w.keys
            && k.value == 0
        {
            cx.error::<()>(k.span, "spec::range", "the key space needs at least 1 key");
        }
        if w.ops.is_none() && w.duration.is_none() && !w.broken.any_of(&["ops", "duration"]) {
            cx.error::<()>(
                self.name.span,
                "spec::workload",
                "the workload needs `ops` or `duration` (every run is bounded)",
            );
        }
        if let Some(o) = &w.ops
            && o.value == 0
        {
            cx.error::<()>(o.span, "spec::range", "`ops` must be at least 1");
        }
        if let Some(c) = &w.concurrency
            && c.value == 0
        {
            cx.error::<()>(c.span, "spec::range", "`concurrency` must be at least 1");
        }
    }

    /// `workload.mix`: fractions that add up to 1, none negative.
    fn validate_mix(&self, cx: &mut Ctx) {
        let Some(mix) = &self.workload.mix else {
            return;
        };
        let parts = [
            &mix.read,
            &mix.update,
            &mix.insert,
            &mix.delete,
            &mix.rmw,
            &mix.scan,
        ];
        let sum: f64 = parts
            .iter()
            .filter_map(|p| p.as_ref())
            .map(|p| p.value.0)
            .sum();
        if let Some(first) = parts.iter().find_map(|p| p.as_ref())
            && mix.broken.0.is_empty()
            && (sum - 1.0).abs() > 1e-6
        {
            cx.error::<()>(
                first.span,
                "spec::mix",
                format!(
                    "the mix adds up to {}, not 1",
                    super::units::trim_float(sum)
                ),
            );
            cx.label(format!(
                "these fractions add up to {}",
                super::units::trim_float(sum)
            ));
            cx.hint(
                "fractions of read, update, insert, delete, rmw and scan must add up to 1 (100%)",
            );
        }
        for p in parts.iter().filter_map(|p| p.as_ref()) {
            if p.value.0 < 0.0 {
                cx.error::<()>(p.span, "spec::range", "a fraction must not be negative");
            }
        }
    }

    /// `[sweep]`: sweepable paths (see [`SWEEPABLE`]), each with at least one value, positive
    /// integers except for the zipf exponent.
    fn validate_sweep(&self, cx: &mut Ctx) {
        let Some(sweep) = &self.sweep else { return };
        for (path, values) in sweep.iter() {
            if !SWEEPABLE.contains(&path.as_str()) {
                cx.error::<()>(
                    values.span,
                    "spec::sweep",
                    format!("`{path}` cannot be swept"),
                );
                let hint = match super::diagnostic::did_you_mean(path, SWEEPABLE.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("sweepable: {}", SWEEPABLE.join(", ")),
                };
                cx.hint(hint);
            } else if values.is_empty() {
                cx.error::<()>(
                    values.span,
                    "spec::sweep",
                    "a sweep needs at least one value",
                );
            } else if values
                .iter()
                .any(|v| v.as_u64().is_none_or(|n| n == 0) && !path.ends_with("zipf"))
            {
                cx.error::<()>(
                    values.span,
                    "spec::sweep",
                    format!("`{path}` takes positive integers"),
                );
            }
        }
    }

    /// `[[events]]`: exactly one action each, an instance that exists, a Redis `l2` to kill.
    fn validate_events(&self, cx: &mut Ctx) {
        let topo = &self.topology;
        let instances = self.instances();
        for e in self.events.iter().flatten() {
            let actions = [
                e.restart.is_some(),
                e.kill_redis.is_some(),
                e.kill_node.is_some(),
                e.add_node.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if actions != 1
                && !e
                    .broken
                    .any_of(&["restart", "kill_redis", "kill_node", "add_node"])
            {
                cx.error::<()>(
                    self.name.span,
                    "spec::event",
                    "an event needs exactly one action: `restart`, `kill_redis`, `kill_node` or `add_node`",
                );
            }
            self.check_node_event(e, cx);
            if let Some(r) = &e.restart
                && (r.value == 0 || (r.value > instances && !topo.broken.has("instances")))
            {
                cx.error::<()>(
                    r.span,
                    "spec::range",
                    format!(
                        "there is no instance {} (instances count from 1 to {instances})",
                        r.value
                    ),
                );
                cx.label("no such instance");
            }
            if let Some(k) = &e.kill_redis
                && topo.l2.is_none()
                && !topo.broken.has("l2")
            {
                cx.error::<()>(
                    k.span,
                    "spec::event",
                    "`kill_redis` needs a Redis `l2` tier",
                );
            }
        }
    }
}

impl CacheDoc {
    /// `kill_node` and `add_node`: a memcached `l2` perfspec starts, a node that exists.
    fn check_node_event(&self, e: &Event, cx: &mut Ctx) {
        let topo = &self.topology;
        let l2 = topo.l2.as_ref();
        let memcached = l2.is_some_and(|t| t.backend.value == TierBackend::Memcached);
        for (span, what) in [
            (e.kill_node.as_ref().map(|k| k.span), "kill_node"),
            (e.add_node.as_ref().map(|a| a.span), "add_node"),
        ] {
            if let Some(span) = span
                && !memcached
                && !topo.broken.has("l2")
            {
                cx.error::<()>(
                    span,
                    "spec::event",
                    format!("`{what}` needs a memcached `l2` tier"),
                );
                cx.hint(
                    cx.in_syntax("set `l2 = { backend = \"memcached\", spawn = true, nodes = 3 }`"),
                );
            }
        }
        let Some(k) = &e.kill_node else { return };
        let count = l2.and_then(|t| match t.nodes.as_ref().map(|n| &n.value) {
            Some(Nodes::Count(n)) => Some(*n),
            _ => t.servers.as_ref().map(|s| s.len() as u32),
        });
        if let Some(n) = count
            && memcached
            && (k.value == 0 || k.value > n)
        {
            cx.error::<()>(
                k.span,
                "spec::range",
                format!(
                    "there is no memcached node {} (nodes count from 1 to {n})",
                    k.value
                ),
            );
            cx.label("no such node");
        }
    }
}

/// The keys only a memcached tier takes, each an error on another tier.
fn refuse_memcached_keys(t: &Tier, cx: &mut Ctx) {
    for (set, key) in [
        (t.servers.is_some(), "servers"),
        (t.distribution.is_some(), "distribution"),
        (t.proxy.is_some(), "proxy"),
        (t.failure_limit.is_some(), "failure_limit"),
        (t.retry_timeout.is_some(), "retry_timeout"),
    ] {
        if set {
            cx.error::<()>(
                t.backend.span,
                "spec::topology",
                format!("`{key}` applies to memcached tiers only"),
            );
        }
    }
}

/// One tier, `name` being `l1` or `l2`: `l1` must be in-process (`want_local`); an
/// in-process tier is checked by [`check_local_tier`], a Redis tier by [`check_redis_tier`],
/// a memcached tier by [`check_memcached_tier`].
fn check_tier(t: &Tier, name: &str, want_local: bool, cx: &mut Ctx) {
    let local = !matches!(t.backend.value, TierBackend::Redis | TierBackend::Memcached);
    if want_local && !local {
        cx.error::<()>(
            t.backend.span,
            "spec::topology",
            "`l1` is the in-process tier: use `moka` or `stretto`",
        );
    }
    if local {
        check_local_tier(t, name, cx);
    } else if t.backend.value == TierBackend::Redis {
        check_redis_tier(t, cx);
    } else {
        check_memcached_tier(t, cx);
    }
}

/// A memcached tier: spawned nodes (`spawn = true` with `nodes = N`) or `servers`, not
/// both; Redis-only keys refused.
fn check_memcached_tier(t: &Tier, cx: &mut Ctx) {
    let spawn = t.spawn == Some(true);
    let count = match t.nodes.as_ref().map(|n| (&n.value, n.span)) {
        Some((Nodes::Count(n), span)) => Some((*n, span)),
        Some((Nodes::List(_), span)) => {
            cx.error::<()>(
                span,
                "spec::topology",
                "`nodes` of a memcached tier is how many nodes perfspec starts",
            );
            cx.hint(cx.in_syntax("write `nodes = 3` with `spawn = true`, or list existing nodes as `servers = [\"127.0.0.1:11211\"]`"));
            None
        }
        None => None,
    };
    let broken = t.broken.any_of(&["spawn", "nodes", "servers"]);
    if spawn == t.servers.is_some() && !broken {
        let message = cx.in_syntax(
            "a memcached tier needs exactly one of `spawn = true` (with `nodes = N`) or `servers`",
        );
        cx.error::<()>(t.backend.span, "spec::topology", message);
    }
    if let Some((n, span)) = count {
        if !spawn && !t.broken.has("spawn") {
            cx.error::<()>(
                span,
                "spec::topology",
                "`nodes` applies with `spawn = true`",
            );
        } else if !(1..=64).contains(&n) {
            cx.error::<()>(
                span,
                "spec::range",
                "a memcached tier perfspec starts has 1 to 64 nodes",
            );
        }
    }
    for s in t.servers.iter().flat_map(|s| s.iter()) {
        let ok = s
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok && let Some(sp) = &t.servers {
            cx.error::<()>(
                sp.span,
                "spec::url",
                format!("`{s}` is not a memcached server `host:port`"),
            );
        }
    }
    if let Some(sp) = &t.servers
        && sp.is_empty()
    {
        cx.error::<()>(sp.span, "spec::range", "`servers` needs at least one node");
    }
    for (set, key) in [(t.url.is_some(), "url"), (t.cluster.is_some(), "cluster")] {
        if set {
            cx.error::<()>(
                t.backend.span,
                "spec::topology",
                format!("`{key}` applies to Redis tiers only"),
            );
        }
    }
}

/// An in-process tier (moka, stretto): bounded by a positive `capacity` or `max_bytes`, and
/// free of the Redis-only keys.
fn check_local_tier(t: &Tier, name: &str, cx: &mut Ctx) {
    if t.capacity.is_none() && t.max_bytes.is_none() && !t.broken.any_of(&["capacity", "max_bytes"])
    {
        cx.error::<()>(
            t.backend.span,
            "spec::topology",
            format!("the {name} tier needs `capacity` (entries) or `max_bytes`"),
        );
        cx.label("a bounded in-process cache");
    }
    if let Some(c) = &t.capacity
        && c.value == 0
    {
        cx.error::<()>(c.span, "spec::range", "a capacity of 0 caches nothing");
        cx.label("zero entries");
        cx.hint("use at least 1 entry");
    }
    for (set, key) in [
        (t.spawn.is_some(), "spawn"),
        (t.url.is_some(), "url"),
        (t.nodes.is_some(), "nodes"),
        (t.cluster.is_some(), "cluster"),
    ] {
        if set {
            cx.error::<()>(
                t.backend.span,
                "spec::topology",
                format!("`{key}` applies to Redis and memcached tiers only"),
            );
        }
    }
    refuse_memcached_keys(t, cx);
}

/// A Redis tier: exactly one source (spawned, `url`, `nodes` or a spawned cluster), a
/// cluster of at least 3 masters, a `redis://` url.
fn check_redis_tier(t: &Tier, cx: &mut Ctx) {
    let sources = [
        t.spawn == Some(true) || t.cluster.as_ref().is_some_and(|c| c.spawn == Some(true)),
        t.url.is_some(),
        t.nodes.is_some(),
    ];
    if sources.iter().filter(|b| **b).count() != 1
        && !t.broken.any_of(&["spawn", "url", "nodes", "cluster"])
    {
        let message = cx.in_syntax("a Redis tier needs exactly one of `spawn = true`, `url`, `nodes` or `cluster = { spawn = true }`");
        cx.error::<()>(t.backend.span, "spec::topology", message);
    }
    if let Some(n) = &t.nodes
        && let Nodes::Count(_) = n.value
    {
        cx.error::<()>(
            n.span,
            "spec::topology",
            "`nodes` of a Redis tier lists an existing cluster's nodes",
        );
        cx.hint(
            cx.in_syntax(
                "to start a Redis Cluster write `cluster = { masters = 3, spawn = true }`",
            ),
        );
    }
    refuse_memcached_keys(t, cx);
    if let Some(c) = &t.cluster
        && c.masters.value < 3
    {
        cx.error::<()>(
            c.masters.span,
            "spec::range",
            "a Redis Cluster needs at least 3 masters",
        );
    }
    if let Some(u) = &t.url
        && !u.starts_with("redis://")
    {
        cx.error::<()>(u.span, "spec::url", "a Redis url starts with redis://");
    }
}
