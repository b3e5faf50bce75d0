//! Sharded runs: the `run --shard K/N --start-at TIME` options, and `perfspec merge`, which
//! joins the shards' results into one run judged and rendered exactly as a local one.
//!
//! Merging is lossless where the data allows it: HDR histograms are added, counters
//! summed, rates of parallel generators (`throughput`) added, and the ratios a run derives
//! (`error_rate`, `late_ratio`) computed again from the merged counts. Per-second series
//! of counts are added on the shards' common clock; per-second latency quantiles cannot be
//! added and are left out (the merged histograms hold the whole distribution). Every SLO is
//! judged again by the engine's evaluator on the merged measurements.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::engine::metrics::{Labels, Measurements, Scalar, Selection};
use crate::engine::plan::Planned;
use crate::engine::shard::{Shard, ShardInfo};
use crate::engine::verdict::{BaseInput, judge, not_run};
use crate::exit;
use crate::results::{Results, SpecResult, SpecStatus};
use crate::spec::catalog::Kind;

/// `perfspec run`'s sharding options.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ShardArgs {
    /// Run shard K of N of every spec's total load (`--shard 2/3`), or `auto`: the
    /// Kubernetes Indexed Job's JOB_COMPLETION_INDEX (0-based) with `--shards N`.
    #[arg(long, value_name = "K/N|auto")]
    pub shard: Option<String>,
    /// With `--shard auto`: how many shards there are (the Job's `completions`).
    #[arg(long, value_name = "N", requires = "shard")]
    pub shards: Option<u32>,
    /// Start the first spec at this time: RFC 3339 (`2026-12-02T10:00:00Z`) or `+10s` from
    /// now, so that shards started apart begin together.
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<String>,
}

impl ShardArgs {
    /// The shard and start time, checked against the selected specs: only load specs run
    /// by goose split (a stress search or spike recovery needs the whole load in one
    /// process).
    pub fn resolve(
        &self,
        specs: &[Planned],
    ) -> Result<(Option<Shard>, Option<SystemTime>), String> {
        let start_at = self
            .start_at
            .as_deref()
            .map(|t| crate::engine::shard::parse_start_at(t, SystemTime::now()))
            .transpose()
            .map_err(|e| format!("--start-at {e}"))?;
        let shard = match self.shard.as_deref() {
            None if self.shards.is_some() => {
                return Err("--shards N goes with `--shard auto`".into());
            }
            None => return Ok((None, start_at)),
            Some("auto") => Shard::from_job_index(
                std::env::var("JOB_COMPLETION_INDEX").ok().as_deref(),
                self.shards,
            )?,
            Some(_) if self.shards.is_some() => {
                return Err(
                    "--shards N goes with `--shard auto`; `--shard K/N` names N itself".into(),
                );
            }
            Some(text) => Shard::parse(text).map_err(|e| format!("--shard: {e}"))?,
        };
        for p in specs {
            shardable(&p.spec).map_err(|why| {
                format!(
                    "--shard {shard}: `{}` ({}) {why}; select the specs to shard with --filter",
                    p.spec.name, p.spec.file.name
                )
            })?;
        }
        Ok((Some(shard), start_at))
    }
}

/// Whether a spec's load can be split across shards.
fn shardable(spec: &crate::spec::Spec) -> Result<(), &'static str> {
    let crate::spec::Body::Load(d) = &spec.body else {
        return Err("is not a load spec run by goose: only load specs split into shards");
    };
    if spec.backend != "goose" {
        return Err("does not run on goose");
    }
    if d.load.stress.is_some() {
        return Err(
            "searches for its breaking point (`stress`), which needs the whole load in one process",
        );
    }
    if d.load
        .stages
        .value
        .iter()
        .any(|s| s.label() == Some("spike"))
    {
        return Err("measures spike recovery, which needs the whole load in one process");
    }
    Ok(())
}

/// Why shards cannot be merged (exit 5).
#[derive(Debug)]
pub struct Incomplete(pub String);

