#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions called indirectly (traps, await COMMAND)
# `make run`: the local stack on embedded defaults. Starts a private nats-server with JetStream
# storing in .run/nats (never the one that may already listen on 4222), the router with its
# SQLite projection in .run/, the gateway, the dialer with the sandbox carrier, loads the
# demo tenants `acme` and `globex` (deploy/demo/*.json) and prints how to place a call. Ctrl-C (or
# SIGTERM) stops everything: the services first, then nats-server.
#
# Every run starts from the demo state: the streams and the projection of the previous run are
# wiped (so the README's first steps answer as documented, every time). SWITCHBOARD_RUN_KEEP=1
# (`make run KEEP=1`) keeps them instead. Logs are per run: .run/*.log.
#
#   scripts/run.sh [RUN_DIR]   (default .run/)
#   SWITCHBOARD_NATS_PORT (14222), SWITCHBOARD_ROUTER_HTTP (127.0.0.1:18080),
#   SWITCHBOARD_GATEWAY_HTTP (127.0.0.1:18081), SWITCHBOARD_DIALER_HTTP (127.0.0.1:18082)
#
# scripts/test-run.sh (part of `make test`) starts it several times in a row and checks the
# README's first steps against each run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
run_dir="${1:-$root/.run}"
port="${SWITCHBOARD_NATS_PORT:-14222}"
router_http="${SWITCHBOARD_ROUTER_HTTP:-127.0.0.1:18080}"
gateway_http="${SWITCHBOARD_GATEWAY_HTTP:-127.0.0.1:18081}"
dialer_http="${SWITCHBOARD_DIALER_HTTP:-127.0.0.1:18082}"
nats_server="${SWITCHBOARD_NATS_SERVER:-$root/.tools/bin/nats-server}"
case "${SWITCHBOARD_RUN_KEEP:-0}" in
  1 | true | yes) keep=true ;;
  *) keep=false ;;
esac
bin="$root/target/debug"
mkdir -p "$run_dir"
run_dir="$(cd "$run_dir" && pwd)"
pid_file="$run_dir/pids"
cd "$root"

die() { echo "make run: $*" >&2; exit 1; }

# One run per directory: held until this script exits (the children do not inherit it, so
# leftovers of a killed run do not hold it). Without flock (macOS), the pid file check below.
if command -v flock >/dev/null; then
  exec 9>>"$run_dir/lock"
  flock -n 9 || die "another make run is using $run_dir; stop it first (Ctrl-C in its terminal)"
fi

# alive PID: running (an exited orphan may stay a zombie until init reaps it: that is gone).
alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" && [[ "$state" != Z* ]]
}
stop() { # stop PID...: SIGTERM, then SIGKILL for any still running after 15 s
  local pid deadline=$((SECONDS + 15))
  kill -TERM "$@" 2>/dev/null || true
  for pid in "$@"; do
    while alive "$pid"; do
      if ((SECONDS >= deadline)); then
        echo "make run: pid $pid did not stop within 15 s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
  done
}

