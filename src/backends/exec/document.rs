//! The JSON document an `exec` command produces (`perfspec schema --exec` prints its
//! schema), and its checked conversion into [`Measurements`].
//!
//! Values are in the metric's canonical unit (seconds, bytes, per second, a fraction) unless
//! `scale` says otherwise: `"scale": 0.001` reads milliseconds. Every problem names where it
//! is (`histograms[2].labels`): a document is all right or refused as a whole.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;

use crate::engine::metrics::{HistogramEntry, Labels, Measurements};
use crate::spec::catalog::{self, Kind, MetricDef, Shape};
use crate::spec::units::Dimension;

/// The version of the document this build reads.
pub const VERSION: u32 = 1;
/// Most values one document may carry (samples, histogram counts aside).
const MAX_VALUES: usize = 10_000_000;

/// What the command prints (or writes to `$PERFSPEC_OUT/metrics.json`).
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "perfspec exec document",
    description = "What a command run by `backend = \"exec\"` prints on stdout or writes to $PERFSPEC_OUT/metrics.json. Values are in the metric's canonical unit (seconds, bytes, per second, a fraction of 1) unless `scale` converts them."
)]
pub struct Document {
    /// Always 1.
    pub version: u32,
    /// Seconds the measured part took (the denominator of `rate(…)`); default: how long the command ran.
    #[serde(default)]
    pub elapsed_s: Option<f64>,
    /// One value per metric and label set (gauges and counters).
    #[serde(default)]
    pub scalars: Vec<ScalarIn>,
    /// Raw observations of a distribution metric (recorded into an HDR histogram, 3 significant digits).
    #[serde(default)]
    pub samples: Vec<SamplesIn>,
    /// HDR histograms (V2 encoding, optionally DEFLATE-compressed, base64) of a distribution metric.
    #[serde(default)]
    pub histograms: Vec<HistogramIn>,
    /// Time series: `[seconds since the start, value]` points.
    #[serde(default)]
    pub series: Vec<SeriesIn>,
    /// Error messages, counted.
    #[serde(default)]
    pub errors: Vec<ErrorIn>,
    /// Facts the report should state.
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScalarIn {
    pub metric: String,
    #[serde(default)]
    pub labels: Labels,
    pub value: f64,
    /// Multiplier to the canonical unit (0.001 for milliseconds); default 1.
    #[serde(default)]
    pub scale: Option<f64>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SamplesIn {
    pub metric: String,
    #[serde(default)]
    pub labels: Labels,
    pub values: Vec<f64>,
    /// Multiplier to the canonical unit (0.001 for milliseconds); default 1.
    #[serde(default)]
    pub scale: Option<f64>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistogramIn {
    pub metric: String,
    #[serde(default)]
    pub labels: Labels,
    /// What one recorded integer is in the canonical unit (1e-6: microseconds of a duration).
    pub scale: f64,
    /// The histogram, HDR V2 (or V2 + DEFLATE) serialized, base64.
    pub hdr: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesIn {
    pub metric: String,
    #[serde(default)]
    pub labels: Labels,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorIn {
    pub message: String,
    #[serde(default)]
    pub labels: Labels,
    /// How many times it happened (default 1).
    #[serde(default)]
    pub count: Option<u64>,
}

/// The JSON Schema of [`Document`] (`perfspec schema --exec`).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Document>();
    let mut v = serde_json::to_value(schema).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "$id".into(),
            "https://perfspec.dev/schemas/exec.schema.json".into(),
        );
    }
    v
}

/// Parse `text` as a document: a syntax or shape error names its line and column.
pub fn parse(text: &str) -> Result<Document, String> {
    let doc: Document = serde_json::from_str(text).map_err(|e| {
        format!(
            "line {} column {}: {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        )
    })?;
    if doc.version != VERSION {
        return Err(format!(
            "`version` is {}; this perfspec reads version {VERSION}",
            doc.version
        ));
    }
    Ok(doc)
}

/// serde_json's message without its trailing " at line L column C" (stated first instead).
fn strip_position(msg: &str) -> &str {
    msg.rfind(" at line ").map_or(msg, |i| &msg[..i])
}

/// The metrics a document of `kind` may hold: the catalog's and the declared ones.
pub struct Known<'a> {
    pub kind: Kind,
    pub declared: &'a [MetricDef],
}

impl Known<'_> {
    fn def(&self, metric: &str, at: &str) -> Result<&MetricDef, String> {
        catalog::lookup(self.kind, metric)
            .or_else(|| self.declared.iter().find(|d| d.name == metric))
            .ok_or_else(|| {
                format!(
                    "{at}: `{metric}` is neither a {} metric nor declared in `[exec.metrics]`",
                    self.kind
                )
            })
    }

    /// The metric exists, takes these labels and has one of `shapes`.
    fn check(
        &self,
        metric: &str,
        labels: &Labels,
        shapes: &[Shape],
        at: &str,
    ) -> Result<&MetricDef, String> {
        let def = self.def(metric, at)?;
        if !shapes.contains(&def.shape) {
            let wants = match def.shape {
                Shape::Histogram => "`samples` or `histograms`",
                Shape::Gauge | Shape::Counter => "`scalars`",
            };
            let shape = match def.shape {
                Shape::Histogram => "distribution",
                Shape::Gauge => "gauge",
                Shape::Counter => "counter",
            };
            return Err(format!(
                "{at}: `{metric}` is a {shape}: it belongs in {wants}"
            ));
        }
        if let Some(l) = labels.keys().find(|l| !catalog::allows_label(def, l)) {
            let allowed = if def.labels.is_empty() {
                "none".to_string()
            } else {
                def.labels.join(", ")
            };
            return Err(format!(
                "{at}: `{l}` is not a label of `{metric}` (its labels: {allowed})"
            ));
        }
        Ok(def)
    }
}

fn finite(v: f64, at: &str) -> Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{at}: values must be finite numbers"))
    }
}

