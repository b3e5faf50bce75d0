//! The embedded demo service (`perfspec demo serve`): a small shop and its database tier,
//! latency- and pool-bound so that load and scaling experiments measure the architecture,
//! not the CPU count. The example specs and the integration tests run against it.

pub mod config;
pub mod db;
pub mod launch;
pub mod shop;

pub use config::{DbArgs, DemoCommand, ServeArgs};
