#!/usr/bin/env bash
# perf/push.sh: relaying to upstream RTMP servers, uringest-push against nginx-rtmp's
# `push` directive, the same load side by side in one run: CPU seconds per GB relayed.
#
#   perf/push.sh                         # 20 s per measurement (about 3 minutes in all)
#   perf/push.sh --quick                 # 5 s per measurement
#   perf/push.sh --duration 30 --cpu 1 --build /path/to/build --out perf/RESULTS.md
#   perf/push.sh --only nginx            # one setup only (uringest|nginx)
#   KEEP_TMP=1 perf/push.sh              # keep the scratch folder (reports, logs, configs)
#
# Workloads (uringest-load, paced synthetic streams, stamped):
#   W1  1 publisher at 40 Mbit/s
#   W2  200 publishers at 2.5 Mbit/s (connects spread over 1 s)
# Setups, one after the other for each workload (fresh processes each time):
#   uringest  uringestd (--shards 1, its own ring) and uringest-push (--rule
#             'live/*=rtmp://127.0.0.1:SINK/live/{name}' --status-file ...), all their
#             threads pinned to the server core (--cpu, default 0)
#   nginx     nginx-rtmp, one worker, every process pinned to the server core, with
#             `push rtmp://127.0.0.1:SINK/live;` in its application
# The sink, the same for both: a plain nginx-rtmp (application live { live on; }) on the
# other core with uringest-load, not measured. What it received is checked against what
# the load sent (its rtmp_stat bytes_in), with the most connections it held at once.
# CPU is utime + stime of all threads (/proc/PID/stat) from just before the load starts
# until the sink has received everything (its byte count still for 1 s). The denominator
# is the bytes uringest-load sent (its --json report); the bytes the relay sent are shown
# too (uringest-push: the sum of its status file's "bytes"; nginx: its rtmp_stat
# bytes_out): nginx-rtmp's push starts at the first keyframe after its upstream
# connection is up, here the stream's second (the synthetic streams have one each 2 s),
# so it relays about 2 s less of each stream than was sent; CPU-s/GB relayed allows for
# that. A row whose uringest-load used 90% of its core or more is marked LOAD-BOUND; one
# during which other processes took more than 5% of the server core (/proc/stat) BUSY.
# Prints a Markdown table and notes (stdout); --out FILE also appends them to FILE.
# Everything listens on 127.0.0.1 and every wait is bounded. Needs build/bin/{uringestd,
# uringest-load,uringest-push}, python3, and Debian's nginx and libnginx-mod-rtmp; run as
# root (nginx's worker_rlimit_nofile). Ports: PUSH_PORT_BASE (default 19970) to +4.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh"
BUILD="$ROOT/build"
DURATION=20
SERVER_CPU=0
OUT=""
ONLY=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --quick) DURATION=5; shift ;;
    --cpu) SERVER_CPU="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "push.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$ONLY" in ""|uringest|nginx) ;; *) echo "push.sh: --only uringest|nginx" >&2; exit 2 ;; esac
BIN="$BUILD/bin"
NCPU=$(nproc)
LOAD_CPU=$(( NCPU > 1 ? (SERVER_CPU + 1) % NCPU : SERVER_CPU ))
BASE=${PUSH_PORT_BASE:-19970}
U_PORT=$BASE            # uringestd
N_PORT=$(( BASE + 1 ))  # nginx-rtmp, the relay measured
N_HTTP=$(( BASE + 2 ))  # its rtmp_stat
S_PORT=$(( BASE + 3 ))  # the sink
S_HTTP=$(( BASE + 4 ))  # its rtmp_stat
RING="push-bench-$$"
TMP=$(mktemp -d /tmp/uringest-push.XXXXXX)
PIDS=()

