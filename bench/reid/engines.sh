#!/usr/bin/env bash
# The re-identification battery (`tokumei reid-test`) on each engine: embedded, DataFusion in this process,
# and a local Ballista cluster of N executors (mutual TLS), against a register of PERSONS and two releases of a
# third of it (bench/reid/gen_register.py: coarse and fine quasi-identifiers, with the answer key). Checks that
# every engine prints the embedded run's figures, byte for byte, and prints one table per release: wall and CPU
# time and peak memory of the driver, then CPU and peak memory of each executor.
#
# usage: bench/reid/engines.sh PERSONS [EXECUTORS=2] [PORT=50470]
# env:   ENGINES="embedded datafusion ballista"   subset to run
#        PARTITIONS=8 CONCURRENT_TASKS=2 SEED=1
#        TOKUMEI_CLUSTER_BIN=DIR        take the binaries from DIR instead of building them (release, with the
#                                       features `distributed` and `ballista`)
#        DATA=DIR                       where the register and releases go and stay (default: a temporary
#                                       folder, removed at the end unless KEEP=1)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PERSONS="${1:?usage: engines.sh PERSONS [EXECUTORS] [PORT]}"
N="${2:-2}" PORT="${3:-50470}"
ENGINES="${ENGINES:-embedded datafusion ballista}"
PARTITIONS="${PARTITIONS:-8}"
# shellcheck source=../engines-lib.sh
. "$HERE/../engines-lib.sh"
MADE=0
[ -n "${DATA:-}" ] || { DATA="$(mktemp -d)"; MADE=1; }
OUT="$DATA/engines"
rm -rf "$OUT"; mkdir -p "$OUT"
python3 "$HERE/gen_register.py" "$PERSONS" "$DATA" "${SEED:-1}"
ROWS=()

run_engine() {
  local name="$1" release="$2"; shift 2
  echo "== $name, $release" >&2
  "$TIME" -v "$BIN/tokumei" reid-test --release "$DATA/$release" --population "$DATA/register.csv" \
    --truth "$DATA/truth.csv" --json --engine-partitions "$PARTITIONS" "$@" \
    > "$OUT/$release-$name.json" 2> "$OUT/$release-$name.time" || true
  grep -q '"persons"' "$OUT/$release-$name.json" || { tail -5 "$OUT/$release-$name.time" >&2; return 1; }
  local same="—"
  if [ "$name" != embedded ] && [ -f "$OUT/$release-embedded.json" ]; then
    same=no
    cmp -s "$OUT/$release-embedded.json" "$OUT/$release-$name.json" && same=yes
  fi
  ROWS+=("| $release | $name | $(wall "$OUT/$release-$name.time") s | $(cpu "$OUT/$release-$name.time") s | $(rss "$OUT/$release-$name.time") | $same |")
}

for e in $ENGINES; do
  for release in coarse fine; do
    case "$e" in
      embedded) run_engine embedded "$release" ;;
      datafusion) run_engine datafusion "$release" --engine datafusion --engine-work "$OUT/work" ;;
      ballista)
        [ "$release" = coarse ] && start_cluster
        run_engine "ballista-$N" "$release" --engine "ballista://localhost:$PORT" \
          --engine-tls "/dev/shm/tokumei-cluster-$PORT/tls/driver" --engine-work "$OUT/work" || true
        if [ "$release" = fine ]; then executor_figures > "$OUT/executors.txt"; stop_cluster; fi
        ;;
    esac
  done
done

echo
echo "register: $PERSONS persons; releases of $(($(wc -l < "$DATA/truth.csv") - 1)) persons; partitions $PARTITIONS"
echo "| release | engine | wall | CPU (driver) | peak memory (driver) | same figures as embedded |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
[ -f "$OUT/executors.txt" ] && cat "$OUT/executors.txt"
head -c 600 "$OUT/fine-embedded.json" 2>/dev/null && echo
if [ "${KEEP:-0}" != 1 ]; then
  rm -rf "$OUT"
  [ "$MADE" = 0 ] || rm -rf "$DATA"
fi
