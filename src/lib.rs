//! perfspec: declarative performance specs (load, cache, scaling, quantization) with SLO
//! gates. Data flows one way: file → [`spec::Spec`] → plan → [`engine::Backend::run`] →
//! [`engine::metrics::Measurements`] → verdicts → [`results::Results`] → renderers.

pub mod backends;
pub mod cli;
pub mod demo;
pub mod engine;
pub mod exit;
pub mod history;
pub mod init;
pub mod merge;
pub mod process;
pub mod report;
pub mod results;
pub mod spec;
