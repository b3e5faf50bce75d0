//! Command-line configuration of the demo service: `perfspec demo serve` (the shop) and
//! `perfspec demo db` (its database tier), latency distributions and error injection.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;

use crate::spec::units::{Dimension, Quantity};

/// `perfspec demo …`: the embedded demo service.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum DemoCommand {
    /// Run the demo shop (products, login, cart, checkout, health) on loopback.
    ///
    /// Without `--db-port` it starts its own database tier (`perfspec demo db`) as a child
    /// process. The first line on stdout is `… listening on http://HOST:PORT`.
    Serve(ServeArgs),
    /// Run the shop's database tier: a bounded connection pool in front of simulated queries.
    Db(DbArgs),
}

/// `perfspec demo serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Port to listen on (0 picks a free one; the chosen address is printed on stdout).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Use a database tier already running on this loopback port instead of starting one.
    #[arg(long, value_name = "PORT")]
    pub db_port: Option<u16>,
    /// Connection pool size of the database tier this shop starts.
    #[arg(long, default_value_t = 16)]
    pub pool: usize,
    /// Query time of the database tier this shop starts (`2ms`, `1ms..3ms`, `exp:2ms`).
    #[arg(long, default_value = "1ms..3ms", value_parser = LatencyDist::parse)]
    pub query_time: LatencyDist,
    /// Own latency of an endpoint, on top of its database calls: `products=5ms..15ms`
    /// (repeatable; endpoints: health, products, product, login, cart, checkout, or `*`).
    #[arg(long = "latency", value_name = "ENDPOINT=DIST", value_parser = parse_latency)]
    pub latency: Vec<(EndpointSel, LatencyDist)>,
    /// Share of requests to an endpoint that fail with HTTP 500: `checkout=1%` (repeatable).
    /// Exactly that share, evenly spread: with 3%, 3 of every 100 requests fail.
    #[arg(long = "error-rate", value_name = "ENDPOINT=RATIO", value_parser = parse_error_rate)]
    pub error_rate: Vec<(EndpointSel, f64)>,
    /// A latency tail: this share of an endpoint's requests take this long instead of their
    /// `--latency`, evenly spread like `--error-rate`: `products=3%:300ms` (repeatable).
    #[arg(long = "slow", value_name = "ENDPOINT=RATIO:DURATION", value_parser = parse_slow)]
    pub slow: Vec<(EndpointSel, Tail)>,
    /// Every endpoint except `/health` answers after exactly this delay, without database
    /// calls or random latency (deterministic tests).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub fixed_delay: Option<Duration>,
    /// Worker threads of the shop's async runtime.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

/// `perfspec demo db`.
#[derive(clap::Args, Debug, Clone)]
pub struct DbArgs {
    /// Port to listen on (0 picks a free one; the chosen address is printed on stdout).
    #[arg(long, default_value_t = 8081)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Connections in the pool: at most this many queries run at once, others wait.
    #[arg(long, default_value_t = 16)]
    pub pool: usize,
    /// Time one query holds its connection (`2ms`, `1ms..3ms`, `exp:2ms`).
    #[arg(long, default_value = "1ms..3ms", value_parser = LatencyDist::parse)]
    pub query_time: LatencyDist,
}

/// The shop's endpoints, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Health,
    Products,
    Product,
    Login,
    Cart,
    Checkout,
}

impl Endpoint {
    pub const ALL: [Endpoint; 6] = [
        Endpoint::Health,
        Endpoint::Products,
        Endpoint::Product,
        Endpoint::Login,
        Endpoint::Cart,
        Endpoint::Checkout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Health => "health",
            Endpoint::Products => "products",
            Endpoint::Product => "product",
            Endpoint::Login => "login",
            Endpoint::Cart => "cart",
            Endpoint::Checkout => "checkout",
        }
    }

    /// Default own latency (before database calls): small, latency-bound, not CPU-bound.
    fn default_latency(self) -> LatencyDist {
        let ms = |a: f64, b: f64| LatencyDist::Uniform(a / 1000.0, b / 1000.0);
        match self {
            Endpoint::Health => LatencyDist::Fixed(0.0),
            Endpoint::Products => ms(2.0, 6.0),
            Endpoint::Product => ms(1.0, 3.0),
            Endpoint::Login => ms(5.0, 15.0),
            Endpoint::Cart => ms(2.0, 5.0),
            Endpoint::Checkout => ms(10.0, 30.0),
        }
    }
}

