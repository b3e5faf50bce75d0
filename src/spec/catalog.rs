//! The metric catalog: one registry of every metric each kind produces, with its dimension,
//! shape and labels. `validate` checks SLOs against it; backends must only emit metrics that
//! are listed here (a test enforces it for each backend).

use super::units::Dimension;

/// Label name → value. Ordered so that output is stable.
pub type Labels = std::collections::BTreeMap<String, String>;

/// The four kinds of experiment.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Load,
    Cache,
    Scaling,
    Quantize,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Load, Kind::Cache, Kind::Scaling, Kind::Quantize];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Load => "load",
            Kind::Cache => "cache",
            Kind::Scaling => "scaling",
            Kind::Quantize => "quantize",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The backend used when a spec does not name one.
    pub fn default_backend(self) -> &'static str {
        match self {
            Kind::Load => "goose",
            Kind::Cache => "native",
            Kind::Scaling => "native",
            Kind::Quantize => "flex",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a metric is recorded, which decides the aggregations it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// An HDR histogram of observations: `p95(…)`, `mean`, `min`, `max`, `count`, `rate`.
    Histogram,
    /// A value per label set (a ratio, a fitted coefficient): compared as is.
    Gauge,
    /// A count of events: compared as is, or `rate(…)` per second of the run.
    Counter,
}

