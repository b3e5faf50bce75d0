//! Stages → when things happen. The open model's arrival schedule (every arrival has an
//! intended start time, computed from the stages' rates) and the closed model's goose test
//! plan (virtual users per stage), plus the phase (stage label) of any moment of the run.

use crate::spec::load::{Level, Stage};

/// One stage, resolved to times since the start of the load.
#[derive(Debug, Clone)]
struct Span {
    start: f64,
    duration: f64,
    /// Level at the start and the end of the stage (rate per second, or users).
    from: f64,
    to: f64,
    /// Arrivals scheduled before this stage (open model).
    count_before: f64,
    phase: usize,
}

impl Span {
    /// Arrivals scheduled in this stage: the integral of the rate.
    fn area(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.duration
    }
}

/// The stages of a run: their timing and phase names, shared by both models.
#[derive(Debug, Clone)]
pub struct Stages {
    spans: Vec<Span>,
    /// Distinct phase names: a stage's `label`, or `stage-N` (N counts from 1).
    pub phases: Vec<String>,
}

impl Stages {
    /// Resolve the spec's stages. `whole_seconds` rounds every stage up to whole seconds (the
    /// resolution of a goose test plan, used by the closed model).
    pub fn new(stages: &[Stage], whole_seconds: bool) -> Stages {
        let mut spans = Vec::new();
        let mut phases: Vec<String> = Vec::new();
        let (mut t, mut level, mut count) = (0.0, 0.0, 0.0);
        for (i, s) in stages.iter().enumerate() {
            let name = s
                .label()
                .map_or_else(|| format!("stage-{}", i + 1), str::to_string);
            let phase = match phases.iter().position(|p| *p == name) {
                Some(p) => p,
                None => {
                    phases.push(name);
                    phases.len() - 1
                }
            };
            let target = match s.level().value {
                Level::Rate(r) => r,
                Level::Users(u) => u as f64,
            };
            let duration = if whole_seconds {
                s.duration().ceil().max(1.0)
            } else {
                s.duration()
            };
            let from = match s {
                Stage::Ramp { .. } => level,
                Stage::Hold { .. } => target,
            };
            let span = Span {
                start: t,
                duration,
                from,
                to: target,
                count_before: count,
                phase,
            };
            count += span.area();
            t += duration;
            level = target;
            spans.push(span);
        }
        Stages { spans, phases }
    }

    /// Closed model, `--shard K/N`: this shard's virtual users of every stage (users are
    /// striped: user `u` runs on shard `(u − 1) mod N + 1`).
    pub fn striped(mut self, shard: crate::engine::shard::Shard) -> Stages {
        for s in &mut self.spans {
            s.from = shard.users(s.from);
            s.to = shard.users(s.to);
        }
        self
    }

