//! TOML front end: text → [`Node`] tree with exact byte spans on every key and value.
//!
//! Parsing uses `toml`'s span-preserving document parser ([`DeTable::parse_recoverable`]) so
//! that every syntax error of a file is reported at once. The tree is then converted into the
//! format-independent [`Node`] model with a depth limit ([`MAX_DEPTH`]).
//!
//! Facts about `toml` 1.2 that shape this module (measured, see the tests):
//! - the root table's span is `0..0`; we use the whole file instead;
//! - a `[header]` table's span is the header, an implicit table (`[a.b]` creates `a`) spans its
//!   key, an array of tables spans its first `[[header]]`;
//! - the parser stops nesting arrays / inline tables deeper than 80 levels ("cannot recurse
//!   further; max recursion depth met", with a span) and dotted keys of 80 or more parts
//!   ("recursion limit", *without* a span), so it never overflows the stack itself;
//! - integers are not range-checked by the parser (`99999999999999999999` parses);
//! - errors are not sorted by position, and an unclosed array repeats the same error.

use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::Diagnostic;
use super::node::{Key, Node, Value, raw_offset_of};
use super::source::{SourceFile, Span};

/// The deepest nesting of tables and arrays a spec may have (the root table is level 1).
pub const MAX_DEPTH: usize = 64;

/// Parse a TOML spec file into a [`Node`] tree whose root is a table.
///
/// Every syntax error is reported (`spec::syntax`); an empty file is `spec::empty`; nesting
/// deeper than [`MAX_DEPTH`] is `spec::too-deep`; an integer outside `i64` is `spec::range`.
pub fn parse(src: &Arc<SourceFile>) -> Result<Node, Vec<Diagnostic>> {
    match parse_recovering(src) {
        (Some(node), diags) if diags.is_empty() => Ok(node),
        (_, diags) => Err(diags),
    }
}

/// [`parse`], keeping the tree when the only problems are values out of range (an integer
/// beyond 64 bits, kept as an opaque value): decoding then reports every other problem too.
pub fn parse_recovering(src: &Arc<SourceFile>) -> (Option<Node>, Vec<Diagnostic>) {
    let text = src.text.as_str();
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return (None, syntax_diagnostics(src, &errors));
    }

    let mut conv = Converter {
        src,
        diags: Vec::new(),
        too_deep: false,
    };
    let root_span = Span::new(0, text.len());
    let table = root.into_inner();
    if table.is_empty() {
        return (
            None,
            vec![
                Diagnostic::error("spec::empty", "the spec file is empty")
                    .at(src, Span::point(0))
                    .label("no keys in this file")
                    .hint("a spec needs at least `kind`, `name` and `slo`"),
            ],
        );
    }
    let node = conv.table(table, root_span, 1);
    let recoverable = conv.diags.iter().all(|d| d.code == "spec::range");
    (recoverable.then_some(node), conv.diags)
}

