//! The demo shop (`perfspec demo serve`): the web tier the example specs load.
//!
//! | endpoint | does |
//! |---|---|
//! | `GET /health` | `ok` |
//! | `GET /products` | the catalog (50 products); one database read |
//! | `GET /products/{id}` | one product (404 outside 1..=50); one database read |
//! | `POST /login` `{"user", "password"}` | `{"token"}` and the cookie `session=TOKEN` (400 without a user); one database read |
//! | `POST /cart` `{"product", "qty"}` + `authorization: Bearer TOKEN` or the `session` cookie | 201 `{"items"}` (401 without a valid token); one database write |
//! | `POST /checkout` + token | `{"order_id", "items"}` (401 without a valid token); two database writes |
//! | `GET /metrics` | Prometheus text: requests per endpoint, injected errors, in flight |
//!
//! Each endpoint sleeps for its own latency (configurable, `--latency`), then runs its
//! database queries against the database tier over HTTP (whose pool is bounded), then fails
//! with HTTP 500 for the configured share of requests (`--error-rate`, evenly spread); a
//! share of requests can take a fixed slow latency instead (`--slow`, a latency tail). Tokens are stateless
//! (`user.signature`), so a long soak does not grow the shop's memory; carts are kept per
//! user. Work is sleeps and semaphores, not CPU.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::config::{Endpoint, EndpointTable, ServeArgs, spread_pick};
use super::launch;

/// Number of products in the catalog.
pub const PRODUCTS: u32 = 50;

/// Shared state of one shop.
pub struct Shop {
    table: EndpointTable,
    db: Option<DbClient>,
    requests: [AtomicU64; 6],
    injected: AtomicU64,
    /// Requests per endpoint that reached the error injection / the slow-tail choice.
    error_seq: [AtomicU64; 6],
    slow_seq: [AtomicU64; 6],
    in_flight: AtomicI64,
    orders: AtomicU64,
    carts: Mutex<HashMap<String, Vec<(u64, u64)>>>,
}

/// HTTP client of the database tier.
struct DbClient {
    client: reqwest::Client,
    url: String,
}

impl Shop {
    /// A shop with these endpoint settings, calling the database tier at `db_url` (none with
    /// `--fixed-delay`).
    pub fn new(table: EndpointTable, db_url: Option<String>) -> Arc<Shop> {
        let db = db_url.map(|url| DbClient {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            url: format!("{}/query", url.trim_end_matches('/')),
        });
        Arc::new(Shop {
            table,
            db,
            requests: Default::default(),
            injected: AtomicU64::new(0),
            error_seq: Default::default(),
            slow_seq: Default::default(),
            in_flight: AtomicI64::new(0),
            orders: AtomicU64::new(0),
            carts: Mutex::new(HashMap::new()),
        })
    }

    /// The common part of every endpoint: own latency, database queries, error injection.
    /// `Err` is the response to send instead of the endpoint's own.
    async fn work(&self, e: Endpoint, queries: u32) -> Result<(), Response> {
        self.requests[e as usize].fetch_add(1, Ordering::Relaxed);
        if let Some(d) = self.table.fixed_delay {
            tokio::time::sleep(d).await;
        } else {
            let slow = self.table.slow(e).filter(|t| {
                let n = self.slow_seq[e as usize].fetch_add(1, Ordering::Relaxed);
                spread_pick(n, t.share)
            });
            let d = match slow {
                Some(t) => Duration::from_secs_f64(t.latency),
                None => self.table.latency(e).sample(&mut rand::rng()),
            };
            if !d.is_zero() {
                tokio::time::sleep(d).await;
            }
            if let Some(db) = &self.db {
                for _ in 0..queries {
                    let ok = db
                        .client
                        .post(&db.url)
                        .json(&json!({"op": e.as_str()}))
                        .send()
                        .await;
                    match ok {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                        }
                        Ok(r) => {
                            return Err(error(
                                StatusCode::SERVICE_UNAVAILABLE,
                                &format!("database answered {}", r.status()),
                            ));
                        }
                        Err(_) => {
                            return Err(error(
                                StatusCode::SERVICE_UNAVAILABLE,
                                "database unavailable",
                            ));
                        }
                    }
                }
            }
        }
        let rate = self.table.error_rate(e);
        if rate > 0.0
            && spread_pick(
                self.error_seq[e as usize].fetch_add(1, Ordering::Relaxed),
                rate,
            )
        {
            self.injected.fetch_add(1, Ordering::Relaxed);
            return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "injected failure"));
        }
        Ok(())
    }

    fn metrics(&self) -> String {
        let mut out = String::from("# TYPE demo_shop_requests_total counter\n");
        for e in Endpoint::ALL {
            out.push_str(&format!(
                "demo_shop_requests_total{{endpoint=\"{}\"}} {}\n",
                e.as_str(),
                self.requests[e as usize].load(Ordering::Relaxed)
            ));
        }
        out.push_str(&format!(
            "# TYPE demo_shop_injected_errors_total counter\ndemo_shop_injected_errors_total {}\n\
             # TYPE demo_shop_in_flight gauge\ndemo_shop_in_flight {}\n\
             # TYPE demo_shop_orders_total counter\ndemo_shop_orders_total {}\n",
            self.injected.load(Ordering::Relaxed),
            self.in_flight.load(Ordering::Relaxed),
            self.orders.load(Ordering::Relaxed),
        ));
        out
    }
}