/// `perfspec merge INPUTS… --out DIR`.
pub fn main(inputs: &[PathBuf], out: &Path, templates: Option<&Path>) -> i32 {
    let mut runs = Vec::new();
    for input in inputs {
        let file = if input.is_dir() {
            input.join("results.json")
        } else {
            input.clone()
        };
        match Results::read(&file) {
            Ok(r) => runs.push((file.display().to_string(), r)),
            Err(e) => {
                eprintln!("perfspec merge: {e}");
                return exit::INVALID;
            }
        }
    }
    let merged = match merge(runs) {
        Ok(m) => m,
        Err(Incomplete(why)) => {
            eprintln!("perfspec merge: {why}");
            return exit::INCOMPLETE;
        }
    };
    if let Err(e) = crate::results::create_dir_public(out) {
        eprintln!("perfspec merge: cannot create `{}`: {e}", out.display());
        return exit::INVALID;
    }
    let opts = crate::report::write::ReportOptions {
        out,
        templates,
        write_results: true,
        trends: None,
    };
    if let Err(e) = crate::report::write::write_all(&merged, &opts) {
        eprintln!("perfspec merge: cannot write into `{}`: {e}", out.display());
        return exit::INVALID;
    }
    for s in &merged.specs {
        eprintln!("{}", crate::engine::run::outcome_line(s));
    }
    eprintln!("{}", crate::report::summary::one_line(&merged));
    merged.exit_code
}

/// One shard's results with where they came from.
struct ShardRun {
    from: String,
    info: ShardInfo,
    res: Results,
    /// Seconds since the earliest shard started.
    offset: f64,
}

/// Join the shards (one unsharded run counts as shard 1 of 1).
pub fn merge(runs: Vec<(String, Results)>) -> Result<Results, Incomplete> {
    let mut shards = complete_set(runs)?;
    let skew = align(&mut shards)?;
    let first = &shards[0];
    let mut out = first.res.clone();
    out.started_at = earliest(&shards);
    out.finished_at = shards
        .iter()
        .map(|s| s.res.finished_at.clone())
        .max()
        .unwrap_or_default();
    out.duration_s = shards
        .iter()
        .map(|s| s.offset + s.res.duration_s)
        .fold(0.0, f64::max);
    out.shard = None;
    out.interrupted = shards.iter().any(|s| s.res.interrupted);
    out.command = std::iter::once("perfspec merge".to_string())
        .chain(shards.iter().map(|s| s.from.clone()))
        .collect();
    out.specs = Vec::new();
    for spec in &first.res.specs {
        out.specs.push(merge_spec(&shards, spec, skew)?);
    }
    out.exit_code = crate::engine::run::exit_code(&out);
    Ok(out)
}

