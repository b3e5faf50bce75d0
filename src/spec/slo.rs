//! The SLO expression language: text → [`SloExpr`] ([`parse`]), checked against a kind's
//! metric catalog ([`check`]), and the right-hand side evaluated ([`eval_rhs`]).
//!
//! ```text
//! slo     := [AGG '('] METRIC [selector] [')'] OP rhs
//! AGG     := p<number in (0,100)> | mean | max | min | count | rate
//! METRIC  := [A-Za-z_][A-Za-z0-9_.]*
//! selector:= '{' label '=' value (',' label '=' value)* [','] '}'
//! value   := [A-Za-z0-9_.:/-]+ | '"' … '"'
//! OP      := < | <= | > | >= | ==
//! rhs     := term (('+' | '-') term)*
//! term    := factor (('*' | '/') factor)*
//! factor  := QUANTITY | baseline | '(' rhs ')' | '-' factor
//! ```
//!
//! Pure text processing, no I/O. Every [`Span`] here is a byte range relative to the SLO
//! string; callers map it into the spec file.

use std::fmt;

use super::catalog::{self, Kind, Shape};
use super::diagnostic::did_you_mean;
use super::source::Span;
use super::units::{Dimension, Quantity, UnitError, trim_float};
use crate::spec::catalog::Labels;

/// How the observations of a distribution (or the events of a counter) are reduced to one
/// number before comparing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agg {
    /// `p95`, `p99.9`: the percentile, e.g. `95.0`, strictly between 0 and 100.
    Percentile(f64),
    /// `mean`: the arithmetic mean of the observations.
    Mean,
    /// `max`: the largest observation.
    Max,
    /// `min`: the smallest observation.
    Min,
    /// `count`: the number of observations (or the counter's value).
    Count,
    /// `rate`: observations (or counted events) per second of the measured run.
    Rate,
}

impl Agg {
    /// Parse an aggregation name: `Some(Ok)` for a valid one, `Some(Err)` for a percentile
    /// with a bad number, `None` when the name is not an aggregation at all.
    fn from_name(name: &str) -> Option<Result<Agg, (String, Option<String>)>> {
        Some(Ok(match name {
            "mean" => Agg::Mean,
            "max" => Agg::Max,
            "min" => Agg::Min,
            "count" => Agg::Count,
            "rate" => Agg::Rate,
            _ => {
                let rest = name.strip_prefix('p')?;
                if !rest.starts_with(|c: char| c.is_ascii_digit())
                    || !rest.chars().all(|c| c.is_ascii_digit() || c == '.')
                {
                    return None;
                }
                let Ok(v) = rest.parse::<f64>() else {
                    return Some(Err((
                        format!("invalid percentile `{name}`"),
                        Some("write percentiles like `p50`, `p95`, `p99` or `p99.9`".into()),
                    )));
                };
                if !(v > 0.0 && v < 100.0) {
                    let hint = if rest.len() > 2
                        && rest.starts_with("99")
                        && rest.bytes().all(|b| b.is_ascii_digit())
                    {
                        format!(
                            "write `p99.{}` for the 99.{}th percentile",
                            &rest[2..],
                            &rest[2..]
                        )
                    } else {
                        "e.g. `p50`, `p95`, `p99` or `p99.9`".to_string()
                    };
                    return Some(Err((
                        "percentile must be between 0 and 100".into(),
                        Some(hint),
                    )));
                }
                Agg::Percentile(v)
            }
        }))
    }

    /// Whether this aggregation reads the distribution of a histogram.
    pub fn is_distribution(&self) -> bool {
        matches!(self, Agg::Percentile(_) | Agg::Mean | Agg::Max | Agg::Min)
    }
}

impl fmt::Display for Agg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Agg::Percentile(p) => write!(f, "p{p}"),
            Agg::Mean => f.write_str("mean"),
            Agg::Max => f.write_str("max"),
            Agg::Min => f.write_str("min"),
            Agg::Count => f.write_str("count"),
            Agg::Rate => f.write_str("rate"),
        }
    }
}

impl serde::Serialize for Agg {
    /// As written: `"p95"`, `"p99.9"`, `"mean"`, …
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Op {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `==`
    #[serde(rename = "==")]
    Eq,
}

/// Relative tolerance of `==` (and of the equality part of `<=` and `>=`).
const EQ_TOLERANCE: f64 = 1e-9;

fn approx_eq(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= EQ_TOLERANCE * a.abs().max(b.abs())
}

impl Op {
    /// The operator as written: `<`, `<=`, `>`, `>=`, `==`.
    pub fn symbol(&self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }

    /// Whether `observed OP threshold` holds. `==` compares with a relative tolerance of
    /// 1e-9, and so do `<=`/`>=` for their equality part (so that `0.1 + 0.2 <= 0.3`);
    /// `<` and `>` are strict. Any NaN makes it false.
    pub fn holds(&self, observed: f64, threshold: f64) -> bool {
        if observed.is_nan() || threshold.is_nan() {
            return false;
        }
        match self {
            Op::Lt => observed < threshold,
            Op::Le => observed <= threshold || approx_eq(observed, threshold),
            Op::Gt => observed > threshold,
            Op::Ge => observed >= threshold || approx_eq(observed, threshold),
            Op::Eq => approx_eq(observed, threshold),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// An arithmetic operator of the right-hand side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum BinOp {
    /// `+`
    #[serde(rename = "+")]
    Add,
    /// `-`
    #[serde(rename = "-")]
    Sub,
    /// `*`
    #[serde(rename = "*")]
    Mul,
    /// `/`
    #[serde(rename = "/")]
    Div,
}

impl BinOp {
    /// The operator as written.
    pub fn symbol(&self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            BinOp::Add | BinOp::Sub => 1,
            BinOp::Mul | BinOp::Div => 2,
        }
    }
}

/// The right-hand side of an SLO: a threshold, possibly computed from `baseline`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rhs {
    /// A literal such as `250ms` (value in canonical units) or `4` (`dim` is `None`).
    Literal {
        value: f64,
        dim: Option<Dimension>,
        span: Span,
    },
    /// `baseline`: the same aggregated metric in the `--baseline` results.
    Baseline { span: Span },
    /// `-x`
    Neg(Box<Rhs>),
    /// `lhs op rhs`
    Bin {
        op: BinOp,
        lhs: Box<Rhs>,
        rhs: Box<Rhs>,
    },
}

impl Rhs {
    /// Whether `baseline` occurs anywhere in this expression.
    pub fn uses_baseline(&self) -> bool {
        match self {
            Rhs::Literal { .. } => false,
            Rhs::Baseline { .. } => true,
            Rhs::Neg(x) => x.uses_baseline(),
            Rhs::Bin { lhs, rhs, .. } => lhs.uses_baseline() || rhs.uses_baseline(),
        }
    }

    /// The smallest span covering every literal and `baseline` of this expression
    /// (parentheses and a leading `-` are not included).
    pub fn span(&self) -> Span {
        match self {
            Rhs::Literal { span, .. } | Rhs::Baseline { span } => *span,
            Rhs::Neg(x) => x.span(),
            Rhs::Bin { lhs, rhs, .. } => lhs.span().join(rhs.span()),
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Rhs::Bin { op, .. } => op.precedence(),
            Rhs::Neg(_) => 3,
            _ => 4,
        }
    }

    /// The first literal of this expression (left to right) matching `pred`.
    fn find_literal(
        &self,
        pred: &dyn Fn(Option<Dimension>) -> bool,
    ) -> Option<(f64, Option<Dimension>, Span)> {
        match self {
            Rhs::Literal { value, dim, span } => pred(*dim).then_some((*value, *dim, *span)),
            Rhs::Baseline { .. } => None,
            Rhs::Neg(x) => x.find_literal(pred),
            Rhs::Bin { lhs, rhs, .. } => lhs.find_literal(pred).or_else(|| rhs.find_literal(pred)),
        }
    }
}

impl fmt::Display for Rhs {
    /// Canonical text: literals formatted in their dimension (`250ms`), minimal parentheses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rhs::Literal { value, dim, .. } => match dim {
                Some(d) => f.write_str(&d.format(*value)),
                None => f.write_str(&trim_float(*value)),
            },
            Rhs::Baseline { .. } => f.write_str("baseline"),
            Rhs::Neg(x) => {
                if x.precedence() < 3 {
                    write!(f, "-({x})")
                } else {
                    write!(f, "-{x}")
                }
            }
            Rhs::Bin { op, lhs, rhs } => {
                let p = op.precedence();
                if lhs.precedence() < p {
                    write!(f, "({lhs})")?;
                } else {
                    write!(f, "{lhs}")?;
                }
                write!(f, " {} ", op.symbol())?;
                let right_needs = rhs.precedence() < p
                    || (rhs.precedence() == p && matches!(op, BinOp::Sub | BinOp::Div));
                if right_needs {
                    write!(f, "({rhs})")
                } else {
                    write!(f, "{rhs}")
                }
            }
        }
    }
}

/// One `label=value` matcher of a selector.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Selector {
    /// The label name.
    pub name: String,
    /// Where the name is written.
    pub name_span: Span,
    /// The value, unquoted and unescaped.
    pub value: String,
    /// Where the value is written (with its quotes when quoted).
    pub value_span: Span,
}

/// A parsed SLO expression: `AGG(METRIC{labels}) OP RHS`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SloExpr {
    /// The aggregation and where it is written, if any.
    pub agg: Option<(Agg, Span)>,
    /// The metric name, e.g. `latency` or `usl.peak_concurrency`.
    pub metric: String,
    /// Where the metric name is written.
    pub metric_span: Span,
    /// The label matchers in the order written.
    pub selectors: Vec<Selector>,
    /// The comparison.
    pub op: Op,
    /// Where the operator is written.
    pub op_span: Span,
    /// The threshold expression.
    pub rhs: Rhs,
    /// Where the whole right-hand side is written.
    pub rhs_span: Span,
}

/// Whether `v` can be written as a bare selector value.
fn is_bare_value(v: &str) -> bool {
    !v.is_empty() && v.chars().all(is_bare_value_char)
}

