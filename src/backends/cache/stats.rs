//! What one run counted, and how it becomes metrics (DESIGN §2, cache). Counters are atomics
//! per app instance; latencies are HDR histograms kept per worker and merged losslessly.
//!
//! Every label combination a user may select is emitted as its own scalar (`hit_ratio`,
//! `hit_ratio{tier=l1}`, `hit_ratio{instance=2}`, `hit_ratio{tier=l1,instance=2}`, …), so a
//! selection finds an exact value and never sums gauges. In a sweep every metric also carries
//! `capacity=<value>`, and the representative point is emitted without it as well.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

use crate::engine::metrics::{Labels, Measurements};

use super::reference::Bounds;
use super::workload::OpKind;

/// Tolerance above the Bélády optimum before a hit ratio is called impossible.
pub const OPTIMUM_TOLERANCE: f64 = 0.005;

/// Counters of one app instance. Every read (a get, the read of a read-modify-write, each
/// key of a scan) increments `reads` and exactly one of: an L1 hit, an L2 hit, a coalesced
/// load, or an origin read.
#[derive(Default)]
pub struct Counters {
    pub reads: AtomicU64,
    pub l1_lookups: AtomicU64,
    pub l1_hits: AtomicU64,
    pub l1_stale: AtomicU64,
    pub l2_lookups: AtomicU64,
    pub l2_hits: AtomicU64,
    pub l2_stale: AtomicU64,
    /// Read-through misses that waited for another call's load of the same key.
    pub coalesced: AtomicU64,
    pub coalesced_stale: AtomicU64,
    pub origin_reads: AtomicU64,
    pub origin_writes: AtomicU64,
    pub ops: [AtomicU64; 6],
    /// Failed calls to the shared tier, by operation.
    pub l2_errors: [AtomicU64; 6],
    /// L1 entries removed by invalidation messages from other instances.
    pub invalidations: AtomicU64,
}

/// A plain copy of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub reads: u64,
    pub l1_lookups: u64,
    pub l1_hits: u64,
    pub l1_stale: u64,
    pub l2_lookups: u64,
    pub l2_hits: u64,
    pub l2_stale: u64,
    pub coalesced: u64,
    pub coalesced_stale: u64,
    pub origin_reads: u64,
    pub origin_writes: u64,
    pub ops: [u64; 6],
    pub l2_errors: [u64; 6],
    pub invalidations: u64,
}

impl Counters {
    pub fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            reads: l(&self.reads),
            l1_lookups: l(&self.l1_lookups),
            l1_hits: l(&self.l1_hits),
            l1_stale: l(&self.l1_stale),
            l2_lookups: l(&self.l2_lookups),
            l2_hits: l(&self.l2_hits),
            l2_stale: l(&self.l2_stale),
            coalesced: l(&self.coalesced),
            coalesced_stale: l(&self.coalesced_stale),
            origin_reads: l(&self.origin_reads),
            origin_writes: l(&self.origin_writes),
            ops: std::array::from_fn(|i| l(&self.ops[i])),
            l2_errors: std::array::from_fn(|i| l(&self.l2_errors[i])),
            invalidations: l(&self.invalidations),
        }
    }
}

impl Snapshot {
    /// Reads served by a cache tier.
    pub fn hits(&self) -> u64 {
        self.l1_hits + self.l2_hits
    }

    pub fn stale(&self) -> u64 {
        self.l1_stale + self.l2_stale + self.coalesced_stale
    }

    pub fn ops_total(&self) -> u64 {
        self.ops.iter().sum()
    }

    pub fn errors_total(&self) -> u64 {
        self.l2_errors.iter().sum()
    }

