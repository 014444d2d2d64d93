#!/usr/bin/env bash
# The mission in one run, from a fresh machine: a seller's API (articles and a data endpoint)
# priced per request behind `farthing gateway`, paid by an agent with `farthing fetch` over a
# payment channel, and by the official x402 client with an on-chain EIP-3009 transfer:
#   1. the agent's node (alice) fetches an article: no channel to the seller (bob) yet, so the
#      402 tells it where bob's node is; it links, opens a 5 USDC channel, pays 0.001, reads;
#   2. the agent refuses a price over its limit (nothing is paid);
#   3. the agent reads 2,000 articles, 8 at a time, each paid up front over the channel (a live
#      line of requests/s and what was paid);
#   4. credentials: alice gives an agent a credential with a day budget (0.01); the agent
#      derives a smaller one (0.004) offline for a sub-agent; both pay bob until refused at
#      their budgets; revoking the agent's locks the sub-agent out too;
#   5. an official x402 client (@x402/fetch + @x402/evm, `exact`) buys the data 3 times, one
#      on-chain transfer each; its replayed payment header is refused;
#   6. alice's node closes the channel cooperatively; every balance is checked on-chain to the
#      unit.
# For the channel mechanics alone (unilateral close, settle, withdraw, two-way streams), see
# scripts/demo-channels.sh.
#
#   scripts/demo.sh [--keep]     --keep leaves the devnet, the nodes and the gateway running
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
# The x402 client's payer: a fresh key with tokens and no ether (EIP-3009 is gasless for it).
carol_key="0x$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
carol="$("$CAST" wallet address --private-key "$carol_key")"
"$ROOT/scripts/deploy.sh" --rpc-url "$rpc" --fund "$alice=100" --fund "$carol=10"
deployment="$ROOT/.devnet/deployment.json"
field() { node -e 'process.stdout.write(String(require(process.argv[1])[process.argv[2]]))' "$deployment" "$1"; }
token="$(field token)"
usdc() { "$CAST" call "$token" "balanceOf(address)(uint256)" "$1" --rpc-url "$rpc" | cut -d' ' -f1 | awk '{printf "%.6f", $1 / 1e6}'; }
check_balance() { [[ "$(usdc "$1")" == "$2" ]] || die "$3 has $(usdc "$1") USDC, expected $2"; }

pids=()
$keep || trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; "$ROOT/scripts/devnet.sh" stop >/dev/null' EXIT
# wait_for FILE TEXT PID WHAT: until FILE holds TEXT (the process must stay alive).
wait_for() {
  for _ in $(seq 1 150); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || die "$4 did not start: $(tail -2 "$1")"
    sleep 0.1
  done
  die "$4 did not start in 15 s: $(tail -2 "$1")"
}
# start_node NAME ACCOUNT: a farthing node in the background; sets NAME_url, NAME_peers.
start_node() {
  local name="$1" account="$2"
  rm -rf "$ROOT/.devnet/$name"
  "$farthing" --data-dir "$ROOT/.devnet/$name" node --dev "$account" --rpc-url "$rpc" --deployment "$deployment" \
    --rpc-listen 127.0.0.1:0 --peer-listen 127.0.0.1:0 --log-level warn \
    >"$ROOT/.devnet/$name.out" 2>"$ROOT/.devnet/$name.log" &
  pids+=("$!")
  wait_for "$ROOT/.devnet/$name.out" "listening on" "$!" "$name's node"
  read -r _ _ _ _ _ peers _ _ url <"$ROOT/.devnet/$name.out"
  printf -v "${name}_url" 'http://%s' "$url"
  printf -v "${name}_peers" '%s' "$peers"
}
start_node bob 2
start_node alice 1

node "$ROOT/scripts/seller-api.mjs" >"$ROOT/.devnet/api.out" 2>&1 &
pids+=("$!")
wait_for "$ROOT/.devnet/api.out" "seller API on" "$!" "the seller's API"
api="$(awk '{print $4}' "$ROOT/.devnet/api.out")"
"$farthing" --data-dir "$ROOT/.devnet/bob" --node-url "$bob_url" gateway --listen 127.0.0.1:0 \
  --upstream "$api" --peer "$bob@$bob_peers" --suggested-deposit 5 \
  --route "GET /articles/*=0.001" --route "GET /data=0.002" --free "GET /health" \
  2>"$ROOT/.devnet/gateway.log" &
