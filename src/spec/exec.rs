//! A spec of any kind with an `[exec]` table (`backend = "exec"`): perfspec runs a command of
//! the team's own and judges the JSON document it produces (printed on stdout, or written to
//! `$PERFSPEC_OUT/metrics.json`) by the spec's SLOs. The metrics it emits beyond the kind's
//! catalog are declared in `[exec.metrics]`, so `validate` checks SLOs against them.

use std::collections::BTreeMap;

use super::catalog::{self, Kind, MetricDef, Shape};
use super::decode::{Ctx, Decode, Duration, Interpolated, spec_table, word_enum};
use super::model::{RepeatCount, SloList, SpecName};
use super::node::{Node, Value};
use super::source::{Span, Spanned};
use super::units::Dimension;

/// The longest `timeout` a command may have (a day; longer runs need a real backend).
pub const MAX_TIMEOUT_S: f64 = 86_400.0;
/// The timeout when `[exec]` gives none.
pub const DEFAULT_TIMEOUT_S: f64 = 600.0;

spec_table! {
    /// A spec whose measurements come from a command perfspec runs.
    pub struct ExecDoc {
        /// `load`, `cache`, `scaling` or `quantize`: the catalog (and report section) the metrics belong to.
        kind: req String,
        /// Unique name of the spec (reports, baselines and `--filter` use it).
        name: req SpecName,
        description: opt String,
        /// Always `exec` (the default for a spec with `[exec]`).
        backend: opt Spanned<String>,
        /// Bound on this spec's run time; exceeding it stops the command and judges what it produced.
        max_duration: opt Duration,
        /// Run the command this many times (1 to 100): each run's document is kept, SLOs are judged on the pooled data.
        repeat: opt RepeatCount,
        /// With `repeat`: `PERFSPEC_SEED` differs in every repeat.
        reseed: opt bool,
        /// The command and the metrics it emits (read before `slo`, which is checked against them).
        exec: req ExecSection,
        /// SLOs on the kind's catalog metrics and the declared ones.
        slo: opt SloList,
    }
}

spec_table! {
    /// The `[exec]` table.
    pub struct ExecSection {
        /// argv: the program and its arguments (no shell; write `["sh", "-c", "…"]` for one), run in the spec's folder.
        command: req Spanned<Vec<Interpolated>>,
        /// Extra environment variables for the command (`${env:…}` values are redacted from outputs).
        env: opt BTreeMap<String, Interpolated>,
        /// How long the command may run (default 10m, at most 24h); then it is stopped and what it wrote is judged.
        timeout: opt Spanned<Duration>,
        /// Metrics the command emits beyond the kind's catalog, by name.
        metrics: opt DeclaredMetrics,
    }
}

spec_table! {
    /// One declared metric.
    pub struct MetricDecl {
        /// `duration` (seconds), `size` (bytes), `rate` (per second), `ratio`, `count`, `points` or `decibels`.
        dimension: req MetricDimension,
        /// `histogram` (samples: `p95(…)`, `mean`, …), `gauge` (one value per label set) or `counter` (summed over label sets); default `histogram` for a duration, else `gauge`.
        shape: opt MetricShape,
        /// The labels its values carry (SLO selectors may only use these).
        labels: opt Vec<Spanned<String>>,
        /// One line for the report.
        help: opt String,
    }
}

word_enum! {
    /// The dimension of a declared metric.
    pub enum MetricDimension {
        Duration = "duration", Size = "size", Rate = "rate", Ratio = "ratio",
        Count = "count", Points = "points", Decibels = "decibels",
    }
}

word_enum! {
    /// How a declared metric is recorded.
    pub enum MetricShape { Histogram = "histogram", Gauge = "gauge", Counter = "counter" }
}

impl MetricDimension {
    pub fn dimension(self) -> Dimension {
        match self {
            MetricDimension::Duration => Dimension::Time,
            MetricDimension::Size => Dimension::Bytes,
            MetricDimension::Rate => Dimension::Rate,
            MetricDimension::Ratio => Dimension::Ratio,
            MetricDimension::Count => Dimension::Count,
            MetricDimension::Points => Dimension::Points,
            MetricDimension::Decibels => Dimension::Decibels,
        }
    }
}

/// `[exec.metrics]`: the declared metrics, checked (names, no clash with the catalog) and
/// made known to the SLO checks of this spec as they are decoded.
#[derive(Debug, Clone, Default)]
pub struct DeclaredMetrics(pub Vec<MetricDef>);

impl schemars::JsonSchema for DeclaredMetrics {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DeclaredMetrics".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        BTreeMap::<String, MetricDecl>::json_schema(generator)
    }
}

/// A metric or label name: a lowercase letter, then lowercase letters, digits, `_` or `.`.
pub fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
}

