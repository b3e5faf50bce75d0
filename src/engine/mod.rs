//! Plan → run → verdict: the Backend trait and its registry, measurements, SLO evaluation.

pub mod metrics;
pub mod verdict;
