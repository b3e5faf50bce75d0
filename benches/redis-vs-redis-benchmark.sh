#!/usr/bin/env bash
# perfspec's Redis GET/SET throughput next to redis-benchmark's, against the same
# redis-server, in one run.
#
#   benches/redis-vs-redis-benchmark.sh [IN_FLIGHT] [SECONDS]
#
# perfspec's cache backend talks to Redis over ONE multiplexed connection (the redis crate's
# connection manager) with up to IN_FLIGHT commands outstanding (workload.concurrency); a
# 50/50 GET/SET mix of 64-byte values over 10 000 keys, write-through with a zero-latency
# origin. redis-benchmark is run twice for the same GET and SET load: one connection with
# pipeline depth IN_FLIGHT (`-c 1 -P N`), and IN_FLIGHT connections without pipelining
# (`-c N -P 1`). Needs a release build, redis-server and redis-tools. Loopback only, on a
# port picked free by the OS; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-16}
SECS=${2:-5}
BIN=${PERFSPEC_BIN:-target/release/perfspec}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 2; }
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null \
  || { echo "install redis-server and redis-tools" >&2; exit 3; }
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "redis-server on 127.0.0.1:$PORT, $N in flight, $(nproc) CPUs"

cat >"$WORK/spec.yaml" <<SPEC
kind: cache
name: redis-throughput
topology:
  l2: { backend: redis, url: "redis://127.0.0.1:$PORT" }
origin: { latency: 0ms }
workload:
  keys: 10000
  distribution: uniform
  mix: { read: 0.5, update: 0.5 }
  value_size: 64B
  duration: ${SECS}s
  concurrency: $N
  seed: 1
slo:
  - throughput > 0/s
SPEC
"$BIN" run "$WORK/spec.yaml" --out "$WORK/out" --quiet >/dev/null 2>&1 || true
PS=$(python3 -c "
import json; m = json.load(open('$WORK/out/results.json'))['specs'][0]['measurements']
print(next(s['value'] for s in m['scalars'] if s['metric'] == 'throughput' and not s.get('labels')))")

OPS=$((SECS * 60000))
rb() { redis-benchmark -p "$PORT" -t get,set -d 64 -r 10000 -n "$OPS" --csv "$@" 2>/dev/null \
  | python3 -c 'import csv,sys; r=[float(x[1]) for x in csv.reader(sys.stdin) if x and x[0] in ("GET","SET")]; print(sum(r)/len(r))'; }
P1=$(rb -c 1 -P "$N")
PN=$(rb -c "$N" -P 1)
printf '\n%-40s %12s %12s\n' "client" "ops/s" "perfspec/x"
for row in "perfspec (1 conn, $N in flight):$PS" "redis-benchmark -c 1 -P $N:$P1" "redis-benchmark -c $N -P 1:$PN"; do
  name=${row%:*}; v=${row##*:}
  python3 -c "print(f'{\"$name\":<40} {float($v):12.0f} {float($PS)/float($v):12.2f}')"
done
