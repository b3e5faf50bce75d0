//! The renderers of a result record (`results.json`): HTML, Markdown, JUnit, GitHub
//! annotations. The result model itself is [`crate::results`]; renderers never compute
//! metrics or judge SLOs.

pub mod charts;
pub mod github;
pub mod html;
pub mod junit;
pub mod kinds;
pub mod summary;
pub mod templates;
pub mod trend;
pub mod view;
pub mod write;

// the result model moved to the crate root; the old path keeps working
pub use crate::results;
