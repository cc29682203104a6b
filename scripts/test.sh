#!/usr/bin/env bash
# The README's test command: starts (or finds) PostgreSQL and Redis, then runs
# vet and the whole test suite with the race detector. .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services

export QUILL_TEST_PG_DSN="postgres://postgres@${QUILL_PG_HOST}:${QUILL_PG_PORT}/postgres?sslmode=disable"
export QUILL_TEST_REDIS_ADDR="$QUILL_REDIS_ADDR"

# Build outputs never go into git: refuse any tracked file over 1 MiB.
big=$(git ls-files -z 2>/dev/null | xargs -0 -r stat -c '%s %n' 2>/dev/null | awk '$1 > 1048576 {print $2}')
if [ -n "$big" ]; then
  echo "tracked files over 1 MiB (build outputs or data that belong outside git):" >&2; echo "$big" >&2; exit 1
fi
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:" >&2; echo "$unformatted" >&2; exit 1
fi
# The Node SDK compatibility test (cmd/quill) needs compat/node's packages.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || _apt_install nodejs npm; then
  npm ci --prefix compat/node --no-audit --no-fund >/dev/null
else
  echo "WARNING: no Node.js/npm and could not install them: SKIPPING the WeChat Pay Node SDK compatibility test" >&2
  export QUILL_SKIP_NODE_COMPAT=1
fi
# The topology tests (tests/dist, signing/redis cluster tests) start their own
# Redis Cluster nodes and pg_auto_failover formation on loopback ports.
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || _apt_install redis-server redis-tools ||
  echo "WARNING: could not install redis-server/redis-tools: the Redis Cluster tests will fail" >&2
command -v pg_autoctl >/dev/null 2>&1 || _apt_install postgresql-15-auto-failover ||
  echo "WARNING: could not install postgresql-15-auto-failover: the PostgreSQL failover test will fail" >&2
go vet ./...
go test -race -count=1 -timeout 9m "$@" ./...
