//! The result model (`results.json`) and its renderers.

pub mod results;
pub mod summary;
