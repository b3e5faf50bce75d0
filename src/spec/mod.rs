//! Text → typed, validated [`Spec`]. No I/O beyond reading the spec files.

pub mod catalog;
pub mod diagnostic;
pub mod node;
pub mod slo;
pub mod source;
pub mod toml_front;
pub mod units;
pub mod yaml_front;
