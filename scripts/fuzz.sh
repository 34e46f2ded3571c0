#!/usr/bin/env bash
# Runs a fuzz target for a while: a format reader (uke, ssmix2, kenshin, fhir, death), the DICOM reader (dicom) or the package
# reader (package); crashes land in crates/<crate>/fuzz/artifacts/<target>/ and must become
# regression tests. Any single allocation over 256 MB counts as a failure.
# Usage: scripts/fuzz.sh [TARGET] [SECONDS]     (default: uke 60)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain RUSTC_BOOTSTRAP=1 enables the
# sanitizer flags it passes.
set -euo pipefail
target=${1:-uke}
seconds=${2:-60}
crate=tokumei-formats
if [ "$target" = package ]; then crate=tokumei-vault; fi
if [ "$target" = dicom ]; then crate=tokumei-dicom; fi
cd "$(dirname "$0")/../crates/$crate/fuzz"
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" \
  -rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=10
