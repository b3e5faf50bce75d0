//! The shop's "database" tier (`perfspec demo db`): a bounded connection pool (a semaphore
//! of `--pool` permits) in front of simulated queries that sleep for `--query-time`. Queries
//! beyond the pool wait for a connection, so a shared database saturates under load the way
//! a real one does — by queueing, not by burning CPU.
//!
//! `POST /query` `{"op": "read"}` runs one query; `GET /health`; `GET /metrics` (Prometheus
//! text: pool size, connections in use, queries waiting, queries and wait time totals).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use super::config::{DbArgs, LatencyDist};
use super::launch;

/// Shared state of one database tier.
pub struct Db {
    pool: Semaphore,
    size: usize,
    query_time: LatencyDist,
    waiting: AtomicU64,
    queries: AtomicU64,
    wait_us: AtomicU64,
}

impl Db {
    pub fn new(pool: usize, query_time: LatencyDist) -> Arc<Db> {
        let size = pool.max(1);
        Arc::new(Db {
            pool: Semaphore::new(size),
            size,
            query_time,
            waiting: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            wait_us: AtomicU64::new(0),
        })
    }

    /// Run one query: wait for a pooled connection, hold it for the query time.
    pub async fn query(&self) {
        let asked = Instant::now();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = self.pool.acquire().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        self.wait_us
            .fetch_add(asked.elapsed().as_micros() as u64, Ordering::Relaxed);
        let d = self.query_time.sample(&mut rand::rng());
        tokio::time::sleep(d).await;
        self.queries.fetch_add(1, Ordering::Relaxed);
        drop(permit);
    }

    fn metrics(&self) -> String {
        let in_use = self.size - self.pool.available_permits().min(self.size);
        format!(
            "# TYPE demo_db_pool_size gauge\ndemo_db_pool_size {}\n\
             # TYPE demo_db_pool_in_use gauge\ndemo_db_pool_in_use {in_use}\n\
             # TYPE demo_db_pool_waiting gauge\ndemo_db_pool_waiting {}\n\
             # TYPE demo_db_queries_total counter\ndemo_db_queries_total {}\n\
             # TYPE demo_db_pool_wait_seconds_total counter\ndemo_db_pool_wait_seconds_total {}\n",
            self.size,
            self.waiting.load(Ordering::Relaxed),
            self.queries.load(Ordering::Relaxed),
            self.wait_us.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}

async fn query(State(db): State<Arc<Db>>) -> impl IntoResponse {
    db.query().await;
    (StatusCode::OK, Json(serde_json::json!({"ok": true})))
}

async fn metrics(State(db): State<Arc<Db>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        db.metrics(),
    )
}

/// The database tier's routes.
pub fn router(db: Arc<Db>) -> Router {
    Router::new()
        .route("/query", post(query))
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(db)
}

/// `perfspec demo db`: serve until SIGINT/SIGTERM; returns the exit code.
pub fn main(args: DbArgs) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("perfspec demo db: cannot start the async runtime: {e}");
            return crate::exit::BACKEND_UNAVAILABLE;
        }
    };
    rt.block_on(async {
        let listener = match tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "perfspec demo db: cannot listen on {}:{}: {e}",
                    args.host, args.port
                );
                return crate::exit::BACKEND_UNAVAILABLE;
            }
        };
        if let Ok(addr) = listener.local_addr() {
            launch::announce("db", addr);
        }
        let app = router(Db::new(args.pool, args.query_time));
        match axum::serve(listener, app)
            .with_graceful_shutdown(launch::shutdown_signal())
            .await
        {
            Ok(()) => crate::exit::SUCCESS,
            Err(e) => {
                eprintln!("perfspec demo db: {e}");
                crate::exit::BACKEND_UNAVAILABLE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pool_bounds_concurrent_queries() {
        // 8 queries of 50ms on a pool of 2 take 4 rounds
        let db = Db::new(2, LatencyDist::Fixed(0.05));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                tokio::spawn({
                    let db = db.clone();
                    async move { db.query().await }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let took = t0.elapsed().as_secs_f64();
        assert!((0.19..0.4).contains(&took), "{took}");
        assert!(db.metrics().contains("demo_db_queries_total 8"));
    }
}
