#!/usr/bin/env bash
# Receive throughput on a generated region: every provider's native files are packaged (provider side,
# not timed), then `tokumei receive` takes all packages in one run (timed, with peak memory).
# Usage: scripts/bench-receive.sh REGION_DIR [WORK_DIR]     (build first: cargo build --release)
set -euo pipefail
region=$1
work=${2:-/tmp/tokumei-bench-receive}
bin=$(cd "$(dirname "$0")/.." && pwd)/target/release/tokumei
rm -rf "$work"
mkdir -p "$work/pkg" "$work/keys" "$work/extract"
export TOKUMEI_PASSPHRASE=${TOKUMEI_PASSPHRASE:-benchmark-passphrase-0001}
"$bin" init --home "$work/home" > /dev/null
recipient=$(cat "$work/home/operator.recipient")
for dir in "$region"/sources/*/; do
  p=$(basename "$dir")
  "$bin" provider init --id "$p" --out "$work/keys" > /dev/null
  "$bin" provider add --home "$work/home" --id "$p" --public-key "$work/keys/$p.pub" \
    --name "$p" --address x --representative x --acquisition x --notice-start 2020-01-06 > /dev/null
  mkdir -p "$work/extract/$p"
  (cd "$dir" && find . -type f ! -name '*.parquet' -exec cp --parents {} "$work/extract/$p/" \;)
  "$bin" package --provider-key "$work/keys/$p.key" --to "$recipient" --in "$work/extract/$p" \
    --out "$work/pkg/$p.tkm" --extracted-on 2024-06-01 > /dev/null
done
bytes=$(cat "$work"/pkg/*.tkm | wc -c)
start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$work/rss" "$bin" receive --home "$work/home" "$work"/pkg/*.tkm > "$work/receive.log"
end=$(date +%s.%N)
records=$(grep -o '[0-9]* records stored' "$work/receive.log" | awk '{s+=$1} END {print s}')
quarantined=$(grep -o '[0-9]* quarantined' "$work/receive.log" | awk '{s+=$1} END {print s}')
awk -v s="$start" -v e="$end" -v b="$bytes" -v r="$records" -v q="$quarantined" -v m="$(cat "$work/rss")" 'BEGIN {
  t = e - s;
  printf "packages: %.1f MB; receive: %.1f s, %.1f MB/s, %d records stored (%.0f records/s), %d quarantined; peak RSS %.2f GB\n",
    b / 1e6, t, b / 1e6 / t, r, r / t, q, m / 1048576
}'
