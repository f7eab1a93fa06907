#!/usr/bin/env bash
# Runs the seed acceptance examples (../shared/acceptance/seeds) and the README's quick start under
# another JavaScript runtime than the machine's `node`, fetched by scripts/runtimes.sh:
#
#   scripts/acceptance-runtimes.sh [--context spawn|thread|both] RUNTIME[:LOADER] [NAME-FILTER,...]
#
# RUNTIME is node20, node22, node24 or bun. LOADER says how the TypeScript is run:
#   tsx    `node --import tsx`, as ../shared/acceptance/run does (the default for Node.js)
#   strip  `node app.ts`: Node.js's own type stripping, no tsx (Node.js >= 22.18; 22.6 to 22.17 need
#          --experimental-strip-types, which is added for them)
#   bun    `bun app.ts` (the only loader for Bun)
# NAME-FILTER keeps the examples whose name contains one of its comma-separated parts (01,quickstart).
# The output has the shape of ../shared/acceptance/run's, and it honours .ci/acceptance-pending the
# same way. An example that uses syntax the loader cannot run (listed below, with the reason) is
# reported as skipped: that is the runtime's limit, not the library's.
#
# 02-pool-speedup is a measurement, not a behaviour: its pool of 4 must beat the same loops run one
# after another by 10%, on 2 cores whose second one gives 50-100% of a core from moment to moment
# (two copies of the loop side by side take 0.7-1.2 s each where one alone takes 0.7-1.0 s), and on
# Node.js 24 each call of the loop itself takes 0.9-1.7 s. So it is measured up to 3 times, each
# attempt printed, and passes when one does; a pool that is not faster fails all three.
set -u
cd "$(dirname "$0")/.."
seeds="$(cd ../shared/acceptance/seeds && pwd)"
context=both
spec=""
filter=""
while [ $# -gt 0 ]; do
  case "$1" in
    --context) context="$2"; shift 2 ;;
    *) if [ -z "$spec" ]; then spec="$1"; else filter="$1"; fi; shift ;;
  esac
done
[ -n "$spec" ] || { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
runtime="${spec%%:*}"
loader="${spec#*:}"
[ "$loader" = "$spec" ] && { [ "$runtime" = bun ] && loader=bun || loader=tsx; }
bin="$(scripts/runtimes.sh bin "$runtime")" || exit 2
version="$("$bin" --version)"
case "$runtime:$loader" in
  bun:bun | node*:tsx | node*:strip) ;;
  *) echo "acceptance-runtimes: $runtime cannot use the loader '$loader'"; exit 2 ;;
esac

# What a program is run with, and which examples its loader cannot run (name: reason).
flags=()
unsupported=""
case "$loader" in
  tsx) flags=(--import tsx) ;;
  strip)
    major="${version#v}"; major="${major%%.*}"; minor="${version#v*.}"; minor="${minor%%.*}"
    if [ "$major" -lt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -lt 6 ]; }; then
      echo "acceptance-runtimes: $runtime ($version) cannot strip types (Node.js 22.6 or later can)"; exit 2
    fi
    [ "$major" -eq 22 ] && [ "$minor" -lt 18 ] && flags=(--experimental-strip-types)
    # Type stripping only erases types: a parameter property (`constructor(readonly x: T)`) is code.
    unsupported="10-subclass:parameter-properties"
    # `await using` is new syntax that Node.js runs from version 24 on; tsx rewrites it, stripping does not.
    if [ "$major" -lt 24 ]; then
      for f in "$seeds"/[0-9]*.ts; do
        grep -q 'await using' "$f" && unsupported="$unsupported $(basename "$f" .ts):await-using"
      done
      unsupported="$unsupported quickstart-ts:await-using"
    fi
    ;;
esac

[ -z "${ACCEPTANCE_NO_BUILD:-}" ] && { npm run --silent build >/dev/null 2>&1 || { echo "acceptance-runtimes: build failed (npm run build)"; exit 2; }; }
dest="$(pwd)/.acceptance-$runtime-$loader"
rm -rf "$dest" && mkdir -p "$dest" && cp "$seeds"/*.ts "$dest"/
# The README's quick start, in TypeScript and in JavaScript, as the files its first lines name.
node scripts/readme-quickstart.mjs "$dest" || exit 2

pending=""
[ -f .ci/acceptance-pending ] && [ -z "${ACCEPTANCE_STRICT:-}" ] && pending=" $(grep -v '^#' .ci/acceptance-pending | tr '\n' ' ') "
case "$context" in both) contexts="spawn thread" ;; *) contexts="$context" ;; esac
echo "acceptance-runtimes: $runtime ($version) with $loader"
pass=0; fail=0; skip=0; failed=""
for ctx in $contexts; do
  preload=()
  [ "$ctx" = thread ] && { [ "$loader" = bun ] && preload=(--preload ./_thread-context.ts) || preload=(--import ./_thread-context.ts); }
  for f in "$dest"/[0-9]*.ts "$dest"/quickstart-ts.ts "$dest"/quickstart-js.mjs; do
    file="$(basename "$f")"; name="${file%.*}"
    keep=""
    for part in ${filter//,/ }; do case "$name" in *"$part"*) keep=1 ;; esac; done
    [ -z "$filter" ] || [ -n "$keep" ] || continue
    why="$(printf ' %s ' "$unsupported" | grep -o " $name:[a-z-]*" | head -n 1 | cut -d: -f2)"
    if [ -n "$why" ]; then skip=$((skip + 1)); echo "skip  $ctx  $name  ($loader on $runtime: $why)"; continue; fi
    attempts=1; note=""
    [ "$name" = 02-pool-speedup ] && attempts=3
    for attempt in $(seq 1 "$attempts"); do
      start=$(date +%s%N)
      out="$(cd "$dest" && timeout -k 5 "${ACCEPTANCE_TIMEOUT:-120}" "$bin" "${flags[@]}" "${preload[@]}" "./$file" 2>&1)"
      rc=$?
      ms=$(( ($(date +%s%N) - start) / 1000000 )); secs="$((ms / 1000)).$(( (ms % 1000) / 100 ))"
      [ $rc -eq 0 ] && break
      [ "$attempt" -lt "$attempts" ] && echo "again $ctx  $name  (attempt $attempt of $attempts: $(printf '%s\n' "$out" | grep -m 1 -o 'pool ([0-9.]*s) not faster than sequential ([0-9.]*s)' || echo "exit $rc"))"
    done
    [ "$attempts" -gt 1 ] && [ "$attempt" -gt 1 ] && note=", attempt $attempt of $attempts"
    # the quick start prints its four counts before the OK line appended to it
    case "$name" in quickstart-*) printf '%s\n' "$out" | grep -qF '[ 78498, 148933, 216816, 283146 ]' || rc=99 ;; esac
    if [ $rc -eq 0 ] && printf '%s\n' "$out" | tail -n 1 | grep -q '^OK '; then
      pass=$((pass + 1)); echo "pass  $ctx  $name  (${secs}s$note)"
    elif case "$pending" in *" $name "*) true ;; *) false ;; esac; then
      skip=$((skip + 1)); echo "skip  $ctx  $name  (listed in .ci/acceptance-pending; exit $rc)"
    else
      fail=$((fail + 1)); failed="$failed $ctx/$name"
      echo "FAIL  $ctx  $name  (exit $rc, ${secs}s) — last lines:"
      printf '%s\n' "$out" | tail -n 15 | sed 's/^/      /'
    fi
  done
done
[ $fail -gt 0 ] && echo "failed:$failed"
echo "acceptance-runtimes: $runtime ($version) with $loader"
echo "acceptance: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
