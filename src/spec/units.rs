//! Typed units: durations (`250ms`, `1m30s`), sizes (`64MiB`), rates (`200/s`),
//! percentages (`0.1%`), ratios (`3.5x`), percentage points (`1pp`) and decibels (`20dB`).
//! Every quantity is stored in a canonical unit: seconds, bytes, per second, a plain
//! fraction (0.25 = 25% = 0.25x), points, decibels.

use std::fmt;

/// What a metric or a literal measures. Comparing two different dimensions is an error.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Seconds.
    Time,
    /// Bytes.
    Bytes,
    /// Events per second.
    Rate,
    /// A fraction or multiplier: `0.85`, `85%`, `0.85x`.
    Ratio,
    /// Percentage points (`1pp`), for differences of percentages such as an accuracy drop.
    Points,
    /// Decibels (`20dB`), for signal-to-noise ratios.
    Decibels,
    /// A plain number: counts, concurrency, coefficients.
    Count,
}

impl Dimension {
    /// The units a user may write for this dimension, for hints.
    pub fn units_hint(self) -> &'static str {
        match self {
            Dimension::Time => "a duration such as `250ms`, `1.5s`, `2m` or `1m30s`",
            Dimension::Bytes => "a size such as `512B`, `64KiB`, `1.5MiB`, `2GB`",
            Dimension::Rate => "a rate such as `200/s`, `12000/min` or `3/ms`",
            Dimension::Ratio => "a ratio such as `0.85`, `85%` or `1.1x`",
            Dimension::Points => "percentage points such as `1pp` or `0.5pp`",
            Dimension::Decibels => "decibels such as `30dB`",
            Dimension::Count => "a plain number such as `4` or `1e-3`",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dimension::Time => "a duration",
            Dimension::Bytes => "a size",
            Dimension::Rate => "a rate",
            Dimension::Ratio => "a ratio",
            Dimension::Points => "percentage points",
            Dimension::Decibels => "decibels",
            Dimension::Count => "a count",
        }
    }

    /// Whether a number written without a unit means this dimension. Never for time, sizes,
    /// rates or points, where a bare number would be ambiguous.
    pub fn accepts_bare(self) -> bool {
        matches!(
            self,
            Dimension::Ratio | Dimension::Count | Dimension::Decibels
        )
    }

    /// Format a canonical value for humans, e.g. `0.25` seconds → `250ms`.
    pub fn format(self, v: f64) -> String {
        format_value(self, v)
    }
}

/// A number with the dimension its unit implies; `None` dimension for a bare number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity {
    /// The value in the dimension's canonical unit.
    pub value: f64,
    pub dim: Option<Dimension>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("empty value")]
    Empty,
    #[error("`{0}` is not a number")]
    NotANumber(String),
    #[error("unknown unit `{0}`")]
    UnknownUnit(String),
    #[error("the value must be finite")]
    NotFinite,
}

impl UnitError {
    pub fn hint(&self) -> Option<String> {
        match self {
            UnitError::UnknownUnit(_) => Some(
                "units: ns us ms s m h (time), B KB MB GB KiB MiB GiB (size), /s /min /h (rate), % x pp dB"
                    .into(),
            ),
            _ => None,
        }
    }
}

fn unit_factor(unit: &str) -> Option<(f64, Dimension)> {
    use Dimension::*;
    Some(match unit {
        "ns" => (1e-9, Time),
        "us" | "µs" => (1e-6, Time),
        "ms" => (1e-3, Time),
        "s" | "sec" => (1.0, Time),
        "m" | "min" => (60.0, Time),
        "h" => (3600.0, Time),
        "B" => (1.0, Bytes),
        "KB" | "kB" => (1e3, Bytes),
        "MB" => (1e6, Bytes),
        "GB" => (1e9, Bytes),
        "KiB" => (1024.0, Bytes),
        "MiB" => (1024.0 * 1024.0, Bytes),
        "GiB" => (1024.0 * 1024.0 * 1024.0, Bytes),
        "/s" => (1.0, Rate),
        "/ms" => (1e3, Rate),
        "/min" | "/m" => (1.0 / 60.0, Rate),
        "/h" => (1.0 / 3600.0, Rate),
        "%" => (0.01, Ratio),
        "x" => (1.0, Ratio),
        "pp" => (1.0, Points),
        "dB" | "db" => (1.0, Decibels),
        _ => return None,
    })
}

