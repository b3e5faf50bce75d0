//! The typed spec: common keys, SLO entries, and the per-kind documents.

use std::sync::Arc;

use super::cache::CacheDoc;
use super::catalog::Kind;
use super::decode::{Ctx, Decode, Duration, Table, one_of};
use super::exec::ExecDoc;
use super::import::ImportDoc;
use super::load::LoadDoc;
use super::node::{Node, Value};
use super::quantize::QuantizeDoc;
use super::scaling::ScalingDoc;
use super::slo;
use super::source::{SourceFile, Span, Spanned};
use crate::spec::objective::{MissingBaselinePolicy, NoDataPolicy, Slo, SloOrigin, SloSeverity};

/// A spec's name: non-empty, one line, at most 120 characters.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecName(pub Spanned<String>);

impl std::ops::Deref for SpecName {
    type Target = Spanned<String>;
    fn deref(&self) -> &Spanned<String> {
        &self.0
    }
}

impl Decode for SpecName {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        let s = Spanned::<String>::decode(node, cx)?;
        if s.trim().is_empty() {
            return cx.error(node.span, "spec::name", "the name is empty");
        }
        if s.chars().any(char::is_control) || s.chars().count() > 120 {
            cx.error::<()>(
                node.span,
                "spec::name",
                "a name is one line of at most 120 characters",
            );
            return None;
        }
        Some(SpecName(s))
    }
}

impl schemars::JsonSchema for SpecName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SpecName".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "minLength": 1, "maxLength": 120})
    }
}

/// `repeat`: how many times a spec runs, 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepeatCount(pub u32);

/// The most repeats a spec may ask for.
pub const MAX_REPEAT: u32 = 100;

impl Decode for RepeatCount {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        let n = i64::decode(node, cx)?;
        if !(1..=i64::from(MAX_REPEAT)).contains(&n) {
            cx.error::<()>(
                node.span,
                "spec::range",
                format!("`repeat` must be between 1 and {MAX_REPEAT} (found {n})"),
            );
            cx.label("out of range");
            cx.hint("5 repeats are enough for a 95% confidence comparison; 1 runs the spec once");
            return None;
        }
        Some(RepeatCount(n as u32))
    }
}

impl schemars::JsonSchema for RepeatCount {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RepeatCount".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "integer", "minimum": 1, "maximum": MAX_REPEAT})
    }
}

/// An SLO as written: an expression string, or a table with `expr` and options. Parsed and
/// checked against the kind's metric catalog while decoding.
#[derive(Debug, Clone)]
pub struct SloEntry(pub Slo, pub SloAt);

/// Where the parts of an SLO entry are written in the file, for checks against the rest of
/// the spec (a `step=` value that names no step, a `phase` that is no stage label).
#[derive(Debug, Clone, Default)]
pub struct SloAt {
    /// The span of each selector's value, in the order of [`slo::SloExpr::selectors`].
    pub values: Vec<Span>,
    /// The span of the `phase` option's value.
    pub phase: Option<Span>,
}