    pub fn sum(all: &[Snapshot]) -> Snapshot {
        let mut t = Snapshot::default();
        for s in all {
            t.reads += s.reads;
            t.l1_lookups += s.l1_lookups;
            t.l1_hits += s.l1_hits;
            t.l1_stale += s.l1_stale;
            t.l2_lookups += s.l2_lookups;
            t.l2_hits += s.l2_hits;
            t.l2_stale += s.l2_stale;
            t.coalesced += s.coalesced;
            t.coalesced_stale += s.coalesced_stale;
            t.origin_reads += s.origin_reads;
            t.origin_writes += s.origin_writes;
            for i in 0..6 {
                t.ops[i] += s.ops[i];
                t.l2_errors[i] += s.l2_errors[i];
            }
            t.invalidations += s.invalidations;
        }
        t
    }
}

/// Which tier answered a get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Served {
    L1,
    L2,
    Origin,
    /// A read-through miss that waited for another call's load.
    Coalesced,
}

impl Served {
    pub fn as_str(self) -> &'static str {
        match self {
            Served::L1 => "l1",
            Served::L2 => "l2",
            Served::Origin => "origin",
            Served::Coalesced => "coalesced",
        }
    }
}

/// Latency histograms of one worker: `(instance, op, tier of a get)` → microseconds.
#[derive(Default)]
pub struct Latencies {
    hists: HashMap<(usize, OpKind, Option<Served>), Histogram<u64>>,
}

impl Latencies {
    pub fn record(&mut self, instance: usize, op: OpKind, served: Option<Served>, seconds: f64) {
        let h = self.hists.entry((instance, op, served)).or_insert_with(|| {
            let mut h = Histogram::<u64>::new(3).expect("3 significant digits is valid");
            h.auto(true);
            h
        });
        let _ = h.record((seconds * 1e6).round().max(0.0) as u64);
    }

    pub fn merge(&mut self, other: Latencies) {
        for (k, h) in other.hists {
            match self.hists.get_mut(&k) {
                Some(mine) => {
                    let _ = mine.add(&h);
                }
                None => {
                    self.hists.insert(k, h);
                }
            }
        }
    }

    /// Into `latency{op,tier,instance}` histograms (`suffix` adds e.g. `capacity`).
    pub fn emit(self, m: &mut Measurements, suffix: &Labels) {
        let mut keys: Vec<_> = self.hists.into_iter().collect();
        keys.sort_by_key(|((i, op, s), _)| (*i, *op, s.map(|s| s.as_str())));
        for ((instance, op, served), h) in keys {
            let mut labels = suffix.clone();
            labels.insert("op".into(), op.as_str().into());
            labels.insert("instance".into(), (instance + 1).to_string());
            if let Some(s) = served {
                labels.insert("tier".into(), s.as_str().into());
            }
            let e = m.histogram("latency", labels, 1e-6);
            let _ = e.hist.add(&h);
        }
    }
}

pub fn with(suffix: &Labels, pairs: &[(&str, String)]) -> Labels {
    let mut l = suffix.clone();
    for (k, v) in pairs {
        l.insert((*k).to_string(), v.clone());
    }
    l
}

/// Emit a ratio per instance and pooled over instances (`num / den`, skipped when `den` is 0).
fn ratio(
    m: &mut Measurements,
    metric: &str,
    suffixes: &[Labels],
    fixed: &[(&str, String)],
    per_instance: &[(u64, u64)],
) {
    for suffix in suffixes {
        let (num, den) = per_instance
            .iter()
            .fold((0, 0), |(a, b), (n, d)| (a + n, b + d));
        if den > 0 {
            m.scalar(metric, with(suffix, fixed), num as f64 / den as f64);
        }
        for (i, (n, d)) in per_instance.iter().enumerate() {
            if *d > 0 {
                let mut pairs = fixed.to_vec();
                pairs.push(("instance", (i + 1).to_string()));
                m.scalar(metric, with(suffix, &pairs), *n as f64 / *d as f64);
            }
        }
    }
}