fn scale_of(scale: Option<f64>, at: &str) -> Result<f64, String> {
    match scale {
        None => Ok(1.0),
        Some(s) if s.is_finite() && s > 0.0 => Ok(s),
        Some(_) => Err(format!("{at}.scale: must be a positive number")),
    }
}

/// The document as measurements of `known`'s kind: every metric known, every label allowed,
/// every value finite (and not negative where it is recorded in a histogram).
pub fn measurements(doc: Document, known: &Known, ran_s: f64) -> Result<Measurements, String> {
    let mut m = Measurements {
        elapsed_s: match doc.elapsed_s {
            Some(e) if e.is_finite() && e >= 0.0 => e,
            Some(_) => return Err("`elapsed_s`: must be a number of seconds, 0 or more".into()),
            None => ran_s,
        },
        ..Measurements::default()
    };
    let total: usize = doc.samples.iter().map(|s| s.values.len()).sum::<usize>()
        + doc.series.iter().map(|s| s.points.len()).sum::<usize>();
    if total > MAX_VALUES {
        return Err(format!(
            "{total} values: at most {MAX_VALUES}; send an HDR histogram instead of raw samples"
        ));
    }
    for (i, s) in doc.scalars.into_iter().enumerate() {
        let at = format!("scalars[{i}]");
        let def = known.check(&s.metric, &s.labels, &[Shape::Gauge, Shape::Counter], &at)?;
        let v = finite(s.value, &at)? * scale_of(s.scale, &at)?;
        if def.shape == Shape::Counter && catalog::lookup(known.kind, def.name).is_none() {
            m.counters.push(def.name.to_string());
        }
        m.scalar(&s.metric, s.labels, v);
    }
    for (i, s) in doc.samples.into_iter().enumerate() {
        let at = format!("samples[{i}]");
        let def = *known.check(&s.metric, &s.labels, &[Shape::Histogram], &at)?;
        let scale = scale_of(s.scale, &at)?;
        let h = hist_for(&mut m, &def, s.labels, &at)?;
        for v in s.values {
            let v = finite(v, &at)? * scale;
            if v < 0.0 {
                return Err(format!("{at}: a negative value ({v}) cannot be recorded"));
            }
            h.record(v);
        }
    }
    for (i, h) in doc.histograms.into_iter().enumerate() {
        let at = format!("histograms[{i}]");
        known.check(&h.metric, &h.labels, &[Shape::Histogram], &at)?;
        add_histogram(&mut m, h, &at)?;
    }
    for (i, s) in doc.series.into_iter().enumerate() {
        let at = format!("series[{i}]");
        known.def(&s.metric, &at)?;
        for &(t, v) in &s.points {
            finite(t, &at)?;
            finite(v, &at)?;
        }
        m.push_series(&s.metric, s.labels, s.points);
    }
    for e in doc.errors {
        m.error_samples_n(&e.message, e.labels, e.count.unwrap_or(1));
    }
    m.notes = doc.notes;
    m.counters.sort();
    m.counters.dedup();
    Ok(m)
}

/// The histogram raw samples of `metric{labels}` go to. HDR histograms record integers:
/// durations are kept in microseconds, everything else in thousandths of its unit (3
/// significant digits either way).
fn hist_for<'m>(
    m: &'m mut Measurements,
    def: &MetricDef,
    labels: Labels,
    at: &str,
) -> Result<&'m mut HistogramEntry, String> {
    let scale = if def.dim == Dimension::Time {
        1e-6
    } else {
        1e-3
    };
    let h = m.histogram(def.name, labels, scale);
    if h.scale != scale {
        return Err(format!(
            "{at}: `{}` with these labels is also given as a histogram of another scale",
            def.name
        ));
    }
    Ok(h)
}

fn add_histogram(m: &mut Measurements, h: HistogramIn, at: &str) -> Result<(), String> {
    if !(h.scale.is_finite() && h.scale > 0.0) {
        return Err(format!("{at}.scale: must be a positive number"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(h.hdr.trim().as_bytes())
        .map_err(|e| format!("{at}.hdr: not base64: {e}"))?;
    let mut hist: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| format!("{at}.hdr: not an HDR histogram (V2): {e:?}"))?;
    hist.auto(true);
    let entry = m.histogram(&h.metric, h.labels, h.scale);
    if entry.scale != h.scale {
        return Err(format!(
            "{at}: `{}` with these labels is given twice with different scales",
            h.metric
        ));
    }
    entry
        .hist
        .add(&hist)
        .map_err(|e| format!("{at}: cannot merge: {e:?}"))?;
    Ok(())
}
