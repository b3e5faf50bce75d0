//! `kind = "scaling"`: replica and thread sweeps behind a balancer (client-side or nginx)
//! with faults, and a Universal Scalability Law fit of the sweep or of a CSV (fit-only).

mod measurements;
mod nginx;
mod profile;
mod runner;
mod step;
mod sweep;
mod usl_fit;

pub use measurements::{MeasurementsError, Point};
pub use runner::{Native, measure, measure_labelled};
pub use usl_fit::{Fit, MIN_POINTS, NoFit, Peak, fit};
