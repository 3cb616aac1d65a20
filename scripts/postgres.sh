#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL cluster for baton's tests.
#
#   eval "$(scripts/postgres.sh start)"   # prints the exports below, nothing else on stdout
#   trap 'scripts/postgres.sh stop' EXIT  # stops the cluster and removes its directory
#
# start installs the Debian package `postgresql` when no server is installed,
# creates a cluster in a new temp dir (owned by the `postgres` user when run as
# root, because the server refuses to run as root), starts it on a free port of
# 127.0.0.1 with trust auth for the user `baton`, and prints
#
#   export BATON_TEST_POSTGRES=postgres://baton@127.0.0.1:PORT/postgres
#   export BATON_POSTGRES_DIR=/tmp/baton-pg.XXXXXX
#
# The cluster trades durability for speed (fsync off): it holds test data only.
# stop [DIR] stops the cluster in DIR (default: $BATON_POSTGRES_DIR) and
# removes it; stop --all does so for every cluster this script started and
# has not stopped (they are listed in $STATE).
set -euo pipefail

# /tmp, not $TMPDIR: the cluster directory must be reachable by the
# `postgres` user, and a private TMPDIR may not be.
STATE=/tmp/baton-postgres.clusters

log() { echo "postgres.sh: $*" >&2; }

pgbin() {
  local initdb
  initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$initdb" ]; then dirname "$initdb"; fi
}

# as_owner runs a server command as the cluster's owner: `postgres` when we
# are root, ourselves otherwise.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

install_server() {
  [ -n "$(pgbin)" ] && return
  if [ "$(id -u)" != 0 ]; then
    log "PostgreSQL is not installed and we are not root; install the 'postgresql' package"
    exit 1
  fi
  log "installing PostgreSQL (apt-get install postgresql)"
  # stdout must stay clean: the caller evals it.
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  [ -n "$(pgbin)" ] || { log "apt-get installed no initdb"; exit 1; }
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  install_server
  local bin dir port
  bin=$(pgbin)
  dir=$(mktemp -d /tmp/baton-pg.XXXXXX)
  chmod 700 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -A trust -U baton -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
  # A port can be taken between the check and the bind: try a few.
  for _ in $(seq 20); do
    port=$((20000 + RANDOM % 40000))
    port_free "$port" || continue
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >&2; then
      echo "$dir" >>"$STATE"
      log "PostgreSQL running on 127.0.0.1:$port (dir $dir)"
      echo "export BATON_TEST_POSTGRES=postgres://baton@127.0.0.1:$port/postgres"
      echo "export BATON_POSTGRES_DIR=$dir"
      return
    fi
    tail -n 5 "$dir/log" >&2 || true
  done
  log "could not start PostgreSQL; see $dir/log"
  exit 1
}

stop_one() {
  local dir=$1 bin
  [ -d "$dir" ] || return 0
  case "$(basename "$dir")" in
  baton-pg.*) ;;
  *)
    log "refusing to remove $dir: not a cluster this script made"
    return 1
    ;;
  esac
  bin=$(pgbin)
  if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
  fi
  rm -rf "$dir"
  if [ -f "$STATE" ]; then
    grep -vxF "$dir" "$STATE" >"$STATE.tmp" || true
    mv "$STATE.tmp" "$STATE"
  fi
}

stop() {
  local dir=${1:-${BATON_POSTGRES_DIR:-}}
  if [ "$dir" = --all ]; then
    [ -f "$STATE" ] || return 0
    while read -r d; do stop_one "$d"; done < <(cat "$STATE")
    return
  fi
  if [ -z "$dir" ]; then
    # Never guess: other test runs may have clusters of their own.
    log "no cluster named: BATON_POSTGRES_DIR is unset; use stop DIR or stop --all"
    return 0
  fi
  stop_one "$dir"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
*)
  echo "usage: $0 start | stop [DIR | --all]" >&2
  exit 1
  ;;
esac
