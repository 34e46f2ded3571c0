#!/usr/bin/env bash
# Runs the same workloads with two `tokumei` binaries, alternating, to show that a change kept the
# engines' speed: the demo (synthetic region, receipt, linkage, release) and `tokumei anonymize` on
# Adult (k = 5, 5 % suppression, ARX's hierarchies). Prints wall time and peak memory of each run and
# the demo's own step timings.
#
#   scripts/bench-compare.sh BEFORE_BIN AFTER_BIN ADULT_DIR [PEOPLE] [ROUNDS]
#
# ADULT_DIR holds adult.csv and adult_hierarchy_*.csv (ARX's example data). Writes only under a
# temporary folder, removed at the end.
set -euo pipefail
before=$1 after=$2 adult=$3 people=${4:-20000} rounds=${5:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

timed() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "$label wall %e s, peak %M KB" "$@" > "$work/out.txt" 2> "$work/err.txt" || {
    cat "$work/err.txt" >&2; return 1; }
  grep -E "wall .* s, peak" "$work/err.txt"
}

qis=()
for c in sex age race marital-status education native-country workclass occupation salary-class; do
  qis+=(--qi "$c=$adult/adult_hierarchy_$c.csv")
done

for round in $(seq 1 "$rounds"); do
  for which in before after; do
    bin=${!which}
    rm -rf "$work/demo" "$work/anon"
    timed "round $round $which demo ($people people)" "$bin" demo --dir "$work/demo" --people "$people" --seed 7
    # The demo's own timings: receipt (step 3), linkage (step 4), release (step 6).
    for step in "packages, " "pairs for clerical review" "persons of "; do
      line=$(grep -F "$step" "$work/out.txt" | head -1 || true)
      echo "    ${step%%,*}: ${line##*; }"
    done
    timed "round $round $which anonymize (Adult k=5, 5 pct)" "$bin" anonymize --input "$adult/adult.csv" \
      --out "$work/anon" "${qis[@]}" --k 5 --suppression-limit 0.05
  done
done
