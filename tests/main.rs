//! One integration test binary: the real `perfspec` CLI against fixtures and example specs.

mod cache;
mod cli;
mod corpus;
mod exec;
mod import;
mod load;
mod noise;
mod plan;
mod processes;
#[cfg(feature = "quantize")]
mod quantize;
mod report_charts;
mod reports;
mod results_schema;
mod scaling;
mod shards;
mod trend;
