#!/usr/bin/env bash
# Install everything Farthing needs from the package registries, idempotently:
#   - Debian: librocksdb-dev (the node links the system RocksDB) and libclang-dev (bindgen);
#   - npm (pinned by contracts/package-lock.json): anvil, forge, cast, solc (solcjs),
#     OpenZeppelin, forge-std.
# A second run with nothing to do takes about a second.
source "$(dirname "$0")/lib.sh"

APT_PACKAGES=(librocksdb-dev libclang-dev)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  note "installing Debian packages: ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq || die "apt-get update failed: check the network to the Debian mirror"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi

command -v node >/dev/null || die "node is missing: install Node.js 20+ (it runs solcjs and npm)"
command -v npm >/dev/null || die "npm is missing: install npm"
command -v cargo >/dev/null || die "cargo is missing: install the Rust toolchain"

# npm ci only when the lockfile changed since the last install.
stamp="$CONTRACTS/node_modules/.farthing-lock-sha"
want="$(sha256sum "$CONTRACTS/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" || ! -x "$ANVIL" ]]; then
  note "installing the pinned EVM toolchain from npm"
  (cd "$CONTRACTS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed in contracts/"
  echo "$want" >"$stamp"
fi

"$ANVIL" --version >/dev/null || die "anvil does not run: delete contracts/node_modules and rerun"
"$FORGE" --version >/dev/null || die "forge does not run: delete contracts/node_modules and rerun"
note "toolchain ready: $("$FORGE" --version | head -1 | sed 's/ Version://'), solc $("$CONTRACTS/tools/solc" --version | tail -1 | cut -d' ' -f2 | cut -d+ -f1)"
