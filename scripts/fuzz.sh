#!/usr/bin/env bash
# Runs every fuzz target for a short fixed time (FUZZTIME, default 3s each;
# 18 targets ≈ 60 s plus builds; the tests/attack target starts the real
# server in each fuzzing process, which adds some 30 s). scripts/test.sh
# calls it on every CI run.
#
# Seed corpora are committed under each package's testdata/fuzz/FuzzName/
# (go test replays them in every plain `go test` run too); a failing input
# found here is written there by go test — commit it with the fix.
#
#   scripts/fuzz.sh                   run all targets
#   scripts/fuzz.sh --save-corpus     also copy what the run found into
#                                     testdata/fuzz (at most 16 new inputs
#                                     per target), to grow the seeds
#
# The list is explicit so a run's cost is known; the script fails when a
# `func Fuzz…` in the repository is missing from it (or listed but gone).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-3s}
SAVE=0
[ "${1:-}" = --save-corpus ] && SAVE=1

TARGETS=(
  ./api:FuzzDecodeStrict
  ./api:FuzzCursorOpen
  ./api:FuzzParseAfter
  ./api:FuzzParseOffset
  ./audit:FuzzParseScope
  ./certs:FuzzMerchantID
  ./certs:FuzzParseCRL
  ./keys:FuzzParsePublicKeyPEM
  ./keys:FuzzParsePrivateKeyPEM
  ./keys:FuzzDecodeRing
  ./keys:FuzzDecodeKeyring
  ./ledger:FuzzValidate
  ./merchant:FuzzParseID
  ./policy:FuzzParseAmount
  ./quillclient:FuzzParseListing
  ./signing:FuzzParseAuthorization
  ./signing:FuzzParseSFDictionary
  ./signing:FuzzSignatureBase
  ./tests/attack:FuzzTamperedRequestRefused
)

listed=$(printf '%s\n' "${TARGETS[@]}" | sort)
found=$(git grep --no-color -e '^func Fuzz' -- '*_test.go' |
  sed -E 's#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#./\1:\2#' | sort)
if [ "$listed" != "$found" ]; then
  echo "scripts/fuzz.sh: TARGETS differs from the repository's fuzz targets (< listed, > found):" >&2
  diff <(echo "$listed") <(echo "$found") >&2 || true
  exit 1
fi

cache=$(go env GOCACHE)/fuzz
start=$SECONDS
for t in "${TARGETS[@]}"; do
  pkg=${t%%:*} name=${t##*:}
  echo "== fuzz $pkg $name ($FUZZTIME)"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" || {
    echo "FAIL: $pkg $name (the failing input is in $pkg/testdata/fuzz/$name)" >&2; exit 1; }
  if [ "$SAVE" = 1 ]; then
    mod=$(go list -m)
    src="$cache/$mod/${pkg#./}/$name"
    dst="$pkg/testdata/fuzz/$name"
    mkdir -p "$dst"
    if [ -d "$src" ]; then
      ls -t "$src" | head -16 | while read -r f; do
        [ -e "$dst/$f" ] || cp "$src/$f" "$dst/$f"
      done
    fi
  fi
done
echo "fuzzing done: ${#TARGETS[@]} targets in $((SECONDS - start))s"
