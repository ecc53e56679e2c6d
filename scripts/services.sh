#!/usr/bin/env bash
# Installs (when missing) and starts, on loopback, the real servers the tests use; idempotent.
#   scripts/services.sh up     start what is not running, print the URLs
#   scripts/services.sh down   stop them all, by pid
#   scripts/services.sh env    print the URLs as shell assignments
# State lives outside the clone, so a warm machine reuses it.
set -euo pipefail

STATE="${CMF_SERVICES_DIR:-/var/tmp/cmf-server-services}"
PG_PORT="${CMF_PG_PORT:-55432}"
PG_URL="postgresql://cmf:cmf@127.0.0.1:${PG_PORT}/cmf"

log() { printf '[services] %s\n' "$*" >&2; }

apt_install() {
  if [ -z "${_apt_updated:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$dir" ] && [ -x "$dir/postgres" ] && echo "$dir"
}

postgres_up() {
  local bin data
  bin=$(pg_bin) || true
  if [ -z "$bin" ] || [ ! -f "$(dirname "$bin")/lib/pg_trgm.so" ]; then
    log "installing PostgreSQL from Debian's packages"
    apt_install postgresql postgresql-contrib
    bin=$(pg_bin)
  fi
  data="$STATE/postgres"
  mkdir -p "$STATE"
  chmod 755 "$STATE"
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising a PostgreSQL cluster in $data"
    rm -rf "$data"
    install -d -o postgres -g postgres -m 700 "$data"
    local pwfile
    pwfile=$(mktemp)
    echo cmf > "$pwfile"
    chown postgres "$pwfile"
    su postgres -s /bin/sh -c "'$bin/initdb' -D '$data' -U cmf --pwfile='$pwfile' \
        --auth-host=scram-sha-256 --auth-local=trust -E UTF8 >/dev/null"
    rm -f "$pwfile"
    cat >> "$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = ${PG_PORT}
unix_socket_directories = '$data'
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
CONF
  fi
  if su postgres -s /bin/sh -c "'$bin/pg_ctl' -D '$data' status" >/dev/null 2>&1; then
    log "PostgreSQL already running"
  else
    su postgres -s /bin/sh -c "'$bin/pg_ctl' -D '$data' -l '$data/server.log' -w -t 60 start" \
      >/dev/null || { log "PostgreSQL failed to start; its log:"; tail -n 30 "$data/server.log" >&2; exit 1; }
  fi
  if ! PGPASSWORD=cmf "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U cmf -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'cmf'" | grep -q 1; then
    PGPASSWORD=cmf "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U cmf -d postgres -qc "CREATE DATABASE cmf"
  fi
  echo "postgresql  $PG_URL"
}

postgres_down() {
  local bin data="$STATE/postgres"
  bin=$(pg_bin) || return 0
  [ -f "$data/postmaster.pid" ] || return 0
  su postgres -s /bin/sh -c "'$bin/pg_ctl' -D '$data' -m fast -w stop" >/dev/null 2>&1 || true
  log "PostgreSQL stopped"
}

case "${1:-up}" in
  up) postgres_up ;;
  down) postgres_down ;;
  env) echo "CMF_TEST_DATABASE_URL=$PG_URL" ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