/// Turn `toml`'s errors into diagnostics: sorted by position, exact duplicates removed,
/// recursion errors reported as `spec::too-deep`.
fn syntax_diagnostics(src: &Arc<SourceFile>, errors: &[toml::de::Error]) -> Vec<Diagnostic> {
    let text = src.text.as_str();
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<(usize, Diagnostic)> = Vec::new();
    let mut deep: Option<DeepScan> = None;
    let mut reported_deep = false;
    for err in errors {
        let raw = err.message().trim_end();
        let is_deep = raw.contains("max recursion depth") || raw == "recursion limit";
        let mut span = err.span().map(|r| Span::new(r.start, r.end));
        if is_deep {
            if reported_deep {
                continue;
            }
            reported_deep = true;
            let scan = deep.get_or_insert_with(|| DeepScan::run(text));
            // Point at the level that crossed *our* limit, which is what the message says.
            span = if raw == "recursion limit" {
                scan.deep_key.or(span)
            } else {
                scan.deep_bracket.or(span)
            };
            let span = clamp_span(text, span.unwrap_or_default());
            out.push((span.start, too_deep(src, span)));
            continue;
        }
        let span = clamp_span(text, span.unwrap_or_default());
        let message = lowercase_first(raw);
        if !seen.insert((message.clone(), span)) {
            continue;
        }
        let diag = if raw == "duplicate key" {
            // name the key, as the YAML front end does
            let key = text
                .get(span.start..span.end)
                .unwrap_or_default()
                .trim()
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .trim_matches(|c| c == '"' || c == '\'');
            let message = if key.is_empty() || key.contains('\n') {
                "duplicate key".to_string()
            } else {
                format!("duplicate key `{key}`")
            };
            Diagnostic::error("spec::duplicate-key", message)
                .at(src, span)
                .label("defined again here")
                .hint("each key may appear only once in a table; keep only one of them")
        } else {
            Diagnostic::error("spec::syntax", message)
                .at(src, span)
                .label("here")
        };
        out.push((span.start, diag));
    }
    out.sort_by_key(|(start, _)| *start);
    out.into_iter().map(|(_, d)| d).collect()
}

fn too_deep(src: &Arc<SourceFile>, span: Span) -> Diagnostic {
    Diagnostic::error(
        "spec::too-deep",
        format!("nesting deeper than {MAX_DEPTH} levels"),
    )
    .at(src, span)
    .label("too deep")
    .hint("specs never need this much nesting; flatten the structure")
}

struct Converter<'a> {
    src: &'a Arc<SourceFile>,
    diags: Vec<Diagnostic>,
    too_deep: bool,
}

impl Converter<'_> {
    /// Convert a table at nesting `level` (root = 1). Recursion is bounded by [`MAX_DEPTH`].
    fn table(&mut self, table: DeTable<'_>, span: Span, level: usize) -> Node {
        let mut entries = Vec::with_capacity(table.len());
        for (key, value) in table {
            let key_span = to_span(key.span());
            let key = Key {
                name: key.into_inner().into_owned(),
                span: key_span,
            };
            if let Some(node) = self.value(value, level + 1) {
                entries.push((key, node));
            }
        }
        Node::new(Value::Table(entries), span)
    }

    /// Convert a value that sits at nesting `level` (if it is a collection). `None` when the
    /// value was rejected (a diagnostic has been recorded).
    fn value(&mut self, value: Spanned<DeValue<'_>>, level: usize) -> Option<Node> {
        let span = to_span(value.span());
        let node = match value.into_inner() {
            DeValue::String(s) => {
                let raw = self.src.slice(span);
                let raw_offset = toml_raw_offset(raw, &s);
                Node::new(
                    Value::Str {
                        value: s.into_owned(),
                        raw_offset,
                    },
                    span,
                )
            }
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Node::new(Value::Int(n), span),
                Err(_) => {
                    self.diags.push(
                        Diagnostic::error(
                            "spec::range",
                            format!(
                                "integer `{}` does not fit in a 64-bit signed integer",
                                self.src.slice(span)
                            ),
                        )
                        .at(self.src, span)
                        .label("out of range")
                        .hint("integers must lie between -9223372036854775808 and 9223372036854775807"),
                    );
                    // kept as an opaque value: decoding goes on and reports the other problems
                    Node::new(Value::Other(self.src.slice(span).to_string()), span)
                }
            },
            DeValue::Float(f) => Node::new(Value::Float(parse_float(f.as_str())), span),
            DeValue::Boolean(b) => Node::new(Value::Bool(b), span),
            DeValue::Datetime(dt) => {
                let raw = self.src.slice(span).trim();
                let text = if raw.is_empty() {
                    dt.to_string()
                } else {
                    raw.to_string()
                };
                Node::new(Value::Other(text), span)
            }
            DeValue::Array(items) => {
                if !self.check_depth(level, span) {
                    return None;
                }
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(node) = self.value(item, level + 1) {
                        out.push(node);
                    }
                }
                Node::new(Value::Array(out), span)
            }
            DeValue::Table(table) => {
                if !self.check_depth(level, span) {
                    return None;
                }
                self.table(table, span, level)
            }
        };
        Some(node)
    }

    fn check_depth(&mut self, level: usize, span: Span) -> bool {
        if level <= MAX_DEPTH {
            return true;
        }
        if !self.too_deep {
            self.too_deep = true;
            let span = clamp_span(&self.src.text, span);
            self.diags.push(too_deep(self.src, span));
        }
        false
    }
}

