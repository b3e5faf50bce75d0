//! What a cache run measured, once its workers are done: resident sizes sampled during the
//! run, what each tier holds at the end, the LRU / Bélády reference bounds on each
//! instance's own trace, warm-up after restarts, and the scalars and series of the run.

use std::time::Instant;

use super::instance::Instance;
use super::plan::{Capacity, Plan};
use super::reference::{self, Bounds};
use super::run_state::{Point, Run, lock};
use super::stats::{Latencies, RunStats, Snapshot, TierEnd, per_second_rate, per_second_ratio};
use super::topology::{RedisTarget, cleanup};
use super::warmup::{Warmup, warmup};
use super::workload::OpKind;
use crate::engine::metrics::Measurements;

/// Cumulative samples of a run, taken every 100 ms (a series point every second).
#[derive(Default)]
pub struct Samples {
    /// `(seconds since the spec started, reads, hits, ops, errors)`.
    totals: Vec<(f64, u64, u64, u64, u64)>,
    /// Per instance: `(seconds, reads, hits)`.
    instances: Vec<Vec<(f64, u64, u64)>>,
    /// Per instance: `(seconds, L1 entries)`.
    resident: Vec<Vec<(f64, f64)>>,
    /// Per instance: the largest L1 entry count seen.
    peak: Vec<u64>,
}

impl Samples {
    pub fn take(&mut self, run: &Run, spec_t0: Instant, series_point: bool) {
        let t = spec_t0.elapsed().as_secs_f64();
        let snaps: Vec<Snapshot> = run
            .instances
            .iter()
            .map(|i| i.counters.snapshot())
            .collect();
        if self.peak.len() != snaps.len() {
            self.peak = vec![0; snaps.len()];
            self.instances = vec![Vec::new(); snaps.len()];
            self.resident = vec![Vec::new(); snaps.len()];
        }
        for (i, inst) in run.instances.iter().enumerate() {
            if let Some(l1) = inst.l1() {
                let len = l1.len();
                self.peak[i] = self.peak[i].max(len);
                if series_point {
                    self.resident[i].push((t, len as f64));
                }
            }
        }
        if series_point {
            let total = Snapshot::sum(&snaps);
            self.totals.push((
                t,
                total.reads,
                total.hits(),
                total.ops_total(),
                total.errors_total(),
            ));
            for (i, s) in snaps.iter().enumerate() {
                self.instances[i].push((t, s.reads, s.hits()));
            }
        }
    }
}

/// What one run's workers left behind, ready to be measured.
pub struct Finished<'a> {
    pub plan: &'a Plan,
    pub point: &'a Point,
    pub run: &'a Run,
    pub redis: Option<&'a RedisTarget>,
    pub samples: Samples,
    pub latencies: Latencies,
    pub elapsed: f64,
}