fn is_bare_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-')
}

/// `value`, or `"value"` quoted and escaped when it is not a bare value.
pub(crate) fn quote_value(v: &str) -> String {
    if is_bare_value(v) {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

impl SloExpr {
    /// The selector as labels (for a duplicated label the last value wins; [`check`]
    /// reports duplicates).
    pub fn labels(&self) -> Labels {
        self.selectors
            .iter()
            .map(|s| (s.name.clone(), s.value.clone()))
            .collect()
    }

    /// Whether the threshold refers to `baseline`.
    pub fn uses_baseline(&self) -> bool {
        self.rhs.uses_baseline()
    }

    /// `metric{k=v,…}` in the order written, values quoted where needed.
    pub fn selector_text(&self) -> String {
        if self.selectors.is_empty() {
            return self.metric.clone();
        }
        let inner: Vec<String> = self
            .selectors
            .iter()
            .map(|s| format!("{}={}", s.name, quote_value(&s.value)))
            .collect();
        format!("{}{{{}}}", self.metric, inner.join(","))
    }

    /// The canonical left-hand side, e.g. `p95(latency{journey=checkout})`.
    pub fn lhs_text(&self) -> String {
        match &self.agg {
            Some((agg, _)) => format!("{agg}({})", self.selector_text()),
            None => self.selector_text(),
        }
    }
}

impl fmt::Display for SloExpr {
    /// Canonical text: `p95(latency{journey=checkout}) <= baseline * 1.1 + 5ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.lhs_text(), self.op, self.rhs)
    }
}

/// A problem in one SLO expression.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SloError {
    /// Lowercase fragment, e.g. "unknown unit `parsecs`".
    pub message: String,
    /// The offending token, relative to the SLO string (empty where something is missing).
    pub span: Span,
    /// Short text shown under the caret.
    pub label: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl SloError {
    fn new(message: impl Into<String>, span: Span, label: impl Into<String>) -> SloError {
        SloError {
            message: message.into(),
            span,
            label: label.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> SloError {
        self.hint = Some(hint.into());
        self
    }

    fn maybe_hint(mut self, hint: Option<String>) -> SloError {
        self.hint = hint;
        self
    }
}

impl fmt::Display for SloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SloError {}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// Nesting limit of parentheses and unary minus, so that no input can exhaust the stack.
const MAX_DEPTH: usize = 64;

const EXAMPLE: &str = "e.g. `p95(latency) < 250ms`";

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Parse one SLO expression. Never panics; the error points at the offending token.
pub fn parse(text: &str) -> Result<SloExpr, SloError> {
    Parser {
        src: text,
        pos: 0,
        depth: 0,
        ops: 0,
    }
    .slo()
}

/// Limit on arithmetic operators in one threshold, which bounds the depth of the tree.
const MAX_OPS: usize = 256;

/// The left-hand side of an SLO while it is parsed.
struct Lhs<'a> {
    agg: Option<(Agg, Span)>,
    metric: &'a str,
    metric_span: Span,
    selectors: Vec<Selector>,
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// Current nesting of parentheses and unary minus.
    depth: usize,
    /// Binary operators so far.
    ops: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// Consume a run of characters matching `pred` (the first must match `first`).
    fn run(&mut self, first: fn(char) -> bool, pred: fn(char) -> bool) -> Option<(&'a str, Span)> {
        let start = self.pos;
        if !self.peek().is_some_and(first) {
            return None;
        }
        self.bump();
        while self.peek().is_some_and(pred) {
            self.bump();
        }
        Some((&self.src[start..self.pos], Span::new(start, self.pos)))
    }

    fn ident(&mut self) -> Option<(&'a str, Span)> {
        self.run(is_ident_start, is_ident_char)
    }

    /// The token at the current position (for "found …" messages): its text and span;
    /// an empty span at the end of the input.
    fn token(&self) -> (String, Span) {
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return (String::new(), Span::point(self.src.len()));
        };
        let len = if is_ident_start(c) {
            rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len())
        } else if c.is_ascii_digit() {
            literal_len(rest)
        } else {
            c.len_utf8()
        };
        (rest[..len].to_string(), Span::new(self.pos, self.pos + len))
    }

    /// "`x`" or "the end of the expression".
    fn found(&self) -> String {
        let (t, _) = self.token();
        if t.is_empty() {
            "the end of the expression".into()
        } else {
            format!("`{}`", t.escape_debug())
        }
    }

    /// Whether `c` occurs anywhere after the current position.
    fn later(&self, c: char) -> bool {
        self.rest().contains(c)
    }

    fn enter(&mut self, at: Span) -> Result<(), SloError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SloError::new(
                "expression nested too deeply",
                at,
                "too deep",
            ));
        }
        Ok(())
    }

    fn count_op(&mut self) -> Result<(), SloError> {
        self.ops += 1;
        if self.ops > MAX_OPS {
            let at = Span::new(self.pos, self.pos + 1);
            return Err(
                SloError::new("threshold expression too long", at, "too many operators")
                    .hint(format!("use at most {MAX_OPS} operators")),
            );
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// A whole SLO: the left-hand side (a bare metric or an aggregation of one, with
    /// optional selectors), an operator, a threshold, and nothing after it.
    fn slo(mut self) -> Result<SloExpr, SloError> {
        let (first, first_span) = self.first_word()?;
        self.skip_ws();
        let lhs = if self.peek() == Some('(') {
            self.aggregated(first, first_span)?
        } else {
            self.bare_metric(first, first_span)?
        };
        let lhs_end = self.pos;
        self.skip_ws();
        let src = self.src;
        let (op, op_span) = self.op(&src[first_span.start..lhs_end])?;
        let (rhs, rhs_span) = self.threshold(op)?;
        Ok(SloExpr {
            agg: lhs.agg,
            metric: lhs.metric.to_string(),
            metric_span: lhs.metric_span,
            selectors: lhs.selectors,
            op,
            op_span,
            rhs,
            rhs_span,
        })
    }

    /// The first word of a non-empty SLO: a metric or an aggregation name.
    fn first_word(&mut self) -> Result<(&'a str, Span), SloError> {
        self.skip_ws();
        if self.at_end() {
            return Err(SloError::new(
                "empty SLO expression",
                Span::new(0, self.src.len()),
                "nothing here",
            )
            .hint(format!("write an SLO, {EXAMPLE}")));
        }
        if let Some(word) = self.ident() {
            return Ok(word);
        }
        let (_, span) = self.token();
        let hint = if self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || "<>=!".contains(c))
        {
            "the measured metric goes on the left, e.g. `error_rate < 1%`"
        } else {
            "an SLO starts with a metric or an aggregation, e.g. `p95(latency) < 250ms`"
        };
        Err(SloError::new(
            format!(
                "expected a metric name or an aggregation, found {}",
                self.found()
            ),
            span,
            "expected a metric here",
        )
        .hint(hint))
    }

    /// `first(metric{…})` with the parser at `(`: `first` must be an aggregation and the
    /// metric inside a plain (not aggregated) one.
    fn aggregated(&mut self, first: &'a str, first_span: Span) -> Result<Lhs<'a>, SloError> {
        let agg = match Agg::from_name(first) {
            Some(Ok(a)) => a,
            Some(Err((msg, hint))) => {
                return Err(SloError::new(msg, first_span, "invalid percentile").maybe_hint(hint));
            }
            None => return Err(unknown_aggregation(first, first_span)),
        };
        let open = self.pos;
        self.bump();
        self.skip_ws();
        let Some((metric, metric_span)) = self.ident() else {
            let (_, span) = self.token();
            return Err(SloError::new(
                format!(
                    "expected a metric name inside `{first}(…)`, found {}",
                    self.found()
                ),
                span,
                "expected a metric here",
            )
            .hint(format!("e.g. `{first}(latency)`")));
        };
        self.skip_ws();
        if self.peek() == Some('(') {
            return Err(self.nested_call(first, metric, metric_span));
        }
        let selectors = self.optional_selectors(metric)?;
        self.skip_ws();
        if self.peek() != Some(')') {
            if !self.later(')') {
                return Err(SloError::new(
                    "unclosed `(`",
                    Span::new(open, open + 1),
                    "this `(` is never closed",
                )
                .hint(format!("write `{first}({metric})`")));
            }
            return Err(SloError::new(
                format!("expected `)` after `{metric}`, found {}", self.found()),
                Span::point(self.pos),
                "expected `)` here",
            ));
        }
        self.bump();
        Ok(Lhs {
            agg: Some((agg, first_span)),
            metric,
            metric_span,
            selectors,
        })
    }

    /// The error for `(` after the metric inside `first(…)`: a nested aggregation or a
    /// stray parenthesis.
    fn nested_call(&self, first: &str, metric: &str, metric_span: Span) -> SloError {
        if Agg::from_name(metric).is_some() {
            return SloError::new(
                "aggregations cannot be nested",
                metric_span,
                "second aggregation",
            )
            .hint(format!(
                "apply one aggregation to the metric, e.g. `{first}(latency)`"
            ));
        }
        let (_, span) = self.token();
        SloError::new(
            format!("expected `)` after `{metric}`, found `(`"),
            span,
            "unexpected `(`",
        )
    }

    /// A metric without aggregation, `first`, with optional selectors; an aggregation name
    /// followed by a word is a forgotten `(`.
    fn bare_metric(&mut self, first: &'a str, first_span: Span) -> Result<Lhs<'a>, SloError> {
        if Agg::from_name(first).is_some() && self.peek().is_some_and(is_ident_start) {
            return Err(self.missing_open_paren(first));
        }
        let selectors = self.optional_selectors(first)?;
        Ok(Lhs {
            agg: None,
            metric: first,
            metric_span: first_span,
            selectors,
        })
    }

    /// `p95 latency{…} < …`: the error at the missing `(`, with the call written out.
    fn missing_open_paren(&self, first: &str) -> SloError {
        let mut probe = Parser {
            src: self.src,
            pos: self.pos,
            depth: 0,
            ops: 0,
        };
        let metric_start = probe.pos;
        probe.ident();
        if probe.peek() == Some('{') {
            let close = probe
                .rest()
                .find('}')
                .map_or(probe.src.len(), |i| probe.pos + i + 1);
            probe.pos = close;
        }
        let metric_text = &self.src[metric_start..probe.pos.min(self.src.len())];
        let tail = probe.rest().trim_end();
        SloError::new(
            format!("expected `(` after aggregation `{first}`"),
            Span::point(self.pos),
            "expected `(` here",
        )
        .hint(format!("write `{first}({metric_text}){tail}`"))
    }

    /// Selectors of `metric` when a `{` follows, else none.
    fn optional_selectors(&mut self, metric: &str) -> Result<Vec<Selector>, SloError> {
        if self.peek() == Some('{') {
            self.selectors(metric)
        } else {
            Ok(Vec::new())
        }
    }

    /// The threshold after the operator `op`, and the end of the input after it.
    fn threshold(&mut self, op: Op) -> Result<(Rhs, Span), SloError> {
        self.skip_ws();
        if self.at_end() {
            return Err(SloError::new(
                format!("expected a threshold after `{}`", op.symbol()),
                Span::point(self.pos),
                "expected a value here",
            )
            .hint(EXAMPLE));
        }
        let rhs_start = self.pos;
        let (rhs, rhs_span) = self.expr()?;
        let rhs_span = Span::new(rhs_start.min(rhs_span.start), rhs_span.end);
        self.skip_ws();
        if !self.at_end() {
            return Err(self.trailing(&rhs));
        }
        Ok((rhs, rhs_span))
    }

    /// `{label=value, …}` at the current position.
    fn selectors(&mut self, metric: &str) -> Result<Vec<Selector>, SloError> {
        let open = self.pos;
        self.bump();
        let unclosed = || {
            SloError::new(
                "unclosed `{`",
                Span::new(open, open + 1),
                "this `{` is never closed",
            )
            .hint(format!("write `{metric}{{label=value}}`"))
        };
        self.skip_ws();
        if self.peek() == Some('}') {
            self.bump();
            return Err(SloError::new(
                "empty label selector",
                Span::new(open, self.pos),
                "no labels",
            )
            .hint(format!("remove `{{}}` or write `{metric}{{label=value}}`")));
        }
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            if self.at_end() {
                return Err(unclosed());
            }
            let Some((name, name_span)) =
                self.run(is_ident_start, |c| c.is_ascii_alphanumeric() || c == '_')
            else {
                if !self.later('}') {
                    return Err(unclosed());
                }
                let (_, span) = self.token();
                return Err(SloError::new(
                    format!("expected a label name, found {}", self.found()),
                    span,
                    "expected a label here",
                )
                .hint(format!("write `{metric}{{label=value}}`")));
            };
            self.skip_ws();
            match (self.peek(), self.peek2()) {
                (Some('='), Some('=')) => {
                    return Err(SloError::new(
                        "label selectors use a single `=`",
                        Span::new(self.pos, self.pos + 2),
                        "write `=`",
                    )
                    .hint(format!("write `{name}=value`")));
                }
                (Some('='), Some('~')) | (Some('!'), Some('=' | '~')) => {
                    return Err(SloError::new(
                        "only `=` label matchers are supported",
                        Span::new(self.pos, self.pos + 2),
                        "unsupported matcher",
                    )
                    .hint(format!(
                        "write `{name}=value`; write one SLO per value to cover several"
                    )));
                }
                (Some('='), _) => self.bump(),
                (None, _) => return Err(unclosed()),
                _ => {
                    return Err(SloError::new(
                        format!("expected `=` after label `{name}`, found {}", self.found()),
                        Span::point(self.pos),
                        "expected `=` here",
                    )
                    .hint(format!("write `{name}=value`")));
                }
            }
            self.skip_ws();
            let (value, value_span) = match self.peek() {
                Some('"') => self.quoted()?,
                Some(c) if is_bare_value_char(c) => {
                    let (v, span) = self
                        .run(is_bare_value_char, is_bare_value_char)
                        .unwrap_or(("", Span::point(self.pos)));
                    (v.to_string(), span)
                }
                None => return Err(unclosed()),
                Some(_) => {
                    let (_, span) = self.token();
                    let span = if span.is_empty() {
                        Span::point(self.pos)
                    } else {
                        span
                    };
                    return Err(SloError::new(
                        format!("expected a value for label `{name}`, found {}", self.found()),
                        span,
                        "expected a value here",
                    )
                    .hint(format!(
                        "write `{name}=value`; quote values with other characters: `{name}=\"a value\"`"
                    )));
                }
            };
            out.push(Selector {
                name: name.to_string(),
                name_span,
                value,
                value_span,
            });
            self.skip_ws();
            match self.peek() {
                Some(',') => {
                    self.bump();
                    self.skip_ws();
                    if self.peek() == Some('}') {
                        self.bump();
                        return Ok(out);
                    }
                }
                Some('}') => {
                    self.bump();
                    return Ok(out);
                }
                None => return Err(unclosed()),
                Some(_) => {
                    if !self.later('}') {
                        return Err(unclosed());
                    }
                    let (_, span) = self.token();
                    return Err(SloError::new(
                        format!(
                            "expected `,` or `}}` after the value of `{name}`, found {}",
                            self.found()
                        ),
                        span,
                        "expected `,` or `}` here",
                    )
                    .hint(format!(
                        "quote values that contain spaces or symbols: `{name}=\"a value\"`"
                    )));
                }
            }
        }
    }

    /// A double-quoted label value; `\"` and `\\` are the only escapes.
    fn quoted(&mut self) -> Result<(String, Span), SloError> {
        let start = self.pos;
        self.bump();
        let mut value = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(SloError::new(
                        "unterminated string",
                        Span::new(start, start + 1),
                        "this quote is never closed",
                    )
                    .hint("close the value with `\"`"));
                }
                Some('"') => {
                    self.bump();
                    return Ok((value, Span::new(start, self.pos)));
                }
                Some('\\') if matches!(self.peek2(), Some('"' | '\\')) => {
                    self.bump();
                    if let Some(c) = self.peek() {
                        value.push(c);
                    }
                    self.bump();
                }
                Some(c) => {
                    value.push(c);
                    self.bump();
                }
            }
        }
    }

    /// The comparison operator at the current position.
    fn op(&mut self, lhs: &str) -> Result<(Op, Span), SloError> {
        let start = self.pos;
        let text = self
            .run(|c| "<>=!".contains(c), |c| "<>=!".contains(c))
            .map(|(t, _)| t);
        let span = Span::new(start, self.pos);
        let ops = "use one of `<`, `<=`, `>`, `>=` or `==`";
        let op = match text {
            Some("<") => Op::Lt,
            Some("<=") => Op::Le,
            Some(">") => Op::Gt,
            Some(">=") => Op::Ge,
            Some("==") => Op::Eq,
            Some("=<") => {
                return Err(
                    SloError::new("unknown operator `=<`", span, "unknown operator")
                        .hint("did you mean `<=`?"),
                );
            }
            Some("=>") => {
                return Err(
                    SloError::new("unknown operator `=>`", span, "unknown operator")
                        .hint("did you mean `>=`?"),
                );
            }
            Some("=") => {
                return Err(SloError::new(
                    "`=` is not a comparison operator",
                    span,
                    "not a comparison",
                )
                .hint("use `==` to compare for equality"));
            }
            Some(t @ ("!=" | "<>")) => {
                return Err(SloError::new(
                    format!("`{t}` is not supported"),
                    span,
                    "unsupported operator",
                )
                .hint(ops));
            }
            Some(t) => {
                return Err(SloError::new(
                    format!("unknown operator `{t}`"),
                    span,
                    "unknown operator",
                )
                .hint(ops));
            }
            None => {
                let word = self.token().0;
                let hint = match word.as_str() {
                    "lt" => Some("did you mean `<`?".to_string()),
                    "le" | "lte" => Some("did you mean `<=`?".into()),
                    "gt" => Some("did you mean `>`?".into()),
                    "ge" | "gte" => Some("did you mean `>=`?".into()),
                    "eq" => Some("did you mean `==`?".into()),
                    _ => Some(format!(
                        "compare with {}, e.g. `{lhs} < …`",
                        "`<`, `<=`, `>`, `>=` or `==`"
                    )),
                };
                let found = self.found();
                return Err(SloError::new(
                    format!("expected a comparison operator after `{lhs}`, found {found}"),
                    Span::point(self.pos),
                    "expected an operator here",
                )
                .maybe_hint(hint));
            }
        };
        Ok((op, span))
    }

    /// `expr := term (('+'|'-') term)*`
    fn expr(&mut self) -> Result<(Rhs, Span), SloError> {
        let (mut lhs, mut span) = self.term()?;
        loop {
            self.skip_ws();
            let op = match self.peek() {
                Some('+') => BinOp::Add,
                Some('-') => BinOp::Sub,
                _ => return Ok((lhs, span)),
            };
            self.count_op()?;
            self.bump();
            let (rhs, rspan) = self.term()?;
            span = span.join(rspan);
            lhs = Rhs::Bin {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    /// `term := factor (('*'|'/') factor)*`
    fn term(&mut self) -> Result<(Rhs, Span), SloError> {
        let (mut lhs, mut span) = self.factor()?;
        loop {
            self.skip_ws();
            let op = match self.peek() {
                Some('*') => BinOp::Mul,
                Some('/') => BinOp::Div,
                _ => return Ok((lhs, span)),
            };
            self.count_op()?;
            self.bump();
            let (rhs, rspan) = self.factor()?;
            span = span.join(rspan);
            lhs = Rhs::Bin {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    /// `factor := QUANTITY | 'baseline' | '(' expr ')' | '-' factor`
    fn factor(&mut self) -> Result<(Rhs, Span), SloError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some('(') => {
                self.enter(Span::new(start, start + 1))?;
                self.bump();
                let (inner, _) = self.expr()?;
                self.skip_ws();
                if self.peek() != Some(')') {
                    if !self.later(')') {
                        return Err(SloError::new(
                            "unclosed `(`",
                            Span::new(start, start + 1),
                            "this `(` is never closed",
                        )
                        .hint("add the missing `)`"));
                    }
                    let (_, span) = self.token();
                    return Err(SloError::new(
                        format!("expected `)` or an operator, found {}", self.found()),
                        span,
                        "expected `)` here",
                    ));
                }
                self.bump();
                self.leave();
                Ok((inner, Span::new(start, self.pos)))
            }
            Some('-') => {
                self.enter(Span::new(start, start + 1))?;
                self.bump();
                let (inner, span) = self.factor()?;
                self.leave();
                Ok((Rhs::Neg(Box::new(inner)), Span::new(start, span.end)))
            }
            Some(c)
                if c.is_ascii_digit()
                    || (c == '.' && self.peek2().is_some_and(|d| d.is_ascii_digit())) =>
            {
                self.literal()
            }
            Some(c) if is_ident_start(c) => {
                let Some((word, span)) = self.ident() else {
                    return Err(SloError::new(
                        "expected a value",
                        Span::point(start),
                        "expected a value here",
                    ));
                };
                if word == "baseline" {
                    return Ok((Rhs::Baseline { span }, span));
                }
                let hint = if let Some(b) = did_you_mean(&word.to_ascii_lowercase(), ["baseline"]) {
                    format!("did you mean `{b}`?")
                } else if Agg::from_name(word).is_some()
                    || word.contains('.')
                    || self.peek() == Some('(')
                {
                    "a threshold is a literal such as `250ms`, or arithmetic on `baseline`; it cannot refer to other metrics".into()
                } else {
                    "write a number with its unit, e.g. `250ms`, `0.1%`, `200/s`, or use `baseline`"
                        .into()
                };
                Err(SloError::new(
                    format!("expected a number, `baseline` or `(`, found `{word}`"),
                    span,
                    "expected a value here",
                )
                .hint(hint))
            }
            _ => {
                let (_, span) = self.token();
                let hint = match self.peek() {
                    Some('+') => "a leading `+` is not needed".to_string(),
                    None => "complete the expression, e.g. `baseline * 1.1`".to_string(),
                    _ => "write a number with its unit, e.g. `250ms`, or `baseline`".to_string(),
                };
                Err(SloError::new(
                    format!(
                        "expected a number, `baseline` or `(`, found {}",
                        self.found()
                    ),
                    span,
                    "expected a value here",
                )
                .hint(hint))
            }
        }
    }

    /// A literal quantity at the current position (which starts with a digit or `.`).
    fn literal(&mut self) -> Result<(Rhs, Span), SloError> {
        let start = self.pos;
        let len = literal_len(self.rest());
        self.pos += len;
        let span = Span::new(start, self.pos);
        let text = &self.src[start..self.pos];
        match Quantity::parse(text) {
            Ok(q) => Ok((
                Rhs::Literal {
                    value: q.value,
                    dim: q.dim,
                    span,
                },
                span,
            )),
            Err(e) => Err(literal_error(text, span, &e)),
        }
    }

    /// The error for something left over after a complete expression.
    fn trailing(&self, rhs: &Rhs) -> SloError {
        let rest = self.rest().trim_end();
        let span = Span::new(self.pos, self.pos + rest.len());
        if rest.starts_with(')') {
            return SloError::new(
                "unmatched `)`",
                Span::new(self.pos, self.pos + 1),
                "no `(` opens this",
            )
            .hint("remove it, or add the matching `(`");
        }
        let word = self.token().0;
        let mut err = SloError::new(
            format!("unexpected `{}` after the threshold", rest.escape_debug()),
            span,
            "unexpected",
        );
        let lower = word.to_ascii_lowercase();
        if matches!(lower.as_str(), "and" | "or")
            || rest.starts_with("&&")
            || rest.starts_with("||")
        {
            err = err.hint("write one SLO per entry: every SLO of a spec must hold");
        } else if let Rhs::Literal {
            dim: None,
            span: lspan,
            ..
        } = rhs
            && let Some(num) = self.src.get(lspan.start..lspan.end)
            && Quantity::parse(&format!("{num}{word}")).is_ok_and(|q| q.dim.is_some())
        {
            err = err.hint(format!(
                "write the unit right after the number: `{num}{word}`"
            ));
        } else if rest.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '(' || c == 'b')
        {
            err = err.hint("combine values with `+`, `-`, `*` or `/`");
        } else if rest.starts_with(['<', '>', '=']) {
            err = err.hint("an SLO has exactly one comparison; write one SLO per bound");
        }
        err
    }
}

/// Byte length of the literal at the start of `s`: digits, `.`, `_`, letters, `%`, `µ`,
/// a `/` between a digit and a letter (`200/s`), and an exponent sign after `<digit>e`.
fn literal_len(s: &str) -> usize {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut n = 0;
    while n < chars.len() {
        let c = chars[n].1;
        let prev = if n > 0 { Some(chars[n - 1].1) } else { None };
        let next = chars.get(n + 1).map(|&(_, c)| c);
        let ok = c.is_ascii_alphanumeric()
            || matches!(c, '.' | '_' | '%' | 'µ')
            || (c == '/'
                && prev.is_some_and(|p| p.is_ascii_digit())
                && next.is_some_and(|x| x.is_ascii_alphabetic()))
            || (matches!(c, '-' | '+')
                && matches!(prev, Some('e' | 'E'))
                && n >= 2
                && (chars[n - 2].1.is_ascii_digit() || chars[n - 2].1 == '.')
                && next.is_some_and(|x| x.is_ascii_digit()));
        if !ok {
            break;
        }
        n += 1;
    }
    chars.get(n).map_or(s.len(), |&(i, _)| i)
}

const UNITS: &[&str] = &[
    "ns", "us", "µs", "ms", "s", "m", "min", "h", "B", "KB", "MB", "GB", "KiB", "MiB", "GiB", "/s",
    "/min", "/h", "%", "x", "pp", "dB",
];

fn literal_error(text: &str, span: Span, e: &UnitError) -> SloError {
    match e {
        UnitError::UnknownUnit(unit) => {
            let suggestion = UNITS
                .iter()
                .find(|u| u.eq_ignore_ascii_case(unit))
                .copied()
                .or_else(|| match unit.as_str() {
                    "sec" | "secs" | "second" | "seconds" => Some("s"),
                    "msec" | "msecs" | "millis" | "milliseconds" => Some("ms"),
                    "minute" | "minutes" | "mins" => Some("min"),
                    "percent" | "pct" => Some("%"),
                    _ => did_you_mean(unit, UNITS.iter().copied()),
                });
            let list = e.hint().unwrap_or_default();
            let hint = match suggestion {
                Some(u) => format!("did you mean `{u}`? {list}"),
                None => list,
            };
            SloError::new(
                format!("unknown unit `{unit}` in `{text}`"),
                span,
                "unknown unit",
            )
            .hint(hint)
        }
        UnitError::NotFinite => SloError::new(
            format!("`{text}` is out of range"),
            span,
            "not a finite number",
        )
        .hint("use a smaller value"),
        UnitError::NotANumber(_) | UnitError::Empty => {
            SloError::new(format!("`{text}` is not a number"), span, "not a number")
                .hint("write a number with its unit, e.g. `250ms`")
        }
    }
}

fn unknown_aggregation(name: &str, span: Span) -> SloError {
    const NAMES: [&str; 10] = [
        "p50", "p90", "p95", "p99", "p99.9", "mean", "max", "min", "count", "rate",
    ];
    let lower = name.to_ascii_lowercase();
    let suggestion: Option<&str> = match lower.as_str() {
        "avg" | "average" => Some("mean"),
        "median" => Some("p50"),
        "maximum" => Some("max"),
        "minimum" => Some("min"),
        // `P95`, `MEAN`: the right name in the wrong case
        l if Agg::from_name(l).is_some_and(|r| r.is_ok()) => Some(l),
        l => did_you_mean(l, NAMES),
    };
    let list = "aggregations are `p50`…`p99.9`, `mean`, `max`, `min`, `count` and `rate`";
    let hint = match suggestion {
        Some(s) => format!("did you mean `{s}`? {list}"),
        None => list.to_string(),
    };
    SloError::new(
        format!("unknown aggregation `{name}`"),
        span,
        "unknown aggregation",
    )
    .hint(hint)
}

// ---------------------------------------------------------------------------------------
// Checking against the catalog
// ---------------------------------------------------------------------------------------

/// An example threshold of a dimension, for hints.
fn example_value(dim: Dimension) -> &'static str {
    match dim {
        Dimension::Time => "1s",
        Dimension::Bytes => "64MiB",
        Dimension::Rate => "100/s",
        Dimension::Ratio => "0.5",
        Dimension::Points => "1pp",
        Dimension::Decibels => "30dB",
        Dimension::Count => "10",
    }
}

fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::Histogram => "a distribution",
        Shape::Gauge => "a gauge",
        Shape::Counter => "a counter",
    }
}

