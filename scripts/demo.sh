#!/usr/bin/env bash
# The whole devnet story, from a fresh machine: install the toolchain, build, start anvil,
# deploy MockUSDC + ChannelManager, fund two parties, check the deployment with the farthing
# binary, then open a channel, sign a balance proof off-chain, and close cooperatively in one
# transaction, printing the on-chain balances.
#
#   scripts/demo.sh [--keep]     --keep leaves the devnet running afterwards
#
# Until the node daemon lands (issue 3), the channel steps are driven with cast.
source "$(dirname "$0")/lib.sh"

keep=false
[[ "${1:-}" == "--keep" ]] && keep=true

"$ROOT/scripts/setup.sh"
note "building the contracts and the farthing binary"
build_contracts
(cd "$ROOT" && cargo build --quiet -p farthing) || die "cargo build failed"
farthing="$CARGO_TARGET_DIR/debug/farthing"

"$ROOT/scripts/devnet.sh" stop >/dev/null
rpc="$("$ROOT/scripts/devnet.sh" start)"
$keep || trap '"$ROOT/scripts/devnet.sh" stop >/dev/null' EXIT
note "devnet running at $rpc (chain $DEVNET_CHAIN_ID)"

alice="$("$CAST" wallet address --private-key "$DEVNET_ALICE_KEY")"
bob="$("$CAST" wallet address --private-key "$DEVNET_BOB_KEY")"
"$ROOT/scripts/deploy.sh" --rpc-url "$rpc" --fund "$alice=1000" --fund "$bob=1000"
deployment="$ROOT/.devnet/deployment.json"
"$farthing" check --deployment "$deployment" --rpc-url "$rpc"

field() { node -e 'process.stdout.write(String(require(process.argv[1])[process.argv[2]]))' "$deployment" "$1"; }
manager="$(field channel_manager)"
token="$(field token)"
usdc() { "$CAST" call "$token" "balanceOf(address)(uint256)" "$1" --rpc-url "$rpc" | cut -d' ' -f1 | awk '{printf "%.6f", $1 / 1e6}'; }
send() {
  local key="$1"
  shift
  "$CAST" send --rpc-url "$rpc" --private-key "$key" "$@" >/dev/null || die "transaction failed: $*"
}
# sign KEY TYPE FIELDS MESSAGE: EIP-712 signature in the ChannelManager's domain.
sign() {
  local key="$1" type="$2" fields="$3" message="$4"
  "$CAST" wallet sign --private-key "$key" --data "{
    \"types\": {
      \"EIP712Domain\": [{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"version\",\"type\":\"string\"},
                         {\"name\":\"chainId\",\"type\":\"uint256\"},{\"name\":\"verifyingContract\",\"type\":\"address\"}],
      \"$type\": $fields
    },
    \"primaryType\": \"$type\",
    \"domain\": {\"name\":\"Farthing\",\"version\":\"1\",\"chainId\":$DEVNET_CHAIN_ID,\"verifyingContract\":\"$manager\"},
    \"message\": $message
  }"
}

echo
echo "alice $alice: $(usdc "$alice") USDC    bob $bob: $(usdc "$bob") USDC"
note "alice opens a channel to bob and funds it with 100 USDC (approve + open)"
send "$DEVNET_ALICE_KEY" "$token" "approve(address,uint256)" "$manager" 100000000
send "$DEVNET_ALICE_KEY" "$manager" "open(address,address,uint256,uint32)" "$token" "$bob" 100000000 3600
id="$("$CAST" call "$manager" "channelCount()(uint256)" --rpc-url "$rpc")"
echo "channel $id: holdings $("$CAST" call "$manager" "holdings(uint256)(uint256)" "$id" --rpc-url "$rpc" | cut -d' ' -f1) base units"

note "off-chain: alice pays bob 12.5 USDC in 5 payments; her 5th balance proof says so"
proof_sig="$(sign "$DEVNET_ALICE_KEY" BalanceProof \
  '[{"name":"channelId","type":"uint256"},{"name":"nonce","type":"uint64"},{"name":"transferred","type":"uint128"}]' \
  "{\"channelId\":\"$id\",\"nonce\":\"5\",\"transferred\":\"12500000\"}")"
echo "BalanceProof{channel $id, nonce 5, transferred 12.5 USDC} signed by alice: ${proof_sig:0:22}..."

note "both sign the final payouts; bob submits the cooperative close (one transaction)"
fields='[{"name":"channelId","type":"uint256"},{"name":"payoutA","type":"uint256"},{"name":"payoutB","type":"uint256"},
         {"name":"withdrawnA","type":"uint96"},{"name":"withdrawnB","type":"uint96"}]'
message="{\"channelId\":\"$id\",\"payoutA\":\"87500000\",\"payoutB\":\"12500000\",\"withdrawnA\":\"0\",\"withdrawnB\":\"0\"}"
sig_a="$(sign "$DEVNET_ALICE_KEY" CooperativeClose "$fields" "$message")"
sig_b="$(sign "$DEVNET_BOB_KEY" CooperativeClose "$fields" "$message")"
send "$DEVNET_BOB_KEY" "$manager" "cooperativeClose(uint256,uint256,uint256,bytes,bytes)" "$id" 87500000 12500000 "$sig_a" "$sig_b"

a_end="$(usdc "$alice")"
b_end="$(usdc "$bob")"
echo "alice: $a_end USDC    bob: $b_end USDC    (channel $id settled)"
[[ "$a_end" == "987.500000" && "$b_end" == "1012.500000" ]] || die "unexpected final balances"
note "demo done: balances exact"
$keep && note "devnet left running at $rpc; stop it with scripts/devnet.sh stop"