/// Emit a count per instance and summed over instances.
fn count(
    m: &mut Measurements,
    metric: &str,
    suffixes: &[Labels],
    fixed: &[(&str, String)],
    per_instance: &[u64],
) {
    for suffix in suffixes {
        m.scalar(
            metric,
            with(suffix, fixed),
            per_instance.iter().sum::<u64>() as f64,
        );
        for (i, n) in per_instance.iter().enumerate() {
            let mut pairs = fixed.to_vec();
            pairs.push(("instance", (i + 1).to_string()));
            m.scalar(metric, with(suffix, &pairs), *n as f64);
        }
    }
}

/// What the end of a run holds in one tier.
#[derive(Debug, Clone, Copy, Default)]
pub struct TierEnd {
    pub entries: u64,
    pub bytes: u64,
    pub evictions: u64,
    /// Highest entry count sampled during the run.
    pub peak_entries: u64,
}

/// Everything one run (one sweep point) measured, ready to emit.
pub struct RunStats {
    pub instances: Vec<Snapshot>,
    pub kinds: Vec<OpKind>,
    pub has_l1: bool,
    pub has_l2: bool,
    /// The configured L1 capacity in entries (for the resident ratio), if bounded by entries.
    pub l1_entries: Option<u64>,
    pub l1_end: Vec<TierEnd>,
    /// The shared tier at the end (`None` when it could not be read).
    pub l2_end: Option<TierEnd>,
    /// Per instance: the reference bounds, or why there are none.
    pub bounds: Result<Vec<Bounds>, String>,
    /// `(instance, seconds)` of restarted instances that got their hit ratio back.
    pub warmups: Vec<(usize, f64)>,
    pub elapsed_s: f64,
}

impl RunStats {
    /// Emit every scalar of the run with each label suffix (`{}` and/or `{capacity=…}`).
    pub fn emit(&self, m: &mut Measurements, suffixes: &[Labels]) {
        self.emit_hit_ratios(m, suffixes);
        self.emit_staleness(m, suffixes);
        self.emit_ops_and_errors(m, suffixes);
        self.emit_throughput_and_origin(m, suffixes);
        self.emit_residency(m, suffixes);
        self.emit_bounds_and_warmups(m, suffixes);
    }

    /// The hit ratios: overall (any tier) and per tier.
    fn emit_hit_ratios(&self, m: &mut Measurements, suffixes: &[Labels]) {
        let s = &self.instances;
        let tier = |t: &str| ("tier", t.to_string());
        // hit ratios: overall (any tier) and per tier
        ratio(
            m,
            "hit_ratio",
            suffixes,
            &[],
            &s.iter().map(|x| (x.hits(), x.reads)).collect::<Vec<_>>(),
        );
        if self.has_l1 {
            ratio(
                m,
                "hit_ratio",
                suffixes,
                &[tier("l1")],
                &s.iter()
                    .map(|x| (x.l1_hits, x.l1_lookups))
                    .collect::<Vec<_>>(),
            );
        }
        if self.has_l2 {
            ratio(
                m,
                "hit_ratio",
                suffixes,
                &[tier("l2")],
                &s.iter()
                    .map(|x| (x.l2_hits, x.l2_lookups))
                    .collect::<Vec<_>>(),
            );
        }
    }

    /// Stale reads: overall over all reads; per tier over the reads that tier served.
    fn emit_staleness(&self, m: &mut Measurements, suffixes: &[Labels]) {
        let s = &self.instances;
        let tier = |t: &str| ("tier", t.to_string());
        // staleness: overall over all reads; per tier over the reads that tier served
        count(
            m,
            "stale_reads",
            suffixes,
            &[],
            &s.iter().map(Snapshot::stale).collect::<Vec<_>>(),
        );
        ratio(
            m,
            "stale_ratio",
            suffixes,
            &[],
            &s.iter().map(|x| (x.stale(), x.reads)).collect::<Vec<_>>(),
        );
        if self.has_l1 {
            count(
                m,
                "stale_reads",
                suffixes,
                &[tier("l1")],
                &s.iter()
                    .map(|x| x.l1_stale + x.coalesced_stale)
                    .collect::<Vec<_>>(),
            );
            ratio(
                m,
                "stale_ratio",
                suffixes,
                &[tier("l1")],
                &s.iter()
                    .map(|x| (x.l1_stale + x.coalesced_stale, x.l1_hits + x.coalesced))
                    .collect::<Vec<_>>(),
            );
        }
        if self.has_l2 {
            count(
                m,
                "stale_reads",
                suffixes,
                &[tier("l2")],
                &s.iter().map(|x| x.l2_stale).collect::<Vec<_>>(),
            );
            ratio(
                m,
                "stale_ratio",
                suffixes,
                &[tier("l2")],
                &s.iter()
                    .map(|x| (x.l2_stale, x.l2_hits))
                    .collect::<Vec<_>>(),
            );
        }
    }

