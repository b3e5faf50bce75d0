//! One chart builder per spec kind: which charts and tables a kind's section shows, chosen
//! from whatever metrics and series the results hold (a block without data says so).

mod cache;
pub(super) mod common;
mod dispatch;
mod exec;
mod load;
mod quantize;
mod scaling;

pub use dispatch::sections;