pids+=("$!")
wait_for "$ROOT/.devnet/gateway.log" "gateway listening on" "$!" "the gateway"
gw="$(grep -o 'http://[0-9.:]*' "$ROOT/.devnet/gateway.log" | head -1)"
note "bob sells: his API at $api, priced by the gateway at $gw — GET /articles/* 0.001 USDC, GET /data 0.002 USDC, /health free"
cli() { "$farthing" --data-dir "$ROOT/.devnet/alice" --node-url "$alice_url" "$@"; }
echo "the 402 an unpaid request gets (x402 PAYMENT-REQUIRED + MPP WWW-Authenticate):"
curl -s -D - -o /dev/null "$gw/articles/1" | grep -iE '^(HTTP|payment-required|www-authenticate)' | cut -c1-110 | sed 's/$/…/'

note "1. the agent (alice's node) fetches an article; its node has no channel to bob: the 402 says where his node is, so it links, opens one with 5 USDC, pays 0.001 and reads"
cli fetch "$gw/articles/1" --max-price 0.01
check_balance "$alice" 95.000000 alice

note "2. /data costs 0.002; the agent allows at most 0.001: refused, nothing paid"
if cli fetch "$gw/data" --max-price 0.001 2>"$ROOT/.devnet/refused.err"; then
  die "a price over the limit was paid"
fi
echo "refused: $(cat "$ROOT/.devnet/refused.err")"

note "3. the agent reads 2,000 articles, 8 at a time, each paid up front over the channel"
cli fetch "$gw/articles/{i}" --max-price 0.01 --count 2000 --concurrency 8

note "4. credentials: alice's operator gives an agent 0.01 a day (at most 0.005 a payment, pay and fetch only); the agent derives 0.004 a day for a sub-agent, offline"
creds="$ROOT/.devnet/creds"
rm -rf "$creds" && mkdir -p "$creds"
cli credential create --label agent --scope pay,fetch --day 0.01 --max 0.005 --expires 1h --out "$creds/agent.cred"
cli credential derive --from "$creds/agent.cred" --day 0.004 --out "$creds/sub.cred"
# refused_pay WHO AMOUNT: the payment must be refused; print why.
refused_pay() {
  if cli --credential-file "$creds/$1.cred" pay "$bob" "$2" 2>"$creds/refused.err" >/dev/null; then
    die "$1's payment of $2 over its budget was paid"
  fi
  echo "$1 refused: $(cat "$creds/refused.err")"
}
cli --credential-file "$creds/sub.cred" pay "$bob" 0.002
cli --credential-file "$creds/sub.cred" pay "$bob" 0.002
refused_pay sub 0.002
cli --credential-file "$creds/agent.cred" pay "$bob" 0.005
refused_pay agent 0.005
cli --credential-file "$creds/agent.cred" pay "$bob" 0.001
agent_id="$(cli --credential-file "$creds/agent.cred" --json credential show | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0)).id)')"
cli credential revoke "$agent_id"
if cli --credential-file "$creds/sub.cred" pay "$bob" 0.001 2>"$creds/refused.err"; then
  die "a credential derived from a revoked one still pays"
fi
echo "sub-agent after the revocation: $(cat "$creds/refused.err")"

note "5. an official x402 client (@x402/fetch + @x402/evm, scheme exact) buys /data 3 times: one EIP-3009 transfer each, bob's node submits them"
(cd "$ROOT/tests/interop" && URL="$gw/data" BUYER_KEY="$carol_key" CHAIN_ID="$DEVNET_CHAIN_ID" ASSET="$token" \
  MAX_ATOMIC=2000 COUNT=3 node x402-pay.mjs) >"$ROOT/.devnet/x402.json" || die "the x402 client failed"
node -e '
  const out = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  for (const r of out.results) console.log(`HTTP ${r.status} ${r.body.trim()} tx ${r.paymentResponse?.transaction}`);
  console.log(`the same PAYMENT-SIGNATURE again: HTTP ${out.replay.status}`);
  if (out.results.some(r => r.status !== 200) || out.replay.status !== 402) process.exit(1);
' "$ROOT/.devnet/x402.json" || die "the x402 client was not served as expected"

note "6. alice's node closes the channel cooperatively: one transaction pays both"
cli channel close 1 >/dev/null
for _ in $(seq 1 50); do
  cli --json channel get 1 | grep -q '"state": "settled"' && break
  sleep 0.1
done
cli channel list
check_balance "$alice" 97.989000 alice
check_balance "$bob" 2.017000 bob
check_balance "$carol" 9.994000 carol
echo "alice (agent): $(usdc "$alice") USDC    bob (seller): $(usdc "$bob") USDC    carol (x402 client): $(usdc "$carol") USDC"
echo "2,001 articles at 0.001 + 0.01 paid by the agents over the channel + 3 data at 0.002 on-chain = 2.017 USDC earned: exact to the unit"
note "demo done: balances exact"
if $keep; then
  note "left running: devnet $rpc, gateway $gw, alice's node $alice_url (data dir .devnet/alice)"
fi
