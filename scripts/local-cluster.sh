#!/usr/bin/env bash
# A Ballista cluster on this machine, as processes: one scheduler and N executors, for tests and
# demonstrations of `--engine ballista://localhost:PORT`. The executors keep their shuffle files in
# memory (/dev/shm). Every connection is mutual TLS: the cluster's certificates (a scheduler, the
# executors and one driver, signed by an authority whose key is not kept) are issued at start into
# /dev/shm/tokumei-cluster-PORT/tls/; the driver's folder is printed for --engine-tls
# (or TOKUMEI_ENGINE_TLS).
#
# usage: scripts/local-cluster.sh start [N=2] [PORT=50050] [CONCURRENT_TASKS=2]
#        scripts/local-cluster.sh stop  [PORT=50050]
# env:   TOKUMEI_CLUSTER_BIN=DIR   take tokumei-scheduler, tokumei-executor and tokumei-cluster-certs from DIR (default: build
#                                  them, release, with the feature `ballista`)
#        EXECUTOR_MEMORY=BYTES     memory pool of each executor's queries
#        SHUFFLE_DIR=DIR           keep the executors' shuffle files under DIR (on disk) instead of /dev/shm, for
#                                  jobs whose shuffles do not fit in memory beside the driver and the executors;
#                                  the executors are told DIR is an encrypted volume (--work-dir-on-disk): set it
#                                  only where that is so, or for synthetic data
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="${1:-}"; shift || true
port_of() { echo "${1:-50050}"; }

start() {
  local n="${1:-2}" port; port=$(port_of "${2:-}"); local tasks="${3:-2}"
  local bin="${TOKUMEI_CLUSTER_BIN:-}"
  if [ -z "$bin" ]; then
    cargo build --release --quiet -p tokumei-distributed --features ballista --bins
    bin=target/release
  fi
  local run="target/local-cluster/$port" shm="/dev/shm/tokumei-cluster-$port"
  [ -e "$run/pids" ] && { echo "a cluster on port $port is running ($run/pids); stop it first" >&2; exit 1; }
  mkdir -p "$run" "$shm"; chmod 700 "$shm"
  local nodes=(scheduler driver)
  for i in $(seq 1 "$n"); do nodes+=("executor-$i"); done
  rm -rf "$shm/tls"
  "$bin/tokumei-cluster-certs" --out "$shm/tls" "${nodes[@]}" > /dev/null
  port_free "$port"
  for i in $(seq 1 "$n"); do port_free $((port + 2 * i)); port_free $((port + 2 * i + 1)); done
  : > "$run/pids"
  printf '%s\n' "${SHUFFLE_DIR:-}" > "$run/shuffle"
  "$bin/tokumei-scheduler" --port "$port" --tls "$shm/tls/scheduler" > "$run/scheduler.log" 2>&1 &
  echo $! >> "$run/pids"
  wait_port "$port"
  local extra=()
  [ -n "${EXECUTOR_MEMORY:-}" ] && extra=(--memory-pool-size "$EXECUTOR_MEMORY")
  [ -n "${SHUFFLE_DIR:-}" ] && extra+=(--work-dir-on-disk)
  for i in $(seq 1 "$n"); do
    local flight=$((port + 2 * i)) grpc=$((port + 2 * i + 1))
    local shuffle="${SHUFFLE_DIR:-$shm}/executor-$i"
    mkdir -p "$shuffle"; chmod 700 "$shuffle"
    "$bin/tokumei-executor" --scheduler-port "$port" --port "$flight" --grpc-port "$grpc" \
      --work-dir "$shuffle" --tls "$shm/tls/executor-$i" --concurrent-tasks "$tasks" "${extra[@]}" \
      > "$run/executor-$i.log" 2>&1 &
    echo $! >> "$run/pids"
    wait_port "$flight"
  done
  echo "ballista://localhost:$port"
  echo "TOKUMEI_ENGINE_TLS=$shm/tls/driver"
}

# Refuses a port something already listens on (a process of an earlier cluster, say): its answer would be
# taken for the new process's.
port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "port $1 is in use; stop what listens there first" >&2
    exit 1
  fi
}

wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "port $1 never opened (logs in target/local-cluster/)" >&2
  exit 1
}

stop() {
  local port; port=$(port_of "${1:-}")
  local run="target/local-cluster/$port"
  if [ -e "$run/pids" ]; then
    local pids; pids=$(cat "$run/pids")
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    # An executor finishes its running tasks before it exits, keeping its ports meanwhile: wait for every
    # process (30 s), then kill what is left, so that a cluster started next on the same ports gets them.
    for _ in $(seq 1 150); do
      local alive=0
      for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.2
    done
    for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
    rm -f "$run/pids"
  fi
  if [ -s "$run/shuffle" ]; then
    local dir; dir=$(cat "$run/shuffle")
    [ -n "$dir" ] && rm -rf "$dir"/executor-*
    rm -f "$run/shuffle"
  fi
  rm -rf "/dev/shm/tokumei-cluster-$port"
}

case "$cmd" in
  start) start "$@" ;;
  stop) stop "$@" ;;
  *) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