/// `raw_offset_of`, plus multi-line strings whose first newline is trimmed by TOML.
fn toml_raw_offset(raw: &str, value: &str) -> Option<usize> {
    if let Some(off) = raw_offset_of(raw, value) {
        return Some(off);
    }
    for prefix in ["\"\"\"\r\n", "\"\"\"\n", "'''\r\n", "'''\n"] {
        if let Some(rest) = raw.strip_prefix(prefix)
            && !value.is_empty()
            && rest.starts_with(value)
            && rest[value.len()..].starts_with(&prefix[..3])
        {
            return Some(prefix.len());
        }
    }
    None
}

/// TOML floats: `inf`, `nan` with optional sign, or a decimal (underscores already removed).
fn parse_float(s: &str) -> f64 {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = match body {
        "inf" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => body.parse::<f64>().unwrap_or(f64::NAN),
    };
    if neg { -v } else { v }
}

fn to_span(r: std::ops::Range<usize>) -> Span {
    Span::new(r.start, r.end)
}

/// Clamp a span into the text and onto character boundaries.
fn clamp_span(text: &str, span: Span) -> Span {
    let start = text.floor_char_boundary(span.start.min(text.len()));
    let end = text.ceil_char_boundary(span.end.min(text.len()).max(start));
    Span::new(start, end)
}

fn lowercase_first(s: &str) -> String {
    let s = s.trim_end();
    let mut chars = s.chars();
    match chars.next() {
        // Keep acronyms and names ("TOML", "URL") as they are.
        Some(c) if c.is_uppercase() && !chars.next().is_some_and(char::is_uppercase) => {
            c.to_lowercase().chain(s[c.len_utf8()..].chars()).collect()
        }
        _ => s.to_string(),
    }
}

/// A light pass over the text that finds where nesting crosses [`MAX_DEPTH`], to give the
/// parser's span-less or late recursion errors a precise position. Strings and comments are
/// skipped; it is only used after the parser has already reported an error.
struct DeepScan {
    /// The bracket (`[` / `{` inside a value) that opens level `MAX_DEPTH + 1`.
    deep_bracket: Option<Span>,
    /// The part of a dotted key (or header) that is the `MAX_DEPTH`-th part.
    deep_key: Option<Span>,
}

