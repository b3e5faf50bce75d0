//! `kind = "scaling"`: replica and thread sweeps behind a balancer (client-side or nginx)
//! with faults, and a Universal Scalability Law fit of the sweep or of a CSV (fit-only).

mod balancer;
mod driver;
mod faults;
mod fit_metrics;
mod measurements;
mod nginx;
pub mod plan;
mod profile;
mod replicas;
mod runner;
mod step;
mod sweep;
mod usl_fit;

pub use fit_metrics::{measure, measure_labelled};
pub use measurements::{MeasurementsError, Point};
pub use runner::Native;
pub use usl_fit::{Fit, MIN_POINTS, NoFit, Peak, fit};