/// Every shard 1..N exactly once, of the same specs and spec files.
fn complete_set(runs: Vec<(String, Results)>) -> Result<Vec<ShardRun>, Incomplete> {
    let single = runs.len() == 1;
    let mut shards = Vec::new();
    for (from, res) in runs {
        let info = match (&res.shard, single) {
            (Some(i), _) => i.clone(),
            (None, true) => ShardInfo {
                index: 1,
                count: 1,
                planned_start: None,
                started_at: res.started_at.clone(),
            },
            (None, false) => {
                return Err(Incomplete(format!(
                    "{from} is not a shard (it ran without --shard K/N)"
                )));
            }
        };
        shards.push(ShardRun {
            from,
            info,
            res,
            offset: 0.0,
        });
    }
    let n = shards[0].info.count;
    if let Some(s) = shards.iter().find(|s| s.info.count != n) {
        return Err(Incomplete(format!(
            "the shards disagree on their number: {} is shard {}/{}, {} is {}/{}",
            shards[0].from, shards[0].info.index, n, s.from, s.info.index, s.info.count
        )));
    }
    shards.sort_by_key(|s| s.info.index);
    if let Some(w) = shards
        .windows(2)
        .find(|w| w[0].info.index == w[1].info.index)
    {
        return Err(Incomplete(format!(
            "shard {}/{n} is given twice: {} and {}",
            w[0].info.index, w[0].from, w[1].from
        )));
    }
    let have: BTreeSet<u32> = shards.iter().map(|s| s.info.index).collect();
    let missing: Vec<String> = (1..=n)
        .filter(|i| !have.contains(i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(Incomplete(format!(
            "shard {} missing (given: {}); a merge without every shard would judge part of the load",
            missing.join(", "),
            shards
                .iter()
                .map(|s| s.from.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    same_specs(&shards)?;
    Ok(shards)
}

/// Every shard ran the same specs from the same files.
fn same_specs(shards: &[ShardRun]) -> Result<(), Incomplete> {
    let first = &shards[0];
    for s in &shards[1..] {
        for spec in &first.res.specs {
            let Some(other) = s.res.spec(&spec.name) else {
                return Err(Incomplete(format!(
                    "spec `{}` is missing from shard {} ({})",
                    spec.name, s.info.index, s.from
                )));
            };
            if other.hash != spec.hash || other.resolved != spec.resolved {
                return Err(Incomplete(format!(
                    "spec `{}`: shard {} ran another version of it than shard {} (file hash {} vs {}, or other --set values)",
                    spec.name,
                    s.info.index,
                    first.info.index,
                    short(&other.hash),
                    short(&spec.hash)
                )));
            }
        }
        if let Some(extra) = s
            .res
            .specs
            .iter()
            .find(|x| first.res.spec(&x.name).is_none())
        {
            return Err(Incomplete(format!(
                "spec `{}` ran on shard {} but not on shard {}",
                extra.name, s.info.index, first.info.index
            )));
        }
    }
    Ok(())
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

fn parse_time(t: &str) -> Option<f64> {
    let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()?;
    Some(at.unix_timestamp_nanos() as f64 / 1e9)
}

fn earliest(shards: &[ShardRun]) -> String {
    shards
        .iter()
        .min_by(|a, b| a.offset.total_cmp(&b.offset))
        .map_or_else(String::new, |s| s.info.started_at.clone())
}

/// Each shard's start on the common clock; the shards must have run at the same time.
/// Returns the start skew in seconds.
fn align(shards: &mut [ShardRun]) -> Result<f64, Incomplete> {
    let mut spans = Vec::new();
    for s in shards.iter() {
        let start = parse_time(&s.info.started_at).ok_or_else(|| {
            Incomplete(format!(
                "{}: `{}` is not an RFC 3339 start time",
                s.from, s.info.started_at
            ))
        })?;
        spans.push((start, start + s.res.duration_s.max(0.0)));
    }
    let t0 = spans.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let last_start = spans.iter().map(|s| s.0).fold(f64::NEG_INFINITY, f64::max);
    let first_end = spans.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    if shards.len() > 1 && last_start >= first_end {
        let list: Vec<String> = shards
            .iter()
            .zip(&spans)
            .map(|(s, (a, b))| {
                format!(
                    "shard {} ran {:+.1}s to {:+.1}s",
                    s.info.index,
                    a - t0,
                    b - t0
                )
            })
            .collect();
        return Err(Incomplete(format!(
            "the shards did not run at the same time ({}): start them with the same --start-at",
            list.join(", ")
        )));
    }
    for (s, (a, _)) in shards.iter_mut().zip(&spans) {
        s.offset = a - t0;
    }
    Ok(last_start - t0)
}

/// One spec's merged result, judged again.
fn merge_spec(shards: &[ShardRun], spec: &SpecResult, skew: f64) -> Result<SpecResult, Incomplete> {
    let parts: Vec<(&ShardRun, &SpecResult)> = shards
        .iter()
        .filter_map(|s| s.res.spec(&spec.name).map(|r| (s, r)))
        .collect();
    let mut out = spec.clone();
    out.duration_s = parts
        .iter()
        .map(|(s, r)| s.offset + r.duration_s)
        .fold(0.0, f64::max);
    out.timed_out = parts.iter().any(|(_, r)| r.timed_out);
    out.repeats = Vec::new();
    let errors: Vec<String> = parts
        .iter()
        .filter_map(|(s, r)| {
            r.error
                .as_ref()
                .map(|e| format!("shard {}: {e}", s.info.index))
        })
        .collect();
    out.error = (!errors.is_empty()).then(|| errors.join("; "));
    let measured: Vec<(f64, &Measurements, u32)> = parts
        .iter()
        .filter_map(|(s, r)| r.measurements.as_ref().map(|m| (s.offset, m, s.info.index)))
        .collect();
    if measured.len() < parts.len() || parts.iter().any(|(_, r)| r.status == SpecStatus::Error) {
        out.measurements = None;
        out.status = SpecStatus::Error;
        let why = "a shard did not measure this spec";
        out.slos = spec
            .slos
            .iter()
            .map(|o| rejudge(o, spec.kind, None, why))
            .collect();
        return Ok(out);
    }
    let mut m = merge_measurements(&measured);
    m.notes.push(attainment(&measured, skew));
    out.slos = spec
        .slos
        .iter()
        .map(|o| rejudge(o, spec.kind, Some(&m), ""))
        .collect();
    out.measurements = Some(m);
    out.status = if parts
        .iter()
        .any(|(_, r)| r.status == SpecStatus::Interrupted)
    {
        SpecStatus::Interrupted
    } else {
        SpecResult::verdict(&out.slos, out.timed_out || out.error.is_some())
    };
    Ok(out)
}

/// The outcome of a stored SLO judged on `m` (or not run, `why`); an SLO this build cannot
/// compile any more (its metric left the catalog) fails with that reason, never passes.
fn rejudge(
    o: &crate::engine::verdict::SloOutcome,
    kind: Kind,
    m: Option<&Measurements>,
    why: &str,
) -> crate::engine::verdict::SloOutcome {
    match (crate::engine::rebase::recompile(o, kind), m) {
        (Some(slo), Some(m)) => judge(&slo, m, &[], &BaseInput::NotGiven),
        (Some(slo), None) => not_run(&slo, why),
        (None, _) => {
            let mut out = o.clone();
            out.status = crate::engine::verdict::Status::Fail;
            out.reason = crate::engine::verdict::Reason::NoData;
            out.observed = None;
            out.message = format!("`{}` does not compile in this perfspec: not judged", o.expr);
            out
        }
    }
}

/// Per shard: requests, late arrivals and start offset, for the report.
fn attainment(parts: &[(f64, &Measurements, u32)], skew: f64) -> String {
    let n = parts.len();
    let rows: Vec<String> = parts
        .iter()
        .map(|(offset, m, index)| {
            let sum = |metric: &str| match m.select(metric, &Labels::new(), true) {
                Selection::Value(v) => v,
                _ => 0.0,
            };
            format!(
                "shard {index}/{n}: {} requests, {} late, started {offset:+.2}s",
                sum("requests"),
                sum("late")
            )
        })
        .collect();
    format!(
        "merged from {n} shard(s), start skew {skew:.2}s: {}",
        rows.join("; ")
    )
}

/// The measurements of shards that ran side by side, as one run's.
pub fn merge_measurements(parts: &[(f64, &Measurements, u32)]) -> Measurements {
    if let [(_, one, _)] = parts {
        return (*one).clone();
    }
    let mut out = Measurements {
        elapsed_s: parts
            .iter()
            .map(|(o, m, _)| o + m.elapsed_s)
            .fold(0.0, f64::max),
        ..Measurements::default()
    };
    let mut gauges: BTreeMap<(String, Labels), (f64, usize)> = BTreeMap::new();
    for (offset, m, _) in parts {
        out.absorb(m);
        for s in &m.scalars {
            let e = gauges
                .entry((s.metric.clone(), s.labels.clone()))
                .or_insert((0.0, 0));
            e.0 += s.value;
            e.1 += 1;
        }
        add_series(&mut out, m, *offset);
    }
    let summed = |metric: &str, out: &Measurements| {
        crate::engine::verdict::is_counter(metric)
            || out.counters.iter().any(|c| c == metric)
            || metric == "throughput"
    };
    let mut averaged = BTreeSet::new();
    let scalars: Vec<Scalar> = gauges
        .into_iter()
        .map(|((metric, labels), (sum, n))| {
            let value = if summed(&metric, &out) {
                sum
            } else {
                if n > 1 {
                    averaged.insert(metric.clone());
                }
                sum / n as f64
            };
            Scalar {
                metric,
                labels,
                value,
            }
        })
        .collect();
    out.scalars = scalars;
    derive_ratios(&mut out);
    averaged.remove("error_rate");
    averaged.remove("late_ratio");
    if !averaged.is_empty() {
        out.notes.push(format!(
            "merged: {} averaged over the shards (each shard measured its own)",
            averaged.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    out
}

/// Series of counts added on the common clock (to the nearest second); quantile and ratio
/// series cannot be added and are left out.
fn add_series(out: &mut Measurements, m: &Measurements, offset: f64) {
    for s in &m.series {
        if s.metric.starts_with("latency.")
            || s.metric.ends_with("_ratio")
            || s.metric == "error_rate"
        {
            continue;
        }
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|&(t, v)| ((t + offset).round(), v))
            .collect();
        match out
            .series
            .iter_mut()
            .find(|o| o.metric == s.metric && o.labels == s.labels)
        {
            Some(o) => {
                for (t, v) in points {
                    match o.points.iter_mut().find(|p| p.0 == t) {
                        Some(p) => p.1 += v,
                        None => o.points.push((t, v)),
                    }
                }
                o.points.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            None => out.push_series(&s.metric, s.labels.clone(), points),
        }
    }
}

/// `error_rate` and `late_ratio` from the merged counts, for every label set the shards
/// reported them with.
fn derive_ratios(m: &mut Measurements) {
    let sum = |m: &Measurements, metric: &str, l: &Labels| match m.select(metric, l, true) {
        Selection::Value(v) => v,
        _ => 0.0,
    };
    let mut values = Vec::new();
    for (i, s) in m.scalars.iter().enumerate() {
        let v = match s.metric.as_str() {
            "error_rate" => {
                let mut without_status = s.labels.clone();
                without_status.remove("status");
                ratio(
                    sum(m, "errors", &s.labels),
                    sum(m, "requests", &without_status),
                )
            }
            "late_ratio" => ratio(sum(m, "late", &s.labels), sum(m, "arrivals", &s.labels)),
            _ => continue,
        };
        values.push((i, v));
    }
    for (i, v) in values {
        m.scalars[i].value = v;
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}