impl Decode for DeclaredMetrics {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        let Value::Table(entries) = &node.value else {
            return cx.type_error(node, "a table of metric names");
        };
        let kind = cx.kind;
        let mut out = Vec::new();
        let mut ok = true;
        for (key, value) in entries {
            let name_ok = check_name(&key.name, key.span, kind, cx);
            match (MetricDecl::decode(value, cx), name_ok) {
                (Some(d), true) => match d.def(&key.name, cx) {
                    Some(def) => out.push(def),
                    None => ok = false,
                },
                _ => ok = false,
            }
        }
        // the SLOs of this spec (decoded after `[exec]`) are checked against these
        cx.declared.extend(out.iter().copied());
        ok.then_some(DeclaredMetrics(out))
    }
}

/// A declared name is well formed and not one of the kind's catalog metrics.
fn check_name(name: &str, span: Span, kind: Option<Kind>, cx: &mut Ctx) -> bool {
    if !is_metric_name(name) {
        cx.error::<()>(
            span,
            "spec::exec-metric",
            format!("`{name}` is not a metric name"),
        );
        cx.label("not a metric name");
        cx.hint(
            "a lowercase letter, then lowercase letters, digits, `_` or `.` (e.g. `render_time`)",
        );
        return false;
    }
    if let Some(kind) = kind
        && catalog::lookup(kind, name).is_some()
    {
        cx.error::<()>(
            span,
            "spec::exec-metric",
            format!("`{name}` is a {kind} metric already"),
        );
        cx.label("in the catalog");
        cx.hint(format!(
            "remove it from `metrics`: the command may emit `{name}` as the catalog describes it (README, \"Metric catalog\")"
        ));
        return false;
    }
    true
}

impl MetricDecl {
    /// The catalog entry this declaration stands for; its labels are checked.
    fn def(&self, name: &str, cx: &mut Ctx) -> Option<MetricDef> {
        let dim = self.dimension.dimension();
        let shape = match self.shape {
            Some(MetricShape::Histogram) => Shape::Histogram,
            Some(MetricShape::Gauge) => Shape::Gauge,
            Some(MetricShape::Counter) => Shape::Counter,
            None if dim == Dimension::Time => Shape::Histogram,
            None => Shape::Gauge,
        };
        let mut labels = Vec::new();
        let mut ok = true;
        for l in self.labels.iter().flatten() {
            if !is_metric_name(&l.value) || l.value.contains('.') {
                cx.error::<()>(
                    l.span,
                    "spec::exec-metric",
                    format!("`{}` is not a label name", l.value),
                );
                cx.hint("a lowercase letter, then lowercase letters, digits or `_`");
                ok = false;
            } else if labels.contains(&l.value.as_str()) {
                cx.error::<()>(
                    l.span,
                    "spec::exec-metric",
                    format!("label `{}` given twice", l.value),
                );
                ok = false;
            } else {
                labels.push(catalog::intern(&l.value));
            }
        }
        ok.then(|| MetricDef {
            name: catalog::intern(name),
            dim,
            shape,
            labels: catalog::intern_list(&labels),
            help: catalog::intern(self.help.as_deref().unwrap_or("declared in [exec.metrics]")),
        })
    }
}

impl ExecDoc {
    /// Cross-field checks: the backend, a command that is not empty, the timeout's range.
    pub fn validate(&self, cx: &mut Ctx) {
        if let Some(b) = &self.backend
            && b.value != "exec"
        {
            cx.error::<()>(
                b.span,
                "spec::backend",
                format!(
                    "a spec with `[exec]` runs on the `exec` backend, not `{}`",
                    b.value
                ),
            );
            cx.hint("remove `backend` (or write `backend = \"exec\"`); to use a built-in backend, drop `[exec]`");
        }
        let c = &self.exec.command;
        if c.value.first().is_none_or(|p| p.value.trim().is_empty()) {
            cx.error::<()>(c.span, "spec::exec", "the command is empty");
            cx.label("no program");
            cx.hint(cx.in_syntax("e.g. `command = [\"sh\", \"bench.sh\"]` (relative to the spec)"));
        }
        if let Some(t) = &self.exec.timeout
            && !(t.value.0 > 0.0 && t.value.0 <= MAX_TIMEOUT_S)
        {
            cx.error::<()>(
                t.span,
                "spec::range",
                format!(
                    "`timeout` is {}: a command may run from a moment to {}",
                    t.value,
                    Duration(MAX_TIMEOUT_S)
                ),
            );
            cx.label("out of range");
            cx.hint("for longer experiments, use `max_duration` with a built-in backend");
        }
    }

    /// The timeout in seconds (the default when none is given).
    pub fn timeout_s(&self) -> f64 {
        self.exec
            .timeout
            .as_ref()
            .map_or(DEFAULT_TIMEOUT_S, |t| t.value.0)
    }

    /// The declared metrics (none when `[exec.metrics]` is absent).
    pub fn declared(&self) -> &[MetricDef] {
        self.exec.metrics.as_ref().map_or(&[], |m| &m.0)
    }
}
