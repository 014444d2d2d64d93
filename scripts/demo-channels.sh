#!/usr/bin/env bash
# The whole devnet story, from a fresh machine: install the toolchain, build, start anvil,
# deploy MockUSDC + ChannelManager, fund alice and bob, start bob's and alice's Farthing nodes
# (alice's links to bob's over their authenticated peer link), then:
#   1. through alice's node (the farthing CLI): open a channel, top it up, close it
#      unilaterally, let the challenge period pass, settle — every unit comes back;
#   2. alice's node opens a second channel and streams 10,000 payments of 0.001 USDC to bob's
#      node (live progress line: count, rate, balances) while bob's node pays 2,000 of 0.0005
#      back, each acknowledged by the partner's node once durable; bob's node withdraws 2 USDC
#      co-signed by alice's node while the channel stays open; alice's node closes it
#      cooperatively over the link (bob's node checks and co-signs the payouts): one
#      transaction pays both.
# The on-chain balances are printed and checked at every step.
#
#   scripts/demo.sh [--keep]     --keep leaves the devnet and the node running afterwards
source "$(dirname "$0")/lib.sh"

keep=false
[[ "${1:-}" == "--keep" ]] && keep=true

"$ROOT/scripts/setup.sh"
farthing="$(build_farthing debug)"

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

# start_node NAME ACCOUNT [FLAGS...]: a farthing node in the background; sets NAME_url, NAME_peers.
pids=()
$keep || trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; "$ROOT/scripts/devnet.sh" stop >/dev/null' EXIT
start_node() {
  local name="$1" account="$2"
  shift 2
  rm -rf "$ROOT/.devnet/$name"
  "$farthing" --data-dir "$ROOT/.devnet/$name" node --dev "$account" --rpc-url "$rpc" --deployment "$deployment" \
    --rpc-listen 127.0.0.1:0 --peer-listen 127.0.0.1:0 --log-level warn "$@" \
    >"$ROOT/.devnet/$name.out" 2>"$ROOT/.devnet/$name.log" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 100); do
    grep -q "listening on" "$ROOT/.devnet/$name.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || die "$name's node did not start: $(tail -1 "$ROOT/.devnet/$name.log")"
    sleep 0.1
  done
  read -r _ _ _ _ _ peers _ _ url <"$ROOT/.devnet/$name.out"
  printf -v "${name}_url" 'http://%s' "$url"
  printf -v "${name}_peers" '%s' "$peers"
}
start_node bob 2
start_node alice 1 --connect "$bob@$bob_peers"
node_url="$alice_url"
node_dir="$ROOT/.devnet/alice"
cli() { "$farthing" --data-dir "$node_dir" --node-url "$node_url" "$@"; }
bob_cli() { "$farthing" --data-dir "$ROOT/.devnet/bob" --node-url "$bob_url" "$@"; }
check_balance() { [[ "$(usdc "$1")" == "$2" ]] || die "$3 has $(usdc "$1") USDC, expected $2"; }

echo
cli info
echo "alice $alice: $(usdc "$alice") USDC    bob $bob: $(usdc "$bob") USDC"

note "1. alice's node opens a 100 USDC channel to bob (one transaction: permit, no approve), tops it up by 10"
cli channel open "$bob" 100 --challenge-period 600 >/dev/null
cli channel top-up 1 10 >/dev/null
cli channel list
check_balance "$alice" 890.000000 alice
note "the node closes unilaterally; the 600 s challenge period passes (anvil's clock); the node settles"
cli channel close 1 >/dev/null
"$CAST" rpc evm_increaseTime 601 --rpc-url "$rpc" >/dev/null
"$CAST" rpc evm_mine --rpc-url "$rpc" >/dev/null
cli channel settle 1
check_balance "$alice" 1000.000000 alice
echo "alice: $(usdc "$alice") USDC (every unit back)"

note "2. the node opens channel 2 with 100 USDC; the nodes pay each other over their peer link"
cli channel open "$bob" 100 >/dev/null
id=2
# The first payment waits for bob's node to know the channel and the link to be up; its
# idempotency key makes the retries pay once.
for _ in $(seq 1 100); do
  cli pay "$id" 0.001 --idempotency-key demo-first >/dev/null 2>&1 && break
  sleep 0.1
done
bob_cli channel top-up "$id" 5 >/dev/null
check_balance "$bob" 995.000000 bob
note "bob's node funded its side with 5 USDC; alice's node streams 9,999 payments of 0.001 USDC (16 in flight) while bob's node pays back 2,000 of 0.0005; each is acknowledged by the partner's node once durable"
bob_cli pay "$id" 0.0005 --count 2000 --concurrency 4 --idempotency-key demo-back >"$ROOT/.devnet/bob-stream.out" 2>"$ROOT/.devnet/bob-stream.err" &
back=$!
cli pay "$id" 0.001 --count 9999 --concurrency 16 --idempotency-key demo
wait "$back" || die "bob's payments failed: $(tail -1 "$ROOT/.devnet/bob-stream.err")"
echo "bob's node: $(head -1 "$ROOT/.devnet/bob-stream.out")"
bob_cli channel list
note "bob's node withdraws 2 USDC while the channel stays open: alice's node checks it against its own books and co-signs"
bob_cli channel withdraw "$id" 2 >/dev/null
check_balance "$bob" 997.000000 bob
echo "bob: $(usdc "$bob") USDC"
note "alice's node closes: bob's node checks the payouts against its own balances and co-signs over the link; one transaction pays both"
cli channel close "$id" >/dev/null
for _ in $(seq 1 50); do
  cli --json channel get "$id" | grep -q '"state": "settled"' && break
  sleep 0.1
done
cli channel list
check_balance "$alice" 991.000000 alice
check_balance "$bob" 1009.000000 bob
echo "alice: $(usdc "$alice") USDC    bob: $(usdc "$bob") USDC    (10 paid, 1 paid back: exact to the unit)"
note "demo done: balances exact"
if $keep; then
  note "devnet at $rpc and alice's node at $node_url left running (data dir $node_dir)"
fi