log() { printf '== %s\n' "$*" >&2; }

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f /dev/shm/"$RING".* 2>/dev/null || true
  if [[ -n ${KEEP_TMP:-} ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_pid PID [SIGNAL]: the signal (TERM), then up to 10 s, then KILL. STOP_RC: its exit
# status ("killed" if it needed the KILL). The PID leaves PIDS.
stop_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
  kill "-${2:-TERM}" "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  if kill -9 "$1" 2>/dev/null; then
    wait "$1" 2>/dev/null || true
    STOP_RC=killed
  else
    STOP_RC=0
    wait "$1" 2>/dev/null || STOP_RC=$?
  fi
}

# ---- Checks ----
need=("$BIN/uringest-load")
[[ $ONLY != nginx ]] && need+=("$BIN/uringestd" "$BIN/uringest-push")
for f in "${need[@]}"; do
  if [[ ! -x $f ]]; then
    echo "push.sh: $f is missing (cmake --build build --target $(basename "$f"); or --only nginx)" >&2
    exit 1
  fi
done
if [[ ! -f /usr/lib/nginx/modules/ngx_rtmp_module.so ]] || ! command -v nginx > /dev/null; then
  echo "push.sh: needs nginx and libnginx-mod-rtmp (apt-get install nginx libnginx-mod-rtmp)" >&2
  exit 1
fi
command -v python3 > /dev/null || { echo "push.sh: needs python3" >&2; exit 1; }
for p in "$U_PORT" "$N_PORT" "$N_HTTP" "$S_PORT" "$S_HTTP"; do
  if [[ -n $(ss -Htln "( sport = :$p )") ]]; then
    echo "push.sh: port $p is taken (PUSH_PORT_BASE=N moves the 5 ports used)" >&2
    exit 1
  fi
done
if (( NCPU < 2 )); then log "one CPU only: the load, the sink and the server share it"; fi
if pgrep -x cc1plus > /dev/null || pgrep -x cc1 > /dev/null; then
  log "a compiler is running on this machine: the figures will be noisy"
fi
NOFILE=$(ulimit -Hn)
[[ $NOFILE == unlimited || $NOFILE -gt 65536 ]] && NOFILE=65536
ulimit -n "$NOFILE" 2>/dev/null || true
# This script and what it runs unpinned (ss, python3, awk) stay off the server core.
taskset -pc "$LOAD_CPU" $$ > /dev/null

# ---- Helpers (python) ----
# sampler.py OUT SINK_PORT [STATUS_FILE]: until SIGTERM, every 0.25 s: the established
# connections to the sink (peak), and uringest-push's status file (each destination's
# last figures, the states seen, the worst lag, unreadable rewrites, the longest time
# between two rewrites). Writes OUT as JSON.
cat > "$TMP/sampler.py" <<'EOF'
import json, signal, sys, time
out, sink_port = sys.argv[1], int(sys.argv[2])
status = sys.argv[3] if len(sys.argv) > 3 else ""
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
res = {"peak_sink_connections": 0, "samples": 0, "status_reads": 0, "status_unreadable": 0,
       "status_missing": 0, "status_max_gap_ms": 0, "status_updates": 0, "update_times_ms": [],
       "destinations": {}}
last_update = None
def sink_connections():
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                for line in fh.readlines()[1:]:
                    p = line.split()
                    if p[3] == "01" and int(p[1].rsplit(":", 1)[1], 16) == sink_port:
                        n += 1
        except OSError:
            pass
    return n
def read_status():
    global last_update
    try:
        with open(status) as fh:
            text = fh.read()
    except OSError:
        res["status_missing"] += 1
        return
    res["status_reads"] += 1
    try:
        doc = json.loads(text)
        dests = doc["destinations"]
        upd = int(doc["updated_unix_ms"])
    except Exception:
        res["status_unreadable"] += 1
        res["last_unreadable"] = text[:300]
        return
    if upd != last_update:
        if last_update is not None:
            res["status_max_gap_ms"] = max(res["status_max_gap_ms"], upd - last_update)
        res["status_updates"] += 1
        res["update_times_ms"].append(upd)
        last_update = upd
    for d in dests:
        key = "%s -> %s" % (d.get("stream"), d.get("url"))
        e = res["destinations"].setdefault(key, {"states": [], "max_lag_ms": 0})
        for k in ("bytes", "frames", "reconnects", "dropped_frames", "lag_ms", "state"):
            if k in d:
                e[k] = d[k]
        if d.get("state") not in e["states"]:
            e["states"].append(d.get("state"))
        e["max_lag_ms"] = max(e["max_lag_ms"], d.get("lag_ms") or 0)
while True:
    res["peak_sink_connections"] = max(res["peak_sink_connections"], sink_connections())
    if status:
        read_status()
    res["samples"] += 1
    if stop:
        break
    time.sleep(0.25)
res["status_last_update_ms"] = last_update
json.dump(res, open(out, "w"))
EOF

# stat_field HTTP_PORT FIELD: a top-level figure of nginx-rtmp's rtmp_stat (bytes_in,
# bytes_out; the worker's totals since it started), or 0.
stat_field() {
  python3 - "$1" "$2" <<'EOF' 2>/dev/null || echo 0
import sys, urllib.request, xml.etree.ElementTree as ET
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no http_proxy
x = opener.open("http://127.0.0.1:%s/stat" % sys.argv[1], timeout=3).read()
print(int(ET.fromstring(x).findtext(sys.argv[2]) or 0))
EOF
}

# ---- Servers ----
# start_nginx NAME PORT HTTP_PORT CPU [APPLICATION LINES]: nginx-rtmp as perf/lib.sh's
# start_nginx_rtmp (one worker, chunk size 65536), with rtmp_stat on HTTP_PORT, more lines
# in its application, and max_message 16M (uringestd's --max-message-size: the synthetic
# 40 Mbit/s stream's keyframes, 1.2 MB, are over nginx-rtmp's default of 1M, which resets
# the connection); config and logs in $TMP/NAME. Sets NGINX_MASTER and NGINX_WORKER.
start_nginx() {
  local name=$1 port=$2 http=$3 cpu=$4 extra=${5:-} dir="$TMP/$1"
  mkdir -p "$dir/logs"
  cat > "$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 16384; }
rtmp {
  server {
    listen 127.0.0.1:$port;
    chunk_size 65536;
    max_message 16M;
    application live {
      live on;
      $extra
    }
  }
}
http {
  access_log off;
  server {
    listen 127.0.0.1:$http;
    location /stat { rtmp_stat all; }
  }
}
CONF
  taskset -c "$cpu" nginx -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" \
    2> "$dir/stderr.log" &
  NGINX_MASTER=$!
  PIDS+=("$NGINX_MASTER")
  NGINX_WORKER=""
  for _ in $(seq 100); do
    NGINX_WORKER=$(pgrep -P "$NGINX_MASTER" | head -1 || true)
    if [[ -n $NGINX_WORKER ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      taskset -apc "$cpu" "$NGINX_MASTER" > /dev/null
      taskset -apc "$cpu" "$NGINX_WORKER" > /dev/null
      return 0
    fi
    sleep 0.1
  done
  cat "$dir/stderr.log" "$dir/logs/error.log" >&2
  echo "push.sh: nginx ($name) did not start" >&2
  exit 1
}

# nginx_cpu MASTER: CPU seconds of the master and its children (the worker).
nginx_cpu() {
  local total p
  total=$(cpu_seconds "$1")
  for p in $(pgrep -P "$1"); do
    total=$(awk -v a="$total" -v b="$(cpu_seconds "$p" 2>/dev/null || echo 0)" 'BEGIN { print a + b }')
  done
  echo "$total"
}

# switches PID...: context switches (voluntary and not) of all the threads of these
# processes so far: their wake-ups, about.
switches() {
  local pid n=0 v
  for pid in "$@"; do
    v=$(cat /proc/"$pid"/task/*/status 2>/dev/null |
        awk '$1 ~ /ctxt_switches:$/ { n += $2 } END { print n + 0 }')
    n=$(( n + v ))
  done
  echo "$n"
}

# core_time CPU: seconds CPU has spent so far in processes (user, nice, system) and in
# interrupts (irq, softirq), from /proc/stat: "PROCESSES INTERRUPTS".
core_time() {
  awk -v c="cpu$1" -v hz="$(getconf CLK_TCK)" \
    '$1 == c { print ($2 + $3 + $4) / hz, ($7 + $8) / hz }' /proc/stat
}

# all_on CPU PID...: prints the threads of these processes not pinned to CPU alone.
all_on() {
  local cpu=$1 pid t; shift
  for pid in "$@"; do
    for t in /proc/"$pid"/task/*; do
      local allowed
      allowed=$(awk '$1 == "Cpus_allowed_list:" { print $2 }' "$t/status" 2>/dev/null || true)
      [[ -z $allowed || $allowed == "$cpu" ]] || \
        printf '%s/%s (%s) on %s; ' "$pid" "${t##*/}" "$(cat "$t/comm" 2>/dev/null)" "$allowed"
    done
  done
}

# wait_sink_still: until the sink's bytes_in has not moved for 1 s (at most 15 s).
wait_sink_still() {
  local prev=-1 cur
  for _ in $(seq 15); do
    cur=$(stat_field "$S_HTTP" bytes_in)
    [[ $cur == "$prev" ]] && return 0
    prev=$cur
    sleep 1
  done
  log "  the sink was still receiving 15 s after the load ended"
}

# ---- Measurements ----
# run_load W OUT: uringest-load for workload W (pinned to LOAD_CPU) into PORT.
run_load() {
  local w=$1 port=$2 out=$3
  local args=(--target "127.0.0.1:$port" --json --duration "$DURATION")
  if [[ $w == W1 ]]; then
    args+=(--publishers 1 --bitrate 40M)
  else
    args+=(--publishers 200 --bitrate 2.5M --ramp 1)
  fi
  timeout $(( DURATION + 60 )) taskset -c "$LOAD_CPU" "$BIN/uringest-load" "${args[@]}" \
    > "$out" 2> "$out.log" || log "  uringest-load: exit status $? ($(tail -1 "$out.log"))"
}

# The sampler, on LOAD_CPU: start_sampler OUT [STATUS_FILE]; stop_sampler.
start_sampler() {
  taskset -c "$LOAD_CPU" python3 "$TMP/sampler.py" "$1" "$S_PORT" "${@:2}" &
  SAMPLER=$!
  PIDS+=("$SAMPLER")
}
stop_sampler() { stop_pid "$SAMPLER"; }

# result KEY=VALUE...: one line of results.jsonl.
result() {
  python3 -c 'import json,sys; print(json.dumps(dict(a.split("=", 1) for a in sys.argv[1:])))' \
    "$@" >> "$TMP/results.jsonl"
}

# gone PID...: true if one of them has ended.
gone() {
  local pid
  for pid in "$@"; do kill -0 "$pid" 2>/dev/null || return 0; done
  return 1
}

# uringest_failed WHEN: (in measure_uringest) uringest-push or uringestd ended WHEN: say
# so, stop the rest, and record it in place of the figures.
uringest_failed() {
  local what=uringestd rc=0
  if gone "$push"; then what=uringest-push; wait "$push" 2>/dev/null || rc=$?; fi
  [[ $what == uringestd ]] && { wait "$ud" 2>/dev/null || rc=$?; }
  log "  $what ended $1 (status $rc): $(tail -2 "$base-push.log" | tr '\n' ' ')"
  [[ -n ${SAMPLER:-} ]] && stop_sampler
  stop_pid "$push"
  stop_pid "$ud"
  result w="$w" setup=uringest error="$what ended $1 (status $rc)"
}

measure_uringest() {
  local w=$1 base="$TMP/$1-uringest" rc=0
  log "$w, uringest: uringestd + uringest-push on CPU $SERVER_CPU, the load and the sink on CPU $LOAD_CPU"
  start_uringestd_pinned "$BIN/uringestd" "$SERVER_CPU" "$U_PORT" "$RING" --max-connections 0 \
    --idle-timeout 60
  local ud=$URINGESTD_PID
  mv "$TMP/uringestd.log" "$base-uringestd.log" 2>/dev/null || true
  local status="$base-status.json"
  taskset -c "$SERVER_CPU" "$BIN/uringest-push" --ring "$RING" \
    --rule "live/*=rtmp://127.0.0.1:$S_PORT/live/{name}" --status-file "$status" \
    > "$base-push.out" 2> "$base-push.log" &
  local push=$!
  PIDS+=("$push")
  for _ in $(seq 50); do [[ -s $status ]] && break; kill -0 "$push" 2>/dev/null || break; sleep 0.1; done
  SAMPLER=""
  if gone "$push" "$ud"; then uringest_failed "at start"; return 0; fi
  [[ -s $status ]] || log "  no status file 5 s after uringest-push started"
  taskset -apc "$SERVER_CPU" "$push" > /dev/null
  taskset -apc "$SERVER_CPU" "$ud" > /dev/null
  local sink0 push0 ud0 push1 ud1 sink1 t0 t1 unpinned
  start_sampler "$base-sampler.json" "$status"
  sink0=$(stat_field "$S_HTTP" bytes_in)
  t0=$(date +%s.%N)
  local core0 core1
  core0=$(core_time "$SERVER_CPU")
  if gone "$push" "$ud"; then uringest_failed "before the load"; return 0; fi
  push0=$(cpu_seconds "$push"); ud0=$(cpu_seconds "$ud")
  local sw_push0 sw_ud0 sw_push1 sw_ud1
  sw_push0=$(switches "$push"); sw_ud0=$(switches "$ud")
  run_load "$w" "$U_PORT" "$base-load.json"
  unpinned=$(all_on "$SERVER_CPU" "$ud" "$push")
  wait_sink_still
  if gone "$push" "$ud"; then uringest_failed "during the run"; return 0; fi
  push1=$(cpu_seconds "$push"); ud1=$(cpu_seconds "$ud")
  sw_push1=$(switches "$push"); sw_ud1=$(switches "$ud")
  core1=$(core_time "$SERVER_CPU")
  t1=$(date +%s.%N)
  sleep 1.2  # one more rewrite of the status file
  stop_sampler
  sink1=$(stat_field "$S_HTTP" bytes_in)
  # SIGTERM: a background job of a script starts with SIGINT ignored (bash), which a tool
  # that reads its signals from a signalfd would never see.
  stop_pid "$push" TERM
  rc=$STOP_RC
  stop_pid "$ud"
  [[ -n $unpinned ]] && log "  threads not on CPU $SERVER_CPU: $unpinned"
  result w="$w" setup=uringest push_cpu="$(awk -v a="$push1" -v b="$push0" 'BEGIN { print a - b }')" \
    ud_cpu="$(awk -v a="$ud1" -v b="$ud0" 'BEGIN { print a - b }')" \
    wall="$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')" \
    sink_bytes=$(( sink1 - sink0 )) load="$base-load.json" sampler="$base-sampler.json" \
    log="$base-push.log" push_rc="$rc" unpinned="$unpinned" \
    push_switches=$(( sw_push1 - sw_push0 )) ud_switches=$(( sw_ud1 - sw_ud0 )) \
    core0="$core0" core1="$core1"
  log "  $(tail -1 "$TMP/results.jsonl")"
}

measure_nginx() {
  local w=$1 base="$TMP/$1-nginx"
  log "$w, nginx: nginx-rtmp (push) on CPU $SERVER_CPU, the load and the sink on CPU $LOAD_CPU"
  start_nginx "relay-$w" "$N_PORT" "$N_HTTP" "$SERVER_CPU" "push rtmp://127.0.0.1:$S_PORT/live;"
  local master=$NGINX_MASTER
  local sink0 out0 out1 cpu0 cpu1 sink1 t0 t1 unpinned
  start_sampler "$base-sampler.json"
  sink0=$(stat_field "$S_HTTP" bytes_in)
  out0=$(stat_field "$N_HTTP" bytes_out)
  t0=$(date +%s.%N)
  cpu0=$(nginx_cpu "$master")
  local sw0 sw1 core0 core1
  core0=$(core_time "$SERVER_CPU")
  sw0=$(switches "$master" "$NGINX_WORKER")
  run_load "$w" "$N_PORT" "$base-load.json"
  unpinned=$(all_on "$SERVER_CPU" "$master" $(pgrep -P "$master"))
  wait_sink_still
  if gone "$master" "$NGINX_WORKER"; then
    log "  nginx ended during the run: $(tail -2 "$TMP/relay-$w/logs/error.log" | tr '\n' ' ')"
    stop_sampler
    stop_pid "$master"
    result w="$w" setup=nginx error="nginx ended during the run"
    return 0
  fi
  cpu1=$(nginx_cpu "$master")
  sw1=$(switches "$master" "$NGINX_WORKER")
  core1=$(core_time "$SERVER_CPU")
  t1=$(date +%s.%N)
  out1=$(stat_field "$N_HTTP" bytes_out)
  stop_sampler
  sink1=$(stat_field "$S_HTTP" bytes_in)
  stop_pid "$master"
  [[ -n $unpinned ]] && log "  processes not on CPU $SERVER_CPU: $unpinned"
  grep -v -e '^$' -e 'setrlimit' "$TMP/relay-$w/logs/error.log" 2>/dev/null | head -5 | sed 's/^/  nginx: /' >&2 || true
  result w="$w" setup=nginx nginx_cpu="$(awk -v a="$cpu1" -v b="$cpu0" 'BEGIN { print a - b }')" \
    wall="$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')" \
    sink_bytes=$(( sink1 - sink0 )) relay_bytes=$(( out1 - out0 )) load="$base-load.json" \
    sampler="$base-sampler.json" unpinned="$unpinned" switches=$(( sw1 - sw0 )) \
    core0="$core0" core1="$core1"
  log "  $(tail -1 "$TMP/results.jsonl")"
}

# ---- Run ----
log "sink: nginx-rtmp on 127.0.0.1:$S_PORT, CPU $LOAD_CPU; ${DURATION} s per measurement"
start_nginx sink "$S_PORT" "$S_HTTP" "$LOAD_CPU"
SINK_MASTER=$NGINX_MASTER
: > "$TMP/results.jsonl"
for w in W1 W2; do
  [[ $ONLY != nginx ]] && measure_uringest "$w"
  [[ $ONLY != uringest ]] && measure_nginx "$w"
done
stop_pid "$SINK_MASTER"

# ---- Table ----
python3 - "$TMP/results.jsonl" "$DURATION" "$SERVER_CPU" "$LOAD_CPU" > "$TMP/table.md" <<'EOF'
import collections, json, sys
results, duration, scpu, lcpu = sys.argv[1:]
rows = [json.loads(l) for l in open(results) if l.strip()]
by = {(r["w"], r["setup"]): r for r in rows}
def load(path):
    try:
        return json.load(open(path))
    except Exception:
        return None
label = {"W1": "W1: 1 x 40 Mbit/s", "W2": "W2: 200 x 2.5 Mbit/s"}
def per(cpu, b): return cpu / (b / 1e9) if b else None
def f3(x): return "%.3f" % x if x is not None else "-"
def ratio(a, b): return "%.2fx" % (a / b) if a is not None and b else "-"
def pct(a, b): return 100.0 * a / b if b else 0.0
def other(r, cpu):
    """What else ran on the server core: (% of wall in other processes, % in interrupts)."""
    try:
        p0, i0 = map(float, r["core0"].split())
        p1, i1 = map(float, r["core1"].split())
    except Exception:
        return 0.0, 0.0
    return max(0.0, pct(p1 - p0 - cpu, float(r["wall"]))), pct(i1 - i0, float(r["wall"]))
def load_line(r):
    if not r:
        return "no report from uringest-load"
    return ("load sent %.3f GB, %d frames, %d/%d publishers live%s, max backlog %d B, "
            "uringest-load at %.0f%% of its core" % (
            r["bytes"] / 1e9, r["sent"], r["went_live"], r["publishers"],
            ", %d FAILED" % r["failed"] if r["failed"] else "", r["max_backlog"],
            pct(r["load_cpu_seconds"], max(r["seconds"], 1.0))))
print("Relaying, %s s per measurement: server CPU %s; uringest-load and the sink CPU %s"
      % (duration, scpu, lcpu))
print()
print("| workload | setup | CPU-s | GB sent | GB relayed | CPU-s/GB | CPU-s/GB relayed "
      "| uringest-push / nginx | (uringestd + push) / nginx |")
print("|---|---|---|---|---|---|---|---|---|")
notes = []
for w in ("W1", "W2"):
    u, n = by.get((w, "uringest")), by.get((w, "nginx"))
    lu = load(u["load"]) if u and "load" in u else None
    ln = load(n["load"]) if n and "load" in n else None
    def mark(load_report, r, cpu):
        m = " LOAD-BOUND" if load_report and load_report.get("load_bound") else ""
        return m + (" BUSY" if other(r, cpu)[0] > 5 else "")
    nginx_gb = per(float(n["nginx_cpu"]), ln and ln["bytes"]) if n and "error" not in n else None
    if u and "error" in u:
        print("| %s | uringest-push | %s | | | | | | |" % (label[w], u["error"]))
    elif u:
        samp = load(u["sampler"]) or {}
        dests = samp.get("destinations", {})
        status_bytes = sum(d.get("bytes", 0) for d in dests.values())
        relayed = int(u["sink_bytes"])
        sent = lu["bytes"] if lu else 0
        push, ud = float(u["push_cpu"]), float(u["ud_cpu"])
        busy = mark(lu, u, push + ud)
        for name, cpu, rel in (("uringest-push", push, relayed), ("uringestd", ud, None),
                               ("uringestd + uringest-push", push + ud, relayed)):
            print("| %s | %s%s | %.2f | %.3f | %s | %s | %s | %s | %s |" % (
                label[w], name, busy, cpu, sent / 1e9,
                "%.3f" % (rel / 1e9) if rel is not None else "", f3(per(cpu, sent)),
                f3(per(cpu, rel)) if rel is not None else "",
                ratio(per(cpu, sent), nginx_gb) if name == "uringest-push" else "",
                ratio(per(cpu, sent), nginx_gb) if name.startswith("uringestd +") else ""))
        states = collections.Counter("/".join(str(x) for x in d["states"]) for d in dests.values())
        notes.append(
            "- %s, uringest: %s. The sink got %.3f GB (%.1f%% of what the load sent), %d "
            "connections at most. uringest-push's status file (each destination's last figures "
            "seen): %d destinations (states seen: %s), %.3f GB and %d frames sent, %d "
            "reconnects, %d dropped frames, lag at most %d ms; %d rewrites seen, at most %d ms "
            "apart, %d unreadable. Server core: uringest-push %.0f%%, uringestd %.0f%% over "
            "%.1f s, other processes %.0f%%, interrupts %.0f%%; context switches/s: "
            "uringest-push %.0f, uringestd %.0f. uringest-push's exit status on SIGTERM: %s%s" % (
            w, load_line(lu), relayed / 1e9, pct(relayed, sent),
            samp.get("peak_sink_connections", 0),
            len(dests), ", ".join("%s x%d" % kv for kv in states.items()) or "none",
            status_bytes / 1e9, sum(d.get("frames", 0) for d in dests.values()),
            sum(d.get("reconnects", 0) for d in dests.values()),
            sum(d.get("dropped_frames", 0) for d in dests.values()),
            max([d.get("max_lag_ms", 0) for d in dests.values()] or [0]),
            samp.get("status_updates", 0), samp.get("status_max_gap_ms", 0),
            samp.get("status_unreadable", 0), pct(push, float(u["wall"])),
            pct(ud, float(u["wall"])), float(u["wall"]), *other(u, push + ud),
            int(u.get("push_switches", 0)) / float(u["wall"]),
            int(u.get("ud_switches", 0)) / float(u["wall"]), u["push_rc"],
            "; threads off the server core: " + u["unpinned"] if u.get("unpinned") else ""))
    if n and "error" in n:
        print("| %s | nginx-rtmp push | %s | | | | | | |" % (label[w], n["error"]))
    elif n:
        samp = load(n["sampler"]) or {}
        sent, relayed, cpu = ln["bytes"] if ln else 0, int(n["sink_bytes"]), float(n["nginx_cpu"])
        print("| %s | nginx-rtmp push%s | %.2f | %.3f | %.3f | %s | %s | | |" % (
            label[w], mark(ln, n, cpu), cpu, sent / 1e9, relayed / 1e9, f3(per(cpu, sent)),
            f3(per(cpu, relayed))))
        notes.append(
            "- %s, nginx: %s. The sink got %.3f GB (%.1f%% of what the load sent), %d "
            "connections at most; nginx sent %.3f GB (its rtmp_stat bytes_out). Server core: "
            "nginx %.0f%% over %.1f s, other processes %.0f%%, interrupts %.0f%%; context "
            "switches/s: %.0f%s" % (
            w, load_line(ln), relayed / 1e9, pct(relayed, sent),
            samp.get("peak_sink_connections", 0), int(n["relay_bytes"]) / 1e9,
            pct(cpu, float(n["wall"])), float(n["wall"]), *other(n, cpu),
            int(n.get("switches", 0)) / float(n["wall"]),
            "; processes off the server core: " + n["unpinned"] if n.get("unpinned") else ""))
print()
print("CPU-s: utime + stime of all threads (nginx: master and worker), from the load's start "
      "until the sink stopped receiving. GB sent: what uringest-load sent; GB relayed: what the "
      "sink received (its rtmp_stat bytes_in); CPU-s/GB and the ratios are per GB sent. The sink, "
      "a plain nginx-rtmp on the load's core, is not measured. LOAD-BOUND: uringest-load used "
      "90% of its core or more; BUSY: other processes took more than 5% of the server core "
      "(/proc/stat) during the measurement, the figures are suspect (run again).")
print()
print("\n".join(notes))
EOF
cat "$TMP/table.md"
if [[ -n $OUT ]]; then
  { echo; echo "## Relaying: uringest-push against nginx-rtmp push ($(date -u +%F))"; echo
    cat "$TMP/table.md"; } >> "$OUT"
  log "appended to $OUT"
fi
# uringest-push's log, for a look: its lines by kind (stream numbers and times left out).
for f in "$TMP"/W*-uringest-push.log; do
  [[ -s $f ]] || continue
  log "$(basename "$f"): $(wc -l < "$f") lines, by kind:"
  sed -E 's/^[0-9-]+ [0-9:.]+ //; s/load[0-9]+/loadN/g; s/[0-9]+([.][0-9]+)? (s|ms|bytes)/# \2/g' \
    "$f" | sort | uniq -c | sort -rn | head -15 >&2
  log "  the first lines of the rarer kinds, as written:"
  grep -v -e ': pushing to [0-9]* destination' -e ': live, from' -e 'stream ended' "$f" |
    tail -n +2 | head -5 >&2 || true
done
