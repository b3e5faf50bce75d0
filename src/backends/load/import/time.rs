//! RFC 3339 timestamps (`2026-12-02T10:00:00.123456789+01:00`) as seconds since the epoch.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds since the Unix epoch of an RFC 3339 date-time (fractional seconds, `Z` or a
/// `±HH:MM` offset), by the `time` crate's parser.
pub fn rfc3339(s: &str) -> Option<f64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        // `date -d 2026-12-02T10:00:00Z +%s`
        assert_eq!(rfc3339("2026-12-02T10:00:00Z"), Some(1_796_205_600.0));
        assert_eq!(rfc3339("2026-12-02T11:00:00+01:00"), Some(1_796_205_600.0));
        assert_eq!(rfc3339("2026-12-02T09:30:00-00:30"), Some(1_796_205_600.0));
        // k6 writes nanoseconds
        let t = rfc3339("2026-12-02T10:00:01.625742514+00:00").unwrap();
        assert!((t - 1_796_205_601.625_742).abs() < 1e-5, "{t}");
    }

    #[test]
    fn malformed_is_none() {
        for s in [
            "",
            "2026-12-02",
            "2026-12-02T10:00:00",
            "2026-13-02T10:00:00Z",
            "2026-12-02T10:00:00.Z",
            "2026-12-02T10:00:00+0100",
            "2026-12-02T10:00:00Zjunk",
            "yesterday",
        ] {
            assert_eq!(rfc3339(s), None, "{s}");
        }
    }
}
