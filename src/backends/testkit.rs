//! `backend = "testkit"`: a test double for the engine, registered only when
//! `PERFSPEC_TESTKIT=1`. It measures nothing real: it records a deterministic sequence of
//! observations (1 ms, 2 ms, … 100 ms, repeating; one every 10 ms) for
//! `PERFSPEC_TESTKIT_SECONDS` seconds (default 1) — or, for a spec with
//! `description = "unavailable"`, fails to start — so that tests can exercise cancellation,
//! time limits, SLO evaluation and results end to end with known values. Results say
//! `"backend": "testkit"`.

use std::time::Duration;

use crate::engine::metrics::{Labels, Measurements};
use crate::engine::{Backend, BackendError, Plan, RunContext};
use crate::spec::Spec;
use crate::spec::catalog::{self, Kind, Shape};
use crate::spec::diagnostic::Diagnostic;

pub struct Testkit {
    pub kind: Kind,
}

/// The testkit's plan: how long it records observations.
#[derive(Debug, serde::Serialize)]
pub struct TestkitPlan {
    /// `PERFSPEC_TESTKIT_SECONDS` (default 1).
    pub seconds: f64,
}

impl std::fmt::Display for TestkitPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "testkit: deterministic observations (1..100 ms, one every 10 ms) for {}",
            crate::engine::plan::secs(self.seconds)
        )
    }
}

#[async_trait::async_trait]
impl Backend for Testkit {
    fn kind(&self) -> Kind {
        self.kind
    }
    fn name(&self) -> &'static str {
        "testkit"
    }
    fn describe(&self) -> &'static str {
        "test double with deterministic observations (PERFSPEC_TESTKIT=1 only)"
    }

    fn plan(&self, _spec: &Spec) -> Result<Plan, Vec<Diagnostic>> {
        Ok(Plan::new(TestkitPlan {
            seconds: std::env::var("PERFSPEC_TESTKIT_SECONDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(1.0),
        }))
    }

    async fn run(
        &self,
        spec: &Spec,
        plan: &Plan,
        cx: &RunContext,
    ) -> Result<Measurements, BackendError> {
        let seconds = plan
            .get::<TestkitPlan>()
            .ok_or_else(|| crate::engine::plan::wrong_plan("testkit"))?
            .seconds;
        // a spec described as "unavailable" plays a backend that cannot start (exit 3)
        if spec.description.as_deref() == Some("unavailable") {
            return Err(BackendError::Unavailable(
                "testkit: backend not available (asked by the spec)".into(),
            ));
        }
        let hist_metric = catalog::metrics(self.kind)
            .iter()
            .find(|d| d.shape == Shape::Histogram)
            .map(|d| d.name);
        let mut m = Measurements::default();
        let mut n: u64 = 0;
        let mut per_second: Vec<(f64, f64)> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        while cx.elapsed() < seconds && !cx.cancel.is_cancelled() {
            tokio::select! {
                _ = tick.tick() => {}
                () = cx.cancel.cancelled() => break,
            }
            n += 1;
            if let Some(h) = hist_metric {
                m.histogram(h, Labels::new(), 1e-6)
                    .record(((n - 1) % 100 + 1) as f64 * 1e-3);
            }
            let sec = cx.elapsed().floor();
            match per_second.last_mut() {
                Some((t, c)) if *t == sec => *c += 1.0,
                _ => per_second.push((sec, 1.0)),
            }
            cx.progress
                .update(Some(cx.elapsed() / seconds), &format!("{n} observations"));
        }
        m.elapsed_s = cx.elapsed();
        if self.kind == Kind::Load {
            m.scalar("requests", Labels::new(), n as f64);
            m.scalar("errors", Labels::new(), 0.0);
            m.scalar("error_rate", Labels::new(), 0.0);
            m.scalar("late", Labels::new(), 0.0);
            m.scalar("late_ratio", Labels::new(), 0.0);
            m.scalar(
                "throughput",
                Labels::new(),
                n as f64 / m.elapsed_s.max(1e-9),
            );
        }
        m.push_series("observations", Labels::new(), per_second);
        m.notes
            .push("testkit: deterministic observations, not a measurement".into());
        Ok(m)
    }
}
