#!/usr/bin/env bash
# The README's first command: the whole service on dev defaults, then a demo.
#   1. PostgreSQL and Redis (the local ones, or private instances it installs)
#   2. dev material in var/dev: CA, server certificate, platform key, payer-token
#      key, merchant M100 (pays) and TOPUP (may deposit)
#   3. quill serve on https://127.0.0.1:8443 (mTLS), ops on http://127.0.0.1:9090
#   4. a deposit into wallet user:42, a signed payment, and a payment query,
#      each printed with its response-signature check
# The server then keeps running until Ctrl-C (QUILL_DEMO_EXIT=1: stop after the demo).
#
# --vault: keys come from a real Vault, as in production: a dev Vault (Vault
# v1.14.1 in-process, tools/devvault; in memory, loopback only) is started,
# the dev key rings are copied into its KV v2 mount with `quill import-keys`,
# and the server logs in with AppRole. The first build of devvault takes
# several minutes.
set -euo pipefail
USE_VAULT=0
for arg in "$@"; do
  case $arg in
    --vault) USE_VAULT=1 ;;
    *) echo "usage: $0 [--vault]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services

DATA=${QUILL_DATA_DIR:-var/dev}
export QUILL_DATA_DIR=$DATA
# Least privilege (docs/OPERATIONS.md "Database roles"): the superuser only
# creates the database and its roles; migrations run as quill_owner, the server
# as quill_service (cannot rewrite history), auditors read as quill_reader.
PG_ADMIN_DSN=${QUILL_PG_ADMIN_DSN:-postgres://postgres@${QUILL_PG_HOST}:${QUILL_PG_PORT}/quill?sslmode=disable}
PG_DB=${PG_ADMIN_DSN##*/}; PG_DB=${PG_DB%%\?*}
_pg_role_dsn() { echo "postgres://${PG_DB}_$1@${QUILL_PG_HOST}:${QUILL_PG_PORT}/${PG_DB}?sslmode=disable"; }
export QUILL_PG_DSN=${QUILL_PG_DSN:-$(_pg_role_dsn service)}
export QUILL_PG_MIGRATE_DSN=${QUILL_PG_MIGRATE_DSN:-$(_pg_role_dsn owner)}
export QUILL_PG_AUDIT_DSN=${QUILL_PG_AUDIT_DSN:-$(_pg_role_dsn reader)}
export QUILL_REDIS_ADDR
mkdir -p "$DATA"

echo "== building"
go build -o bin/ ./cmd/quill ./cmd/quillctl

echo "== database"
go run ./scripts/createdb -roles "$PG_ADMIN_DSN"
bin/quill migrate
# Planner statistics: the write path does not need them, reports do, and
# autovacuum may be off (docs/OPERATIONS.md, "PostgreSQL settings").
go run ./cmd/quill-seed --analyze-only --dsn "$QUILL_PG_DSN"

echo "== dev material in $DATA"
bin/quillctl dev init
# Operator commands write the merchant registry and the audit log, which the
# service role may only read: they run as the owner role.
QUILL_PG_DSN=$QUILL_PG_MIGRATE_DSN bin/quillctl merchant add M100 --if-missing --name "Demo Merchant" --fee-bps 60
QUILL_PG_DSN=$QUILL_PG_MIGRATE_DSN bin/quillctl merchant add TOPUP --if-missing --name "Wallet top-up service" --can-deposit --fee-bps 0

if [ -f "$DATA/quill.pid" ] && kill -0 "$(cat "$DATA/quill.pid")" 2>/dev/null; then
  echo "== stopping the previous dev server"
  kill "$(cat "$DATA/quill.pid")"; sleep 1
fi
if [ -f "$DATA/devvault.pid" ] && kill -0 "$(cat "$DATA/devvault.pid")" 2>/dev/null; then
  echo "== stopping the previous dev Vault"
  kill "$(cat "$DATA/devvault.pid")"; sleep 1
fi
rm -f "$DATA/devvault.pid"
VAULT=
if [ "$USE_VAULT" = 1 ]; then
  echo "== building the dev Vault (tools/devvault; the first build takes minutes)"
  (cd tools/devvault && GOWORK=off go build -o ../../bin/devvault .)
  echo "== starting the dev Vault (log: $DATA/devvault.log)"
  bin/devvault -approle >"$DATA/devvault.json" 2>"$DATA/devvault.log" &
  VAULT=$!
  echo $VAULT >"$DATA/devvault.pid"
  for _ in $(seq 600); do
    [ -s "$DATA/devvault.json" ] && break
    kill -0 $VAULT 2>/dev/null || { tail -20 "$DATA/devvault.log"; exit 1; }
    sleep 0.1
  done
  field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$DATA/devvault.json"; }
  export QUILL_VAULT_ADDR; QUILL_VAULT_ADDR=$(field addr)
  (umask 077; field root_token >"$DATA/vault-root-token"; field secret_id >"$DATA/vault-secret-id")
  echo "== copying the dev key rings into Vault at $QUILL_VAULT_ADDR"
  QUILL_VAULT_TOKEN_FILE="$DATA/vault-root-token" bin/quill import-keys --from "$DATA/keys"
  export QUILL_VAULT_ROLE_ID; QUILL_VAULT_ROLE_ID=$(field role_id)
  export QUILL_VAULT_SECRET_ID_FILE="$DATA/vault-secret-id"
fi
echo "== starting quill (log: $DATA/quill.log)"
# Migrated above as the owner: the server never holds the owner's DSN.
env -u QUILL_PG_MIGRATE_DSN QUILL_MIGRATE=false bin/quill serve >"$DATA/quill.log" 2>&1 &
SERVER=$!
echo $SERVER >"$DATA/quill.pid"
trap 'kill $SERVER $VAULT 2>/dev/null; wait $SERVER 2>/dev/null' INT TERM
for _ in $(seq 100); do
  curl -fsS http://127.0.0.1:9090/readyz >/dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { cat "$DATA/quill.log"; exit 1; }
  sleep 0.2
done
curl -fsS http://127.0.0.1:9090/readyz; echo

stamp=$(date +%s%N | cut -c1-16)
echo; echo "== demo: deposit 100.00 CNY into wallet user:42 (signed by TOPUP)"
bin/quillctl request POST /v1/deposits --merchant TOPUP \
  --data "{\"order_id\":\"ORD${stamp}0\",\"user_id\":\"42\",\"amount\":\"100.00\",\"currency\":\"CNY\"}"

echo; echo "== demo: payment of 12.34 CNY from user:42 to M100 (signed by M100)"
token=$(bin/quillctl token --sub 42)
bin/quillctl request POST /v1/payments --merchant M100 \
  --data "{\"order_id\":\"ORD${stamp}1\",\"amount\":\"12.34\",\"currency\":\"CNY\",\"payer_token\":\"${token}\",\"description\":\"demo coffee\"}"

echo; echo "== demo: refund 2.34 CNY of it to user:42 (signed by M100)"
bin/quillctl request POST /v1/refunds --merchant M100 \
  --data "{\"refund_id\":\"ORD${stamp}2\",\"order_id\":\"ORD${stamp}1\",\"amount\":\"2.34\",\"currency\":\"CNY\",\"reason\":\"demo refund\"}"

echo; echo "== demo: query the payment"
bin/quillctl request GET "/v1/payments/ORD${stamp}1" --merchant M100 --quiet

cat <<INFO

== dev material (point your own client at these)
  CA (trust for the server, issues client certs): $DATA/ca.pem
  merchant M100 client certificate and key:       $DATA/merchants/M100/client.pem, client.key.pem
  merchant M100 signing key and key id:           $DATA/merchants/M100/signing.key.pem, key_id ($(cat "$DATA/merchants/M100/key_id"))
  platform public key and serial:                 $DATA/platform.pub.pem, platform.serial ($(cat "$DATA/platform.serial"))
  server log:                                     $DATA/quill.log
INFO
if [ -n "$VAULT" ]; then
  cat <<INFO
  keys are served from the dev Vault:             $QUILL_VAULT_ADDR (mount quill, AppRole role "quill")
  Vault root token (loopback dev only):           $DATA/vault-root-token
INFO
fi

if [ "${QUILL_DEMO_EXIT:-0}" = 1 ]; then
  kill $SERVER; wait $SERVER 2>/dev/null || true
  [ -z "$VAULT" ] || kill $VAULT 2>/dev/null || true
  exit 0
fi
echo; echo "quill is serving on https://127.0.0.1:8443 (ops http://127.0.0.1:9090); Ctrl-C stops it."
rc=0; wait $SERVER || rc=$?
[ -z "$VAULT" ] || kill $VAULT 2>/dev/null || true
exit $rc
