//! The cache backend's plan as the engine sees it: the runs of [`super::plan::sweep`] (one
//! per sweep value, defaults resolved) with a one-line summary of each for `--dry-run`.

use std::fmt;
use std::time::Duration;

use super::plan::Capacity;
use super::plan::{Action, LocalPlan, Plan as RunPlan, RedisSource, SharedPlan, Sweep};
use super::workload::KeyDist;
use crate::engine::plan::secs;
use crate::spec::cache::At;
use crate::spec::units::trim_float;

/// Every run of a cache spec.
#[derive(serde::Serialize)]
pub struct CachePlan {
    /// The label sweep metrics carry (`capacity`), when the spec sweeps.
    pub sweep: Option<&'static str>,
    pub runs: Vec<RunSummary>,
    #[serde(skip)]
    pub runs_planned: Sweep,
}

/// One run, as `--dry-run` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// The sweep value of this run (empty without a sweep).
    pub value: String,
    pub instances: usize,
    pub l1: Option<String>,
    pub l2: Option<String>,
    pub invalidation: String,
    /// Operations, or `None` when the run is bounded by `duration_s`.
    pub ops: Option<u64>,
    pub duration_s: Option<f64>,
    pub keys: u64,
    pub distribution: String,
    /// read, update, insert, delete, read-modify-write, scan.
    pub mix: [f64; 6],
    pub concurrency: usize,
    pub events: Vec<String>,
}

impl CachePlan {
    pub fn new(sweep: Sweep) -> CachePlan {
        CachePlan {
            sweep: sweep.label,
            runs: sweep
                .points
                .iter()
                .map(|(value, p)| summary(value, p))
                .collect(),
            runs_planned: sweep,
        }
    }
}

fn capacity(c: Capacity) -> String {
    match c {
        Capacity::Entries(n) => format!("{n} entries"),
        Capacity::Bytes(n) => crate::spec::units::Dimension::Bytes.format(n as f64),
    }
}

fn ttl(t: Option<Duration>) -> String {
    t.map_or_else(String::new, |t| format!(", ttl {}", secs(t.as_secs_f64())))
}

fn local(l: &LocalPlan) -> String {
    format!(
        "{} {}{}",
        l.backend.as_str(),
        capacity(l.capacity),
        ttl(l.ttl)
    )
}

fn shared(s: &SharedPlan) -> String {
    match s {
        SharedPlan::Local(l) => format!("shared {}", local(l)),
        SharedPlan::Redis { source, ttl: t } => {
            let src = match source {
                RedisSource::Spawn { max_bytes: None } => "redis-server started by perfspec".into(),
                RedisSource::Spawn { max_bytes: Some(b) } => format!(
                    "redis-server started by perfspec, maxmemory {} allkeys-lru",
                    crate::spec::units::Dimension::Bytes.format(*b as f64)
                ),
                RedisSource::Url(u) => format!("redis at {u}"),
                RedisSource::Cluster { masters, replicas } => format!(
                    "Redis Cluster started by perfspec ({masters} masters, {replicas} replica(s) each)"
                ),
                RedisSource::Nodes(n) => format!("Redis Cluster at {}", n.join(", ")),
            };
            format!("{src}{}", ttl(*t))
        }
        SharedPlan::Memcached(m) => {
            let nodes = match m.spawn {
                Some(n) => format!("{n} memcached node(s) started by perfspec"),
                None => format!("memcached at {}", m.servers.join(", ")),
            };
            let placed = if m.proxy {
                "behind a twemproxy (nutcracker) started by perfspec".to_string()
            } else {
                "placed by perfspec's client".to_string()
            };
            format!(
                "{nodes}, {} {placed}, ejected after {} failed calls{}",
                m.hashing.as_str(),
                m.ejection.failure_limit,
                ttl(m.ttl)
            )
        }
    }
}

fn distribution(d: &KeyDist) -> String {
    match d {
        KeyDist::Uniform => "uniform".into(),
        KeyDist::Zipf(t) => format!("zipf({})", trim_float(*t)),
        KeyDist::Hotspot { keys, ops } => format!(
            "hotspot ({}% of keys get {}% of ops)",
            trim_float(keys * 100.0),
            trim_float(ops * 100.0)
        ),
        KeyDist::Latest(t) => format!("latest (zipf {} over recency)", trim_float(*t)),
    }
}

fn event(at: At, action: Action) -> String {
    let when = match at {
        At::Fraction(f) => format!("at {}% of the ops", trim_float(f * 100.0)),
        At::Time(t) => format!("at {}", secs(t)),
    };
    let restore = |r: Option<std::time::Duration>| {
        r.map_or_else(String::new, |d| {
            format!(", restore after {}", secs(d.as_secs_f64()))
        })
    };
    match action {
        Action::Restart(i) => format!("restart instance {} {when}", i + 1),
        Action::KillRedis { restore_after } => {
            format!("kill redis {when}{}", restore(restore_after))
        }
        Action::KillNode {
            node,
            restore_after,
        } => format!(
            "kill memcached node {} {when}{}",
            node + 1,
            restore(restore_after)
        ),
        Action::AddNode => format!("add a memcached node {when}"),
    }
}

fn summary(value: &str, p: &RunPlan) -> RunSummary {
    RunSummary {
        value: value.to_string(),
        instances: p.instances,
        l1: p.l1.as_ref().map(local),
        l2: p.l2.as_ref().map(shared),
        invalidation: p.invalidation.to_string(),
        ops: p.ops,
        duration_s: p.duration.map(|d| d.as_secs_f64()),
        keys: p.trace.keys,
        distribution: distribution(&p.trace.dist),
        mix: p.trace.mix.0,
        concurrency: p.concurrency,
        events: p.events.iter().map(|e| event(e.at, e.action)).collect(),
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} instance(s)", self.instances)?;
        match &self.l1 {
            Some(l1) => write!(f, ", l1 {l1}")?,
            None => write!(f, ", no l1")?,
        }
        if let Some(l2) = &self.l2 {
            write!(f, ", l2 {l2}")?;
        }
        write!(f, ", invalidation {}", self.invalidation)?;
        match (self.ops, self.duration_s) {
            (Some(n), Some(d)) => write!(f, ", {n} ops or {}", secs(d))?,
            (Some(n), None) => write!(f, ", {n} ops")?,
            (None, Some(d)) => write!(f, ", ops for {}", secs(d))?,
            (None, None) => {}
        }
        let names = ["read", "update", "insert", "delete", "rmw", "scan"];
        let mix: Vec<String> = names
            .iter()
            .zip(self.mix)
            .filter(|(_, v)| *v > 0.0)
            .map(|(n, v)| format!("{n} {}%", trim_float(v * 100.0)))
            .collect();
        write!(
            f,
            " ({}), {} keys {}, concurrency {}",
            mix.join(" "),
            self.keys,
            self.distribution,
            self.concurrency
        )?;
        if !self.events.is_empty() {
            write!(f, ", events: {}", self.events.join("; "))?;
        }
        Ok(())
    }
}

impl fmt::Display for CachePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.runs.len();
        for (i, r) in self.runs.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match self.sweep {
                Some(label) => write!(f, "run {}/{n} [{label}={}]: {r}", i + 1, r.value)?,
                None => write!(f, "run {}/{n}: {r}", i + 1)?,
            }
        }
        Ok(())
    }
}
