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
BIN="${TOKUMEI_CLUSTER_BIN:-}"
if [ -z "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet -p tokumei-cli --features distributed \
    && cargo build --release --quiet -p tokumei-distributed --features ballista --bins) >&2
  BIN="$ROOT/target/release"
fi
OUT="$TASK/engines"
rm -rf "$OUT"; mkdir -p "$OUT"
TIME=/usr/bin/time
wall() { awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.1f", s}' "$1"; }
cpu() { awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.1f", u+s}' "$1"; }
rss() { awk -F': ' '/Maximum resident/{printf "%.2f GB", $2/1048576}' "$1"; }
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

# Executor CPU seconds and peak memory from /proc (before the cluster stops).
executor_figures() {
  local pids="$ROOT/target/local-cluster/$PORT/pids" tick; tick=$(getconf CLK_TCK)
  tail -n +2 "$pids" | while read -r pid; do
    local hwm cpu_s
    hwm=$(awk '/VmHWM/{printf "%.2f GB", $2/1048576}' "/proc/$pid/status")
    cpu_s=$(awk -v t="$tick" '{printf "%.1f", ($14+$15)/t}' "/proc/$pid/stat")
    echo "executor $pid: CPU $cpu_s s, peak memory $hwm"
  done
}

for e in $ENGINES; do
  case "$e" in
    embedded) run_engine embedded ;;
    datafusion) run_engine datafusion --engine datafusion --engine-work "$OUT/work" ;;
    ballista)
      TOKUMEI_CLUSTER_BIN="$BIN" "$ROOT/scripts/local-cluster.sh" start "$N" "$PORT" "${CONCURRENT_TASKS:-2}" >&2
      trap '"$ROOT/scripts/local-cluster.sh" stop "$PORT"' EXIT
      run_engine "ballista-$N" --engine "ballista://localhost:$PORT" \
        --engine-tls "/dev/shm/tokumei-cluster-$PORT/tls/driver" --engine-work "$OUT/work" || true
      executor_figures > "$OUT/executors.txt"
      "$ROOT/scripts/local-cluster.sh" stop "$PORT"; trap - EXIT
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
