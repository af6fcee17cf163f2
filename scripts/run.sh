#!/usr/bin/env bash
# `make run`: the local stack on embedded defaults. Starts a private nats-server with JetStream
# storing in .run/nats (never the one that may already listen on 4222), then every Switchboard
# service that exists so far. Ctrl-C stops everything.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
run_dir="${1:-$root/.run}"
port="${SWITCHBOARD_NATS_PORT:-14222}"
mkdir -p "$run_dir/nats"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait || true; }
trap cleanup EXIT INT TERM

"$root/.tools/bin/nats-server" -js -a 127.0.0.1 -p "$port" -sd "$run_dir/nats" -n switchboard-local \
  -l "$run_dir/nats-server.log" &
pids+=($!)

for _ in $(seq 1 100); do
  grep -q "Server is ready" "$run_dir/nats-server.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "Server is ready" "$run_dir/nats-server.log" || { echo "nats-server did not start; see $run_dir/nats-server.log" >&2; exit 1; }

export NATS_URL="nats://127.0.0.1:$port"
echo "nats-server with JetStream: $NATS_URL (data in $run_dir/nats, log in $run_dir/nats-server.log)"

# Services join here as they land (router, gateway, dialer).
services=()
for svc in "${services[@]}"; do
  cargo run --quiet -p "switchboard-$svc" &
  pids+=($!)
done

echo "Running. Ctrl-C to stop."
wait -n "${pids[@]}"
