//! `kind = "load"` on goose: targets, the arrival schedule, journeys, recording.

mod backend;
pub(crate) mod journey;
pub mod plan;
mod recorder;
mod runner;
mod schedule;
pub(crate) mod target;

pub use backend::Goose;
