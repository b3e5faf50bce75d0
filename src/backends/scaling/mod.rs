//! `kind = "scaling"`: a Universal Scalability Law fit of measured concurrency/throughput
//! (fit-only specs); replica and thread sweeps behind a balancer land later.

mod measurements;
mod nginx;
mod runner;
mod sweep;
mod usl_fit;

pub use measurements::{MeasurementsError, Point};
pub use runner::{Native, measure, measure_labelled};
pub use usl_fit::{Fit, MIN_POINTS, NoFit, Peak, fit};