impl DeepScan {
    fn run(text: &str) -> DeepScan {
        let b = text.as_bytes();
        let mut out = DeepScan {
            deep_bracket: None,
            deep_key: None,
        };
        let mut depth = 0usize; // brackets open inside a value
        let mut line_start = true;
        let mut dots = 0usize; // dots in the current run of key characters
        let mut part_start = 0usize; // start of the `MAX_DEPTH`-th part of the current key
        let mut i = if text.starts_with('\u{feff}') { 3 } else { 0 };
        while i < b.len() {
            let c = b[i];
            match c {
                b'\n' => {
                    line_start = true;
                    dots = 0;
                    i += 1;
                    continue;
                }
                b' ' | b'\t' | b'\r' => {
                    i += 1;
                    continue;
                }
                b'#' => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                b'"' | b'\'' => {
                    i = skip_string(b, i);
                }
                b'.' => {
                    // `k1.k2…kN`: part `k64` is a table at level 65 once a part follows it.
                    dots += 1;
                    if dots + 1 == MAX_DEPTH {
                        part_start = i + 1;
                    } else if dots == MAX_DEPTH && out.deep_key.is_none() {
                        out.deep_key = Some(Span::point(part_start));
                    }
                    i += 1;
                }
                b'[' | b'{' => {
                    if line_start && depth == 0 && c == b'[' {
                        // A table header: `[a.b]` or `[[a.b]]`; its key is counted as dots.
                        i += 1;
                        if b.get(i) == Some(&b'[') {
                            i += 1;
                        }
                        dots = 0;
                        line_start = false;
                        continue;
                    }
                    depth += 1;
                    dots = 0;
                    if depth >= MAX_DEPTH && out.deep_bracket.is_none() {
                        out.deep_bracket = Some(Span::new(i, i + 1));
                    }
                    i += 1;
                }
                b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    dots = 0;
                    i += 1;
                }
                c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' => {
                    i += 1;
                }
                _ => {
                    dots = 0;
                    i += 1;
                }
            }
            line_start = false;
        }
        // Fill in the end of the deep key part.
        if let Some(span) = &mut out.deep_key {
            let mut end = span.start;
            while end < b.len()
                && (b[end].is_ascii_alphanumeric() || b[end] == b'_' || b[end] == b'-')
            {
                end += 1;
            }
            span.end = end;
        }
        out
    }
}

