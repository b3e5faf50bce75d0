//! Goose as the HTTP engine, built at run time from the spec.
//!
//! One goose scenario with one transaction, `iteration`; goose's own metrics, console
//! output, logger and telnet controller are off (perfspec measures for itself).
//!
//! - **Closed model**: goose's test plan starts and stops the virtual users per stage; each
//!   transaction call is one journey, picked with the journeys' weights as probabilities
//!   (goose's transaction weights are repeat counts, so they are not used). Latency is
//!   measured from the actual send: a closed model cannot see coordinated omission.
//! - **Open model**: goose users are the `max_in_flight` workers of a shared arrival
//!   schedule. Each transaction call takes the next arrival, waits for its intended time,
//!   and runs one journey; when every worker is busy, arrivals queue (they are never
//!   dropped) and start late. `latency` counts from the intended time, `service_time` from
//!   the actual send; arrivals that started more than `late_tolerance` after their intended
//!   time are `late`.
//!
//! Stopping: [`Shared::stop`] is cancelled when the schedule is done, the closed stages are
//! over, or the run is cancelled (Ctrl-C, `max_duration`, `--timeout`); in-flight work is
//! then abandoned (not recorded) and the backend pulls goose's killswitch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use goose::prelude::*;
use tokio_util::sync::CancellationToken;

use super::target::error_chain;
use crate::backends::http::journey::{Iteration, Plan, Rendered, StepPlan};
use crate::backends::http::recorder::{Key, Recorder, StatusLabel};
use crate::backends::http::schedule::Stages;
use crate::backends::http::{self, Failure, Pacing, Response, Sink, Transport, classify};
use crate::engine::shard::Shard;

/// Which model a run follows.
pub enum Model {
    Open {
        /// Next arrival index to hand out.
        next: AtomicU64,
        /// Arrivals handed out and not finished yet.
        pending: AtomicU64,
        total: u64,
    },
    Closed,
}

/// State shared by every goose user of one run and the backend.
pub struct Shared {
    pub plan: Arc<Plan>,
    pub stages: Stages,
    pub model: Model,
    pub recorder: Mutex<Recorder>,
    /// Stop: no new work, abandon what is in flight.
    pub stop: CancellationToken,
    t0: OnceLock<Instant>,
    iterations: AtomicU64,
    in_flight: AtomicU64,
    pub peak_in_flight: AtomicU64,
    /// The `unique` data source that ran out, if one did.
    pub exhausted: Mutex<Option<String>>,
    /// `--shard K/N`: which stripe of the global arrivals (or iterations) this process runs.
    shard: Shard,
}

/// How often an idle worker wakes up to let goose stop it.
const IDLE_POLL: Duration = Duration::from_millis(100);

impl Shared {
    /// The state of one run; `shard` keeps its stripe of the global schedule (the closed
    /// model's `stages` are this shard's already, see [`Stages::striped`]).
    pub fn new(
        plan: Arc<Plan>,
        stages: Stages,
        open: bool,
        recorder: Recorder,
        shard: Shard,
    ) -> Shared {
        let model = if open {
            Model::Open {
                next: AtomicU64::new(0),
                pending: AtomicU64::new(0),
                total: shard.local_count(stages.total_arrivals()),
            }
        } else {
            Model::Closed
        };
        Shared {
            plan,
            stages,
            model,
            recorder: Mutex::new(recorder),
            stop: CancellationToken::new(),
            t0: OnceLock::new(),
            iterations: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            exhausted: Mutex::new(None),
            shard,
        }
    }

    /// When the load started (the first worker's first call), if it has.
    pub fn started(&self) -> Option<Instant> {
        self.t0.get().copied()
    }

    fn t0(&self) -> Instant {
        *self.t0.get_or_init(Instant::now)
    }

