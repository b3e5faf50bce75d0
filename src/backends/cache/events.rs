//! Events of a cache run: an instance restarting with an empty L1, or the Redis perfspec
//! started being killed (and restored). They fire at a fraction of the operations or at a time.

use std::sync::Arc;
use std::time::Duration;

use super::plan::{Action, Plan, PlannedEvent};
use super::run_state::Run;
use crate::spec::cache::At;

/// The events of a plan split into those due at an operation count (sorted) and those due
/// after a time.
pub fn schedule(plan: &Plan) -> (Vec<(u64, PlannedEvent)>, Vec<(Duration, PlannedEvent)>) {
    let mut due = Vec::new();
    let mut timed = Vec::new();
    for e in &plan.events {
        match (e.at, plan.ops, plan.duration) {
            (At::Fraction(f), Some(ops), _) => due.push(((f * ops as f64).round() as u64, *e)),
            (At::Fraction(f), None, Some(d)) => timed.push((d.mul_f64(f), *e)),
            (At::Time(s), _, _) => timed.push((Duration::from_secs_f64(s), *e)),
            (At::Fraction(_), None, None) => {}
        }
    }
    due.sort_by_key(|(n, _)| *n);
    (due, timed)
}

/// The instances an event restarts (their L1s start empty).
pub fn restarted(plan: &Plan) -> Vec<usize> {
    plan.events
        .iter()
        .filter_map(|e| match e.action {
            Action::Restart(i) => Some(i),
            Action::KillRedis { .. } => None,
        })
        .collect()
}

/// Fire the timed events on their own tasks; they are dropped when the run ends first.
pub fn spawn_timed(run: &Arc<Run>, timed: Vec<(Duration, PlannedEvent)>) {
    for (after, e) in timed {
        let run = run.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(after) => fire(&run, e).await,
                () = run.done.cancelled() => {}
            }
        });
    }
}

/// Carry out one event now.
pub async fn fire(run: &Arc<Run>, e: PlannedEvent) {
    let t = run.now();
    match e.action {
        Action::Restart(i) => {
            if let Some(inst) = run.instances.get(i) {
                let what = match inst.restart(&run.shared) {
                    Ok(()) => format!("instance {} restarted with an empty l1", i + 1),
                    Err(e) => format!("instance {} could not restart: {e}", i + 1),
                };
                run.record(t, what);
            }
        }
        Action::KillRedis { restore_after } => {
            let Some(server) = &run.server else { return };
            server.lock().await.kill();
            run.record(t, "redis-server killed (SIGKILL)".into());
            if let Some(d) = restore_after {
                let run = run.clone();
                let server = server.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = tokio::time::sleep(d) => {}
                        () = run.done.cancelled() => return,
                    }
                    let t = run.now();
                    let msg = match server.lock().await.restart().await {
                        Ok(()) => "redis-server restarted, empty".to_string(),
                        Err(e) => format!("redis-server did not restart: {e}"),
                    };
                    run.record(t, msg);
                });
            }
        }
    }
}
