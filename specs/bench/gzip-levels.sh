#!/bin/sh
# A benchmark of our own, run by specs/gzip-levels.toml (`backend = "exec"`): it times
# `gzip -1` and `gzip -9` on the same generated input and prints a perfspec exec document
# (`perfspec schema --exec`) on stdout. Each round's time includes starting gzip (one
# fork + exec), as a shell pipeline that calls it would pay.
set -eu

rounds=${ROUNDS:-20}
work="$PERFSPEC_OUT/work"
mkdir -p "$work"
# ~2 MiB of an access log: 40000 generated lines (deterministic)
seq 1 40000 | awk '{ printf "127.0.0.1 - - [02/Dec/2026:10:%02d:%02d] \"GET /products/%d HTTP/1.1\" %d %d\n", ($1 / 60) % 60, $1 % 60, ($1 * 7919) % 977, ($1 % 50 == 0) ? 500 : 200, ($1 * 104729) % 9000 + 300 }' > "$work/input.txt"
size_in=$(wc -c < "$work/input.txt")

samples=""
scalars=""
for level in 1 9; do
  values=""
  i=0
  while [ "$i" -lt "$rounds" ]; do
    t0=$(date +%s%N)
    gzip "-$level" -c "$work/input.txt" > "$work/out.gz"
    t1=$(date +%s%N)
    values="$values${values:+, }$(( (t1 - t0) / 1000 ))"
    i=$((i + 1))
  done
  size_out=$(wc -c < "$work/out.gz")
  echo "gzip -$level: $size_in -> $size_out bytes" >&2
  samples="$samples${samples:+,
    }{\"metric\": \"compress_time\", \"labels\": {\"level\": \"$level\"}, \"scale\": 1e-6, \"values\": [$values]}"
  scalars="$scalars${scalars:+,
    }{\"metric\": \"compressed_ratio\", \"labels\": {\"level\": \"$level\"}, \"value\": $(awk "BEGIN { print $size_out / $size_in }")},
    {\"metric\": \"compressed_size\", \"labels\": {\"level\": \"$level\"}, \"value\": $size_out}"
done
rm -rf "$work"

cat <<JSON
{
  "version": 1,
  "samples": [
    $samples
  ],
  "scalars": [
    $scalars
  ],
  "notes": ["input: a generated access log of $size_in bytes; $rounds rounds per level; $(gzip --version | head -n 1)"]
}
JSON