    fn recorder(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the planned load is complete: every arrival finished (open) or the stages
    /// are over (closed); also when a `unique` data source ran out and nothing is in flight.
    pub fn finished(&self) -> bool {
        let Some(t0) = self.started() else {
            return false;
        };
        let exhausted = self.exhausted.lock().map(|e| e.is_some()).unwrap_or(false);
        match &self.model {
            Model::Open {
                next,
                pending,
                total,
            } => {
                (next.load(Ordering::SeqCst) >= *total || exhausted)
                    && pending.load(Ordering::SeqCst) == 0
            }
            Model::Closed => {
                t0.elapsed().as_secs_f64() >= self.stages.duration()
                    || (exhausted && self.in_flight.load(Ordering::SeqCst) == 0)
            }
        }
    }

    /// Fraction of the planned load done, for progress.
    pub fn progress(&self) -> f64 {
        let Some(t0) = self.started() else { return 0.0 };
        match &self.model {
            Model::Open { next, total, .. } if *total > 0 => {
                next.load(Ordering::Relaxed).min(*total) as f64 / *total as f64
            }
            _ => (t0.elapsed().as_secs_f64() / self.stages.duration().max(1e-9)).min(1.0),
        }
    }

    async fn idle(&self) {
        tokio::time::sleep(IDLE_POLL).await;
    }

    fn exhaust(&self, name: String) {
        let mut e = self.exhausted.lock().unwrap_or_else(|e| e.into_inner());
        e.get_or_insert(name);
    }

    /// Open model: one transaction call of a worker.
    async fn open_arrival(&self, user: &mut GooseUser) {
        let t0 = self.t0();
        let Model::Open {
            next,
            pending,
            total,
        } = &self.model
        else {
            return;
        };
        let exhausted = self.exhausted.lock().map(|e| e.is_some()).unwrap_or(false);
        if self.stop.is_cancelled() || exhausted {
            return self.idle().await;
        }
        pending.fetch_add(1, Ordering::SeqCst);
        let local = next.fetch_add(1, Ordering::SeqCst);
        let _done = Decrement(pending);
        if local >= *total {
            drop(_done);
            return self.idle().await;
        }
        // the global arrival: its intended time, phase and iteration index
        let k = self.shard.global(local);
        let Some((at, phase)) = self.stages.arrival(k) else {
            return;
        };
        let intended = t0 + Duration::from_secs_f64(at);
        tokio::select! {
            () = http::wake::until(intended) => {}
            () = self.stop.cancelled() => return,
        }
        let started = Instant::now();
        let journey = self.plan.pick();
        let it = match self.plan.start(journey, k) {
            Ok(it) => it,
            Err(e) => {
                self.exhaust(e.0);
                return;
            }
        };
        self.recorder().arrival(
            phase,
            started.saturating_duration_since(intended).as_secs_f64(),
            started.duration_since(t0).as_secs_f64(),
        );
        self.run_journey(user, it, intended, phase, true).await;
    }

    /// Closed model: one transaction call of a virtual user = one journey.
    async fn closed_iteration(&self, user: &mut GooseUser) {
        let t0 = self.t0();
        if self.stop.is_cancelled() {
            return self.idle().await;
        }
        let n = self
            .shard
            .global(self.iterations.fetch_add(1, Ordering::Relaxed));
        let journey = self.plan.pick();
        let it = match self.plan.start(journey, n) {
            Ok(it) => it,
            Err(e) => {
                self.exhaust(e.0);
                return self.idle().await;
            }
        };
        let now = Instant::now();
        let phase = self.stages.phase_at(now.duration_since(t0).as_secs_f64());
        self.run_journey(user, it, now, phase, false).await;
    }

    /// Run the steps of one journey over `user` (see [`http::run_journey`]), counting it in
    /// flight.
    async fn run_journey(
        &self,
        user: &mut GooseUser,
        it: Iteration,
        intended: Instant,
        phase: usize,
        open: bool,
    ) {
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(in_flight, Ordering::Relaxed);
        let _f = Decrement(&self.in_flight);
        let pacing = Pacing {
            closed: !open,
            finish_in_flight: false,
            stop: &self.stop,
        };
        let mut transport = GooseTransport(user);
        http::run_journey(
            &self.plan,
            &mut transport,
            self,
            it,
            intended,
            phase,
            pacing,
        )
        .await;
    }
}

impl Sink for Shared {
    fn request(&self, key: Key, times: Option<(f64, f64)>, error: Option<&str>, end: Instant) {
        let at = end.saturating_duration_since(self.t0()).as_secs_f64();
        self.recorder().request(key, times, error, at);
    }
}

/// Decrements a counter when dropped.
struct Decrement<'a>(&'a AtomicU64);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Requests of a goose virtual user. The whole response body is read (latency is to the
/// full response, not to the first byte as goose records).
struct GooseTransport<'a>(&'a mut GooseUser);

