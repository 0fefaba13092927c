#!/usr/bin/env bash
# idle_sessions.sh: memory per idle publish session, uringestd against nginx-rtmp.
#
# An idle publish session is connected, past the handshake, connect, createStream and
# publish, and sends nothing more (uringest-load --idle). Each server starts pinned to
# CPU 0 (so are all its threads), the load runs on CPU 1. The figure is the server's RSS
# (VmRSS: anonymous, file and shared memory, the directory's pages included) while N
# sessions are live, less its RSS before them, divided by N; as perf/compare.sh measures,
# except that 50 sessions come and go first (--warmup 0: none), so that what is paid once
# per process (code pages faulted in, the allocator's first pages) is not counted.
#
#   perf/idle_sessions.sh                 # 1000 sessions into each server
#   perf/idle_sessions.sh --publishers 2000 --only uringestd
#   perf/idle_sessions.sh --warmup 0      # as perf/compare.sh: no warm-up
#   BUILD=/path/to/build perf/idle_sessions.sh
#
# Needs build/bin/uringestd and build/bin/uringest-load (cmake --build build --target
# uringestd uringest-load), and for nginx Debian's nginx and libnginx-mod-rtmp. Prints
# one line per server; exit status 1 if a server did not hold every session.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh"
BUILD=${BUILD:-$ROOT/build}
BIN="$BUILD/bin"
URINGESTD=${URINGESTD:-$BIN/uringestd}  # the server measured (the load is $BIN/uringest-load)
PUBLISHERS=1000
WARMUP=50
ONLY=""
SERVER_CPU=0
LOAD_CPU=1
U_PORT=${U_PORT:-19945}
N_PORT=${N_PORT:-19946}
RING="idle$$"
while [[ $# -gt 0 ]]; do
  case $1 in
    --publishers) PUBLISHERS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    *) echo "usage: $0 [--publishers N] [--warmup N] [--only uringestd|nginx]" >&2; exit 2 ;;
  esac
done
scratch_dir idle

# measure NAME PID PORT: drives PUBLISHERS idle publishers into the server and prints
# its RSS per session.
measure() {
  local name=$1 pid=$2 port=$3
  # Warm up: a few sessions first fault in the code and the allocator's first pages, a
  # cost paid once per process, not per session.
  if [[ $WARMUP -gt 0 ]]; then
    taskset -c "$LOAD_CPU" "$BIN/uringest-load" --target "127.0.0.1:$port" --idle \
      --publishers "$WARMUP" --duration 1 > /dev/null 2>&1 || true
  fi
  sleep 1
  local rss0 anon0 shm0
  rss0=$(kib "$pid" VmRSS); anon0=$(kib "$pid" RssAnon); shm0=$(kib "$pid" RssShmem)
  local ramp=$(( PUBLISHERS / 500 + 1 ))
  local hold=$(( ramp + 15 ))
  taskset -c "$LOAD_CPU" "$BIN/uringest-load" --target "127.0.0.1:$port" --idle \
    --publishers "$PUBLISHERS" --ramp "$ramp" --duration "$hold" --json \
    > "$TMP/$name.json" 2> "$TMP/$name.log" &
  local load=$!
  PIDS+=("$load")
  # Wait until every session is up (the last connects, then publishes), then let the
  # allocator settle and take the highest of a few samples.
  local up=0
  for _ in $(seq $(( (ramp + 10) * 10 ))); do
    up=$(established "$port")
    [[ $up -ge $PUBLISHERS ]] && break
    sleep 0.1
  done
  sleep 3
  local rss=0 anon=0 shm=0 r
  for _ in 1 2 3 4 5; do
    r=$(kib "$pid" VmRSS)
    if [[ $r -gt $rss ]]; then rss=$r; anon=$(kib "$pid" RssAnon); shm=$(kib "$pid" RssShmem); fi
    sleep 0.5
  done
  up=$(established "$port")
  kill "$load" 2>/dev/null || true
  wait "$load" 2>/dev/null || true
  python3 - "$name" "$PUBLISHERS" "$up" "$rss0" "$rss" "$anon0" "$anon" "$shm0" "$shm" <<'EOF'
import sys
name, n, up = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rss0, rss, anon0, anon, shm0, shm = (int(x) for x in sys.argv[4:])
per = lambda a, b: (b - a) * 1024 / n
print("%-10s %5d idle sessions (%d established): RSS %.1f -> %.1f MB, %6.0f bytes (%.2f KiB) "
      "per session [anon %.0f B, shmem %.0f B]"
      % (name, n, up, rss0 / 1024, rss / 1024, per(rss0, rss), per(rss0, rss) / 1024,
         per(anon0, anon), per(shm0, shm)))
EOF
  [[ $up -ge $PUBLISHERS ]]
}

run_uringestd() {
  start_uringestd_pinned "$URINGESTD" "$SERVER_CPU" "$U_PORT" "$RING" --max-connections 0 \
    --idle-timeout 600 || return 1
  local pid=$URINGESTD_PID ok=0
  measure uringestd "$pid" "$U_PORT" || ok=1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  return $ok
}

# One worker (perf/lib.sh), as perf/compare.sh runs it.
run_nginx() {
  start_nginx_rtmp "$TMP/nginx" "$N_PORT" "$SERVER_CPU" || return 1
  local master=$NGINX_MASTER worker=$NGINX_WORKER
  PIDS+=("$master")
  local ok=0
  measure nginx "$worker" "$N_PORT" || ok=1
  kill "$master"; wait "$master" 2>/dev/null || true
  return $ok
}

status=0
[[ -z $ONLY || $ONLY == uringestd ]] && { run_uringestd || status=1; }
[[ -z $ONLY || $ONLY == nginx ]] && { run_nginx || status=1; }
exit $status