/// The dimension of the left-hand side after aggregation, and problems found: the metric
/// exists for this kind, its labels are allowed (and not repeated), the aggregation fits
/// the metric's shape, and the threshold's unit matches the left-hand side. Collects every
/// problem.
pub fn check(expr: &SloExpr, kind: Kind) -> Result<Dimension, Vec<SloError>> {
    check_in(expr, kind, &[])
}

/// [`check`] against the kind's catalog and the metrics an `[exec]` spec declares.
pub fn check_in(
    expr: &SloExpr,
    kind: Kind,
    declared: &[catalog::MetricDef],
) -> Result<Dimension, Vec<SloError>> {
    let metric = expr.metric.as_str();
    let def = catalog::lookup(kind, metric).or_else(|| declared.iter().find(|d| d.name == metric));
    let Some(def) = def else {
        return Err(vec![unknown_metric(expr, kind, declared)]);
    };
    let mut errors = Vec::new();
    check_labels(expr, def, &mut errors);
    let lhs_dim = check_aggregation(expr, def, &mut errors);
    check_threshold(expr, lhs_dim, &mut errors);
    if let Some(e) = bare_ratio_of_one_or_more(expr, lhs_dim) {
        errors.push(e);
    }
    if errors.is_empty() {
        Ok(lhs_dim)
    } else {
        Err(errors)
    }
}

