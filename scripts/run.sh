#!/usr/bin/env bash
# `make run`: the local stack on embedded defaults. Starts a private nats-server with JetStream
# storing in .run/nats (never the one that may already listen on 4222), the router with its
# SQLite projection in .run/, the gateway, the dialer with the sandbox carrier, loads the
# demo tenant `acme` (deploy/demo/acme.json) and prints how to place a call. Ctrl-C stops everything; data stays in .run/ for the next run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
run_dir="${1:-$root/.run}"
port="${SWITCHBOARD_NATS_PORT:-14222}"
router_http="${SWITCHBOARD_ROUTER_HTTP:-127.0.0.1:18080}"
gateway_http="${SWITCHBOARD_GATEWAY_HTTP:-127.0.0.1:18081}"
dialer_http="${SWITCHBOARD_DIALER_HTTP:-127.0.0.1:18082}"
mkdir -p "$run_dir/nats"
cd "$root"

echo "building the services..."
cargo build --quiet -p switchboard-router -p switchboard-gateway -p switchboard-dialer -p switchboard-cli
bin="$root/target/debug"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait || true; }
trap cleanup EXIT INT TERM

"$root/.tools/bin/nats-server" -js -a 127.0.0.1 -p "$port" -sd "$run_dir/nats" -n switchboard-local \
  -l "$run_dir/nats-server.log" &
pids+=($!)
export NATS_URL="nats://127.0.0.1:$port"

wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then echo "timed out waiting for $what" >&2; exit 1; fi
    sleep 0.2
  done
}
ready() { # ready HOST:PORT — /readyz answers 200
  exec 3<>"/dev/tcp/${1%:*}/${1#*:}" && printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3 && head -1 <&3 | grep -q ' 200 '
}

wait_until 10 "nats-server ($run_dir/nats-server.log)" grep -q "Server is ready" "$run_dir/nats-server.log"

SWITCHBOARD_HTTP_ADDR="$router_http" DATABASE_URL="sqlite://$run_dir/router.db?mode=rwc" \
  RUST_LOG="${RUST_LOG:-info}" "$bin/switchboard-router" 2>>"$run_dir/router.log" &
pids+=($!)
wait_until 60 "the router ($run_dir/router.log)" ready "$router_http"

SWITCHBOARD_HTTP_ADDR="$gateway_http" SWITCHBOARD_PUBLIC_BASE_URL="http://$gateway_http" \
  SWITCHBOARD_TENANTS_FILE="$root/deploy/demo/tenants.json" \
  RUST_LOG="${RUST_LOG:-info}" "$bin/switchboard-gateway" 2>>"$run_dir/gateway.log" &
pids+=($!)
wait_until 30 "the gateway ($run_dir/gateway.log)" ready "$gateway_http"

SWITCHBOARD_HTTP_ADDR="$dialer_http" SWITCHBOARD_CARRIER=sandbox \
  SWITCHBOARD_PUBLIC_BASE_URL="http://$gateway_http" \
  RUST_LOG="${RUST_LOG:-info}" "$bin/switchboard-dialer" 2>>"$run_dir/dialer.log" &
pids+=($!)
wait_until 30 "the dialer ($run_dir/dialer.log)" ready "$dialer_http"

"$bin/switchboard" settings apply deploy/demo/acme.json >/dev/null

cat <<EOT

Switchboard is running:
  nats-server  $NATS_URL   (JetStream data in $run_dir/nats)
  router       http://$router_http/readyz   (log: $run_dir/router.log)
  gateway      http://$gateway_http/readyz   (log: $run_dir/gateway.log; tenants: deploy/demo/tenants.json)
  dialer       http://$dialer_http/readyz   (log: $run_dir/dialer.log; sandbox carrier: nobody answers,
               so each call walks its chain to the final action — see the call.dial events)
  demo tenant  acme, loaded from deploy/demo/acme.json

Place a call and see where it rings (in another terminal):
  NATS_URL=$NATS_URL target/debug/switchboard call --tenant acme --to +16502530000 --from '(415) 867-5310' --wait

Or through the gateway's JSON API, as a CRM producer would (Twilio webhooks go to
http://$gateway_http/v1/tenants/acme/twilio/voice, signed with the demo token):
  curl -s -X POST http://$gateway_http/v1/tenants/acme/calls -H 'Content-Type: application/json' \\
    -d '{"call_id":"demo-1","to":"+16502530000","from":"(415) 867-5310"}'

Ctrl-C stops everything.
EOT
wait -n "${pids[@]}"