/// Counts a request in flight for its lifetime.
struct InFlight<'a>(&'a AtomicI64);

impl<'a> InFlight<'a> {
    fn new(c: &'a AtomicI64) -> InFlight<'a> {
        c.fetch_add(1, Ordering::Relaxed);
        InFlight(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

fn product(id: u64) -> Value {
    json!({"id": id, "name": format!("product {id}"), "price": 5 + (id * 37) % 95})
}

/// The signature part of a stateless token.
fn signature(user: &str) -> String {
    let mut h = std::hash::DefaultHasher::new();
    ("perfspec-demo-shop", user).hash(&mut h);
    format!("{:016x}", h.finish())
}

pub fn token_for(user: &str) -> String {
    format!("{user}.{}", signature(user))
}

/// The user a token belongs to, if the token is valid: from `authorization: Bearer TOKEN`,
/// or else from the `session` cookie that `/login` sets.
fn user_of(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| {
            auth.strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("bearer "))
        })
        .map(str::trim);
    let cookie = || {
        headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix("session="))
    };
    let token = bearer.or_else(cookie)?;
    let (user, sig) = token.rsplit_once('.')?;
    (!user.is_empty() && sig == signature(user)).then(|| user.to_string())
}

async fn products(State(shop): State<Arc<Shop>>) -> Response {
    let _f = InFlight::new(&shop.in_flight);
    if let Err(r) = shop.work(Endpoint::Products, 1).await {
        return r;
    }
    Json((1..=u64::from(PRODUCTS)).map(product).collect::<Vec<_>>()).into_response()
}

async fn product_item(State(shop): State<Arc<Shop>>, Path(id): Path<String>) -> Response {
    let _f = InFlight::new(&shop.in_flight);
    if let Err(r) = shop.work(Endpoint::Product, 1).await {
        return r;
    }
    match id.parse::<u64>() {
        Ok(id) if (1..=u64::from(PRODUCTS)).contains(&id) => Json(product(id)).into_response(),
        _ => error(StatusCode::NOT_FOUND, "no such product"),
    }
}

async fn login(State(shop): State<Arc<Shop>>, body: Option<Json<Value>>) -> Response {
    let _f = InFlight::new(&shop.in_flight);
    if let Err(r) = shop.work(Endpoint::Login, 1).await {
        return r;
    }
    let user = body
        .as_ref()
        .and_then(|b| b.get("user"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if user.is_empty() || user.contains('.') {
        return error(
            StatusCode::BAD_REQUEST,
            "a JSON body with a non-empty `user` (without dots) is required",
        );
    }
    let token = token_for(user);
    let cookie = format!("session={token}; Path=/; HttpOnly; SameSite=Lax");
    (
        [(axum::http::header::SET_COOKIE, cookie)],
        Json(json!({"token": token, "user": user})),
    )
        .into_response()
}

async fn cart(
    State(shop): State<Arc<Shop>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let _f = InFlight::new(&shop.in_flight);
    if let Err(r) = shop.work(Endpoint::Cart, 1).await {
        return r;
    }
    let Some(user) = user_of(&headers) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "a valid `authorization: Bearer TOKEN` header or `session` cookie is required",
        );
    };
    let item = body.as_ref().map(|b| {
        (
            b.get("product").and_then(Value::as_u64),
            b.get("qty").and_then(Value::as_u64),
        )
    });
    let (product, qty) = match item {
        Some((Some(p), q)) if (1..=u64::from(PRODUCTS)).contains(&p) => (p, q.unwrap_or(1).max(1)),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "a JSON body with `product` (1..=50) and optional `qty` is required",
            );
        }
    };
    let items = {
        let mut carts = shop.carts.lock().unwrap_or_else(|e| e.into_inner());
        let cart = carts.entry(user).or_default();
        // a cart holds at most 100 lines: a long soak must not grow the shop without bound
        if cart.len() >= 100 {
            cart.remove(0);
        }
        cart.push((product, qty));
        cart.len()
    };
    (StatusCode::CREATED, Json(json!({"items": items}))).into_response()
}

