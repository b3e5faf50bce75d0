//! The HTTP engine that load specs and scaling steps share.
//!
//! A journey iteration runs the same way whoever sends its requests: render a step, send
//! it over a [`Transport`], check the answer, record it, wait the think time, next step.
//! The transports are goose's virtual users (load specs, `load/runner.rs`) and the
//! balancer-aware client of a scaling step (`scaling/balancer.rs`). The pieces, in this
//! folder: `journey` (journeys compiled from a spec: templates, data, captures, checks),
//! `schedule` (stages and the open model's arrivals), `recorder` (HDR histograms: `latency`
//! from when a request was due, `service_time` from its send; counts, per-second series) and
//! `iteration` (one journey over a transport) and `wake` (an arrival woken at its intended
//! time to the tens of microseconds, not tokio's millisecond).

mod iteration;
pub(crate) mod journey;
pub(crate) mod recorder;
pub(crate) mod schedule;
pub(crate) mod wake;

pub use iteration::{Failure, Pacing, Response, Sink, Transport, classify, run_journey};
