#!/usr/bin/env bash
# Deploy MockUSDC and ChannelManager to any EVM chain (or only a ChannelManager for an existing
# token, --token) and write a deployment file that the node and the tests read.
#
#   scripts/deploy.sh [--rpc-url URL] [--private-key KEY | --keystore FILE [--password-file FILE]]
#                     [--chain-id ID] [--out FILE]
#                     [--token ADDRESS | --mock-name NAME --mock-version VERSION]
#                     [--min-period SECS] [--max-period SECS] [--fund ADDRESS=AMOUNT]...
#
#   --rpc-url      chain to deploy to (default: the running devnet, scripts/devnet.sh)
#   --private-key  deployer key (default: env FARTHING_DEPLOYER_KEY; on the devnet chain id
#                  only, anvil's account 0). Prefer the env var: argv is visible to other users.
#   --keystore     the deployer key from an Ethereum JSON keystore instead (the node's will do);
#                  its password from --password-file (first line) or env FARTHING_KEY_PASSWORD
#   --chain-id     refuse to deploy unless the chain has this id (recommended off the devnet)
#   --out          deployment file (default: .devnet/deployment.json)
#   --token        deploy only the ChannelManager, for this existing token (e.g. Circle's USDC):
#                  it must have code, 6 decimals, and an EIP-712 domain (name(), version() or
#                  eip712Domain(), DOMAIN_SEPARATOR()) the node can sign in; no --fund
#   --mock-name    MockUSDC's name and EIP-712 domain name (default "USD Coin"; "USDC" is
#                  Base Sepolia's)
#   --mock-version MockUSDC's EIP-712 domain version (default "2")
#   --min-period, --max-period  the ChannelManager's challenge-period bounds, in seconds
#   --fund         mint AMOUNT MockUSDC (decimal, e.g. 1000 or 12.5) to ADDRESS; repeatable
#
# The deployment file is JSON: chain_id, channel_manager, token, token_decimals, token_name,
# token_version, deployment_block, deployer, min_challenge_period, max_challenge_period.
source "$(dirname "$0")/lib.sh"

rpc_url="" key="${FARTHING_DEPLOYER_KEY:-}" want_chain="" out="$ROOT/.devnet/deployment.json"
token="" mock_name="USD Coin" mock_version="2" mock_named=""
min_period="$DEVNET_MIN_CHALLENGE_PERIOD" max_period="$DEVNET_MAX_CHALLENGE_PERIOD"
fund=() keystore="" password_file=""
while (($#)); do
  case "$1" in
    --rpc-url) rpc_url="$2"; shift 2 ;;
    --private-key) key="$2"; key_given=1; shift 2 ;;
    --keystore) keystore="$2"; shift 2 ;;
    --password-file) password_file="$2"; shift 2 ;;
    --chain-id) want_chain="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --token) token="$2"; shift 2 ;;
    --mock-name) mock_name="$2"; mock_named=1; shift 2 ;;
    --mock-version) mock_version="$2"; mock_named=1; shift 2 ;;
    --min-period) min_period="$2"; shift 2 ;;
    --max-period) max_period="$2"; shift 2 ;;
    --fund) fund+=("$2"); shift 2 ;;
    -h | --help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (scripts/deploy.sh --help)" ;;
  esac
done

