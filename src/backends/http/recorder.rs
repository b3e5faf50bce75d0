//! What a load run measured, as it happens: HDR histograms of `latency` (from the intended
//! start) and `service_time` (from the actual send) per journey, step, status and phase;
//! request and error counts; arrivals and late arrivals per phase; schedule slippage;
//! per-second series; the first error messages. [`Recorder::finish`] turns it into
//! [`Measurements`], including every gauge a label selector of an SLO can ask for.

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;

use crate::engine::metrics::{HistogramEntry, Labels, Measurements};

/// The status label of a request: its HTTP status, or what went wrong before one arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusLabel {
    Code(u16),
    /// No response within the step's timeout.
    Timeout,
    /// Connection refused or reset, a template or request-building error.
    Error,
}

impl StatusLabel {
    pub fn as_label(self) -> String {
        match self {
            StatusLabel::Code(c) => c.to_string(),
            StatusLabel::Timeout => "timeout".into(),
            StatusLabel::Error => "error".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub journey: usize,
    pub step: usize,
    pub status: StatusLabel,
    pub phase: usize,
}

#[derive(Clone)]
struct Group {
    latency: Histogram<u64>,
    service: Histogram<u64>,
    requests: u64,
    errors: u64,
}

fn hist(sigfig: u8) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(sigfig).expect("valid significant digits");
    h.auto(true);
    h
}

fn micros(seconds: f64) -> u64 {
    (seconds * 1e6).round().max(0.0) as u64
}

/// One second of the run (by completion time; arrivals by start time).
#[derive(Default, Clone)]
struct Second {
    latency: Option<Histogram<u64>>,
    completed: u64,
    errors: u64,
    started: u64,
}

/// A finished second: `(second, latency, completed, errors, started)`.
type SecondRow = (u64, Option<Histogram<u64>>, u64, u64, u64);

/// Names behind the indices of [`Key`].
#[derive(Debug, Clone)]
pub struct Names {
    pub journeys: Vec<String>,
    /// Step labels per journey.
    pub steps: Vec<Vec<String>>,
    pub phases: Vec<String>,
}

/// Cloned to judge a stress step while the run goes on.
#[derive(Clone)]
pub struct Recorder {
    names: Names,
    tolerance: f64,
    groups: HashMap<Key, Group>,
    arrivals: Vec<u64>,
    late: Vec<u64>,
    slippage: Histogram<u64>,
    open: BTreeMap<u64, Second>,
    closed: Vec<SecondRow>,
    errors: Measurements,
}

/// Seconds kept open for late completions before their per-second row is final.
const OPEN_SECONDS: u64 = 3;

impl Recorder {
    pub fn new(names: Names, late_tolerance: f64) -> Recorder {
        let phases = names.phases.len();
        Recorder {
            names,
            tolerance: late_tolerance,
            groups: HashMap::new(),
            arrivals: vec![0; phases],
            late: vec![0; phases],
            slippage: hist(3),
            open: BTreeMap::new(),
            closed: Vec::new(),
            errors: Measurements::default(),
        }
    }

    fn second(&mut self, at: f64) -> &mut Second {
        let s = at.max(0.0).floor() as u64;
        // completions come in (nearly) time order: seconds well before this one are final
        while let Some((&first, _)) = self.open.first_key_value() {
            if first + OPEN_SECONDS > s {
                break;
            }
            let (sec, b) = self.open.pop_first().expect("non-empty");
            self.closed.push(row(sec, b));
        }
        self.open.entry(s).or_default()
    }

    /// An arrival (open model) started `lateness` seconds after its intended time, `at`
    /// seconds into the load.
    pub fn arrival(&mut self, phase: usize, lateness: f64, at: f64) {
        self.arrivals[phase] += 1;
        if lateness > self.tolerance {
            self.late[phase] += 1;
        }
        let _ = self.slippage.record(micros(lateness));
        self.second(at).started += 1;
    }

