# Sourced by scripts/test.sh and scripts/vulndb.sh: pinned analysis tools,
# built once into a cache outside the repository and reused (bump a version
# here and the next run builds the new one beside the old).
#   QUILL_TOOLS_CACHE  default ${XDG_CACHE_HOME:-$HOME/.cache}/quill-tools
STATICCHECK_VERSION=v0.8.2                            # honnef.co/go/tools
GOVULNCHECK_VERSION=v1.9.0                            # golang.org/x/vuln
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018     # golang.org/x/vulndb (data + cmd/indexdb)
QUILL_TOOLS_CACHE=${QUILL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/quill-tools}

# tool_path PKG@VERSION prints the path of the built command, building it
# first if needed (`go install` outside this module: its go.mod is not used).
tool_path() {
  local pkg=${1%@*} version=${1##*@}
  local dir="$QUILL_TOOLS_CACHE/${pkg//\//_}@$version"
  local bin="$dir/${pkg##*/}"
  if [ ! -x "$bin" ]; then
    echo "== building $pkg@$version into $dir (once)" >&2
    mkdir -p "$dir"
    GOBIN="$dir" GOFLAGS= go install "$pkg@$version" >&2
  fi
  echo "$bin"
}
