//! `kind = "load"`: on goose (targets, the arrival schedule, journeys, recording) or imported from k6 and JMeter results.

pub(crate) mod backend;
pub(crate) mod import;
pub mod plan;
mod runner;
pub(crate) mod target;

pub use backend::Goose;
pub use import::Import;