    /// Operations and errors, overall, per op and for the shared tier.
    fn emit_ops_and_errors(&self, m: &mut Measurements, suffixes: &[Labels]) {
        let s = &self.instances;
        let tier = |t: &str| ("tier", t.to_string());
        // operations and errors
        count(
            m,
            "ops",
            suffixes,
            &[],
            &s.iter().map(Snapshot::ops_total).collect::<Vec<_>>(),
        );
        for op in &self.kinds {
            let i = op.index();
            count(
                m,
                "ops",
                suffixes,
                &[("op", op.as_str().into())],
                &s.iter().map(|x| x.ops[i]).collect::<Vec<_>>(),
            );
        }
        // only calls to the shared tier can fail: without one, errors are 0
        let with_tier = |fixed: Vec<(&'static str, String)>| {
            let mut sets = vec![fixed.clone()];
            if self.has_l2 {
                let mut t = fixed;
                t.push(tier("l2"));
                sets.push(t);
            }
            sets
        };
        let per: Vec<u64> = s.iter().map(Snapshot::errors_total).collect();
        let rate: Vec<(u64, u64)> = s
            .iter()
            .map(|x| (x.errors_total(), x.ops_total()))
            .collect();
        for fixed in with_tier(vec![]) {
            count(m, "errors", suffixes, &fixed, &per);
            ratio(m, "error_rate", suffixes, &fixed, &rate);
        }
        for op in &self.kinds {
            let i = op.index();
            let per: Vec<u64> = s.iter().map(|x| x.l2_errors[i]).collect();
            let rate: Vec<(u64, u64)> = s.iter().map(|x| (x.l2_errors[i], x.ops[i])).collect();
            for fixed in with_tier(vec![("op", op.as_str().to_string())]) {
                count(m, "errors", suffixes, &fixed, &per);
                ratio(m, "error_rate", suffixes, &fixed, &rate);
            }
        }
        if self.has_l2 {
            count(
                m,
                "invalidations",
                suffixes,
                &[],
                &s.iter().map(|x| x.invalidations).collect::<Vec<_>>(),
            );
        }
    }

    /// Throughput, origin calls and the origin load the cache took away.
    fn emit_throughput_and_origin(&self, m: &mut Measurements, suffixes: &[Labels]) {
        let total = Snapshot::sum(&self.instances);
        for suffix in suffixes {
            let e = self.elapsed_s.max(1e-9);
            m.scalar("throughput", suffix.clone(), total.ops_total() as f64 / e);
            m.scalar(
                "origin_calls",
                suffix.clone(),
                (total.origin_reads + total.origin_writes) as f64,
            );
            if total.reads > 0 {
                m.scalar(
                    "origin_load_reduction",
                    suffix.clone(),
                    1.0 - total.origin_reads as f64 / total.reads as f64,
                );
            }
        }
    }

