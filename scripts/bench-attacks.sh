#!/usr/bin/env bash
# Peak memory of `tokumei receive` on hostile packages: a 1 GiB GNU sparse entry made with the public
# receiving key alone, the same after a manifest signed by a registered provider, and two ZIP bombs
# signed by a registered provider (an SS-MIX2 archive of 16 × 63 MiB of zeros; 63 MiB of commas as a
# claims file). Each must be refused (or quarantined) in bounded memory.
# Usage: scripts/bench-attacks.sh            (release build; writes and removes a scratch folder)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p tokumei-cli
cargo build --release -q -p tokumei-vault --example attack_packages
bin=target/release/tokumei
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export TOKUMEI_PASSPHRASE="bench attacks passphrase"
$bin init --scrypt-log-n 10 --home "$dir/home" >/dev/null
$bin provider init --id H01 --out "$dir/keys" >/dev/null
$bin provider add --id H01 --name x --address x --representative x --acquisition x \
  --notice-start 2020-01-06 --home "$dir/home" --public-key "$dir/keys/H01.pub" >/dev/null
target/release/examples/attack_packages "$dir/home/operator.recipient" H01 "$dir/keys/H01.key" "$dir/in"
for p in sparse-unsigned sparse-signed bomb-ssmix2 bomb-commas; do
  /usr/bin/time -f "%M" -o "$dir/rss" $bin receive --home "$dir/home" "$dir/in/$p.tkm" \
    >"$dir/out" 2>"$dir/err" || true
  printf '%-16s peak %6d MB  %s\n' "$p" $(( $(tail -1 "$dir/rss") / 1024 )) \
    "$(cat "$dir/err" "$dir/out" | grep -v '^$' | head -1 | cut -c1-160)"
done