impl Transport for GooseTransport<'_> {
    async fn send(&mut self, step: &StepPlan, r: Rendered) -> Result<Response, Failure> {
        let user = &mut *self.0;
        let url = user
            .build_url(&r.path)
            .map_err(|e| (StatusLabel::Error, format!("invalid url: {e}")))?;
        let url = reqwest::Url::parse(&url)
            .map_err(|e| (StatusLabel::Error, format!("invalid url: {e}")))?;
        let rb = r.request(&user.client, step, url);
        let response = if goose::goose::goose_method_from_method(step.method.clone()).is_ok() {
            let req = GooseRequest::builder()
                .set_request_builder(rb)
                .name(step.label.as_str())
                .build();
            match user.request(req).await {
                Ok(g) => g.response,
                Err(e) => return Err((StatusLabel::Error, format!("request failed: {e}"))),
            }
        } else {
            // goose has no OPTIONS: send it with the user's client directly
            match rb.build() {
                Ok(req) => user.client.execute(req).await,
                Err(e) => return Err((StatusLabel::Error, error_chain(&e))),
            }
        };
        let resp = response.map_err(|e| classify(&e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| classify(&e))?;
        Ok((status, headers, body.to_vec()))
    }
}

/// The goose attack for this run: configuration (everything goose prints or listens on is
/// off), one scenario, one transaction driven by `shared`.
pub fn attack(host: &str, shared: &Arc<Shared>, users: usize) -> Result<GooseAttack, GooseError> {
    let open = matches!(shared.model, Model::Open { .. });
    let plan = if open {
        // the workers start at once and run until the schedule is done; the backend ends the
        // attack with the killswitch, the generous hold only bounds a runaway
        let hold = shared.stages.duration().ceil() as u64 + 3600;
        format!("{users},0s;{users},{hold}s;0,0s")
    } else {
        shared.stages.goose_test_plan()
    };
    let config = goose::config::GooseConfiguration::parse_args_default(&[
        "--host",
        host,
        "--test-plan",
        &plan,
        "--quiet",
        "--no-telnet",
        "--no-metrics",
        "--no-print-metrics",
        "--no-error-summary",
    ])?;
    let s = shared.clone();
    let transaction: TransactionFunction = Arc::new(move |user| {
        let s = s.clone();
        Box::pin(async move {
            if open {
                s.open_arrival(user).await;
            } else {
                s.closed_iteration(user).await;
            }
            Ok(())
        })
    });
    let mut attack = GooseAttack::initialize_with_config(config)?;
    if open {
        // the workers share one connection pool, as the open model's arrivals are not users
        attack = attack.set_client_builder_without_cookies(
            goose::client::GooseClientBuilder::new().without_cookies(),
        )?;
    }
    Ok(attack.register_scenario(
        Scenario::new("perfspec")
            .register_transaction(Transaction::new(transaction).set_name("iteration")),
    ))
}

/// Goose installs a process-wide logger printing to stdout at its first run; perfspec
/// installs a silent one first (when no logger is set yet), so goose's stays out.
pub fn silence_goose_logger() {
    struct Silent;
    impl log::Log for Silent {
        fn enabled(&self, _: &log::Metadata) -> bool {
            false
        }
        fn log(&self, _: &log::Record) {}
        fn flush(&self) {}
    }
    static SILENT: Silent = Silent;
    if log::set_logger(&SILENT).is_ok() {
        log::set_max_level(log::LevelFilter::Off);
    }
}

/// Goose prints to stdout in places no option turns off (`N users launched.` with a test
/// plan). While a guard lives, file descriptor 1 points at /dev/null; `perfspec run` writes
/// nothing to stdout (progress and diagnostics go to stderr, reports to files).
pub struct StdoutSilenced(Option<libc::c_int>);

impl StdoutSilenced {
    pub fn new() -> StdoutSilenced {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: dup/open/dup2 on file descriptors this function owns or on fd 1; failures
        // leave stdout as it was.
        unsafe {
            let saved = libc::dup(1);
            if saved < 0 {
                return StdoutSilenced(None);
            }
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if null < 0 || libc::dup2(null, 1) < 0 {
                if null >= 0 {
                    libc::close(null);
                }
                libc::close(saved);
                return StdoutSilenced(None);
            }
            libc::close(null);
            StdoutSilenced(Some(saved))
        }
    }
}

impl Drop for StdoutSilenced {
    fn drop(&mut self) {
        use std::io::Write;
        if let Some(saved) = self.0.take() {
            // what goose left in Rust's stdout buffer goes to /dev/null too
            let _ = std::io::stdout().flush();
            // SAFETY: restores fd 1 from the descriptor saved in `new` and closes the copy
            unsafe {
                libc::dup2(saved, 1);
                libc::close(saved);
            }
        }
    }
}
