#!/usr/bin/env bash
# perf/compare.sh: uringestd against nginx-rtmp (Debian's libnginx-mod-rtmp), side by side,
# on this machine, in one run, and writes perf/RESULTS.md.
#
#   perf/compare.sh            # full run (about 20-30 minutes)
#   perf/compare.sh --quick    # short steps (a few minutes)
#   perf/compare.sh --step 30 --cpu 1 --build /path/to/build --out /tmp/RESULTS.md
#   KEEP_TMP=1 perf/compare.sh # keep the scratch folder (every JSON report) for a look
#
# Workloads (uringest-load drives both servers the same way):
#   1. one publisher, a real 40 Mbit/s FLV pushed without pacing: MB/s, server CPU-s per GB
#   2. the most concurrent publishers each server holds for a step on one core, at
#      2.5 Mbit/s and at 600 kbit/s: uringestd with zero loss and p99 latency under 50 ms
#   3. RSS per streaming session with 1000 publishers of 600 kbit/s connected
#   4. raw loopback TCP into a discarding sink (iperf3), and uringestd's workload-1
#      throughput as a fraction of it
#   5. fixed loads, the same into both servers: 2500 x 600 kbit/s and 1000 x 2.5 Mbit/s,
#      server CPU-s per GB (uringestd's frames all verified in the ring)
#   6. RSS per idle publish session, 1000 sessions (perf/idle_sessions.sh)
#   7. one 720p stream with one consumer (uringest-cat; nginx: an ffmpeg subscriber) at
#      chunk sizes 4096 and 128, several runs in a row: CPU-s per GB, run to run
#      (perf/single_stream.sh)
#   8. memory comes back: RSS after each of 20 waves of 1000 short sessions
#      (perf/waves.sh)
#   plus connection placement: uringestd --shards 2 --placement load vs reuseport under
#   mixed bitrates, and the CPU cost of RTMPS against plain RTMP (ffmpeg -c copy of the
#   workload-1 clip, as uringest-load speaks no TLS).
# uringest-load reports its own CPU: a figure taken while it used 90% of its core or more
# is marked LOAD-BOUND (the load generator, not the server, may have been the limit).
# Each server is pinned to one core (--cpu, default 0) and uringest-load to another. On a
# shared machine compare the ratios of one run, never absolute figures across runs.
# Everything listens on 127.0.0.1 and every step is bounded in time. Needs root to install
# what is missing (nginx, libnginx-mod-rtmp, iperf3, ffmpeg, python3).

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh"
BUILD="$ROOT/build"
OUT="$ROOT/perf/RESULTS.md"
QUICK=0
STEP=30
SERVER_CPU=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1; STEP=8; shift ;;
    --step) STEP="$2"; shift 2 ;;
    --cpu) SERVER_CPU="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
W1_SECONDS=$(( QUICK ? 5 : 15 ))
W1_RUNS=$(( QUICK ? 2 : 3 ))
W3_PUBLISHERS=1000
W5_SECONDS=$(( QUICK ? 10 : 30 ))
PLACEMENT_SECONDS=$(( QUICK ? 8 : 20 ))
NCPU=$(nproc)
LOAD_CPU=$(( NCPU > 1 ? (SERVER_CPU + 1) % NCPU : SERVER_CPU ))
BIN="$BUILD/bin"
TMP=$(mktemp -d /tmp/uringest-compare.XXXXXX)
RING="cmp$$"
U_PORT=19935
N_PORT=19936
I_PORT=19937
T_PORT=19938
PIDS=()