impl Decode for SloEntry {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        let (mut severity, mut phase, mut no_data, mut on_missing) = (
            SloSeverity::Fail,
            None,
            NoDataPolicy::Fail,
            MissingBaselinePolicy::Warn,
        );
        // a bad option is reported, and the expression is still checked
        let mut options_ok = true;
        let mut confidence = None;
        let mut phase_span = None;
        let expr_node = match &node.value {
            Value::Str { .. } => node,
            Value::Table(_) => {
                let mut t = Table::new(node, cx)?;
                let e = t.get("expr");
                if e.is_none() {
                    let head = t.head_span(cx);
                    cx.error::<()>(head, "spec::missing-key", "missing key `expr`");
                    cx.label("this SLO needs `expr`");
                    cx.hint(cx.in_syntax(
                        "write `{ expr = \"p95(latency) < 250ms\", severity = \"warn\" }`",
                    ));
                }
                if let Some(n) = t.get("severity") {
                    match one_of(n, cx, &["fail", "warn"]) {
                        Some("warn") => severity = SloSeverity::Warn,
                        Some(_) => severity = SloSeverity::Fail,
                        None => options_ok = false,
                    }
                }
                let phase_given = t.has("phase");
                let phase_node = t.get("phase");
                phase_span = phase_node.map(|n| n.span);
                phase = phase_node.and_then(|n| String::decode(n, cx));
                options_ok &= !phase_given || phase.is_some();
                if let Some(n) = t.get("no_data") {
                    match one_of(n, cx, &["fail", "warn", "pass"]) {
                        Some("warn") => no_data = NoDataPolicy::Warn,
                        Some("pass") => no_data = NoDataPolicy::Pass,
                        Some(_) => no_data = NoDataPolicy::Fail,
                        None => options_ok = false,
                    }
                }
                if let Some(n) = t.get("on_missing_baseline") {
                    match one_of(n, cx, &["warn", "fail"]) {
                        Some("fail") => on_missing = MissingBaselinePolicy::Fail,
                        Some(_) => on_missing = MissingBaselinePolicy::Warn,
                        None => options_ok = false,
                    }
                }
                if let Some(n) = t.get("confidence") {
                    confidence = Some((decode_confidence(n, cx), n.span));
                    options_ok &= confidence.is_some_and(|(c, _)| c.is_some());
                }
                t.finish(cx);
                e?
            }
            _ => return cx.type_error(node, "an SLO expression string or a table with `expr`"),
        };
        let text = String::decode(expr_node, cx)?;
        let k6 = super::k6::hint(&text);
        let expr = match slo::parse(&text) {
            Ok(e) => e,
            Err(mut e) => {
                e.hint = k6.or(e.hint);
                let span = map_span(expr_node, e.span);
                push_slo_error(cx, "slo::syntax", span, e);
                return None;
            }
        };
        let kind = cx.kind?;
        let dim = match slo::check_in(&expr, kind, &cx.declared) {
            Ok(d) => d,
            Err(mut errors) => {
                if let (Some(first), Some(k6)) = (errors.first_mut(), k6) {
                    first.hint = Some(k6);
                }
                for e in errors {
                    let span = map_span(expr_node, e.span);
                    push_slo_error(cx, "slo::check", span, e);
                }
                return None;
            }
        };
        if let Some((Some(_), span)) = confidence
            && (!expr.uses_baseline() || expr.op == slo::Op::Eq)
        {
            cx.error::<()>(
                span,
                "slo::confidence",
                "`confidence` applies to a comparison with `baseline` by <, <=, > or >=",
            );
            cx.label("no `baseline` bound to be confident about");
            cx.hint(cx.in_syntax(
                "write `{ expr = \"p95(latency) <= baseline * 1.05\", confidence = \"95%\" }`, or drop `confidence`",
            ));
            return None;
        }
        if !options_ok {
            return None;
        }
        let line = cx.src.line_col(expr_node.span.start).0;
        let at = SloAt {
            values: expr
                .selectors
                .iter()
                .map(|s| map_span(expr_node, s.value_span))
                .collect(),
            phase: phase_span,
        };
        Some(SloEntry(
            Slo {
                text,
                expr,
                dim,
                severity,
                phase,
                no_data,
                on_missing_baseline: on_missing,
                confidence: confidence.and_then(|(c, _)| c),
                line,
                origin: SloOrigin::Spec,
            },
            at,
        ))
    }
}

/// `confidence`: `"95%"` or `0.95`, from 50% to 99.9%, as a fraction.
fn decode_confidence(node: &Node, cx: &mut Ctx) -> Option<f64> {
    let value = match &node.value {
        Value::Str { .. } => {
            let text = String::decode(node, cx)?;
            match text
                .trim()
                .strip_suffix('%')
                .map(|p| p.trim().parse::<f64>())
            {
                Some(Ok(p)) => p / 100.0,
                _ => {
                    cx.error::<()>(
                        node.span,
                        "spec::type",
                        format!("expected a percentage such as \"95%\", found `{text}`"),
                    );
                    cx.label("not a percentage");
                    return None;
                }
            }
        }
        Value::Int(_) | Value::Float(_) => f64::decode(node, cx)?,
        _ => return cx.type_error(node, "a percentage such as \"95%\""),
    };
    if !(0.5..=0.999).contains(&value) || !value.is_finite() {
        cx.error::<()>(
            node.span,
            "spec::range",
            format!(
                "`confidence` must be between 50% and 99.9% (found {})",
                crate::spec::units::trim_float(value * 100.0) + "%"
            ),
        );
        cx.label("out of range");
        cx.hint("95% is the usual choice; 99% for fewer false alarms at the price of more repeats");
        return None;
    }
    Some(value)
}

/// The `slo` list. An entry that does not parse or check is reported and left out, so that a
/// typo in one SLO does not hide the spec's other problems: decoding, and with it the
/// cross-field checks, go on (the file is invalid either way).
#[derive(Debug, Clone, Default)]
pub struct SloList(pub Vec<SloEntry>);

