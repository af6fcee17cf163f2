#!/usr/bin/env bash
# `make test-chaos`: the chaos and fault suite (tests/chaos) at full scale — the same scenarios
# `make test` runs bounded — then, with `--fuzz`, each cargo-fuzz target for a bounded time.
#
#   SWITCHBOARD_CHAOS_CALLS      calls per kill/restart, cluster and slow-consumer scenario (20000)
#   SWITCHBOARD_CHAOS_BAD_INPUT  malformed messages through the router (100000)
#   SWITCHBOARD_CHAOS_SEED       seed of the fault timing and of the malformed messages
#   SWITCHBOARD_CHAOS_SCALE      the dialer's two-replica chaos test, times its make-test size (10)
#   SWITCHBOARD_CHAOS_WAIT_REDELIVERIES  1 (default here): full-scale mode — the dialer runs
#                                with its production timing (ack_wait 5 s, carrier requests of
#                                up to 4 x 5 s), scenarios may wait out the router's 30 s ack_wait
#   SWITCHBOARD_FUZZ_SECONDS     seconds per fuzz target with --fuzz (60)
#
# The figures each scenario prints ("[chaos] ...") are collected in target/chaos/summary.txt
# (docs/reliability.md records them). Expects `make tools` to have run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

export PATH="$root/.tools/bin:$PATH"
export SWITCHBOARD_NATS_SERVER="${SWITCHBOARD_NATS_SERVER:-$root/.tools/bin/nats-server}"
export SWITCHBOARD_CHAOS_CALLS="${SWITCHBOARD_CHAOS_CALLS:-20000}"
export SWITCHBOARD_CHAOS_BAD_INPUT="${SWITCHBOARD_CHAOS_BAD_INPUT:-100000}"
# Full-scale mode. Every mode requires every decision acted on and every call at its end (the
# bounded run in `make test` gets there sooner with a shorter dialer ack_wait and carrier timing).
export SWITCHBOARD_CHAOS_WAIT_REDELIVERIES="${SWITCHBOARD_CHAOS_WAIT_REDELIVERIES:-1}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

fuzz=false
for arg in "$@"; do
  case "$arg" in
    --fuzz) fuzz=true ;;
    *) echo "usage: $0 [--fuzz]" >&2; exit 2 ;;
  esac
done

out="$root/target/chaos"
mkdir -p "$out"

echo "== service binaries (the suite runs them as child processes)"
cargo build --locked -p switchboard-router -p switchboard-dialer --bins

echo "== chaos suite: $SWITCHBOARD_CHAOS_CALLS calls per scenario, $SWITCHBOARD_CHAOS_BAD_INPUT malformed messages (nats-server $("$SWITCHBOARD_NATS_SERVER" --version))"
# libtest rather than nextest: one scenario at a time (each has the 2 cores to itself), its
# figures printed as it goes, and no per-test time limit at full scale.
started=$(date +%s)
cargo test --locked -p switchboard-chaos-tests --test chaos -- --test-threads 1 --nocapture 2>&1 \
  | tee "$out/run.log"
echo "== chaos suite passed in $(( $(date +%s) - started )) s"

# The dialer's own chaos test (two real dialer binaries, a flaky Twilio stand-in, seeded
# SIGKILLs), ten times its make-test scale: 600 concurrent chains, 80 kills.
echo "== dialer chaos at scale (SWITCHBOARD_CHAOS_SCALE=${SWITCHBOARD_CHAOS_SCALE:-10})"
SWITCHBOARD_CHAOS_SCALE="${SWITCHBOARD_CHAOS_SCALE:-10}" cargo test --locked -p switchboard-dialer \
  --test dialer -- chaos:: --test-threads 1 --nocapture 2>&1 | tee -a "$out/run.log"

grep -o '\[chaos\].*\|^chaos: .*' "$out/run.log" > "$out/summary.txt" || true
cat "$out/summary.txt"

if $fuzz; then
  seconds="${SWITCHBOARD_FUZZ_SECONDS:-60}"
  if ! command -v cargo-fuzz > /dev/null; then
    echo "== installing cargo-fuzz into .tools/"
    cargo install --locked cargo-fuzz --root "$root/.tools"
  fi
  cd "$root/fuzz"
  for target in decode_event phone twilio_form; do
    echo "== fuzzing $target for ${seconds}s (seeds: fuzz/corpus/$target, new inputs: fuzz/scratch/$target)"
    mkdir -p "scratch/$target"
    # cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the pinned stable toolchain accept
    # them. No sanitizer: the code under test forbids `unsafe`, so panics are what is hunted.
    status=0
    RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$target" "scratch/$target" "corpus/$target" \
      -- -max_total_time="$seconds" -print_final_stats=1 > "$out/fuzz-$target.log" 2>&1 || status=$?
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|==[0-9]+== ERROR|SUMMARY|thread .* panicked)' \
      "$out/fuzz-$target.log" || true
    if [ "$status" -ne 0 ]; then
      echo "fuzz target $target failed (exit $status): see $out/fuzz-$target.log and fuzz/artifacts/$target/" >&2
      exit 1
    fi
  done
fi
