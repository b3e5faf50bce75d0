//! Client-side balancing over a step's replicas (or the one nginx in front of them), like
//! nginx with passive checks: round robin or least connections, a failed replica marked
//! down for `fail_timeout`, one retry of what never reached a replica. [`Balanced`] is the
//! HTTP engine's transport for a scaling step.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::backends::http::journey::{Rendered, StepPlan};
use crate::backends::http::recorder::StatusLabel;
use crate::backends::http::{Failure, Response, Transport, classify};
use crate::backends::load::target;
use crate::spec::scaling::{Balancer as BalancerSpec, Method};

/// Client-side balancer over backends (one backend for nginx).
pub(super) struct Balancer {
    pub(super) urls: Vec<String>,
    pub(super) least_conn: bool,
    pub(super) retries: bool,
    pub(super) fail_timeout: f64,
    pub(super) next: AtomicUsize,
    pub(super) in_flight: Vec<AtomicU64>,
    /// Down until this many ms after `t0`.
    pub(super) down_until: Vec<AtomicU64>,
    pub(super) t0: Instant,
}

impl Balancer {
    /// A balancer over `urls` as the spec's `[balancer]` says (round robin, retries on and
    /// a `fail_timeout` of 1 s without one).
    pub(super) fn new(urls: Vec<String>, spec: Option<&BalancerSpec>) -> Balancer {
        Balancer {
            in_flight: urls.iter().map(|_| AtomicU64::new(0)).collect(),
            down_until: urls.iter().map(|_| AtomicU64::new(0)).collect(),
            urls,
            least_conn: spec.and_then(|b| b.method) == Some(Method::LeastConn),
            retries: spec.and_then(|b| b.retries).unwrap_or(true),
            fail_timeout: spec.and_then(|b| b.fail_timeout).map_or(1.0, |d| d.0),
            next: AtomicUsize::new(0),
            t0: Instant::now(),
        }
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    pub(super) fn pick(&self, avoid: Option<usize>) -> usize {
        let n = self.urls.len();
        let now = self.now_ms();
        let up = |i: usize| Some(i) != avoid && self.down_until[i].load(Ordering::Relaxed) <= now;
        // ties (e.g. nothing in flight anywhere) start at a rotating offset, so that light
        // load still spreads over every replica
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        if self.least_conn {
            let best = (0..n)
                .map(|k| (start + k) % n)
                .filter(|&i| up(i))
                .min_by_key(|&i| self.in_flight[i].load(Ordering::Relaxed));
            if let Some(b) = best {
                return b;
            }
        } else {
            for k in 0..n {
                let i = (start + k) % n;
                if up(i) {
                    return i;
                }
            }
        }
        // every other replica is down: anyone but the one to avoid
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| Some(i) != avoid)
            .unwrap_or(start % n)
    }

    pub(super) fn mark_down(&self, i: usize) {
        if self.urls.len() > 1 {
            let until = self.now_ms() + (self.fail_timeout * 1000.0) as u64;
            self.down_until[i].store(until, Ordering::Relaxed);
        }
    }

    /// Send one request built by `make` for a base URL, like nginx with passive checks and
    /// `proxy_next_upstream error timeout http_502 http_503`: a refused connection, a
    /// timeout or a 5xx marks the replica down for `fail_timeout`; with retries, a request
    /// that never reached a replica (connection error) is sent once more to another one, and
    /// so is an idempotent request answered 502/503. Timeouts and other answers are final:
    /// the request may have had effects.
    pub(super) async fn send(
        &self,
        idempotent: bool,
        make: impl Fn(&str) -> Result<reqwest::RequestBuilder, String>,
    ) -> Result<Response, (StatusLabel, String)> {
        let attempts = if self.retries && self.urls.len() > 1 {
            2
        } else {
            1
        };
        let mut avoid = None;
        let mut last = (StatusLabel::Error, String::new());
        for attempt in 0..attempts {
            let final_try = attempt + 1 == attempts;
            let i = self.pick(avoid);
            let rb = make(&self.urls[i]).map_err(|e| (StatusLabel::Error, e))?;
            let outcome = {
                let _busy = InFlight::new(&self.in_flight[i]);
                match rb.send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let headers = resp.headers().clone();
                        resp.bytes()
                            .await
                            .map(|body| (status, headers, body.to_vec()))
                    }
                    Err(e) => Err(e),
                }
            };
            match outcome {
                Ok(r) => {
                    if r.0 >= 500 {
                        self.mark_down(i);
                    }
                    if final_try || !(idempotent && matches!(r.0, 502 | 503)) {
                        return Ok(r);
                    }
                    last = (StatusLabel::Code(r.0), format!("status {}", r.0));
                }
                Err(e) if e.is_builder() => {
                    return Err((StatusLabel::Error, target::error_chain(&e)));
                }
                Err(e) => {
                    self.mark_down(i);
                    let msg = classify(&e);
                    if final_try || !e.is_connect() {
                        return Err(msg);
                    }
                    last = msg;
                }
            }
            avoid = Some(i);
        }
        Err(last)
    }
}

