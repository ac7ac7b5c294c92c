#!/usr/bin/env bash
# deps.sh PURPOSE — make sure the Debian packages a make target needs are
# here. As root it installs what is missing with apt-get; otherwise it
# says what is missing and what will be skipped, and carries on.
#
#   test   iproute2 and nftables (namespace, TUN and lockdown tests),
#          wireguard-tools, Node.js with npm (the openai package and
#          Playwright tests), chromium (the web UI tests), prometheus
#          for promtool (metrics, alert rules and their unit tests), caddy
#          and nginx (the shipped proxy configurations), systemd's
#          systemd-analyze (the units' sandbox score) and rsyslog with its
#          gnutls driver (the syslog audit sink's receiver), docker.io
#          and docker-compose (the images and the Compose quick start,
#          run by deploy/compose against a dockerd of its own) and skopeo
#          (saves the images as OCI archives)
#   bench  the above, plus iperf3 (kernel paths)
set -euo pipefail

purpose=${1:-test}
# command:package pairs
need=(ip:iproute2 nft:nftables curl:curl shellcheck:shellcheck wg-quick:wireguard-tools
      node:nodejs npm:npm chromium:chromium promtool:prometheus caddy:caddy
      nginx:nginx systemd-analyze:systemd rsyslogd:rsyslog dockerd:docker.io
      docker-compose:docker-compose skopeo:skopeo)
case "$purpose" in
  bench) need+=(iperf3:iperf3) ;;
esac

missing=()
for pair in "${need[@]}"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
done
# rsyslog's TLS driver is a module, not a command
compgen -G "/usr/lib/*/rsyslog/lmnsd_gtls.so" >/dev/null || missing+=(rsyslog-gnutls)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages such as nginx and caddy start their service on install; the
  # tests start their own, so none may hold ports 80 and 443 meanwhile.
  # policy-rc.d answering 101 tells invoke-rc.d not to start anything.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
else
  echo "deps: missing Debian packages: ${missing[*]}"
  echo "deps: tests that need them will skip and say why; install them with:"
  echo "      sudo apt-get install ${missing[*]}"
fi
