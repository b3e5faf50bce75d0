//! Faults of a scaling step (SIGKILL or SIGSTOP of one replica at a time into the step,
//! with restore) and the `failover.*` metrics measured around them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::engine::RunContext;
use crate::engine::metrics::{Labels, Measurements, labels};
use crate::engine::search;
use crate::engine::verdict::Slo;
use crate::process::{self};
use crate::spec::scaling::FaultAction;

use super::driver::StepResult;
use super::replicas::{Launcher, Proc, Replica};
use super::step::texts;
use super::step::{self};

/// Tries to restart a crashed replica on its port.
pub(super) const RESTART_ATTEMPTS: usize = 3;

/// A fault to inject during one step.
pub(super) struct Injection {
    pub(super) at: f64,
    pub(super) action: FaultAction,
    pub(super) restore_after: Option<f64>,
    pub(super) replicas: Arc<Mutex<Vec<Replica>>>,
    pub(super) index: usize,
    pub(super) launcher: Launcher,
    pub(super) cx: RunContext,
}

impl Injection {
    /// The fault time (seconds into the step) if the fault was injected, and a note when the
    /// replica could not be brought back. `step_end` ends every wait: a fault due after the
    /// step is not injected, and a hung replica is let go on at the step's end.
    /// `fired` gets the fault time in µs after `t0` just before the signal is sent.
    pub(super) async fn run(
        self,
        t0: Instant,
        step_end: CancellationToken,
        fired: Arc<AtomicU64>,
    ) -> (Option<f64>, Option<String>) {
        let wait = self.at - t0.elapsed().as_secs_f64();
        if wait > 0.0 {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs_f64(wait)) => {}
                () = self.cx.cancel.cancelled() => return (None, None),
                () = step_end.cancelled() => {
                    return (None, Some(format!(
                        "the fault was due {:.1}s into the step, which ended first",
                        self.at
                    )));
                }
            }
        }
        let pid = {
            let r = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
            r.get(self.index)
                .and_then(|r| r.proc.as_ref())
                .and_then(Proc::pid)
        };
        let Some(pid) = pid else {
            return (
                None,
                Some(format!("replica {} was not running", self.index + 1)),
            );
        };
        let sig = match self.action {
            FaultAction::Kill => libc::SIGKILL,
            FaultAction::Hang => libc::SIGSTOP,
        };
        let at = t0.elapsed().as_secs_f64();
        fired.store((at * 1e6) as u64, Ordering::Release);
        process::signal_group(pid, sig);
        let Some(after) = self.restore_after else {
            if self.action == FaultAction::Hang {
                // a stopped replica is let go on when the step ends
                step_end.cancelled().await;
                process::signal_group(pid, libc::SIGCONT);
            }
            return (Some(at), None);
        };
        let on_time = tokio::select! {
            () = tokio::time::sleep(Duration::from_secs_f64(after)) => true,
            () = self.cx.cancel.cancelled() => false,
            () = step_end.cancelled() => false,
        };
        if !on_time && self.action == FaultAction::Kill {
            // interrupted, or the step is over: the replica is not needed any more
            return (
                Some(at),
                (!self.cx.cancel.is_cancelled()).then(|| {
                    format!(
                        "the step ended before replica {} was due back ({}s after the crash)",
                        self.index + 1,
                        after
                    )
                }),
            );
        }
        (Some(at), self.restore(pid).await)
    }

    /// SIGCONT a hung replica, or start a crashed one again on its port (the balancer's
    /// list stays as it is). A note when that failed.
    pub(super) async fn restore(&self, pid: u32) -> Option<String> {
        match self.action {
            FaultAction::Hang => {
                process::signal_group(pid, libc::SIGCONT);
                None
            }
            FaultAction::Kill => {
                let old = self.replicas.lock().unwrap_or_else(|e| e.into_inner())[self.index]
                    .proc
                    .take();
                drop(old);
                let port = self.replicas.lock().unwrap_or_else(|e| e.into_inner())[self.index].port;
                // the port may linger a moment after the crash: a few tries
                let mut last = String::new();
                for attempt in 0..RESTART_ATTEMPTS {
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    match self.launcher.start(self.index, Some(port), &self.cx).await {
                        Ok(r) => {
                            self.replicas.lock().unwrap_or_else(|e| e.into_inner())[self.index]
                                .proc = r.proc;
                            return None;
                        }
                        Err(e) => last = e.to_string(),
                    }
                    if self.cx.cancel.is_cancelled() {
                        break;
                    }
                }
                Some(format!(
                    "replica {} could not be restarted on port {port}: {last}",
                    self.index + 1
                ))
            }
        }
    }
}

/// failover.* from a step with a fault. `failover.errors` / `error_rate` count the requests
/// that ended at or after the fault (one in flight when the replica died counts, whenever it
/// started), and the `failover.errors` series is per second of completion. Each second of
/// the step (by arrival) is judged by the step SLOs with the evaluator;
/// `failover.recovery_time` is how long after the fault they hold again for a second, and
/// `failover.p95` the per-second p95 (by arrival) for the chart.
pub(super) fn failover(m: &mut Measurements, r: &StepResult, criteria: &[Slo]) {
    let Some(at) = r.fault_at else {
        m.notes.push(
            r.fault_note
                .clone()
                .unwrap_or_else(|| "the fault was not injected (the step ended first)".into()),
        );
        return;
    };
    if let Some(note) = &r.fault_note {
        m.notes.push(format!("failover: {note}"));
    }
    let from = at.floor();
    let (total, errs) = (r.after_fault.0 as f64, r.after_fault.1 as f64);
    let err_series = (0..r.phases.len() as u64)
        .map(|s| (s as f64, r.ended.get(&s).map_or(0.0, |c| c.1 as f64)))
        .collect();
    let mut p95_series = Vec::new();
    let mut bad = Vec::new();
    for (i, phase) in r.phases.iter().enumerate() {
        let t = i as f64;
        if let Some(p) = step::latency_quantile(&r.m, Some(phase), 0.95) {
            p95_series.push((t, p));
        }
        let held = step::judge(criteria, &r.m, Some(phase)).held;
        bad.push((t, if held { 0.0 } else { 1.0 }));
    }
    m.scalar("failover.errors", Labels::new(), errs);
    m.scalar("failover.error_rate", Labels::new(), errs / total.max(1.0));
    match search::recovery_time(&bad, from, 1.0, |v| v == 0.0) {
        Some(rt) => m.scalar(
            "failover.recovery_time",
            Labels::new(),
            (rt + from - at).max(0.0),
        ),
        None => m.notes.push(format!(
            "failover: the step SLOs ({}) did not hold again within the step",
            texts(criteria)
        )),
    }
    // the fault's time rides on the series so that a report can mark it on the timeline
    let x = labels(&[("x", "seconds"), ("fault_at", &format!("{at:.3}"))]);
    m.push_series("failover.errors", x.clone(), err_series);
    m.push_series("failover.p95", x, p95_series);
    m.notes.push(format!(
        "failover: fault at {at:.1}s into the step, {errs} errors of {total} requests after it"
    ));
}
