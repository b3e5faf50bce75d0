//! The cache backend (`kind = "cache"`, `backend = "native"`): in-process moka and stretto,
//! Redis, and two-tier topologies over a versioned origin; workload generators and the LRU /
//! Bélády reference bounds.

mod analysis;
mod events;
mod instance;
mod invalidation;
mod memcached;
mod origin;
mod plan;
mod planned;
mod redis_server;
mod reference;
mod run_state;
mod runner;
mod stats;
mod tiers;
mod topology;
mod warmup;
mod workload;

pub use runner::Native;
