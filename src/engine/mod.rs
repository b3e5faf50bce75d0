//! Plan → run → verdict: the Backend trait, measurements, SLO evaluation, orchestration.

pub mod backend;
pub mod baseline;
pub mod display;
pub mod fidelity;
pub mod metrics;
pub mod noise;
pub mod plan;
pub mod progress;
pub mod rebase;
pub mod repeats;
pub mod run;
pub mod search;
pub mod shard;
pub mod verdict;

pub use backend::{Backend, BackendError, Repeat, RunContext};
pub use plan::{Plan, Planned};
