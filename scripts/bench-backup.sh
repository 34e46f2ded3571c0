#!/usr/bin/env bash
# Backup and restore of a home that `tokumei demo` left: a first and a second generation to a folder
# target (between them, one provider's new package received and linked: a day's change), a full
# verification of every chunk, the key escrow, and the restore at another site with two technicians.
# Prints the time and size of each step. Usage:
#   scripts/bench-backup.sh DEMO_DIR WORK_DIR [TOKUMEI_BINARY]
# DEMO_DIR is the folder of `tokumei demo --dir DEMO_DIR` (it is changed: users, a target, a receipt);
# WORK_DIR receives the repository and the restored home, and is removed at the end.
set -euo pipefail
demo=$(realpath "$1"); work=$(realpath -m "$2"); bin=${3:-tokumei}
home="$demo/home"
mkdir -p "$work/keys"
export TOKUMEI_PASSPHRASE="$(cat "$demo/passphrase.txt")"
export TOKUMEI_LOCK_WAIT=600
secret() { printf '%s' "$2" > "$work/$1"; }
for u in bench-a bench-b; do
  secret "$u.pass" "passphrase-of-$u"
  secret "$u.custody" "custody-secret-of-$u"
  TOKUMEI_NEW_USER_PASSPHRASE="passphrase-of-$u" "$bin" user add --home "$home" --name "$u" --role technician \
    --requested-by bench --approved-by bench --out "$work/keys" >/dev/null
done
secret new.pass "the-second-site-passphrase"
export TOKUMEI_USER_KEY="$work/keys/bench-a.key" TOKUMEI_USER_PASSPHRASE="passphrase-of-bench-a"
"$bin" escrow split --home "$home" --threshold 2 --out "$work/shares" \
  --custodian bench-a --custodian-passphrase-file "$work/bench-a.custody" \
  --custodian bench-b --custodian-passphrase-file "$work/bench-b.custody" >/dev/null
"$bin" backup init --home "$home" --target bench --repo "$work/repo" >/dev/null
timed() { local t0 t1; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N); echo "  $(echo "$t1 - $t0" | bc) s"; }
echo "home: $(du -sh --apparent-size "$home" | cut -f1), $(find "$home" -type f | wc -l) files"
echo "first generation:"; timed "$bin" backup create --home "$home" --target bench
echo "  repository: $(du -sh "$work/repo" | cut -f1)"
# A day's change: one provider's second extract received and linked.
p=$(ls "$demo/providers" | grep '\.key$' | head -1); p=${p%.key}
"$bin" package --provider-key "$demo/providers/$p.key" --to "$home/operator.recipient" \
  --in "$demo/region/sources/$p" --exclude parquet --notice-filing "demo-$p" --notice-start 2021-01-04 \
  --out "$work/$p-second.tkm" >/dev/null
"$bin" receive --home "$home" "$work/$p-second.tkm" >/dev/null
"$bin" link --home "$home" >/dev/null
echo "second generation (after provider $p's second extract, received and linked):"
timed "$bin" backup create --home "$home" --target bench
echo "  repository: $(du -sh "$work/repo" | cut -f1)"
echo "verify (every chunk read and authenticated):"; timed "$bin" backup verify --home "$home" --target bench
unset TOKUMEI_PASSPHRASE TOKUMEI_USER_KEY TOKUMEI_USER_PASSPHRASE
shares=("$work"/shares/*.share)
echo "restore at another site (check of every chunk, restore, audit log verified, two technicians):"
timed "$bin" restore --site --into "$work/site2" --target bench --repo "$work/repo" \
  --share "${shares[0]}" --share-passphrase-file "$work/bench-a.custody" \
  --share "${shares[1]}" --share-passphrase-file "$work/bench-b.custody" \
  --technician-key "$work/keys/bench-a.key" --technician-passphrase-file "$work/bench-a.pass" \
  --technician-key "$work/keys/bench-b.key" --technician-passphrase-file "$work/bench-b.pass" \
  --new-passphrase-file "$work/new.pass"
echo "  restored home: $(du -sh --apparent-size "$work/site2" | cut -f1)"
TOKUMEI_PASSPHRASE="the-second-site-passphrase" TOKUMEI_USER_KEY="$work/keys/bench-a.key" \
  TOKUMEI_USER_PASSPHRASE="passphrase-of-bench-a" "$bin" audit verify --home "$work/site2"
rm -rf "$work"
