//! User-facing problems with a file, a span, a label and a hint; rendered with miette for
//! terminals and as JSON for editors and bots.

use std::sync::Arc;

use super::source::{SourceFile, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem in one spec file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable, machine-readable code such as `spec::unknown-key`.
    pub code: &'static str,
    /// Lowercase fragment, e.g. "unknown key `capacty`".
    pub message: String,
    /// The file and span it points at; `None` for problems without a location.
    pub source: Option<Arc<SourceFile>>,
    pub span: Option<Span>,
    /// Short text shown under the caret.
    pub label: Option<String>,
    pub hint: Option<String>,
}

impl Diagnostic {
    /// Message, label and hint with every secret (`${env:…}` value) replaced by `[redacted]`.
    pub fn redact(&mut self, secrets: &[String]) {
        if secrets.is_empty() {
            return;
        }
        let r = |s: &str| crate::report::results::redact(s, secrets);
        for text in [
            Some(&mut self.message),
            self.label.as_mut(),
            self.hint.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            *text = r(text);
        }
    }

    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            source: None,
            span: None,
            label: None,
            hint: None,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn at(mut self, source: &Arc<SourceFile>, span: Span) -> Diagnostic {
        self.source = Some(source.clone());
        self.span = Some(span);
        self
    }

    pub fn in_file(mut self, source: &Arc<SourceFile>) -> Diagnostic {
        self.source = Some(source.clone());
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    pub fn maybe_hint(mut self, hint: Option<String>) -> Diagnostic {
        if hint.is_some() {
            self.hint = hint;
        }
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `(line, col)`, 1-based, of the start of the span.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        Some(self.source.as_ref()?.line_col(self.span?.start))
    }

    /// `file:line:col` (or just `file`, or nothing).
    pub fn location(&self) -> Option<String> {
        let src = self.source.as_ref()?;
        Some(match self.line_col() {
            Some((l, c)) => format!("{}:{l}:{c}", src.name),
            None => src.name.clone(),
        })
    }

    /// The JSON shape of `validate --format json`.
    pub fn to_json(&self) -> serde_json::Value {
        let (line, column) = self
            .line_col()
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        let (end_line, end_column) = match (&self.source, self.span) {
            (Some(src), Some(span)) => {
                let (l, c) = src.line_col(span.end);
                (Some(l), Some(c))
            }
            _ => (None, None),
        };
        serde_json::json!({
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": self.source.as_ref().map(|s| s.name.clone()),
            "line": line,
            "column": column,
            "end_line": end_line,
            "end_column": end_column,
            "span": self.span.map(|s| serde_json::json!({"start": s.start, "end": s.end})),
            "label": self.label,
            "hint": self.hint,
        })
    }

    /// A one-line form for logs and tests: `file:line:col: error[code]: message`.
    pub fn short(&self) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.location() {
            Some(loc) => format!("{loc}: {sev}[{}]: {}", self.code, self.message),
            None => format!("{sev}[{}]: {}", self.code, self.message),
        }
    }

    /// Render with miette's graphical handler (snippet, caret, label, hint).
    pub fn render(&self, color: bool) -> String {
        let handler = if color {
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode())
        } else {
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        }
        .with_context_lines(1)
        .with_width(100);
        let mut out = String::new();
        let report = MietteView(self, self.source.as_deref().map(NamedText));
        if handler.render_report(&mut out, &report).is_err() {
            return self.short();
        }
        out
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.short())
    }
}

/// Adapter from [`Diagnostic`] to miette's trait.
struct MietteView<'a>(&'a Diagnostic, Option<NamedText<'a>>);

impl std::fmt::Debug for MietteView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::fmt::Display for MietteView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.location() {
            Some(loc) => write!(f, "{loc}: {}", self.0.message),
            None => f.write_str(&self.0.message),
        }
    }
}

impl std::error::Error for MietteView<'_> {}

/// A source that miette can read: the file's name and text.
struct NamedText<'a>(&'a SourceFile);

impl miette::SourceCode for NamedText<'_> {
    fn read_span<'b>(
        &'b self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        let inner = self
            .0
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        // miette counts the column in bytes (its snippet header shows it); perfspec's
        // `file:line:col` counts characters: count the characters before the span's start on
        // its line, so that both agree after non-ASCII text
        let start = inner.span().offset();
        let line_start = start.saturating_sub(inner.column());
        let column = self
            .0
            .text
            .get(line_start..start)
            .map_or(inner.column(), |s| s.chars().count());
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.0.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

impl miette::Diagnostic for MietteView<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        Some(Box::new(self.0.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.0.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.0
            .hint
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.0.span?;
        self.1.as_ref().map(|t| t as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let span = self.0.span?;
        self.0.source.as_ref()?;
        let len = span.len();
        Some(Box::new(std::iter::once(miette::LabeledSpan::new(
            Some(self.0.label.clone().unwrap_or_else(|| "here".into())),
            span.start,
            len,
        ))))
    }
}

/// The closest candidate to `word` by edit distance, for "did you mean" hints.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words() {
        assert_eq!(
            did_you_mean("capacty", ["capacity", "ttl"]),
            Some("capacity")
        );
        assert_eq!(did_you_mean("zzz", ["capacity", "ttl"]), None);
    }
}
