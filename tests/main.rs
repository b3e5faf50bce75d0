//! One integration test binary: the real `perfspec` CLI against fixtures and example specs.

mod cli;
mod corpus;
mod results_schema;