async fn checkout(State(shop): State<Arc<Shop>>, headers: HeaderMap) -> Response {
    let _f = InFlight::new(&shop.in_flight);
    if let Err(r) = shop.work(Endpoint::Checkout, 2).await {
        return r;
    }
    let Some(user) = user_of(&headers) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "a valid `authorization: Bearer TOKEN` header or `session` cookie is required",
        );
    };
    let items = shop
        .carts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&user)
        .unwrap_or_default();
    let order_id = shop.orders.fetch_add(1, Ordering::Relaxed) + 1;
    let total: u64 = items
        .iter()
        .map(|(p, q)| product(*p)["price"].as_u64().unwrap_or(0) * q)
        .sum();
    Json(json!({"order_id": order_id, "items": items.len(), "total": total, "status": "ok"}))
        .into_response()
}

/// A short page naming the routes, so that a first spec's `GET /` gets an answer.
async fn index() -> &'static str {
    "perfspec demo shop: GET /products, GET /products/{id}, POST /login, POST /cart, POST /checkout, GET /health, GET /metrics\n"
}

async fn health(State(shop): State<Arc<Shop>>) -> Response {
    shop.requests[Endpoint::Health as usize].fetch_add(1, Ordering::Relaxed);
    "ok".into_response()
}

async fn metrics(State(shop): State<Arc<Shop>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        shop.metrics(),
    )
        .into_response()
}

/// The shop's routes.
pub fn router(shop: Arc<Shop>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .route("/products", get(products))
        .route("/products/{id}", get(product_item))
        .route("/login", post(login))
        .route("/cart", post(cart))
        .route("/checkout", post(checkout))
        .route("/metrics", get(metrics))
        .with_state(shop)
}