    /// A request finished `at` seconds into the load. `times` is `(latency, service time)`
    /// when a request was sent (not for a template error); `error` says what failed.
    pub fn request(&mut self, key: Key, times: Option<(f64, f64)>, error: Option<&str>, at: f64) {
        let g = self.groups.entry(key).or_insert_with(|| Group {
            latency: hist(3),
            service: hist(3),
            requests: 0,
            errors: 0,
        });
        g.requests += 1;
        if let Some((lat, svc)) = times {
            let _ = g.latency.record(micros(lat));
            let _ = g.service.record(micros(svc));
        }
        if let Some(msg) = error {
            g.errors += 1;
            let labels = self.labels(&key, true);
            self.errors.error_sample(msg, labels);
        }
        let sec = self.second(at);
        sec.completed += 1;
        if error.is_some() {
            sec.errors += 1;
        }
        if let Some((lat, _)) = times {
            let _ = sec
                .latency
                .get_or_insert_with(|| hist(2))
                .record(micros(lat));
        }
    }

    /// Requests completed so far, and how many failed.
    pub fn totals(&self) -> (u64, u64) {
        self.groups
            .values()
            .fold((0, 0), |(r, e), g| (r + g.requests, e + g.errors))
    }

    /// p95 of `latency` so far, in seconds (progress display).
    pub fn p95(&self) -> Option<f64> {
        let mut all = hist(3);
        for g in self.groups.values() {
            let _ = all.add(&g.latency);
        }
        (!all.is_empty()).then(|| all.value_at_quantile(0.95) as f64 * 1e-6)
    }

    fn labels(&self, k: &Key, with_status: bool) -> Labels {
        let mut l = Labels::new();
        l.insert("journey".into(), self.names.journeys[k.journey].clone());
        l.insert("step".into(), self.names.steps[k.journey][k.step].clone());
        if with_status {
            l.insert("status".into(), k.status.as_label());
        }
        l.insert("phase".into(), self.names.phases[k.phase].clone());
        l
    }

    /// Each second so far (by completion time, on the spec's clock with `offset`) as its own
    /// measurements: `latency` (2 significant digits), `requests`, `errors` and `error_rate`,
    /// without labels. Spike recovery judges the SLOs on them.
    pub fn seconds(&self, offset: f64) -> Vec<(f64, Measurements)> {
        let open = self.open.iter().map(|(s, b)| row(*s, b.clone()));
        let mut rows: Vec<SecondRow> = self.closed.iter().cloned().chain(open).collect();
        rows.sort_by_key(|r| r.0);
        rows.into_iter()
            .map(|(sec, h, completed, errors, _)| {
                let mut m = Measurements {
                    elapsed_s: 1.0,
                    ..Measurements::default()
                };
                if let Some(h) = h {
                    let mut e = HistogramEntry::micros("latency", Labels::new());
                    e.hist = h;
                    m.histograms.push(e);
                }
                m.scalar("requests", Labels::new(), completed as f64);
                m.scalar("errors", Labels::new(), errors as f64);
                if completed > 0 {
                    m.scalar("error_rate", Labels::new(), ratio(errors, completed));
                }
                (offset + sec as f64, m)
            })
            .collect()
    }

