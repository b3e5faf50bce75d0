//! `kind = "load"` on goose: targets, the arrival schedule, journeys, recording.

mod backend;
mod journey;
mod recorder;
mod runner;
mod schedule;
mod target;

pub use backend::Goose;