#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub dim: Dimension,
    pub shape: Shape,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const fn m(
    name: &'static str,
    dim: Dimension,
    shape: Shape,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDef {
    MetricDef {
        name,
        dim,
        shape,
        labels,
        help,
    }
}

use Dimension::*;
use Shape::*;

const LOAD_LABELS: &[&str] = &["journey", "step", "status", "phase"];

static LOAD: &[MetricDef] = &[
    m(
        "latency",
        Time,
        Histogram,
        LOAD_LABELS,
        "time from the intended send (open model) or the actual send (closed model) to the full response",
    ),
    m(
        "service_time",
        Time,
        Histogram,
        LOAD_LABELS,
        "time from the actual send to the full response",
    ),
    m(
        "requests",
        Count,
        Counter,
        LOAD_LABELS,
        "requests completed (any outcome)",
    ),
    m(
        "errors",
        Count,
        Counter,
        LOAD_LABELS,
        "requests that failed (transport error, timeout, status or expectation)",
    ),
    m("error_rate", Ratio, Gauge, LOAD_LABELS, "errors / requests"),
    m(
        "throughput",
        Rate,
        Gauge,
        LOAD_LABELS,
        "completed requests per second",
    ),
    m(
        "late",
        Count,
        Counter,
        &["phase"],
        "arrivals that started more than `late_tolerance` after their intended time",
    ),
    m(
        "arrivals",
        Count,
        Counter,
        &["phase"],
        "arrivals started (open model); `late_ratio` = late / arrivals",
    ),
    m("late_ratio", Ratio, Gauge, &["phase"], "late / arrivals"),
    m(
        "target.cpu",
        Ratio,
        Gauge,
        &[],
        "CPU use of the target perfspec started (1.0 = one core)",
    ),
    m(
        "target.rss",
        Bytes,
        Gauge,
        &[],
        "peak resident memory of the target perfspec started",
    ),
    m(
        "target.rss_growth",
        Bytes,
        Gauge,
        &[],
        "resident memory growth of the target over the run",
    ),
    m(
        "target.connections",
        Count,
        Gauge,
        &[],
        "peak open connections of the target",
    ),
    m(
        "generator.cpu",
        Ratio,
        Gauge,
        &[],
        "CPU use of perfspec itself (1.0 = one core)",
    ),
    m(
        "generator.slippage",
        Time,
        Histogram,
        &[],
        "how late arrivals started relative to their schedule",
    ),
    m(
        "max_rate",
        Rate,
        Gauge,
        &[],
        "highest arrival rate that held every SLO (stress search)",
    ),
    m(
        "recovery_time",
        Time,
        Gauge,
        &[],
        "time until p95 latency and the error rate were back within the SLO after a spike",
    ),
];

const CACHE_OP_TIER: &[&str] = &["op", "tier", "instance", "capacity"];

static CACHE: &[MetricDef] = &[
    m(
        "hit_ratio",
        Ratio,
        Gauge,
        &["tier", "instance", "capacity"],
        "cache hits / reads, per tier and overall",
    ),
    m(
        "latency",
        Time,
        Histogram,
        CACHE_OP_TIER,
        "latency of cache operations",
    ),
    m(
        "throughput",
        Rate,
        Gauge,
        &["capacity"],
        "operations per second",
    ),
    m("ops", Count, Counter, CACHE_OP_TIER, "operations executed"),
    m(
        "errors",
        Count,
        Counter,
        CACHE_OP_TIER,
        "operations that failed (e.g. Redis unavailable)",
    ),
    m(
        "error_rate",
        Ratio,
        Gauge,
        CACHE_OP_TIER,
        "failed calls to the shared tier / operations (the operations fell back to the origin)",
    ),
    m(
        "origin_calls",
        Count,
        Counter,
        &["capacity"],
        "calls that reached the origin (the database behind the cache)",
    ),
    m(
        "origin_load_reduction",
        Ratio,
        Gauge,
        &["capacity"],
        "1 - origin reads / reads",
    ),
    m(
        "stale_reads",
        Count,
        Counter,
        &["tier", "instance", "capacity"],
        "reads that returned an older version than the latest committed write",
    ),
    m(
        "stale_ratio",
        Ratio,
        Gauge,
        &["tier", "instance", "capacity"],
        "stale reads / reads",
    ),
    m(
        "evictions",
        Count,
        Counter,
        &["tier", "instance", "capacity"],
        "entries evicted by the cache",
    ),
    m(
        "resident_entries",
        Count,
        Gauge,
        &["tier", "instance", "capacity"],
        "entries held at the end of the run",
    ),
    m(
        "resident_bytes",
        Bytes,
        Gauge,
        &["tier", "instance", "capacity"],
        "bytes held at the end of the run",
    ),
    m(
        "lru_hit_ratio",
        Ratio,
        Gauge,
        &["instance", "capacity"],
        "hit ratio of an exact LRU on the same read trace",
    ),
    m(
        "optimal_hit_ratio",
        Ratio,
        Gauge,
        &["instance", "capacity"],
        "hit ratio of Bélády's optimal policy on the same read trace",
    ),
    m(
        "warmup_time",
        Time,
        Gauge,
        &["instance", "capacity"],
        "time for a restarted instance to reach 95% of its hit ratio before the restart again",
    ),
    m(
        "peak_resident_entries",
        Count,
        Gauge,
        &["tier", "instance", "capacity"],
        "most entries held at any sample during the run (every 100 ms)",
    ),
    m(
        "peak_resident_ratio",
        Ratio,
        Gauge,
        &["tier", "instance", "capacity"],
        "peak resident entries / configured capacity in entries (above 1: the cache overshot its bound)",
    ),
    m(
        "invalidations",
        Count,
        Counter,
        &["instance", "capacity"],
        "l1 entries dropped on invalidation messages from other instances",
    ),
    m(
        "node_share",
        Ratio,
        Gauge,
        &["node", "capacity"],
        "fraction of the memcached calls perfspec's ring sent to each node (from 1)",
    ),
    m(
        "node_keys",
        Count,
        Gauge,
        &["node", "capacity"],
        "items each memcached node holds at the end of the run (its `curr_items`)",
    ),
    m(
        "node_misses",
        Count,
        Counter,
        &["node", "capacity"],
        "memcached gets that found nothing, per node",
    ),
    m(
        "node_errors",
        Count,
        Counter,
        &["node", "capacity"],
        "failed memcached calls, per node (a dead node fails until it is ejected)",
    ),
    m(
        "imbalance",
        Ratio,
        Gauge,
        &["capacity"],
        "largest node_share / mean node_share (1: perfectly even)",
    ),
    m(
        "remap_ratio",
        Ratio,
        Gauge,
        &["change", "capacity"],
        "fraction of the key space a ring change (ejection, retry, added node) moved to another node; without `change`, the first",
    ),
    m(
        "miss_spike",
        Count,
        Gauge,
        &["event", "capacity"],
        "memcached misses in the second after a kill_node / add_node event beyond the miss rate of the second before",
    ),
    m(
        "hit_ratio_after",
        Ratio,
        Gauge,
        &["event", "capacity"],
        "memcached hit ratio from a kill_node / add_node event to the end of the run",
    ),
    m(
        "recovery_time",
        Time,
        Gauge,
        &["event", "capacity"],
        "time from a kill_node / add_node event until the memcached hit ratio was back to 95% of before",
    ),
];

/// `replicas` / `threads` for sweeps; `concurrency` for the levels of a fit-only CSV.
const SWEEP: &[&str] = &["replicas", "threads", "concurrency"];

static SCALING: &[MetricDef] = &[
    m(
        "throughput",
        Rate,
        Gauge,
        SWEEP,
        "sustained throughput at each sweep step",
    ),
    m(
        "speedup",
        Ratio,
        Gauge,
        SWEEP,
        "throughput relative to the first sweep step",
    ),
    m(
        "efficiency",
        Ratio,
        Gauge,
        SWEEP,
        "speedup / capacity relative to the first step",
    ),
    m(
        "latency",
        Time,
        Histogram,
        SWEEP,
        "request latency at each sweep step",
    ),
    m(
        "errors",
        Count,
        Counter,
        SWEEP,
        "failed requests at each sweep step (connection errors, timeouts, 5xx, failed expectations)",
    ),
    m(
        "error_rate",
        Ratio,
        Gauge,
        SWEEP,
        "errors / requests at each sweep step; without a label, over the whole sweep",
    ),
    m(
        "usl.sigma",
        Count,
        Gauge,
        &[],
        "USL contention coefficient σ",
    ),
    m(
        "usl.kappa",
        Count,
        Gauge,
        &[],
        "USL coherency coefficient κ",
    ),
    m(
        "usl.lambda",
        Rate,
        Gauge,
        &[],
        "USL single-unit throughput λ",
    ),
    m(
        "usl.peak_concurrency",
        Count,
        Gauge,
        &[],
        "capacity at which USL throughput peaks",
    ),
    m(
        "usl.max_throughput",
        Rate,
        Gauge,
        &[],
        "USL throughput at the peak",
    ),
    m(
        "usl.r_squared",
        Ratio,
        Gauge,
        &[],
        "coefficient of determination of the USL fit",
    ),
    m(
        "failover.errors",
        Count,
        Counter,
        &[],
        "failed requests that ended at or after the fault (in flight at the fault included)",
    ),
    m(
        "failover.error_rate",
        Ratio,
        Gauge,
        &[],
        "failed / all requests that ended at or after the fault",
    ),
    m(
        "failover.p95",
        Time,
        Gauge,
        &[],
        "per-second p95 latency around a fault (timeline series)",
    ),
    m(
        "failover.recovery_time",
        Time,
        Gauge,
        &[],
        "time from the fault until p95 and the error rate are back within the SLO",
    ),
];

static QUANTIZE: &[MetricDef] = &[
    m(
        "size",
        Bytes,
        Gauge,
        &["scheme"],
        "saved model size (burnpack bytes)",
    ),
    m("size_ratio", Ratio, Gauge, &["scheme"], "size / fp32 size"),
    m(
        "accuracy",
        Ratio,
        Gauge,
        &["scheme", "mode"],
        "top-1 accuracy on the test split",
    ),
    m(
        "accuracy_drop",
        Points,
        Gauge,
        &["scheme", "mode"],
        "fp32 accuracy minus this scheme's, in percentage points",
    ),
    m(
        "latency",
        Time,
        Histogram,
        &["scheme", "mode", "batch"],
        "inference latency per batch",
    ),
    m(
        "latency_ratio",
        Ratio,
        Gauge,
        &["scheme", "mode", "batch"],
        "p50 latency / fp32 p50 latency",
    ),
    m(
        "throughput",
        Rate,
        Gauge,
        &["scheme", "mode", "batch"],
        "samples per second",
    ),
    m(
        "sqnr",
        Decibels,
        Gauge,
        &["scheme", "layer", "tensor"],
        "20·log10(‖x‖/‖x−x̂‖) per weight tensor and layer output",
    ),
    m(
        "sensitivity",
        Points,
        Gauge,
        &["scheme", "layer"],
        "accuracy drop when only this layer is quantized (tuning)",
    ),
    m(
        "recommended",
        Count,
        Gauge,
        &["scheme"],
        "1 for the scheme tuning recommends (accuracy criterion + objective)",
    ),
];

/// Every metric of a kind.
pub fn metrics(kind: Kind) -> &'static [MetricDef] {
    match kind {
        Kind::Load => LOAD,
        Kind::Cache => CACHE,
        Kind::Scaling => SCALING,
        Kind::Quantize => QUANTIZE,
    }
}

