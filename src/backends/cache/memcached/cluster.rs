//! The memcached nodes (and nutcracker) of a spec, started once for all its sweep runs, and
//! the tier of each run over them; the `kill_node` and `add_node` events.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::server::{MemcachedNode, Nutcracker};
use super::tier::{MemcachedTier, TierConfig};
use crate::backends::cache::plan::{MemcachedPlan, Plan};
use crate::engine::BackendError;

/// The nodes perfspec started (none for `servers`) and the proxy in front of them.
pub struct McCluster {
    pub plan: MemcachedPlan,
    pub nodes: tokio::sync::Mutex<Vec<MemcachedNode>>,
    proxy: Option<Nutcracker>,
}

fn failed(message: String) -> BackendError {
    BackendError::Failed {
        message,
        partial: None,
    }
}

/// Start the memcached nodes (and nutcracker) a spec asks for; `dir` receives
/// nutcracker's configuration.
pub async fn start(plan: &Plan, dir: &Path) -> Result<Option<Arc<McCluster>>, BackendError> {
    let Some(p) = plan.memcached() else {
        return Ok(None);
    };
    let mut nodes = Vec::new();
    for _ in 0..p.spawn.unwrap_or(0) {
        nodes.push(MemcachedNode::start().await?);
    }
    let addrs: Vec<String> = if p.spawn.is_some() {
        nodes.iter().map(MemcachedNode::addr).collect()
    } else {
        p.servers.clone()
    };
    let proxy = if p.proxy {
        Some(Nutcracker::start(dir, &addrs, p.hashing.as_str(), p.ejection).await?)
    } else {
        None
    };
    Ok(Some(Arc::new(McCluster {
        plan: p.clone(),
        nodes: tokio::sync::Mutex::new(nodes),
        proxy,
    })))
}

impl McCluster {
    /// The tier of sweep run `index`: nodes perfspec started are brought back to the planned
    /// set (dead ones restarted, added ones stopped) and emptied; given servers get a key
    /// prefix unique to the run.
    pub async fn tier(
        &self,
        index: usize,
        unique: u128,
        t0: Instant,
    ) -> Result<Arc<MemcachedTier>, BackendError> {
        let p = &self.plan;
        let addrs = if let Some(n) = p.spawn {
            let mut nodes = self.nodes.lock().await;
            nodes.truncate(n as usize);
            for node in nodes.iter_mut() {
                if !node.child.is_running() {
                    node.restart()
                        .await
                        .map_err(|e| failed(format!("memcached did not restart: {e}")))?;
                }
            }
            nodes.iter().map(MemcachedNode::addr).collect()
        } else {
            p.servers.clone()
        };
        let prefix = if p.spawn.is_some() {
            format!("perfspec:{index}")
        } else {
            format!("perfspec:{}:{unique}:{index}", std::process::id())
        };
        let ring = MemcachedTier::ring_over(p.hashing, &addrs);
        let config = TierConfig {
            prefix,
            ttl: p.ttl,
            ejection: p.ejection,
            t0,
        };
        let proxy = self.proxy.as_ref().map(Nutcracker::addr);
        let tier = MemcachedTier::new(ring, addrs, proxy, config);
        if p.spawn.is_some() {
            tier.flush().await.map_err(|e| {
                BackendError::Unavailable(format!(
                    "cannot reach the memcached perfspec started: {e}"
                ))
            })?;
        }
        Ok(Arc::new(tier))
    }

    /// Kill node `i` (from 0); what happened, for the report.
    pub async fn kill(&self, i: usize) -> String {
        match self.nodes.lock().await.get_mut(i) {
            Some(n) => {
                n.child.kill();
                format!("memcached node {} ({}) killed (SIGKILL)", i + 1, n.addr())
            }
            None => format!("there is no memcached node {}", i + 1),
        }
    }

    /// Restart node `i`, empty, on its port.
    pub async fn restore(&self, i: usize) -> String {
        match self.nodes.lock().await.get_mut(i) {
            Some(n) => match n.restart().await {
                Ok(()) => format!("memcached node {} restarted, empty", i + 1),
                Err(e) => format!("memcached node {} did not restart: {e}", i + 1),
            },
            None => format!("there is no memcached node {}", i + 1),
        }
    }

    /// Start one more node and add it to `tier`'s ring.
    pub async fn add(&self, tier: &MemcachedTier) -> String {
        match MemcachedNode::start().await {
            Ok(n) => {
                let addr = n.addr();
                let mut nodes = self.nodes.lock().await;
                nodes.push(n);
                tier.add_node(addr.clone());
                format!("memcached node {} ({addr}) started", nodes.len())
            }
            Err(e) => format!("a new memcached node did not start: {e}"),
        }
    }
}
