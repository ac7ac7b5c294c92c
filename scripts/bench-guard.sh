#!/usr/bin/env bash
# bench-guard.sh — the guard side by side with a direct connection and
# nginx's proxy_pass, over loopback against one stand-in upstream
# (internal/guardbench). Prints "ratio <name> <value>" lines with the
# absolute figures beside them. nginx comes from Debian (scripts/deps.sh
# bench installs it as root); without it the nginx column is skipped.
# Extra arguments go to guardbench (e.g. -n 5000 -d 5s); it runs
# BENCH_RUNS times (default 3) and the summary takes the medians.
set -euo pipefail
cd "$(dirname "$0")/.."

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  ./scripts/deps.sh bench
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d)
nginx_pid=
cleanup() {
  if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

up_port=$(free_port)
args=(-upstream "127.0.0.1:$up_port")
if [ -x "$NGINX" ]; then
  ng_port=$(free_port)
  mkdir -p "$tmp/logs"
  cat >"$tmp/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes auto;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi;
  uwsgi_temp_path $tmp/uwsgi;
  scgi_temp_path $tmp/scgi;
  upstream standin { server 127.0.0.1:$up_port; keepalive 128; }
  server {
    listen 127.0.0.1:$ng_port;
    location / {
      proxy_pass http://standin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
  "$NGINX" -p "$tmp" -c "$tmp/nginx.conf" &
  nginx_pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$ng_port") 2>/dev/null && break
    kill -0 "$nginx_pid" 2>/dev/null || { cat "$tmp/logs/error.log" >&2; echo "bench-guard: nginx did not start" >&2; exit 1; }
    read -rt 0.05 <> <(:) || true
  done
  args+=(-nginx "http://127.0.0.1:$ng_port")
else
  echo "bench-guard: nginx not installed; measuring direct and guard only"
fi

runs=${BENCH_RUNS:-3}
${GO:-go} build -o "$tmp/guardbench" ./internal/guardbench/cmd/guardbench
for run in $(seq "$runs"); do
  echo "== run $run of $runs: guard vs nginx vs direct (loopback, stand-in upstream; guard: netstack WireGuard pair, guard_lo: guard alone on 127.0.0.1; router: moat up's local endpoint in front of that mesh)"
  "$tmp/guardbench" "${args[@]}" "$@"
done
