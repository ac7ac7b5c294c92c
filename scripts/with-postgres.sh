#!/usr/bin/env bash
# with-postgres.sh CMD... — run CMD with a throwaway PostgreSQL server for
# the store tests, then stop it and delete its data, whatever CMD did.
#
# As root: installs Debian's postgresql with apt-get when it is missing,
# creates a cluster in a temporary directory owned by the postgres user,
# starts it on a free port on 127.0.0.1 (its socket in that directory),
# creates the database moat_test and exports
#   MOAT_TEST_POSTGRES=postgres://postgres:…@127.0.0.1:PORT/moat_test?sslmode=disable
# for CMD. CMD's exit status is this script's.
#
# Not root, or MOAT_TEST_POSTGRES already set: runs CMD as it is (without
# a server of its own, the PostgreSQL tests skip and say why).
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARG...]" >&2
  exit 2
fi
if [ -n "${MOAT_TEST_POSTGRES:-}" ]; then
  echo "with-postgres: using MOAT_TEST_POSTGRES from the environment"
  exec "$@"
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "with-postgres: not root, so no PostgreSQL server is started and the PostgreSQL"
  echo "with-postgres: store tests skip; run as root, or set MOAT_TEST_POSTGRES=postgres://… to your own"
  exec "$@"
fi

# pg_bin prints a directory holding a working initdb, pg_ctl and postgres
# of one version, newest first; /usr/local/bin may hold stray links.
pg_bin() {
  local d v
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) /usr/local/bin /usr/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] || continue
    v=$("$d/postgres" --version 2>/dev/null | awk '{print $3}') || continue
    [ -n "$v" ] && [ "$("$d/initdb" --version 2>/dev/null | awk '{print $3}')" = "$v" ] || continue
    echo "$d"
    return 0
  done
  return 1
}

if ! bin=$(pg_bin) || ! id postgres >/dev/null 2>&1; then
  echo "with-postgres: installing postgresql with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  bin=$(pg_bin) || { echo "with-postgres: no working initdb/pg_ctl/postgres after installing" >&2; exit 1; }
fi

tmp=$(mktemp -d /tmp/moat-pg.XXXXXX)
chown postgres: "$tmp"
chmod 700 "$tmp"
started=

# as_pg runs a command as the postgres user, from a directory it can read.
as_pg() { (cd "$tmp" && runuser -u postgres -- "$@"); }

cleanup() {
  if [ -n "$started" ]; then
    as_pg "$bin/pg_ctl" -D "$tmp/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_pg "$bin/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
printf '%s\n' "$password" >"$tmp/pwfile"
chown postgres: "$tmp/pwfile"
if ! as_pg "$bin/initdb" -D "$tmp/data" -U postgres --pwfile="$tmp/pwfile" -E UTF8 \
  --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$tmp/initdb.log" 2>&1; then
  cat "$tmp/initdb.log" >&2
  exit 1
fi

# A free port: one nothing answers on, and on which the server starts.
for _ in 1 2 3 4 5 6 7 8; do
  port=$((20000 + RANDOM % 40000))
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
  if as_pg "$bin/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 -o \
    "-h 127.0.0.1 -p $port -k $tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null; then
    started=1
    break
  fi
done
if [ -z "$started" ]; then
  echo "with-postgres: PostgreSQL did not start; its log:" >&2
  cat "$tmp/server.log" >&2 || true
  exit 1
fi

createdb=$bin/createdb
[ -x "$createdb" ] || createdb=$(command -v createdb)
as_pg "$createdb" -h "$tmp" -p "$port" -U postgres moat_test

export MOAT_TEST_POSTGRES="postgres://postgres:$password@127.0.0.1:$port/moat_test?sslmode=disable"
echo "with-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port for this run (data in $tmp)"
set +e
"$@"
rc=$?
set -e
exit "$rc"
