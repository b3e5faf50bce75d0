//! `report.html`: one self-contained page (no CDN, no web fonts, no JavaScript), rendered
//! from `report.html.j2` with HTML auto-escaping; charts are inline SVG.

use super::templates::{ReportError, Templates};
use super::view::View;
use crate::results::Results;

/// Render report.html.
pub fn render(r: &Results, templates: &Templates) -> Result<String, ReportError> {
    templates.render("report.html.j2", &View::new(r))
}