/// The metric of `expr` is not one of `kind`'s (nor declared): a near name if there is one,
/// and the list.
fn unknown_metric(expr: &SloExpr, kind: Kind, declared: &[catalog::MetricDef]) -> SloError {
    let metric = expr.metric.as_str();
    let names: Vec<&str> = catalog::metrics(kind)
        .iter()
        .chain(declared)
        .map(|d| d.name)
        .collect();
    let mut hint = String::new();
    if let Some(s) = did_you_mean(metric, names.iter().copied()) {
        hint.push_str(&format!("did you mean `{s}`? "));
    }
    hint.push_str(&format!("metrics of a {kind} spec: {}", names.join(", ")));
    if kind == Kind::Load {
        hint.push_str(", and `prom.<name>` for scraped Prometheus metrics");
    }
    SloError::new(
        format!("unknown metric `{metric}` for a {kind} spec"),
        expr.metric_span,
        "unknown metric",
    )
    .hint(hint)
}

/// Each selector's label once, and a label the metric has.
fn check_labels(expr: &SloExpr, def: &catalog::MetricDef, errors: &mut Vec<SloError>) {
    let metric = expr.metric.as_str();
    for (i, sel) in expr.selectors.iter().enumerate() {
        if expr.selectors[..i].iter().any(|s| s.name == sel.name) {
            errors.push(
                SloError::new(
                    format!("label `{}` given twice", sel.name),
                    sel.name_span,
                    "repeated label",
                )
                .hint("a selector matches one value per label; write one SLO per value"),
            );
            continue;
        }
        if !catalog::allows_label(def, &sel.name) {
            let hint = if def.labels.is_empty() {
                format!("`{metric}` takes no labels; remove the selector")
            } else {
                let list = def
                    .labels
                    .iter()
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                match did_you_mean(&sel.name, def.labels.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? labels of `{metric}`: {list}"),
                    None => format!("labels of `{metric}`: {list}"),
                }
            };
            errors.push(
                SloError::new(
                    format!("`{}` is not a label of `{metric}`", sel.name),
                    sel.name_span,
                    "unknown label",
                )
                .hint(hint),
            );
        }
    }
}

