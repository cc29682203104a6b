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
  # The RFC 9421 cross-implementation test (signing) needs its package too.
  npm ci --prefix signing/testdata/npm-httpsig --no-audit --no-fund >/dev/null
else
  echo "WARNING: no Node.js/npm and could not install them: SKIPPING the WeChat Pay Node SDK and RFC 9421 cross-implementation tests" >&2
  export QUILL_SKIP_NODE_COMPAT=1
fi
# The OpenSSL signing backend (signing/openssl) dlopens libcrypto.so.3 at run
# time: Debian's libssl3 (libssl3t64 from trixie on).
_have_libcrypto3() { [ -n "$(find /lib /usr/lib /usr/local/lib -name libcrypto.so.3 -print -quit 2>/dev/null)" ]; }
if ! _have_libcrypto3 && ! { _apt_install libssl3 || _apt_install libssl3t64; }; then
  echo "WARNING: no libcrypto.so.3 and could not install libssl3: SKIPPING the OpenSSL signing backend tests" >&2
  export QUILL_SKIP_OPENSSL=1
fi
# The topology tests (tests/dist, signing/redis cluster tests) start their own
# Redis Cluster nodes and pg_auto_failover formation on loopback ports.
# The fault tests (tests/fault) start private postgres and redis-server
# processes too: postgresql-15-auto-failover pulls in postgresql-15, whose
# /usr/lib/postgresql/15/bin has initdb and postgres.
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || _apt_install redis-server redis-tools ||
  echo "WARNING: could not install redis-server/redis-tools: the Redis Cluster tests will fail" >&2
command -v pg_autoctl >/dev/null 2>&1 || _apt_install postgresql-15-auto-failover ||
  echo "WARNING: could not install postgresql-15-auto-failover: the PostgreSQL failover test will fail" >&2
go vet ./...
# Static analysis and known vulnerabilities: pinned tools (scripts/tools.sh),
# built once into a cache outside the repository; govulncheck reads an
# offline database built from the golang.org/x/vulndb module.
source scripts/tools.sh
"$(tool_path "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION")" ./...
command -v jq >/dev/null || _apt_install jq
scripts/vulncheck.sh
# The Vault tests (keys/vault, cmd/quill) run a real in-process Vault built
# from tools/devvault, its own module; build it here, outside the test
# timeout (the first, cold build takes several minutes).
QUILL_DEVVAULT=$(mktemp -d)/devvault
(cd tools/devvault && GOWORK=off go build -o "$QUILL_DEVVAULT" .)
export QUILL_DEVVAULT
trap 'rm -rf "$(dirname "$QUILL_DEVVAULT")"' EXIT
go test -race -count=1 -timeout 9m "$@" ./...
# --- auditor console browser test (issue 10; docs/CONSOLE.md) ---------------
# console/browsertest is its own Go module (chromedp stays out of go.mod); it
# drives Debian's chromium against a real quill.
if command -v chromium >/dev/null 2>&1 || _apt_install chromium; then
  (cd console/browsertest && GOWORK=off go vet ./... && GOWORK=off go test -count=1 -timeout 5m ./...)
else
  echo "WARNING: no chromium and could not install it: SKIPPING the auditor console browser test" >&2
  export QUILL_SKIP_CONSOLE=1
fi
# --- end of the auditor console block ----------------------------------------
# Every fuzz target for a few seconds (seed corpora in testdata/fuzz).
scripts/fuzz.sh
# Without cgo the OpenSSL backend compiles to an "unavailable" stub and Go
# signs alone: keep that build green too.
CGO_ENABLED=0 go build ./...
CGO_ENABLED=0 go test -count=1 ./signing/...
