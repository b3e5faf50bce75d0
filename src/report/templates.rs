//! The report templates: embedded in the binary, each overridable by a file of the same
//! relative name in `--templates DIR` (a team can brand its report). minijinja with strict
//! undefined behaviour (a typo in a template is an error, never an empty string), HTML
//! auto-escaping for `.html` templates, and an `md_cell` / `md_code` filter pair for
//! Markdown tables.

use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// Every embedded template, by the name templates and overrides use.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "report.html.j2",
        include_str!("../../templates/report.html.j2"),
    ),
    (
        "summary.md.j2",
        include_str!("../../templates/summary.md.j2"),
    ),
    (
        "macros.html.j2",
        include_str!("../../templates/macros.html.j2"),
    ),
    (
        "kinds/load.html.j2",
        include_str!("../../templates/kinds/load.html.j2"),
    ),
    (
        "kinds/cache.html.j2",
        include_str!("../../templates/kinds/cache.html.j2"),
    ),
    (
        "kinds/scaling.html.j2",
        include_str!("../../templates/kinds/scaling.html.j2"),
    ),
    (
        "kinds/quantize.html.j2",
        include_str!("../../templates/kinds/quantize.html.j2"),
    ),
];

/// Why a report could not be rendered or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("render template `{name}`: {detail}")]
    Template { name: String, detail: String },
    #[error("read template override `{}`: {source}", path.display())]
    Override {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("serialize junit.xml: {0}")]
    Junit(String),
}

fn template_error(name: &str, e: &minijinja::Error) -> ReportError {
    let mut detail = e.to_string();
    if let Some(line) = e.line() {
        detail = format!("{detail} (line {line})");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(&format!(": {s}"));
        source = s.source();
    }
    ReportError::Template {
        name: name.to_string(),
        detail,
    }
}

/// Escape a value for a Markdown table cell: pipes, line breaks, HTML and emphasis.
pub fn md_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '`' | '*' | '_' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A Markdown code span for a table cell: backticks and line breaks cannot end it, pipes
/// cannot split the row (GitHub unescapes `\|` inside code spans of tables).
pub fn md_code(s: &str) -> String {
    let inner: String = s
        .chars()
        .map(|c| match c {
            '`' => '\'',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect();
    format!("`{}`", inner.replace('|', "\\|"))
}

/// The set of templates a report renders with.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The embedded templates, each replaced by `dir/<name>` when that file exists; other
    /// files of `dir` can be included by name (e.g. a new partial).
    pub fn load(dir: Option<&Path>) -> Result<Templates, ReportError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html.j2") || name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build();
        if let Ok(syntax) = syntax {
            env.set_syntax(syntax);
        }
        env.add_filter("md_cell", |s: String| md_cell(&s));
        env.add_filter("md_code", |s: String| md_code(&s));
        for (name, source) in EMBEDDED {
            let over = dir.map(|d| d.join(name)).filter(|p| p.is_file());
            let added = match over {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|source| ReportError::Override { path, source })?;
                    env.add_template_owned(name.to_string(), text)
                }
                None => env.add_template(name, source),
            };
            added.map_err(|e| template_error(name, &e))?;
        }
        if let Some(dir) = dir {
            let dir = dir.to_path_buf();
            env.set_loader(move |name| {
                let rel = Path::new(name);
                if rel.is_absolute()
                    || rel
                        .components()
                        .any(|c| !matches!(c, std::path::Component::Normal(_)))
                {
                    return Ok(None);
                }
                match std::fs::read_to_string(dir.join(rel)) {
                    Ok(s) => Ok(Some(s)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("cannot read template `{name}`"),
                    )
                    .with_source(e)),
                }
            });
        }
        Ok(Templates { env })
    }

    /// Render the template `name` with a serializable context.
    pub fn render<T: serde::Serialize>(&self, name: &str, ctx: &T) -> Result<String, ReportError> {
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| template_error(name, &e))?;
        tmpl.render(minijinja::Value::from(minijinja::value::Serde(ctx)))
            .map_err(|e| template_error(name, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table_or_inject_markup() {
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
        assert_eq!(md_cell("<script>"), "&lt;script&gt;");
        assert_eq!(md_code("p95(x) | `y`"), "`p95(x) \\| 'y'`");
    }

    #[test]
    fn strict_undefined_and_html_escaping() {
        let t = Templates::load(None).unwrap();
        let mut env = t.env.clone();
        env.add_template_owned("x.html.j2".to_string(), "{{ name }}".to_string())
            .unwrap();
        env.add_template_owned("typo.html.j2".to_string(), "{{ nmae }}".to_string())
            .unwrap();
        let ctx = minijinja::context! { name => "<b>" };
        assert_eq!(
            env.get_template("x.html.j2").unwrap().render(&ctx).unwrap(),
            "&lt;b&gt;"
        );
        assert!(
            env.get_template("typo.html.j2")
                .unwrap()
                .render(&ctx)
                .is_err()
        );
    }

    #[test]
    fn overrides_replace_embedded_templates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("summary.md.j2"),
            "custom {{ verdict.word }}\n",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let out = t
            .render(
                "summary.md.j2",
                &serde_json::json!({"verdict": {"word": "pass"}}),
            )
            .unwrap();
        assert_eq!(out, "custom pass\n");
    }
}
