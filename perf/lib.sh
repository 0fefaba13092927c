# shellcheck shell=bash
# perf/lib.sh: what the perf scripts share (compare.sh, idle_sessions.sh,
# single_stream.sh, waves.sh source it).
#
#   scratch_dir NAME          TMP=/tmp/uringest-NAME.XXXXXX and PIDS=(); at exit the PIDS
#                             are killed and TMP removed (kept, and said, with KEEP_TMP=1)
#   start_uringestd_pinned BIN CPU PORT RING [FLAGS...]
#                             one shard on 127.0.0.1:PORT, all its threads on CPU, its
#                             output in TMP; sets URINGESTD_PID once it listens
#   start_nginx_rtmp DIR PORT CPU
#                             nginx with the rtmp module (below)
#   kib PID FIELD             a field of /proc/PID/status (VmRSS, RssAnon...), in KiB
#   established PORT          established TCP connections to 127.0.0.1:PORT, server side
#   cpu_seconds PID           utime + stime of the whole process (all threads), in seconds

scratch_dir() {
  TMP=$(mktemp -d "/tmp/uringest-$1.XXXXXX")
  PIDS=()
  trap cleanup_scratch EXIT
}

cleanup_scratch() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n ${KEEP_TMP:-} ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}

start_uringestd_pinned() {
  local bin=$1 cpu=$2 port=$3 ring=$4
  taskset -c "$cpu" "$bin" --listen "127.0.0.1:$port" --ring "$ring" --shards 1 \
    --log-level warn "${@:5}" > "$TMP/uringestd.out" 2> "$TMP/uringestd.log" &
  URINGESTD_PID=$!
  PIDS+=("$URINGESTD_PID")
  for _ in $(seq 100); do
    if grep -q "listening on" "$TMP/uringestd.out" 2>/dev/null; then
      taskset -apc "$cpu" "$URINGESTD_PID" > /dev/null
      return 0
    fi
    sleep 0.1
  done
  echo "uringestd did not start: $(cat "$TMP/uringestd.log")" >&2
  return 1
}

kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

established() { ss -Htn state established "( sport = :$1 )" | wc -l; }

cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

# start_nginx_rtmp DIR PORT CPU: starts nginx with the rtmp module on 127.0.0.1:PORT,
# pinned (all its processes) to CPU, with its config and logs in DIR: one worker, the
# same chunk size uringestd announces (65536). Sets NGINX_MASTER and NGINX_WORKER (the
# worker: its CPU and RSS are what is measured). Returns 1, with nginx's errors on
# stderr and nginx stopped, if it does not take connections within 10 s.
start_nginx_rtmp() {
  local dir=$1 port=$2 cpu=$3
  mkdir -p "$dir/logs"
  cat > "$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 16384; }
rtmp {
  server {
    listen 127.0.0.1:$port;
    chunk_size 65536;
    application live { live on; }
  }
}
CONF
  taskset -c "$cpu" nginx -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" \
    2> "$dir/stderr.log" &
  NGINX_MASTER=$!
  NGINX_WORKER=""
  for _ in $(seq 100); do
    NGINX_WORKER=$(pgrep -P "$NGINX_MASTER" | head -1 || true)
    [[ -n $NGINX_WORKER ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$dir/stderr.log" "$dir/logs/error.log" >&2
  kill "$NGINX_MASTER" 2>/dev/null || true
  return 1
}
