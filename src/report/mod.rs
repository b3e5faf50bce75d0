//! The result model (`results.json`) and its renderers: HTML, Markdown, JUnit, GitHub
//! annotations.

pub mod charts;
pub mod github;
pub mod html;
pub mod junit;
pub mod kinds;
pub mod rebase;
pub mod results;
pub mod summary;
pub mod templates;
pub mod view;
pub mod write;
