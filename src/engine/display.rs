//! The unit a value is shown in: a catalog dimension, or — for ratios — the form the SLO
//! was written in (`speedup >= 1.2x` shows `6x`, `usl.r_squared > 0.99` shows `0.9994`,
//! `efficiency > 80%` shows `93.1%`).

use crate::spec::slo::{Rhs, SloExpr};
use crate::spec::units::{Dimension, trim_float};

/// How a value is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    /// The dimension's own format (ratios as percent).
    Dim(Dimension),
    /// A multiplier: `1.2x`.
    Times,
    /// A plain number (R², coefficients).
    Plain,
}

impl From<Dimension> for Unit {
    fn from(d: Dimension) -> Unit {
        Unit::Dim(d)
    }
}

impl Unit {
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Dim(d) => d.format(v),
            Unit::Times => format!("{}x", trim_float(v)),
            Unit::Plain => trim_float(v),
        }
    }

    /// The unit of an SLO's values: for a ratio, the form of the first literal of its
    /// threshold as written in `text` (`x`, `%` or a bare number); otherwise (and for a
    /// threshold relative to `baseline`) `dim`.
    pub fn written(expr: &SloExpr, text: &str, dim: Dimension) -> Unit {
        if dim != Dimension::Ratio || expr.rhs.uses_baseline() {
            return dim.into();
        }
        let Some(span) = first_literal(&expr.rhs) else {
            return dim.into();
        };
        match text.get(span.start..span.end).map(str::trim_end) {
            Some(lit) if lit.ends_with('x') => Unit::Times,
            Some(lit) if lit.ends_with('%') => dim.into(),
            Some(lit) if lit.parse::<f64>().is_ok() => Unit::Plain,
            _ => dim.into(),
        }
    }

    /// [`Unit::written`] for an SLO known only by its text (a results file).
    pub fn of_text(text: &str, dim: Dimension) -> Unit {
        match crate::spec::slo::parse(text) {
            Ok(expr) => Unit::written(&expr, text, dim),
            Err(_) => dim.into(),
        }
    }
}

fn first_literal(rhs: &Rhs) -> Option<crate::spec::source::Span> {
    match rhs {
        Rhs::Literal { span, .. } => Some(*span),
        Rhs::Baseline { .. } => None,
        Rhs::Neg(x) => first_literal(x),
        Rhs::Bin { lhs, rhs, .. } => first_literal(lhs).or_else(|| first_literal(rhs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_shown_as_written() {
        let of = |t: &str| Unit::of_text(t, Dimension::Ratio);
        assert_eq!(of("speedup{replicas=6} >= 1.2x"), Unit::Times);
        assert_eq!(of("usl.r_squared > 0.99"), Unit::Plain);
        assert_eq!(of("efficiency > 80%"), Unit::Dim(Dimension::Ratio));
        assert_eq!(of("speedup > baseline * 0.9"), Unit::Dim(Dimension::Ratio));
        assert_eq!(
            Unit::of_text("p95(latency) < 2s", Dimension::Time),
            Unit::Dim(Dimension::Time)
        );
        assert_eq!(Unit::Times.format(6.0), "6x");
        assert_eq!(Unit::Plain.format(0.99941), "0.99941");
    }
}
