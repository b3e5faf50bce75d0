//! `report.html`: one self-contained page (no CDN, no web fonts, no JavaScript), rendered
//! from `report.html.j2` with HTML auto-escaping; charts are inline SVG.

use super::templates::{ReportError, Templates};
use super::view::View;
use crate::results::Results;

/// Render report.html.
pub fn render(r: &Results, templates: &Templates) -> Result<String, ReportError> {
    render_with(r, templates, None)
}

/// Render report.html, with a trend chart per SLO from the history's `trends`.
pub fn render_with(
    r: &Results,
    templates: &Templates,
    trends: Option<&crate::history::Trends>,
) -> Result<String, ReportError> {
    templates.render("report.html.j2", &View::build(r, trends))
}
