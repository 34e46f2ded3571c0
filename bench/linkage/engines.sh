#!/usr/bin/env bash
# The same linkage task on each engine: embedded, DataFusion in this process, and a local Ballista cluster of
# N executors (scripts/local-cluster.sh, mutual TLS). Checks that every engine's pairs.csv and clusters.csv are
# the embedded run's, byte for byte, and prints one table: wall and CPU time and peak memory of the driver, and
# CPU and peak memory of each executor (read from /proc before the cluster stops).
#
# usage: bench/linkage/engines.sh TASK_DIR [EXECUTORS=2] [PORT=50450]
#        TASK_DIR holds a.csv and b.csv (gen_synth.py); outputs go to TASK_DIR/engines/ and are removed at the end
#        unless KEEP=1.
# env:   ENGINES="embedded datafusion ballista"   subset to run
#        PARTITIONS=8                   --engine-partitions
#        CONCURRENT_TASKS=2             task slots of each executor
#        SETTINGS=settings/linkage/febrl_scale.toml
#        TOKUMEI_CLUSTER_BIN=DIR        take the binaries from DIR instead of building them (release, with the
#                                       features `distributed` and `ballista`)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TASK="$(cd "${1:?usage: engines.sh TASK_DIR [EXECUTORS] [PORT]}" && pwd)"
N="${2:-2}" PORT="${3:-50450}"
ENGINES="${ENGINES:-embedded datafusion ballista}"
SETTINGS="${SETTINGS:-$ROOT/settings/linkage/febrl_scale.toml}"
PARTITIONS="${PARTITIONS:-8}"
# shellcheck source=../engines-lib.sh
. "$HERE/../engines-lib.sh"
OUT="$TASK/engines"
rm -rf "$OUT"; mkdir -p "$OUT"
ROWS=()

run_engine() {
  local name="$1"; shift
  echo "== $name" >&2
  "$TIME" -v "$BIN/tokumei" linkage run --settings "$SETTINGS" --left "$TASK/a.csv" --right "$TASK/b.csv" \
    --out "$OUT/$name" --engine-partitions "$PARTITIONS" "$@" > "$OUT/$name.log" 2> "$OUT/$name.time" \
    || { tail -5 "$OUT/$name.time" >&2; return 1; }
  local same="—"
  if [ "$name" != embedded ] && [ -d "$OUT/embedded" ]; then
    same=no
    cmp -s "$OUT/embedded/pairs.csv" "$OUT/$name/pairs.csv" \
      && cmp -s "$OUT/embedded/clusters.csv" "$OUT/$name/clusters.csv" && same=yes
  fi
  ROWS+=("| $name | $(wall "$OUT/$name.time") s | $(cpu "$OUT/$name.time") s | $(rss "$OUT/$name.time") | $same |")
}

for e in $ENGINES; do
  case "$e" in
    embedded) run_engine embedded ;;
    datafusion) run_engine datafusion --engine datafusion --engine-work "$OUT/work" ;;
    ballista)
      start_cluster
      run_engine "ballista-$N" --engine "ballista://localhost:$PORT" \
        --engine-tls "/dev/shm/tokumei-cluster-$PORT/tls/driver" --engine-work "$OUT/work" || true
      executor_figures > "$OUT/executors.txt"
      stop_cluster
      ;;
  esac
done

echo
echo "task: $TASK ($(($(wc -l < "$TASK/a.csv") - 1)) × $(($(wc -l < "$TASK/b.csv") - 1)) records), partitions $PARTITIONS"
echo "| engine | wall | CPU (driver) | peak memory (driver) | same output as embedded |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
[ -f "$OUT/executors.txt" ] && cat "$OUT/executors.txt"
[ "${KEEP:-0}" = 1 ] || rm -rf "$OUT"