    /// Each stage as resolved: `(duration, level at its start, level at its end, phase)`.
    pub fn levels(&self) -> impl Iterator<Item = (f64, f64, f64, usize)> + '_ {
        self.spans
            .iter()
            .map(|s| (s.duration, s.from, s.to, s.phase))
    }

    /// Total planned duration in seconds.
    pub fn duration(&self) -> f64 {
        self.spans.last().map_or(0.0, |s| s.start + s.duration)
    }

    /// The phase of a moment `t` seconds into the load (the last phase after the end).
    pub fn phase_at(&self, t: f64) -> usize {
        self.spans
            .iter()
            .rev()
            .find(|s| t >= s.start)
            .or(self.spans.first())
            .map_or(0, |s| s.phase)
    }

    /// Seconds of each phase that had passed `elapsed` seconds into the load.
    pub fn phase_durations(&self, elapsed: f64) -> Vec<f64> {
        let mut d = vec![0.0; self.phases.len()];
        for s in &self.spans {
            d[s.phase] += (elapsed - s.start).clamp(0.0, s.duration);
        }
        d
    }

    /// When the last stage of `phase` ends, seconds into the load.
    pub fn phase_end(&self, phase: usize) -> Option<f64> {
        self.spans
            .iter()
            .filter(|s| s.phase == phase)
            .map(|s| s.start + s.duration)
            .reduce(f64::max)
    }

    /// Open model: arrivals scheduled in total.
    pub fn total_arrivals(&self) -> u64 {
        let total = self.spans.last().map_or(0.0, |s| s.count_before + s.area());
        // arrival k is scheduled when the cumulative count reaches k: k = 0, 1, … < total
        (total - 1e-9).ceil().max(0.0) as u64
    }

    /// Open model: the intended start of arrival `k` (seconds into the load) and its phase;
    /// `None` past the end of the schedule.
    pub fn arrival(&self, k: u64) -> Option<(f64, usize)> {
        if k >= self.total_arrivals() {
            return None;
        }
        let k = k as f64;
        let span = self
            .spans
            .iter()
            .rev()
            .find(|s| s.count_before <= k && s.area() > 0.0)?;
        let c = k - span.count_before;
        // the rate rises linearly: count(t) = from·t + (to - from)·t²/(2·duration) = c
        let a = (span.to - span.from) / (2.0 * span.duration);
        let disc = (span.from * span.from + 4.0 * a * c).max(0.0);
        let denom = span.from + disc.sqrt();
        let t = if c <= 0.0 {
            0.0
        } else if denom > 0.0 {
            2.0 * c / denom
        } else {
            0.0
        };
        Some((span.start + t.min(span.duration), span.phase))
    }

    /// Open model: arrivals scheduled in `[a, b)` seconds into the load.
    pub fn scheduled_between(&self, a: f64, b: f64) -> f64 {
        self.count_at(b) - self.count_at(a)
    }

    fn count_at(&self, t: f64) -> f64 {
        let Some(span) = self.spans.iter().rev().find(|s| t >= s.start) else {
            return 0.0;
        };
        let x = (t - span.start).min(span.duration);
        span.count_before + span.from * x + (span.to - span.from) * x * x / (2.0 * span.duration)
    }

    /// Closed model: the goose test plan, `users,seconds;…` ending with `0,0`.
    pub fn goose_test_plan(&self) -> String {
        let mut steps: Vec<String> = Vec::new();
        for (i, s) in self.spans.iter().enumerate() {
            let users = s.to.round() as u64;
            let secs = s.duration.ceil() as u64;
            if i == 0 && s.from == s.to {
                // a first hold starts its users at once
                steps.push(format!("{users},0s"));
            }
            steps.push(format!("{users},{secs}s"));
        }
        steps.push("0,0s".to_string());
        steps.join(";")
    }

    /// Closed model: the most users any stage asks for.
    pub fn peak_level(&self) -> f64 {
        self.spans
            .iter()
            .map(|s| s.from.max(s.to))
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::decode::Duration;
    use crate::spec::source::{Span as SrcSpan, Spanned};

    fn hold(rate: f64, secs: f64, label: Option<&str>) -> Stage {
        Stage::Hold {
            hold: Spanned::new(Level::Rate(rate), SrcSpan::default()),
            for_: Duration(secs),
            label: label.map(str::to_string),
        }
    }

    fn ramp(rate: f64, secs: f64) -> Stage {
        Stage::Ramp {
            ramp_to: Spanned::new(Level::Rate(rate), SrcSpan::default()),
            over: Duration(secs),
            label: None,
        }
    }

    #[test]
    fn a_hold_spaces_arrivals_evenly() {
        let s = Stages::new(&[hold(100.0, 10.0, Some("steady"))], false);
        assert_eq!(s.total_arrivals(), 1000);
        assert_eq!(s.arrival(0), Some((0.0, 0)));
        let (t, _) = s.arrival(250).unwrap();
        assert!((t - 2.5).abs() < 1e-9);
        assert_eq!(s.arrival(1000), None);
        assert_eq!(s.phases, vec!["steady".to_string()]);
    }

    #[test]
    fn a_ramp_accelerates_and_hands_over_to_the_hold() {
        let s = Stages::new(&[ramp(20.0, 5.0), hold(20.0, 15.0, Some("steady"))], false);
        // ramp 0 → 20/s over 5s: 50 arrivals, then 300 in the hold
        assert_eq!(s.total_arrivals(), 350);
        let times: Vec<f64> = (0..350).map(|k| s.arrival(k).unwrap().0).collect();
        assert!(times.windows(2).all(|w| w[1] > w[0]), "strictly increasing");
        // half of the ramp's arrivals come in its last ~29% (t > 5/√2)
        assert!(
            (times[25] - 5.0 / 2f64.sqrt()).abs() < 1e-6,
            "{}",
            times[25]
        );
        assert!((times[50] - 5.0).abs() < 1e-9);
        assert_eq!(s.arrival(49).unwrap().1, 0);
        assert_eq!(s.arrival(50).unwrap().1, 1);
        assert_eq!(s.phases, vec!["stage-1".to_string(), "steady".to_string()]);
        assert!((s.scheduled_between(5.0, 6.0) - 20.0).abs() < 1e-9);
        assert!((s.scheduled_between(0.0, 5.0) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn ramp_down_and_phase_durations() {
        let s = Stages::new(&[hold(10.0, 2.0, None), ramp(0.0, 2.0)], false);
        assert_eq!(s.total_arrivals(), 30);
        let last = s.arrival(29).unwrap().0;
        assert!(last > 2.0 && last < 4.0, "{last}");
        assert_eq!(s.phase_durations(3.0), vec![2.0, 1.0]);
        assert_eq!(s.phase_at(3.5), 1);
    }

    #[test]
    fn closed_test_plan() {
        let users = |n: u64| Spanned::new(Level::Users(n), SrcSpan::default());
        let st = [
            Stage::Ramp {
                ramp_to: users(10),
                over: Duration(4.5),
                label: None,
            },
            Stage::Hold {
                hold: users(10),
                for_: Duration(10.0),
                label: Some("steady".into()),
            },
        ];
        let s = Stages::new(&st, true);
        assert_eq!(s.goose_test_plan(), "10,5s;10,10s;0,0s");
        assert_eq!(s.duration(), 15.0);
        let first_hold = Stages::new(&st[1..], true);
        assert_eq!(first_hold.goose_test_plan(), "10,0s;10,10s;0,0s");
    }
}
