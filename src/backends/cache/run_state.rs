//! What the workers, listeners and event tasks of one cache run share.

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::instance::{Instance, Shared};
use super::memcached::cluster::McCluster;
use super::memcached::tier::MemcachedTier;
use super::plan::PlannedEvent;
use super::redis_server::RedisServer;
use super::workload::Generator;

/// A memcached `l2`: its nodes and the run's tier.
pub struct Memcached {
    pub cluster: Arc<McCluster>,
    pub tier: Arc<MemcachedTier>,
    /// `(seconds, what)` of the `kill_node` and `add_node` events that fired.
    pub events: Mutex<Vec<(f64, &'static str)>>,
}

/// The operation stream and the events due at an operation count.
pub struct Feed {
    pub generator: Generator,
    pub limit: Option<u64>,
    pub due: VecDeque<(u64, PlannedEvent)>,
}

/// Everything the workers of one run share.
pub struct Run {
    pub shared: Shared,
    pub instances: Vec<Instance>,
    pub feed: Mutex<Feed>,
    pub stop: AtomicBool,
    pub server: Option<Arc<tokio::sync::Mutex<RedisServer>>>,
    /// The memcached nodes and this run's client over them.
    pub memcached: Option<Memcached>,
    /// Cancelled when the run ends (stops listeners and event tasks).
    pub done: CancellationToken,
    /// `(seconds, what)` of the events that fired.
    pub fired: Mutex<Vec<(f64, String)>>,
}

impl Run {
    /// Seconds since the run started.
    pub fn now(&self) -> f64 {
        self.shared.t0.elapsed().as_secs_f64()
    }

    /// Record that something happened at `t` seconds (a note in the report).
    pub fn record(&self, t: f64, what: String) {
        lock(&self.fired).push((t, what));
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which sweep run this is.
pub struct Point {
    pub index: usize,
    pub total: usize,
    pub label: Option<crate::engine::metrics::Labels>,
    pub representative: bool,
}

impl Point {
    /// Label sets scalars are emitted with.
    pub fn suffixes(&self) -> Vec<crate::engine::metrics::Labels> {
        use crate::engine::metrics::Labels;
        match &self.label {
            None => vec![Labels::new()],
            Some(l) if self.representative => vec![l.clone(), Labels::new()],
            Some(l) => vec![l.clone()],
        }
    }

    pub fn series_labels(&self, extra: &[(&str, String)]) -> crate::engine::metrics::Labels {
        let mut l = self.label.clone().unwrap_or_default();
        for (k, v) in extra {
            l.insert((*k).to_string(), v.clone());
        }
        l
    }

    /// `capacity 500` (empty without a sweep).
    pub fn name(&self) -> String {
        match &self.label {
            Some(l) => l
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            None => String::new(),
        }
    }

    /// What notes about this run start with: `capacity 500: ` (empty without a sweep).
    pub fn prefix(&self) -> String {
        let name = self.name();
        if name.is_empty() {
            name
        } else {
            format!("{name}: ")
        }
    }
}
