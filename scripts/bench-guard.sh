#!/usr/bin/env bash
# bench-guard.sh — the guard side by side with a direct connection,
# nginx's proxy_pass and Caddy's reverse_proxy (the Go peer), over
# loopback against one stand-in upstream (internal/guardbench). Prints
# "ratio <name> <value>" lines with the absolute figures beside them.
# nginx and Caddy come from Debian (scripts/deps.sh bench installs them as
# root; Debian's caddy is 2.6.2, an old release); without one, its column
# is skipped.
# Extra arguments go to guardbench (e.g. -n 5000 -d 5s); it runs
# BENCH_RUNS times (default 3) and the summary takes the medians.
set -euo pipefail
cd "$(dirname "$0")/.."

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if { { ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; } || ! command -v caddy >/dev/null 2>&1; } && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  ./scripts/deps.sh bench
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
CADDY=$(command -v caddy || echo /usr/bin/caddy)

tmp=$(mktemp -d)
nginx_pid=
caddy_pid=
cleanup() {
  for pid in $nginx_pid $caddy_pid; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
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
  echo "bench-guard: nginx not installed; no nginx column"
fi

if [ -x "$CADDY" ]; then
  cd_port=$(free_port)
  # Caddy's reverse_proxy as the Go peer: keep-alive to the upstream by
  # default, no access log, streaming flushed at once as nginx's
  # proxy_buffering off does.
  cat >"$tmp/Caddyfile" <<CONF
{
  admin off
  auto_https off
}
http://127.0.0.1:$cd_port {
  reverse_proxy 127.0.0.1:$up_port {
    flush_interval -1
  }
}
CONF
  XDG_DATA_HOME=$tmp XDG_CONFIG_HOME=$tmp HOME=$tmp "$CADDY" run --config "$tmp/Caddyfile" --adapter caddyfile >"$tmp/caddy.log" 2>&1 &
  caddy_pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$cd_port") 2>/dev/null && break
    kill -0 "$caddy_pid" 2>/dev/null || { cat "$tmp/caddy.log" >&2; echo "bench-guard: caddy did not start" >&2; exit 1; }
    read -rt 0.05 <> <(:) || true
  done
  args+=(-caddy "http://127.0.0.1:$cd_port")
else
  echo "bench-guard: caddy not installed; no Caddy column"
fi

runs=${BENCH_RUNS:-3}
${GO:-go} build -o "$tmp/guardbench" ./internal/guardbench/cmd/guardbench
for run in $(seq "$runs"); do
  echo "== run $run of $runs: guard vs nginx vs Caddy vs direct (loopback, stand-in upstream; guard: netstack WireGuard pair, guard_lo: guard alone on 127.0.0.1; router: moat up's local endpoint in front of that mesh)"
  "$tmp/guardbench" "${args[@]}" "$@"
done
