#!/usr/bin/env bash
# `make run` works every time: starts `make run` several times in a row on one run directory
# (a temporary one) and random free ports (never the defaults, never 4222), and on each run
#   - waits for its "Switchboard is running" banner (with a deadline; fails at once if it exits);
#   - runs the README's "First steps" commands, as written but for the ports and /tmp path,
#     and checks each call rings where the README says (so a run must start from demo state);
#   - stops it and checks every process it started has exited and its ports are free.
# The runs stop in turn with SIGTERM, with Ctrl-C (SIGINT to the foreground process group, as
# a terminal sends it) and with SIGKILL of make and run.sh alone (a crash: the children are
# left behind, and the next run must clear them and start anyway).
# Uses target/debug (built here first, as run.sh builds it) and .tools/bin/nats-server (`make
# tools`). Part of `make test`; alone: scripts/test-run.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

deadline_ready=60 # seconds from `make run` to its banner, once built
deadline_stop=30  # seconds from the signal to make's exit

tmp="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-test-run.XXXXXX")"
run_dir="$tmp/run"
started=() # "pid command" of every process a run started (make and its descendants)
failed=true

cleanup() {
  trap '' INT TERM
  local entry pid command left=()
  # Whatever is still running of what the runs started (only after a failure).
  for entry in "${started[@]}"; do
    pid="${entry%% *}" command="${entry#* }"
    [[ "$(ps -o command= -p "$pid" 2>/dev/null)" == "$command" ]] && left+=("$pid")
  done
  if ((${#left[@]})); then
    kill -TERM "${left[@]}" 2>/dev/null || true
    sleep 2
    kill -KILL "${left[@]}" 2>/dev/null || true
  fi
  if $failed; then
    for f in "$tmp"/run-*.out "$run_dir"/*.log; do
      [[ -f "$f" ]] || continue
      echo "--- the end of $f:" >&2
      tail -n 40 "$f" >&2
    done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { echo "test-run: FAIL: $*" >&2; exit 1; }
show() { cat "$1" >&2; echo >&2; } # (curl's answer ends without a newline)
now_ms() { local t="${EPOCHREALTIME/./}"; echo $((t / 1000)); }

# Four distinct free ports below Linux's ephemeral range (32768-60999), never the defaults.
ports=()
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
while ((${#ports[@]} < 4)); do
  p=$((20000 + RANDOM % 12000))
  [[ " ${ports[*]} " == *" $p "* ]] && continue
  listening "$p" && continue
  ports+=("$p")
done
export SWITCHBOARD_NATS_PORT="${ports[0]}"
export SWITCHBOARD_ROUTER_HTTP="127.0.0.1:${ports[1]}"
export SWITCHBOARD_GATEWAY_HTTP="127.0.0.1:${ports[2]}"
export SWITCHBOARD_DIALER_HTTP="127.0.0.1:${ports[3]}"
unset SWITCHBOARD_RUN_KEEP KEEP

# --- The README's first steps, as a script for this test's ports -----------------------------
readme_steps="$tmp/first-steps.sh"
steps="$(awk '/^## First steps/ { s = 1; next }
              s && /^## / { exit }
              s && /^```sh$/ { b = 1; next }
              s && b && /^```$/ { b = 0; next }
              s && b && $0 != "make run" { print }' README.md)"
[[ -n "$steps" ]] || fail "no commands found in the README's First steps"
unmapped="$(grep -oE '127\.0\.0\.1:[0-9]+|/tmp/[A-Za-z0-9._-]+' <<<"$steps" | sort -u |
  grep -vxE '127\.0\.0\.1:(14222|18081)|/tmp/alice\.json' || true)"
[[ -z "$unmapped" ]] ||
  fail "the README's first steps use addresses or paths this test does not map to its own: $unmapped"
{
  echo 'set -euo pipefail'
  sed -e "s#nats://127.0.0.1:14222#nats://127.0.0.1:$SWITCHBOARD_NATS_PORT#g" \
    -e "s#127.0.0.1:18081#$SWITCHBOARD_GATEWAY_HTTP#g" \
    -e "s#/tmp/alice.json#$tmp/alice.json#g" <<<"$steps"
} >"$readme_steps"
# Where each call rings: the README's "→ rule" comments, in order, then the call after the
# settings change (u-alice without a phone → the dialed number's forwarding number).
mapfile -t expected < <(grep -oE '→ [a-z_]+$' "$readme_steps" | cut -c5-)
expected+=(forwarding_number)
calls="$(grep -c '^target/debug/switchboard call ' "$readme_steps" || true)"
((calls == ${#expected[@]})) ||
  fail "the README's first steps place $calls calls, this test expects ${#expected[@]} (${expected[*]})"

echo "== make run: build (target/debug, as run.sh builds it)"
cargo build --locked -p switchboard-router -p switchboard-gateway -p switchboard-dialer -p switchboard-cli

descendants() { # every descendant of PID, as "pid command"
  local child
  for child in $(pgrep -P "$1"); do
    echo "$child $(ps -o command= -p "$child" 2>/dev/null)"
    descendants "$child"
  done
}

# run_once N HOW: one `make run`, stopped by HOW (term, int or kill).
declare -a previous=() # what the previous run (if killed) left behind
run_once() {
  local n="$1" how="$2" out="$tmp/run-$1.out" t0 t1 t2 t3 pid entry p command tree=() status
  t0="$(now_ms)"
  # Job control for this one command: make gets its own process group (as a terminal's
  # foreground job does) and does not inherit an ignored SIGINT.
  set -m
  # SIGINT back to its default first: a caller that started this script in the background
  # (`cmd &` without job control, nohup) passes SIGINT on ignored, and a signal ignored on
  # entry can never be trapped by run.sh, so Ctrl-C would be tested against nothing.
  env --default-signal=INT make --no-print-directory run RUN_DIR="$run_dir" >"$out" 2>&1 </dev/null &
  pid=$!
  set +m
  started+=("$pid $(ps -o command= -p "$pid" 2>/dev/null)")

  local deadline=$((SECONDS + deadline_ready))
  until grep -q "Switchboard is running" "$out"; do
    kill -0 "$pid" 2>/dev/null || {
      wait "$pid" && status=0 || status=$?
      fail "run $n: make run exited (status $status) before its banner"
    }
    ((SECONDS < deadline)) || fail "run $n: no banner within $deadline_ready s"
    sleep 0.1
  done
  t1="$(now_ms)"
  mapfile -t tree < <(descendants "$pid")
  started+=("${tree[@]}")
  grep -q 'nats-server -js' <(printf '%s\n' "${tree[@]}") || fail "run $n: no nats-server among its processes"

  # What the killed run before this one left behind must be gone now.
  for entry in "${previous[@]}"; do
    p="${entry%% *}" command="${entry#* }"
    [[ "$(ps -o command= -p "$p" 2>/dev/null)" == "$command" ]] &&
      fail "run $n: the previous run's $command (pid $p) still runs"
  done
  previous=()

  local got=()
  (bash "$readme_steps") >"$tmp/steps-$n.out" 2>&1 ||
    { show "$tmp/steps-$n.out"; fail "run $n: the README's first steps failed"; }
  mapfile -t got < <(awk '$1 == "rule" { print $2 }' "$tmp/steps-$n.out")
  if [[ "${got[*]}" != "${expected[*]}" ]]; then
    show "$tmp/steps-$n.out"
    fail "run $n: the calls rang ${got[*]:-nowhere}; the README says ${expected[*]}"
  fi
  grep -q '"duplicate":false' "$tmp/steps-$n.out" ||
    { show "$tmp/steps-$n.out"; fail "run $n: the gateway did not accept demo-1 as a new call"; }
  t2="$(now_ms)"

  kill -0 "$pid" 2>/dev/null || fail "run $n: make run exited on its own"
  case "$how" in
    term) kill -TERM "$pid" ;;
    int) kill -INT -- "-$pid" ;;   # Ctrl-C: the whole foreground process group
    kill) kill -KILL -- "-$pid" ;; # make and run.sh die; the children they started do not
  esac
  deadline=$((SECONDS + deadline_stop))
  # (stderr: not bash's notice that the job was killed)
  { while kill -0 "$pid" && ((SECONDS < deadline)); do sleep 0.1; done; } 2>/dev/null
  kill -0 "$pid" 2>/dev/null && fail "run $n: make run still runs $deadline_stop s after SIG${how^^}"
  { wait "$pid"; } 2>/dev/null && status=0 || status=$?
  t3="$(now_ms)"

  local alive=()
  for entry in "${tree[@]}"; do
    p="${entry%% *}" command="${entry#* }"
    [[ "$(ps -o command= -p "$p" 2>/dev/null)" == "$command" ]] && alive+=("$entry")
  done
  if [[ "$how" == kill ]]; then
    ((${#alive[@]})) || fail "run $n: nothing survived SIGKILL of make and run.sh (the next run tests nothing)"
    previous=("${alive[@]}")
  else
    ((${#alive[@]} == 0)) || fail "run $n: still running after make run exited: ${alive[*]}"
    for p in "${ports[@]}"; do
      listening "$p" && fail "run $n: port $p still listens after make run exited"
    done
  fi
  printf 'run %d: banner after %d ms, first steps %d ms, %s -> exited (status %d) in %d ms%s\n' \
    "$n" $((t1 - t0)) $((t2 - t1)) "SIG${how^^}" "$status" $((t3 - t2)) \
    "$([[ $how == kill ]] && echo ", ${#alive[@]} children left for the next run to clear")"
}

echo "== make run, four times in a row (ports ${ports[*]}, run dir $run_dir)"
run_once 1 term
run_once 2 int
run_once 3 kill
run_once 4 term
failed=false
echo "make run: 4 runs, each answered the README's first steps"