/// Prometheus metrics scraped from a load target live under `prom.<name>{labels}`.
static PROM: MetricDef = m(
    "prom.*",
    Count,
    Gauge,
    &[],
    "a gauge or counter scraped from the target's /metrics",
);

/// Look up a metric of a kind. `prom.<name>` metrics of load specs accept any labels.
pub fn lookup(kind: Kind, name: &str) -> Option<&'static MetricDef> {
    if kind == Kind::Load && name.strip_prefix("prom.").is_some_and(|n| !n.is_empty()) {
        return Some(&PROM);
    }
    metrics(kind).iter().find(|d| d.name == name)
}

/// `name` as a `&'static str` (metrics declared by exec specs share the catalog's type):
/// each distinct name is leaked once and reused, so memory is bounded by the names seen.
pub fn intern(name: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::{Mutex, OnceLock};
    static POOL: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let mut pool = POOL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(s) = pool.get(name) {
        return s;
    }
    let s: &'static str = Box::leak(name.to_string().into_boxed_str());
    pool.insert(s);
    s
}

/// A list of interned names as a `&'static` slice, leaked once per distinct list.
pub fn intern_list(names: &[&'static str]) -> &'static [&'static str] {
    use std::sync::{Mutex, OnceLock};
    static POOL: OnceLock<Mutex<Vec<&'static [&'static str]>>> = OnceLock::new();
    if names.is_empty() {
        return &[];
    }
    let mut pool = POOL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(l) = pool.iter().find(|l| **l == names) {
        return l;
    }
    let l: &'static [&'static str] = Box::leak(names.to_vec().into_boxed_slice());
    pool.push(l);
    l
}

/// Whether a label may be used with this metric (prometheus metrics take any label).
pub fn allows_label(def: &MetricDef, label: &str) -> bool {
    def.name == "prom.*" || def.labels.contains(&label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_kind() {
        for kind in Kind::ALL {
            let mut names: Vec<_> = metrics(kind).iter().map(|d| d.name).collect();
            names.sort();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "{kind}");
        }
    }

    #[test]
    fn prometheus_names_only_for_load() {
        assert!(lookup(Kind::Load, "prom.db_pool_in_use").is_some());
        assert!(lookup(Kind::Load, "prom.").is_none());
        assert!(lookup(Kind::Cache, "prom.x").is_none());
        assert_eq!(
            lookup(Kind::Cache, "hit_ratio").unwrap().dim,
            Dimension::Ratio
        );
    }
}