log() { printf '== %s\n' "$*" >&2; }

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  if [[ -n ${KEEP_TMP:-} ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

install_missing() {
  local missing=()
  for pkg in nginx libnginx-mod-rtmp iperf3 ffmpeg python3; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  if [[ $EUID -ne 0 ]]; then
    echo "compare.sh: needs ${missing[*]}; run as root or apt-get install them" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  # Debian starts nginx on install; keep it from taking port 80 for good.
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
  systemctl disable --now nginx >/dev/null 2>&1 || true
}

build_if_needed() {
  if [[ -x "$BIN/uringestd" && -x "$BIN/uringest-load" && -x "$BIN/uringest-stat" ]]; then return; fi
  log "building (RelWithDebInfo) in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
  cmake --build "$BUILD" -j"$(( NCPU < 2 ? 1 : 2 ))" --target uringestd uringest-load uringest-stat >&2
}

# ---- Servers ----
# start_uringestd SHARDS PLACEMENT [PIN [FLAGS...]]: sets U_PID.
start_uringestd() {
  local shards=$1 placement=$2 pin=${3:-1}
  local cmd=("$BIN/uringestd" --listen "127.0.0.1:$U_PORT" --ring "$RING" --shards "$shards"
             --placement "$placement" --log-level warn --max-connections 0 --max-streams 16384
             --idle-timeout 60
             "${@:4}")
  [[ $pin == 1 ]] && cmd=(taskset -c "$SERVER_CPU" "${cmd[@]}")
  "${cmd[@]}" > "$TMP/uringestd.out" 2> "$TMP/uringestd.log" &
  U_PID=$!
  PIDS+=("$U_PID")
  for _ in $(seq 100); do
    grep -q "listening on" "$TMP/uringestd.out" 2>/dev/null && return
    sleep 0.1
  done
  echo "compare.sh: uringestd did not start: $(cat "$TMP/uringestd.log")" >&2
  exit 1
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

# nginx with the rtmp module (perf/lib.sh). Sets N_MASTER and N_PID (the worker).
start_nginx() {
  if ! start_nginx_rtmp "$TMP/nginx" "$N_PORT" "$SERVER_CPU"; then
    echo "compare.sh: nginx did not start" >&2
    exit 1
  fi
  N_MASTER=$NGINX_MASTER
  N_PID=$NGINX_WORKER
  PIDS+=("$N_MASTER")
}

# load SERVER(u|n) OUTFILE ARGS...: runs uringest-load pinned to LOAD_CPU with --json.
load() {
  local server=$1 out=$2; shift 2
  local args=(--json)
  if [[ $server == u ]]; then
    args+=(--target "127.0.0.1:$U_PORT" --server-pid "$U_PID" --ring "$RING" --verify)
  else
    args+=(--target "127.0.0.1:$N_PORT" --server-pid "$N_PID")
  fi
  timeout 900 taskset -c "$LOAD_CPU" "$BIN/uringest-load" "${args[@]}" "$@" \
    > "$out" 2> "$out.log" || true
}

# j FILE EXPR: a value from a uringest-load JSON report (python expression over `r`).
j() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }

# ---- Workloads ----
make_flv() {
  log "encoding a 20 s 1920x1080 40 Mbit/s FLV"
  nice ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=1920x1080:rate=30 -t 20 \
    -c:v libx264 -preset ultrafast -tune zerolatency -g 60 -b:v 40M -minrate 40M -maxrate 40M \
    -bufsize 40M -x264-params nal-hrd=cbr -pix_fmt yuv420p -f flv "$TMP/clip40.flv"
}

workload1() {  # $1: u|n, $2: repetition
  log "workload 1 ($1, run $2): one publisher, 40 Mbit/s FLV, unpaced, ${W1_SECONDS} s"
  load "$1" "$TMP/w1-$1-$2.json" --flv "$TMP/clip40.flv" --no-pace --duration "$W1_SECONDS"
}

# held SERVER BITRATE N: 0 if N publishers of BITRATE are held for STEP s: all live, none
# failed, and (uringestd) zero loss and p99 < 50 ms verified in the ring; (nginx, whose
# output we can't see) every frame sent, with less than 0.25 s of stream left queued at
# the end.
held() {
  local server=$1 bitrate=$2 n=$3 f="$TMP/w2-$1-$2-$3.json"
  load "$server" "$f" --publishers "$n" --bitrate "$bitrate" --duration "$STEP" \
    --ramp "$(( n / 250 + 1 ))"
  [[ -s $f ]] || return 1
  local ok bps
  bps=$(python3 -c "import sys; v=sys.argv[1]; m={'k':1e3,'M':1e6}; \
print(float(v[:-1]) * m[v[-1]] if v[-1] in m else float(v))" "$bitrate")
  if [[ $server == u ]]; then
    ok=$(j "$f" "int(r['ok'] and r['latency']['p99_ms'] < 50)")
  else
    ok=$(j "$f" "int(r['ok'] and r['max_backlog'] < $bps/8/4)")
  fi
  log "  $server: $n x $bitrate -> $( [[ $ok == 1 ]] && echo held || echo NOT held) ($(j "$f" \
    "'%d live, %d failed, lost %d, p99 %.1f ms, backlog %d B, load %.0f%% of a core%s' % (r['went_live'], r['failed'], r['lost'], r['latency']['p99_ms'], r['max_backlog'], 100 * r['load_cpu_seconds'] / max(r['seconds'], 1e-9), ', LOAD-BOUND' if r['load_bound'] else '')"))"
  [[ $ok == 1 ]]
}

# workload2 SERVER BITRATE START: doubling from START, then bisecting to within 10%: sets
# MAX_HELD, and MAX_HELD_FILE (the report of that step).
workload2() {
  local server=$1 bitrate=$2 lo=0 hi=0 n=$3 limit=$(( QUICK ? 4000 : 8000 ))
  log "workload 2 ($server): most $bitrate publishers held ${STEP} s on one core"
  while (( n <= limit )); do
    if held "$server" "$bitrate" "$n"; then lo=$n; n=$(( n * 2 )); else hi=$n; break; fi
  done
  if (( hi > 0 )); then
    while (( hi - lo > lo / 10 && hi - lo > 25 )); do
      local mid=$(( (lo + hi) / 2 ))
      if held "$server" "$bitrate" "$mid"; then lo=$mid; else hi=$mid; fi
    done
  fi
  MAX_HELD=$lo
  echo "$server $bitrate $lo" >> "$TMP/w2-max.txt"
}

workload3() {
  log "workload 3 ($1): RSS with $W3_PUBLISHERS publishers of 600 kbit/s"
  load "$1" "$TMP/w3-$1.json" --publishers "$W3_PUBLISHERS" --bitrate 600k --ramp 5 \
    --duration "$(( QUICK ? 5 : 10 ))"
}

# workload5 SERVER PUBLISHERS BITRATE: a fixed load for W5_SECONDS after a 10 s ramp.
workload5() {
  log "workload 5 ($1): $2 x $3 for ${W5_SECONDS} s"
  load "$1" "$TMP/w5-$1-$2x$3.json" --publishers "$2" --bitrate "$3" --ramp 10 \
    --duration "$W5_SECONDS"
}

workload6() {
  log "workload 6: RSS per idle publish session (perf/idle_sessions.sh)"
  BUILD="$BUILD" "$ROOT/perf/idle_sessions.sh" --publishers 1000 > "$TMP/idle.txt" 2>&1 || true
}

workload7() {
  log "workload 7: one stream with one consumer (perf/single_stream.sh)"
  BUILD="$BUILD" "$ROOT/perf/single_stream.sh" --runs "$(( QUICK ? 2 : 4 ))" \
    --seconds "$(( QUICK ? 4 : 10 ))" > "$TMP/single.md" 2> "$TMP/single.log" || true
}

workload8() {
  log "workload 8: memory after waves of short sessions (perf/waves.sh)"
  BUILD="$BUILD" "$ROOT/perf/waves.sh" --waves "$(( QUICK ? 5 : 20 ))" \
    > "$TMP/waves.txt" 2>&1 || true
}

workload4() {
  log "workload 4: raw loopback TCP (iperf3), ${W1_SECONDS} s"
  taskset -c "$SERVER_CPU" iperf3 -s -1 -p "$I_PORT" -B 127.0.0.1 > /dev/null 2>&1 &
  local srv=$!
  PIDS+=("$srv")
  sleep 0.5
  timeout 120 taskset -c "$LOAD_CPU" iperf3 -c 127.0.0.1 -p "$I_PORT" -t "$W1_SECONDS" -l 512K -J \
    > "$TMP/w4.json" 2>/dev/null || true
  stop_pid "$srv"
  IPERF_MBPS=$(python3 -c "import json; r=json.load(open('$TMP/w4.json')); \
print('%.1f' % (r['end']['sum_received']['bits_per_second'] / 8e6))" 2>/dev/null || echo 0)
}

# Placement: 4 publishers at 20 Mbit/s and 40 at 0.5 Mbit/s, on 2 shards, unpinned.
placement() {
  local mode=$1
  log "placement: --shards 2 --placement $mode"
  start_uringestd 2 "$mode" 0
  "$BIN/uringest-load" --target "127.0.0.1:$U_PORT" --app small --publishers 40 --bitrate 500k \
    --ramp 3 --duration "$PLACEMENT_SECONDS" --ring "$RING" --verify --server-pid "$U_PID" \
    --json > "$TMP/pl-$mode-small.json" 2>/dev/null &
  local small=$!
  "$BIN/uringest-load" --target "127.0.0.1:$U_PORT" --app big --publishers 4 --bitrate 20M \
    --ramp 3 --duration "$PLACEMENT_SECONDS" --ring "$RING" --verify --json \
    > "$TMP/pl-$mode-big.json" 2>/dev/null &
  local big=$!
  sleep $(( PLACEMENT_SECONDS / 2 + 3 ))
  "$BIN/uringest-stat" --ring "$RING" --json --interval 2 > "$TMP/pl-$mode-stat.json" || true
  wait "$small" "$big" || true
  stop_pid "$U_PID"
  python3 - "$TMP/pl-$mode" "$mode" >> "$TMP/placement.md" <<'EOF'
import json, sys
base, mode = sys.argv[1], sys.argv[2]
stat = json.load(open(base + "-stat.json"))
small, big = json.load(open(base + "-small.json")), json.load(open(base + "-big.json"))
kbps, count = {}, {}
for s in stat["streams"]:
    kbps[s["shard"]] = kbps.get(s["shard"], 0) + s["bitrate_kbps"]
    count[s["shard"]] = count.get(s["shard"], 0) + 1
shards = sorted(set(kbps) | {0, 1})
per = " / ".join("%.1f Mbit/s (%d streams)" % (kbps.get(k, 0) / 1e3, count.get(k, 0)) for k in shards)
hi, lo = max(kbps.get(k, 0) for k in shards), min(kbps.get(k, 0) for k in shards)
mbit = (small["bytes"] + big["bytes"]) * 8 / max(small["seconds"], big["seconds"], 1e-9) / 1e6
cpu = small["server"]["cpu_seconds"]
lost = small["lost"] + big["lost"]
print("| %s | %s | %.2f | %.1f | %.2f | %d |" % (mode, per, hi / lo if lo else float("inf"),
      mbit, cpu, lost))
EOF
}

# RTMPS against RTMP: the workload-1 clip pushed unpaced by ffmpeg -c copy (uringest-load
# speaks no TLS) to one pinned uringestd with a self-signed certificate, alternating
# rtmp:// and rtmps://; the server's CPU seconds (utime + stime of /proc/PID/stat) per GB
# of clip (cpu_seconds, perf/lib.sh). Writes $TMP/rtmps.md.

rtmps_cost() {
  log "RTMPS vs RTMP: ffmpeg -c copy of the 40 Mbit/s clip, ${W1_RUNS} runs each"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
  start_uringestd 1 load 1 --tls-listen "127.0.0.1:$T_PORT" --tls-cert "$TMP/cert.pem" \
    --tls-key "$TMP/key.pem"
  local gb port before after
  gb=$(stat -c %s "$TMP/clip40.flv" | awk '{ print $1 / 1e9 }')
  for r in $(seq "$W1_RUNS"); do
    for scheme in rtmp rtmps; do
      port=$([[ $scheme == rtmp ]] && echo "$U_PORT" || echo "$T_PORT")
      before=$(cpu_seconds "$U_PID")
      timeout 120 taskset -c "$LOAD_CPU" ffmpeg -nostdin -loglevel error -i "$TMP/clip40.flv" \
        -c copy -f flv "$scheme://127.0.0.1:$port/live/c$r" || log "  ffmpeg to $scheme failed"
      after=$(cpu_seconds "$U_PID")
      awk -v s="$scheme" -v a="$after" -v b="$before" -v g="$gb" \
        'BEGIN { print s, (a - b) / g }' >> "$TMP/rtmps-runs.txt"
    done
  done
  stop_pid "$U_PID"
  python3 - "$TMP/rtmps-runs.txt" > "$TMP/rtmps.md" <<'EOF'
import statistics, sys
runs = {"rtmp": [], "rtmps": []}
for line in open(sys.argv[1]):
    scheme, cost = line.split()
    runs[scheme].append(float(cost))
plain, tls = statistics.median(runs["rtmp"]), statistics.median(runs["rtmps"])
print("| uringestd CPU-s per GB (median) | RTMP | RTMPS | RTMPS / RTMP |")
print("|---|---|---|---|")
print("| ffmpeg -c copy, 40 Mbit/s clip, unpaced | %.3f | %.3f | %s |" % (
      plain, tls, "%.2fx" % (tls / plain) if plain else "-"))
print()
print("- Runs: RTMP %s; RTMPS %s CPU-s/GB. TLS is OpenSSL on the shard thread over memory "
      "BIOs (no kTLS)." % (" / ".join("%.3f" % c for c in runs["rtmp"]),
                           " / ".join("%.3f" % c for c in runs["rtmps"])))
EOF
}

# ---- Run ----
install_missing
build_if_needed
ulimit -n 65536 2>/dev/null || true
make_flv

# Workload 1 alternates between the two servers (both up, the idle one costs nothing), so
# that the machine's other load falls on both alike; the table takes each one's median.
start_uringestd 1 load
start_nginx
for r in $(seq "$W1_RUNS"); do workload1 u "$r"; workload1 n "$r"; done
# Memory before the heavier loads: a server keeps what its peak took.
workload3 u
workload3 n
# Workload 5 the same way: each shape into one server, then the other.
for shape in "2500 600k" "1000 2.5M"; do
  # shellcheck disable=SC2086
  workload5 u $shape; workload5 n $shape
done
workload2 u 2.5M 125
workload2 u 600k 1000
stop_pid "$U_PID"

workload2 n 2.5M 125
workload2 n 600k 1000
stop_pid "$N_MASTER"

rtmps_cost
workload4
placement load
placement reuseport
workload6
workload7
workload8

# ---- Table ----
python3 - "$TMP" "$IPERF_MBPS" "$STEP" "$QUICK" "$SERVER_CPU" "$LOAD_CPU" "$W5_SECONDS" \
  > "$TMP/table.md" <<'EOF'
import json, re, sys
tmp, iperf, step, quick, scpu, lcpu, w5_seconds = sys.argv[1:]
iperf = float(iperf)
most = {}
for line in open(f"{tmp}/w2-max.txt"):
    server, bitrate, n = line.split()
    most[(server, bitrate)] = int(n)
def load(name):
    try:
        return json.load(open(f"{tmp}/{name}.json"))
    except Exception:
        return None
def mbs(r): return r["bytes"] / r["seconds"] / 1e6 if r and r["seconds"] else 0
def cpu_gb(r): return r["server"]["cpu_seconds"] / (r["bytes"] / 1e9) if r and r["bytes"] else 0
def rss_conn(r):
    return (r["server"]["rss_peak"] - r["server"]["rss_start"]) / r["publishers"] / 1024 if r else 0
def ratio(a, b): return "%.2fx" % (a / b) if b else "-"
def median_run(server):
    runs = [r for r in (load(f"w1-{server}-{i}") for i in range(1, 10)) if r and r["bytes"]]
    runs.sort(key=cpu_gb)
    return runs[len(runs) // 2] if runs else None, runs
(u1, u1_runs), (n1, n1_runs) = median_run("u"), median_run("n")
u3, n3 = load("w3-u"), load("w3-n")
def bound(*reports):
    return " (LOAD-BOUND)" if any(r and r.get("load_bound") for r in reports) else ""
def held_report(server, bitrate):
    n = most.get((server, bitrate), 0)
    return load(f"w2-{server}-{bitrate}-{n}") if n else None
idle = {}
try:
    for line in open(f"{tmp}/idle.txt"):
        m = re.match(r"(\S+)\s+\d+ idle sessions.* ([0-9.]+) bytes \(", line)
        if m: idle[m.group(1)] = float(m.group(2)) / 1024
except OSError:
    pass
w5 = {shape: (load(f"w5-u-{shape}"), load(f"w5-n-{shape}")) for shape in ("2500x600k", "1000x2.5M")}
rows = [
  ("1. one publisher, 40 Mbit/s FLV unpaced: MB/s", mbs(u1), mbs(n1), "%.0f", bound(u1, n1)),
  ("1. server CPU-s per GB ingested", cpu_gb(u1), cpu_gb(n1), "%.3f", ""),
]
for shape, label in (("2500x600k", "2500 x 600 kbit/s"), ("1000x2.5M", "1000 x 2.5 Mbit/s")):
    u, n = w5[shape]
    rows.append((f"5. {label}, {w5_seconds} s: server CPU-s per GB", cpu_gb(u), cpu_gb(n), "%.3f",
                 bound(u, n)))
for bitrate, label in (("2.5M", "2.5 Mbit/s"), ("600k", "600 kbit/s")):
    rows.append((f"2. most {label} publishers held {step} s, one core",
                 most.get(("u", bitrate), 0), most.get(("n", bitrate), 0), "%d",
                 bound(held_report("u", bitrate), held_report("n", bitrate))))
rows += [
  ("3. RSS per streaming session, 1000 x 600 kbit/s (KiB)", rss_conn(u3), rss_conn(n3), "%.1f", ""),
  ("6. RSS per idle publish session, 1000 sessions (KiB)", idle.get("uringestd", 0),
   idle.get("nginx", 0), "%.2f", ""),
]
print("| workload | uringestd | nginx-rtmp | uringestd / nginx |")
print("|---|---|---|---|")
for name, u, n, fmt, mark in rows:
    print(f"| {name}{mark} | {fmt % u} | {fmt % n} | {ratio(u, n)} |")
print(f"| 4. raw loopback TCP, iperf3 (MB/s) | {iperf:.0f} | | |")
print(f"| 4. uringestd workload 1 / raw loopback TCP | {ratio(mbs(u1), iperf)} | "
      f"{ratio(mbs(n1), iperf)} (nginx) | |")
print()
notes = []
if u1_runs and n1_runs:
    notes.append("Workload 1, %d alternating runs each (the table shows the run with the median "
                 "CPU-s per GB): uringestd %s CPU-s/GB at %s MB/s; nginx %s CPU-s/GB at %s MB/s." % (
                 len(u1_runs), " / ".join("%.3f" % cpu_gb(r) for r in u1_runs),
                 " / ".join("%.0f" % mbs(r) for r in u1_runs),
                 " / ".join("%.3f" % cpu_gb(r) for r in n1_runs),
                 " / ".join("%.0f" % mbs(r) for r in n1_runs)))
if u1: notes.append("uringestd workload 1 verified in the ring: delivered %d/%d frames, lost %d, "
                    "p99 send-to-ring latency %.1f ms." % (u1["delivered"], u1["sent"], u1["lost"],
                    u1["latency"]["p99_ms"]))
if u3 and n3: notes.append("Workload 3: %d/%d (uringestd) and %d/%d (nginx) publishers live at once; "
                           "RSS before -> peak: uringestd %.1f -> %.1f MB, nginx worker %.1f -> %.1f MB."
                           % (u3["max_live"], u3["publishers"], n3["max_live"], n3["publishers"],
                              u3["server"]["rss_start"] / 1e6, u3["server"]["rss_peak"] / 1e6,
                              n3["server"]["rss_start"] / 1e6, n3["server"]["rss_peak"] / 1e6))
for shape, (u, n) in w5.items():
    if u and n:
        notes.append("Workload 5, %s: uringestd %d/%d live, lost %d of %d frames, p99 %.1f ms, "
                     "%.2f CPU-s for %.2f GB; nginx %d/%d live, %.2f CPU-s for %.2f GB, "
                     "sender backlog at most %d B. uringest-load used %.0f%% / %.0f%% of its core."
                     % (shape, u["max_live"], u["publishers"], u["lost"], u["sent"],
                        u["latency"]["p99_ms"], u["server"]["cpu_seconds"], u["bytes"] / 1e9,
                        n["max_live"], n["publishers"], n["server"]["cpu_seconds"], n["bytes"] / 1e9,
                        n["max_backlog"], 100 * u["load_cpu_seconds"] / max(u["seconds"], 1e-9),
                        100 * n["load_cpu_seconds"] / max(n["seconds"], 1e-9)))
for (server, bitrate), n in sorted(most.items()):
    r = held_report(server, bitrate)
    if r:
        judged = ("p99 %.1f ms, lost %d" % (r["latency"]["p99_ms"], r["lost"]) if server == "u"
                  else "sender backlog at most %d B" % r["max_backlog"])
        notes.append("Workload 2, %s at %s: held %d (%s; uringest-load at %.0f%% of its core)."
                     % ("uringestd" if server == "u" else "nginx", bitrate, n, judged,
                        100 * r["load_cpu_seconds"] / max(r["seconds"], 1e-9)))
for n in notes: print("- " + n)
EOF

DATE=$(date -u +%Y-%m-%d)
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
  echo "# uringestd vs nginx-rtmp"
  echo
  echo "Written by \`perf/compare.sh$( ((QUICK)) && echo ' --quick')\` on $DATE."
  echo "Machine: $NCPU CPUs ($CPU_MODEL), kernel $(uname -r), $(nginx -v 2>&1 | sed 's/.*: //'),"
  echo "libnginx-mod-rtmp $(dpkg-query -W -f='${Version}' libnginx-mod-rtmp 2>/dev/null)."
  echo "Each server pinned to CPU $SERVER_CPU (one shard, one nginx worker, both announcing"
  echo "chunk size 65536); uringest-load pinned to CPU $LOAD_CPU. Step length for workload 2:"
  echo "$STEP s. Compare the ratios; absolute figures move with the machine's other load."
  echo
  cat "$TMP/table.md"
  echo
  echo "How loss is judged: for uringestd, uringest-load --verify reads the server's ring and"
  echo "accounts for every frame (sequence numbers stamped in the payload). nginx-rtmp's output"
  echo "can't be seen through our ring, so for nginx \"held\" means every publisher went live,"
  echo "stayed connected and had sent every frame by the end but for less than 0.25 s of stream"
  echo "(uringest-load's max_backlog); its latency is not measured."
  echo
  echo "A row marked LOAD-BOUND was measured while uringest-load used 90% of its core or more:"
  echo "there the load generator, not the server, may have set the figure."
  echo
  echo "## Idle publish sessions (perf/idle_sessions.sh, 1000 sessions, after 50 come and go)"
  echo
  echo '```'
  cat "$TMP/idle.txt"
  echo '```'
  echo
  echo "## One stream with one consumer (perf/single_stream.sh)"
  echo
  echo "One publisher (uringest-load --flv, unpaced, no stamps) of a 1280x720 clip at the"
  echo "chunk size shown; one consumer on the publisher's core (uringest-cat; for nginx an"
  echo "ffmpeg -c copy subscriber). Runs in a row on one server started for the chunk size."
  echo
  cat "$TMP/single.md"
  echo
  echo "## Memory comes back (perf/waves.sh: waves of 1000 publishers, 2 s each)"
  echo
  echo '```'
  grep ' waves of ' "$TMP/waves.txt" || true
  echo '```'
  echo
  echo "## Connection placement (uringestd --shards 2, 4 x 20 Mbit/s + 40 x 0.5 Mbit/s)"
  echo
  echo "| placement | ingress per shard (uringest-stat) | max/min shard | total Mbit/s | server CPU-s | lost |"
  echo "|---|---|---|---|---|---|"
  cat "$TMP/placement.md"
  echo
  echo "## RTMPS (TLS) against plain RTMP, uringestd pinned to CPU $SERVER_CPU"
  echo
  cat "$TMP/rtmps.md"
} > "$TMP/RESULTS.md"
cp "$TMP/RESULTS.md" "$OUT"
cat "$OUT"