/// The aggregation fits the metric's shape (a distribution needs one); the dimension of the
/// left-hand side after it (`count` counts, `rate` is per second).
fn check_aggregation(
    expr: &SloExpr,
    def: &catalog::MetricDef,
    errors: &mut Vec<SloError>,
) -> Dimension {
    let metric = expr.metric.as_str();
    let Some((agg, span)) = &expr.agg else {
        if def.shape == Shape::Histogram {
            errors.push(
                SloError::new(
                    format!("`{metric}` is a distribution: pick an aggregation"),
                    expr.metric_span,
                    "needs an aggregation",
                )
                .hint(format!(
                    "e.g. `p95({metric}) {} {}`",
                    expr.op,
                    example_value(def.dim)
                )),
            );
        }
        return def.dim;
    };
    let ok = match agg {
        Agg::Percentile(_) | Agg::Mean | Agg::Max | Agg::Min => def.shape == Shape::Histogram,
        Agg::Count | Agg::Rate => matches!(def.shape, Shape::Histogram | Shape::Counter),
    };
    if !ok {
        let needs = if agg.is_distribution() {
            "a distribution"
        } else {
            "a distribution or a counter"
        };
        let hint = match def.shape {
            Shape::Counter => format!(
                "compare the count directly (`{metric} …`) or per second (`rate({metric}) …`)"
            ),
            _ => format!(
                "`{metric}` is one value: compare it directly, e.g. `{metric} {} …`",
                expr.op
            ),
        };
        errors.push(
            SloError::new(
                format!(
                    "`{agg}` needs {needs}, but `{metric}` is {}",
                    shape_name(def.shape)
                ),
                *span,
                "aggregation not allowed here",
            )
            .hint(hint),
        );
    }
    match agg {
        Agg::Count => Dimension::Count,
        Agg::Rate => Dimension::Rate,
        _ => def.dim,
    }
}

/// The threshold's dimension (see [`infer`]) is the left-hand side's `lhs_dim`, or a bare
/// number where that dimension takes one.
fn check_threshold(expr: &SloExpr, lhs_dim: Dimension, errors: &mut Vec<SloError>) {
    let found = match infer(&expr.rhs, lhs_dim, errors) {
        // a problem inside the threshold, reported there
        None => return,
        Some(Some(d)) if d == lhs_dim => return,
        Some(None) if lhs_dim.accepts_bare() => return,
        Some(found) => found,
    };
    let units = format!(
        "`{}` is {}: write {}",
        expr.lhs_text(),
        lhs_dim.name(),
        lhs_dim.units_hint()
    );
    let error = match found {
        None => {
            let (value, span) = expr
                .rhs
                .find_literal(&|d| d.is_none())
                .map_or((None, expr.rhs_span), |(v, _, s)| (Some(v), s));
            let message = match (value, &expr.rhs) {
                (Some(v), Rhs::Literal { .. }) => format!("`{}` needs a unit", trim_float(v)),
                _ => "the threshold needs a unit".to_string(),
            };
            SloError::new(message, span, format!("expected {}", lhs_dim.name()))
        }
        Some(d) => {
            let span = expr
                .rhs
                .find_literal(&|x| x == Some(d))
                .map_or(expr.rhs_span, |(_, _, s)| s);
            SloError::new(
                format!("expected {}, found {}", lhs_dim.name(), d.name()),
                span,
                format!("this is {}", d.name()),
            )
        }
    };
    errors.push(error.hint(units));
}

/// Metrics that are fractions of a whole (0 … 1): a bare threshold of 1 or more on them is
/// almost surely meant as a percentage.
fn is_fraction_metric(metric: &str) -> bool {
    ["error_rate", "_ratio", "hit_ratio"]
        .iter()
        .any(|suffix| metric.ends_with(suffix))
        && !metric.ends_with("size_ratio")
        && !metric.ends_with("latency_ratio")
        && !metric.ends_with("peak_resident_ratio")
}

/// `error_rate < 1` reads as 100% and always passes: a bare threshold ≥ 1 on a fraction.
fn bare_ratio_of_one_or_more(expr: &SloExpr, lhs_dim: Dimension) -> Option<SloError> {
    let Rhs::Literal {
        value,
        dim: None,
        span,
    } = expr.rhs
    else {
        return None;
    };
    if lhs_dim != Dimension::Ratio || !is_fraction_metric(&expr.metric) || value < 1.0 {
        return None;
    }
    let v = trim_float(value);
    Some(
        SloError::new(
            format!(
                "`{v}` is {}% for a ratio: `{}` is a fraction from 0 to 1",
                trim_float(value * 100.0),
                expr.metric
            ),
            span,
            "a bare ratio of 1 or more",
        )
        .hint(format!(
            "did you mean `{v}%`? write `{} {} {v}%` (or a fraction such as `{}`)",
            expr.lhs_text(),
            expr.op,
            trim_float(value / 100.0)
        )),
    )
}

/// The dimension of `rhs` (`Some(None)` for a bare number), or `None` after reporting a
/// problem inside it (so that one mistake is reported once).
fn infer(rhs: &Rhs, lhs_dim: Dimension, errors: &mut Vec<SloError>) -> Option<Option<Dimension>> {
    match rhs {
        Rhs::Literal { dim, .. } => Some(*dim),
        Rhs::Baseline { .. } => Some(Some(lhs_dim)),
        Rhs::Neg(x) => infer(x, lhs_dim, errors),
        Rhs::Bin {
            op,
            lhs,
            rhs: right,
        } => {
            let l = infer(lhs, lhs_dim, errors);
            let r = infer(right, lhs_dim, errors);
            let (l, r) = (l?, r?);
            match op {
                BinOp::Add | BinOp::Sub => match (l, r) {
                    (a, b) if a == b => Some(a),
                    (Some(d), None) | (None, Some(d)) if d.accepts_bare() => Some(Some(d)),
                    (Some(d), None) | (None, Some(d)) => {
                        let bare = if l.is_none() { lhs } else { right };
                        let (span, message) = match bare.as_ref() {
                            Rhs::Literal { value, span, .. } => {
                                (*span, format!("`{}` needs a unit", trim_float(*value)))
                            }
                            other => (other.span(), "this term needs a unit".to_string()),
                        };
                        errors.push(
                            SloError::new(message, span, format!("expected {}", d.name()))
                                .hint(format!("write {}", d.units_hint())),
                        );
                        None
                    }
                    (Some(a), Some(b)) => {
                        // blame the side that differs from the left-hand side's dimension
                        let (bad, bad_dim, want) = if a == lhs_dim {
                            (right, b, a)
                        } else if b == lhs_dim {
                            (lhs, a, b)
                        } else {
                            (right, b, a)
                        };
                        let span = bad
                            .find_literal(&|x| x == Some(bad_dim))
                            .map_or(bad.span(), |(_, _, s)| s);
                        let sym = op.symbol();
                        errors.push(
                            SloError::new(
                                format!("expected {}, found {}", want.name(), bad_dim.name()),
                                span,
                                format!("cannot `{sym}` {} and {}", want.name(), bad_dim.name()),
                            )
                            .hint(format!("write {}", want.units_hint())),
                        );
                        None
                    }
                    (None, None) => Some(None),
                },
                BinOp::Mul | BinOp::Div => {
                    // A scale is a bare number or a ratio (`1.1x`, `110%`).
                    let is_scale =
                        |t: Option<Dimension>| matches!(t, None | Some(Dimension::Ratio));
                    let scale_result = |a: Option<Dimension>, b: Option<Dimension>| {
                        if a == Some(Dimension::Ratio) || b == Some(Dimension::Ratio) {
                            Some(Dimension::Ratio)
                        } else {
                            None
                        }
                    };
                    let result = match op {
                        BinOp::Mul if is_scale(l) && is_scale(r) => Some(scale_result(l, r)),
                        BinOp::Mul if is_scale(l) => Some(r),
                        BinOp::Mul if is_scale(r) => Some(l),
                        BinOp::Div if is_scale(r) && is_scale(l) => Some(scale_result(l, r)),
                        BinOp::Div if is_scale(r) => Some(l),
                        _ => None,
                    };
                    let Some(result) = result else {
                        let span = right.span();
                        let (msg, hint) = match op {
                            BinOp::Mul => (
                                format!(
                                    "cannot multiply {} by {}",
                                    l.map_or("a number", |d| d.name()),
                                    r.map_or("a number", |d| d.name())
                                ),
                                "scale with a plain number or a ratio, e.g. `baseline * 1.1`",
                            ),
                            _ => (
                                format!("cannot divide by {}", r.map_or("a number", |d| d.name())),
                                "divide by a plain number, e.g. `baseline / 2`",
                            ),
                        };
                        errors.push(SloError::new(msg, span, "not a plain number").hint(hint));
                        return None;
                    };
                    if *op == BinOp::Div
                        && !right.uses_baseline()
                        && eval_rhs(right, None) == Some(0.0)
                    {
                        errors.push(SloError::new(
                            "division by zero",
                            right.span(),
                            "this is zero",
                        ));
                        return None;
                    }
                    Some(result)
                }
            }
        }
    }
}