# --- What an earlier run may have left behind -----------------------------------------------
# $pid_file lists "name pid" for this script and each child while a run is up. If that script
# is still alive, another `make run` uses this directory; if only children are (the script was
# killed with SIGKILL), they are leftovers: stop them, or they would hold the ports and data.
if [[ -f "$pid_file" ]]; then
  left_services=() left_nats=()
  while read -r name pid; do
    command="$(ps -o command= -p "$pid" 2>/dev/null)" || continue
    case "$name" in
      run.sh) [[ "$command" == *run.sh* ]] &&
        die "another make run (pid $pid) is using $run_dir; stop it first (Ctrl-C in its terminal)" ;;
      nats-server) [[ "$command" == *"$run_dir/nats"* ]] && left_nats+=("$pid") ;;
      *) [[ "$command" == *"$bin/switchboard-$name"* ]] && left_services+=("$pid") ;;
    esac
  done <"$pid_file"
  if ((${#left_services[@]} + ${#left_nats[@]})); then
    echo "stopping what an earlier make run left running (pids ${left_services[*]} ${left_nats[*]})..."
    # As cleanup below does: the services first, so that they drain while nats-server runs.
    ((${#left_services[@]})) && stop "${left_services[@]}"
    ((${#left_nats[@]})) && stop "${left_nats[@]}"
  fi
  rm -f "$pid_file"
fi

# Something else listening on a port would answer our readiness checks in place of our own
# processes (or make them fail to bind): say so now rather than after a timeout.
listening() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for address in "127.0.0.1:$port" "$router_http" "$gateway_http" "$dialer_http"; do
  if listening "$address"; then
    die "$address is already in use (another make run? set SWITCHBOARD_NATS_PORT / SWITCHBOARD_*_HTTP to use other ports)"
  fi
done

if $keep; then
  echo "keeping the streams and the projection of the previous run in $run_dir (SWITCHBOARD_RUN_KEEP=1)"
else
  # Only what this script creates; the rest of the directory is left alone.
  rm -rf "$run_dir/nats" "$run_dir"/router.db "$run_dir"/router.db-*
fi
mkdir -p "$run_dir/nats"

echo "building the services (cargo build: the first build takes a few minutes, later ones seconds)..."
cargo build -p switchboard-router -p switchboard-gateway -p switchboard-dialer -p switchboard-cli

# --- Children ---------------------------------------------------------------------------------
names=()
pids=()
cleanup() {
  trap '' INT TERM HUP
  local i services=()
  # The services first (newest first), so that they drain while nats-server still runs.
  for ((i = ${#pids[@]} - 1; i >= 1; i--)); do services+=("${pids[i]}"); done
  ((${#services[@]})) && stop "${services[@]}"
  ((${#pids[@]})) && stop "${pids[0]}"
  wait 2>/dev/null || true
  rm -f "$pid_file"
  [[ -n "${context:-}" && "$(cat "$context" 2>/dev/null)" == "${NATS_URL:-}" ]] && rm -f "$context"
  if $stopping; then echo "stopped."; fi
}
stopping=false
trap cleanup EXIT
# Ctrl-C and SIGTERM are how a run ends: a clean stop, status 0 (a child that dies is status 1).
trap 'echo; echo "stopping..."; stopping=true; exit 0' INT TERM
trap 'exit 129' HUP
echo "run.sh $$" >"$pid_file"

# start NAME LOG COMMAND...: run COMMAND in the background, stdout and stderr to LOG (a fresh
# file each run; stdin /dev/null). Each child gets its own process group, so that Ctrl-C in the terminal reaches
# this script (which stops the services, then nats-server, in that order) and not every child
# at once.
start() {
  local name="$1" log="$2"; shift 2
  set -m
  "$@" </dev/null >"$log" 2>&1 9>&- &
  set +m
  names+=("$name")
  pids+=($!)
  echo "$name $!" >>"$pid_file"
}

# died NAME PID LOG: report a child that exited, with the end of its log, and fail.
died() {
  local status=0
  wait "$2" 2>/dev/null || status=$?
  echo "make run: the $1 exited (status $status); the end of $3:" >&2
  tail -n 30 "$3" | sed 's/^/  | /' >&2
  exit 1
}

# await SECONDS NAME PID LOG COMMAND...: poll COMMAND until it succeeds; fail at once if the
# child died, or after SECONDS.
await() {
  local seconds="$1" name="$2" pid="$3" log="$4"
  shift 4
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || died "$name" "$pid" "$log"
    if ((SECONDS >= deadline)); then
      echo "make run: timed out after $seconds s waiting for the $name; the end of $log:" >&2
      tail -n 30 "$log" | sed 's/^/  | /' >&2
      exit 1
    fi
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null || died "$name" "$pid" "$log"
}

# ready HOST:PORT: /readyz answers 200.
ready() (
  exec 3<>"/dev/tcp/${1%:*}/${1##*:}"
  printf 'GET /readyz HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" >&3
  IFS= read -r -t 5 status <&3
  [[ "$status" == *" 200 "* ]]
)

# nats_ready LOG: this run's nats-server (its log is fresh) is ready and accepts connections.
nats_ready() { grep -q "Server is ready" "$1" && listening "127.0.0.1:$port"; }

export NATS_URL="nats://127.0.0.1:$port"
export RUST_LOG="${RUST_LOG:-info}"
# The CLI's context: `switchboard` run from this checkout without --nats-url or NATS_URL reads
# .run/nats-url and talks to this run's nats-server, never to whatever listens on 4222.
# Written once the services are up, removed when the run stops.
context="$run_dir/nats-url"

log="$run_dir/nats-server.log"
start nats-server "$log" \
  "$nats_server" -js -a 127.0.0.1 -p "$port" -sd "$run_dir/nats" -n switchboard-local
await 30 nats-server "${pids[-1]}" "$log" nats_ready "$log"

log="$run_dir/router.log"
start router "$log" env SWITCHBOARD_HTTP_ADDR="$router_http" \
  DATABASE_URL="sqlite://$run_dir/router.db?mode=rwc" "$bin/switchboard-router"
await 60 router "${pids[-1]}" "$log" ready "$router_http"

log="$run_dir/gateway.log"
start gateway "$log" env SWITCHBOARD_HTTP_ADDR="$gateway_http" \
  SWITCHBOARD_PUBLIC_BASE_URL="http://$gateway_http" \
  SWITCHBOARD_TENANTS_FILE="$root/deploy/demo/tenants.json" "$bin/switchboard-gateway"
await 30 gateway "${pids[-1]}" "$log" ready "$gateway_http"

log="$run_dir/dialer.log"
start dialer "$log" env SWITCHBOARD_HTTP_ADDR="$dialer_http" SWITCHBOARD_CARRIER=sandbox \
  SWITCHBOARD_PUBLIC_BASE_URL="http://$gateway_http" "$bin/switchboard-dialer"
await 30 dialer "${pids[-1]}" "$log" ready "$dialer_http"

echo "$NATS_URL" >"$context"

# (Quiet: its "published …" lines go to stderr; shown only if it fails.) Each file holds one
# tenant, named as the file: new in a fresh run, so confirmed with --new-tenant.
for demo in deploy/demo/acme.json deploy/demo/globex.json; do
  tenant="$(basename "$demo" .json)"
  if ! "$bin/switchboard" settings apply --new-tenant "$tenant" "$demo" >"$run_dir/settings.log" 2>&1; then
    cat "$run_dir/settings.log" >&2
    echo "make run: loading $demo failed" >&2
    exit 1
  fi
done

if $keep; then
  state="kept from the previous run (SWITCHBOARD_RUN_KEEP=1)"
else
  state="fresh: wiped at start; make run KEEP=1 keeps it"
fi
cat <<EOT

Switchboard is running:
  nats-server  $NATS_URL   (JetStream data in $run_dir/nats, $state)
  router       http://$router_http/readyz   (log: $run_dir/router.log)
  gateway      http://$gateway_http/readyz   (log: $run_dir/gateway.log; tenants: deploy/demo/tenants.json)
  dialer       http://$dialer_http/readyz   (log: $run_dir/dialer.log; sandbox carrier: nobody answers,
               so each call walks its chain to the final action — see the call.dial events;
               SWITCHBOARD_SANDBOX_OUTCOMES=completed make run: the first leg of every call answers)
  demo tenants acme (the spec's rules, a ring group, a blocked number, returning callers for 30
               days), loaded from deploy/demo/acme.json, and globex (business hours in
               America/Chicago, a direct line, working hours, do-not-disturb, ring timeouts),
               from deploy/demo/globex.json

Place a call and see where it rings (in another terminal):
  NATS_URL=$NATS_URL target/debug/switchboard call --tenant acme --to +16502530000 --from '(415) 867-5310' --wait
A ring group (+16502530002 rings u-alice and u-carol at once for 15 s, then the company phone):
  NATS_URL=$NATS_URL target/debug/switchboard call --tenant acme --to +16502530002 --from +14158675312 --wait
A blocked number (+14155550199 is on acme's blocked_callers: rejected, nothing rings, the caller hears busy):
  NATS_URL=$NATS_URL target/debug/switchboard call --tenant acme --to +16502530000 --from +14155550199 --wait
A returning caller (back to whoever answered them in the last 30 days): the sandbox answers nothing, so
start with SWITCHBOARD_SANDBOX_OUTCOMES=completed make run, call u-carol's direct line +16502530003 from
+14155550142 (she answers), then call the main number from it → returning_caller, u-carol first:
  NATS_URL=$NATS_URL target/debug/switchboard call --tenant acme --to +16502530003 --from +14155550142 --wait
  NATS_URL=$NATS_URL target/debug/switchboard call --tenant acme --to +16502530000 --from +14155550142 --wait

Or through the gateway's JSON API, as a CRM producer would (Twilio webhooks go to
http://$gateway_http/v1/tenants/acme/twilio/voice, signed with the demo token):
  curl -s -X POST http://$gateway_http/v1/tenants/acme/calls -H 'Content-Type: application/json' \\
    -H 'Authorization: Bearer sbk_demo-acme-not-a-secret-0000000000000000000000' \\
    -d '{"call_id":"demo-1","to":"+16502530000","from":"(415) 867-5310"}'

Ctrl-C stops everything.
EOT

# Until Ctrl-C / SIGTERM (the traps exit, and cleanup stops the rest), or until a child dies.
status=0
wait -n "${pids[@]}" || status=$?
for i in "${!pids[@]}"; do
  if ! kill -0 "${pids[i]}" 2>/dev/null; then
    echo "make run: the ${names[i]} exited (status $status); the end of $run_dir/${names[i]}.log:" >&2
    tail -n 30 "$run_dir/${names[i]}.log" | sed 's/^/  | /' >&2
  fi
done
exit 1