    /// Everything measured. `elapsed` is the measured seconds of load, `phase_seconds` how
    /// long each phase ran, `open` whether arrivals were scheduled (open model), `offset` the
    /// seconds between the spec's start and the load's start (series are on the spec's
    /// clock), `scheduled` the intended arrivals of each second (open model).
    pub fn finish(
        mut self,
        elapsed: f64,
        phase_seconds: &[f64],
        open: bool,
        offset: f64,
        scheduled: &dyn Fn(u64) -> f64,
    ) -> Measurements {
        let mut m = std::mem::take(&mut self.errors);
        m.elapsed_s = elapsed;
        let mut keys: Vec<Key> = self.groups.keys().copied().collect();
        keys.sort_by_key(|k| (k.journey, k.step, k.phase, k.status));
        for k in &keys {
            let g = &self.groups[k];
            let labels = self.labels(k, true);
            for (metric, h) in [("latency", &g.latency), ("service_time", &g.service)] {
                if !h.is_empty() {
                    let mut e = HistogramEntry::micros(metric, labels.clone());
                    e.hist = h.clone();
                    m.histograms.push(e);
                }
            }
            m.scalar("requests", labels.clone(), g.requests as f64);
            m.scalar("errors", labels, g.errors as f64);
        }
        self.gauges(&mut m, &keys, elapsed, phase_seconds);
        // arrivals and lateness (the closed model schedules nothing: nothing is late)
        let total_arrivals: u64 = self.arrivals.iter().sum();
        let total_late: u64 = self.late.iter().sum();
        for (p, name) in self.names.phases.iter().enumerate() {
            let l = crate::engine::metrics::labels(&[("phase", name)]);
            if open {
                m.scalar("arrivals", l.clone(), self.arrivals[p] as f64);
            }
            m.scalar("late", l.clone(), self.late[p] as f64);
            if !open || self.arrivals[p] > 0 {
                m.scalar("late_ratio", l, ratio(self.late[p], self.arrivals[p]));
            }
        }
        if !open || total_arrivals > 0 {
            m.scalar(
                "late_ratio",
                Labels::new(),
                ratio(total_late, total_arrivals),
            );
        }
        if open && !self.slippage.is_empty() {
            let mut e = HistogramEntry::micros("generator.slippage", Labels::new());
            e.hist = self.slippage.clone();
            m.histograms.push(e);
        }
        // per-second series
        while let Some((sec, b)) = self.open.pop_first() {
            self.closed.push(row(sec, b));
        }
        self.closed.sort_by_key(|r| r.0);
        let at = |s: u64| offset + s as f64;
        let mut series: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for (sec, h, completed, errors, started) in &self.closed {
            if let Some((p50, p95, p99)) = h.as_ref().map(quantiles) {
                series
                    .entry("latency.p50")
                    .or_default()
                    .push((at(*sec), p50));
                series
                    .entry("latency.p95")
                    .or_default()
                    .push((at(*sec), p95));
                series
                    .entry("latency.p99")
                    .or_default()
                    .push((at(*sec), p99));
            }
            series
                .entry("completed")
                .or_default()
                .push((at(*sec), *completed as f64));
            series
                .entry("errors")
                .or_default()
                .push((at(*sec), *errors as f64));
            if open {
                series
                    .entry("sent")
                    .or_default()
                    .push((at(*sec), *started as f64));
            }
        }
        if open {
            let secs = elapsed.ceil().max(0.0) as u64;
            series.insert(
                "target_rate",
                (0..secs).map(|s| (at(s), scheduled(s))).collect(),
            );
        }
        for (name, points) in series {
            m.push_series(name, Labels::new(), points);
        }
        m
    }