/// Counts a request in flight on one replica for as long as it lives (also when the
/// request's future is dropped).
pub(super) struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    pub(super) fn new(c: &'a AtomicU64) -> InFlight<'a> {
        c.fetch_add(1, Ordering::Relaxed);
        InFlight(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Methods a balancer may send twice (RFC 9110 §9.2.2).
pub(super) fn idempotent(m: &reqwest::Method) -> bool {
    use reqwest::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
    ]
    .contains(m)
}

/// Join a journey's rendered path (or absolute URL) to a replica's base URL.
pub(super) fn join(base: &str, path: &str) -> Result<reqwest::Url, String> {
    let url = if path.starts_with("http://") || path.starts_with("https://") {
        path.to_string()
    } else if path.starts_with('/') {
        format!("{base}{path}")
    } else {
        format!("{base}/{path}")
    };
    reqwest::Url::parse(&url).map_err(|e| format!("invalid url: {e}"))
}

/// Journey requests through the step's balancer (retries and passive checks as configured).
pub(super) struct Balanced<'a> {
    pub(super) balancer: &'a Balancer,
    pub(super) client: &'a reqwest::Client,
}

impl Transport for Balanced<'_> {
    async fn send(&mut self, step: &StepPlan, rendered: Rendered) -> Result<Response, Failure> {
        self.balancer
            .send(idempotent(&step.method), |base| {
                let url = join(base, &rendered.path)?;
                Ok(rendered.clone().request(self.client, step, url))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balancer(n: usize, least_conn: bool) -> Balancer {
        let mut b = Balancer::new((0..n).map(|i| format!("http://r{i}")).collect(), None);
        b.least_conn = least_conn;
        b
    }

    #[test]
    fn round_robin_visits_every_replica_in_turn() {
        let b = balancer(3, false);
        let picks: Vec<usize> = (0..6).map(|_| b.pick(None)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn a_replica_marked_down_is_skipped_until_its_fail_timeout() {
        let mut b = balancer(3, false);
        b.fail_timeout = 60.0;
        b.mark_down(1);
        let picks: Vec<usize> = (0..6).map(|_| b.pick(None)).collect();
        assert!(!picks.contains(&1), "{picks:?}");
        // its time is over: it is picked again
        b.down_until[1].store(0, Ordering::Relaxed);
        assert!((0..3).map(|_| b.pick(None)).any(|i| i == 1));
    }

    #[test]
    fn least_connections_picks_the_least_busy_replica_that_is_up() {
        let b = balancer(3, true);
        b.in_flight[0].store(5, Ordering::Relaxed);
        b.in_flight[1].store(1, Ordering::Relaxed);
        b.in_flight[2].store(3, Ordering::Relaxed);
        assert!((0..4).all(|_| b.pick(None) == 1));
        b.mark_down(1);
        assert!((0..4).all(|_| b.pick(None) == 2));
    }

    #[test]
    fn a_retry_avoids_the_replica_that_failed_even_when_all_are_down() {
        let b = balancer(2, false);
        b.mark_down(0);
        b.mark_down(1);
        assert!((0..4).all(|_| b.pick(Some(0)) == 1));
        assert!((0..4).all(|_| b.pick(Some(1)) == 0));
    }

    #[test]
    fn one_target_is_never_marked_down() {
        // behind nginx the client has one target: marking it down would stop the load
        let b = balancer(1, false);
        b.mark_down(0);
        assert_eq!(b.down_until[0].load(Ordering::Relaxed), 0);
        assert_eq!(b.pick(None), 0);
    }

    #[test]
    fn urls_join_paths_with_or_without_a_slash() {
        assert_eq!(
            join("http://h:1", "/a?b=1").unwrap().as_str(),
            "http://h:1/a?b=1"
        );
        assert_eq!(join("http://h:1", "a").unwrap().as_str(), "http://h:1/a");
        assert_eq!(
            join("http://h:1", "http://o:2/x").unwrap().as_str(),
            "http://o:2/x"
        );
        assert!(join("http://h:1", "http://[bad").is_err());
    }
}