impl Finished<'_> {
    /// Measure the run into `m`; returns the notes for the report.
    pub async fn measure(self, m: &mut Measurements) -> Vec<String> {
        let mut notes = Vec::new();
        let at = self.point.prefix();
        let (plan, run) = (self.plan, self.run);
        let key_space =
            lock(&run.feed).generator.generated().max(plan.trace.keys) + plan.trace.keys;
        let l1_end = self.l1_end(key_space).await;
        let l2_end = self.l2_end(key_space, &at, &mut notes).await;
        let bounds = self.bounds().await;
        if let Err(why) = &bounds {
            notes.push(format!("lru_hit_ratio and optimal_hit_ratio: {why}"));
        }
        let warmups = warmups(run, &at, &mut notes);
        for (t, what) in lock(&run.fired).iter() {
            notes.push(format!("{at}at {t:.2}s: {what}"));
        }
        let stats = RunStats {
            instances: run
                .instances
                .iter()
                .map(|i| i.counters.snapshot())
                .collect(),
            kinds: plan.trace.mix.kinds(),
            has_l1: plan.l1.is_some(),
            has_l2: plan.l2.is_some(),
            l1_entries: plan.l1.as_ref().and_then(|l| match l.capacity {
                Capacity::Entries(n) => Some(n),
                Capacity::Bytes(_) => None,
            }),
            l1_end,
            l2_end,
            bounds,
            warmups,
            elapsed_s: self.elapsed,
        };
        stats.emit(m, &self.point.suffixes());
        notes.extend(capacity_notes(plan, self.point, &stats, m, &at));
        self.latencies
            .emit(m, &self.point.label.clone().unwrap_or_default());
        for inst in &run.instances {
            for (msg, mut labels) in inst.take_errors() {
                if let Some(l) = &self.point.label {
                    labels.extend(l.clone());
                }
                m.error_sample(&msg, labels);
            }
        }
        series(plan, self.point, &self.samples, m);
        if let Some(mc) = &run.memcached {
            notes.extend(mc.measure(self.point, plan.trace.keys, m).await);
        }
        m.elapsed_s += self.elapsed;
        if self.point.label.is_none() || self.point.representative {
            let total = Snapshot::sum(&stats.instances);
            if total.ops_total() > 0 && plan.trace.mix.kinds().contains(&OpKind::Scan) {
                notes.push(
                    "a scan counts as one operation; each key it reads counts as a read".into(),
                );
            }
        }
        notes
    }

    /// What each instance's L1 holds at the end (and held at most).
    async fn l1_end(&self, key_space: u64) -> Vec<TierEnd> {
        let mut ends = Vec::new();
        if self.plan.l1.is_none() {
            return ends;
        }
        for (i, inst) in self.run.instances.iter().enumerate() {
            let mut end = TierEnd {
                peak_entries: self.samples.peak.get(i).copied().unwrap_or(0),
                ..TierEnd::default()
            };
            if let Some(l1) = inst.l1()
                && let Ok(r) = l1.resident(key_space).await
            {
                end.entries = r.entries;
                end.bytes = r.bytes;
                end.peak_entries = end.peak_entries.max(r.entries);
            }
            end.evictions = inst.l1_evictions();
            ends.push(end);
        }
        ends
    }

    /// What the shared tier holds at the end; a Redis perfspec did not start is not
    /// measured, and this run's keys are deleted from it.
    async fn l2_end(&self, key_space: u64, at: &str, notes: &mut Vec<String>) -> Option<TierEnd> {
        let shared_redis = self.redis.is_some_and(|r| !r.owned);
        let end = match self.run.instances.first().and_then(|i| i.l2.as_ref()) {
            Some(_) if shared_redis => {
                notes.push("the l2 Redis is shared (given by `url` or `nodes`): its resident size and evictions are not reported".into());
                None
            }
            Some(l2) => match l2.resident(key_space).await {
                Ok(r) => Some(TierEnd {
                    entries: r.entries,
                    bytes: r.bytes,
                    evictions: r.evictions,
                    peak_entries: r.entries,
                }),
                Err(e) => {
                    notes.push(format!(
                        "{at}the l2 tier could not be read at the end of the run: {e}"
                    ));
                    None
                }
            },
            None => None,
        };
        if let Some(r) = self.redis {
            if r.owned {
                let whose = if r.cluster {
                    "summed over the cluster's masters"
                } else {
                    "the server's"
                };
                notes.push(format!("resident_bytes{{tier=l2}} is Redis's used_memory, {whose} (its whole dataset and overhead)"));
            } else {
                for url in &r.urls {
                    cleanup(url, &r.prefix, key_space).await;
                }
            }
        }
        end
    }

    /// The LRU and Bélády bounds on each instance's own trace, or why there are none.
    async fn bounds(&self) -> Result<Vec<Bounds>, String> {
        let truncated = self.run.instances.iter().any(Instance::trace_truncated);
        match self.plan.bounds_applicability() {
            Ok(_) if truncated => Err(format!(
                "not computed: an instance's trace exceeded {} events (shorten the run to get the bounds)",
                super::instance::MAX_TRACE
            )),
            Ok(cap) => {
                let traces: Vec<_> = self.run.instances.iter().map(|i| i.take_trace()).collect();
                let cap = usize::try_from(cap).unwrap_or(usize::MAX);
                tokio::task::spawn_blocking(move || {
                    traces.iter().map(|t| reference::bounds(t, cap)).collect()
                })
                .await
                .map_err(|e| format!("the reference bounds failed: {e}"))
            }
            Err(why) => Err(why),
        }
    }
}

