//! Text → typed, validated [`Spec`]. No I/O beyond reading the spec files.

pub mod cache;
pub mod catalog;
pub mod decode;
pub mod diagnostic;
pub mod exec;
pub mod import;
pub mod k6;
pub mod load;
mod load_names;
pub mod loader;
pub mod model;
pub mod node;
pub mod objective;
pub mod quantize;
pub mod scaling;
pub mod schema;
pub mod slo;
pub mod smoke;
pub mod source;
pub mod toml_front;
pub mod units;
pub mod yaml_front;

pub use model::{Body, Spec};