/// A latency distribution, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyDist {
    /// Always this long: `5ms`.
    Fixed(f64),
    /// Uniform between the bounds: `5ms..15ms`.
    Uniform(f64, f64),
    /// Exponential with this mean: `exp:5ms` (a long tail).
    Exp(f64),
}

impl LatencyDist {
    /// Parse `5ms`, `5ms..15ms` or `exp:5ms`.
    pub fn parse(s: &str) -> Result<LatencyDist, String> {
        let s = s.trim();
        let d = if let Some(mean) = s.strip_prefix("exp:") {
            LatencyDist::Exp(time(mean)?)
        } else if let Some((lo, hi)) = s.split_once("..") {
            let (lo, hi) = (time(lo)?, time(hi)?);
            if hi < lo {
                return Err(format!("the range `{s}` ends before it starts"));
            }
            LatencyDist::Uniform(lo, hi)
        } else {
            LatencyDist::Fixed(time(s)?)
        };
        Ok(d)
    }

    /// Draw one duration.
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        let secs = match *self {
            LatencyDist::Fixed(v) => v,
            LatencyDist::Uniform(lo, hi) if hi > lo => rng.random_range(lo..hi),
            LatencyDist::Uniform(lo, _) => lo,
            LatencyDist::Exp(mean) => {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                -mean * u.ln()
            }
        };
        Duration::from_secs_f64(secs.max(0.0))
    }
}

impl std::fmt::Display for LatencyDist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = |v: f64| Dimension::Time.format(v);
        match *self {
            LatencyDist::Fixed(v) => f.write_str(&t(v)),
            LatencyDist::Uniform(a, b) => write!(f, "{}..{}", t(a), t(b)),
            LatencyDist::Exp(m) => write!(f, "exp:{}", t(m)),
        }
    }
}

fn time(s: &str) -> Result<f64, String> {
    let v = Quantity::parse_as(s.trim(), Dimension::Time)?;
    if v < 0.0 {
        return Err(format!("`{s}` is negative"));
    }
    Ok(v)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    time(s).map(Duration::from_secs_f64)
}

/// Which endpoints a `--latency` or `--error-rate` value applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointSel {
    /// `*`: every endpoint (except `health` for error injection).
    All,
    One(Endpoint),
}

fn endpoint_sel(name: &str) -> Result<EndpointSel, String> {
    if name == "*" || name == "all" {
        return Ok(EndpointSel::All);
    }
    Endpoint::ALL
        .into_iter()
        .find(|e| e.as_str() == name)
        .map(EndpointSel::One)
        .ok_or_else(|| {
            let names: Vec<&str> = Endpoint::ALL.iter().map(|e| e.as_str()).collect();
            format!(
                "unknown endpoint `{name}` (one of {}, or `*`)",
                names.join(", ")
            )
        })
}

fn split_pair(s: &str) -> Result<(&str, &str), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim(), v.trim()))
        .ok_or_else(|| format!("expected ENDPOINT=VALUE, got `{s}`"))
}

fn parse_latency(s: &str) -> Result<(EndpointSel, LatencyDist), String> {
    let (name, dist) = split_pair(s)?;
    Ok((endpoint_sel(name)?, LatencyDist::parse(dist)?))
}

fn ratio(s: &str, what: &str) -> Result<f64, String> {
    let r = Quantity::parse_as(s, Dimension::Ratio)?;
    if !(0.0..=1.0).contains(&r) {
        return Err(format!("{what} is between 0% and 100%, got `{s}`"));
    }
    Ok(r)
}

