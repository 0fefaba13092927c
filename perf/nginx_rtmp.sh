# perf/nginx_rtmp.sh: sourced by perf/compare.sh and perf/idle_sessions.sh.
#
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