/// Length of the longest numeric prefix (`-1.5e3`) of `s`.
pub fn number_prefix_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits_start = i;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == digits_start || (i == digits_start + 1 && b[digits_start] == b'.') {
        return 0;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
            j += 1;
        }
        let exp_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    i
}

impl Quantity {
    /// Parse one literal: `250ms`, `1m30s`, `64MiB`, `200/s`, `0.1%`, `3.5x`, `1pp`, `4`.
    pub fn parse(text: &str) -> Result<Quantity, UnitError> {
        let s = text.trim();
        if s.is_empty() {
            return Err(UnitError::Empty);
        }
        let mut rest = s;
        let mut total = 0.0;
        let mut dim: Option<Dimension> = None;
        let mut parts = 0;
        while !rest.is_empty() {
            let n = number_prefix_len(rest);
            if n == 0 {
                return Err(if parts == 0 {
                    UnitError::NotANumber(s.to_string())
                } else {
                    UnitError::UnknownUnit(rest.to_string())
                });
            }
            let num: f64 = rest[..n]
                .replace('_', "")
                .parse()
                .map_err(|_| UnitError::NotANumber(s.into()))?;
            rest = rest[n..].trim_start();
            let unit_len = rest
                .char_indices()
                .find(|(i, c)| c.is_ascii_digit() || c.is_whitespace() || (*c == '.' && *i > 0))
                .map_or(rest.len(), |(i, _)| i);
            let unit = &rest[..unit_len];
            rest = rest[unit_len..].trim_start();
            parts += 1;
            if unit.is_empty() {
                if parts > 1 || !rest.is_empty() {
                    return Err(UnitError::UnknownUnit(s.to_string()));
                }
                if !num.is_finite() {
                    return Err(UnitError::NotFinite);
                }
                return Ok(Quantity {
                    value: num,
                    dim: None,
                });
            }
            let (factor, d) =
                unit_factor(unit).ok_or_else(|| UnitError::UnknownUnit(unit.to_string()))?;
            // Only durations may be compound (`1m30s`).
            if parts > 1 && (dim != Some(Dimension::Time) || d != Dimension::Time) {
                return Err(UnitError::UnknownUnit(s.to_string()));
            }
            dim = Some(d);
            total += num * factor;
        }
        if !total.is_finite() {
            return Err(UnitError::NotFinite);
        }
        Ok(Quantity { value: total, dim })
    }

    /// Parse and require a dimension (a bare number is accepted only where
    /// [`Dimension::accepts_bare`]).
    pub fn parse_as(text: &str, want: Dimension) -> Result<f64, String> {
        let q = Quantity::parse(text).map_err(|e| e.to_string())?;
        q.coerce(want).ok_or_else(|| match q.dim {
            None => format!(
                "`{}` needs a unit: expected {}",
                text.trim(),
                want.units_hint()
            ),
            Some(d) => format!("expected {}, found {}", want.name(), d.name()),
        })
    }