impl Decode for SloList {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        let Value::Array(items) = &node.value else {
            return cx.type_error(node, "an array of SLOs");
        };
        Some(SloList(
            items
                .iter()
                .filter_map(|item| SloEntry::decode(item, cx))
                .collect(),
        ))
    }
}

impl schemars::JsonSchema for SloList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <Vec<SloEntry>>::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        <Vec<SloEntry>>::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <Vec<SloEntry>>::json_schema(generator)
    }
    fn inline_schema() -> bool {
        <Vec<SloEntry>>::inline_schema()
    }
}

/// Report an SLO parse or check error at `span`, already mapped into the file.
pub(crate) fn push_slo_error(cx: &mut Ctx, code: &'static str, span: Span, e: slo::SloError) {
    cx.error::<()>(span, code, e.message);
    cx.label(e.label);
    if let Some(h) = e.hint {
        cx.hint(h);
    }
}

/// Map a span inside an SLO kept as `Spanned<String>` (e.g. scaling's `latency_slo`) into the
/// file: exact when the string appears verbatim in the source, else the whole value.
pub(crate) fn slo_span_in(cx: &Ctx, text: &Spanned<String>, inner: Span) -> Span {
    match super::node::raw_offset_of(cx.src.slice(text.span), &text.value) {
        Some(off) => {
            let s = text
                .span
                .sub(off + inner.start, off + inner.end.max(inner.start));
            if s.is_empty() {
                Span::new(s.start, s.start + 1).min_within(text.span)
            } else {
                s
            }
        }
        None => text.span,
    }
}

fn map_span(node: &Node, inner: Span) -> Span {
    let s = node.inner_span(inner.start, inner.end.max(inner.start));
    if s.is_empty() {
        Span::new(s.start, s.start + 1).min_within(node.span)
    } else {
        s
    }
}

impl Span {
    /// Clamp to `outer` (used for one-character carets at the end of a string).
    fn min_within(self, outer: Span) -> Span {
        Span::new(
            self.start.clamp(outer.start, outer.end),
            self.end.clamp(outer.start, outer.end),
        )
    }
}

impl schemars::JsonSchema for SloEntry {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Slo".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "an SLO expression such as `p95(latency) < 250ms`, or a table with options",
            "anyOf": [
                {"type": "string"},
                {"type": "object", "additionalProperties": false, "required": ["expr"], "properties": {
                    "expr": {"type": "string"},
                    "severity": {"enum": ["fail", "warn"]},
                    "phase": {"type": "string", "description": "only measurements of the stage with this label"},
                    "no_data": {"enum": ["fail", "warn", "pass"]},
                    "on_missing_baseline": {"enum": ["warn", "fail"]},
                    "confidence": {
                        "description": "on a `baseline` SLO: fail only when worse than the bound with this confidence, from the per-repeat values of both runs",
                        "anyOf": [
                            {"type": "string", "pattern": "^[0-9.]+ ?%$"},
                            {"type": "number", "minimum": 0.5, "maximum": 0.999}
                        ]
                    }
                }}
            ]
        })
    }
}

/// The kind-specific part of a spec.
#[derive(Debug, Clone)]
pub enum Body {
    Load(Box<LoadDoc>),
    /// A load spec with `[import]`: another tool's results, judged by the load catalog.
    Import(Box<ImportDoc>),
    /// A spec of any kind with `[exec]`: a command's own measurements.
    Exec(Box<ExecDoc>),
    Cache(Box<CacheDoc>),
    Scaling(Box<ScalingDoc>),
    Quantize(Box<QuantizeDoc>),
}

/// A decoded, validated spec.
#[derive(Debug, Clone)]
pub struct Spec {
    pub kind: Kind,
    pub name: String,
    pub description: Option<String>,
    pub backend: String,
    pub backend_span: Option<Span>,
    pub slos: Vec<Slo>,
    pub max_duration: Option<Duration>,
    /// How many times the spec runs (`repeat`, or `--repeat`), at least 1.
    pub repeat: u32,
    /// A different seed in every repeat.
    pub reseed: bool,
    pub body: Body,
    pub file: Arc<SourceFile>,
    /// SHA-256 of the file's bytes, hex.
    pub hash: String,
    /// The document after `--set` overrides, as JSON, with `${env:…}` values redacted.
    pub resolved: serde_json::Value,
    /// Values substituted from the environment, redacted from every output.
    pub secrets: Vec<String>,
}