require_toolchain
if [[ -n "$token" ]]; then
  ((${#fund[@]} == 0)) \
    || die "--fund mints MockUSDC, which --token does not deploy: fund accounts with the token itself (on a testnet, Circle's faucet)"
  [[ -z "$mock_named" ]] || die "--mock-name and --mock-version name a MockUSDC, which --token does not deploy"
  "$CAST" to-checksum "$token" >/dev/null 2>&1 || die "--token: '$token' is not an address"
fi
if [[ -z "$rpc_url" ]]; then
  [[ -f "$ROOT/.devnet/rpc-url" ]] || die "no --rpc-url given and no devnet running: scripts/devnet.sh start"
  rpc_url="$(cat "$ROOT/.devnet/rpc-url")"
fi
chain_id="$(rpc_chain_id "$rpc_url")"
if [[ -n "$want_chain" && "$chain_id" != "$want_chain" ]]; then
  die "the chain at $rpc_url has id $chain_id, not $want_chain: check --rpc-url"
fi
if [[ -n "$keystore" ]]; then
  [[ -z "${key_given:-}" ]] || die "--private-key and --keystore both name a deployer key: give one"
  [[ -f "$keystore" ]] || die "--keystore: no file at $keystore"
  if [[ -z "$password_file" ]]; then
    [[ -n "${FARTHING_KEY_PASSWORD:-}" ]] \
      || die "the keystore $keystore needs a password: --password-file FILE or the FARTHING_KEY_PASSWORD environment variable"
    secrets="$(mktemp -d)"
    trap 'rm -rf "$secrets"' EXIT
    (umask 077 && printf '%s' "$FARTHING_KEY_PASSWORD" >"$secrets/password")
    password_file="$secrets/password"
  fi
  [[ -f "$password_file" ]] || die "--password-file: no file at $password_file"
  signer=(--keystore "$keystore" --password-file "$password_file")
  deployer="$("$CAST" wallet address "${signer[@]}" 2>/dev/null)" \
    || die "cannot decrypt the keystore $keystore: wrong password or not an Ethereum keystore"
else
  if [[ -z "$key" ]]; then
    [[ "$chain_id" == "$DEVNET_CHAIN_ID" ]] \
      || die "no deployer key: set FARTHING_DEPLOYER_KEY, or pass --private-key or --keystore (devnet keys are only used on chain $DEVNET_CHAIN_ID)"
    key="$DEVNET_DEPLOYER_KEY"
  fi
  signer=(--private-key "$key")
  deployer="$("$CAST" wallet address "${signer[@]}" 2>/dev/null)" \
    || die "the deployer key is not a valid secp256k1 private key (64 hex digits)"
fi
balance="$("$CAST" balance "$deployer" --rpc-url "$rpc_url")"
[[ "$balance" != "0" ]] || die "the deployer $deployer has no ether on chain $chain_id: fund it, then rerun"
# Check every --fund entry before anything is sent.
fund_to=() fund_units=()
for entry in "${fund[@]}"; do
  [[ "$entry" == *=* ]] || die "--fund takes ADDRESS=AMOUNT, got '$entry'"
  who="${entry%%=*}"
  "$CAST" to-checksum "$who" >/dev/null 2>&1 || die "--fund: '$who' is not an address"
  fund_to+=("$who")
  fund_units+=("$(to_base_units "${entry#*=}")")
done

# token_call SIG : the token's answer to the view call SIG (e.g. "name()(string)"), decoded;
# fails when the call reverts.
token_call() {
  local out
  out="$("$CAST" call --json "$token" "$1" --rpc-url "$rpc_url" 2>/dev/null)" || return 1
  node -e 'const v = JSON.parse(require("fs").readFileSync(0))[+process.argv[1]]; process.stdout.write(String(v))' \
    "${2:-0}" <<<"$out"
}

# Read the token's decimals and EIP-712 domain into decimals, token_name, token_version; refuse
# a token the node cannot use (no code, not 6 decimals, a domain it cannot sign in).
read_token() {
  [[ "$("$CAST" code "$token" --rpc-url "$rpc_url")" != "0x" ]] \
    || die "no contract at --token $token on chain $chain_id: check the address and the chain"
  decimals="$(token_call "decimals()(uint8)")" \
    || die "the token at $token has no decimals(): not an ERC-20, check --token"
  [[ "$decimals" == 6 ]] \
    || die "the token at $token has $decimals decimals, Farthing's channels take a 6-decimal token (USDC): check --token"
  token_name="$(token_call "name()(string)")" || die "the token at $token has no name(): check --token"
  token_version="$(token_call "version()(string)")" \
    || token_version="$(token_call "eip712Domain()(bytes1,string,string,uint256,address,bytes32,uint256[])" 2)" \
    || die "the token at $token has neither version() nor eip712Domain(): the node cannot sign permits or authorizations for it"
  local separator expected
  separator="$(token_call "DOMAIN_SEPARATOR()(bytes32)")" \
    || die "the token at $token has no DOMAIN_SEPARATOR(): the node cannot sign permits or authorizations for it"
  expected="$("$CAST" keccak "$("$CAST" abi-encode "f(bytes32,bytes32,bytes32,uint256,address)" \
    "$("$CAST" keccak "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")" \
    "$("$CAST" keccak "$("$CAST" from-utf8 "$token_name")")" \
    "$("$CAST" keccak "$("$CAST" from-utf8 "$token_version")")" \
    "$chain_id" "$token")")"
  [[ "$separator" == "$expected" ]] \
    || die "the token at $token has DOMAIN_SEPARATOR() $separator, but its name \"$token_name\" and version \"$token_version\" on chain $chain_id hash to $expected: the node cannot sign in its domain"
}

# Check an existing token before anything is sent.
if [[ -n "$token" ]]; then
  read_token
  note "token          $token ($token_name, version $token_version, $decimals decimals)"
fi

build_contracts

# send ARGS... : a transaction from the deployer; prints the receipt as JSON.
send() {
  local receipt
  receipt="$("$CAST" send --rpc-url "$rpc_url" "${signer[@]}" --json "$@" 2>&1)" \
    || die "transaction failed: $(echo "$receipt" | grep -v '^\s*$' | tail -1)"
  echo "$receipt"
}
json_field() { node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(0))[process.argv[1]]))' "$1"; }

# deploy NAME CONSTRUCTOR_SIG ARGS... : prints "address block"
deploy() {
  local name="$1" sig="$2"
  shift 2
  local args receipt
  args="$("$CAST" abi-encode "$sig" "$@")"
  receipt="$(send --create "$(artifact_bytecode "$name")${args#0x}")"
  echo "$(echo "$receipt" | json_field contractAddress) $(($(echo "$receipt" | json_field blockNumber)))"
}

first_block=""
if [[ -z "$token" ]]; then
  read -r token first_block < <(deploy MockUSDC "constructor(address,string,string)" "$deployer" "$mock_name" "$mock_version")
  read_token
  note "MockUSDC       $token ($token_name, version $token_version)"
fi
read -r manager manager_block < <(deploy ChannelManager "constructor(uint32,uint32)" "$min_period" "$max_period")
note "ChannelManager $manager (block $manager_block)"

if ((${#fund[@]})); then
  send "$token" "configureMinter(address,uint256)" "$deployer" "$(
    "$CAST" max-uint
  )" >/dev/null
  for i in "${!fund_to[@]}"; do
    send "$token" "mint(address,uint256)" "${fund_to[$i]}" "${fund_units[$i]}" >/dev/null
    note "minted ${fund[$i]#*=} USDC to ${fund_to[$i]}"
  done
fi

mkdir -p "$(dirname "$out")"
# node writes the JSON: the token's name is a string from the chain and may need escaping.
node -e '
  const [chain, manager, token, decimals, name, version, block, deployer, min, max] = process.argv.slice(1);
  process.stdout.write(JSON.stringify({
    chain_id: +chain, channel_manager: manager, token, token_decimals: +decimals,
    token_name: name, token_version: version, deployment_block: +block, deployer,
    min_challenge_period: +min, max_challenge_period: +max,
  }, null, 2) + "\n");
' "$chain_id" "$manager" "$token" "$decimals" "$token_name" "$token_version" \
  "${first_block:-$manager_block}" "$deployer" "$min_period" "$max_period" >"$out"
note "deployment written to $out"
