#!/usr/bin/env bash
# single_stream.sh: one big stream with one consumer, uringestd against nginx-rtmp, and
# how steady a server's cost is from one run to the next.
#
# One publisher (uringest-load --flv, unpaced) pushes a 1280x720 clip at RTMP chunk
# size 4096, then 128, into a fresh server while one consumer reads the stream: for
# uringestd one uringest-cat (it reads the ring, it asks the server nothing), for nginx
# one subscriber (ffmpeg -c copy -f null, which plays the stream from nginx). Each server
# is pinned to CPU 0 with all its threads; publisher and consumer run on CPU 1. RUNS runs
# in a row on the same server (a consumer started afresh for each), so that a first run
# that costs more than the rest (a fresh ring, cold caches) shows. The figure is the
# server's CPU (utime + stime of all its threads, /proc/PID/stat) per GB published.
#
#   perf/single_stream.sh                     # 4 runs of 10 s per chunk size and server
#   perf/single_stream.sh --runs 2 --seconds 5 --only uringestd
#   BUILD=/path/to/build KEEP_TMP=1 perf/single_stream.sh
#
# Prints a Markdown table and one line per run. Needs build/bin/{uringestd,uringest-load,
# uringest-cat}, ffmpeg (to encode the clip and as nginx's subscriber), and for nginx
# Debian's nginx and libnginx-mod-rtmp.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh"
BUILD=${BUILD:-$ROOT/build}
BIN="$BUILD/bin"
RUNS=4
SECONDS_PER_RUN=10
ONLY=""
CHUNKS="4096 128"
SERVER_CPU=0
LOAD_CPU=1
U_PORT=${U_PORT:-19955}
N_PORT=${N_PORT:-19956}
RING="single$$"
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --chunks) CHUNKS=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--seconds S] [--chunks '4096 128'] [--only uringestd|nginx]" >&2
       exit 2 ;;
  esac
done
scratch_dir single
log() { printf '== %s\n' "$*" >&2; }

make_clip() {
  log "encoding a 20 s 1280x720 30 fps 8 Mbit/s FLV"
  nice ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -t 20 \
    -c:v libx264 -preset ultrafast -tune zerolatency -g 60 -b:v 8M -minrate 8M -maxrate 8M \
    -bufsize 8M -x264-params nal-hrd=cbr -pix_fmt yuv420p -f flv "$TMP/clip720.flv"
}

# consumer SERVER CHUNK N: starts the one consumer on LOAD_CPU; sets CONSUMER.
consumer() {
  if [[ $1 == uringestd ]]; then
    taskset -c "$LOAD_CPU" "$BIN/uringest-cat" --ring "$RING" --wait -o /dev/null live/load0 \
      2> "$TMP/consumer-$1-$2-$3.log" &
  else
    # nginx-rtmp holds a player of a stream not yet published until the stream starts.
    taskset -c "$LOAD_CPU" ffmpeg -nostdin -loglevel error -i "rtmp://127.0.0.1:$N_PORT/live/load0" \
      -c copy -f null - 2> "$TMP/consumer-$1-$2-$3.log" &
  fi
  CONSUMER=$!
  PIDS+=("$CONSUMER")
  sleep 1
}