    /// `error_rate` and `throughput` for every label subset an SLO selector can name.
    fn gauges(&self, m: &mut Measurements, keys: &[Key], elapsed: f64, phase_seconds: &[f64]) {
        const DIMS: [&str; 4] = ["journey", "step", "status", "phase"];
        for mask in 0u8..16 {
            let with_status = mask & 0b0100 != 0;
            let project = |k: &Key, status: bool| -> Labels {
                let full = self.labels(k, true);
                DIMS.iter()
                    .enumerate()
                    .filter(|(i, d)| mask & (1 << i) != 0 && (status || **d != "status"))
                    .map(|(_, d)| (d.to_string(), full[*d].clone()))
                    .collect()
            };
            // (requests, errors, phase of the selection if any) per label set
            let mut sel: BTreeMap<Labels, (u64, u64, Option<usize>)> = BTreeMap::new();
            let mut denominators: BTreeMap<Labels, u64> = BTreeMap::new();
            for k in keys {
                let g = &self.groups[k];
                let e = sel.entry(project(k, true)).or_insert((0, 0, None));
                e.0 += g.requests;
                e.1 += g.errors;
                if mask & 0b1000 != 0 {
                    e.2 = Some(k.phase);
                }
                *denominators.entry(project(k, false)).or_default() += g.requests;
            }
            for (labels, (requests, errors, phase)) in sel {
                let denominator = if with_status {
                    let mut l = labels.clone();
                    l.remove("status");
                    denominators.get(&l).copied().unwrap_or(0)
                } else {
                    requests
                };
                m.scalar("error_rate", labels.clone(), ratio(errors, denominator));
                let secs = phase.map_or(elapsed, |p| phase_seconds.get(p).copied().unwrap_or(0.0));
                if secs > 0.0 {
                    m.scalar("throughput", labels, requests as f64 / secs);
                }
            }
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn row(sec: u64, b: Second) -> SecondRow {
    (
        sec,
        b.latency.filter(|h| !h.is_empty()),
        b.completed,
        b.errors,
        b.started,
    )
}

/// p50, p95 and p99 of a per-second histogram, in seconds.
fn quantiles(h: &Histogram<u64>) -> (f64, f64, f64) {
    let p = |q: f64| h.value_at_quantile(q) as f64 * 1e-6;
    (p(0.5), p(0.95), p(0.99))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::metrics::{Selection, labels};

    fn names() -> Names {
        Names {
            journeys: vec!["browse".into(), "buy".into()],
            steps: vec![vec!["list".into()], vec!["login".into(), "pay".into()]],
            phases: vec!["ramp".into(), "steady".into()],
        }
    }

    #[test]
    fn gauges_answer_every_selector_and_counters_sum() {
        let mut r = Recorder::new(names(), 0.010);
        let k = |journey, step, status, phase| Key {
            journey,
            step,
            status,
            phase,
        };
        for i in 0..90 {
            r.request(
                k(0, 0, StatusLabel::Code(200), 1),
                Some((0.02, 0.01)),
                None,
                1.0 + i as f64 * 0.01,
            );
        }
        for _ in 0..10 {
            r.request(
                k(1, 1, StatusLabel::Code(500), 1),
                Some((0.05, 0.05)),
                Some("boom"),
                2.0,
            );
        }
        r.request(
            k(1, 0, StatusLabel::Timeout, 0),
            None,
            Some("timed out"),
            0.5,
        );
        r.arrival(1, 0.5, 1.0);
        r.arrival(1, 0.0, 1.0);
        let m = r.finish(10.0, &[5.0, 5.0], true, 0.2, &|_| 10.0);
        let v = |metric: &str, l: Labels| match m.select(
            metric,
            &l,
            matches!(metric, "errors" | "requests" | "late"),
        ) {
            Selection::Value(v) => v,
            other => panic!("{metric}{l:?}: {other:?}"),
        };
        assert!((v("error_rate", Labels::new()) - 11.0 / 101.0).abs() < 1e-12);
        assert_eq!(v("error_rate", labels(&[("journey", "buy")])), 1.0);
        assert!((v("error_rate", labels(&[("status", "500")])) - 10.0 / 101.0).abs() < 1e-12);
        assert_eq!(
            v(
                "error_rate",
                labels(&[("journey", "browse"), ("phase", "steady")])
            ),
            0.0
        );
        assert_eq!(v("throughput", labels(&[("phase", "steady")])), 100.0 / 5.0);
        assert_eq!(v("throughput", Labels::new()), 101.0 / 10.0);
        assert_eq!(v("errors", Labels::new()), 11.0);
        assert_eq!(v("errors", labels(&[("status", "timeout")])), 1.0);
        assert_eq!(v("requests", labels(&[("step", "list")])), 90.0);
        assert_eq!(v("late", Labels::new()), 1.0);
        assert_eq!(v("late_ratio", Labels::new()), 0.5);
        assert_eq!(v("late_ratio", labels(&[("phase", "steady")])), 0.5);
        let Selection::Histogram(h, scale) =
            m.select("latency", &labels(&[("journey", "browse")]), false)
        else {
            panic!()
        };
        assert_eq!(h.len(), 90);
        assert!((h.value_at_quantile(0.5) as f64 * scale - 0.02).abs() < 1e-4);
        assert_eq!(m.error_samples.len(), 2);
        let series: Vec<&str> = m.series.iter().map(|s| s.metric.as_str()).collect();
        assert!(
            series.contains(&"latency.p99") && series.contains(&"target_rate"),
            "{series:?}"
        );
        let target = m.series.iter().find(|s| s.metric == "target_rate").unwrap();
        assert_eq!(target.points.len(), 10);
        assert!((target.points[0].0 - 0.2).abs() < 1e-12);
    }
}