/// `perfspec demo serve`: start the database tier unless `--db-port` names one, then serve
/// until SIGINT/SIGTERM; returns the exit code.
pub fn main(args: ServeArgs) -> i32 {
    let table = EndpointTable::from_args(&args);
    // the database child lives as long as this guard (and dies with this process)
    let mut _db_guard = None;
    let db_url = if table.fixed_delay.is_some() {
        None
    } else if let Some(port) = args.db_port {
        Some(format!("http://127.0.0.1:{port}"))
    } else {
        let db_args = vec![
            "db".to_string(),
            "--port".into(),
            "0".into(),
            "--pool".into(),
            args.pool.to_string(),
            "--query-time".into(),
            args.query_time.to_string(),
        ];
        let started = launch::demo_command(&db_args)
            .and_then(|c| launch::spawn_announced(c, Duration::from_secs(10)));
        match started {
            Ok((guard, url)) => {
                _db_guard = Some(guard);
                Some(url)
            }
            Err(e) => {
                eprintln!("perfspec demo serve: cannot start the database tier: {e}");
                return crate::exit::BACKEND_UNAVAILABLE;
            }
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("perfspec demo serve: cannot start the async runtime: {e}");
            return crate::exit::BACKEND_UNAVAILABLE;
        }
    };
    rt.block_on(async {
        let listener = match tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "perfspec demo serve: cannot listen on {}:{}: {e}",
                    args.host, args.port
                );
                return crate::exit::BACKEND_UNAVAILABLE;
            }
        };
        if let Ok(addr) = listener.local_addr() {
            launch::announce("shop", addr);
        }
        let app = router(Shop::new(table, db_url));
        match axum::serve(listener, app)
            .with_graceful_shutdown(launch::shutdown_signal())
            .await
        {
            Ok(()) => crate::exit::SUCCESS,
            Err(e) => {
                eprintln!("perfspec demo serve: {e}");
                crate::exit::BACKEND_UNAVAILABLE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::config::LatencyDist;

    fn args(extra: &[&str]) -> ServeArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: ServeArgs,
        }
        P::parse_from(std::iter::once("serve").chain(extra.iter().copied())).a
    }

    async fn start(shop: Arc<Shop>) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, router(shop)).await });
        format!("http://{addr}")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn login_cart_checkout_round_trip_with_a_database_tier() {
        let db = crate::demo::db::Db::new(4, LatencyDist::Fixed(0.001));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let db_addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, crate::demo::db::router(db)).await });
        let shop = Shop::new(
            EndpointTable::from_args(&args(&["--latency", "*=0ms"])),
            Some(format!("http://{db_addr}")),
        );
        let base = start(shop).await;
        let c = reqwest::Client::new();
        let r = c.get(format!("{base}/products")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap().as_array().unwrap().len(),
            50
        );
        assert_eq!(
            c.get(format!("{base}/products/51"))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
        let tok = c
            .post(format!("{base}/login"))
            .json(&json!({"user": "alice"}))
            .send()
            .await
            .unwrap();
        let cookie = tok.headers()["set-cookie"].to_str().unwrap().to_string();
        let token = tok.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(cookie.starts_with(&format!("session={token};")), "{cookie}");
        // the session cookie authenticates as the bearer token does
        let cart = c
            .post(format!("{base}/cart"))
            .header("cookie", format!("theme=dark; session={token}"))
            .json(&json!({"product": 3}))
            .send()
            .await
            .unwrap();
        assert_eq!(cart.status(), 201);
        let cart = c
            .post(format!("{base}/cart"))
            .json(&json!({"product": 7, "qty": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(cart.status(), 401);
        let cart = c
            .post(format!("{base}/cart"))
            .bearer_auth(&token)
            .json(&json!({"product": 7, "qty": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(cart.status(), 201);
        let out = c
            .post(format!("{base}/checkout"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), 200);
        let v = out.json::<Value>().await.unwrap();
        assert_eq!(v["items"], 2);
        let m = c
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            m.contains("demo_shop_requests_total{endpoint=\"login\"} 1"),
            "{m}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_delay_and_error_injection() {
        let shop = Shop::new(
            EndpointTable::from_args(&args(&[
                "--fixed-delay",
                "30ms",
                "--error-rate",
                "checkout=100%",
            ])),
            None,
        );
        let base = start(shop).await;
        let c = reqwest::Client::new();
        let t0 = std::time::Instant::now();
        assert_eq!(
            c.get(format!("{base}/products/3"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let took = t0.elapsed().as_secs_f64();
        assert!((0.03..0.2).contains(&took), "{took}");
        let token = token_for("bob");
        let r = c
            .post(format!("{base}/checkout"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
    }

    #[test]
    fn latency_flags_parse() {
        let a = args(&[
            "--latency",
            "products=5ms..15ms",
            "--latency",
            "login=exp:10ms",
            "--error-rate",
            "*=1%",
        ]);
        let t = EndpointTable::from_args(&a);
        assert_eq!(
            t.latency(Endpoint::Products),
            LatencyDist::Uniform(0.005, 0.015)
        );
        assert_eq!(t.latency(Endpoint::Login), LatencyDist::Exp(0.01));
        assert_eq!(t.error_rate(Endpoint::Cart), 0.01);
        assert_eq!(t.error_rate(Endpoint::Health), 0.0);
        assert!(LatencyDist::parse("15ms..5ms").is_err());
    }
}