    /// What the tiers hold at the end: evictions, resident entries and bytes, peaks.
    fn emit_residency(&self, m: &mut Measurements, suffixes: &[Labels]) {
        let n = self.instances.len();
        let tier = |t: &str| ("tier", t.to_string());
        // what the tiers hold
        if self.has_l1 && self.l1_end.len() == n {
            let ends = &self.l1_end;
            count(
                m,
                "evictions",
                suffixes,
                &[tier("l1")],
                &ends.iter().map(|e| e.evictions).collect::<Vec<_>>(),
            );
            count(
                m,
                "resident_entries",
                suffixes,
                &[tier("l1")],
                &ends.iter().map(|e| e.entries).collect::<Vec<_>>(),
            );
            count(
                m,
                "resident_bytes",
                suffixes,
                &[tier("l1")],
                &ends.iter().map(|e| e.bytes).collect::<Vec<_>>(),
            );
            for suffix in suffixes {
                let peak = ends.iter().map(|e| e.peak_entries).max().unwrap_or(0);
                m.scalar(
                    "peak_resident_entries",
                    with(suffix, &[tier("l1")]),
                    peak as f64,
                );
                for (i, e) in ends.iter().enumerate() {
                    let l = with(suffix, &[tier("l1"), ("instance", (i + 1).to_string())]);
                    m.scalar("peak_resident_entries", l.clone(), e.peak_entries as f64);
                    if let Some(cap) = self.l1_entries {
                        m.scalar(
                            "peak_resident_ratio",
                            l,
                            e.peak_entries as f64 / cap.max(1) as f64,
                        );
                    }
                }
                if let Some(cap) = self.l1_entries {
                    m.scalar(
                        "peak_resident_ratio",
                        with(suffix, &[tier("l1")]),
                        peak as f64 / cap.max(1) as f64,
                    );
                }
            }
        }
        if let Some(e) = &self.l2_end {
            for suffix in suffixes {
                m.scalar("evictions", with(suffix, &[tier("l2")]), e.evictions as f64);
                m.scalar(
                    "resident_entries",
                    with(suffix, &[tier("l2")]),
                    e.entries as f64,
                );
                m.scalar(
                    "resident_bytes",
                    with(suffix, &[tier("l2")]),
                    e.bytes as f64,
                );
            }
        }
        for suffix in suffixes {
            let l1: (u64, u64, u64) = self.l1_end.iter().fold((0, 0, 0), |a, e| {
                (a.0 + e.evictions, a.1 + e.entries, a.2 + e.bytes)
            });
            let l2 = self
                .l2_end
                .map_or((0, 0, 0), |e| (e.evictions, e.entries, e.bytes));
            if self.has_l1 || self.l2_end.is_some() {
                m.scalar("evictions", suffix.clone(), (l1.0 + l2.0) as f64);
                m.scalar("resident_entries", suffix.clone(), (l1.1 + l2.1) as f64);
                m.scalar("resident_bytes", suffix.clone(), (l1.2 + l2.2) as f64);
            }
        }
    }

    /// The reference bounds on the same trace, and warm-up times of restarted instances.
    fn emit_bounds_and_warmups(&self, m: &mut Measurements, suffixes: &[Labels]) {
        // reference bounds on the same trace
        if let Ok(bounds) = &self.bounds {
            let lru: Vec<(u64, u64)> = bounds.iter().map(|b| (b.lru_hits, b.reads)).collect();
            let opt: Vec<(u64, u64)> = bounds.iter().map(|b| (b.optimal_hits, b.reads)).collect();
            ratio(m, "lru_hit_ratio", suffixes, &[], &lru);
            ratio(m, "optimal_hit_ratio", suffixes, &[], &opt);
        }
        for suffix in suffixes {
            for (i, t) in &self.warmups {
                m.scalar(
                    "warmup_time",
                    with(suffix, &[("instance", (i + 1).to_string())]),
                    *t,
                );
            }
        }
    }

