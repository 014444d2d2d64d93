# shellcheck shell=bash
# Shared helpers for Farthing's scripts. Source it; it sets `set -euo pipefail`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONTRACTS="$ROOT/contracts"
BIN="$CONTRACTS/node_modules/.bin"
ANVIL="$BIN/anvil"
FORGE="$BIN/forge"
CAST="$BIN/cast"
# One cargo target dir outside the clone, shared by every build and CI run on this machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/farthing/target}"

# shellcheck source=../anvil-config/devnet.env
source "$ROOT/anvil-config/devnet.env"

die() {
  echo "error: $*" >&2
  exit 1
}

note() {
  echo "==> $*" >&2
}

require_toolchain() {
  [[ -x "$CAST" && -x "$FORGE" && -x "$ANVIL" ]] || die "the EVM toolchain is not installed: run scripts/setup.sh"
}

# Build the contracts (a no-op in about a second when nothing changed).
build_contracts() {
  require_toolchain
  (cd "$CONTRACTS" && "$FORGE" build --skip test --skip script >/dev/null) \
    || die "forge build failed: run (cd contracts && node_modules/.bin/forge build) to see why"
}

# Build the contracts (the Rust bindings are generated from them), then the farthing binary
# with cargo profile $1 (release or debug, default debug); print the binary's path.
build_farthing() {
  local profile="${1:-debug}" flags=()
  [[ "$profile" == release ]] && flags=(--release)
  note "building the contracts and the farthing binary ($profile)"
  build_contracts
  (cd "$ROOT" && cargo build --quiet "${flags[@]}" -p farthing) >&2 \
    || die "cargo build failed: run (cargo build ${flags[*]} -p farthing) to see why"
  echo "$CARGO_TARGET_DIR/$profile/farthing"
}

# The creation bytecode of a contract from its forge artifact.
artifact_bytecode() {
  local name="$1"
  node -e 'const a = require(process.argv[1]); process.stdout.write(a.bytecode.object)' \
    "$CONTRACTS/out/$name.sol/$name.json"
}

# Fail with one line if the RPC at $1 does not answer; print its chain id.
rpc_chain_id() {
  local url="$1" id
  id="$("$CAST" chain-id --rpc-url "$url" 2>/dev/null)" \
    || die "no chain answers at $url: start one (scripts/devnet.sh start) or pass the right --rpc-url"
  echo "$id"
}

# Convert a decimal token amount ("12.5") to base units of a 6-decimal token ("12500000").
to_base_units() {
  local amount="$1"
  [[ "$amount" =~ ^[0-9]+(\.[0-9]{1,6})?$ ]] \
    || die "amount '$amount' is not a decimal number with at most 6 decimals (e.g. 1000 or 12.5)"
  local whole="${amount%%.*}" frac=""
  [[ "$amount" == *.* ]] && frac="${amount#*.}"
  frac="${frac}000000"
  frac="${frac:0:6}"
  echo "$((10#$whole))$frac" | sed 's/^0*\([0-9]\)/\1/'
}
