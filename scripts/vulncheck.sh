#!/usr/bin/env bash
# govulncheck (scripts/tools.sh pins the version) against the offline database
# scripts/vulndb.sh builds. Fails on any reachable finding (one whose trace
# reaches a vulnerable function) unless its id is in
# scripts/vulncheck-allow.txt (VULNCHECK_ALLOW) with a reason; allowed ones are printed on
# every run. Imported-but-unreached findings are listed, not fatal.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
allow=${VULNCHECK_ALLOW:-scripts/vulncheck-allow.txt}
command -v jq >/dev/null || { declare -F _apt_install >/dev/null && _apt_install jq; } || {
  echo "vulncheck.sh: needs jq" >&2; exit 1; }
db=$(scripts/vulndb.sh)
gv=$(tool_path "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION")
out=$(mktemp); trap 'rm -f "$out"' EXIT
"$gv" -db "$db" -format json ./... >"$out"
reachable=$(jq -r 'select(.finding) | .finding | select(.trace[0].function) |
  "\(.osv) \(.trace[0].module)@\(.trace[0].version // "?") fixed in \(.fixed_version // "none")"' "$out" | sort -u)
unreached=$(comm -23 <(jq -r 'select(.finding) | .finding.osv' "$out" | sort -u) \
  <(jq -r 'select(.finding) | .finding | select(.trace[0].function) | .osv' "$out" | sort -u) | tr '\n' ' ')
allowed=$(grep -v '^[[:space:]]*\(#\|$\)' "$allow" | awk '{print $1}' || true)
fail=0
while read -r id rest; do
  [ -n "$id" ] || continue
  if grep -qx "$id" <<<"$allowed"; then
    echo "WARNING: reachable $id $rest — allowed: $(grep "^$id[[:space:]]" "$allow" | cut -d' ' -f2- | sed 's/^[[:space:]]*//')" >&2
  else
    echo "REACHABLE: $id $rest (https://pkg.go.dev/vuln/$id)" >&2; fail=1
  fi
done <<<"$reachable"
for id in $allowed; do
  grep -q "^$id " <<<"$reachable" || echo "note: $id is allowed in $allow but no longer found: remove it" >&2
done
[ -z "$unreached" ] || echo "govulncheck: in dependencies but not reached: $unreached"
[ "$fail" = 0 ] || { echo "govulncheck: reachable vulnerabilities (upgrade the module, or Go for stdlib)" >&2; exit 1; }
echo "govulncheck: no reachable vulnerabilities outside $allow ($(grep -c . <<<"$reachable" || true) reachable, all allowed)"
