//! SLO selectors and `phase` options of a load spec checked against the names the spec
//! declares: `journey=` against its journeys, `step=` against its step labels (a step's
//! `name`, or its request line as written), `phase=` and `phase = "…"` against its stage
//! labels (`stage-N` for an unlabelled stage). A value that matches nothing would only show
//! up after the whole run, as an SLO without data.

use super::decode::Ctx;
use super::diagnostic::did_you_mean;
use super::load::LoadDoc;
use super::slo::quote_value;
use super::source::Span;

/// Report every SLO label value and `phase` that names nothing declared in `doc`.
pub(super) fn check(doc: &LoadDoc, cx: &mut Ctx) {
    let journeys: Vec<String> = doc.journey.iter().map(|j| j.name.clone()).collect();
    let steps: Vec<String> = doc
        .journey
        .iter()
        .flat_map(|j| j.steps.iter())
        .map(|s| {
            s.name
                .as_ref()
                .map_or_else(|| s.request.written.clone(), |n| n.written.clone())
        })
        .collect();
    let phases: Vec<String> = doc
        .load
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.label()
                .map_or_else(|| format!("stage-{}", i + 1), str::to_string)
        })
        .collect();
    let stress = doc.load.stress.is_some();
    for entry in doc.slo.iter().flat_map(|l| l.0.iter()) {
        let (slo, at) = (&entry.0, &entry.1);
        for (sel, span) in slo.expr.selectors.iter().zip(&at.values) {
            let known = match sel.name.as_str() {
                "journey" => &journeys,
                "step" => &steps,
                "phase" if !(stress && sel.value.starts_with("stress-")) => &phases,
                _ => continue,
            };
            let what = format!("`{}={}`", sel.name, quote_value(&sel.value));
            unknown(cx, *span, &sel.name, &sel.value, &what, known);
        }
        if let (Some(phase), Some(span)) = (&slo.phase, at.phase)
            && !(stress && phase.starts_with("stress-"))
        {
            let what = format!("`phase = \"{phase}\"`");
            unknown(cx, span, "phase", phase, &what, &phases);
        }
    }
}

/// An error at `span` when `value` is not among `known` (the `label` values the spec declares).
fn unknown(cx: &mut Ctx, span: Span, label: &str, value: &str, what: &str, known: &[String]) {
    if known.iter().any(|k| k == value) {
        return;
    }
    let declared = match label {
        "journey" => "journey names",
        "step" => "step labels",
        _ => "stage labels",
    };
    cx.error::<()>(
        span,
        "slo::unknown-name",
        format!("{what} matches no {}", &declared[..declared.len() - 1]),
    );
    cx.label(format!("no {label} is called this"));
    let list = known
        .iter()
        .map(|k| format!("`{}`", quote_value(k)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut hint = match did_you_mean(value, known.iter().map(String::as_str)) {
        Some(s) => format!("did you mean `{}`? {declared} here: {list}", quote_value(s)),
        None => format!("{declared} here: {list}"),
    };
    if label == "step" {
        hint.push_str(
            "; a step without `name` is labelled by its request line, quoted in a selector: `step=\"GET /products\"`",
        );
    } else if label == "phase" {
        hint.push_str("; give a stage a `label` to name its phase");
    }
    cx.hint(hint);
}
