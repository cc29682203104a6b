#!/usr/bin/env bash
# Builds the Go vulnerability database govulncheck reads, offline, from the
# golang.org/x/vulndb module (the online vuln.go.dev cannot be reached here),
# once per VULNDB_VERSION (scripts/tools.sh), and prints its file:// URL.
#
# vulndb's data/osv holds one OSV JSON file per report; its cmd/indexdb (the
# same code, internal/database, that generates vuln.go.dev) writes them in the
# v1 database layout govulncheck -db expects: index/db.json,
# index/modules.json, index/vulns.json and ID/GO-….json.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
db="$QUILL_TOOLS_CACHE/vulndb@$VULNDB_VERSION"
if [ ! -s "$db/index/db.json" ]; then
  indexdb=$(tool_path "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION")
  src=$(GOFLAGS= go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src/data/osv" ] || { echo "vulndb.sh: no data/osv in $src" >&2; exit 1; }
  echo "== building the vulnerability database from $src/data/osv ($(ls "$src/data/osv" | wc -l) reports)" >&2
  rm -rf "$db.tmp"
  "$indexdb" -vulns "$src/data/osv" -out "$db.tmp" >&2
  rm -rf "$db"; mv "$db.tmp" "$db"
fi
echo "file://$db"