fn parse_error_rate(s: &str) -> Result<(EndpointSel, f64), String> {
    let (name, r) = split_pair(s)?;
    Ok((endpoint_sel(name)?, ratio(r, "an error rate")?))
}

/// `--slow`: the share of requests that take `latency` (seconds) instead of their own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tail {
    pub share: f64,
    pub latency: f64,
}

fn parse_slow(s: &str) -> Result<(EndpointSel, Tail), String> {
    let (name, tail) = split_pair(s)?;
    let (share, latency) = tail.split_once(':').ok_or_else(|| {
        format!("expected ENDPOINT=RATIO:DURATION, e.g. products=3%:300ms, got `{s}`")
    })?;
    let tail = Tail {
        share: ratio(share.trim(), "a slow share")?,
        latency: time(latency)?,
    };
    Ok((endpoint_sel(name)?, tail))
}

/// Whether the `n`-th event (from 0) of a stream is one of the `share` picked, evenly
/// spread: exactly ⌊n·share⌋ of the first n are (with 3%: the 34th, 67th, 100th, …).
pub fn spread_pick(n: u64, share: f64) -> bool {
    // in parts per million, so that 3% is exactly 3 in 100
    let ppm = (share.clamp(0.0, 1.0) * 1e6).round() as u128;
    let n = u128::from(n);
    (n + 1) * ppm / 1_000_000 > n * ppm / 1_000_000
}

/// Per-endpoint behaviour of the shop, resolved from the command line.
#[derive(Debug, Clone)]
pub struct EndpointTable {
    latency: BTreeMap<Endpoint, LatencyDist>,
    error_rate: BTreeMap<Endpoint, f64>,
    slow: BTreeMap<Endpoint, Tail>,
    /// `--fixed-delay`: exact delay, no database, no random latency.
    pub fixed_delay: Option<Duration>,
}

impl EndpointTable {
    pub fn from_args(args: &ServeArgs) -> EndpointTable {
        let mut latency: BTreeMap<Endpoint, LatencyDist> = Endpoint::ALL
            .iter()
            .map(|e| (*e, e.default_latency()))
            .collect();
        let mut error_rate: BTreeMap<Endpoint, f64> = BTreeMap::new();
        for (sel, d) in &args.latency {
            match sel {
                EndpointSel::All => latency.values_mut().for_each(|v| *v = *d),
                EndpointSel::One(e) => {
                    latency.insert(*e, *d);
                }
            }
        }
        for (sel, r) in &args.error_rate {
            match sel {
                EndpointSel::All => {
                    for e in Endpoint::ALL.into_iter().filter(|e| *e != Endpoint::Health) {
                        error_rate.insert(e, *r);
                    }
                }
                EndpointSel::One(e) => {
                    error_rate.insert(*e, *r);
                }
            }
        }
        let mut slow = BTreeMap::new();
        for (sel, t) in &args.slow {
            match sel {
                EndpointSel::All => Endpoint::ALL.iter().for_each(|e| {
                    slow.insert(*e, *t);
                }),
                EndpointSel::One(e) => {
                    slow.insert(*e, *t);
                }
            }
        }
        EndpointTable {
            latency,
            error_rate,
            slow,
            fixed_delay: args.fixed_delay,
        }
    }

    pub fn latency(&self, e: Endpoint) -> LatencyDist {
        self.latency
            .get(&e)
            .copied()
            .unwrap_or(LatencyDist::Fixed(0.0))
    }

    pub fn error_rate(&self, e: Endpoint) -> f64 {
        self.error_rate.get(&e).copied().unwrap_or(0.0)
    }

    /// The `--slow` tail of an endpoint.
    pub fn slow(&self, e: Endpoint) -> Option<Tail> {
        self.slow.get(&e).copied()
    }
}
