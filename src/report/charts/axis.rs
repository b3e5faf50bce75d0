//! Axis scales: the unit a value is shown in, and round ("nice") ticks in that unit.

use crate::spec::units::Dimension;

pub use crate::engine::display::Unit;

/// The factor between canonical values and the numbers a tick label shows, so that ticks
/// are round in the shown unit (`24MiB`, not `23.842MiB`).
fn display_scale(unit: Unit, magnitude: f64) -> f64 {
    let m = magnitude.abs();
    match unit {
        Unit::Dim(Dimension::Bytes) => {
            let mut s = 1.0;
            while m >= s * 1024.0 && s < 1024f64.powi(3) {
                s *= 1024.0;
            }
            s
        }
        Unit::Dim(Dimension::Ratio) => 0.01,
        _ => 1.0,
    }
}

/// 1, 2, 2.5 or 5 times a power of ten, about `count` steps over `[lo, hi]`.
pub fn nice_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    nice_step_ticks(lo, hi, count, 0.0)
}

/// As [`nice_ticks`], with a step of at least `min_step`.
fn nice_step_ticks(lo: f64, hi: f64, count: usize, min_step: f64) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = ((hi - lo) / count.max(1) as f64).max(min_step);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let start = (lo / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut i = 0.0;
    while start + i * step <= hi + step * 1e-9 && ticks.len() < 50 {
        let t = start + i * step;
        // round away binary noise (0.15000000000000002)
        let t = (t / step).round() * step;
        let t = format!("{t:.12}").parse().unwrap_or(t);
        ticks.push(if t == 0.0 { 0.0 } else { t });
        i += 1.0;
    }
    ticks
}

/// Round ticks over `[lo, hi]` in `unit`'s shown scale; integer steps when `integer`.
pub fn ticks(unit: Unit, lo: f64, hi: f64, count: usize, integer: bool) -> Vec<f64> {
    let s = display_scale(unit, lo.abs().max(hi.abs()));
    let min_step = if integer { 1.0 / s } else { 0.0 };
    let mut out: Vec<f64> = Vec::new();
    for t in nice_step_ticks(lo / s, hi / s, count, min_step) {
        let t = if integer { (t * s).round() } else { t * s };
        if out.last() != Some(&t) {
            out.push(t);
        }
    }
    out
}

/// `[lo, hi]` of the finite `values`, widened to round tick bounds; zero-based for
/// non-negative data.
pub fn range(values: impl Iterator<Item = f64>, unit: Unit, integer: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if lo >= 0.0 {
        lo = 0.0;
    }
    if hi <= lo {
        hi = if hi == 0.0 { 1.0 } else { lo + hi.abs() };
    }
    let t = ticks(unit, lo, hi, 5, integer);
    let step = if t.len() > 1 { t[1] - t[0] } else { hi - lo };
    let last = t.last().copied().unwrap_or(hi);
    let top = if last >= hi * (1.0 - 1e-9) {
        last
    } else {
        last + step
    };
    let first = t.first().copied().unwrap_or(lo);
    let bottom = if first <= lo { first } else { first - step };
    (bottom.min(lo), top.max(hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_in_the_shown_unit() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(
            nice_ticks(0.0, 0.25, 5),
            vec![0.0, 0.05, 0.1, 0.15, 0.2, 0.25]
        );
        assert_eq!(nice_ticks(3.0, 3.0, 5), vec![3.0]);
        let mib = 1024.0 * 1024.0;
        let t = ticks(Dimension::Bytes.into(), 0.0, 25e6, 5, false);
        let labels: Vec<String> = t.iter().map(|v| Dimension::Bytes.format(*v)).collect();
        assert_eq!(labels, ["0B", "5MiB", "10MiB", "15MiB", "20MiB"], "{t:?}");
        assert_eq!(t[1], 5.0 * mib);
        // counts never get fractional ticks
        assert_eq!(
            ticks(Dimension::Count.into(), 0.0, 2.0, 5, true),
            vec![0.0, 1.0, 2.0]
        );
        assert_eq!(Unit::Times.format(1.2), "1.2x");
        assert_eq!(Unit::Plain.format(0.99941), "0.99941");
    }

    #[test]
    fn ranges_cover_the_data_with_round_bounds() {
        assert_eq!(
            range([3.0, 95.0].into_iter(), Dimension::Rate.into(), false),
            (0.0, 100.0)
        );
        assert_eq!(
            range([0.0, 2.0].into_iter(), Dimension::Count.into(), true),
            (0.0, 2.0)
        );
        assert_eq!(
            range(std::iter::empty(), Dimension::Count.into(), false),
            (0.0, 1.0)
        );
    }
}