/// Skip a TOML string starting at `i` (a quote); returns the index after it (or the end).
fn skip_string(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let triple = b.len() >= i + 3 && b[i + 1] == q && b[i + 2] == q;
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < b.len() {
        if q == b'"' && b[j] == b'\\' {
            j += 2;
            continue;
        }
        if !triple && b[j] == b'\n' {
            return j;
        }
        if b[j] == q {
            if !triple {
                return j + 1;
            }
            if b.len() >= j + 3 && b[j + 1] == q && b[j + 2] == q {
                return j + 3;
            }
        }
        j += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Arc<SourceFile> {
        SourceFile::new("spec.toml", text.to_string())
    }

    fn ok(text: &str) -> (Arc<SourceFile>, Node) {
        let s = src(text);
        let node = parse(&s).unwrap_or_else(|d| panic!("unexpected errors: {d:?}"));
        (s, node)
    }

    fn errs(text: &str) -> (Arc<SourceFile>, Vec<Diagnostic>) {
        let s = src(text);
        match parse(&s) {
            Ok(n) => panic!("expected an error, got {n:?}"),
            Err(d) => (s, d),
        }
    }

    fn line_col(d: &Diagnostic) -> (usize, usize) {
        d.line_col().expect("diagnostic has a location")
    }

    /// Run `f` on a thread with the default test stack (2 MiB) to prove it does not overflow.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    const DOC: &str = r#"# Checkout — «spécification» 🚀 with non-ASCII before everything
kind = "load"
name = "checkout"
description = 'naïve café'
slo = [
  "p95(latency) < 250ms",
  "error_rate < 0.1%",
  { expr = "p99(latency{journey=checkout}) < 800ms", severity = "warn", phase = "steady" },
]
weights = [1, -2, 0x1F, 0o17, 1_000]
ratio = 1.5e3
limits = { low = -inf, high = +inf, unknown = nan }
started = 1979-05-27T07:32:00Z
escaped = "tab\there"
multi = """
first line"""

[target]
embedded = "shop"
"quoted key" = true

[load]
stages = [ { ramp_to = "50/s", over = "10s" }, { hold = "50/s", for = "30s", label = "steady" } ]

[data.users]
csv = "data/users.csv"

[[journey]]
name = "checkout"
weight = 2
steps = [
  { request = "POST /login", json = { user = "{{ users.name }}" } },
]

[[journey]]
name = "browse"
"#;

    #[test]
    fn realistic_document_has_exact_spans() {
        let (s, root) = ok(DOC);
        assert!(matches!(root.value, Value::Table(_)));
        assert_eq!(root.span, Span::new(0, DOC.len()));

        let kind = root.get("kind").unwrap();
        assert_eq!(s.slice(kind.span), "\"load\"");
        assert_eq!(kind.as_str(), Some("load"));
        let Value::Table(entries) = &root.value else {
            unreachable!()
        };
        let (k, _) = &entries[0];
        assert_eq!((k.name.as_str(), s.slice(k.span)), ("kind", "kind"));
        assert_eq!(s.line_col(k.span.start), (2, 1));

        let slo0 = root.get_path("slo.0").unwrap();
        assert_eq!(s.slice(slo0.span), "\"p95(latency) < 250ms\"");
        assert_eq!(s.line_col(slo0.span.start), (6, 3));
        let expr = root.get_path("slo.2.expr").unwrap();
        assert_eq!(
            s.slice(expr.span),
            "\"p99(latency{journey=checkout}) < 800ms\""
        );
        assert_eq!(
            s.slice(root.get_path("slo.2").unwrap().span).chars().next(),
            Some('{')
        );
        assert!(
            s.slice(root.get("slo").unwrap().span)
                .starts_with("[\n  \"p95")
        );

        assert_eq!(
            s.slice(root.get("description").unwrap().span),
            "'naïve café'"
        );
        assert_eq!(
            root.get("description").unwrap().as_str(),
            Some("naïve café")
        );

        let weights: Vec<i64> = match &root.get("weights").unwrap().value {
            Value::Array(items) => items
                .iter()
                .map(|n| match n.value {
                    Value::Int(i) => i,
                    _ => panic!("not an int"),
                })
                .collect(),
            _ => panic!("not an array"),
        };
        assert_eq!(weights, vec![1, -2, 31, 15, 1000]);
        assert!(matches!(root.get("ratio").unwrap().value, Value::Float(f) if f == 1500.0));
        assert!(
            matches!(root.get_path("limits.low").unwrap().value, Value::Float(f) if f == f64::NEG_INFINITY)
        );
        assert!(
            matches!(root.get_path("limits.high").unwrap().value, Value::Float(f) if f == f64::INFINITY)
        );
        assert!(
            matches!(root.get_path("limits.unknown").unwrap().value, Value::Float(f) if f.is_nan())
        );
        match &root.get("started").unwrap().value {
            Value::Other(t) => assert_eq!(t, "1979-05-27T07:32:00Z"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            root.get("escaped").unwrap().value,
            Value::Str {
                raw_offset: None,
                ..
            }
        ));
        let multi = root.get("multi").unwrap();
        assert_eq!(multi.as_str(), Some("first line"));
        assert_eq!(s.slice(multi.inner_span(0, 5)), "first");

        let target = root.get("target").unwrap();
        assert_eq!(s.slice(target.span), "[target]");
        assert_eq!(
            s.slice(root.get_path("target.embedded").unwrap().span),
            "\"shop\""
        );
        let Value::Table(t) = &target.value else {
            panic!()
        };
        assert_eq!(t[1].0.name, "quoted key");
        assert_eq!(s.slice(t[1].0.span), "\"quoted key\"");

        let hold = root.get_path("load.stages.1.hold").unwrap();
        assert_eq!(s.slice(hold.span), "\"50/s\"");
        assert_eq!(s.line_col(hold.span.start).0, 23);

        let csv = root.get_path("data.users.csv").unwrap();
        assert_eq!(s.slice(csv.span), "\"data/users.csv\"");
        assert_eq!(
            s.slice(root.get_path("data.users").unwrap().span),
            "[data.users]"
        );

        let j0 = root.get_path("journey.0").unwrap();
        assert_eq!(s.slice(j0.span), "[[journey]]");
        let user = root.get_path("journey.0.steps.0.json.user").unwrap();
        assert_eq!(s.slice(user.span), "\"{{ users.name }}\"");
        assert_eq!(
            s.slice(root.get_path("journey.1.name").unwrap().span),
            "\"browse\""
        );
        assert_eq!(
            root.get("journey").and_then(|j| match &j.value {
                Value::Array(items) => Some(items.len()),
                _ => None,
            }),
            Some(2)
        );
    }

    #[test]
    fn inner_span_maps_into_strings() {
        let (s, root) = ok("# é\nslo = [\"p95(latency) < 250ms\", 'x < 1ms']\n");
        let slo = root.get_path("slo.0").unwrap();
        // "latency" is bytes 4..11 of the value.
        assert_eq!(s.slice(slo.inner_span(4, 11)), "latency");
        assert_eq!(s.slice(slo.inner_span(15, 20)), "250ms");
        let lit = root.get_path("slo.1").unwrap();
        assert_eq!(s.slice(lit.inner_span(4, 7)), "1ms");
        // Escapes make the mapping inexact: the whole value is used.
        let (s, root) = ok("a = \"x\\ty < 1ms\"\n");
        let a = root.get("a").unwrap();
        assert_eq!(s.slice(a.inner_span(5, 8)), "\"x\\ty < 1ms\"");
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let (s, d) = errs("# é\nkind = \"load\"\nname = checkout\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "spec::syntax");
        assert_eq!(line_col(&d[0]), (3, 8));
        assert_eq!(s.slice(d[0].span.unwrap()), "checkout");
        assert!(
            d[0].message.starts_with("string values must be quoted"),
            "{}",
            d[0].message
        );
        assert_eq!(d[0].label.as_deref(), Some("here"));
        assert!(!d[0].message.ends_with('\n'));

        // Several errors are all reported, in order of position.
        let (_, d) = errs("a = 1\nb = \"x\nc = tru\n");
        assert!(d.len() >= 2, "{d:?}");
        assert_eq!(line_col(&d[0]).0, 2);
        assert_eq!(line_col(&d[1]).0, 3);
        assert!(
            d.windows(2)
                .all(|w| w[0].span.unwrap().start <= w[1].span.unwrap().start)
        );
    }

    #[test]
    fn duplicate_keys_are_syntax_errors() {
        let (s, d) = errs("name = \"a\"\n# é\nname = \"b\"\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "spec::duplicate-key");
        assert_eq!(d[0].message, "duplicate key `name`");
        assert_eq!(line_col(&d[0]), (3, 1));
        assert_eq!(s.slice(d[0].span.unwrap()), "name");
        let (_, d) = errs("[t]\na = 1\n[t]\nb = 1\n");
        assert_eq!(d[0].code, "spec::duplicate-key");
        assert_eq!(d[0].message, "duplicate key `t`");
        assert_eq!(line_col(&d[0]).0, 3);
    }

    #[test]
    fn empty_and_comment_only_files() {
        for text in ["", "\n\n", "# only a comment\n# another\n", "\u{feff}"] {
            let (_, d) = errs(text);
            assert_eq!(d.len(), 1, "{text:?}");
            assert_eq!(d[0].code, "spec::empty");
            assert_eq!(d[0].span, Some(Span::point(0)));
        }
    }

    #[test]
    fn big_integers_are_range_errors() {
        let (s, d) = errs("a = 99999999999999999999\n");
        assert_eq!(d[0].code, "spec::range");
        assert_eq!(s.slice(d[0].span.unwrap()), "99999999999999999999");
        let (_, root) = ok("a = 9223372036854775807\nb = -9223372036854775808\n");
        assert!(matches!(root.get("a").unwrap().value, Value::Int(i64::MAX)));
        assert!(matches!(root.get("b").unwrap().value, Value::Int(i64::MIN)));
    }

    #[test]
    fn depth_limit_is_exact() {
        // Level 1 is the root table; `a = [` is level 2.
        let fits = format!(
            "a = {}1{}\n",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        ok(&fits);
        let deep = format!("a = {}1{}\n", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        let (s, d) = errs(&deep);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "spec::too-deep");
        assert_eq!(d[0].message, "nesting deeper than 64 levels");
        // The outermost array starts at column 5; the offending one is the 64th.
        assert_eq!(s.line_col(d[0].span.unwrap().start), (1, 5 + MAX_DEPTH - 1));
        // Dotted keys count too.
        let keys = format!("{} = 1\n", vec!["k"; MAX_DEPTH].join("."));
        ok(&keys);
        let keys = format!("{} = {{ x = 1 }}\n", vec!["k"; MAX_DEPTH].join("."));
        assert_eq!(errs(&keys).1[0].code, "spec::too-deep");
    }

    #[test]
    fn very_deep_nesting_never_overflows() {
        const N: usize = 20_000;
        let inputs = vec![
            format!("a = {}1{}\n", "[".repeat(N), "]".repeat(N)),
            format!("a = {}1{}\n", "{a=".repeat(N), "}".repeat(N)),
            format!("a = {}\n", "[".repeat(N)),
            format!("a = {}\n", "{a = ".repeat(N)),
            format!("{} = 1\n", vec!["a"; N].join(".")),
            format!("[{}]\nb = 1\n", vec!["a"; N].join(".")),
            format!("[[{}]]\nb = 1\n", vec!["a"; N].join(".")),
            format!(
                "x = 1\na = [{}]\n",
                "{b = [".repeat(N / 2) + &"]}".repeat(N / 2)
            ),
        ];
        for input in inputs {
            let head: String = input.chars().take(12).collect();
            let diags = on_small_stack(move || {
                let s = src(&input);
                let start = std::time::Instant::now();
                let result = parse(&s);
                assert!(start.elapsed().as_secs() < 5);
                result.expect_err("deep input must be rejected")
            });
            assert!(
                diags.iter().any(|d| d.code == "spec::too-deep"),
                "{head}: {diags:?}"
            );
            for d in &diags {
                assert!(d.span.is_some(), "{head}: {d:?}");
            }
        }
        // Dotted keys: the position is the 64th part.
        let text = format!("{} = 1\n", vec!["ab"; 100].join("."));
        let (s, d) = errs(&text);
        assert_eq!(d[0].code, "spec::too-deep");
        assert_eq!(
            s.line_col(d[0].span.unwrap().start),
            (1, 3 * (MAX_DEPTH - 1) + 1)
        );
    }

    #[test]
    fn never_panics_on_tricky_input() {
        let inputs = [
            "\u{feff}",
            "\u{feff}a = 1",
            "a: [\"\\",
            "\"\"\"\"",
            "*",
            "&a [*a]",
            "key: \u{0}",
            "a = \u{0}",
            "a = 99999999999999999999",
            "a = -99999999999999999999",
            "a = 0x",
            "a = \"é",
            "é = 1",
            "[",
            "[[",
            "a = [",
            "a = {",
            "a.b = 1\na = 2",
            "a = 1979-13-45",
            "a = '''\n\n'''",
            "a = \"\"\"\r\nx\"\"\"",
            "\r\n\r",
            "[é]\n[é]",
            "a = 1e999",
            "a = [1, 'x', {}, []]",
        ];
        for input in inputs {
            let s = src(input);
            if let Err(diags) = parse(&s) {
                for d in diags {
                    let span = d.span.unwrap();
                    assert!(
                        s.text.is_char_boundary(span.start) && s.text.is_char_boundary(span.end)
                    );
                    assert!(span.start <= span.end && span.end <= s.text.len());
                }
            }
        }
    }

    #[test]
    fn multiline_string_inner_span() {
        let (s, root) = ok("a = \"\"\"\nx < 1ms\"\"\"\nb = '''\r\ny'''\n");
        let a = root.get("a").unwrap();
        assert_eq!(s.slice(a.inner_span(4, 7)), "1ms");
        let b = root.get("b").unwrap();
        assert_eq!(s.slice(b.inner_span(0, 1)), "y");
    }

    #[test]
    fn root_is_always_a_table() {
        // TOML documents are tables by construction; a bare value is a syntax error.
        let (_, d) = errs("\"just a string\"\n");
        assert_eq!(d[0].code, "spec::syntax");
    }
}
