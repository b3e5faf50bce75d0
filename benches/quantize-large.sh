#!/usr/bin/env bash
# fp32 vs int8 latency and size on both burn backends (flex, ndarray), side by side, for an
# MLP large enough to matter: 512-2048-2048-10 (≈5.3 M weights).
#
#   benches/quantize-large.sh [SAMPLES]
#
# The data are random (seeded) 512-feature rows: accuracy means nothing here, only size and
# latency do. The model is trained for one epoch by perfspec itself (no download). Needs a
# release build with the default `quantize` feature.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-600}
BIN=${PERFSPEC_BIN:-target/release/perfspec}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK/data.csv" "$N" <<'PY'
import random, sys
random.seed(7)
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write(",".join([f"x{i}" for i in range(512)] + ["label"]) + "\n")
    for _ in range(n):
        f.write(",".join(f"{random.random():.4f}" for _ in range(512)) + f",{random.randrange(10)}\n")
PY
for backend in flex ndarray; do
  cat >"$WORK/$backend.toml" <<SPEC
kind = "quantize"
name = "large-$backend"
backend = "$backend"
slo = [{ expr = "size_ratio{scheme=int8} <= 0.30", severity = "warn" }]
[model]
architecture = "mlp"
layers = [512, 2048, 2048, 10]
activation = "relu"
[dataset]
csv = "data.csv"
label = "label"
test_split = 0.25
seed = 7
[train]
epochs = 1
batch_size = 64
seed = 7
[[scheme]]
name = "int8"
dtype = "int8"
[bench]
batch_sizes = [1, 32]
iterations = 20
warmup = 3
SPEC
  "$BIN" run "$WORK/$backend.toml" --out "$WORK/out-$backend" --quiet >/dev/null 2>"$WORK/$backend.err" || true
done
python3 - "$WORK" <<'PY'
import json, sys, os
work = sys.argv[1]
print(f"{'backend':<8} {'batch':>5} {'fp32 p50':>10} {'int8 quant.':>12} {'int8 deq.':>10} {'q/fp32':>7} {'deq/fp32':>8} {'fp32 size':>11} {'int8 size':>10}")
for b in ("flex", "ndarray"):
    p = os.path.join(work, f"out-{b}", "results.json")
    if not os.path.exists(p):
        print(f"{b}: no results (see {b}.err)"); continue
    m = json.load(open(p))["specs"][0]["measurements"]
    size = {s["labels"].get("scheme"): s["value"] for s in m["scalars"] if s["metric"] == "size" and s.get("labels")}
    lat = {}
    for h in m["histograms"]:
        if h["metric"] != "latency": continue
        l = h.get("labels", {})
        lat[(l.get("scheme"), l.get("mode"), l.get("batch"))] = h["summary"]["p50"]
    for batch in sorted({k[2] for k in lat}, key=lambda x: int(x)):
        f = next(v for k, v in lat.items() if k[0] == "fp32" and k[2] == batch)
        q = lat.get(("int8", "quantized", batch)); d = lat.get(("int8", "dequantize_at_load", batch))
        print(f"{b:<8} {batch:>5} {f*1e3:9.3f}ms {q*1e3:11.3f}ms {d*1e3:9.3f}ms {q/f:6.2f}x {d/f:7.2f}x {size.get('fp32',0)/1e6:9.2f}MB {size.get('int8',0)/1e6:8.2f}MB")
PY
