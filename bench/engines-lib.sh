# Shared by the engines benchmarks (bench/*/engines.sh): the binaries, figures read from GNU time's
# report, and each executor's CPU and peak memory read from /proc before a local cluster stops.
# Sourced with ROOT and PORT set; sets BIN (TOKUMEI_CLUSTER_BIN, else a release build with the
# features `distributed` and `ballista`).

BIN="${TOKUMEI_CLUSTER_BIN:-}"
if [ -z "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet -p tokumei-cli --features distributed \
    && cargo build --release --quiet -p tokumei-distributed --features ballista --bins) >&2
  BIN="$ROOT/target/release"
fi
TIME=/usr/bin/time

wall() { awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.1f", s}' "$1"; }
cpu() { awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.1f", u+s}' "$1"; }
rss() { awk -F': ' '/Maximum resident/{printf "%.2f GB", $2/1048576}' "$1"; }

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

# Starts a local cluster of N executors on PORT (stopped on exit).
start_cluster() {
  TOKUMEI_CLUSTER_BIN="$BIN" "$ROOT/scripts/local-cluster.sh" start "$N" "$PORT" "${CONCURRENT_TASKS:-2}" >&2
  trap '"$ROOT/scripts/local-cluster.sh" stop "$PORT"' EXIT
}

# Stops it.
stop_cluster() {
  "$ROOT/scripts/local-cluster.sh" stop "$PORT"; trap - EXIT
}
