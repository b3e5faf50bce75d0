//! Warm-up after a restart: how long until a restarted instance's rolling hit ratio is back
//! to its level before the restart.
//!
//! The level before is the hit ratio of the instance's last `window` reads before the
//! restart; after it, a window of as many reads slides forward one read at a time, and the
//! instance is warm again at the end of the first window whose hit ratio reaches
//! [`RECOVERED`] of that level (a noise margin: a window of 1000 reads at 80% has a standard
//! deviation of about 1.3 points).

/// The share of the pre-restart hit ratio that counts as recovered.
pub const RECOVERED: f64 = 0.95;
/// Fewest reads a window may have.
pub const MIN_WINDOW: usize = 100;
/// Most reads a window has.
pub const MAX_WINDOW: usize = 2000;

/// The outcome for one restart.
#[derive(Debug, Clone, PartialEq)]
pub enum Warmup {
    /// Seconds from the restart to the end of the first recovered window.
    Recovered { before: f64, seconds: f64 },
    /// The run ended first.
    NotRecovered { before: f64, best: f64 },
    /// Too few reads before the restart to know the level.
    Unknown,
}

/// `reads`: `(seconds, hit)` of one instance's L1 lookups, in time order; `restart`: when its
/// L1 was cleared.
pub fn warmup(reads: &[(f64, bool)], restart: f64) -> Warmup {
    let split = reads.partition_point(|(t, _)| *t < restart);
    let (before, after) = reads.split_at(split);
    let window = (before.len() / 4).clamp(MIN_WINDOW, MAX_WINDOW);
    if before.len() < window {
        return Warmup::Unknown;
    }
    let hits = |w: &[(f64, bool)]| w.iter().filter(|(_, h)| *h).count();
    let level = hits(&before[before.len() - window..]) as f64 / window as f64;
    let target = (level * RECOVERED * window as f64).ceil() as usize;
    if after.len() < window {
        return Warmup::NotRecovered {
            before: level,
            best: if after.is_empty() {
                0.0
            } else {
                hits(after) as f64 / after.len() as f64
            },
        };
    }
    let mut in_window = hits(&after[..window]);
    let mut best = in_window;
    for end in window..=after.len() {
        if end > window {
            in_window += usize::from(after[end - 1].1);
            in_window -= usize::from(after[end - 1 - window].1);
        }
        best = best.max(in_window);
        if in_window >= target {
            return Warmup::Recovered {
                before: level,
                seconds: (after[end - 1].0 - restart).max(0.0),
            };
        }
    }
    Warmup::NotRecovered {
        before: level,
        best: best as f64 / window as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_is_the_end_of_the_first_window_back_at_the_level() {
        // 4000 reads at 80% before t = 4 s, then a cold cache that warms linearly
        let mut reads = Vec::new();
        for i in 0..4000 {
            reads.push((i as f64 / 1000.0, i % 5 != 0));
        }
        for i in 0..6000 {
            let t = 4.0 + i as f64 / 1000.0;
            // hit ratio 0 at the restart, 80% after 3 s
            let p = (i as f64 / 3000.0).min(1.0) * 0.8;
            let hit = ((i * 7919) % 1000) as f64 / 1000.0 < p;
            reads.push((t, hit));
        }
        match warmup(&reads, 4.0) {
            Warmup::Recovered { before, seconds } => {
                assert!((before - 0.8).abs() < 1e-9);
                // the window (1000 reads = 1 s) reaches 76% once its middle is near 2.85 s
                assert!(seconds > 2.5 && seconds < 4.0, "{seconds}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn too_little_data_or_no_recovery_is_said() {
        let reads: Vec<(f64, bool)> = (0..50).map(|i| (i as f64, true)).collect();
        assert_eq!(warmup(&reads, 10.0), Warmup::Unknown);
        let mut reads: Vec<(f64, bool)> = (0..1000).map(|i| (i as f64 / 100.0, true)).collect();
        reads.extend((0..1000).map(|i| (10.0 + i as f64 / 100.0, false)));
        assert!(
            matches!(warmup(&reads, 10.0), Warmup::NotRecovered { before, best } if before == 1.0 && best == 0.0)
        );
    }
}
