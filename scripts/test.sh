#!/usr/bin/env bash
# Every test Farthing has, from a fresh machine: toolchain setup, contract formatting, build and
# tests (unit, table-driven, fuzz, invariants), Rust formatting and lints, and the Rust tests,
# including end-to-end tests that start their own anvil on a free port.
#
#   scripts/test.sh
source "$(dirname "$0")/lib.sh"

"$ROOT/scripts/setup.sh"

note "contracts: forge fmt --check, forge build, forge test"
cd "$CONTRACTS"
"$FORGE" fmt --check || die "Solidity is not formatted: run (cd contracts && node_modules/.bin/forge fmt)"
"$FORGE" build
"$FORGE" test

note "rust: cargo fmt --check, clippy, cargo test --workspace"
cd "$ROOT"
cargo fmt --all --check || die "Rust is not formatted: run cargo fmt --all"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The end-to-end tests run the real `farthing` binary as child processes: `cargo test` alone
# builds only test harnesses, so build the binary first (a fresh target dir has none).
cargo build -p farthing
cargo test --workspace
note "all tests passed"
