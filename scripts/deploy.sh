#!/usr/bin/env bash
# Deploy MockUSDC and ChannelManager to any EVM chain and write a deployment file that the
# node and the tests read.
#
#   scripts/deploy.sh [--rpc-url URL] [--private-key KEY] [--chain-id ID] [--out FILE]
#                     [--token ADDRESS] [--min-period SECS] [--max-period SECS]
#                     [--fund ADDRESS=AMOUNT]...
#
#   --rpc-url      chain to deploy to (default: the running devnet, scripts/devnet.sh)
#   --private-key  deployer key (default: env FARTHING_DEPLOYER_KEY; on the devnet chain id
#                  only, anvil's account 0). Prefer the env var: argv is visible to other users.
#   --chain-id     refuse to deploy unless the chain has this id (recommended off the devnet)
#   --out          deployment file (default: .devnet/deployment.json)
#   --token        use this existing ERC-20 (e.g. a testnet USDC) instead of deploying MockUSDC
#   --fund         mint AMOUNT MockUSDC (decimal, e.g. 1000 or 12.5) to ADDRESS; repeatable
#
# The deployment file is JSON: chain_id, channel_manager, token, token_decimals,
# deployment_block, deployer, min_challenge_period, max_challenge_period.
source "$(dirname "$0")/lib.sh"

rpc_url="" key="${FARTHING_DEPLOYER_KEY:-}" want_chain="" out="$ROOT/.devnet/deployment.json"
token="" min_period="$DEVNET_MIN_CHALLENGE_PERIOD" max_period="$DEVNET_MAX_CHALLENGE_PERIOD"
fund=()
while (($#)); do
  case "$1" in
    --rpc-url) rpc_url="$2"; shift 2 ;;
    --private-key) key="$2"; shift 2 ;;
    --chain-id) want_chain="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --token) token="$2"; shift 2 ;;
    --min-period) min_period="$2"; shift 2 ;;
    --max-period) max_period="$2"; shift 2 ;;
    --fund) fund+=("$2"); shift 2 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (scripts/deploy.sh --help)" ;;
  esac
done

require_toolchain
if [[ -z "$rpc_url" ]]; then
  [[ -f "$ROOT/.devnet/rpc-url" ]] || die "no --rpc-url given and no devnet running: scripts/devnet.sh start"
  rpc_url="$(cat "$ROOT/.devnet/rpc-url")"
fi
chain_id="$(rpc_chain_id "$rpc_url")"
if [[ -n "$want_chain" && "$chain_id" != "$want_chain" ]]; then
  die "the chain at $rpc_url has id $chain_id, not $want_chain: check --rpc-url"
fi
if [[ -z "$key" ]]; then
  [[ "$chain_id" == "$DEVNET_CHAIN_ID" ]] \
    || die "no deployer key: set FARTHING_DEPLOYER_KEY or pass --private-key (devnet keys are only used on chain $DEVNET_CHAIN_ID)"
  key="$DEVNET_DEPLOYER_KEY"
fi
deployer="$("$CAST" wallet address --private-key "$key" 2>/dev/null)" \
  || die "the deployer key is not a valid secp256k1 private key (64 hex digits)"
balance="$("$CAST" balance "$deployer" --rpc-url "$rpc_url")"
[[ "$balance" != "0" ]] || die "the deployer $deployer has no ether on chain $chain_id: fund it, then rerun"
[[ -z "$token" || ${#fund[@]} -eq 0 ]] || die "--fund mints MockUSDC and cannot be used with --token"
# Check every --fund entry before anything is sent.
fund_to=() fund_units=()
for entry in "${fund[@]}"; do
  [[ "$entry" == *=* ]] || die "--fund takes ADDRESS=AMOUNT, got '$entry'"
  who="${entry%%=*}"
  "$CAST" to-checksum "$who" >/dev/null 2>&1 || die "--fund: '$who' is not an address"
  fund_to+=("$who")
  fund_units+=("$(to_base_units "${entry#*=}")")
done

build_contracts

# send ARGS... : a transaction from the deployer; prints the receipt as JSON.
send() {
  local receipt
  receipt="$("$CAST" send --rpc-url "$rpc_url" --private-key "$key" --json "$@" 2>&1)" \
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

if [[ -z "$token" ]]; then
  read -r token first_block < <(deploy MockUSDC "constructor(address)" "$deployer")
  note "MockUSDC       $token"
else
  [[ "$("$CAST" code "$token" --rpc-url "$rpc_url")" != "0x" ]] || die "no contract at --token $token on chain $chain_id"
  first_block=""
fi
read -r manager manager_block < <(deploy ChannelManager "constructor(uint32,uint32)" "$min_period" "$max_period")
note "ChannelManager $manager (block $manager_block)"
decimals="$("$CAST" call "$token" "decimals()(uint8)" --rpc-url "$rpc_url")"

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
cat >"$out" <<JSON
{
  "chain_id": $chain_id,
  "channel_manager": "$manager",
  "token": "$token",
  "token_decimals": $decimals,
  "deployment_block": ${first_block:-$manager_block},
  "deployer": "$deployer",
  "min_challenge_period": $min_period,
  "max_challenge_period": $max_period
}
JSON
note "deployment written to $out"