    /// Flag each instance whose L1 hit ratio beats the optimum on its own trace (impossible
    /// unless the cache held more than its capacity). Returns the reasons.
    pub fn flag_impossible(
        &self,
        m: &mut Measurements,
        sweep_label: Option<&Labels>,
        capacity: u64,
    ) -> Vec<String> {
        let Ok(bounds) = &self.bounds else {
            return Vec::new();
        };
        let mut reasons = Vec::new();
        for (i, (b, s)) in bounds.iter().zip(&self.instances).enumerate() {
            if s.l1_lookups == 0 || b.reads == 0 {
                continue;
            }
            let measured = s.l1_hits as f64 / s.l1_lookups as f64;
            let optimal = b.optimal_ratio();
            if measured > optimal + OPTIMUM_TOLERANCE {
                let peak = self.l1_end.get(i).map_or(0, |e| e.peak_entries);
                let reason = format!(
                    "instance {}: l1 hit ratio {measured:.4} is above the Bélády optimum {optimal:.4} for {capacity} entries on the same trace (impossible within the capacity; up to {peak} entries were resident)",
                    i + 1
                );
                let mut labels = sweep_label.cloned().unwrap_or_default();
                labels.insert("tier".into(), "l1".into());
                labels.insert("instance".into(), (i + 1).to_string());
                m.mark_invalid("hit_ratio", labels, reason.clone());
                reasons.push(reason);
            }
        }
        // with the L1 as the only tier, the origin's load is the L1's misses: just as inflated
        if !reasons.is_empty() && !self.has_l2 {
            let labels = sweep_label.cloned().unwrap_or_default();
            m.mark_invalid(
                "origin_load_reduction",
                labels,
                format!(
                    "the l1 hit ratio it follows is impossible: {}",
                    reasons.join("; ")
                ),
            );
        }
        reasons
    }
}

/// Per-second points of a counter pair, from cumulative samples `(t, num, den)`.
pub fn per_second_ratio(samples: &[(f64, u64, u64)]) -> Vec<(f64, f64)> {
    samples
        .windows(2)
        .filter_map(|w| {
            let (dn, dd) = (w[1].1.saturating_sub(w[0].1), w[1].2.saturating_sub(w[0].2));
            (dd > 0).then(|| (w[1].0, dn as f64 / dd as f64))
        })
        .collect()
}

/// Per-second rate of a cumulative counter.
pub fn per_second_rate(samples: &[(f64, u64)]) -> Vec<(f64, f64)> {
    samples
        .windows(2)
        .filter_map(|w| {
            let dt = w[1].0 - w[0].0;
            (dt > 0.0).then(|| (w[1].0, w[1].1.saturating_sub(w[0].1) as f64 / dt))
        })
        .collect()
}

