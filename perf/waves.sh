#!/usr/bin/env bash
# waves.sh: does memory come back? Short publish sessions in waves, uringestd against
# nginx-rtmp.
#
# Each wave is PUBLISHERS publishers of 600 kbit/s that connect (spread over 1 s),
# publish for 2 s and leave (uringest-load); WAVES waves in a row into one server (20 x
# 1000 = 20,000 sessions by default). After each wave, once the sessions are gone, the
# server's RSS is sampled (VmRSS, of nginx its worker). What is expected: the first wave
# warms the server (code pages, the allocator's arenas, buffers at their peak), and
# from then on RSS stays within a few per cent of that, wave after wave, instead of
# creeping up. Each server is pinned to CPU 0 with all its threads, the load to CPU 1.
#
#   perf/waves.sh                               # 20 waves of 1000 into each server
#   perf/waves.sh --waves 5 --publishers 200 --only uringestd
#   BUILD=/path/to/build perf/waves.sh
#
# Prints one line per wave and server and a summary line per server: RSS after the first
# and the fourth wave, the highest, the last, and the growth against the first and (the
# highest from the fourth on) against the fourth. Exit status 1 if a wave did not get every publisher live and out cleanly.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh"
BUILD=${BUILD:-$ROOT/build}
BIN="$BUILD/bin"
WAVES=20
PUBLISHERS=1000
ONLY=""
SERVER_CPU=0
LOAD_CPU=1
U_PORT=${U_PORT:-19965}
N_PORT=${N_PORT:-19966}
RING="waves$$"
while [[ $# -gt 0 ]]; do
  case $1 in
    --waves) WAVES=$2; shift 2 ;;
    --publishers) PUBLISHERS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "usage: $0 [--waves N] [--publishers N] [--only uringestd|nginx]" >&2; exit 2 ;;
  esac
done
scratch_dir waves

# waves NAME PID PORT: runs the waves into one server; appends "name wave rss_kib ok" to
# waves.txt.
waves() {
  local name=$1 pid=$2 port=$3 ok=0
  for w in $(seq "$WAVES"); do
    local out="$TMP/$name-$w.json" live=0
    if taskset -c "$LOAD_CPU" "$BIN/uringest-load" --target "127.0.0.1:$port" \
         --publishers "$PUBLISHERS" --bitrate 600k --ramp 1 --duration 2 --json \
         > "$out" 2> "$out.log"; then
      live=1
    else
      ok=1
    fi
    # The sessions are gone from the server's side too before RSS is taken.
    for _ in $(seq 50); do [[ $(established "$port") -eq 0 ]] && break; sleep 0.1; done
    sleep 1
    echo "$name $w $(kib "$pid" VmRSS) $live" >> "$TMP/waves.txt"
    printf '%-10s wave %2d: RSS %7.1f MB%s\n' "$name" "$w" "$(kib "$pid" VmRSS | awk '{ print $1 / 1024 }')" \
      "$( ((live)) || echo ", not every publisher live and out cleanly: $(tail -1 "$out.log")")"
  done
  return $ok
}

run_uringestd() {
  start_uringestd_pinned "$BIN/uringestd" "$SERVER_CPU" "$U_PORT" "$RING" --max-connections 0 ||
    return 1
  local pid=$URINGESTD_PID ok=0
  waves uringestd "$pid" "$U_PORT" || ok=1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  return $ok
}

run_nginx() {
  start_nginx_rtmp "$TMP/nginx" "$N_PORT" "$SERVER_CPU" || return 1
  PIDS+=("$NGINX_MASTER")
  local ok=0
  waves nginx "$NGINX_WORKER" "$N_PORT" || ok=1
  kill "$NGINX_MASTER"; wait "$NGINX_MASTER" 2>/dev/null || true
  return $ok
}

status=0
: > "$TMP/waves.txt"
[[ -z $ONLY || $ONLY == uringestd ]] && { run_uringestd || status=1; }
[[ -z $ONLY || $ONLY == nginx ]] && { run_nginx || status=1; }
python3 - "$TMP/waves.txt" "$PUBLISHERS" <<'EOF'
import sys
rss = {}
for line in open(sys.argv[1]):
    name, wave, kib, live = line.split()
    rss.setdefault(name, []).append(int(kib) / 1024)
n = int(sys.argv[2])
for name, mb in rss.items():
    w = min(4, len(mb))  # the warm wave: the 4th, or the last of fewer
    warm = mb[w - 1]
    print("%-10s %d waves of %d sessions: RSS after wave 1 %.1f MB, after wave %d %.1f MB, "
          "highest after %.1f MB, last %.1f MB: %+.1f%% against wave 1, %+.1f%% against "
          "wave %d" % (name, len(mb), n, mb[0], w, warm, max(mb), mb[-1],
                       100 * (max(mb) / mb[0] - 1), 100 * (max(mb[w - 1:]) / warm - 1), w))
EOF
exit $status
