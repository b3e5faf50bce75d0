//! What a memcached tier measured: each node's share of the calls and of the keys, the
//! imbalance, the fraction of the key space each ring change moved, and around every
//! `kill_node` / `add_node` event the extra misses, the hit ratio after it and the time the
//! hit ratio took to come back.

use std::sync::atomic::Ordering;

use super::ring::remap_ratio;
use super::tier::stat;
use crate::backends::cache::run_state::{Memcached, Point, lock};
use crate::backends::cache::stats::with;
use crate::backends::cache::warmup::{Warmup, warmup};
use crate::engine::metrics::Measurements;

/// The window after an event whose misses count toward `miss_spike`, in seconds.
pub const SPIKE_WINDOW: f64 = 1.0;
/// How far back the miss rate before an event is taken, in seconds.
const BEFORE_WINDOW: f64 = 1.0;

/// `(lookups, misses)` of the timeline between `from` and `to` seconds.
fn window(timeline: &[(f64, bool)], from: f64, to: f64) -> (u64, u64) {
    let a = timeline.partition_point(|(t, _)| *t < from);
    let b = timeline.partition_point(|(t, _)| *t < to);
    let w = &timeline[a..b];
    (
        w.len() as u64,
        w.iter().filter(|(_, hit)| !hit).count() as u64,
    )
}

/// Misses in the [`SPIKE_WINDOW`] after `t` beyond what the miss rate before `t` predicts.
pub fn miss_spike(timeline: &[(f64, bool)], t: f64) -> Option<f64> {
    let (n0, m0) = window(timeline, t - BEFORE_WINDOW, t);
    let (n1, m1) = window(timeline, t, t + SPIKE_WINDOW);
    (n0 > 0 && n1 > 0).then(|| m1 as f64 - m0 as f64 / n0 as f64 * n1 as f64)
}

impl Memcached {
    /// Emit the node metrics into `m`; returns notes for the report.
    pub async fn measure(&self, point: &Point, keys: u64, m: &mut Measurements) -> Vec<String> {
        let at = point.prefix();
        let mut notes = Vec::new();
        let suffixes = point.suffixes();
        let put = |m: &mut Measurements, metric: &str, pairs: &[(&str, String)], v: f64| {
            for s in &suffixes {
                m.scalar(metric, with(s, pairs), v);
            }
        };
        let tier = &self.tier;
        if !tier.proxied {
            let slots = tier.slots();
            let total: u64 = slots.iter().map(|s| s.ops.load(Ordering::Relaxed)).sum();
            if total > 0 {
                let shares: Vec<f64> = slots
                    .iter()
                    .map(|s| s.ops.load(Ordering::Relaxed) as f64 / total as f64)
                    .collect();
                for (i, (s, share)) in slots.iter().zip(&shares).enumerate() {
                    let node = [("node", (i + 1).to_string())];
                    put(m, "node_share", &node, *share);
                    put(
                        m,
                        "node_misses",
                        &node,
                        s.misses.load(Ordering::Relaxed) as f64,
                    );
                    put(
                        m,
                        "node_errors",
                        &node,
                        s.errors.load(Ordering::Relaxed) as f64,
                    );
                }
                let max = shares.iter().copied().fold(0.0, f64::max);
                put(m, "imbalance", &[], max * shares.len() as f64);
            }
        } else {
            notes.push(format!("{at}node_share is measured by perfspec's own ring: behind twemproxy only each node's keys (node_keys) are read"));
        }
        for (i, (addr, stats)) in tier.node_stats().await.into_iter().enumerate() {
            match stats {
                Some(s) => put(m, "node_keys", &[("node", (i + 1).to_string())], stat(&s, "curr_items") as f64),
                None => notes.push(format!("{at}memcached node {} ({addr}) did not answer at the end of the run: no node_keys", i + 1)),
            }
        }
        let names: Vec<Vec<u8>> = (0..keys).map(|k| tier.key(k).into_bytes()).collect();
        for (n, c) in lock(&tier.changes).iter().enumerate() {
            let r = remap_ratio(&c.before, &c.after, names.iter().map(Vec::as_slice));
            let t = c.at.saturating_duration_since(tier.t0()).as_secs_f64();
            put(m, "remap_ratio", &[("change", (n + 1).to_string())], r);
            if n == 0 {
                put(m, "remap_ratio", &[], r);
            }
            notes.push(format!(
                "{at}at {t:.2}s: {}; {:.1}% of the {keys} keys moved to another node",
                c.what,
                r * 100.0
            ));
        }
        let timeline = lock(&tier.timeline);
        for (n, (t, what)) in lock(&self.events).iter().enumerate() {
            let event = [("event", (n + 1).to_string())];
            if let Some(s) = miss_spike(&timeline, *t) {
                put(m, "miss_spike", &event, s);
            }
            let (lookups, misses) = window(&timeline, *t, f64::INFINITY);
            if lookups > 0 {
                put(
                    m,
                    "hit_ratio_after",
                    &event,
                    1.0 - misses as f64 / lookups as f64,
                );
            }
            match warmup(&timeline, *t) {
                Warmup::Recovered { before, seconds } => {
                    put(m, "recovery_time", &event, seconds);
                    notes.push(format!("{at}{what} at {t:.2}s: the l2 hit ratio was back to 95% of {before:.3} after {seconds:.2}s"));
                }
                Warmup::NotRecovered { before, best } => notes.push(format!("{at}{what} at {t:.2}s: the l2 hit ratio did not get back to 95% of {before:.3} before the run ended (best window {best:.3}): no recovery_time")),
                Warmup::Unknown => notes.push(format!("{at}{what} at {t:.2}s: too early to know the l2 hit ratio before: no recovery_time")),
            }
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miss_spike_counts_misses_beyond_the_rate_before() {
        // 10 lookups a second; 20% misses before 10 s, all misses for the second after
        let mut tl = Vec::new();
        for i in 0..200 {
            let t = i as f64 / 10.0;
            let hit = if (10.0..11.0).contains(&t) {
                false
            } else {
                i % 5 != 0
            };
            tl.push((t, hit));
        }
        let s = miss_spike(&tl, 10.0).unwrap();
        assert!((s - 8.0).abs() < 1e-9, "{s}");
        assert_eq!(miss_spike(&tl, 0.0), None);
        assert_eq!(window(&tl, 10.0, 11.0), (10, 10));
    }
}
