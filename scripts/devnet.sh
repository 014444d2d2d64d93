#!/usr/bin/env bash
# Run a local anvil devnet configured by anvil-config/devnet.env.
#
#   scripts/devnet.sh start [--dir DIR] [--port PORT]   start in the background, print the RPC URL
#   scripts/devnet.sh stop  [--dir DIR]                 stop it (state is not kept)
#   scripts/devnet.sh url   [--dir DIR]                 print the RPC URL of a running devnet
#
# PORT defaults to 0: anvil binds a free port, so any number of devnets run side by side.
# DIR (default .devnet/) holds anvil.pid, anvil.log and rpc-url.
source "$(dirname "$0")/lib.sh"

cmd="${1:-}"
[[ -n "$cmd" ]] && shift
dir="$ROOT/.devnet"
port=0
while (($#)); do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    *) die "unknown argument '$1' (see the header of scripts/devnet.sh)" ;;
  esac
done

running() {
  [[ -f "$dir/anvil.pid" ]] && kill -0 "$(cat "$dir/anvil.pid")" 2>/dev/null
}

case "$cmd" in
  start)
    require_toolchain
    if running; then
      cat "$dir/rpc-url"
      exit 0
    fi
    mkdir -p "$dir"
    rm -f "$dir/rpc-url"
    args=(--host 127.0.0.1 --port "$port" --chain-id "$DEVNET_CHAIN_ID" --mnemonic "$DEVNET_MNEMONIC"
      --accounts "$DEVNET_ACCOUNTS" --balance "$DEVNET_BALANCE_ETH" --hardfork "$DEVNET_HARDFORK")
    [[ -n "$DEVNET_BLOCK_TIME" ]] && args+=(--block-time "$DEVNET_BLOCK_TIME")
    setsid "$ANVIL" "${args[@]}" >"$dir/anvil.log" 2>&1 </dev/null &
    echo $! >"$dir/anvil.pid"
    # anvil prints "Listening on 127.0.0.1:PORT" once it serves RPC (port 0 = its own choice).
    for _ in $(seq 1 100); do
      if addr="$(grep -o 'Listening on [0-9.:]*' "$dir/anvil.log" 2>/dev/null)"; then
        echo "http://${addr#Listening on }" >"$dir/rpc-url"
        cat "$dir/rpc-url"
        exit 0
      fi
      running || die "anvil exited at start: $(tail -1 "$dir/anvil.log")"
      sleep 0.05
    done
    die "anvil did not start listening within 5 s: see $dir/anvil.log"
    ;;
  stop)
    if running; then
      kill "$(cat "$dir/anvil.pid")"
      note "devnet stopped"
    fi
    rm -f "$dir/anvil.pid" "$dir/rpc-url"
    ;;
  url)
    running || die "no devnet runs in $dir: scripts/devnet.sh start"
    cat "$dir/rpc-url"
    ;;
  *)
    die "usage: scripts/devnet.sh start|stop|url [--dir DIR] [--port PORT]"
    ;;
esac
