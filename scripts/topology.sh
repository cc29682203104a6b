#!/usr/bin/env bash
# The distributed topology of docs/SCALING.md, by hand, on loopback:
#   - a Redis Cluster: six redis-server nodes (three masters, three replicas)
#     on ports 7101-7106, cluster-node-timeout 1500 ms
#   - a pg_auto_failover formation: monitor on 7200, primary and synchronous
#     secondary on 7201 and 7202 (database "quill")
#   - three quill serve processes: API https://127.0.0.1:8441-8443 (mTLS),
#     ops http://127.0.0.1:9091-9093, sharing the database, the Redis Cluster
#     and the dev material in var/dev (scripts/dev.sh or quillctl dev init)
# State and logs live in $QUILL_TOPOLOGY_DIR (default /tmp/quill-topology).
#
#   bash scripts/topology.sh up       start everything (installs missing packages)
#   bash scripts/topology.sh status   cluster, formation and readiness
#   bash scripts/topology.sh down     stop everything it started, by saved pid
#
# Try a failover: kill -9 a Redis master (redis-cli -p 7101 cluster nodes shows
# them) or the PostgreSQL primary's keeper group (pg_autoctl show state, then
# kill -9 -- -$(cat $QUILL_TOPOLOGY_DIR/pg-node1.pid)) while sending payments.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

DIR=${QUILL_TOPOLOGY_DIR:-/tmp/quill-topology}
PGBIN=/usr/lib/postgresql/15/bin
REDIS_PORTS=(7101 7102 7103 7104 7105 7106)
MON_PORT=7200
PG_PORTS=(7201 7202)
DATA=${QUILL_DATA_DIR:-var/dev}

runas=(); [ "$(id -u)" = 0 ] && runas=(runuser -u postgres --) # postgres refuses root
as_pg() { "${runas[@]}" env "$@"; }
pgenv=(PATH="$PGBIN:$PATH" XDG_CONFIG_HOME="$DIR/pg/config" XDG_DATA_HOME="$DIR/pg/share" XDG_RUNTIME_DIR="$DIR/pg/run")

# bg NAME CMD...: run CMD in its own process group, log and pid under $DIR.
bg() {
  local name=$1; shift
  setsid "$@" >"$DIR/$name.log" 2>&1 < /dev/null &
  echo $! >"$DIR/$name.pid"
}

wait_for() { # wait_for SECONDS CMD...
  local n=$(( $1 * 5 )); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "topology: timed out waiting for: $*" >&2; return 1
}

up() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || _apt_install redis-server redis-tools
  command -v pg_autoctl >/dev/null || _apt_install postgresql-15-auto-failover
  mkdir -p "$DIR/pg"
  [ "$(id -u)" = 0 ] && chown postgres "$DIR/pg"

  echo "== redis cluster"
  local addrs=()
  for p in "${REDIS_PORTS[@]}"; do
    mkdir -p "$DIR/redis-$p"
    bg "redis-$p" redis-server --bind 127.0.0.1 --port "$p" --dir "$DIR/redis-$p" \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1500 \
      --cluster-require-full-coverage no --save "" --appendonly no --maxmemory-policy noeviction
    addrs+=("127.0.0.1:$p")
  done
  for p in "${REDIS_PORTS[@]}"; do wait_for 30 redis-cli -p "$p" ping; done
  if ! redis-cli -p "${REDIS_PORTS[0]}" cluster info | grep -q 'cluster_state:ok'; then
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$DIR/redis-create.log"
  fi
  wait_for 60 bash -c "redis-cli -p ${REDIS_PORTS[0]} cluster info | grep -q cluster_state:ok"

  echo "== pg_auto_failover formation"
  local monitor="postgres://autoctl_node@127.0.0.1:$MON_PORT/pg_auto_failover?sslmode=disable"
  [ -f "$DIR/pg/monitor/PG_VERSION" ] || as_pg "${pgenv[@]}" pg_autoctl create monitor --pgdata "$DIR/pg/monitor" \
    --pgport $MON_PORT --hostname 127.0.0.1 --auth trust --no-ssl >"$DIR/pg-monitor-create.log" 2>&1
  bg pg-monitor "${runas[@]}" env "${pgenv[@]}" pg_autoctl run --pgdata "$DIR/pg/monitor"
  wait_for 60 "$PGBIN/psql" -h 127.0.0.1 -p $MON_PORT -U autoctl_node -d pg_auto_failover -c 'select 1'
  local i=0
  for p in "${PG_PORTS[@]}"; do
    i=$((i + 1))
    [ -f "$DIR/pg/node$i/PG_VERSION" ] || as_pg "${pgenv[@]}" pg_autoctl create postgres --pgdata "$DIR/pg/node$i" \
      --pgport "$p" --hostname 127.0.0.1 --listen 127.0.0.1 --name "node_$i" --auth trust --no-ssl \
      --monitor "$monitor" >"$DIR/pg-node$i-create.log" 2>&1
    bg "pg-node$i" "${runas[@]}" env "${pgenv[@]}" pg_autoctl run --pgdata "$DIR/pg/node$i"
    wait_for 120 "$PGBIN/pg_isready" -h 127.0.0.1 -p "$p"
    sleep 2
  done
  local hosts="127.0.0.1:${PG_PORTS[0]},127.0.0.1:${PG_PORTS[1]}"
  local dsn="postgres://postgres@$hosts/quill?sslmode=disable&target_session_attrs=read-write&connect_timeout=3"
  local read_dsn="postgres://postgres@$hosts/quill?sslmode=disable&target_session_attrs=prefer-standby&connect_timeout=3"
  wait_for 180 "$PGBIN/psql" "postgres://postgres@$hosts/postgres?sslmode=disable&target_session_attrs=read-write" -c 'select 1'
  go run ./scripts/createdb "$dsn"

  echo "== quill nodes"
  go build -o bin/ ./cmd/quill ./cmd/quillctl
  [ -f "$DATA/ca.pem" ] || { QUILL_DATA_DIR=$DATA bin/quillctl dev init; }
  QUILL_DATA_DIR=$DATA bin/quillctl merchant add M100 --if-missing --name "Demo Merchant" --fee-bps 60 >/dev/null
  QUILL_DATA_DIR=$DATA bin/quillctl merchant add TOPUP --if-missing --name "Wallet top-up" --can-deposit --fee-bps 0 >/dev/null
  local redis_addrs; redis_addrs=$(IFS=,; echo "${addrs[*]}")
  for n in 1 2 3; do
    bg "quill$n" bin/quill serve --addr "127.0.0.1:844$n" --ops-addr "127.0.0.1:909$n" --audit-addr "127.0.0.1:845$n" --data-dir "$DATA" \
      --pg-dsn "$dsn" --pg-read-dsn "$read_dsn" --migrate="$([ $n = 1 ] && echo true || echo false)" \
      --redis-mode cluster --redis-addrs "$redis_addrs"
    wait_for 60 curl -fsS "http://127.0.0.1:909$n/readyz"
  done
  status
  cat <<INFO

quill nodes: https://127.0.0.1:8441 8442 8443 (mTLS, dev material in $DATA)
  --pg-dsn      $dsn
  --pg-read-dsn $read_dsn
  --redis-mode cluster --redis-addrs $redis_addrs
logs: $DIR/*.log     stop: bash scripts/topology.sh down
INFO
}

status() {
  echo "== redis";  redis-cli -p "${REDIS_PORTS[0]}" cluster nodes 2>/dev/null | awk '{print $2, $3}' || true
  echo "== postgres"; as_pg "${pgenv[@]}" pg_autoctl show state --pgdata "$DIR/pg/monitor" 2>/dev/null || true
  echo "== quill"
  for n in 1 2 3; do printf 'quill%s ' $n; curl -sS "http://127.0.0.1:909$n/readyz" 2>/dev/null || printf 'down'; echo; done
}

down() {
  for f in "$DIR"/quill*.pid "$DIR"/pg-node*.pid "$DIR"/pg-monitor.pid "$DIR"/redis-*.pid; do
    [ -f "$f" ] || continue
    kill -TERM -- "-$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  sleep 3
  for d in "$DIR"/pg/monitor "$DIR"/pg/node1 "$DIR"/pg/node2; do # a postmaster left behind
    [ -f "$d/postmaster.pid" ] && kill -9 "$(head -n1 "$d/postmaster.pid")" 2>/dev/null || true
  done
  echo "topology stopped (state kept in $DIR; rm -rf it for a fresh start)"
}

case "${1:-up}" in
  up) up ;;
  status) status ;;
  down) down ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