/// Labels of a sweep point: `{label=value}`.
pub fn sweep_labels(label: Option<&str>, value: &str) -> Option<Labels> {
    label.map(|l| BTreeMap::from([(l.to_string(), value.to_string())]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::metrics::{Selection, labels};
    use crate::engine::verdict::{Reason, Slo, Status, evaluate};
    use crate::spec::catalog::Kind;

    fn snapshot(reads: u64, hits: u64) -> Snapshot {
        Snapshot {
            reads,
            l1_lookups: reads,
            l1_hits: hits,
            origin_reads: reads - hits,
            ops: [reads, 0, 0, 0, 0, 0],
            ..Snapshot::default()
        }
    }

    fn stats(instances: Vec<Snapshot>, bounds: Vec<Bounds>) -> RunStats {
        RunStats {
            l1_end: instances
                .iter()
                .map(|_| TierEnd {
                    entries: 10,
                    bytes: 100,
                    evictions: 1,
                    peak_entries: 30,
                })
                .collect(),
            instances,
            kinds: vec![OpKind::Get],
            has_l1: true,
            has_l2: false,
            l1_entries: Some(10),
            l2_end: None,
            bounds: Ok(bounds),
            warmups: vec![],
            elapsed_s: 2.0,
        }
    }

    #[test]
    fn a_hit_ratio_above_the_optimum_is_flagged_and_fails_its_slo() {
        let s = stats(
            vec![snapshot(1000, 900), snapshot(1000, 500)],
            vec![
                Bounds {
                    reads: 1000,
                    lru_hits: 600,
                    optimal_hits: 700,
                },
                Bounds {
                    reads: 1000,
                    lru_hits: 400,
                    optimal_hits: 600,
                },
            ],
        );
        let mut m = Measurements {
            elapsed_s: 2.0,
            ..Measurements::default()
        };
        s.emit(&mut m, &[Labels::new()]);
        let reasons = s.flag_impossible(&mut m, None, 10);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(
            reasons[0].contains("instance 1")
                && reasons[0].contains("0.9000")
                && reasons[0].contains("0.7000")
        );
        assert_eq!(
            m.invalid[0].labels,
            labels(&[("tier", "l1"), ("instance", "1")])
        );
        assert_eq!(m.invalid[1].metric, "origin_load_reduction");
        // every selection of hit_ratio that includes instance 1 fails as invalid
        let slo = Slo::compile("hit_ratio >= 0.5", Kind::Cache).unwrap();
        let o = evaluate(&slo, &m, None);
        assert_eq!(
            (o.status, o.reason),
            (Status::Fail, Reason::InvalidMeasurement),
            "{}",
            o.message
        );
        let slo = Slo::compile("hit_ratio{instance=2} >= 0.5", Kind::Cache).unwrap();
        assert_eq!(evaluate(&slo, &m, None).reason, Reason::Met);
        // within the tolerance is not flagged
        let s = stats(
            vec![snapshot(1000, 704)],
            vec![Bounds {
                reads: 1000,
                lru_hits: 600,
                optimal_hits: 700,
            }],
        );
        assert!(
            s.flag_impossible(&mut Measurements::default(), None, 10)
                .is_empty()
        );
    }

    #[test]
    fn every_label_combination_has_an_exact_value() {
        let s = stats(
            vec![snapshot(1000, 900), snapshot(1000, 500)],
            vec![
                Bounds {
                    reads: 1000,
                    lru_hits: 600,
                    optimal_hits: 950,
                },
                Bounds {
                    reads: 1000,
                    lru_hits: 400,
                    optimal_hits: 600,
                },
            ],
        );
        let mut m = Measurements {
            elapsed_s: 2.0,
            ..Measurements::default()
        };
        let cap = labels(&[("capacity", "10")]);
        s.emit(&mut m, &[Labels::new(), cap.clone()]);
        let v = |metric: &str, l: &[(&str, &str)]| match m.select(metric, &labels(l), false) {
            Selection::Value(v) => v,
            other => panic!("{metric} {l:?}: {other:?}"),
        };
        assert_eq!(v("hit_ratio", &[]), 0.7);
        assert_eq!(v("hit_ratio", &[("tier", "l1")]), 0.7);
        assert_eq!(v("hit_ratio", &[("instance", "2")]), 0.5);
        assert_eq!(
            v(
                "hit_ratio",
                &[("tier", "l1"), ("instance", "1"), ("capacity", "10")]
            ),
            0.9
        );
        assert_eq!(v("origin_load_reduction", &[]), 0.7);
        assert_eq!(v("origin_calls", &[("capacity", "10")]), 600.0);
        assert_eq!(v("throughput", &[]), 1000.0);
        assert_eq!(v("ops", &[("op", "get"), ("instance", "1")]), 1000.0);
        assert_eq!(v("optimal_hit_ratio", &[]), 0.775);
        assert_eq!(v("lru_hit_ratio", &[("instance", "2")]), 0.4);
        assert_eq!(v("resident_entries", &[("tier", "l1")]), 20.0);
        assert_eq!(v("peak_resident_ratio", &[("tier", "l1")]), 3.0);
        assert_eq!(v("stale_ratio", &[]), 0.0);
    }

    #[test]
    fn per_second_series_use_deltas() {
        assert_eq!(
            per_second_ratio(&[(0.0, 0, 0), (1.0, 5, 10), (2.0, 5, 10), (3.0, 15, 20)]),
            vec![(1.0, 0.5), (3.0, 1.0)]
        );
        assert_eq!(
            per_second_rate(&[(0.0, 0), (1.0, 100), (1.5, 150)]),
            vec![(1.0, 100.0), (1.5, 100.0)]
        );
    }
}
