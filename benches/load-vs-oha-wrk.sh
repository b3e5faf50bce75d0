#!/usr/bin/env bash
# Side-by-side load generator benchmark: perfspec (closed model, goose underneath), oha
# (installed with `cargo install oha`) and wrk (installed with `apt-get install wrk`) against
# the same demo endpoint at the same concurrency, one after the other in one run. Prints
# throughput ratios and p50/p99 differences.
#
#   benches/load-vs-oha-wrk.sh [CONCURRENCY] [SECONDS] [DELAY]
#
# Needs: a release build (`cargo build --release`), `wrk` (apt-get install wrk) and `oha`
# (cargo install oha). A missing tool is reported and skipped. Only 127.0.0.1 is targeted,
# on a port the demo service picked itself; every run is bounded by SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
C=${1:-32}
SECS=${2:-10}
DELAY=${3:-2ms}
BIN=${PERFSPEC_BIN:-target/release/perfspec}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 2; }
WORK=$(mktemp -d)
cleanup() { [ -n "${SHOP_PID:-}" ] && kill "$SHOP_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# the demo shop answers every endpoint after exactly $DELAY (no database calls)
"$BIN" demo serve --port 0 --fixed-delay "$DELAY" >"$WORK/shop.out" 2>"$WORK/shop.err" &
SHOP_PID=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/shop.out" 2>/dev/null && break; sleep 0.1; done
URL=$(grep -o 'http://[0-9.:]*' "$WORK/shop.out" | head -n1)
[ -n "$URL" ] || { echo "the demo shop did not start" >&2; cat "$WORK/shop.err" >&2; exit 3; }
echo "target: $URL/products (fixed delay $DELAY), concurrency $C, $SECS s each, $(nproc) CPUs"

declare -A RPS P50 P99

# --- perfspec: closed model, C users for SECS seconds
cat >"$WORK/bench.toml" <<SPEC
kind = "load"
name = "bench"
slo = ["count(latency) > 0"]
[target]
url = "$URL"
ready = "/health"
[load]
model = "closed"
stages = [{ hold = $C, for = "${SECS}s" }]
[[journey]]
name = "get"
steps = [{ request = "GET /products" }]
SPEC
"$BIN" run "$WORK/bench.toml" --out "$WORK/out" --quiet >/dev/null 2>"$WORK/perfspec.err" || true
read -r rps p50 p99 < <(python3 - "$WORK/out/results.json" <<'PY'
import json, sys, base64
r = json.load(open(sys.argv[1]))
m = r["specs"][0]["measurements"]
rps = next(s["value"] for s in m["scalars"] if s["metric"] == "throughput" and not s.get("labels"))
hs = [h for h in m["histograms"] if h["metric"] == "latency"]
# this one-step journey against an always-200 endpoint has a single label set; with more,
# percentiles would need the merged HDR data (perfspec's own SLOs merge them exactly)
assert len(hs) == 1, [h.get("labels") for h in hs]
h = hs[0]
print(rps, h["summary"]["p50"] * 1e3, h["summary"]["p99"] * 1e3)
PY
)
RPS[perfspec]=$rps; P50[perfspec]=$p50; P99[perfspec]=$p99

# --- oha
if command -v oha >/dev/null; then
  oha -c "$C" -z "${SECS}s" --no-tui --output-format json "$URL/products" >"$WORK/oha.json" 2>/dev/null
  read -r rps p50 p99 < <(python3 - "$WORK/oha.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
s, p = o["summary"], o["latencyPercentiles"]
print(s["requestsPerSec"], p["p50"] * 1e3, p["p99"] * 1e3)
PY
)
  RPS[oha]=$rps; P50[oha]=$p50; P99[oha]=$p99
else
  echo "oha not found (cargo install oha): skipped"
fi

# --- wrk (threads = CPUs, connections = C)
if command -v wrk >/dev/null; then
  wrk -t "$(nproc)" -c "$C" -d "${SECS}s" --latency "$URL/products" >"$WORK/wrk.txt"
  read -r rps p50 p99 < <(python3 - "$WORK/wrk.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v, u): return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", t).groups())
p99 = ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", t).groups())
print(rps, p50, p99)
PY
)
  RPS[wrk]=$rps; P50[wrk]=$p50; P99[wrk]=$p99
else
  echo "wrk not found (apt-get install wrk): skipped"
fi

printf '\n%-9s %12s %10s %10s %14s %12s %12s\n' tool "req/s" "p50 ms" "p99 ms" "perfspec/tool" "Δp50 ms" "Δp99 ms"
for t in perfspec oha wrk; do
  [ -n "${RPS[$t]:-}" ] || continue
  python3 - "$t" "${RPS[$t]}" "${P50[$t]}" "${P99[$t]}" "${RPS[perfspec]}" "${P50[perfspec]}" "${P99[perfspec]}" <<'PY'
import sys
t, r, a, b, pr, pa, pb = sys.argv[1], *map(float, sys.argv[2:])
print(f"{t:<9} {r:12.0f} {a:10.2f} {b:10.2f} {pr / r:14.2f} {pa - a:+12.2f} {pb - b:+12.2f}")
PY
done
