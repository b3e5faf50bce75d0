//! Every process perfspec starts — a `command` target, replicas, the demo shop and database,
//! `redis-server` (and Redis Cluster nodes, `redis-cli`), memcached nodes and nutcracker, nginx — goes through this module:
//!
//! - [`spawn`]: its own process group (a terminal's Ctrl-C reaches perfspec only, which then
//!   stops its children itself), a parent-death signal (Linux `PR_SET_PDEATHSIG`, SIGKILL,
//!   so a `kill -9` of perfspec takes its children along), its output kept as a tail for
//!   error messages;
//! - [`Child`]: the guard, with ONE stop policy — SIGTERM to the group, a grace period,
//!   SIGKILL, reap — run by its `Drop` on every exit path;
//! - [`free_port`] / [`on_free_port`]: a loopback port, retried when another process takes
//!   it between the probe and the child's bind;
//! - readiness, [`wait_ready`] (HTTP GET, TCP connect, an announced line, or a custom check)
//!   with a timeout, cancellation, and the child's early exit detected;
//! - [`Program`]: binary lookup on `PATH` (or an environment override) with an install hint;
//! - [`pin_cpus`] / [`cpu_slice`]: CPU affinity for replicas.

mod cpus;
mod port;
mod program;
mod ready;
mod spawn;

pub use cpus::{allowed_cpus, cpu_slice, pin_cpus};
pub use port::{PortTry, free_port, on_free_port};
pub use program::{MEMCACHED, NGINX, NUTCRACKER, Program, REDIS_CLI, REDIS_SERVER, which};
pub use ready::{Check, NotReady, Probe, error_chain, wait_ready};
pub use spawn::{Child, DEFAULT_GRACE, Restartable, signal_group, spawn, spawn_to_file};