# run SERVER PID PORT CHUNK N: one run; appends "server chunk n cpu_s bytes seconds
# consumer_bytes"
# to runs.txt. The consumer's bytes: what uringest-cat wrote, or what ffmpeg read.
run() {
  local server=$1 pid=$2 port=$3 chunk=$4 n=$5 out="$TMP/$1-$4-$5.json"
  consumer "$server" "$chunk" "$n"
  local before after got
  before=$(cpu_seconds "$pid")
  timeout $(( SECONDS_PER_RUN + 60 )) taskset -c "$LOAD_CPU" "$BIN/uringest-load" \
    --target "127.0.0.1:$port" --flv "$TMP/clip720.flv" --no-pace --no-stamp --chunk-size "$chunk" \
    --duration "$SECONDS_PER_RUN" --json > "$out" 2> "$out.log" || true
  after=$(cpu_seconds "$pid")
  if [[ $server == uringestd ]]; then
    # uringest-cat ends with the stream (or its first loss) and says how much it wrote.
    for _ in $(seq 50); do kill -0 "$CONSUMER" 2>/dev/null || break; sleep 0.1; done
    got=$(sed -n 's/.* \([0-9]*\) bytes.*/\1/p' "$TMP/consumer-$server-$chunk-$n.log")
  else
    # nginx keeps the player waiting for the stream's return: take what its socket got.
    sleep 0.5
    got=$(ss -Hti state established "( dport = :$port )" |
          sed -n 's/.*bytes_received:\([0-9]*\).*/\1/p' | head -1)
  fi
  kill -9 "$CONSUMER" 2>/dev/null || true  # ffmpeg may not heed one SIGTERM while blocked
  wait "$CONSUMER" 2>/dev/null || true
  local sent
  sent=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['bytes'], r['seconds'])" \
    "$out" 2>/dev/null || echo 0 1)
  echo "$server $chunk $n $(awk -v a="$after" -v b="$before" 'BEGIN { print a - b }') $sent ${got:-0}" \
    >> "$TMP/runs.txt"
  log "  $server chunk $chunk run $n: $(tail -1 "$TMP/runs.txt")"
}

measure_uringestd() {
  local chunk=$1
  start_uringestd_pinned "$BIN/uringestd" "$SERVER_CPU" "$U_PORT" "$RING" || return 1
  local pid=$URINGESTD_PID
  for n in $(seq "$RUNS"); do run uringestd "$pid" "$U_PORT" "$chunk" "$n"; done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

measure_nginx() {
  local chunk=$1
  start_nginx_rtmp "$TMP/nginx" "$N_PORT" "$SERVER_CPU" || return 1
  PIDS+=("$NGINX_MASTER")
  for n in $(seq "$RUNS"); do run nginx "$NGINX_WORKER" "$N_PORT" "$chunk" "$n"; done
  kill "$NGINX_MASTER"; wait "$NGINX_MASTER" 2>/dev/null || true
}

make_clip
: > "$TMP/runs.txt"
for chunk in $CHUNKS; do
  [[ -z $ONLY || $ONLY == uringestd ]] && measure_uringestd "$chunk"
  [[ -z $ONLY || $ONLY == nginx ]] && measure_nginx "$chunk"
done

python3 - "$TMP/runs.txt" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    server, chunk, n, cpu, sent, secs, got = line.split()
    runs.setdefault((server, int(chunk)), []).append(
        (int(n), float(cpu), int(sent), int(got), float(secs)))
def cost(r): return r[1] / (r[2] / 1e9) if r[2] else float("nan")
def median(server, chunk):
    rs = runs.get((server, chunk), [])
    return statistics.median(cost(r) for r in rs) if rs else None
print("| chunk size | uringestd CPU-s per GB (median) | nginx-rtmp | uringestd / nginx | "
      "uringestd runs | nginx runs |")
print("|---|---|---|---|---|---|")
for chunk in sorted({c for _, c in runs}, reverse=True):
    u, n = median("uringestd", chunk), median("nginx", chunk)
    fmt = lambda s: " / ".join("%.3f" % cost(r) for r in runs.get((s, chunk), []))
    print("| %d | %s | %s | %s | %s | %s |" % (
        chunk, "%.3f" % u if u else "-", "%.3f" % n if n else "-",
        "%.2fx" % (u / n) if u and n else "-", fmt("uringestd"), fmt("nginx")))
print()
for (server, chunk), rs in sorted(runs.items()):
    for n, cpu, sent, got, secs in rs:
        print("- %s, chunk %d, run %d: %.2f CPU-s for %.2f GB published (%.0f MB/s); "
              "the consumer took %.2f GB (%.0f%%)" % (
              server, chunk, n, cpu, sent / 1e9, sent / 1e6 / max(secs, 1e-9), got / 1e9,
              100 * got / sent if sent else 0))
EOF
