#!/usr/bin/env bash
# Build the farthing binary from a fresh clone: the toolchain (scripts/setup.sh), the
# contracts (the Rust bindings are generated from forge's output, so they come first), then
# cargo. Prints the binary's path on stdout; progress goes to stderr.
#
#   scripts/build.sh [--debug]     a release build unless --debug
source "$(dirname "$0")/lib.sh"

profile=release
case "${1:-}" in
  "") ;;
  --debug) profile=debug ;;
  *) die "unknown argument '$1' (scripts/build.sh [--debug])" ;;
esac

"$ROOT/scripts/setup.sh"
build_farthing "$profile"
