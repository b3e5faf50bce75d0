//! The HTTP engine that load specs and scaling steps share.
//!
//! A journey iteration runs the same way whoever sends its requests: render a step, send
//! it over a [`Transport`], check the answer, record it, wait the think time, next step.
//! The transports are goose's virtual users (load specs, `load/runner.rs`) and the
//! balancer-aware client of a scaling step (`scaling/sweep.rs`). Both record into the load
//! engine's recorder (HDR histograms: `latency` from when a request was due, `service_time`
//! from its send) and schedule open-model arrivals with the same `Stages`.

mod iteration;

pub use iteration::{Failure, Pacing, Response, Sink, Transport, classify, run_journey};
