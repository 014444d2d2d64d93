#!/usr/bin/env bash
# The benchmark from a fresh clone: toolchain, contracts, release build (scripts/build.sh),
# then `farthing bench` with the flags given (its own anvil, contracts and two nodes; README
# "Benchmark" lists the flags and what it reports). Progress on stderr; the report (--json:
# one JSON object) on stdout.
#
#   scripts/bench.sh [--json] [--payments N | --duration SECS] [--concurrency C] ...
source "$(dirname "$0")/lib.sh"

farthing="$("$ROOT/scripts/build.sh")"
# The bench's default anvil is contracts/node_modules/.bin/anvil, relative to the clone.
cd "$ROOT"
exec "$farthing" bench "$@"