macro_rules! common {
    ($doc:expr) => {{
        let d = &$doc;
        (
            d.name.0.value.clone(),
            d.description.clone(),
            d.backend.clone(),
            d.slo
                .clone()
                .unwrap_or_default()
                .0
                .into_iter()
                .map(|e| e.0)
                .collect::<Vec<_>>(),
            d.max_duration,
        )
    }};
}

/// Decode and validate a document tree into a [`Spec`]; problems go to `cx`.
pub fn decode_spec(root: &Node, cx: &mut Ctx) -> Option<(Kind, Body)> {
    cx.root_span = Some(root.span);
    let Some(kind_node) = root.get("kind") else {
        let span = super::decode::first_content_line(&cx.src, root.span);
        cx.error::<()>(span, "spec::missing-key", "missing key `kind`");
        cx.label("this spec needs `kind`");
        cx.hint(
            cx.in_syntax("every spec starts with `kind = \"load\"` (or cache, scaling, quantize)"),
        );
        return None;
    };
    let kind_word = one_of(kind_node, cx, &["load", "cache", "scaling", "quantize"])?;
    let kind = Kind::parse(kind_word)?;
    cx.kind = Some(kind);
    let import = kind == Kind::Load && root.get("import").is_some();
    let exec = root.get("exec").is_some();
    cx.top_level_keys = match kind {
        _ if exec => ExecDoc::KEYS,
        Kind::Load if import => ImportDoc::KEYS,
        Kind::Load => LoadDoc::KEYS,
        Kind::Cache => CacheDoc::KEYS,
        Kind::Scaling => ScalingDoc::KEYS,
        Kind::Quantize => QuantizeDoc::KEYS,
    };
    let body = match kind {
        _ if exec => {
            let d = ExecDoc::decode(root, cx)?;
            d.validate(cx);
            Body::Exec(Box::new(d))
        }
        Kind::Load if import => {
            let d = ImportDoc::decode(root, cx)?;
            d.validate(cx);
            Body::Import(Box::new(d))
        }
        Kind::Load => {
            let d = LoadDoc::decode(root, cx)?;
            d.validate(cx);
            Body::Load(Box::new(d))
        }
        Kind::Cache => {
            let d = CacheDoc::decode(root, cx)?;
            d.validate(cx);
            Body::Cache(Box::new(d))
        }
        Kind::Scaling => {
            let d = ScalingDoc::decode(root, cx)?;
            d.validate(cx);
            Body::Scaling(Box::new(d))
        }
        Kind::Quantize => {
            let d = QuantizeDoc::decode(root, cx)?;
            d.validate(cx);
            Body::Quantize(Box::new(d))
        }
    };
    Some((kind, body))
}

macro_rules! repeats {
    ($doc:expr) => {{
        let d = &$doc;
        (d.repeat.map_or(1, |r| r.0), d.reseed.unwrap_or(false))
    }};
}

impl Spec {
    /// How many times this spec runs, `--repeat` given as `cli`: an import reads the same
    /// files every time, so it runs once.
    pub fn repeat_count(&self, cli: Option<u32>) -> u32 {
        if matches!(self.body, Body::Import(_)) {
            return 1;
        }
        cli.unwrap_or(self.repeat).max(1)
    }
}

impl Body {
    /// `(repeat, reseed)` as the spec states them (1 and `false` when absent).
    pub(crate) fn repeats(&self) -> (u32, bool) {
        match self {
            Body::Load(d) => repeats!(d),
            // an import reads the same files each time: once
            Body::Import(_) => (1, false),
            Body::Exec(d) => repeats!(d),
            Body::Cache(d) => repeats!(d),
            Body::Scaling(d) => repeats!(d),
            Body::Quantize(d) => repeats!(d),
        }
    }

    /// `(name, description, backend, slos, max_duration)` common to every kind.
    #[expect(clippy::type_complexity, reason = "a private tuple of the common keys")]
    pub(crate) fn common(
        &self,
    ) -> (
        String,
        Option<String>,
        Option<Spanned<String>>,
        Vec<Slo>,
        Option<Duration>,
    ) {
        match self {
            Body::Load(d) => common!(d),
            Body::Import(d) => common!(d),
            Body::Exec(d) => common!(d),
            Body::Cache(d) => common!(d),
            Body::Scaling(d) => common!(d),
            Body::Quantize(d) => common!(d),
        }
    }
}
