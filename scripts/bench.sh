#!/usr/bin/env bash
# Runs the Go benchmarks that docs/BENCHMARKS.md records. Needs PostgreSQL and
# Redis (found or started like scripts/test.sh). The end-to-end load figure
# comes from cmd/quill-load against scripts/dev.sh's server; see the doc.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services
export QUILL_TEST_PG_DSN="postgres://postgres@${QUILL_PG_HOST}:${QUILL_PG_PORT}/postgres?sslmode=disable"
export QUILL_TEST_REDIS_ADDR="$QUILL_REDIS_ADDR"
go test -run '^$' -bench . -benchmem ./signing/ ./policy/ ./keys/ ./certs/
go test -run '^$' -bench . -benchmem -benchtime=3000x ./ledger/postgres/
# The load generator's own cost per scheme A response, Go against OpenSSL.
go test -run '^$' -bench ResponseVerifyA ./cmd/quill-load/
