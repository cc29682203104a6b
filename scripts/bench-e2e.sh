#!/usr/bin/env bash
# End-to-end benchmark with its baselines measured in the same run:
#   1. builds bin/quill, bin/quillctl, bin/quill-load; dev material in var/bench
#   2. for each leg (default: group, one-commit, group-b) starts `quill serve`
#      on a fresh database, loopback ports of its own and a Redis prefix of its
#      own, runs quill-load SCENARIO against it (ledger check included), stops it
#        group         scheme A, the default group commit (--max-batch 512)
#        one-commit    scheme A, --max-batch 1: one commit (one fsync) per
#                      payment, the row-locked design of the usual peers
#        group-b       scheme B (RFC 9421, Ed25519 merchant MB100 and Ed25519
#                      response signatures), group commit
#        one-commit-b  scheme B, --max-batch 1
#      (idle measures connections and runs the scheme A legs only)
#   3. prints all legs as one table with the throughput ratio to the first,
#      and the ratios group / one-commit and group-b / group.
#
#   scripts/bench-e2e.sh [SCENARIO] [quill-load flags…]
#   scripts/bench-e2e.sh hot                           # 64 connections, 20 s, three legs
#   scripts/bench-e2e.sh mixed --audit-share 0.25      # payments beside auditor reads
#   BENCH_LEGS=group scripts/bench-e2e.sh hot --rate 500
#   scripts/bench-e2e.sh idle --idle-conns 10000 --hold 10s
#
# Every server also runs its auditor listener (the mixed scenario reads it).
# Environment: BENCH_DURATION (20s), BENCH_CONNS (64), BENCH_REQUESTS (40000,
# closed loop), BENCH_LEGS ("group one-commit group-b"), BENCH_PORT (18443),
# BENCH_OPS_PORT (19090), BENCH_AUDIT_PORT (18444), BENCH_DATA_DIR
# (var/bench). Results (JSON, server logs) go to
# $BENCH_DATA_DIR/results/<time>/. Loopback only; every leg is bounded by
# quill-load's --duration and a timeout around it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services

SCENARIO=${1:-hot}
[ $# -gt 0 ] && shift
DATA=${BENCH_DATA_DIR:-var/bench}
DURATION=${BENCH_DURATION:-20s}
CONNS=${BENCH_CONNS:-64}
REQUESTS=${BENCH_REQUESTS:-40000}
LEGS=${BENCH_LEGS:-group one-commit group-b}
ADDR=127.0.0.1:${BENCH_PORT:-18443}
OPS=127.0.0.1:${BENCH_OPS_PORT:-19090}
AUDIT=127.0.0.1:${BENCH_AUDIT_PORT:-18444}
ADMIN_DSN="postgres://postgres@${QUILL_PG_HOST}:${QUILL_PG_PORT}/postgres?sslmode=disable"
OUT="$DATA/results/$(date -u +%Y%m%dT%H%M%SZ)-$SCENARIO"
mkdir -p "$OUT"

# 10,000 idle connections need 10,000 descriptors in the server and as many
# in the generator.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== building"
go build -o bin/ ./cmd/quill ./cmd/quillctl ./cmd/quill-load

echo "== dev material in $DATA"
bin/quillctl --data-dir "$DATA" dev init >/dev/null

SERVER=
DB=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  if [ -n "$DB" ]; then psql -q "$ADMIN_DSN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; fi
  SERVER= DB=
}
trap cleanup EXIT INT TERM

# leg NAME SCHEME SERVER-FLAGS…: one server, one quill-load run.
leg() {
  local name=$1 scheme=$2; shift 2
  DB="quill_bench_$(date +%s)_${name//-/_}"
  local dsn="postgres://postgres@${QUILL_PG_HOST}:${QUILL_PG_PORT}/${DB}?sslmode=disable"
  go run ./scripts/createdb "$dsn"
  # The merchant registry lives in the leg's database (quillctl writes it).
  bin/quill migrate --pg-dsn "$dsn" >/dev/null
  QUILL_PG_DSN=$dsn bin/quillctl --data-dir "$DATA" merchant add M100 --if-missing --name "Bench merchant" --fee-bps 60 >/dev/null
  QUILL_PG_DSN=$dsn bin/quillctl --data-dir "$DATA" merchant add TOPUP --if-missing --name "Wallet top-up" --can-deposit --fee-bps 0 >/dev/null
  QUILL_PG_DSN=$dsn bin/quillctl --data-dir "$DATA" merchant add MB100 --if-missing --alg ed25519 --name "Bench merchant, scheme B" --fee-bps 60 >/dev/null
  echo "== leg $name: scheme ${scheme^^}, quill serve $* (database $DB; $(uptime | sed 's/.*load/load/'))"
  bin/quill serve --addr "$ADDR" --ops-addr "$OPS" --audit-addr "$AUDIT" --data-dir "$DATA" --pg-dsn "$dsn" \
    --redis-addr "$QUILL_REDIS_ADDR" --redis-prefix "quill:bench:$$:$name:" --log-level warn "$@" \
    >"$OUT/$name.server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 150); do
    curl -fsS "http://$OPS/readyz" >/dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$OUT/$name.server.log"; exit 1; }
    sleep 0.2
  done
  local rc=0
  timeout 30m bin/quill-load --scenario "$SCENARIO" --scheme "$scheme" --url "https://$ADDR" --audit-url "https://$AUDIT" \
    --data-dir "$DATA" --pg-dsn "$dsn" -c "$CONNS" -n "$REQUESTS" --duration "$DURATION" --server-pid "$SERVER" \
    --json "$OUT/$name.json" "${BENCH_ARGS[@]}" || rc=$?
  echo "   server RSS at the end: $(awk '/VmRSS/ {print $2, $3}' "/proc/$SERVER/status" 2>/dev/null)"
  cleanup
  return $rc
}

BENCH_ARGS=("$@")
failed=0
files=()
for l in $LEGS; do
  if [ "$SCENARIO" = idle ] && [[ $l == *-b ]]; then
    echo "== leg $l skipped: idle measures connections, with scheme A requests"
    continue
  fi
  case $l in
    group) leg group a --max-batch 512 || failed=1 ;;
    one-commit) leg one-commit a --max-batch 1 || failed=1 ;;
    group-b) leg group-b b --max-batch 512 || failed=1 ;;
    one-commit-b) leg one-commit-b b --max-batch 1 || failed=1 ;;
    *) echo "unknown leg $l (group, one-commit, group-b, one-commit-b)" >&2; exit 2 ;;
  esac
  [ -f "$OUT/$l.json" ] && files+=("$OUT/$l.json")
done

# The ratios from this one run: group commit over one commit per payment
# (each scheme), scheme B over scheme A (each commit mode).
ratios=()
have() { [ -f "$OUT/$1.json" ]; }
for r in group/one-commit group-b/one-commit-b group-b/group one-commit-b/one-commit; do
  have "${r%/*}" && have "${r#*/}" && ratios+=(--ratio "$r")
done

echo
echo "== $SCENARIO, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uptime | sed 's/.*load/load/'), results in $OUT"
[ ${#files[@]} -gt 0 ] && bin/quill-load compare "${files[@]}" "${ratios[@]}"
exit $failed