    /// The canonical value if this quantity can stand for `want`.
    pub fn coerce(&self, want: Dimension) -> Option<f64> {
        match self.dim {
            Some(d) if d == want => Some(self.value),
            // A ratio written as `%`/`x` may be compared with points? No: keep them apart.
            None if want.accepts_bare() => Some(self.value),
            _ => None,
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dim {
            Some(d) => f.write_str(&format_value(d, self.value)),
            None => f.write_str(&trim_float(self.value)),
        }
    }
}

/// Compact float formatting: up to 4 significant decimals, no trailing zeros.
pub fn trim_float(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() >= 1e6 || v.abs() < 1e-4 {
        return format!("{v:.3e}");
    }
    let decimals = if v.abs() >= 100.0 {
        1
    } else if v.abs() >= 1.0 {
        3
    } else {
        5
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

fn format_value(dim: Dimension, v: f64) -> String {
    match dim {
        Dimension::Time => {
            let a = v.abs();
            if a == 0.0 {
                "0s".into()
            } else if a < 1e-6 {
                format!("{}ns", trim_float(v * 1e9))
            } else if a < 1e-3 {
                format!("{}µs", trim_float(v * 1e6))
            } else if a < 1.0 {
                format!("{}ms", trim_float(v * 1e3))
            } else {
                format!("{}s", trim_float(v))
            }
        }
        Dimension::Bytes => {
            let a = v.abs();
            if a < 1024.0 {
                format!("{}B", trim_float(v))
            } else if a < 1024.0 * 1024.0 {
                format!("{}KiB", trim_float(v / 1024.0))
            } else if a < 1024.0 * 1024.0 * 1024.0 {
                format!("{}MiB", trim_float(v / (1024.0 * 1024.0)))
            } else {
                format!("{}GiB", trim_float(v / (1024.0 * 1024.0 * 1024.0)))
            }
        }
        Dimension::Rate => format!("{}/s", trim_float(v)),
        Dimension::Ratio => format!("{}%", trim_float(v * 100.0)),
        Dimension::Points => format!("{}pp", trim_float(v)),
        Dimension::Decibels => format!("{}dB", trim_float(v)),
        Dimension::Count => trim_float(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn parses_every_unit_family() {
        assert_eq!(
            q("250ms"),
            Quantity {
                value: 0.25,
                dim: Some(Dimension::Time)
            }
        );
        assert_eq!(q("1m30s").value, 90.0);
        assert_eq!(q("1h").value, 3600.0);
        assert!((q("500us").value - 5e-4).abs() < 1e-15);
        assert_eq!(q("64MiB").value, 64.0 * 1024.0 * 1024.0);
        assert_eq!(q("2KB").value, 2000.0);
        assert_eq!(
            q("200/s"),
            Quantity {
                value: 200.0,
                dim: Some(Dimension::Rate)
            }
        );
        assert_eq!(q("120/min").value, 2.0);
        assert!((q("0.1%").value - 0.001).abs() < 1e-15);
        assert_eq!(
            q("3.5x"),
            Quantity {
                value: 3.5,
                dim: Some(Dimension::Ratio)
            }
        );
        assert_eq!(q("1pp").dim, Some(Dimension::Points));
        assert_eq!(q("20dB").dim, Some(Dimension::Decibels));
        assert_eq!(
            q("4"),
            Quantity {
                value: 4.0,
                dim: None
            }
        );
        assert_eq!(q("1e-3").value, 1e-3);
        assert_eq!(q("-5ms").value, -0.005);
        assert_eq!(q("1_000").value, 1000.0);
    }

    #[test]
    fn rejects_bad_literals() {
        assert_eq!(Quantity::parse(""), Err(UnitError::Empty));
        assert!(matches!(
            Quantity::parse("fast"),
            Err(UnitError::NotANumber(_))
        ));
        assert_eq!(
            Quantity::parse("5parsecs"),
            Err(UnitError::UnknownUnit("parsecs".into()))
        );
        assert!(Quantity::parse("1MiB30s").is_err());
        assert!(Quantity::parse("1s 5").is_err());
        assert!(Quantity::parse("1e999s").is_err());
    }

    #[test]
    fn coercion_follows_dimension_rules() {
        assert_eq!(Quantity::parse_as("0.85", Dimension::Ratio), Ok(0.85));
        assert_eq!(Quantity::parse_as("85%", Dimension::Ratio), Ok(0.85));
        assert!(
            Quantity::parse_as("250", Dimension::Time)
                .unwrap_err()
                .contains("needs a unit")
        );
        assert!(
            Quantity::parse_as("250ms", Dimension::Bytes)
                .unwrap_err()
                .contains("expected a size")
        );
        assert!(Quantity::parse_as("1", Dimension::Points).is_err());
    }

    #[test]
    fn formats_for_humans() {
        assert_eq!(Dimension::Time.format(0.25), "250ms");
        assert_eq!(Dimension::Time.format(0.0000125), "12.5µs");
        assert_eq!(Dimension::Time.format(90.0), "90s");
        assert_eq!(Dimension::Bytes.format(1536.0), "1.5KiB");
        assert_eq!(Dimension::Ratio.format(0.001), "0.1%");
        assert_eq!(Dimension::Rate.format(200.0), "200/s");
    }
}
