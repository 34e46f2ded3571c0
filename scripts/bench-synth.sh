#!/usr/bin/env bash
# Benchmark of the synthetic region generator: people per second and peak memory.
# Usage: scripts/bench-synth.sh [PEOPLE...]   (default: 100000 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for n in "${@:-100000 1000000}"; do
  for people in $n; do
    /usr/bin/time -f "%e s wall, %U s user, %M KiB peak RSS" \
      target/release/tokumei synth --people "$people" --seed 1 --out "$out/r$people" 2>&1 | grep -E 'people|s wall'
    du -sh "$out/r$people" | cut -f1 | sed 's/^/  output size /'
    rm -rf "$out/r$people"
  done
done