/// How long each restarted instance took to get its L1 hit ratio back (notes say why not).
fn warmups(run: &Run, at: &str, notes: &mut Vec<String>) -> Vec<(usize, f64)> {
    let mut warmups = Vec::new();
    for inst in &run.instances {
        let timeline = inst.take_timeline();
        for t in inst.restart_times() {
            let n = inst.index + 1;
            match warmup(&timeline, t) {
                Warmup::Recovered { before, seconds } => {
                    notes.push(format!(
                        "{at}instance {n} restarted at {t:.2}s; its l1 hit ratio was back to 95% of {before:.3} after {seconds:.2}s"
                    ));
                    warmups.push((inst.index, seconds));
                }
                Warmup::NotRecovered { before, best } => notes.push(format!(
                    "{at}instance {n} restarted at {t:.2}s and did not get back to 95% of its hit ratio {before:.3} before the run ended (best window {best:.3}): no warmup_time"
                )),
                Warmup::Unknown => notes.push(format!(
                    "{at}instance {n} restarted at {t:.2}s, too early to know its hit ratio before: no warmup_time"
                )),
            }
        }
    }
    warmups
}

/// Notes on an L1 that held more than its capacity, and the flag on hit ratios above the
/// optimum possible for it (an invalid measurement).
fn capacity_notes(
    plan: &Plan,
    point: &Point,
    stats: &RunStats,
    m: &mut Measurements,
    at: &str,
) -> Vec<String> {
    let mut notes = Vec::new();
    let capacity = plan.l1.as_ref().map_or(0, |l| l.capacity.value());
    let flagged = stats.flag_impossible(m, point.label.as_ref(), capacity);
    let peak = stats
        .l1_end
        .iter()
        .map(|e| e.peak_entries)
        .max()
        .unwrap_or(0);
    if !flagged.is_empty() {
        let backend = plan.l1.as_ref().map_or("", |l| l.backend.as_str());
        notes.push(format!(
            "{at}invalid measurement: {backend} reported hit ratios above the optimum possible for its capacity ({}); {backend} held up to {peak} entries for a capacity of {capacity}",
            flagged.join("; "),
        ));
    }
    if let (Some(l1), Some(cap)) = (&plan.l1, stats.l1_entries)
        && peak > cap
    {
        notes.push(format!(
            "{at}{} held up to {peak} entries ({:.2}x its capacity of {cap}) between maintenance runs",
            l1.backend.as_str(),
            peak as f64 / cap.max(1) as f64
        ));
    }
    notes
}

/// The per-second series of the report: hit ratio, throughput, errors (with an L2), per
/// instance hit ratios and L1 resident entries.
fn series(plan: &Plan, point: &Point, samples: &Samples, m: &mut Measurements) {
    let totals = &samples.totals;
    m.push_series(
        "hit_ratio",
        point.series_labels(&[]),
        per_second_ratio(&totals.iter().map(|s| (s.0, s.2, s.1)).collect::<Vec<_>>()),
    );
    m.push_series(
        "throughput",
        point.series_labels(&[]),
        per_second_rate(&totals.iter().map(|s| (s.0, s.3)).collect::<Vec<_>>()),
    );
    if plan.l2.is_some() {
        m.push_series(
            "errors",
            point.series_labels(&[]),
            per_second_rate(&totals.iter().map(|s| (s.0, s.4)).collect::<Vec<_>>()),
        );
    }
    let restarted = !super::events::restarted(plan).is_empty();
    if plan.instances > 1 || restarted {
        for (i, s) in samples.instances.iter().enumerate() {
            m.push_series(
                "hit_ratio",
                point.series_labels(&[("instance", (i + 1).to_string())]),
                per_second_ratio(&s.iter().map(|x| (x.0, x.2, x.1)).collect::<Vec<_>>()),
            );
        }
    }
    if plan.l1.is_some() {
        for (i, s) in samples.resident.iter().enumerate() {
            m.push_series(
                "resident_entries",
                point.series_labels(&[("tier", "l1".into()), ("instance", (i + 1).to_string())]),
                s.clone(),
            );
        }
    }
}
