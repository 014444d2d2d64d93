#!/usr/bin/env bash
# Install everything Farthing needs from the package registries, idempotently:
#   - Debian: librocksdb-dev (the node links the system RocksDB) and libclang-dev (bindgen);
#     stunnel4 and openssl for the https end-to-end tests (TLS before anvil, a test-made CA);
#     postgresql and etcd-server/etcd-client for the cluster tests (the tests start their own
#     servers on free loopback ports, never the system services), protobuf-compiler for the
#     etcd client's build;
#   - npm (pinned by contracts/package-lock.json): anvil, forge, cast, solc (solcjs),
#     OpenZeppelin, forge-std;
#   - npm (pinned by tests/interop/package-lock.json): the official x402, mppx and MCP clients
#     the interop tests drive; PyPI (tests/interop/requirements.txt): x402-conformance, in
#     tests/interop/.venv.
# A second run with nothing to do takes about a second.
source "$(dirname "$0")/lib.sh"

APT_PACKAGES=(librocksdb-dev libclang-dev stunnel4 openssl postgresql etcd-server etcd-client protobuf-compiler)

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

# The official x402 / MPP / MCP client packages the interop tests drive (pinned by
# tests/interop/package-lock.json), the same way.
INTEROP="$ROOT/tests/interop"
stamp="$INTEROP/node_modules/.farthing-lock-sha"
want="$(sha256sum "$INTEROP/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  note "installing the pinned x402, mppx and MCP clients from npm"
  (cd "$INTEROP" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed in tests/interop/"
  echo "$want" >"$stamp"
fi

# x402-conformance (the x402conf CLI) in tests/interop/.venv, reinstalled when requirements.txt changes.
command -v python3 >/dev/null || die "python3 is missing: install Python 3.10+ (it runs x402conf)"
venv="$INTEROP/.venv"
stamp="$venv/.farthing-req-sha"
want="$(sha256sum "$INTEROP/requirements.txt" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" || ! -x "$venv/bin/x402conf" ]]; then
  note "installing x402-conformance in tests/interop/.venv"
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    pyver="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    note "installing Debian packages: python3-venv python$pyver-venv"
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    { $sudo apt-get update -qq \
      && { DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv "python$pyver-venv" >/dev/null \
        || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null; }; } \
      || note "apt-get install python3-venv failed"
  fi
  rm -rf "$venv"
  if python3 -m venv "$venv"; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$INTEROP/requirements.txt" \
      || die "pip install -r tests/interop/requirements.txt failed"
  else
    # No venv module: install into .venv/site with pip --target and put a wrapper at the same path.
    note "python3 -m venv does not work here: using pip install --target tests/interop/.venv/site"
    rm -rf "$venv"
    mkdir -p "$venv/bin"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$venv/site" -r "$INTEROP/requirements.txt" \
      || die "pip install --target tests/interop/.venv/site failed"
    printf '#!/bin/sh\nPYTHONPATH="%s${PYTHONPATH:+:$PYTHONPATH}" exec "%s" -c "import sys; from x402conf.cli import main; sys.exit(main())" "$@"\n' \
      "$venv/site" "$(command -v python3)" >"$venv/bin/x402conf"
    chmod +x "$venv/bin/x402conf"
  fi
  echo "$want" >"$stamp"
fi

"$ANVIL" --version >/dev/null || die "anvil does not run: delete contracts/node_modules and rerun"
"$FORGE" --version >/dev/null || die "forge does not run: delete contracts/node_modules and rerun"
"$venv/bin/x402conf" --help >/dev/null || die "x402conf does not run: delete tests/interop/.venv and rerun"
note "toolchain ready: $("$FORGE" --version | head -1 | sed 's/ Version://'), solc $("$CONTRACTS/tools/solc" --version | tail -1 | cut -d' ' -f2 | cut -d+ -f1)"
