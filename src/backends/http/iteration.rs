//! One journey iteration over a [`Transport`], recorded into a [`Sink`].

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::backends::http::journey::{Iteration, Plan, Rendered, StepPlan};
use crate::backends::http::recorder::{Key, StatusLabel};
use crate::backends::load::target::error_chain;

/// Status, headers and the whole body of a response.
pub type Response = (u16, reqwest::header::HeaderMap, Vec<u8>);

/// Why a request got no answer: `Error` or `Timeout`, and the message.
pub type Failure = (StatusLabel, String);

/// How the requests of a journey reach the target.
pub trait Transport {
    /// Send `rendered` (step `step` of a journey) and read the whole answer.
    fn send(
        &mut self,
        step: &StepPlan,
        rendered: Rendered,
    ) -> impl Future<Output = Result<Response, Failure>> + Send;
}

/// Where the requests of an iteration are recorded.
pub trait Sink {
    /// A request ended at `end`. `times`: seconds from when it was due (`latency`) and from
    /// its send (`service_time`); `None` when it was never sent. `error`: why it failed.
    fn request(&self, key: Key, times: Option<(f64, f64)>, error: Option<&str>, end: Instant);
}

/// How an iteration is paced and stopped.
#[derive(Clone, Copy, Debug)]
pub struct Pacing<'a> {
    /// A closed-model user: the think time after the last step is slept too (it paces the
    /// user's loop); an open-model arrival ends with its last answer.
    pub closed: bool,
    /// On `stop`, a request in flight is still awaited and recorded (a scaling step keeps
    /// the answers that come after its end for the failover timeline); otherwise it is
    /// abandoned and nothing more is recorded (a load run's end is its end).
    pub finish_in_flight: bool,
    /// Ends the iteration early: no new step starts and no think time is slept.
    pub stop: &'a CancellationToken,
}

/// A reqwest error as a failure: a timeout is `Timeout`, anything else `Error`, with the
/// whole cause chain as the message.
pub fn classify(e: &reqwest::Error) -> Failure {
    let status = if e.is_timeout() {
        StatusLabel::Timeout
    } else {
        StatusLabel::Error
    };
    (status, error_chain(e))
}

/// Run the steps of one started journey iteration, `it`, of phase `phase`. The first
/// step's latency counts from `intended`; each later step's from the moment it was due (the
/// end of the previous step plus its think time). A failed step (no answer, or a check that
/// does not hold) ends the journey. Returns early on `stop`.
pub async fn run_journey<T: Transport, S: Sink>(
    plan: &Plan,
    transport: &mut T,
    sink: &S,
    mut it: Iteration,
    intended: Instant,
    phase: usize,
    pacing: Pacing<'_>,
) {
    let stop = pacing.stop;
    let journey = it.journey;
    let steps = &plan.journeys[journey].steps;
    let mut due = intended;
    for (i, step) in steps.iter().enumerate() {
        if i > 0 {
            tokio::select! {
                () = tokio::time::sleep_until(due.into()) => {}
                () = stop.cancelled() => return,
            }
        }
        if stop.is_cancelled() {
            return;
        }
        let key = |status| Key {
            journey,
            step: i,
            status,
            phase,
        };
        let label = &step.label;
        let rendered = match plan.render(&mut it, i) {
            Ok(r) => r,
            Err(e) => {
                let msg = it.redact(&format!("{label}: {e}"));
                sink.request(key(StatusLabel::Error), None, Some(&msg), Instant::now());
                return;
            }
        };
        let sent = Instant::now();
        let outcome = if pacing.finish_in_flight {
            transport.send(step, rendered).await
        } else {
            tokio::select! {
                r = transport.send(step, rendered) => r,
                () = stop.cancelled() => return,
            }
        };
        let end = Instant::now();
        let times = Some((
            end.saturating_duration_since(due).as_secs_f64(),
            end.saturating_duration_since(sent).as_secs_f64(),
        ));
        let (status, error) = match outcome {
            Ok((code, headers, body)) => (
                StatusLabel::Code(code),
                plan.check(&mut it, i, code, &headers, &body).err(),
            ),
            Err((status, e)) => (status, Some(e)),
        };
        let error = error.map(|e| it.redact(&format!("{label}: {e}")));
        sink.request(key(status), times, error.as_deref(), end);
        if error.is_some() {
            return;
        }
        let pause = step.think.map(|r| {
            let (lo, hi) = (r.min.0, r.max.0);
            Duration::from_secs_f64(if hi > lo {
                rand::Rng::random_range(&mut rand::rng(), lo..hi)
            } else {
                lo
            })
        });
        due = end + pause.unwrap_or_default();
        if i + 1 == steps.len()
            && pacing.closed
            && let Some(p) = pause
        {
            // a closed user paces its loop with the think time after the last step too
            tokio::select! {
                () = tokio::time::sleep(p) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}
