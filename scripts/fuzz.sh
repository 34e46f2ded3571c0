#!/usr/bin/env bash
# Runs a fuzz target of a format reader for a while; crashes land in
# crates/tokumei-formats/fuzz/artifacts/<target>/ and must become regression tests.
# Usage: scripts/fuzz.sh [TARGET] [SECONDS]     (default: uke 60)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain RUSTC_BOOTSTRAP=1 enables the
# sanitizer flags it passes.
set -euo pipefail
target=${1:-uke}
seconds=${2:-60}
cd "$(dirname "$0")/../crates/tokumei-formats/fuzz"
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10
