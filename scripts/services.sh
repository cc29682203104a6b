#!/usr/bin/env bash
# Sourced by scripts/dev.sh and scripts/test.sh. ensure_services makes sure a
# PostgreSQL and a Redis answer, and exports where:
#   QUILL_PG_HOST, QUILL_PG_PORT  (user postgres, trust auth)
#   QUILL_REDIS_ADDR
# It uses the servers at 127.0.0.1:5432 and 127.0.0.1:6379 when they answer.
# Otherwise it installs the Debian packages if needed (apt-get) and starts
# private instances under $QUILL_STATE_DIR (default /tmp/quill-services) on
# ports 55432 and 56379, which stay up for later runs.

QUILL_STATE_DIR=${QUILL_STATE_DIR:-/tmp/quill-services}

_as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

_apt_install() {
  echo "services: installing $* with apt-get" >&2
  _as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
    _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# _redis_ok HOST PORT: a PING answered with PONG.
_redis_ok() {
  local reply
  reply=$(timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2 && printf 'PING\r\n' >&3 && head -c 7 <&3" 2>/dev/null) || return 1
  [[ $reply == "+PONG"* ]]
}

# _pg_ok HOST PORT: accepts connections for user postgres.
_pg_ok() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$1" -p "$2" -U postgres -t 3
  else
    timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
  fi
}

_pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

_start_private_pg() {
  local port=55432 data="$QUILL_STATE_DIR/pg" bindir
  bindir=$(_pg_bindir)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    _apt_install postgresql || return 1
    bindir=$(_pg_bindir)
  fi
  local run=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home "$QUILL_STATE_DIR" postgres
    run=(runuser -u postgres --)
  fi
  mkdir -p "$QUILL_STATE_DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$QUILL_STATE_DIR"
  if [ ! -f "$data/PG_VERSION" ]; then
    "${run[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null || return 1
  fi
  if ! _pg_ok 127.0.0.1 "$port"; then
    "${run[@]}" "$bindir/pg_ctl" -D "$data" -l "$QUILL_STATE_DIR/pg.log" -w \
      -o "-p $port -k $QUILL_STATE_DIR -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null || return 1
  fi
  QUILL_PG_PORT=$port
}

_start_private_redis() {
  local port=56379
  command -v redis-server >/dev/null 2>&1 || _apt_install redis-server || return 1
  mkdir -p "$QUILL_STATE_DIR"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir "$QUILL_STATE_DIR" --logfile "$QUILL_STATE_DIR/redis.log" || return 1
  for _ in $(seq 50); do _redis_ok 127.0.0.1 "$port" && break; sleep 0.1; done
  QUILL_REDIS_ADDR=127.0.0.1:$port
}

ensure_services() {
  QUILL_PG_HOST=127.0.0.1
  QUILL_PG_PORT=5432
  if ! _pg_ok 127.0.0.1 5432; then
    echo "services: no PostgreSQL at 127.0.0.1:5432; starting a private one" >&2
    _start_private_pg || { echo "services: could not start PostgreSQL" >&2; return 1; }
  fi
  QUILL_REDIS_ADDR=127.0.0.1:6379
  if ! _redis_ok 127.0.0.1 6379; then
    echo "services: no Redis at 127.0.0.1:6379; starting a private one" >&2
    _start_private_redis || { echo "services: could not start Redis" >&2; return 1; }
  fi
  export QUILL_PG_HOST QUILL_PG_PORT QUILL_REDIS_ADDR
  echo "services: PostgreSQL $QUILL_PG_HOST:$QUILL_PG_PORT, Redis $QUILL_REDIS_ADDR" >&2
}