/// Evaluate a threshold in canonical units. `None` when it needs a baseline and there is
/// none, on division by zero, or when the result is not finite.
pub fn eval_rhs(rhs: &Rhs, baseline: Option<f64>) -> Option<f64> {
    let v = match rhs {
        Rhs::Literal { value, .. } => *value,
        Rhs::Baseline { .. } => baseline?,
        Rhs::Neg(x) => -eval_rhs(x, baseline)?,
        Rhs::Bin { op, lhs, rhs } => {
            let (a, b) = (eval_rhs(lhs, baseline)?, eval_rhs(rhs, baseline)?);
            match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div if b == 0.0 => return None,
                BinOp::Div => a / b,
            }
        }
    };
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> SloExpr {
        match parse(s) {
            Ok(e) => e,
            Err(e) => panic!("{s}: {e:?}"),
        }
    }

    /// Parse `s`, expect an error; return (message, the text its span covers, hint).
    fn err(s: &str) -> (String, String, Option<String>) {
        let e = parse(s).expect_err(s);
        let covered = s
            .get(e.span.start..e.span.end)
            .unwrap_or_else(|| panic!("span {:?} outside `{s}`", e.span));
        (e.message, covered.to_string(), e.hint)
    }

    fn span_of(s: &str, needle: &str) -> Span {
        let i = s.find(needle).unwrap();
        Span::new(i, i + needle.len())
    }

    #[test]
    fn parses_every_aggregation() {
        let cases = [
            ("p50(latency) < 1s", Agg::Percentile(50.0)),
            ("p95(latency) < 1s", Agg::Percentile(95.0)),
            ("p99(latency) < 1s", Agg::Percentile(99.0)),
            ("p99.9(latency) < 1s", Agg::Percentile(99.9)),
            ("p0.1(latency) < 1s", Agg::Percentile(0.1)),
            ("mean(latency) < 1s", Agg::Mean),
            ("max(latency) < 1s", Agg::Max),
            ("min(latency) < 1s", Agg::Min),
            ("count(requests) > 10", Agg::Count),
            ("rate(requests) > 10/s", Agg::Rate),
        ];
        for (text, agg) in cases {
            let e = p(text);
            let (a, span) = e.agg.unwrap();
            assert_eq!(a, agg, "{text}");
            assert_eq!(span.start, 0);
            assert_eq!(&text[span.start..span.end], text.split('(').next().unwrap());
        }
        let e = p("p99.9(latency) < 1s");
        assert_eq!(e.lhs_text(), "p99.9(latency)");
        assert_eq!(e.metric, "latency");
        assert_eq!(e.metric_span, span_of("p99.9(latency) < 1s", "latency"));
    }

    #[test]
    fn parses_metrics_without_aggregation_and_dotted_names() {
        let e = p("usl.peak_concurrency >= 4");
        assert_eq!(e.agg, None);
        assert_eq!(e.metric, "usl.peak_concurrency");
        assert_eq!(e.op, Op::Ge);
        assert_eq!(
            e.rhs,
            Rhs::Literal {
                value: 4.0,
                dim: None,
                span: Span::new(24, 25)
            }
        );
        assert_eq!(e.rhs_span, Span::new(24, 25));
        assert_eq!(p("prom.db_pool_in_use < 50").metric, "prom.db_pool_in_use");
        let e = p("  error_rate<0.1%  ");
        assert_eq!(e.metric_span, Span::new(2, 12));
        assert_eq!(e.op_span, Span::new(12, 13));
        assert!(
            matches!(e.rhs, Rhs::Literal { value, dim: Some(Dimension::Ratio), .. } if (value - 0.001).abs() < 1e-15)
        );
    }

    #[test]
    fn parses_label_selectors() {
        let s = r#"p99(latency{journey=checkout, step = "POST /cart", status=5xx}) < 800ms"#;
        let e = p(s);
        assert_eq!(e.selectors.len(), 3);
        assert_eq!(e.selectors[0].name, "journey");
        assert_eq!(e.selectors[0].name_span, span_of(s, "journey"));
        assert_eq!(e.selectors[0].value, "checkout");
        assert_eq!(e.selectors[0].value_span, span_of(s, "checkout"));
        assert_eq!(e.selectors[1].value, "POST /cart");
        assert_eq!(e.selectors[1].value_span, span_of(s, "\"POST /cart\""));
        assert_eq!(e.selectors[2].value, "5xx");
        assert_eq!(
            e.labels().get("step").map(String::as_str),
            Some("POST /cart")
        );
        assert_eq!(
            e.lhs_text(),
            r#"p99(latency{journey=checkout,step="POST /cart",status=5xx})"#
        );

        let e = p(r#"errors{status="say \"hi\"\\"} == 0"#);
        assert_eq!(e.selectors[0].value, r#"say "hi"\"#);
        let e = p("latency_ratio{scheme=int8,mode=dequantize_at_load,} <= 1.1x");
        assert_eq!(e.selectors.len(), 2);
        let e = p("prom.http{path=/api/v1:x-y.z} < 5");
        assert_eq!(e.selectors[0].value, "/api/v1:x-y.z");
        assert_eq!(e.lhs_text(), "prom.http{path=/api/v1:x-y.z}");
    }

    #[test]
    fn parses_every_operator() {
        for (sym, op) in [
            ("<", Op::Lt),
            ("<=", Op::Le),
            (">", Op::Gt),
            (">=", Op::Ge),
            ("==", Op::Eq),
        ] {
            let s = format!("error_rate {sym} 1%");
            let e = p(&s);
            assert_eq!(e.op, op);
            assert_eq!(e.op.symbol(), sym);
            assert_eq!(e.op_span, Span::new(11, 11 + sym.len()));
        }
        // no spaces at all
        assert_eq!(p("error_rate<=1%").op, Op::Le);
        assert_eq!(p("p95(latency)>=-5ms").op, Op::Ge);
    }

    #[test]
    fn operators_hold_at_their_boundaries() {
        assert!(Op::Lt.holds(1.0, 2.0) && !Op::Lt.holds(2.0, 2.0));
        assert!(Op::Le.holds(2.0, 2.0) && !Op::Le.holds(2.0001, 2.0));
        assert!(Op::Le.holds(0.1 + 0.2, 0.3));
        assert!(Op::Gt.holds(3.0, 2.0) && !Op::Gt.holds(2.0, 2.0));
        assert!(Op::Ge.holds(2.0, 2.0) && !Op::Ge.holds(1.9999, 2.0));
        assert!(
            Op::Eq.holds(0.1 + 0.2, 0.3) && Op::Eq.holds(0.0, 0.0) && !Op::Eq.holds(1.0, 1.000001)
        );
        assert!(!Op::Eq.holds(f64::NAN, f64::NAN) && !Op::Lt.holds(f64::NAN, 1.0));
    }

    #[test]
    fn parses_baseline_arithmetic() {
        let s = "p95(latency) <= baseline * 1.10 + 5ms";
        let e = p(s);
        assert!(e.uses_baseline());
        let Rhs::Bin {
            op: BinOp::Add,
            lhs,
            rhs,
        } = &e.rhs
        else {
            panic!("{:?}", e.rhs)
        };
        let Rhs::Bin {
            op: BinOp::Mul,
            lhs: b,
            rhs: k,
        } = lhs.as_ref()
        else {
            panic!()
        };
        assert_eq!(
            **b,
            Rhs::Baseline {
                span: span_of(s, "baseline")
            }
        );
        assert_eq!(
            **k,
            Rhs::Literal {
                value: 1.10,
                dim: None,
                span: span_of(s, "1.10")
            }
        );
        assert_eq!(
            **rhs,
            Rhs::Literal {
                value: 0.005,
                dim: Some(Dimension::Time),
                span: span_of(s, "5ms")
            }
        );
        assert_eq!(e.rhs_span, Span::new(s.find("baseline").unwrap(), s.len()));
        assert!((eval_rhs(&e.rhs, Some(0.2)).unwrap() - 0.225).abs() < 1e-12);
        assert_eq!(eval_rhs(&e.rhs, None), None);
        assert_eq!(e.to_string(), "p95(latency) <= baseline * 1.1 + 5ms");

        // without spaces, precedence, parentheses, unary minus
        let e = p("p95(latency)<=baseline*1.1+5ms");
        assert!((eval_rhs(&e.rhs, Some(0.2)).unwrap() - 0.225).abs() < 1e-12);
        let e = p("p95(latency) < (baseline + 10ms) * 2");
        assert!((eval_rhs(&e.rhs, Some(0.1)).unwrap() - 0.22).abs() < 1e-12);
        assert_eq!(e.to_string(), "p95(latency) < (baseline + 10ms) * 2");
        let e = p("p95(latency) < baseline - -5ms");
        assert!((eval_rhs(&e.rhs, Some(0.1)).unwrap() - 0.105).abs() < 1e-12);
        let e = p("p95(latency) < -(1s - 3s) / 2");
        assert!((eval_rhs(&e.rhs, None).unwrap() - 1.0).abs() < 1e-12);
        assert!(!e.uses_baseline());
        let e = p("p95(latency) < 10s - 2s - 3s");
        assert_eq!(eval_rhs(&e.rhs, None), Some(5.0));
        let e = p("p95(latency) < 8s / 2 / 2");
        assert_eq!(eval_rhs(&e.rhs, None), Some(2.0));
        let e = p("p95(latency) < 1s / (2 - 2)");
        assert_eq!(eval_rhs(&e.rhs, None), None);
    }

    #[test]
    fn tokenizes_literals() {
        let lit = |s: &str| match p(&format!("x < {s}")).rhs {
            Rhs::Literal { value, dim, .. } => (value, dim),
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(lit("200/s"), (200.0, Some(Dimension::Rate)));
        assert_eq!(lit("3/min"), (3.0 / 60.0, Some(Dimension::Rate)));
        assert_eq!(lit("1m30s"), (90.0, Some(Dimension::Time)));
        assert_eq!(
            lit("64MiB"),
            (64.0 * 1024.0 * 1024.0, Some(Dimension::Bytes))
        );
        assert_eq!(lit("1e-3"), (1e-3, None));
        assert_eq!(lit("1.5e+2"), (150.0, None));
        assert_eq!(lit("1pp"), (1.0, Some(Dimension::Points)));
        assert_eq!(lit("1.1x"), (1.1, Some(Dimension::Ratio)));
        assert_eq!(lit("20dB"), (20.0, Some(Dimension::Decibels)));
        assert_eq!(lit("500µs").1, Some(Dimension::Time));
        assert_eq!(lit(".5"), (0.5, None));
        // `/` followed by a digit divides
        let e = p("x < 200/2");
        assert!(matches!(e.rhs, Rhs::Bin { op: BinOp::Div, .. }));
        // `-` after a unit subtracts
        let e = p("x < 2ms-1ms");
        assert!(matches!(e.rhs, Rhs::Bin { op: BinOp::Sub, .. }));
        assert!((eval_rhs(&e.rhs, None).unwrap() - 0.001).abs() < 1e-15);
        let e = p("x < 1e-3*2");
        assert_eq!(eval_rhs(&e.rhs, None), Some(2e-3));
    }

    #[test]
    fn syntax_errors_point_at_the_offending_token() {
        let cases: &[(&str, &str, &str)] = &[
            // (input, message fragment, text covered by the span)
            ("", "empty SLO expression", ""),
            (
                "p95 latency < 1s",
                "expected `(` after aggregation `p95`",
                "",
            ),
            (
                "p101(latency) < 1s",
                "percentile must be between 0 and 100",
                "p101",
            ),
            (
                "p0(latency) < 1s",
                "percentile must be between 0 and 100",
                "p0",
            ),
            (
                "p999(latency) < 1s",
                "percentile must be between 0 and 100",
                "p999",
            ),
            (
                "p99.9.9(latency) < 1s",
                "invalid percentile `p99.9.9`",
                "p99.9.9",
            ),
            ("avg(latency) < 1s", "unknown aggregation `avg`", "avg"),
            ("latency =< 1s", "unknown operator `=<`", "=<"),
            ("latency => 1s", "unknown operator `=>`", "=>"),
            ("latency = 1s", "`=` is not a comparison operator", "="),
            ("latency != 1s", "`!=` is not supported", "!="),
            (
                "p95(latency) 250ms",
                "expected a comparison operator after `p95(latency)`",
                "",
            ),
            ("p95(latency) <", "expected a threshold after `<`", ""),
            (
                "p95(latency) < 5parsecs",
                "unknown unit `parsecs`",
                "5parsecs",
            ),
            ("p95(latency < 1s", "unclosed `(`", "("),
            ("p95(latency{journey=a < 1s", "unclosed `{`", "{"),
            ("latency{journey=\"abc} < 1s", "unterminated string", "\""),
            (
                "p95(latency) < 1s foo",
                "unexpected `foo` after the threshold",
                "foo",
            ),
            ("p95(latency) < 1s)", "unmatched `)`", ")"),
            ("p95(latency) < (1s + 2s", "unclosed `(`", "("),
            (
                "p95(latency) < 250 ms",
                "unexpected `ms` after the threshold",
                "ms",
            ),
            ("latency{} < 1s", "empty label selector", "{}"),
            (
                "latency{journey==a} < 1s",
                "label selectors use a single `=`",
                "==",
            ),
            (
                "latency{journey!=a} < 1s",
                "only `=` label matchers are supported",
                "!=",
            ),
            (
                "latency{journey} < 1s",
                "expected `=` after label `journey`",
                "",
            ),
            (
                "latency{journey=a b} < 1s",
                "expected `,` or `}` after the value of `journey`",
                "b",
            ),
            ("latency{=a} < 1s", "expected a label name, found `=`", "="),
            (
                "p95(mean(latency)) < 1s",
                "aggregations cannot be nested",
                "mean",
            ),
            (
                "< 1s",
                "expected a metric name or an aggregation, found `<`",
                "<",
            ),
            (
                "p95() < 1s",
                "expected a metric name inside `p95(…)`, found `)`",
                ")",
            ),
            (
                "p95(latency) < p50(latency)",
                "expected a number, `baseline` or `(`, found `p50`",
                "p50",
            ),
            (
                "p95(latency) < baseline * ",
                "expected a number, `baseline` or `(`, found the end",
                "",
            ),
            (
                "p95(latency) < +5ms",
                "expected a number, `baseline` or `(`, found `+`",
                "+",
            ),
            (
                "p95(latency) < 1s < 2s",
                "unexpected `< 2s` after the threshold",
                "< 2s",
            ),
            ("p95(latency) < 1.2.3s", "unknown unit", "1.2.3s"),
            (
                "p95(latency) < 1e999s",
                "`1e999s` is out of range",
                "1e999s",
            ),
        ];
        for (input, msg, covered) in cases {
            let (m, c, _) = err(input);
            assert!(m.contains(msg), "{input}: message `{m}` lacks `{msg}`");
            assert_eq!(c, *covered, "{input}: span covers `{c}`, not `{covered}`");
        }
    }

    #[test]
    fn syntax_errors_have_exact_spans_and_hints() {
        let e = parse("p95 latency < 1s").unwrap_err();
        assert_eq!(e.span, Span::point(4));
        assert_eq!(e.hint.as_deref(), Some("write `p95(latency) < 1s`"));
        let e = parse("p95 latency{journey=checkout} < 1s").unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some("write `p95(latency{journey=checkout}) < 1s`")
        );
        let e = parse("latency =< 1s").unwrap_err();
        assert_eq!(e.span, Span::new(8, 10));
        assert_eq!(e.hint.as_deref(), Some("did you mean `<=`?"));
        let e = parse("latency = 1s").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("use `==` to compare for equality"));
        let e = parse("p999(latency) < 1s").unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some("write `p99.9` for the 99.9th percentile")
        );
        let e = parse("avg(latency) < 1s").unwrap_err();
        assert!(e.hint.unwrap().starts_with("did you mean `mean`?"));
        let e = parse("P95(latency) < 1s").unwrap_err();
        assert!(e.hint.unwrap().starts_with("did you mean `p95`?"));
        let e = parse("p95(latency) 250ms").unwrap_err();
        assert_eq!(e.span, Span::point(13));
        let e = parse("p95(latency) lte 250ms").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `<=`?"));
        let e = parse("p95(latency) <").unwrap_err();
        assert_eq!(e.span, Span::point(14));
        let e = parse("p95(latency) < 250 ms").unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some("write the unit right after the number: `250ms`")
        );
        let e = parse("p95(latency) < 1s and p99(latency) < 2s").unwrap_err();
        assert_eq!(e.span, Span::new(18, 39));
        assert!(e.hint.unwrap().contains("one SLO per entry"));
        let e = parse("p95(latency) < 250msec").unwrap_err();
        assert_eq!(e.span, Span::new(15, 22));
        assert!(e.hint.unwrap().starts_with("did you mean `ms`?"));
        let e = parse("p95(latency) < 64mib").unwrap_err();
        assert!(e.hint.unwrap().starts_with("did you mean `MiB`?"));
        let e = parse("p95(latency) < Baseline").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `baseline`?"));
        let e = parse("   ").unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.span),
            ("empty SLO expression", Span::new(0, 3))
        );
        let e = parse("p95(latency{journey=a) < 1s").unwrap_err();
        assert_eq!(e.span, Span::new(11, 12), "{e:?}");
    }

    #[test]
    fn never_panics_on_weird_input() {
        let long_parens = "p95(latency) < ".to_string() + &"(".repeat(10_000) + "1s";
        let long_neg = "p95(latency) < ".to_string() + &"-".repeat(10_000) + "1s";
        let long_sum = "p95(latency) < 1s".to_string() + &" + 1s".repeat(10_000);
        let inputs = [
            "(((((",
            "p",
            "{",
            "latency{a=",
            "\u{0}",
            ")",
            "}",
            "p(",
            "p95(",
            "p95(latency",
            "latency{a=\"",
            "latency{a=b,",
            "latency <",
            "latency < (",
            "latency < -",
            "latency < 1s +",
            "µ",
            "latency < µs",
            "latency < 5µ",
            "é < 1",
            "latency{é=1} < 1",
            "latency{a=é} < 1",
            "latency < 1é",
            "latency < 1/",
            "latency < 1/é",
            "latency < 1e-",
            "latency < 1e",
            "p99.(latency) < 1s",
            "p.9(x) < 1",
            "latency\u{0} < 1",
            "\"",
            "latency < \"1s\"",
            "x<1<",
            "latency < 1 1 1",
            "latency{a=b}{c=d} < 1",
            "p95(latency))) < 1s",
            "p95((latency)) < 1s",
            "==",
            "x == == 1",
            &long_parens,
            &long_neg,
            &long_sum,
        ];
        for input in inputs {
            let _ = parse(input);
            if let Err(e) = parse(input) {
                assert!(
                    e.span.start <= e.span.end && e.span.end <= input.len(),
                    "{input:?}: {e:?}"
                );
                assert!(
                    input.is_char_boundary(e.span.start) && input.is_char_boundary(e.span.end),
                    "{input:?}"
                );
            }
        }
        assert!(
            parse(&long_parens)
                .unwrap_err()
                .message
                .contains("nested too deeply")
        );
        assert!(parse(&long_sum).unwrap_err().message.contains("too long"));
    }

    fn check_errs(s: &str, kind: Kind) -> Vec<SloError> {
        check(&p(s), kind).expect_err(s)
    }

    #[test]
    fn check_accepts_valid_slos_and_returns_the_lhs_dimension() {
        let ok = |s: &str, kind: Kind| check(&p(s), kind).unwrap_or_else(|e| panic!("{s}: {e:?}"));
        assert_eq!(ok("p95(latency) < 250ms", Kind::Load), Dimension::Time);
        assert_eq!(ok("error_rate < 0.1%", Kind::Load), Dimension::Ratio);
        assert_eq!(
            ok("p99(latency{journey=checkout}) < 800ms", Kind::Load),
            Dimension::Time
        );
        assert_eq!(
            ok("p95(latency) <= baseline * 1.10 + 5ms", Kind::Load),
            Dimension::Time
        );
        assert_eq!(
            ok("p95(latency) <= baseline * 1.1x", Kind::Load),
            Dimension::Time
        );
        assert_eq!(
            ok("p95(latency) <= baseline * 110% - 1ms", Kind::Load),
            Dimension::Time
        );
        assert_eq!(ok("hit_ratio >= 0.85", Kind::Cache), Dimension::Ratio);
        assert_eq!(
            ok("hit_ratio >= baseline - 0.02", Kind::Cache),
            Dimension::Ratio
        );
        assert_eq!(
            ok("p99(latency{op=get}) < 2ms", Kind::Cache),
            Dimension::Time
        );
        assert_eq!(
            ok("origin_load_reduction >= 80%", Kind::Cache),
            Dimension::Ratio
        );
        assert_eq!(
            ok("size_ratio{scheme=int8} <= 0.30", Kind::Quantize),
            Dimension::Ratio
        );
        assert_eq!(
            ok("accuracy_drop{scheme=int8} <= 1pp", Kind::Quantize),
            Dimension::Points
        );
        assert_eq!(
            ok(
                "latency_ratio{scheme=int8,mode=quantized} <= 1.2x",
                Kind::Quantize
            ),
            Dimension::Ratio
        );
        assert_eq!(
            ok("sqnr{scheme=int8} >= 30dB", Kind::Quantize),
            Dimension::Decibels
        );
        assert_eq!(
            ok("usl.peak_concurrency >= 4", Kind::Scaling),
            Dimension::Count
        );
        assert_eq!(
            ok("failover.recovery_time < 5s", Kind::Scaling),
            Dimension::Time
        );
        assert_eq!(ok("count(latency) >= 1000", Kind::Load), Dimension::Count);
        assert_eq!(ok("count(errors) == 0", Kind::Load), Dimension::Count);
        assert_eq!(ok("errors{status=500} < 10", Kind::Load), Dimension::Count);
        assert_eq!(ok("rate(requests) >= 50/s", Kind::Load), Dimension::Rate);
        assert_eq!(ok("rate(latency) >= 50/s", Kind::Load), Dimension::Rate);
        assert_eq!(ok("throughput >= 100/s", Kind::Load), Dimension::Rate);
        assert_eq!(ok("target.rss < 512MiB", Kind::Load), Dimension::Bytes);
        assert_eq!(
            ok("prom.db_pool_in_use{pool=\"main db\"} < 50", Kind::Load),
            Dimension::Count
        );
    }

    #[test]
    fn unknown_metric_suggests_and_lists() {
        let s = "p95(latancy) < 1s";
        let errs = check_errs(s, Kind::Load);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].message, "unknown metric `latancy` for a load spec");
        assert_eq!(errs[0].span, span_of(s, "latancy"));
        let hint = errs[0].hint.as_deref().unwrap();
        assert!(hint.starts_with("did you mean `latency`? "), "{hint}");
        assert!(hint.contains("error_rate"));
        let errs = check_errs("zzz < 1", Kind::Cache);
        assert!(
            errs[0]
                .hint
                .as_deref()
                .unwrap()
                .starts_with("metrics of a cache spec: hit_ratio")
        );
        // prometheus metrics exist only for load
        assert_eq!(
            check_errs("prom.x < 1", Kind::Cache)[0].message,
            "unknown metric `prom.x` for a cache spec"
        );
    }

    #[test]
    fn labels_are_checked() {
        let s = "p95(latency{jorney=checkout}) < 1s";
        let errs = check_errs(s, Kind::Load);
        assert_eq!(errs[0].message, "`jorney` is not a label of `latency`");
        assert_eq!(errs[0].span, span_of(s, "jorney"));
        let hint = errs[0].hint.as_deref().unwrap();
        assert!(
            hint.starts_with("did you mean `journey`?") && hint.contains("`phase`"),
            "{hint}"
        );
        let errs = check_errs("target.cpu{x=y} < 1", Kind::Load);
        assert_eq!(
            errs[0].hint.as_deref(),
            Some("`target.cpu` takes no labels; remove the selector")
        );
        let s = "p95(latency{step=a,step=b}) < 1s";
        let errs = check_errs(s, Kind::Load);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].message, "label `step` given twice");
        assert_eq!(errs[0].span, Span::new(19, 23));
        assert!(
            check(
                &p("prom.http_requests{code=\"200\",method=get} > 1"),
                Kind::Load
            )
            .is_ok()
        );
    }

    #[test]
    fn aggregations_must_fit_the_shape() {
        let s = "latency < 1s";
        let errs = check_errs(s, Kind::Load);
        assert_eq!(
            errs[0].message,
            "`latency` is a distribution: pick an aggregation"
        );
        assert_eq!(errs[0].span, Span::new(0, 7));
        assert_eq!(errs[0].hint.as_deref(), Some("e.g. `p95(latency) < 1s`"));

        let s = "mean(hit_ratio) > 0.5";
        let errs = check_errs(s, Kind::Cache);
        assert_eq!(
            errs[0].message,
            "`mean` needs a distribution, but `hit_ratio` is a gauge"
        );
        assert_eq!(errs[0].span, Span::new(0, 4));
        let errs = check_errs("p95(errors) < 5", Kind::Load);
        assert_eq!(
            errs[0].message,
            "`p95` needs a distribution, but `errors` is a counter"
        );
        let errs = check_errs("rate(throughput) > 1/s", Kind::Load);
        assert_eq!(
            errs[0].message,
            "`rate` needs a distribution or a counter, but `throughput` is a gauge"
        );
        let errs = check_errs("count(usl.sigma) > 1", Kind::Scaling);
        assert_eq!(errs[0].span, Span::new(0, 5));
    }

    #[test]
    fn threshold_units_must_match() {
        let s = "p95(latency) < 5%";
        let errs = check_errs(s, Kind::Load);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].message, "expected a duration, found a ratio");
        assert_eq!(errs[0].span, span_of(s, "5%"));
        assert!(
            errs[0]
                .hint
                .as_deref()
                .unwrap()
                .contains(Dimension::Time.units_hint())
        );

        let s = "p95(latency) < 250";
        let errs = check_errs(s, Kind::Load);
        assert_eq!(errs[0].message, "`250` needs a unit");
        assert_eq!(errs[0].span, span_of(s, "250"));
        assert!(
            errs[0]
                .hint
                .as_deref()
                .unwrap()
                .contains(Dimension::Time.units_hint())
        );

        let s = "p95(latency) <= baseline + 5%";
        let errs = check_errs(s, Kind::Load);
        assert_eq!(errs[0].message, "expected a duration, found a ratio");
        assert_eq!(errs[0].span, span_of(s, "5%"));

        let s = "p95(latency) <= baseline + 5";
        let errs = check_errs(s, Kind::Load);
        assert_eq!(errs[0].message, "`5` needs a unit");
        assert_eq!(errs[0].span, Span::new(s.len() - 1, s.len()));

        let s = "accuracy_drop{scheme=int8} <= 1%";
        assert_eq!(
            check_errs(s, Kind::Quantize)[0].message,
            "expected percentage points, found a ratio"
        );
        let s = "accuracy_drop{scheme=int8} <= 1";
        assert_eq!(check_errs(s, Kind::Quantize)[0].message, "`1` needs a unit");
        let s = "rate(requests) > 50";
        assert_eq!(check_errs(s, Kind::Load)[0].message, "`50` needs a unit");
        let s = "count(requests) > 50/s";
        assert_eq!(
            check_errs(s, Kind::Load)[0].message,
            "expected a count, found a rate"
        );
        let s = "p95(latency) < baseline * 2ms";
        let errs = check_errs(s, Kind::Load);
        assert_eq!(errs[0].message, "cannot multiply a duration by a duration");
        assert_eq!(errs[0].span, span_of(s, "2ms"));
        let s = "p95(latency) < 1s / 0";
        let errs = check_errs(s, Kind::Load);
        assert_eq!(errs[0].message, "division by zero");
        assert_eq!(errs[0].span, span_of(s, "0"));
        let s = "p95(latency) < 2 / 1s";
        assert_eq!(
            check_errs(s, Kind::Load)[0].message,
            "cannot divide by a duration"
        );
    }

    #[test]
    fn check_collects_every_problem() {
        let s = "latency{jorney=a} < 5%";
        let errs = check_errs(s, Kind::Load);
        let msgs: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "`jorney` is not a label of `latency`",
                "`latency` is a distribution: pick an aggregation",
                "expected a duration, found a ratio"
            ]
        );
    }

    #[test]
    fn serializes_readably() {
        let e = p("p99.9(latency{journey=checkout}) <= baseline * 1.1");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["agg"][0], "p99.9");
        assert_eq!(v["op"], "<=");
        assert_eq!(v["rhs"]["bin"]["op"], "*");
        assert_eq!(v["rhs"]["bin"]["lhs"]["baseline"]["span"]["start"], 36);
    }
}
